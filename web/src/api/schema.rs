//! What the API knows about measurements: the collector's built-in schema (which
//! fields are counters, which tag identifies a series) and, for everything else,
//! what the database reports, cached briefly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostscope_core::influx::{FieldKeysQuery, FieldKind, TimeRange};
use tokio::sync::Mutex;

use super::params::now_ms;
use super::query_failed;
use crate::error::AppError;
use crate::state::AppState;

/// Measurements the collector (and the analyzer) write themselves; anything else a
/// host reports is a business measurement.
pub const BUILTIN: [&str; 16] = [
    "cpu",
    "mem",
    "swap",
    "disk",
    "diskio",
    "net",
    "system",
    "processes",
    "procstat",
    "procstat_top",
    "listen",
    "listen_check",
    "logmatch",
    "http_response",
    "hostscope_internal",
    "alerts",
];

/// Monotonic counters of the Telegraf schema (and hostscope's own cumulative
/// self-metrics, which restart from 0 with their program), served as rates per second.
const COUNTERS: [(&str, &[&str]); 4] = [
    (
        "net",
        &[
            "bytes_recv",
            "bytes_sent",
            "packets_recv",
            "packets_sent",
            "err_in",
            "err_out",
            "drop_in",
            "drop_out",
        ],
    ),
    (
        "diskio",
        &[
            "reads",
            "writes",
            "read_bytes",
            "write_bytes",
            "read_time",
            "write_time",
            "io_time",
            "weighted_io_time",
            "merged_reads",
            "merged_writes",
        ],
    ),
    ("swap", &["in", "out"]),
    (
        "hostscope_internal",
        &[
            // collector
            "written",
            "rejected",
            "spooled",
            "dropped",
            "write_errors",
            "errors",
            // analyzer
            "cycles",
            "evaluations",
            "evaluation_failures",
            "events",
            "silenced_events",
            "history_write_failures",
            "notifications_enqueued",
            "notifications_sent",
            "notification_failures",
            "notifications_dropped",
        ],
    ),
];

/// Whether `measurement.field` is a counter of the built-in schema.
pub fn is_counter(measurement: &str, field: &str) -> bool {
    COUNTERS
        .iter()
        .any(|(m, fields)| *m == measurement && fields.contains(&field))
}

/// The tags that tell one series of a host from another in a built-in measurement:
/// the default `group_by`, and what a rate is computed per.
pub fn identifying_tags(measurement: &str) -> &'static [&'static str] {
    match measurement {
        "cpu" => &["cpu"],
        "disk" => &["path"],
        "diskio" => &["name"],
        "net" => &["interface"],
        "logmatch" => &["file", "rule"],
        "listen_check" => &["proto", "port"],
        "http_response" => &["server"],
        "hostscope_internal" => &["component", "input"],
        _ => &[],
    }
}

/// How long the field list is trusted.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// A name missing from a list at least this old triggers one refresh.
const RECHECK_AFTER: Duration = Duration::from_secs(5);

/// Every measurement's fields and types.
pub type Fields = BTreeMap<String, BTreeMap<String, FieldKind>>;

#[derive(Clone)]
struct Cached {
    at: Instant,
    fields: Arc<Fields>,
}

/// The database's measurements and fields, fetched at most every few seconds and
/// shared by the requests of one server. Stale-while-revalidate: when the list is
/// merely old, one request refreshes it and the others go on with the old one; only a
/// name missing from the list makes requests wait for a fresh one.
#[derive(Default)]
pub struct SchemaCache {
    cached: std::sync::Mutex<Option<Cached>>,
    /// Held while a refresh runs, so refreshes never pile up.
    refreshing: Mutex<()>,
}

impl SchemaCache {
    fn snapshot(&self) -> Option<Cached> {
        match self.cached.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The fields of every measurement; refetched when older than a minute, or older
    /// than a few seconds and `wanted` (measurement, field) is not in it.
    pub async fn fields(
        &self,
        state: &AppState,
        wanted: Option<(&str, &str)>,
    ) -> Result<Arc<Fields>, AppError> {
        let has = |fields: &Fields| {
            wanted.is_none_or(|(m, f)| fields.get(m).is_some_and(|fs| fs.contains_key(f)))
        };
        if let Some(c) = self.snapshot() {
            let age = c.at.elapsed();
            if age <= FRESH_FOR && (age <= RECHECK_AFTER || has(&c.fields)) {
                return Ok(c.fields);
            }
            if has(&c.fields) {
                // Old, but it answers this request: refresh only if nobody else is.
                return match self.refreshing.try_lock() {
                    Ok(_refreshing) => self.refresh(state).await,
                    Err(_) => Ok(c.fields),
                };
            }
        }
        let _refreshing = self.refreshing.lock().await;
        // Another request may have refreshed it while this one waited.
        if let Some(c) = self.snapshot() {
            if c.at.elapsed() <= RECHECK_AFTER {
                return Ok(c.fields);
            }
        }
        self.refresh(state).await
    }

    /// Fetch the field list (the caller holds `refreshing`).
    async fn refresh(&self, state: &AppState) -> Result<Arc<Fields>, AppError> {
        let now = now_ms();
        let max = i64::try_from(state.settings.max_range.as_millis()).unwrap_or(i64::MAX);
        let range = TimeRange::new(now.saturating_sub(max), now.saturating_add(1))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let keys = state
            .influx
            .query_field_keys(&FieldKeysQuery {
                measurement: None,
                tags: BTreeMap::new(),
                range,
            })
            .await
            .map_err(|e| query_failed(state, e))?;
        let mut fields = Fields::new();
        for k in keys {
            fields
                .entry(k.measurement)
                .or_default()
                .insert(k.field, k.kind);
        }
        let fields = Arc::new(fields);
        let fresh = Cached {
            at: Instant::now(),
            fields: fields.clone(),
        };
        match self.cached.lock() {
            Ok(mut c) => *c = Some(fresh),
            Err(poisoned) => *poisoned.into_inner() = Some(fresh),
        }
        Ok(fields)
    }
}

/// Fields of a host's business measurements: (measurement, numeric fields).
pub fn business(keys: &[hostscope_core::influx::FieldKey]) -> Vec<(String, Vec<String>)> {
    let mut by_measurement: HashMap<&str, Vec<String>> = HashMap::new();
    for k in keys {
        if BUILTIN.contains(&k.measurement.as_str()) || !k.kind.is_numeric() {
            continue;
        }
        by_measurement
            .entry(k.measurement.as_str())
            .or_default()
            .push(k.field.clone());
    }
    let mut out: Vec<(String, Vec<String>)> = by_measurement
        .into_iter()
        .map(|(m, mut fields)| {
            fields.sort();
            fields.dedup();
            (m.to_owned(), fields)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostscope_core::influx::FieldKey;

    #[test]
    fn registry() {
        assert!(is_counter("net", "bytes_recv"));
        assert!(is_counter("diskio", "weighted_io_time"));
        assert!(is_counter("swap", "out"));
        assert!(!is_counter("swap", "used_percent"));
        assert!(!is_counter("cpu", "usage_idle"));
        assert_eq!(identifying_tags("net"), ["interface"]);
        assert!(identifying_tags("shop").is_empty());
    }

    #[test]
    fn business_measurements() {
        let key = |m: &str, f: &str, kind| FieldKey {
            measurement: m.into(),
            field: f.into(),
            kind,
        };
        let keys = [
            key("cpu", "usage_idle", FieldKind::Float),
            key("shop", "status", FieldKind::String),
            key("shop", "revenue", FieldKind::Float),
            key("shop", "pending", FieldKind::Integer),
            key("queue", "open", FieldKind::Boolean),
            key("alerts", "state", FieldKind::String),
        ];
        assert_eq!(
            business(&keys),
            vec![(
                "shop".to_owned(),
                vec!["pending".to_owned(), "revenue".to_owned()]
            )]
        );
    }
}
