//! Security headers, the client address allowlist, and TLS.
//!
//! - [`headers`] puts CSP, `X-Frame-Options`, `X-Content-Type-Options`,
//!   `Referrer-Policy`, `Cross-Origin-Opener-Policy`,
//!   `Cross-Origin-Resource-Policy` (and `Strict-Transport-Security` under TLS) on
//!   every response, and `Cache-Control: no-store` on every response that does not
//!   set its own caching (so API answers are never cached; the UI's hashed assets
//!   set a long cache themselves).
//! - [`allowlist`]: when `web.allow` is set, a client outside every CIDR gets 403
//!   for every path, `/healthz` included: the list says who may talk to the server
//!   at all. IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`, seen on a dual-stack
//!   listener) match IPv4 CIDRs.
//! - [`serve_tls`]: HTTPS with rustls (ring), certificate and key reloaded on SIGHUP.

mod tls;

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

pub use self::tls::{serve_tls, serve_tls_config, TlsConfig, TlsError};

use crate::auth::client_ip;
use crate::error::AppError;
use crate::state::AppState;

/// The Content-Security-Policy of every response that does not set its own.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `Strict-Transport-Security` under TLS: one year.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Set the security headers on `headers` (`tls`: also HSTS).
pub fn apply_headers(headers: &mut HeaderMap, tls: bool) {
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// CSP, X-Frame-Options, X-Content-Type-Options, Referrer-Policy (and HSTS under
/// TLS) on every response; `Cache-Control: no-store` unless the handler set one.
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    apply_headers(resp.headers_mut(), state.settings.tls.is_some());
    resp
}

/// Whether `ip` is inside one of `allow` (an empty list allows everyone). An
/// IPv4-mapped IPv6 address is also checked as the IPv4 address it carries.
pub fn is_allowed(allow: &[IpNet], ip: IpAddr) -> bool {
    if allow.is_empty() {
        return true;
    }
    let canonical = ip.to_canonical();
    allow
        .iter()
        .any(|net| net.contains(&ip) || net.contains(&canonical))
}

/// Refuse clients outside `web.allow` (when set) with 403, before anything else;
/// a request whose peer address is unknown is refused too.
pub async fn allowlist(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let allow = &state.settings.allow;
    if allow.is_empty() {
        return next.run(req).await;
    }
    match client_ip(req.extensions()) {
        Some(ip) if is_allowed(allow, ip) => next.run(req).await,
        peer => {
            tracing::debug!(message = "client not in web.allow", client = ?peer, path = %req.uri().path());
            let mut resp =
                AppError::Forbidden("client address not allowed".to_owned()).into_response();
            apply_headers(resp.headers_mut(), state.settings.tls.is_some());
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn allowlist_matching() {
        let nets = |list: &[&str]| {
            list.iter()
                .map(|s| s.parse::<IpNet>().unwrap())
                .collect::<Vec<_>>()
        };
        let check = |allow: &[&str], ip: &str, expected: bool| {
            assert_eq!(
                is_allowed(&nets(allow), ip.parse().unwrap()),
                expected,
                "{allow:?} {ip}"
            );
        };
        check(&[], "192.0.2.1", true);
        check(&["10.0.0.0/8"], "10.1.2.3", true);
        check(&["10.0.0.0/8"], "11.1.2.3", false);
        check(&["10.0.0.0/8"], "::ffff:10.1.2.3", true);
        check(&["10.0.0.0/8"], "::ffff:11.1.2.3", false);
        check(&["::ffff:10.0.0.0/104"], "::ffff:10.1.2.3", true);
        check(&["127.0.0.0/8"], "::1", false);
        check(&["::1/128", "127.0.0.0/8"], "::1", true);
        check(&["2001:db8::/32"], "2001:db8::7", true);
        check(&["2001:db8::/32"], "10.0.0.1", false);
    }

    #[test]
    fn headers_set_and_respect_own_cache_control() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        apply_headers(&mut h, false);
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_none());
        let mut h = HeaderMap::new();
        apply_headers(&mut h, true);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            h[header::STRICT_TRANSPORT_SECURITY],
            STRICT_TRANSPORT_SECURITY
        );
    }
}
