//! What every handler shares.

use std::ops::Deref;
use std::sync::Arc;

use hostscope_core::influx::Client;

use crate::auth::Auth;
use crate::config::WebSettings;
use crate::metrics::Metrics;

/// Cheap to clone; handlers get it through `State`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub influx: Client,
    pub settings: WebSettings,
    pub auth: Auth,
    pub metrics: Metrics,
    /// For the analyzer's API (alerts) and other outgoing calls.
    pub http: reqwest::Client,
}

impl AppState {
    pub fn new(influx: Client, settings: WebSettings) -> Self {
        let auth = Auth::new(&settings);
        AppState(Arc::new(Inner {
            influx,
            auth,
            settings,
            metrics: Metrics::default(),
            http: reqwest::Client::new(),
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
