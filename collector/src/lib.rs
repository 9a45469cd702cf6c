//! hostscope-collector: gathers this server's metrics and writes them to InfluxDB.
//!
//! So far: configuration and the connection to InfluxDB; the inputs come with the
//! collector issue.

use std::collections::BTreeMap;
use std::future::Future;
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
    pub collector: CollectorConfig,
}

/// `[collector]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CollectorConfig {
    /// How often to gather, aligned to the wall clock. Default `10s`.
    pub interval: Option<HumanDuration>,
    /// The `host` tag on every point. Default: the system's hostname.
    pub hostname: Option<String>,
    /// Tags added to every point.
    pub tags: BTreeMap<String, String>,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub interval: Duration,
    pub hostname: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl ProgramConfig for FileConfig {
    type Settings = Settings;

    fn validate(&self) -> Result<Settings, ConfigErrors> {
        let mut errors = ConfigErrors::new("configuration");
        let influx = errors.absorb(self.influx.validate());
        let interval = self
            .collector
            .interval
            .unwrap_or(HumanDuration::from_secs(10))
            .get();
        if interval < Duration::from_secs(1) {
            errors.push("collector.interval", "must be at least 1s");
        }
        for (k, v) in &self.collector.tags {
            if k.is_empty() || v.is_empty() || k.contains(['\n', '\r']) || v.contains(['\n', '\r'])
            {
                errors.push(
                    format!("collector.tags.{k}"),
                    "tag keys and values must be non-empty single-line text",
                );
            }
        }
        match influx {
            Some(influx) if errors.is_empty() => Ok(Settings {
                influx,
                interval,
                hostname: self
                    .collector
                    .hostname
                    .clone()
                    .filter(|h| !h.trim().is_empty()),
                tags: self.collector.tags.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// Run until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let client = Client::new(settings.influx)?;
    tracing::info!(message = "hostscope-collector started", interval = ?settings.interval);
    let _ = client;
    shutdown.await;
    tracing::info!(message = "hostscope-collector stopped");
    Ok(())
}
