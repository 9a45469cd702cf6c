//! The embedded assets: ECharts (from npm, see `web/build.rs`) and `web/ui/src/`.
//!
//! URLs carry [`VERSION`], a hash over every asset (`/assets/<VERSION>/app.js`), so
//! responses may be cached for a year; each asset also has an ETag (its own content
//! hash) and, when it compresses, a gzip copy made at build time.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `/assets/<VERSION>/`, e.g. `echarts.min.js`.
    pub path: &'static str,
    /// The `Content-Type` to send.
    pub content_type: &'static str,
    /// Quoted content hash of `body`.
    pub etag: &'static str,
    /// Quoted ETag of the gzip representation.
    pub etag_gzip: &'static str,
    /// The file as built.
    pub body: &'static [u8],
    /// The file gzipped, when that makes it smaller.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// How long browsers may keep an asset: its URL changes with its content.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

/// `/assets/<VERSION>`: the base of every asset URL.
pub fn base() -> String {
    format!("/assets/{VERSION}")
}

/// The asset at `path`, if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Whether `Accept-Encoding` takes gzip (q > 0).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !q_zero
        })
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks here).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// `GET /assets/{version}/{*path}`: an embedded asset, or 404 for an unknown path
/// or a version this build does not have.
pub async fn serve(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(asset) = find(&path).filter(|_| version == VERSION) else {
        return AppError::NotFound.into_response();
    };
    let gzip = asset.gzip.filter(|_| accepts_gzip(&headers));
    let etag = if gzip.is_some() {
        asset.etag_gzip
    } else {
        asset.etag
    };
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_FOREVER),
        ),
        (header::ETAG, HeaderValue::from_static(etag)),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if matches_etag(&headers, etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    )];
    match gzip {
        Some(body) => (
            common,
            content_type,
            [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            body,
        )
            .into_response(),
        None => (common, content_type, asset.body).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn echarts_and_the_pages_scripts_are_embedded() {
        let echarts = find("echarts.min.js").expect("ECharts is embedded");
        assert!(
            echarts.body.len() > 500_000,
            "echarts.min.js looks truncated"
        );
        assert_eq!(echarts.content_type, "text/javascript; charset=utf-8");
        assert!(echarts
            .gzip
            .is_some_and(|g| g.len() < echarts.body.len() / 2));
        for name in [
            "common.js",
            "charts.js",
            "login.js",
            "overview.js",
            "host.js",
            "alerts.js",
            "style.css",
            "favicon.svg",
        ] {
            assert!(find(name).is_some(), "{name} is not embedded");
        }
        assert_eq!(
            find("style.css").map(|a| a.content_type),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(
            find("favicon.svg").map(|a| a.content_type),
            Some("image/svg+xml")
        );
        assert_eq!(VERSION.len(), 12);
    }

    async fn get(version: &str, path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(k.clone(), v.parse().unwrap());
        }
        serve(Path((version.to_owned(), path.to_owned())), h).await
    }

    fn header(resp: &Response, name: header::HeaderName) -> &str {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn serving() {
        let plain = get(VERSION, "echarts.min.js", &[]).await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(
            header(&plain, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(header(&plain, header::CACHE_CONTROL), CACHE_FOREVER);
        assert_eq!(header(&plain, header::CONTENT_ENCODING), "");
        let etag = header(&plain, header::ETAG).to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18,
            "{etag}"
        );

        let gz = get(
            VERSION,
            "echarts.min.js",
            &[(header::ACCEPT_ENCODING, "gzip, br")],
        )
        .await;
        assert_eq!(header(&gz, header::CONTENT_ENCODING), "gzip");
        assert_eq!(header(&gz, header::VARY), "Accept-Encoding");
        assert_ne!(
            header(&gz, header::ETAG),
            etag,
            "representations need their own ETags"
        );

        let again = get(VERSION, "echarts.min.js", &[(header::IF_NONE_MATCH, &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, header::ETAG), etag);

        let css = get(VERSION, "style.css", &[]).await;
        assert_eq!(
            header(&css, header::CONTENT_TYPE),
            "text/css; charset=utf-8"
        );

        for (version, path) in [
            (VERSION, "nope.js"),
            (VERSION, "../Cargo.toml"),
            ("000000000000", "common.js"),
            (VERSION, ""),
        ] {
            assert_eq!(
                get(version, path, &[]).await.status(),
                StatusCode::NOT_FOUND,
                "{version}/{path}"
            );
        }
    }

    #[test]
    fn accept_encoding() {
        let check = |value: &str, expected: bool| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
            assert_eq!(accepts_gzip(&h), expected, "{value}");
        };
        check("gzip, deflate, br", true);
        check("br;q=1.0, GZIP;q=0.5", true);
        check("gzip;q=0", false);
        check("identity", false);
        check("x-gzip", false);
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match() {
        let check = |value: &str, expected: bool| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, value.parse().unwrap());
            assert_eq!(matches_etag(&h, "\"abc\""), expected, "{value}");
        };
        check("\"abc\"", true);
        check("W/\"abc\"", true);
        check("\"x\", \"abc\"", true);
        check("*", true);
        check("\"abcd\"", false);
    }
}
