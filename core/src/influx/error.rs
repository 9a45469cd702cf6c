use crate::config::ConfigErrors;

use super::query::QueryError;

/// What can go wrong talking to InfluxDB. URLs carry no secrets (credentials travel
/// in headers), so every variant may be logged as is.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// The request did not get an answer (connection refused, timeout, TLS), after retries.
    #[error("{method} {url}: {reason}")]
    Request {
        method: &'static str,
        url: String,
        reason: String,
    },
    /// InfluxDB answered with an error status; `message` is InfluxDB's own.
    #[error("{method} {url}: InfluxDB answered {status}: {message}")]
    Api {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// The query was refused before sending, or its answer could not be read.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The settings do not fit the server that answered.
    #[error("{0}")]
    Config(ConfigErrors),
    /// `version = "auto"` and the server did not say which version it is.
    #[error("cannot tell the InfluxDB version of {url}: {reason}")]
    Version { url: String, reason: String },
    /// 1.x: the database is missing and this user may not create it.
    #[error("database {database:?} does not exist and could not be created: {message}")]
    Database { database: String, message: String },
}

impl InfluxError {
    /// Whether trying again later may succeed: no answer, or a server-side error.
    /// Client errors (bad request, auth, unknown bucket) are not.
    pub fn is_transient(&self) -> bool {
        match self {
            InfluxError::Request { .. } | InfluxError::Version { .. } => true,
            InfluxError::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
