//! The analyzer's durable state: every alert's lifecycle, silences, events waiting for
//! their group, and `alerts` history points not yet written. One JSON file in the
//! state directory, replaced atomically (temp file, fsync, rename, fsync of the
//! directory) after every change, so a restart loses nothing and repeats nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hostscope_core::detect::Severity;
use serde::{Deserialize, Serialize};

use crate::lifecycle::Alert;
use crate::notify::AlertEvent;

/// Bumped when the file's shape changes incompatibly.
const FORMAT: u32 = 1;
const FILE: &str = "alerts.json";

/// What a detector said about one step, kept for the API and the messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub score: f64,
    pub reason: String,
    pub breached: bool,
    /// The detector's severity for a breach (threshold levels).
    pub severity: Option<Severity>,
    /// The data time it is about when the step itself is wall-clock time: a nodata
    /// observation's last point. Keys its notifications, so that judging it again
    /// after a crash finds the same event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_ms: Option<i64>,
}

/// One alert: a rule applied to one series (one host, or one host and `group_by`
/// tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: String,
    pub rule: String,
    /// The series' tags (`host` and the rule's `group_by` tags).
    pub tags: BTreeMap<String, String>,
    pub lifecycle: Alert,
    /// The newest step (unix ms) already observed: later evaluations continue after it.
    pub last_step_ms: Option<i64>,
    /// The newest observation.
    pub last: Option<Observation>,
    /// The observation that made the alert fire (the band it crossed).
    pub fired_with: Option<Observation>,
    pub severity: Severity,
    pub acknowledged: bool,
    /// When an evaluation last saw this series.
    pub last_seen_ms: i64,
}

impl AlertRecord {
    pub fn new(id: String, rule: &str, tags: BTreeMap<String, String>, now_ms: i64) -> Self {
        AlertRecord {
            id,
            rule: rule.to_owned(),
            tags,
            lifecycle: Alert::default(),
            last_step_ms: None,
            last: None,
            fired_with: None,
            severity: Severity::Warning,
            acknowledged: false,
            last_seen_ms: now_ms,
        }
    }

    pub fn host(&self) -> Option<&str> {
        self.tags.get("host").map(String::as_str)
    }
}

/// A silence: while active, matching alerts notify nobody (their state and history
/// are still kept). Every set matcher must match; an unset one matches anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub rule: Option<String>,
    pub host: Option<String>,
    /// Label (or series tag) equality matchers.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub created_by: String,
}

impl Silence {
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    /// Whether it covers an alert of `rule` on a series with these labels (rule labels
    /// and series tags, `host` among them).
    pub fn matches(&self, rule: &str, labels: &BTreeMap<String, String>) -> bool {
        self.rule.as_deref().is_none_or(|r| r == rule)
            && self
                .host
                .as_deref()
                .is_none_or(|h| labels.get("host").map(String::as_str) == Some(h))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Events collected for one group and channel set, sent together once the first is
/// `group_wait` old.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingGroup {
    pub group: String,
    pub channels: Vec<String>,
    pub first_at_ms: i64,
    pub events: Vec<AlertEvent>,
}

/// Everything that survives a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub format: u32,
    pub alerts: BTreeMap<String, AlertRecord>,
    pub silences: Vec<Silence>,
    pub groups: Vec<PendingGroup>,
    /// Line protocol (ns) for the `alerts` measurement, not yet accepted by InfluxDB.
    pub points: Vec<String>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            format: FORMAT,
            alerts: BTreeMap::new(),
            silences: Vec::new(),
            groups: Vec::new(),
            points: Vec::new(),
        }
    }
}

/// Errors reading or writing the state file, with its path.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid state file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Store {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// The state in `dir`, or an empty one when there is none yet. A file that exists
    /// but cannot be read is an error: starting empty would re-send every alert.
    pub fn load(dir: &Path) -> Result<Store, StateError> {
        let path = Self::path(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let store: Store = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if store.format != FORMAT {
            return Err(StateError::Corrupt {
                path,
                reason: format!("format {} (this analyzer reads {FORMAT})", store.format),
            });
        }
        Ok(store)
    }

    /// Replace the file atomically.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = Self::path(dir);
        let write_err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(write_err)?;
        let bytes = serde_json::to_vec(self).map_err(|e| write_err(std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let mut f = fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(&bytes).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        drop(f);
        fs::rename(&tmp, &path).map_err(write_err)?;
        if let Ok(d) = fs::File::open(dir) {
            // Makes the rename durable; not every filesystem supports it.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The active silence covering this alert, if any (the one ending last).
    pub fn silenced_by(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Option<&Silence> {
        self.silences
            .iter()
            .filter(|s| s.is_active(now_ms) && s.matches(rule, labels))
            .max_by_key(|s| s.ends_at_ms)
    }

    /// Forget silences that ended more than a day ago.
    pub fn prune_silences(&mut self, now_ms: i64) {
        self.silences.retain(|s| now_ms - s.ends_at_ms < 86_400_000);
    }
}

/// A stable id: FNV-1a (64 bit) over the parts, as 16 hex digits. Stable across builds
/// and versions, unlike the standard library's hasher.
pub fn stable_id(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The id of the alert of `rule` on the series with `tags`.
pub fn alert_id(rule: &str, tags: &BTreeMap<String, String>) -> String {
    let mut parts = vec![rule];
    for (k, v) in tags {
        parts.push(k);
        parts.push(v);
    }
    stable_id(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let t = |h: &str| BTreeMap::from([("host".to_owned(), h.to_owned())]);
        assert_eq!(alert_id("r", &t("a")), alert_id("r", &t("a")));
        assert_ne!(alert_id("r", &t("a")), alert_id("r", &t("b")));
        assert_ne!(alert_id("ra", &BTreeMap::new()), alert_id("r", &t("a")));
        // Fixed forever: ids are in URLs and persisted state.
        assert_eq!(stable_id(&["cpu"]), stable_id(&["cpu"]));
        assert_eq!(stable_id(&[]), "cbf29ce484222325");
    }

    #[test]
    fn silences_match_every_set_matcher() {
        let s = Silence {
            id: "1".into(),
            rule: Some("cpu".into()),
            host: Some("web-1".into()),
            labels: BTreeMap::from([("team".to_owned(), "ops".to_owned())]),
            starts_at_ms: 0,
            ends_at_ms: 100,
            comment: String::new(),
            created_by: String::new(),
        };
        let l = |h: &str, team: &str| {
            BTreeMap::from([
                ("host".to_owned(), h.to_owned()),
                ("team".to_owned(), team.to_owned()),
            ])
        };
        assert!(s.matches("cpu", &l("web-1", "ops")));
        assert!(!s.matches("mem", &l("web-1", "ops")));
        assert!(!s.matches("cpu", &l("web-2", "ops")));
        assert!(!s.matches("cpu", &l("web-1", "dev")));
        assert!(s.is_active(0) && s.is_active(99) && !s.is_active(100));
    }

    #[test]
    fn state_round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Store::load(dir.path()).unwrap(), Store::default());
        let mut s = Store::default();
        s.alerts.insert(
            "x".into(),
            AlertRecord::new("x".into(), "r", BTreeMap::new(), 5),
        );
        s.points.push("alerts,rule=r state=\"firing\" 1".into());
        s.save(dir.path()).unwrap();
        assert_eq!(Store::load(dir.path()).unwrap(), s);
        fs::write(Store::path(dir.path()), b"{not json").unwrap();
        let e = Store::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("alerts.json is not a valid state file"), "{e}");
    }
}
