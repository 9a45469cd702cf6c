//! hostscope-web: dashboards and the JSON API.
//!
//! So far: configuration and the connection to InfluxDB; the server comes with the
//! web issue.

use std::future::Future;
use std::net::SocketAddr;

use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{ConfigErrors, InfluxConfig, InfluxSettings};
use hostscope_core::influx::Client;
use serde::Deserialize;

/// The sections of the configuration file this program reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub influx: InfluxConfig,
    pub web: WebConfig,
}

/// `[web]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub listen: SocketAddr,
}

impl ProgramConfig for FileConfig {
    type Settings = Settings;

    fn validate(&self) -> Result<Settings, ConfigErrors> {
        let mut errors = ConfigErrors::new("configuration");
        let influx = errors.absorb(self.influx.validate());
        let listen_text = self.web.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse::<SocketAddr>().map_err(|e| {
            errors.push(
                "web.listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:8080: {e}"),
            );
        });
        match (influx, listen) {
            (Some(influx), Ok(listen)) if errors.is_empty() => Ok(Settings { influx, listen }),
            _ => Err(errors),
        }
    }
}

/// Run until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let client = Client::new(settings.influx)?;
    tracing::info!(message = "hostscope-web started", listen = %settings.listen);
    let _ = client;
    shutdown.await;
    tracing::info!(message = "hostscope-web stopped");
    Ok(())
}
