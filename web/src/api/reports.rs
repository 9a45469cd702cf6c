//! Anomaly reports: the analyzer keeps its last reports; the web lists them and shows
//! each one.
//!
//! - `GET /api/v1/reports` → `{"source":"none","reports":[]}` without
//!   `web.analyzer_url`, else `{"source":"analyzer","reports":[{"id","name","created",
//!   "start","end","subject","hosts","anomalies"}]}` (newest first) from the analyzer's
//!   `GET /api/v1/reports`; 503 `{"error":"analyzer unavailable"}` when it does not
//!   answer well.
//! - `GET /reports/{id}` (a page, routed by `ui`): the analyzer's self-contained HTML
//!   for the report, served with [`REPORT_CSP`] (inline styles and `data:` images,
//!   nothing else). The id is checked before the analyzer is asked (only ids the
//!   analyzer makes, [`is_report_id`]) and travels as one percent-encoded path segment,
//!   so it can never change the analyzer URL's path. 400 for another id, 404 when the
//!   analyzer has no such report, 503 without an analyzer or when it does not answer,
//!   502 when it answers with something that is not a report page of at most
//!   [`MAX_REPORT_BYTES`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::alerts::{
    analyzer_url, error_response, list_failed, not_configured, to_analyzer, unavailable,
    TOKEN_REFUSED,
};
use super::params::{Params, RawParams};
use crate::error::AppError;
use crate::state::AppState;

/// What a report page may do: show its own inline styles and `data:` images; no
/// script, no request, a sandbox. The analyzer serves its pages with the same policy.
pub const REPORT_CSP: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox";
/// The largest report page taken from the analyzer (reports are a few MB at most).
pub const MAX_REPORT_BYTES: usize = 16 * 1024 * 1024;
/// The largest report list taken from the analyzer.
pub const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;
/// Digits of the creation time in an id (an `u64` of unix ms).
const MAX_ID_MS_DIGITS: usize = 19;
/// Digits of the `-N` suffix of an id.
const MAX_ID_N_DIGITS: usize = 9;

/// Whether `id` is one the analyzer makes: `[0-9]{1,19}(-[0-9]{1,9})?` (the creation
/// time in unix ms, with `-N` when that was taken).
pub fn is_report_id(id: &str) -> bool {
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    match id.split_once('-') {
        None => digits(id, MAX_ID_MS_DIGITS),
        Some((ms, n)) => digits(ms, MAX_ID_MS_DIGITS) && digits(n, MAX_ID_N_DIGITS),
    }
}

/// Reading an answer's body went wrong.
enum ReadError {
    /// Longer than allowed.
    TooLarge,
    /// The connection failed or timed out on the way.
    Failed(reqwest::Error),
}

/// The body of `resp`, refused past `max` bytes: by its declared length at once, else
/// as it arrives.
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    let declared = resp
        .content_length()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if declared.is_some_and(|n| n > max) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Failed)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The analyzer's report list: `Ok(None)` without an analyzer; `Err` with what went
/// wrong (for the log) when it did not answer with a list.
pub async fn fetch_reports(state: &AppState) -> Result<Option<Vec<Value>>, String> {
    fetch_list(state, "reports").await
}

/// The analyzer's `GET /api/v1/{member}` as the list in its `member` (or the bare
/// list), read up to [`MAX_LIST_BYTES`]: `Ok(None)` without an analyzer; `Err` with
/// what went wrong (for the log).
pub(super) async fn fetch_list(
    state: &AppState,
    member: &'static str,
) -> Result<Option<Vec<Value>>, String> {
    let Some(base) = &state.settings.analyzer_url else {
        return Ok(None);
    };
    let url = analyzer_url(base, &["api", "v1", member])
        .ok_or_else(|| "the analyzer URL cannot have a path".to_owned())?;
    let resp = to_analyzer(state, reqwest::Method::GET, url)
        .send()
        .await
        .map_err(|e| format!("GET {member}: {e}"))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(format!("GET {member}: {TOKEN_REFUSED}"));
    }
    if !status.is_success() {
        return Err(format!("GET {member}: the analyzer answered {status}"));
    }
    let bytes = read_capped(resp, MAX_LIST_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => {
                format!("GET {member}: the answer is over {MAX_LIST_BYTES} bytes")
            }
            ReadError::Failed(e) => format!("GET {member}: {e}"),
        })?;
    let body: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("GET {member}: not JSON: {e}"))?;
    match body {
        Value::Array(list) => Ok(Some(list)),
        Value::Object(mut map) => match map.remove(member) {
            Some(Value::Array(list)) => Ok(Some(list)),
            _ => Err(format!("GET {member}: the answer has no {member} list")),
        },
        _ => Err(format!("GET {member}: the answer is not a list")),
    }
}

/// `GET /api/v1/reports`
pub async fn reports(State(state): State<AppState>, raw: RawParams) -> Result<Response, AppError> {
    Params::new(raw, &[])?;
    Ok(match fetch_reports(&state).await {
        Ok(None) => Json(json!({ "source": "none", "reports": [] })).into_response(),
        Ok(Some(list)) => Json(json!({ "source": "analyzer", "reports": list })).into_response(),
        Err(error) => list_failed(&error),
    })
}

fn bad_gateway(why: &str) -> Response {
    error_response(StatusCode::BAD_GATEWAY, why)
}

/// `GET /reports/{id}`: the report's page from the analyzer.
pub async fn page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return AppError::bad("id", e.body_text()).into_response(),
    };
    if !is_report_id(&id) {
        return AppError::bad(
            "id",
            "is not a report id (digits, optionally followed by - and digits)",
        )
        .into_response();
    }
    let Some(base) = &state.settings.analyzer_url else {
        return not_configured();
    };
    let Some(url) = analyzer_url(base, &["api", "v1", "reports", &id]) else {
        return unavailable();
    };
    let resp = match to_analyzer(&state, reqwest::Method::GET, url).send().await {
        Ok(r) => r,
        Err(error) => {
            tracing::warn!(message = "analyzer unavailable", %error);
            return unavailable();
        }
    };
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return error_response(StatusCode::NOT_FOUND, "no such report");
    }
    if status.is_server_error() {
        tracing::warn!(message = "analyzer unavailable", %status, report = %id);
        return unavailable();
    }
    if status == reqwest::StatusCode::UNAUTHORIZED {
        tracing::warn!(message = TOKEN_REFUSED);
        return bad_gateway(TOKEN_REFUSED);
    }
    if !status.is_success() {
        tracing::warn!(message = "the analyzer refused a report", %status, report = %id);
        return bad_gateway("the analyzer refused the report");
    }
    let html = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if !html {
        tracing::warn!(message = "the analyzer answered a report with something that is not HTML", report = %id);
        return bad_gateway("the analyzer answered with something that is not a report page");
    }
    let body = match read_capped(resp, MAX_REPORT_BYTES).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => {
            tracing::warn!(message = "report too large", report = %id, max = MAX_REPORT_BYTES);
            return bad_gateway("the report is larger than 16 MiB");
        }
        Err(ReadError::Failed(error)) => {
            tracing::warn!(message = "analyzer answer unreadable", %error);
            return unavailable();
        }
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(REPORT_CSP),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ids() {
        for good in ["0", "1", "1790000000000", "1790000000000-1", "1-123456789"] {
            assert!(is_report_id(good), "{good:?}");
        }
        let long = "1".repeat(20);
        for bad in [
            "",
            "-",
            "-1",
            "1-",
            "1--2",
            "1-2-3",
            "..",
            "../1",
            "1/2",
            "1%2F2",
            "1;drop",
            "1\0",
            " 1",
            "1 ",
            "１",
            "+1",
            "0x1",
            "1-1234567890",
            long.as_str(),
        ] {
            assert!(!is_report_id(bad), "{bad:?}");
        }
    }
}
