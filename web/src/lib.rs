//! hostscope-web: dashboards and the JSON API over InfluxDB.
//!
//! - [`config`]: the `[web]` section.
//! - [`state`]: what handlers share ([`state::AppState`]).
//! - [`api`]: the JSON API under `/api/v1`.
//! - [`ui`]: the pages and their assets (ECharts from npm, embedded in the binary).
//! - [`auth`]: users, sessions, API tokens, CSRF, login rate limit.
//! - [`security`]: security headers, the client address allowlist, TLS.
//! - [`metrics`]: `/healthz` and `/metrics`.
//! - [`error`]: the one error type; 5xx bodies say "internal error".

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod security;
pub mod state;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;

use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{ConfigErrors, InfluxConfig, InfluxSettings};
use hostscope_core::influx::Client;
use hostscope_core::serve::{http1_with_header_timeout, until_shutdown};
use serde::Deserialize;

pub use crate::config::{WebConfig, WebSettings};
pub use crate::state::AppState;

/// The sections of the configuration file this program reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub influx: InfluxConfig,
    pub web: WebConfig,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub web: WebSettings,
}

impl ProgramConfig for FileConfig {
    type Settings = Settings;

    fn validate(&self) -> Result<Settings, ConfigErrors> {
        let mut errors = ConfigErrors::new("configuration");
        let influx = errors.absorb(self.influx.validate());
        let web = self.web.validate(&mut errors);
        match (influx, web) {
            (Some(influx), Some(web)) if errors.is_empty() => Ok(Settings { influx, web }),
            _ => Err(errors),
        }
    }
}

/// The whole application: every route, with authentication on all but `/healthz`,
/// the login endpoint and the assets the login page needs.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .merge(api::router())
        .merge(ui::router())
        .route("/metrics", get(metrics::metrics))
        .route_layer(from_fn_with_state(state.clone(), auth::require_auth));
    Router::new()
        .merge(protected)
        .merge(auth::routes())
        .merge(ui::public_router())
        .route("/healthz", get(metrics::healthz))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(from_fn_with_state(state.clone(), security::headers))
        .layer(from_fn_with_state(state.clone(), security::allowlist))
        .with_state(state)
}

/// Serve on `listener` until `shutdown` resolves (plain HTTP, or TLS when configured).
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = Client::new(settings.influx)?;
    serve_state(listener, AppState::new(client, settings.web), shutdown).await
}

/// Serve an already built [`AppState`] on `listener` until `shutdown` resolves (TLS
/// when `state.settings.tls` is set); what [`serve`] runs, for tests that prepare
/// the state (e.g. a manual clock in `state.auth`).
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = state.settings.tls.clone();
    let header_timeout = state.settings.header_read_timeout;
    let app = app(state).into_make_service_with_connect_info::<SocketAddr>();
    match &tls {
        Some((cert, key)) => {
            security::serve_tls(listener, app, cert, key, header_timeout, shutdown).await
        }
        None => {
            // SIGHUP would end the process by default; over plain HTTP there is
            // nothing to reload, so it is only logged.
            let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(mut hup) => Some(tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!(message = "SIGHUP: no TLS configured, nothing to reload");
                    }
                })),
                Err(error) => {
                    tracing::warn!(message = "cannot handle SIGHUP", %error);
                    None
                }
            };
            let handle = axum_server::Handle::new();
            let server = axum_server::from_tcp(listener.into_std()?)?.handle(handle.clone());
            let server = http1_with_header_timeout(server, header_timeout);
            let served = until_shutdown(server.serve(app), handle, shutdown).await;
            if let Some(task) = hup {
                task.abort();
            }
            served?;
            Ok(())
        }
    }
}

/// Run until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.web.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.web.listen))?;
    tracing::info!(message = "hostscope-web listening", addr = %settings.web.listen, tls = settings.web.tls.is_some());
    serve(listener, settings, shutdown).await
}
