//! Alerts: the analyzer's live state (proxied), and the history of alert periods
//! from InfluxDB's `alerts` measurement.
//!
//! - `GET /api/v1/alerts` → `{"source":"none","alerts":[]}` without `web.analyzer_url`,
//!   else `{"source":"analyzer","alerts":[…]}` from the analyzer's
//!   `GET /api/v1/alerts` (its body, or its `alerts` member); 503
//!   `{"error":"analyzer unavailable"}` when it does not answer well.
//! - `GET /api/v1/alerts/history?host=&start=&end=` → `{"periods":[{"rule","severity",
//!   "host","start","end"}]}` from the `alerts` measurement (tags `rule`, `host`,
//!   `severity`; field `state` = `firing` | `resolved`): a period starts at a `firing`
//!   point and ends at the next `resolved` one (`end: null` while it lasts). A period
//!   that began before `start` (up to 30 days before) is reported with its real start.
//!   No measurement, no periods.
//! - `POST /api/v1/alerts/{id}/ack` and `POST /api/v1/silences` are forwarded to the
//!   analyzer with their JSON body; its status and JSON answer come back as they are.
//!   Without an analyzer: 503 `{"error":"no analyzer configured"}`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hostscope_core::influx::{FieldData, Row, RowSelect, RowsQuery, TimeRange};
use hostscope_core::secret::ExposeSecret;
use reqwest::Url;
use serde_json::{json, Value};

use super::params::{check_text, now_ms, Params, RawParams};
use super::query_failed;
use crate::error::AppError;
use crate::state::AppState;

/// How long a call to the analyzer may take.
pub const ANALYZER_TIMEOUT: Duration = Duration::from_secs(10);
/// How far before `start` the history looks for a period still open at `start`.
pub const LOOKBACK_MS: i64 = 30 * 86_400_000;
/// Transitions read per series (alert) and range.
pub const MAX_TRANSITIONS: u32 = 10_000;
/// Largest request body forwarded to the analyzer.
const MAX_BODY: usize = 64 * 1024;

/// `base` with `segments` appended to its path, each percent-encoded as one segment.
pub(super) fn analyzer_url(base: &Url, segments: &[&str]) -> Option<Url> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url)
}

/// A request to the analyzer: with the timeout, and `web.analyzer_token` as a bearer
/// token when set.
pub(super) fn to_analyzer(
    state: &AppState,
    method: reqwest::Method,
    url: Url,
) -> reqwest::RequestBuilder {
    let req = state.http.request(method, url).timeout(ANALYZER_TIMEOUT);
    match &state.settings.analyzer_token {
        Some(token) => req.bearer_auth(token.expose_secret()),
        None => req,
    }
}

pub(super) fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(super) fn unavailable() -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, "analyzer unavailable")
}

/// What the web says when the analyzer refuses its token.
pub(super) const TOKEN_REFUSED: &str =
    "the analyzer refused this web's token: web.analyzer_token must be its analyzer.api_token";

/// The answer when reading a list from the analyzer failed with `error`: a refused
/// token names the key (502); anything else is the analyzer being unavailable (503).
pub(super) fn list_failed(error: &str) -> Response {
    tracing::warn!(message = "analyzer unavailable", %error);
    if error.contains(TOKEN_REFUSED) {
        error_response(StatusCode::BAD_GATEWAY, TOKEN_REFUSED)
    } else {
        unavailable()
    }
}

pub(super) fn not_configured() -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, "no analyzer configured")
}

/// The analyzer's active alerts: `Ok(None)` without an analyzer; `Err` with what went
/// wrong (for the log) when it did not answer with a list.
pub async fn fetch_alerts(state: &AppState) -> Result<Option<Vec<Value>>, String> {
    super::reports::fetch_list(state, "alerts").await
}

/// `GET /api/v1/alerts`
pub async fn alerts(State(state): State<AppState>, raw: RawParams) -> Result<Response, AppError> {
    Params::new(raw, &[])?;
    Ok(match fetch_alerts(&state).await {
        Ok(None) => Json(json!({ "source": "none", "alerts": [] })).into_response(),
        Ok(Some(list)) => Json(json!({ "source": "analyzer", "alerts": list })).into_response(),
        Err(error) => list_failed(&error),
    })
}

/// `GET /api/v1/alerts/history`
pub async fn history(
    State(state): State<AppState>,
    raw: RawParams,
) -> Result<Json<Value>, AppError> {
    let params = Params::new(raw, &["host", "start", "end"])?;
    let mut tags = BTreeMap::new();
    if let Some(host) = params.get("host").filter(|h| !h.is_empty()) {
        check_text("host", host)?;
        tags.insert("host".to_owned(), host.to_owned());
    }
    let range = params.range(&state.settings, now_ms())?;
    let before = TimeRange::new(range.start_ms.saturating_sub(LOOKBACK_MS), range.start_ms)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let query = |range, select| RowsQuery {
        measurement: "alerts".into(),
        fields: vec!["state".into()],
        tags: tags.clone(),
        range,
        select,
    };
    let (earlier, within) = (
        query(before, RowSelect::Last),
        query(
            range,
            RowSelect::All {
                limit_per_series: MAX_TRANSITIONS,
            },
        ),
    );
    let (earlier, within) = tokio::join!(
        state.influx.query_rows(&earlier),
        state.influx.query_rows(&within),
    );
    let (earlier, within) = (
        earlier.map_err(|e| query_failed(&state, e)),
        within.map_err(|e| query_failed(&state, e)),
    );
    let (earlier, within) = (earlier?, within?);
    Ok(Json(json!({
        "start": range.start_ms,
        "end": range.end_ms,
        "periods": periods(earlier, within),
    })))
}

/// One alert's (series') transitions.
#[derive(Default)]
struct Alert {
    /// Since when it fires, if it does.
    open: Option<i64>,
    /// Finished periods.
    closed: Vec<(i64, i64)>,
    /// `(time, state)` in the range.
    transitions: Vec<(i64, String)>,
}

/// Firing periods per alert (series) from its last transition before the range and
/// its transitions in the range, sorted by start.
pub fn periods(earlier: Vec<Row>, within: Vec<Row>) -> Vec<Value> {
    let state = |r: &Row| {
        r.fields
            .get("state")
            .and_then(FieldData::as_str)
            .map(str::to_owned)
    };
    let mut by_alert: BTreeMap<BTreeMap<String, String>, Alert> = BTreeMap::new();
    for r in &earlier {
        if state(r).as_deref() == Some("firing") {
            by_alert.entry(r.tags.clone()).or_default().open = Some(r.time_ms);
        }
    }
    for r in &within {
        if let Some(s) = state(r) {
            by_alert
                .entry(r.tags.clone())
                .or_default()
                .transitions
                .push((r.time_ms, s));
        }
    }
    let mut out = Vec::new();
    for (tags, alert) in by_alert {
        let Alert {
            mut open,
            mut closed,
            mut transitions,
        } = alert;
        transitions.sort();
        for (t, s) in transitions {
            match (s.as_str(), open) {
                ("firing", None) => open = Some(t),
                ("resolved", Some(started)) => {
                    closed.push((started, t));
                    open = None;
                }
                _ => {}
            }
        }
        let tag = |k: &str| tags.get(k).cloned().unwrap_or_default();
        for (start, end) in closed
            .into_iter()
            .map(|(s, e)| (s, Some(e)))
            .chain(open.map(|s| (s, None)))
        {
            out.push(json!({
                "rule": tag("rule"),
                "severity": tag("severity"),
                "host": tag("host"),
                "start": start,
                "end": end,
            }));
        }
    }
    out.sort_by_key(|p| (p["start"].as_i64(), p["rule"].as_str().map(str::to_owned)));
    out
}

/// Sends `body` (JSON, or nothing) to the analyzer at `segments` and answers with its
/// status and JSON body.
async fn forward(state: &AppState, segments: &[&str], body: Bytes) -> Response {
    let Some(base) = &state.settings.analyzer_url else {
        return not_configured();
    };
    let Some(url) = analyzer_url(base, segments) else {
        return unavailable();
    };
    let mut req = to_analyzer(state, reqwest::Method::POST, url);
    if !body.is_empty() {
        req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(error) => {
            tracing::warn!(message = "analyzer unavailable", %error);
            return unavailable();
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::UNAUTHORIZED {
        // Not the browser's login: passing the 401 on would send it to the login page.
        tracing::warn!(message = TOKEN_REFUSED);
        return error_response(StatusCode::BAD_GATEWAY, TOKEN_REFUSED);
    }
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(error) => {
            tracing::warn!(message = "analyzer answer unreadable", %error);
            return unavailable();
        }
    };
    if bytes.is_empty() {
        return status.into_response();
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => (status, Json(v)).into_response(),
        Err(_) => {
            tracing::warn!(message = "the analyzer answered with a body that is not JSON", %status);
            error_response(
                StatusCode::BAD_GATEWAY,
                "the analyzer answered with something that is not JSON",
            )
        }
    }
}

/// A request body for the analyzer: empty, or one JSON value of at most 64 KiB.
fn check_body(body: &Bytes) -> Result<(), AppError> {
    if body.len() > MAX_BODY {
        return Err(AppError::bad(
            "body",
            format!("is larger than {MAX_BODY} bytes"),
        ));
    }
    if !body.is_empty() {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| AppError::bad("body", format!("is not JSON: {e}")))?;
    }
    Ok(())
}

/// `POST /api/v1/alerts/{id}/ack`
pub async fn ack(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    raw: RawParams,
    body: Bytes,
) -> Result<Response, AppError> {
    let Path(id) = id.map_err(|e| AppError::bad("id", e.body_text()))?;
    Params::new(raw, &[])?;
    if state.settings.analyzer_url.is_none() {
        return Ok(not_configured());
    }
    if id.is_empty() || id == "." || id == ".." || id.chars().count() > 256 {
        return Err(AppError::bad("id", "is not an alert id"));
    }
    check_text("id", &id)?;
    check_body(&body)?;
    Ok(forward(&state, &["api", "v1", "alerts", &id, "ack"], body).await)
}

/// `POST /api/v1/silences`
pub async fn silences(
    State(state): State<AppState>,
    raw: RawParams,
    body: Bytes,
) -> Result<Response, AppError> {
    Params::new(raw, &[])?;
    if state.settings.analyzer_url.is_none() {
        return Ok(not_configured());
    }
    check_body(&body)?;
    Ok(forward(&state, &["api", "v1", "silences"], body).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let base: Url = "http://a:9000/prefix/?x=1".parse().unwrap();
        assert_eq!(
            analyzer_url(&base, &["api", "v1", "alerts", "a/b ?#%", "ack"])
                .unwrap()
                .as_str(),
            "http://a:9000/prefix/api/v1/alerts/a%2Fb%20%3F%23%25/ack"
        );
        let bare: Url = "http://a:9000".parse().unwrap();
        assert_eq!(
            analyzer_url(&bare, &["api", "v1", "alerts"])
                .unwrap()
                .as_str(),
            "http://a:9000/api/v1/alerts"
        );
    }

    #[test]
    fn periods_from_transitions() {
        let row = |rule: &str, t: i64, s: &str| Row {
            tags: BTreeMap::from([
                ("rule".to_owned(), rule.to_owned()),
                ("host".to_owned(), "h".to_owned()),
                ("severity".to_owned(), "critical".to_owned()),
            ]),
            time_ms: t,
            fields: BTreeMap::from([("state".to_owned(), FieldData::Text(s.to_owned()))]),
        };
        let got = periods(
            vec![row("a", 5, "firing"), row("b", 6, "resolved")],
            vec![
                row("a", 20, "resolved"),
                row("a", 30, "firing"),
                row("a", 31, "firing"),
                row("b", 10, "resolved"),
                row("b", 40, "firing"),
                row("b", 50, "resolved"),
            ],
        );
        let spans: Vec<(&str, i64, Option<i64>)> = got
            .iter()
            .map(|p| {
                (
                    p["rule"].as_str().unwrap(),
                    p["start"].as_i64().unwrap(),
                    p["end"].as_i64(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![("a", 5, Some(20)), ("a", 30, None), ("b", 40, Some(50))]
        );
    }
}
