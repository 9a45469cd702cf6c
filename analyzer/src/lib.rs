//! hostscope-analyzer: watches the stored metrics, raises alerts and sends reports.
//!
//! So far: configuration and the connection to InfluxDB; detectors, rules and
//! notifications come with the analyzer issue.

pub mod eval;
pub mod lifecycle;
pub mod notify;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{ConfigErrors, HumanDuration, InfluxConfig, InfluxSettings};
use hostscope_core::influx::Client;
use serde::Deserialize;

use notify::{ChannelConfig, Language, NotifyConfig, NotifySettings, SmtpConfig};

/// The sections of the configuration file this program reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub influx: InfluxConfig,
    pub analyzer: AnalyzerConfig,
    pub smtp: Option<SmtpConfig>,
}

/// `[analyzer]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnalyzerConfig {
    /// How often rules are evaluated. Default `30s`.
    pub interval: Option<HumanDuration>,
    /// Where alert state, silences and the outbox are kept. Default `/var/lib/hostscope`.
    pub state_dir: Option<PathBuf>,
    /// Language of notifications and reports: `en` or `zh-CN`. Default `en`.
    pub language: Option<Language>,
    /// The web UI's base URL, e.g. `https://mon.example.com`; notifications link to
    /// the host's page there. Default none (no links).
    pub web_url: Option<String>,
    /// Where notifications go: `[analyzer.channels.<name>]` with a `type`.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// How long a notification is retried before it is given up (logged as an error
    /// and counted). Default `24h`.
    pub outbox_max_age: Option<HumanDuration>,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub interval: Duration,
    pub state_dir: PathBuf,
    /// Channels, `[smtp]`, language and links.
    pub notify: NotifySettings,
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
        let notify = errors.absorb(
            NotifyConfig {
                smtp: self.smtp.as_ref(),
                channels: &self.analyzer.channels,
                language: self.analyzer.language,
                web_url: self.analyzer.web_url.as_deref(),
                outbox_max_age: self.analyzer.outbox_max_age,
            }
            .validate(),
        );
        match (influx, notify) {
            (Some(influx), Some(notify)) if errors.is_empty() => Ok(Settings {
                influx,
                interval,
                state_dir: self
                    .analyzer
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/var/lib/hostscope")),
                notify,
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
