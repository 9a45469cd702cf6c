//! The last reports, kept in `<state_dir>/reports/` for the web's list: per report
//! `<id>.html` (the e-mail's HTML with the charts inlined as `data:` URIs, so it shows
//! in a browser as it is) and `<id>.json` (its [`ReportMeta`]). Both are written to a
//! temporary name, fsynced and renamed, HTML first: a report is listed once its JSON
//! exists. Only the newest `keep` reports stay.
//!
//! Ids are the creation time in unix ms, with `-N` appended when that is taken; any
//! other id is refused before it gets near a path.
//!
//! The stored HTML has inline styles (it is an e-mail): a page serving it should send
//! its own policy, e.g. `Content-Security-Policy: default-src 'none'; img-src data:;
//! style-src 'unsafe-inline'; sandbox`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::data::ReportData;
use super::html::ReportContent;
use super::Language;

/// Reports kept unless configured.
pub const DEFAULT_KEEP: usize = 30;

/// What the list shows of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// `[0-9]+(-[0-9]+)?`
    pub id: String,
    /// The scheduled report's name; `None` for one made on demand.
    pub name: Option<String>,
    /// When it was made, unix ms.
    pub created_ms: i64,
    /// The period, unix ms.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The e-mail's subject, which sums it up.
    pub subject: String,
    pub hosts: usize,
    pub anomalies: usize,
    pub language: Language,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub meta: ReportMeta,
    /// Self-contained HTML (images as `data:` URIs).
    pub html: String,
}

/// Errors of the store; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} is not a report id")]
    InvalidId(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The report directory.
#[derive(Debug)]
pub struct ReportStore {
    dir: PathBuf,
    keep: usize,
    /// Serializes saves, so two reports made at once get distinct ids.
    saving: Mutex<()>,
}

impl ReportStore {
    /// The store in `<state_dir>/reports`, keeping [`DEFAULT_KEEP`] reports.
    pub fn new(state_dir: &Path) -> Self {
        ReportStore {
            dir: state_dir.join("reports"),
            keep: DEFAULT_KEEP,
            saving: Mutex::new(()),
        }
    }

    /// Keep the newest `keep` reports (at least 1).
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a rendered report made at `created_ms`, then drops the oldest beyond
    /// `keep`.
    pub fn save(
        &self,
        created_ms: i64,
        name: Option<&str>,
        language: Language,
        data: &ReportData,
        content: &ReportContent,
    ) -> Result<ReportMeta, StoreError> {
        let _guard = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        // Reserve the id by creating its (empty) HTML file, so another process
        // saving in the same millisecond takes the next one.
        let base = created_ms.max(0).to_string();
        let mut id = base.clone();
        for n in 1.. {
            let html_path = self.html_path(&id);
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&html_path)
            {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&html_path)(e)),
            }
            id = format!("{base}-{n}");
        }
        let meta = ReportMeta {
            id: id.clone(),
            name: name.map(str::to_owned),
            created_ms,
            start_ms: data.range.start_ms,
            end_ms: data.range.end_ms,
            subject: content.subject.clone(),
            hosts: data.hosts.len(),
            anomalies: data.anomaly_count(),
            language,
        };
        let json_path = self.json_path(&id);
        let json = serde_json::to_vec_pretty(&meta).map_err(|source| StoreError::Json {
            path: json_path.clone(),
            source,
        })?;
        write_atomic(&self.html_path(&id), inline_images(content).as_bytes())?;
        write_atomic(&json_path, &json)?;
        self.prune()?;
        Ok(meta)
    }

    /// Every stored report, newest first. A metadata file that cannot be read is
    /// skipped (and logged), so one damaged report does not hide the others.
    pub fn list(&self) -> Result<Vec<ReportMeta>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            let file = entry.file_name();
            let Some(id) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            if valid_id(id).is_none() {
                continue;
            }
            match read_meta(&entry.path()) {
                Ok(meta) if meta.id == id => out.push(meta),
                Ok(_) => {
                    tracing::warn!(message = "report metadata names another id", path = %entry.path().display())
                }
                Err(error) => tracing::warn!(message = "unreadable report metadata", %error),
            }
        }
        out.sort_by_key(|m| std::cmp::Reverse(sort_key(&m.id)));
        Ok(out)
    }

    /// The report `id`: `Ok(None)` when there is none, `Err(InvalidId)` for an id
    /// that could never have been made.
    pub fn load(&self, id: &str) -> Result<Option<StoredReport>, StoreError> {
        if valid_id(id).is_none() {
            return Err(StoreError::InvalidId(id.to_owned()));
        }
        let json_path = self.json_path(id);
        let meta = match read_meta(&json_path) {
            Ok(m) => m,
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let html_path = self.html_path(id);
        let html = match fs::read_to_string(&html_path) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&html_path)(e)),
        };
        Ok(Some(StoredReport { meta, html }))
    }

    fn json_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn html_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.html"))
    }

    /// Removes the oldest reports beyond `keep`: metadata first, so a half-removed
    /// report is never listed.
    /// Drop the oldest beyond `keep`, but never a schedule's newest report: it is how
    /// the scheduler knows, after a restart, which due time it made last.
    fn prune(&self) -> Result<(), StoreError> {
        let mut newest_of = std::collections::BTreeSet::new();
        let list = self.list()?; // newest first
        let doomed: Vec<&ReportMeta> = list
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                let newest = m.name.as_ref().is_some_and(|n| newest_of.insert(n.clone()));
                *i >= self.keep && !newest
            })
            .map(|(_, m)| m)
            .collect();
        for meta in doomed {
            for path in [self.json_path(&meta.id), self.html_path(&meta.id)] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path)(e)),
                }
            }
        }
        Ok(())
    }
}

/// `(ms, n)` of an id made by [`ReportStore::save`]; `None` for anything else.
fn valid_id(id: &str) -> Option<(u64, u32)> {
    let digits = |s: &str, max: usize| {
        (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match id.split_once('-') {
        None => Some((digits(id, 19)?, 0)),
        Some((ms, n)) => Some((digits(ms, 19)?, u32::try_from(digits(n, 9)?).ok()?)),
    }
}

fn sort_key(id: &str) -> (u64, u32) {
    valid_id(id).unwrap_or((0, 0))
}

fn read_meta(path: &Path) -> Result<ReportMeta, StoreError> {
    let bytes = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory: fsync,
/// rename, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("report");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The HTML with every `cid:` image replaced by a `data:` URI of its PNG.
pub fn inline_images(content: &ReportContent) -> String {
    let mut html = content.html.clone();
    for (cid, png) in &content.images {
        html = html.replace(
            &format!("src=\"cid:{cid}\""),
            &format!("src=\"data:image/png;base64,{}\"", base64(png)),
        );
    }
    html
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostscope_core::influx::TimeRange;

    fn content(subject: &str) -> ReportContent {
        ReportContent {
            subject: subject.to_owned(),
            text: String::new(),
            html: "<img src=\"cid:chart-0@hostscope\"><img src=\"cid:chart-1@hostscope\">"
                .to_owned(),
            images: vec![
                ("chart-0@hostscope".to_owned(), b"\x89PNG-a".to_vec()),
                ("chart-1@hostscope".to_owned(), b"\x89PNG-b".to_vec()),
            ],
        }
    }

    fn data() -> ReportData {
        ReportData {
            range: TimeRange::new(1000, 2000).unwrap(),
            step_ms: 60_000,
            hosts: vec![],
        }
    }

    #[test]
    fn save_list_load_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::new(dir.path()).with_keep(3);
        assert_eq!(store.list().unwrap(), vec![]);
        let mut ids = Vec::new();
        for (i, t) in [5_000, 5_000, 7_000, 9_000, 8_000].iter().enumerate() {
            let meta = store
                .save(
                    *t,
                    Some("daily"),
                    Language::En,
                    &data(),
                    &content(&format!("s{i}")),
                )
                .unwrap();
            ids.push(meta.id);
        }
        assert_eq!(ids, ["5000", "5000-1", "7000", "9000", "8000"]);
        let listed: Vec<String> = store.list().unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(listed, ["9000", "8000", "7000"]);
        assert!(store.load("5000").unwrap().is_none());
        assert!(!dir.path().join("reports/5000-1.html").exists());
        let r = store.load("8000").unwrap().unwrap();
        assert_eq!(r.meta.subject, "s4");
        assert_eq!(r.meta.name.as_deref(), Some("daily"));
        assert_eq!(
            r.html,
            format!(
                "<img src=\"data:image/png;base64,{}\"><img src=\"data:image/png;base64,{}\">",
                base64(b"\x89PNG-a"),
                base64(b"\x89PNG-b")
            )
        );
        // No temporary files left behind.
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        // A damaged metadata file is skipped.
        fs::write(store.dir().join("1.json"), "{").unwrap();
        assert_eq!(store.list().unwrap().len(), 3);
        assert!(matches!(store.load("1"), Err(StoreError::Json { .. })));
    }

    #[test]
    fn each_schedules_newest_report_outlives_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::new(dir.path()).with_keep(2);
        let save = |t: i64, name: Option<&str>| {
            store
                .save(t, name, Language::En, &data(), &content("s"))
                .unwrap()
                .id
        };
        save(1_000, Some("weekly"));
        save(2_000, Some("weekly"));
        for t in 3..8 {
            save(t * 1_000, Some("hourly"));
        }
        save(9_000, None);
        let listed: Vec<String> = store.list().unwrap().into_iter().map(|m| m.id).collect();
        // The newest two, and the weekly schedule's newest.
        assert_eq!(listed, ["9000", "7000", "2000"]);
    }

    #[test]
    fn hostile_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("secret.json"), "{}").unwrap();
        let store = ReportStore::new(dir.path());
        store
            .save(1, None, Language::ZhCn, &data(), &content("x"))
            .unwrap();
        for bad in [
            "",
            "..",
            "../secret",
            "../reports/1",
            "/etc/passwd",
            "1/../1",
            "1.json",
            "1\0",
            "-1",
            "1-",
            "1--2",
            "1-2-3",
            "１",
            " 1",
            "12345678901234567890",
            "%2e%2e",
            "1\\..\\1",
        ] {
            assert!(
                matches!(store.load(bad), Err(StoreError::InvalidId(_))),
                "{bad:?}"
            );
        }
        assert!(store.load("1").unwrap().is_some());
        assert!(store.load("2").unwrap().is_none());
        assert!(store.load("1-1").unwrap().is_none());
    }

    #[test]
    fn base64_vectors() {
        for (raw, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), want);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }
}
