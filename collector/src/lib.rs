//! hostscope-collector: gathers this server's metrics and writes them to InfluxDB in
//! Telegraf's schema.
//!
//! - [`inputs`]: one module per metric family, and the [`inputs::Accumulator`].
//! - [`setup`]: `[collector.inputs.*]` and turning it into scheduled tasks.
//! - [`agent`]: the wall-clock schedule, per-input timeouts, self-metrics.
//! - [`output`] and [`spool`]: writing, buffering and spooling through outages.

pub mod agent;
pub mod inputs;
pub mod output;
pub mod setup;
pub mod spool;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{ConfigErrors, HumanDuration, InfluxConfig, InfluxSettings};
use hostscope_core::influx::Client;
use hostscope_core::Point;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::info;

use crate::agent::Task;
use crate::inputs::{Accumulator, HostPaths};
use crate::output::{Output, OutputSettings, OutputStats};

/// The sections of the configuration file this program reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub influx: InfluxConfig,
    pub collector: CollectorConfig,
}

/// `[collector]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CollectorConfig {
    /// How often to gather, aligned to the wall clock. Default `10s`.
    pub interval: Option<HumanDuration>,
    /// A random delay of up to this much before each cycle, so a fleet does not
    /// gather in lockstep. Timestamps stay aligned. Default `0s`.
    pub jitter: Option<HumanDuration>,
    /// How long one input may take in one cycle. Default: the interval.
    pub timeout: Option<HumanDuration>,
    /// The `host` tag on every point. Default: the system's hostname.
    pub hostname: Option<String>,
    /// Tags added to every point.
    pub tags: BTreeMap<String, String>,
    /// Where the spool and log read offsets are kept. Default `/var/lib/hostscope/collector`.
    pub state_dir: Option<PathBuf>,
    /// Points kept in memory while InfluxDB is unreachable before spilling to the
    /// spool. Default 10000.
    pub buffer_max_points: Option<usize>,
    /// Spool points to disk while InfluxDB is unreachable. Default true.
    pub spool: Option<bool>,
    /// Bound of the spool in MiB; past it the oldest points are dropped. Default 256.
    pub spool_max_mb: Option<u64>,
    /// The host's `/proc`. Default `$HOST_PROC`, else `/proc`.
    pub proc_root: Option<PathBuf>,
    /// The host's `/sys`. Default `$HOST_SYS`, else `/sys`.
    pub sys_root: Option<PathBuf>,
    /// Where the host's root filesystem is mounted (for disk usage from a container).
    /// Default `$HOST_MOUNT_PREFIX`, else none.
    pub mount_prefix: Option<PathBuf>,
    /// `[collector.inputs.*]`: what to gather.
    pub inputs: setup::InputsConfig,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub interval: Duration,
    pub jitter: Duration,
    pub timeout: Duration,
    pub hostname: String,
    pub tags: BTreeMap<String, String>,
    pub state_dir: PathBuf,
    pub output: OutputSettings,
    pub paths: HostPaths,
    pub inputs: setup::InputsConfig,
}

impl ProgramConfig for FileConfig {
    type Settings = Settings;

    fn validate(&self) -> Result<Settings, ConfigErrors> {
        let c = &self.collector;
        let mut errors = ConfigErrors::new("configuration");
        let influx = errors.absorb(self.influx.validate());
        let interval = c.interval.unwrap_or(HumanDuration::from_secs(10)).get();
        if interval < Duration::from_secs(1) {
            errors.push("collector.interval", "must be at least 1s");
        }
        let jitter = c.jitter.unwrap_or_default().get();
        if jitter >= interval {
            errors.push(
                "collector.jitter",
                "must be shorter than collector.interval",
            );
        }
        let timeout = c.timeout.map_or(interval, |t| t.get());
        if timeout.is_zero() || timeout > interval {
            errors.push(
                "collector.timeout",
                "must be more than 0s and at most collector.interval",
            );
        }
        for (k, v) in &c.tags {
            if k.is_empty() || v.is_empty() || k.contains(['\n', '\r']) || v.contains(['\n', '\r'])
            {
                errors.push(
                    format!("collector.tags.{k}"),
                    "tag keys and values must be non-empty single-line text",
                );
            }
        }
        let buffer_max_points = c.buffer_max_points.unwrap_or(10_000);
        if buffer_max_points == 0 {
            errors.push("collector.buffer_max_points", "must be at least 1");
        }
        let state_dir = c
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/hostscope/collector"));
        let env_path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let paths = HostPaths {
            proc_root: c
                .proc_root
                .clone()
                .or_else(|| env_path("HOST_PROC"))
                .unwrap_or_else(|| "/proc".into()),
            sys_root: c
                .sys_root
                .clone()
                .or_else(|| env_path("HOST_SYS"))
                .unwrap_or_else(|| "/sys".into()),
            mount_prefix: c
                .mount_prefix
                .clone()
                .or_else(|| env_path("HOST_MOUNT_PREFIX"))
                .unwrap_or_default(),
        };
        c.inputs.validate("collector.inputs", &mut errors);
        let hostname = match c
            .hostname
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
        {
            Some(h) => h.to_owned(),
            None => system_hostname(&paths),
        };
        let output = OutputSettings {
            buffer_max_points,
            spool_dir: c.spool.unwrap_or(true).then(|| state_dir.join("spool")),
            spool_max_bytes: c.spool_max_mb.unwrap_or(256).saturating_mul(1 << 20),
            shutdown_flush: Duration::from_secs(5),
        };
        match influx {
            Some(influx) if errors.is_empty() => Ok(Settings {
                influx,
                interval,
                jitter,
                timeout,
                hostname,
                tags: c.tags.clone(),
                state_dir,
                output,
                paths,
                inputs: c.inputs.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// The kernel's hostname (the host's, when `proc_root` is the host's `/proc`).
fn system_hostname(paths: &HostPaths) -> String {
    std::fs::read_to_string(paths.proc("sys/kernel/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What a run did, for tests and the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Cycles gathered.
    pub cycles: u64,
}

/// The collector: its inputs, its tags and its settings.
pub struct Collector {
    settings: Settings,
    tasks: Vec<Task>,
    tags: Arc<BTreeMap<String, String>>,
}

impl Collector {
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let tasks = setup::build_tasks(&settings.inputs, &settings.paths, &settings.state_dir)?;
        let mut tags = settings.tags.clone();
        tags.insert("host".to_owned(), settings.hostname.clone());
        Ok(Collector {
            settings,
            tasks,
            tags: Arc::new(tags),
        })
    }

    /// Names of the scheduled inputs.
    pub fn input_names(&self) -> Vec<&str> {
        self.tasks.iter().map(Task::name).collect()
    }

    /// Gather every `interval` and write, until `shutdown` resolves; then flush or
    /// spool everything gathered.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<RunStats> {
        let client = Client::new(self.settings.influx.clone())?;
        let stats = Arc::new(OutputStats::default());
        let output = Output::new(client, self.settings.output.clone(), stats.clone())
            .context("cannot open the spool")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(output::run(output, rx));
        info!(
            message = "hostscope-collector started",
            host = %self.settings.hostname,
            interval = ?self.settings.interval,
            inputs = ?self.input_names(),
        );
        let mut run = RunStats::default();
        tokio::pin!(shutdown);
        loop {
            let tick = agent::next_tick(agent::now_ns(), self.settings.interval);
            let jitter = if self.settings.jitter.is_zero() {
                Duration::ZERO
            } else {
                self.settings.jitter.mul_f64(rand::random::<f64>())
            };
            let wait = Duration::from_nanos((tick - agent::now_ns()).max(0) as u64) + jitter;
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let started = Instant::now();
            let (mut points, reports) =
                agent::gather_all(&mut self.tasks, tick, &self.tags, self.settings.timeout).await;
            let gathered = points.len();
            let mut acc = Accumulator::new(tick, self.tags.clone());
            agent::self_metrics(
                &self.tasks,
                &reports,
                &stats,
                gathered,
                started.elapsed(),
                &mut acc,
            );
            points.extend(acc.into_points());
            run.cycles += 1;
            if tx.send(points).is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
        info!(message = "hostscope-collector stopped", cycles = run.cycles);
        Ok(run)
    }

    /// One cycle for `--once`: two samples about a second apart, so rates and CPU
    /// percentages are real; returns the second sample's points.
    pub async fn once(mut self) -> Vec<Point> {
        let timeout = self.settings.timeout;
        let _ = agent::gather_all(&mut self.tasks, agent::now_ns(), &self.tags, timeout).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (points, _) =
            agent::gather_all(&mut self.tasks, agent::now_ns(), &self.tags, timeout).await;
        points
    }
}

/// Run until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    Collector::new(settings)?.run(shutdown).await.map(|_| ())
}
