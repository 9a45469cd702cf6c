//! The outbox: every (notification, channel) delivery waits here, on disk, until it is
//! delivered or given up after `max_age` (with an error log and a counter). Nothing is
//! dropped silently.
//!
//! One JSON file per delivery in `<state_dir>/outbox/`, named
//! `<created ms:013>-<seq:06>-<random:08x>.json` so names sort in queueing order.
//! Each file is written to a temporary name, synced and renamed into place, and the
//! directory is synced before [`Outbox::enqueue`] returns, so a queued delivery
//! survives a crash. A retry rewrites its file the same way. A crash between a
//! successful send and the file's removal sends that message again after the restart:
//! delivery is at least once, exactly once when nothing crashes.
//!
//! Events are queued once per channel: an event (alert id, kind, time, severity)
//! already waiting, or sent or given up within [`NOTIFIED_KEPT`], is left out of a
//! later [`Outbox::enqueue`]. So when the analyzer crashes after queuing a group but
//! before saving its state, and judges the same steps again after the restart, nothing
//! is sent twice. What was sent is remembered in `<state_dir>/notified/`, one small
//! file per (channel, event) holding when, synced before the delivery's own file is
//! removed. A nodata alert's steps are wall-clock time, so its events are keyed by the
//! host's last point (`anchor_ms`) instead.
//!
//! Time comes from the caller (`now_ms`), so tests need no sleeping.
//!
//! Retries: after the n-th failure the next attempt is `initial_backoff · 2^(n-1)`
//! later, at most `max_backoff`, each with ±20% jitter. Within one
//! [`Outbox::deliver_due`] pass, a channel that failed is not tried again: its other
//! due deliveries wait for the next pass, so a dead server costs one timeout per pass,
//! not one per message.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::RetryPolicy;
use super::{AlertEvent, EventKind, Notification, Notifier, NotifyError};
use crate::state::stable_id;

const FILE_VERSION: u32 = 1;

/// How long a sent event is remembered, so that it is not queued again.
pub const NOTIFIED_KEPT: Duration = Duration::from_secs(48 * 3600);

/// The key of `event` on `channel`: what makes it the same delivery again. Firing and
/// resolution are keyed by their data time (`anchor_ms` where the step is wall-clock
/// time); reminders by when they were due, each its own.
fn event_key(channel: &str, event: &AlertEvent) -> String {
    let kind = serde_json::to_string(&event.kind).unwrap_or_default();
    let severity = serde_json::to_string(&event.severity).unwrap_or_default();
    let at = match event.kind {
        EventKind::Reminder => event.at_ms,
        EventKind::Firing | EventKind::Resolved => event.anchor_ms.unwrap_or(event.at_ms),
    }
    .to_string();
    stable_id(&[channel, &event.id, &kind, &at, &severity])
}

/// What is on disk for one delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    version: u32,
    channel: String,
    created_ms: i64,
    attempts: u32,
    next_attempt_ms: i64,
    #[serde(default)]
    last_error: Option<String>,
    notification: Notification,
}

/// What the index keeps in memory for one delivery.
#[derive(Debug, Clone)]
struct Meta {
    channel: String,
    next_attempt_ms: i64,
}

/// Counters for `hostscope_internal` self-metrics; totals since the outbox was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    /// Deliveries waiting now (a gauge).
    pub pending: u64,
    /// Deliveries queued.
    pub enqueued: u64,
    /// Deliveries sent.
    pub sent: u64,
    /// Attempts that failed (a delivery may fail several times).
    pub failed_attempts: u64,
    /// Deliveries given up after `max_age`, or whose file could not be read.
    pub dropped: u64,
}

/// What one [`Outbox::deliver_due`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Delivered and removed.
    pub sent: usize,
    /// Failed and rescheduled.
    pub failed: usize,
    /// Given up (past `max_age`) or unreadable.
    pub dropped: usize,
    /// Still waiting after the pass.
    pub pending: usize,
    /// The earliest next attempt among those waiting.
    pub next_attempt_ms: Option<i64>,
    /// (channel, error) of each failed attempt, for the caller's logs.
    pub errors: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Index {
    pending: BTreeMap<String, Meta>,
    /// Keys of the events waiting, sent or given up (see [`event_key`]).
    queued: BTreeSet<String>,
    /// When `<state_dir>/notified` was last pruned (unix ms); `None` until the first
    /// delivery after opening (which does not prune: right after a restart is when
    /// the keys matter most).
    pruned_ms: Option<i64>,
    next_seq: u64,
    stats: OutboxStats,
}

/// Durable queue of deliveries. Share it behind an `Arc`: `enqueue` may run while a
/// `deliver_due` pass is waiting on the network.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    /// `<state_dir>/notified`: one file per event sent or given up.
    notified: PathBuf,
    index: Mutex<Index>,
    /// One delivery pass at a time, so no message is sent twice concurrently.
    pass: tokio::sync::Mutex<()>,
}

impl Outbox {
    /// Open (creating) `<state_dir>/outbox` and index what a previous run left.
    /// Temporary files of an unfinished write are removed: their `enqueue` never
    /// returned.
    pub fn open(state_dir: &Path) -> Result<Self, NotifyError> {
        let dir = state_dir.join("outbox");
        fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let notified = state_dir.join("notified");
        let mut index = Index {
            queued: load_notified(&notified)?,
            ..Index::default()
        };
        let listing = fs::read_dir(&dir).map_err(io(format!("cannot list {}", dir.display())))?;
        for entry in listing {
            let entry = entry.map_err(io(format!("cannot list {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            match read_entry(&path) {
                Ok(e) => {
                    for event in &e.notification.events {
                        index.queued.insert(event_key(&e.channel, event));
                    }
                    index.pending.insert(
                        id.to_owned(),
                        Meta {
                            channel: e.channel,
                            next_attempt_ms: e.next_attempt_ms,
                        },
                    );
                }
                Err(error) => quarantine(&path, &error, &mut index.stats),
            }
        }
        index.stats.pending = index.pending.len() as u64;
        Ok(Outbox {
            dir,
            notified,
            index: Mutex::new(index),
            pass: tokio::sync::Mutex::new(()),
        })
    }

    /// The directory the delivery files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated in a way
        // that matters (every update is one insert or remove), so keep going.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue `n` for each of `channels` (duplicates once), due now, without the events
    /// already queued on that channel (none left: nothing is queued there). On disk
    /// before this returns. Returns the deliveries' ids.
    pub fn enqueue(
        &self,
        n: &Notification,
        channels: &[String],
        now_ms: i64,
    ) -> Result<Vec<String>, NotifyError> {
        let mut seen = BTreeSet::new();
        let mut written: Vec<(String, String)> = Vec::new();
        let mut keys = Vec::new();
        for channel in channels {
            if !seen.insert(channel.as_str()) {
                continue;
            }
            let events: Vec<AlertEvent> = {
                let index = self.lock();
                n.events
                    .iter()
                    .filter(|e| !index.queued.contains(&event_key(channel, e)))
                    .cloned()
                    .collect()
            };
            if events.is_empty() {
                tracing::info!(message = "notification already queued; not queued again", channel = %channel, group = %n.group);
                continue;
            }
            let seq = {
                let mut index = self.lock();
                index.next_seq += 1;
                index.next_seq
            };
            let id = format!(
                "{:013}-{:06}-{:08x}",
                now_ms.max(0),
                seq % 1_000_000,
                rand::random::<u32>()
            );
            let entry = Entry {
                version: FILE_VERSION,
                channel: channel.clone(),
                created_ms: now_ms,
                attempts: 0,
                next_attempt_ms: now_ms,
                last_error: None,
                notification: Notification {
                    group: n.group.clone(),
                    events,
                },
            };
            if let Err(e) = self.write_entry(&id, &entry) {
                // Leave nothing half-queued: the caller sees the error and may retry
                // the whole notification.
                for (id, _) in &written {
                    let _ = fs::remove_file(self.path(id));
                }
                return Err(e);
            }
            for e in &entry.notification.events {
                keys.push(event_key(channel, e));
            }
            written.push((id, channel.clone()));
        }
        if written.is_empty() {
            return Ok(Vec::new());
        }
        sync_dir(&self.dir)?;
        let mut index = self.lock();
        index.queued.extend(keys);
        for (id, channel) in &written {
            index.pending.insert(
                id.clone(),
                Meta {
                    channel: channel.clone(),
                    next_attempt_ms: now_ms,
                },
            );
        }
        index.stats.enqueued += written.len() as u64;
        index.stats.pending = index.pending.len() as u64;
        Ok(written.into_iter().map(|(id, _)| id).collect())
    }

    /// Send every delivery whose next attempt is due at `now_ms`, oldest first. Retry
    /// timing and the max age come from `notifier.settings().retry`.
    pub async fn deliver_due(&self, now_ms: i64, notifier: &Notifier) -> DeliveryReport {
        let _pass = self.pass.lock().await;
        let policy = &notifier.settings().retry;
        let due: Vec<(String, String)> = self
            .lock()
            .pending
            .iter()
            .filter(|(_, m)| m.next_attempt_ms <= now_ms)
            .map(|(id, m)| (id.clone(), m.channel.clone()))
            .collect();
        let mut report = DeliveryReport::default();
        let mut failed_channels = BTreeSet::new();
        for (id, channel) in due {
            if failed_channels.contains(&channel) {
                continue;
            }
            let path = self.path(&id);
            let mut entry = match read_entry(&path) {
                Ok(e) => e,
                Err(error) => {
                    let mut index = self.lock();
                    index.pending.remove(&id);
                    if path.exists() {
                        quarantine(&path, &error, &mut index.stats);
                        report.dropped += 1;
                    }
                    continue;
                }
            };
            match notifier.send(&channel, &entry.notification, now_ms).await {
                Ok(()) => {
                    self.remember(&entry, now_ms);
                    if let Err(error) = fs::remove_file(&path) {
                        // It would be sent again after a restart; say so.
                        tracing::error!(message = "notification sent, but its outbox file could not be removed", file = %path.display(), %error);
                    }
                    tracing::info!(message = "notification sent", channel = %channel, group = %entry.notification.group, events = entry.notification.events.len(), attempts = entry.attempts + 1);
                    let mut index = self.lock();
                    index.pending.remove(&id);
                    index.stats.sent += 1;
                    report.sent += 1;
                }
                Err(error) => {
                    let text = error.to_string();
                    failed_channels.insert(channel.clone());
                    report.errors.push((channel.clone(), text.clone()));
                    entry.attempts += 1;
                    entry.last_error = Some(text.clone());
                    let age = now_ms.saturating_sub(entry.created_ms);
                    let max_age = i64::try_from(policy.max_age.as_millis()).unwrap_or(i64::MAX);
                    if age >= max_age {
                        tracing::error!(message = "notification given up: still failing after the outbox's max age", channel = %channel, group = %entry.notification.group, events = entry.notification.events.len(), attempts = entry.attempts, age_s = age / 1000, last_error = %text);
                        self.remember(&entry, now_ms);
                        let _ = fs::remove_file(&path);
                        let mut index = self.lock();
                        index.pending.remove(&id);
                        index.stats.failed_attempts += 1;
                        index.stats.dropped += 1;
                        report.dropped += 1;
                        continue;
                    }
                    let delay = backoff(policy, entry.attempts);
                    entry.next_attempt_ms = now_ms.saturating_add(delay);
                    tracing::warn!(message = "notification failed; will retry", channel = %channel, group = %entry.notification.group, attempts = entry.attempts, retry_in_s = delay / 1000, error = %text);
                    if let Err(e) = self.write_entry(&id, &entry) {
                        // The old file stays: the delivery is retried as due, sooner
                        // than planned, which loses nothing.
                        tracing::error!(message = "cannot reschedule a notification in the outbox", error = %e);
                    }
                    let mut index = self.lock();
                    if let Some(meta) = index.pending.get_mut(&id) {
                        meta.next_attempt_ms = entry.next_attempt_ms;
                    }
                    index.stats.failed_attempts += 1;
                    report.failed += 1;
                }
            }
        }
        let mut index = self.lock();
        index.stats.pending = index.pending.len() as u64;
        report.pending = index.pending.len();
        report.next_attempt_ms = index.pending.values().map(|m| m.next_attempt_ms).min();
        report
    }

    /// The earliest time a waiting delivery is due, if any.
    pub fn next_attempt_ms(&self) -> Option<i64> {
        self.lock()
            .pending
            .values()
            .map(|m| m.next_attempt_ms)
            .min()
    }

    /// Deliveries waiting now.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> OutboxStats {
        self.lock().stats
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Note `entry`'s events as done (sent or given up), before its file goes, and
    /// forget those older than [`NOTIFIED_KEPT`]. A failure is logged: the worst it
    /// can do is let a replay after a crash send an event again.
    fn remember(&self, entry: &Entry, now_ms: i64) {
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(&self.notified)?;
            for e in &entry.notification.events {
                let key = event_key(&entry.channel, e);
                let mut f = fs::File::create(self.notified.join(&key))?;
                f.write_all(now_ms.to_string().as_bytes())?;
                f.sync_all()?;
            }
            fs::File::open(&self.notified)?.sync_all()
        };
        if let Err(error) = write() {
            tracing::warn!(message = "cannot note a sent notification; a replay after a crash could send it again", dir = %self.notified.display(), %error);
        }
        // At most once an hour: pruning reads every file.
        {
            let mut index = self.lock();
            let due = index.pruned_ms.is_some_and(|at| now_ms - at >= 3_600_000);
            if index.pruned_ms.is_none() || due {
                index.pruned_ms = Some(now_ms);
            }
            if !due {
                return;
            }
        }
        let kept = i64::try_from(NOTIFIED_KEPT.as_millis()).unwrap_or(i64::MAX);
        let forgotten = prune_notified(&self.notified, now_ms.saturating_sub(kept));
        let mut index = self.lock();
        for key in &forgotten {
            index.queued.remove(key);
        }
    }

    fn write_entry(&self, id: &str, entry: &Entry) -> Result<(), NotifyError> {
        let path = self.path(id);
        let tmp = self.dir.join(format!("{id}.json.tmp"));
        let bytes = serde_json::to_vec(entry).map_err(|e| NotifyError::Io {
            context: format!("cannot encode {}", path.display()),
            source: std::io::Error::other(e),
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            NotifyError::Io {
                context: format!("cannot write {}", path.display()),
                source: e,
            }
        })
    }
}

/// The keys in `dir` (none if it does not exist yet).
fn load_notified(dir: &Path) -> Result<BTreeSet<String>, NotifyError> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(io(format!("cannot list {}", dir.display()))(e)),
    };
    let mut keys = BTreeSet::new();
    for entry in listing {
        let entry = entry.map_err(io(format!("cannot list {}", dir.display())))?;
        keys.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(keys)
}

/// Remove the keys in `dir` noted before `cutoff_ms` (the time written in each file,
/// or its modification time if that cannot be read); returns them.
fn prune_notified(dir: &Path, cutoff_ms: i64) -> Vec<String> {
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut gone = Vec::new();
    for entry in listing.flatten() {
        let written = fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok());
        let modified = || {
            let m = entry.metadata().ok()?.modified().ok()?;
            let ms = m.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
            i64::try_from(ms).ok()
        };
        let Some(at) = written.or_else(modified) else {
            continue;
        };
        if at < cutoff_ms && fs::remove_file(entry.path()).is_ok() {
            gone.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    gone
}

/// Milliseconds to wait after the `attempts`-th failure.
fn backoff(policy: &RetryPolicy, attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(30);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    let ms = Duration::from_secs_f64(base.as_secs_f64() * jitter).as_millis();
    i64::try_from(ms).unwrap_or(i64::MAX).max(1)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> NotifyError {
    move |source| NotifyError::Io { context, source }
}

fn sync_dir(dir: &Path) -> Result<(), NotifyError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

fn read_entry(path: &Path) -> Result<Entry, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if entry.version != FILE_VERSION {
        return Err(format!("unknown file version {}", entry.version));
    }
    Ok(entry)
}

/// Keep an unreadable file for a person to look at (`.corrupt`), log it, count it.
fn quarantine(path: &Path, error: &str, stats: &mut OutboxStats) {
    let target = path.with_extension("json.corrupt");
    let moved = fs::rename(path, &target).is_ok();
    tracing::error!(message = "unreadable notification in the outbox; moved aside, not sent", file = %path.display(), moved_to = %if moved { target.display().to_string() } else { "(could not move)".into() }, %error);
    stats.dropped += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_forgets_only_what_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000;
        let now = 10 * day;
        fs::write(dir.path().join("old"), (now - 3 * day).to_string()).unwrap();
        fs::write(dir.path().join("recent"), (now - day).to_string()).unwrap();
        // Unreadable (a torn write): judged by its modification time, which is now.
        fs::write(dir.path().join("torn"), "").unwrap();
        let real_now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        assert_eq!(prune_notified(dir.path(), now - 2 * day), ["old"]);
        assert_eq!(prune_notified(dir.path(), real_now - day), ["recent"]);
        assert_eq!(
            load_notified(dir.path()).unwrap(),
            BTreeSet::from(["torn".to_owned()])
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        for (attempts, base_s) in [(1, 30), (2, 60), (3, 120), (7, 1800), (40, 1800)] {
            for _ in 0..20 {
                let ms = backoff(&p, attempts);
                let base = base_s as f64 * 1000.0;
                assert!(
                    (base * 0.8..=base * 1.2).contains(&(ms as f64)),
                    "{attempts}: {ms}"
                );
            }
        }
    }
}
