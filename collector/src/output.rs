//! The output: hands points to InfluxDB, and keeps them while it cannot.
//!
//! Points arrive once per cycle into a memory buffer. Each flush first replays the
//! spool (oldest first), then the buffer, so points reach InfluxDB in time order.
//! When a flush fails and the buffer is over its bound, the buffer is spilled to the
//! spool; when the spool is over its bound, its oldest segments are dropped and
//! counted. Without a spool the oldest buffered points are dropped and counted.
//! Re-sending a point InfluxDB already has is harmless (same series and time
//! replaces itself), so a failure part-way through a batch is simply retried.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostscope_core::influx::{Client, InfluxError};
use hostscope_core::Point;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::spool::Spool;

/// How the output keeps points during an outage.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    /// Points kept in memory before spilling to the spool (or dropping the oldest).
    pub buffer_max_points: usize,
    /// Where to spool; `None` keeps points in memory only.
    pub spool_dir: Option<PathBuf>,
    /// Bound of the spool in bytes.
    pub spool_max_bytes: u64,
    /// How long a clean shutdown may spend flushing before it spools the rest.
    pub shutdown_flush: Duration,
}

/// Counters the collector reports as `hostscope_internal`.
#[derive(Debug, Default)]
pub struct OutputStats {
    pub written: AtomicU64,
    pub rejected: AtomicU64,
    pub spooled: AtomicU64,
    pub dropped: AtomicU64,
    pub write_errors: AtomicU64,
    pub last_write_micros: AtomicU64,
    pub buffered: AtomicU64,
    pub spool_points: AtomicU64,
}

impl OutputStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub struct Output {
    client: Client,
    settings: OutputSettings,
    buffer: VecDeque<Point>,
    spool: Option<Spool>,
    stats: Arc<OutputStats>,
    /// Cleared when a write says the database is missing (it may have been dropped).
    database_checked: AtomicBool,
}

impl Output {
    pub fn new(
        client: Client,
        settings: OutputSettings,
        stats: Arc<OutputStats>,
    ) -> anyhow::Result<Self> {
        let spool = match &settings.spool_dir {
            Some(dir) => {
                let spool = Spool::open(dir, settings.spool_max_bytes)?;
                if !spool.is_empty() {
                    info!(
                        message = "spool holds points from an earlier run; replaying them first",
                        points = spool.points()
                    );
                }
                Some(spool)
            }
            None => None,
        };
        let output = Output {
            client,
            settings,
            buffer: VecDeque::new(),
            spool,
            stats,
            database_checked: AtomicBool::new(false),
        };
        output.publish_levels();
        Ok(output)
    }

    fn publish_levels(&self) {
        self.stats
            .buffered
            .store(self.buffer.len() as u64, Ordering::Relaxed);
        let spooled = self.spool.as_ref().map_or(0, |s| s.points());
        self.stats.spool_points.store(spooled, Ordering::Relaxed);
    }

    /// Take a cycle's points. Without a spool, the memory bound is enforced here.
    pub fn accept(&mut self, points: Vec<Point>) {
        self.buffer.extend(points);
        if self.spool.is_none() && self.buffer.len() > self.settings.buffer_max_points {
            let excess = self.buffer.len() - self.settings.buffer_max_points;
            self.buffer.drain(..excess);
            OutputStats::add(&self.stats.dropped, excess as u64);
            warn!(
                message = "memory buffer full and no spool configured; dropped the oldest points",
                points = excess
            );
        }
        self.publish_levels();
    }

    /// Write the spool, then the buffer. Returns whether everything was written.
    pub async fn flush(&mut self) -> bool {
        if !self.database_checked.load(Ordering::Relaxed) {
            match self.client.ensure_database().await {
                Ok(()) => self.database_checked.store(true, Ordering::Relaxed),
                Err(error) => {
                    warn!(message = "cannot reach or prepare InfluxDB; keeping points", %error);
                    OutputStats::add(&self.stats.write_errors, 1);
                    self.after_failure();
                    self.publish_levels();
                    return false;
                }
            }
        }
        let ok = self.flush_spool().await && self.flush_buffer().await;
        if !ok {
            self.after_failure();
        }
        self.publish_levels();
        ok
    }

    async fn flush_spool(&mut self) -> bool {
        loop {
            let Some(spool) = self.spool.as_mut() else {
                return true;
            };
            let (points, bad) = match spool.read_oldest() {
                Ok(Some(x)) => x,
                Ok(None) => return true,
                Err(error) => {
                    // An unreadable segment would block the spool forever: drop it.
                    warn!(message = "cannot read a spool segment; dropping it", %error);
                    let lost = spool.oldest().map_or(0, |s| s.points);
                    OutputStats::add(&self.stats.dropped, lost);
                    let _ = spool.pop_oldest();
                    continue;
                }
            };
            OutputStats::add(&self.stats.dropped, bad);
            if !write_slice(&self.client, &self.stats, &self.database_checked, &points)
                .await
                .0
            {
                return false;
            }
            if let Some(spool) = self.spool.as_mut() {
                if let Err(error) = spool.pop_oldest() {
                    warn!(message = "cannot remove a replayed spool segment", %error);
                    return false;
                }
            }
        }
    }

    async fn flush_buffer(&mut self) -> bool {
        if self.buffer.is_empty() {
            return true;
        }
        // Borrow the buffer and the writer's parts separately: the buffer is never
        // moved out, so a flush cancelled by the shutdown timeout loses nothing.
        let points = self.buffer.make_contiguous();
        let (ok, settled) =
            write_slice(&self.client, &self.stats, &self.database_checked, points).await;
        self.buffer.drain(..settled);
        ok
    }

    /// After a failed flush: past the memory bound, spill the buffer to the spool.
    fn after_failure(&mut self) {
        if self.buffer.len() <= self.settings.buffer_max_points {
            return;
        }
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let points: Vec<Point> = self.buffer.drain(..).collect();
        match spool.spill(&points) {
            Ok(dropped) => {
                OutputStats::add(&self.stats.spooled, points.len() as u64);
                OutputStats::add(&self.stats.dropped, dropped);
            }
            Err(error) => {
                warn!(message = "cannot spool; keeping points in memory", %error);
                self.buffer = points.into();
                let excess = self
                    .buffer
                    .len()
                    .saturating_sub(self.settings.buffer_max_points);
                self.buffer.drain(..excess);
                OutputStats::add(&self.stats.dropped, excess as u64);
            }
        }
    }

    /// Clean shutdown: flush within the configured time, then spool what is left.
    pub async fn close(mut self) {
        let deadline = self.settings.shutdown_flush;
        let flushed = tokio::time::timeout(deadline, self.flush())
            .await
            .unwrap_or(false);
        if flushed || self.buffer.is_empty() {
            self.publish_levels();
            return;
        }
        let points: Vec<Point> = self.buffer.drain(..).collect();
        match self.spool.as_mut() {
            Some(spool) => match spool.spill(&points) {
                Ok(dropped) => {
                    OutputStats::add(&self.stats.spooled, points.len() as u64);
                    OutputStats::add(&self.stats.dropped, dropped);
                    info!(
                        message = "InfluxDB unreachable at shutdown; spooled the remaining points",
                        points = points.len()
                    );
                }
                Err(error) => {
                    OutputStats::add(&self.stats.dropped, points.len() as u64);
                    warn!(message = "cannot spool at shutdown; points lost", points = points.len(), %error);
                }
            },
            None => {
                OutputStats::add(&self.stats.dropped, points.len() as u64);
                warn!(
                    message =
                        "InfluxDB unreachable at shutdown and no spool configured; points lost",
                    points = points.len()
                );
            }
        }
        self.publish_levels();
    }
}

/// Write points; returns (all written, how many leading points are settled).
async fn write_slice(
    client: &Client,
    stats: &OutputStats,
    database_checked: &AtomicBool,
    points: &[Point],
) -> (bool, usize) {
    let started = Instant::now();
    let result = client.write_points(points).await;
    stats
        .last_write_micros
        .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    match result {
        Ok(report) => {
            OutputStats::add(&stats.written, report.written as u64);
            OutputStats::add(&stats.rejected, report.rejected.len() as u64);
            (true, points.len())
        }
        Err(failure) => {
            OutputStats::add(&stats.written, failure.report.written as u64);
            OutputStats::add(&stats.rejected, failure.report.rejected.len() as u64);
            OutputStats::add(&stats.write_errors, 1);
            warn!(message = "write to InfluxDB failed; keeping the unwritten points", error = %failure.error, unwritten = points.len() - failure.first_unwritten);
            if let InfluxError::Api { status: 404, .. } = failure.error {
                database_checked.store(false, Ordering::Relaxed);
            }
            (false, failure.first_unwritten)
        }
    }
}

/// The output task: take each cycle's points, flush, and on channel close shut down
/// cleanly.
pub async fn run(mut output: Output, mut rx: mpsc::UnboundedReceiver<Vec<Point>>) {
    while let Some(points) = rx.recv().await {
        output.accept(points);
        while let Ok(more) = rx.try_recv() {
            output.accept(more);
        }
        output.flush().await;
    }
    output.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostscope_core::config::{InfluxSettings, VersionSetting};

    fn points(n: usize) -> Vec<Point> {
        (0..n)
            .map(|i| {
                Point::builder("cpu")
                    .tag("cpu", "cpu-total")
                    .field("usage_user", i as f64)
                    .timestamp(1_000_000_000 * (i as i64 + 1))
                    .build()
                    .unwrap()
            })
            .collect()
    }

    /// A client of a port nothing listens on: every request is refused at once.
    fn unreachable() -> Client {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = InfluxSettings::new(
            format!("http://127.0.0.1:{port}").parse().unwrap(),
            VersionSetting::V1,
        );
        s.max_retries = 0;
        Client::new(s).unwrap()
    }

    fn settings(dir: Option<&std::path::Path>, buffer: usize) -> OutputSettings {
        OutputSettings {
            buffer_max_points: buffer,
            spool_dir: dir.map(|d| d.join("spool")),
            spool_max_bytes: 1 << 20,
            shutdown_flush: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn a_clean_shutdown_spools_what_it_could_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(OutputStats::default());
        let mut out = Output::new(
            unreachable(),
            settings(Some(dir.path()), 100),
            stats.clone(),
        )
        .unwrap();
        out.accept(points(7));
        assert!(!out.flush().await);
        out.close().await;
        assert_eq!(stats.spooled.load(Ordering::Relaxed), 7);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
        let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
        assert_eq!(spool.read_oldest().unwrap().unwrap().0, points(7));
    }

    #[tokio::test]
    async fn without_a_spool_the_oldest_are_dropped_and_counted() {
        let stats = Arc::new(OutputStats::default());
        let mut out = Output::new(unreachable(), settings(None, 5), stats.clone()).unwrap();
        out.accept(points(3));
        out.accept(points(4));
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(stats.buffered.load(Ordering::Relaxed), 5);
        out.close().await;
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 7);
    }

    #[tokio::test]
    async fn past_the_memory_bound_a_failed_flush_spills() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(OutputStats::default());
        let mut out =
            Output::new(unreachable(), settings(Some(dir.path()), 4), stats.clone()).unwrap();
        out.accept(points(3));
        out.flush().await;
        assert_eq!(
            stats.spooled.load(Ordering::Relaxed),
            0,
            "under the bound: stays in memory"
        );
        out.accept(points(3));
        out.flush().await;
        assert_eq!(stats.spooled.load(Ordering::Relaxed), 6);
        assert_eq!(stats.buffered.load(Ordering::Relaxed), 0);
        assert_eq!(stats.spool_points.load(Ordering::Relaxed), 6);
    }
}
