//! The one error type of the web service. A 4xx names what is wrong; a 5xx says
//! "internal error" and the details go to the log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hostscope_core::influx::{InfluxError, QueryError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request parameter is wrong; `param` names it.
    #[error("invalid parameter {param}: {message}")]
    BadRequest { param: String, message: String },
    #[error("not logged in")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// Anything else: logged with its details, answered as "internal error".
    #[error("internal error: {0}")]
    Internal(String),
    /// InfluxDB did not answer or failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl AppError {
    pub fn bad(param: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            param: param.into(),
            message: message.into(),
        }
    }
}

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid { param, reason } => AppError::bad(param, reason),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<InfluxError> for AppError {
    fn from(e: InfluxError) -> Self {
        match e {
            InfluxError::Query(q) => q.into(),
            other if other.is_transient() => AppError::Unavailable(other.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            AppError::BadRequest { param, message } => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": "invalid parameter", "param": param, "message": message }),
            ),
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({ "error": "not logged in" }),
            ),
            AppError::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                serde_json::json!({ "error": "forbidden", "message": why }),
            ),
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": "not found" }),
            ),
            AppError::TooManyRequests { retry_after_secs } => {
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(serde_json::json!({ "error": "too many requests", "retry_after": retry_after_secs })),
                )
                    .into_response();
                if let Ok(v) = retry_after_secs.to_string().parse() {
                    resp.headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, v);
                }
                return resp;
            }
            AppError::Internal(details) => {
                tracing::error!(message = "internal error", %details);
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": "internal error" }),
                )
            }
            AppError::Unavailable(details) => {
                tracing::warn!(message = "InfluxDB unavailable", %details);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "error": "database unavailable" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
