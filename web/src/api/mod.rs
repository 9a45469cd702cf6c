//! The JSON API under `/api/v1` (authentication is the layer around it, in `auth`).
//!
//! | route                                  | module       |
//! |----------------------------------------|--------------|
//! | `GET /api/v1/hosts`                    | [`hosts`]    |
//! | `GET /api/v1/hosts/{host}/details`     | [`details`]  |
//! | `GET /api/v1/series`                   | [`series`]   |
//! | `GET /api/v1/alerts`, `…/history`      | [`alerts`]   |
//! | `POST /api/v1/alerts/{id}/ack`         | [`alerts`]   |
//! | `POST /api/v1/silences`                | [`alerts`]   |
//! | `GET /api/v1/reports`                  | [`reports`]  |
//! | `GET /api/v1/openapi.json`             | [`openapi`]  |
//!
//! Every request goes through the typed query model of `hostscope_core::influx`:
//! parameters become measurement, field and tag *values* that the dialects escape,
//! never query text. Parameters are strict: an unknown or repeated parameter, a
//! malformed time, an unknown measurement, field or aggregate is a 400 that names the
//! parameter. A failed InfluxDB query counts in `/metrics` and answers 500 or 503
//! without details.

pub mod alerts;
pub mod details;
pub mod hosts;
pub mod openapi;
pub mod params;
pub mod reports;
pub mod schema;
pub mod series;

use std::sync::Arc;

use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use hostscope_core::influx::InfluxError;

use crate::error::AppError;
use crate::state::AppState;

/// One route: its path, its one method (lowercase, as in OpenAPI) and its handler.
pub struct Route {
    /// The path, with `{param}` segments as in axum and OpenAPI.
    pub path: &'static str,
    /// `get` or `post`.
    pub method: &'static str,
    /// What answers.
    pub handler: MethodRouter<AppState>,
}

/// Every route of the API, in the order of the OpenAPI document.
pub fn routes() -> Vec<Route> {
    let route = |path, method, handler| Route {
        path,
        method,
        handler,
    };
    vec![
        route("/api/v1/hosts", "get", get(hosts::hosts)),
        route("/api/v1/hosts/{host}/details", "get", get(details::details)),
        route("/api/v1/series", "get", get(series::series)),
        route("/api/v1/alerts", "get", get(alerts::alerts)),
        route("/api/v1/alerts/history", "get", get(alerts::history)),
        route("/api/v1/alerts/{id}/ack", "post", post(alerts::ack)),
        route("/api/v1/silences", "post", post(alerts::silences)),
        route("/api/v1/reports", "get", get(reports::reports)),
        route("/api/v1/openapi.json", "get", get(openapi::openapi)),
    ]
}

/// Every `/api/v1` route except the login endpoints (those are in `auth`).
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    router.layer(Extension(Arc::new(schema::SchemaCache::default())))
}

/// An InfluxDB failure as an [`AppError`]; counted in `/metrics` unless it was a
/// refused parameter (a 400).
pub fn query_failed(state: &AppState, e: InfluxError) -> AppError {
    let err = AppError::from(e);
    if !matches!(err, AppError::BadRequest { .. }) {
        state.metrics.query_error();
    }
    err
}

/// Orders names the way people count: `cpu2` before `cpu10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut digits = None;
        for (i, c) in s.char_indices() {
            let d = c.is_ascii_digit();
            if digits.is_some_and(|was| was != d) {
                out.push((digits.unwrap_or(false), &s[start..i]));
                start = i;
            }
            digits = Some(d);
        }
        if start < s.len() {
            out.push((digits.unwrap_or(false), &s[start..]));
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let ord = match (x, y) {
            ((true, x), (true, y)) => {
                let (tx, ty) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec![
            "cpu10", "cpu2", "cpu1", "cpu", "eth0", "cpu02", "a1b2", "a1b10",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["a1b2", "a1b10", "cpu", "cpu1", "cpu02", "cpu2", "cpu10", "eth0"]
        );
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_back() {
        let doc = openapi::document();
        let paths = doc["paths"].as_object().expect("paths");
        let routes = routes();
        for r in &routes {
            assert!(
                paths.get(r.path).and_then(|p| p.get(r.method)).is_some(),
                "{} {} is not in openapi.json",
                r.method,
                r.path
            );
        }
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                assert!(
                    routes.iter().any(|r| r.path == path && r.method == method),
                    "openapi.json documents {method} {path}, which is not routed"
                );
            }
        }
        // The router accepts every path (axum panics on a bad one).
        let _ = router();
    }
}
