//! `/healthz` and `/metrics` (Prometheus text: requests, latencies, query errors).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::state::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Route {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and latencies per route, and query errors.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
    query_errors: std::sync::atomic::AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        let r = routes.entry(route.to_owned()).or_default();
        *r.by_status.entry(status).or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                r.buckets[i] += 1;
            }
        }
        r.count += 1;
        r.sum += seconds;
    }

    pub fn query_error(&self) {
        self.query_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hostscope_web_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE hostscope_web_requests_total counter");
        let routes = match self.routes.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        for (route, r) in routes.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "hostscope_web_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP hostscope_web_request_duration_seconds Request latency by route."
        );
        let _ = writeln!(
            out,
            "# TYPE hostscope_web_request_duration_seconds histogram"
        );
        for (route, r) in routes.iter() {
            let route = escape(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "hostscope_web_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}", r.buckets[i]);
            }
            let _ = writeln!(
                out,
                "hostscope_web_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "hostscope_web_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                r.sum
            );
            let _ = writeln!(
                out,
                "hostscope_web_request_duration_seconds_count{{route=\"{route}\"}} {}",
                r.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP hostscope_web_query_errors_total InfluxDB queries that failed."
        );
        let _ = writeln!(out, "# TYPE hostscope_web_query_errors_total counter");
        let _ = writeln!(
            out,
            "hostscope_web_query_errors_total {}",
            self.query_errors.load(std::sync::atomic::Ordering::Relaxed)
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: count and time every request by its route pattern (never the raw
/// path, which would let clients create unbounded label values).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /healthz`: 200 when InfluxDB answers, 503 when not; the body says which.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.influx.ping().await {
        Ok(version) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "influxdb": "ok", "influxdb_version": format!("{version:?}") })),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(message = "healthz: InfluxDB does not answer", %error);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "degraded", "influxdb": "unreachable" })),
            )
                .into_response()
        }
    }
}
