//! The analyzer's small HTTP API, for the web's Alerts page and for scripts. JSON in
//! and out; errors are `{"error": "..."}` naming what is wrong.
//!
//! - `GET /api/v1/alerts` → `{"alerts": [..]}`: pending and firing alerts, newest first.
//! - `POST /api/v1/alerts/{id}/ack` (body `{}` or none) → the alert, acknowledged:
//!   no more reminders until it resolves.
//! - `GET /api/v1/silences` → `{"silences": [..]}` (active and recently ended).
//! - `POST /api/v1/silences` `{rule?, host?, labels?, duration | ends_at, comment?,
//!   created_by?}` → 201 with the silence; at least one matcher is required.
//! - `DELETE /api/v1/silences/{id}` → the silence, ended now.
//! - `GET /api/v1/rules` → the loaded rules, one line each.
//! - `GET /api/v1/reports` → `{"reports": [..]}`: the kept anomaly reports, newest
//!   first; `GET /api/v1/reports/{id}` → the report as one self-contained HTML page.
//! - `GET /healthz` → `ok`.
//!
//! It listens on loopback by default. With `analyzer.api_token` set, every route but
//! `/healthz` needs `Authorization: Bearer <token>` ([`with_token`]); the web sends
//! it (`web.analyzer_token`) and stays the way in for people (with its logins and
//! CSRF checks).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use hostscope_core::secret::{same_secret, ExposeSecret, SecretString};

use crate::engine::{labels_of, Shared};
use crate::lifecycle::State as LifeState;
use crate::report::store::{ReportStore, StoreError};
use crate::state::{stable_id, AlertRecord, Silence};

/// Longest silence accepted.
const MAX_SILENCE: Duration = Duration::from_secs(90 * 86_400);
/// What a stored report page may do: show its own styles and inline images.
pub const REPORT_CSP: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox";
/// Largest request body.
const MAX_BODY: usize = 64 * 1024;

/// The clock, injectable for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

#[derive(Clone)]
struct Api {
    shared: Arc<Shared>,
    clock: Clock,
}

pub fn router(shared: Arc<Shared>, clock: Clock) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}/ack", post(ack))
        .route("/api/v1/silences", get(list_silences).post(create_silence))
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(expire_silence),
        )
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/reports", get(list_reports))
        .route("/api/v1/reports/{id}", get(report_html))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Api { shared, clock })
}

/// How long a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `app` on `listener` until `shutdown`, closing connections whose headers do
/// not arrive within `header_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hostscope_core::serve::{http1_with_header_timeout, until_shutdown};
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp(listener.into_std()?)?.handle(handle.clone());
    let server = http1_with_header_timeout(server, header_timeout);
    until_shutdown(server.serve(app.into_make_service()), handle, shutdown).await
}

/// `router` behind `token`, when there is one: every route but `/healthz` answers
/// 401 without `Authorization: Bearer <token>`.
pub fn with_token(router: Router, token: Option<SecretString>) -> Router {
    match token {
        None => router,
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        )),
    }
}

async fn require_token(
    State(token): State<Arc<SecretString>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(p) if same_secret(p.as_bytes(), token.expose_secret().as_bytes()) => {
            next.run(req).await
        }
        _ => {
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                "this API needs Authorization: Bearer <analyzer.api_token>",
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(message = "API request failed", error = %e);
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

fn alert_json(a: &AlertRecord, api: &Api, store: &crate::state::Store, now: i64) -> Value {
    let rule = api.shared.rules.iter().find(|r| r.name == a.rule);
    let labels = labels_of(a, rule.map_or(&Default::default(), |r| &r.labels));
    let silence = store.silenced_by(&a.rule, &labels, now);
    let state = match a.lifecycle.state {
        LifeState::Firing => "firing",
        LifeState::Pending => "pending",
        LifeState::Ok => "ok",
    };
    let last = a.last.as_ref();
    let band = a.fired_with.as_ref().or(last);
    let since = a.lifecycle.breach_since_ms;
    json!({
        "id": a.id,
        "rule": a.rule,
        "host": a.host(),
        "labels": labels,
        "severity": a.severity,
        "state": state,
        "since": since.map(rfc3339),
        "started_at": since.map(rfc3339),
        "fired_at": a.lifecycle.fired_at_ms.map(rfc3339),
        "value": last.map(|o| o.value).filter(|v| v.is_finite()),
        "lower": band.and_then(|o| o.lower),
        "upper": band.and_then(|o| o.upper),
        "score": band.map(|o| o.score).filter(|v| v.is_finite()),
        "summary": band.map(|o| o.reason.clone()).filter(|r| !r.is_empty())
            .or_else(|| rule.map(|r| r.describe())),
        "description": rule.map(|r| r.describe()),
        "acknowledged": a.acknowledged,
        "flapping": a.lifecycle.flapping,
        "silenced": silence.is_some(),
        "silenced_until": silence.map(|s| rfc3339(s.ends_at_ms)),
    })
}

async fn list_alerts(State(api): State<Api>) -> Response {
    let now = (api.clock)();
    let store = api.shared.store.lock().await;
    let mut active: Vec<&AlertRecord> = store
        .alerts
        .values()
        .filter(|a| a.lifecycle.state != LifeState::Ok)
        .collect();
    active.sort_by_key(|a| std::cmp::Reverse(a.lifecycle.breach_since_ms));
    let alerts: Vec<Value> = active
        .into_iter()
        .map(|a| alert_json(a, &api, &store, now))
        .collect();
    Json(json!({ "alerts": alerts })).into_response()
}

/// An empty body or a JSON object (its members are ignored).
fn empty_or_object(body: &Bytes) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

async fn ack(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(e) = empty_or_object(&body) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let now = (api.clock)();
    let mut store = api.shared.store.lock().await;
    let Some(a) = store.alerts.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no alert with id {id:?}"));
    };
    if a.lifecycle.state != LifeState::Firing {
        return error(StatusCode::CONFLICT, format!("alert {id:?} is not firing"));
    }
    a.acknowledged = true;
    tracing::info!(message = "alert acknowledged", id = %id, rule = %a.rule);
    if let Err(e) = api.shared.save(&store) {
        return internal(e);
    }
    let Some(a) = store.alerts.get(&id) else {
        return internal("the alert vanished");
    };
    Json(alert_json(a, &api, &store, now)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    rule: Option<String>,
    host: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    /// `1h`, `30m`...
    duration: Option<String>,
    /// RFC 3339, or unix milliseconds.
    ends_at: Option<Value>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    created_by: String,
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "rule": s.rule,
        "host": s.host,
        "labels": s.labels,
        "starts_at": rfc3339(s.starts_at_ms),
        "ends_at": rfc3339(s.ends_at_ms),
        "active": s.is_active(now),
        "comment": s.comment,
        "created_by": s.created_by,
    })
}

async fn list_silences(State(api): State<Api>) -> Response {
    let now = (api.clock)();
    let store = api.shared.store.lock().await;
    let list: Vec<Value> = store
        .silences
        .iter()
        .map(|s| silence_json(s, now))
        .collect();
    Json(json!({ "silences": list })).into_response()
}

fn text_ok(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    if s.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    Ok(())
}

fn parse_silence(body: &Bytes, now: i64) -> Result<Silence, String> {
    let n: NewSilence =
        serde_json::from_slice(body).map_err(|e| format!("invalid silence: {e}"))?;
    let blank = |o: &Option<String>| o.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&n.rule) && blank(&n.host) && n.labels.is_empty() {
        return Err("a silence needs at least one matcher: rule, host or labels".into());
    }
    for (what, v) in [("rule", &n.rule), ("host", &n.host)] {
        if let Some(v) = v {
            text_ok(what, v, 256)?;
        }
    }
    for (k, v) in &n.labels {
        text_ok("labels", k, 256)?;
        text_ok("labels", v, 256)?;
    }
    text_ok("comment", &n.comment.replace('\n', " "), 1024)?;
    text_ok("created_by", &n.created_by, 256)?;
    let ends_at_ms = match (&n.duration, &n.ends_at) {
        (Some(_), Some(_)) => return Err("give duration or ends_at, not both".into()),
        (None, None) => return Err("duration (e.g. \"1h\") or ends_at is required".into()),
        (Some(d), None) => {
            let d = humantime::parse_duration(d)
                .map_err(|e| format!("duration {d:?} is not a duration like \"1h\": {e}"))?;
            if d.is_zero() || d > MAX_SILENCE {
                return Err("duration must be between 1s and 90 days".into());
            }
            now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        (None, Some(Value::Number(n))) => n
            .as_i64()
            .ok_or_else(|| "ends_at must be unix milliseconds or RFC 3339".to_owned())?,
        (None, Some(Value::String(s))) => hostscope_core::influx::query::parse_rfc3339_ms(s)
            .ok_or_else(|| format!("ends_at {s:?} is not an RFC 3339 time"))?,
        (None, Some(_)) => return Err("ends_at must be unix milliseconds or RFC 3339".into()),
    };
    if ends_at_ms <= now {
        return Err("ends_at is in the past".into());
    }
    if ends_at_ms - now > i64::try_from(MAX_SILENCE.as_millis()).unwrap_or(i64::MAX) {
        return Err("a silence may last at most 90 days".into());
    }
    let rule = n.rule.filter(|s| !s.trim().is_empty());
    let host = n.host.filter(|s| !s.trim().is_empty());
    let id = stable_id(&[
        &now.to_string(),
        rule.as_deref().unwrap_or(""),
        host.as_deref().unwrap_or(""),
        &format!("{:?}", n.labels),
        &n.comment,
    ]);
    Ok(Silence {
        id,
        rule,
        host,
        labels: n.labels,
        starts_at_ms: now,
        ends_at_ms,
        comment: n.comment,
        created_by: n.created_by,
    })
}

async fn create_silence(State(api): State<Api>, body: Bytes) -> Response {
    let now = (api.clock)();
    let silence = match parse_silence(&body, now) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut store = api.shared.store.lock().await;
    tracing::info!(message = "silence created", id = %silence.id, rule = ?silence.rule, host = ?silence.host, ends_at = %rfc3339(silence.ends_at_ms));
    let out = silence_json(&silence, now);
    store.silences.retain(|s| s.id != silence.id);
    store.silences.push(silence);
    if let Err(e) = api.shared.save(&store) {
        return internal(e);
    }
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn expire_silence(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let now = (api.clock)();
    let mut store = api.shared.store.lock().await;
    let Some(s) = store.silences.iter_mut().find(|s| s.id == id) else {
        return error(StatusCode::NOT_FOUND, format!("no silence with id {id:?}"));
    };
    s.ends_at_ms = s.ends_at_ms.min(now);
    let out = silence_json(s, now);
    if let Err(e) = api.shared.save(&store) {
        return internal(e);
    }
    Json(out).into_response()
}

async fn list_rules(State(api): State<Api>) -> Response {
    let rules: Vec<Value> = api
        .shared
        .rules
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "query": r.describe(),
                "severity": r.severity,
                "channels": r.channels,
                "labels": r.labels,
            })
        })
        .collect();
    Json(json!({ "rules": rules })).into_response()
}

async fn list_reports(State(api): State<Api>) -> Response {
    let store = ReportStore::new(&api.shared.state_dir);
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(list)) => {
            let reports: Vec<Value> = list
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "name": m.name,
                        "created": rfc3339(m.created_ms),
                        "start": rfc3339(m.start_ms),
                        "end": rfc3339(m.end_ms),
                        "subject": m.subject,
                        "hosts": m.hosts,
                        "anomalies": m.anomalies,
                    })
                })
                .collect();
            Json(json!({ "reports": reports })).into_response()
        }
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// The stored page, with a policy that lets it show its inline styles and images and
/// nothing else (no script, no requests).
async fn report_html(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let store = ReportStore::new(&api.shared.state_dir);
    let lookup = id.clone();
    match tokio::task::spawn_blocking(move || store.load(&lookup)).await {
        Ok(Ok(Some(report))) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (axum::http::header::CONTENT_SECURITY_POLICY, REPORT_CSP),
            ],
            report.html,
        )
            .into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no report with id {id:?}")),
        Ok(Err(StoreError::InvalidId(_))) => error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a report id"),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}
