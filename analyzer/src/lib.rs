//! hostscope-analyzer: watches the stored metrics, raises alerts and sends reports.
//!
//! So far: configuration and the connection to InfluxDB; detectors, rules and
//! notifications come with the analyzer issue.

pub mod eval;
pub mod lifecycle;
pub mod report;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{ConfigErrors, HumanDuration, InfluxConfig, InfluxSettings};
use hostscope_core::influx::Client;
use serde::Deserialize;

/// The sections of the configuration file this program reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub influx: InfluxConfig,
    pub analyzer: AnalyzerConfig,
}

/// `[analyzer]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnalyzerConfig {
    /// How often rules are evaluated. Default `30s`.
    pub interval: Option<HumanDuration>,
    /// Where alert state, silences and the outbox are kept. Default `/var/lib/hostscope`.
    pub state_dir: Option<PathBuf>,
    /// Scheduled reports (`[[analyzer.reports]]`). Default: none.
    pub reports: Vec<report::ReportConfig>,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub interval: Duration,
    pub state_dir: PathBuf,
    pub reports: Vec<report::ReportSettings>,
}

impl ProgramConfig for FileConfig {
    type Settings = Settings;

    fn validate(&self) -> Result<Settings, ConfigErrors> {
        let mut errors = ConfigErrors::new("configuration");
        let influx = errors.absorb(self.influx.validate());
        let interval = self
            .analyzer
            .interval
            .unwrap_or(HumanDuration::from_secs(30))
            .get();
        if interval < Duration::from_secs(1) {
            errors.push("analyzer.interval", "must be at least 1s");
        }
        let reports = report::schedule::validate(&self.analyzer.reports, &mut errors);
        match influx {
            Some(influx) if errors.is_empty() => Ok(Settings {
                influx,
                interval,
                state_dir: self
                    .analyzer
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/var/lib/hostscope")),
                reports,
            }),
            _ => Err(errors),
        }
    }
}

/// Run until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let client = Client::new(settings.influx)?;
    tracing::info!(message = "hostscope-analyzer started", interval = ?settings.interval);
    let _ = client;
    shutdown.await;
    tracing::info!(message = "hostscope-analyzer stopped");
    Ok(())
}
