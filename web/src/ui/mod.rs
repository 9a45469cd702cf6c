//! The pages and their assets.
//!
//! - [`assets`]: ECharts (installed from npm by `web/build.rs`) and `web/ui/src/`,
//!   embedded in the binary, served with versioned URLs, ETags and gzip.
//! - [`i18n`]: the English and Simplified Chinese dictionaries and the choice of
//!   language per request.
//! - [`page`]: the HTML pages, rendered in the request's language and theme.
//!
//! The pages are plain HTML with vanilla JS modules (`web/ui/src/*.js`) that call
//! the JSON API; nothing loads from another host, and nothing needs
//! `'unsafe-inline'` in the CSP.

pub mod assets;
pub mod i18n;
pub mod page;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;
use page::Page;

/// Pages that need a login: `/`, `/hosts/{host}`, `/alerts`, and `/reports/{id}`
/// (an anomaly report from the analyzer, see [`crate::api::reports::page`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/hosts/{host}", get(host))
        .route("/alerts", get(alerts))
        .route("/reports/{id}", get(crate::api::reports::page))
}

/// What the login page needs without a login: `/login` and `/assets/…`.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login))
        .route("/assets/{version}/{*path}", get(assets::serve))
}

/// A page in the request's language and theme. Never cached: it depends on cookies
/// and `Accept-Language`, and the assets it names change with each build.
fn html(page: Page, state: &AppState, headers: &HeaderMap) -> Response {
    let lang = i18n::negotiate(headers, &state.settings.default_language);
    let body = page::render(page, lang, i18n::theme(headers));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_LANGUAGE, HeaderValue::from_static(lang)),
        ],
        body,
    )
        .into_response()
}

async fn login(State(state): State<AppState>, headers: HeaderMap) -> Response {
    html(Page::Login, &state, &headers)
}

async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    html(Page::Overview, &state, &headers)
}

/// The host comes from the URL in the browser; the server only sends the page.
async fn host(State(state): State<AppState>, headers: HeaderMap) -> Response {
    html(Page::Host, &state, &headers)
}

async fn alerts(State(state): State<AppState>, headers: HeaderMap) -> Response {
    html(Page::Alerts, &state, &headers)
}
