//! Users, sessions, API tokens, CSRF and the login rate limit.
//!
//! The rules, all enforced here:
//! - `POST /api/v1/login` checks `{"username","password"}` against `web.users`
//!   (argon2id, in `spawn_blocking`, at most [`MAX_PARALLEL_HASHES`] at once; an
//!   unknown user costs the same hash as a known one) and sets the session cookie
//!   [`SESSION_COOKIE`] (`HttpOnly; SameSite=Strict; Path=/`, `Max-Age` =
//!   `web.session_ttl`; under TLS `Secure` and named [`SECURE_SESSION_COOKIE`], whose
//!   `__Host-` prefix makes browsers refuse it from a sibling domain or plain HTTP).
//!   More than `web.login_attempts_per_minute` failed logins from one client address
//!   in a minute: 429 with `Retry-After`.
//! - [`require_auth`] lets a request through with a live session, or with
//!   `Authorization: Bearer <token>` from `web.api_tokens`, which is read-only (GET
//!   and HEAD only). With a session, every other method must carry [`CSRF_HEADER`]
//!   equal to the session's token and must not come from another site
//!   (`Sec-Fetch-Site`, `Origin`). Without credentials, API paths (`/api/…`,
//!   `/metrics`) answer 401 and pages redirect to `/login?next=<path>`.
//! - The client address is the TCP peer (`ConnectInfo`); `X-Forwarded-For` is not
//!   trusted.
//! - Passwords, tokens, session ids and cookies are never logged.

mod clock;
mod limit;
mod password;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Extensions, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Semaphore;

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::limit::WINDOW as LOGIN_WINDOW;
pub use self::password::{hash_password, verify_password, PasswordError};
pub use self::session::Session;

use self::limit::{retry_after_secs, ClientKey, LoginLimiter};
use self::session::SessionStore;
use crate::config::WebSettings;
use crate::error::AppError;
use crate::state::AppState;
use hostscope_core::secret::same_secret;

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "hs_session";
/// The session cookie's name under TLS.
pub const SECURE_SESSION_COOKIE: &str = "__Host-hs_session";

/// The header that carries the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Password hashes computed at once; more logins wait (argon2id takes 19 MiB each).
pub const MAX_PARALLEL_HASHES: usize = 2;

/// Longest username and password accepted by the login endpoint.
const MAX_USERNAME_LEN: usize = 256;
const MAX_PASSWORD_LEN: usize = 1024;

/// Who made an authenticated request; in the request's (and the response's)
/// extensions, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in user (session cookie).
    User(String),
    /// A read-only API token, by its configured name.
    Token(String),
}

impl Principal {
    /// The user's or the token's name.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(n) | Principal::Token(n) => n,
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(n) => write!(f, "user:{n}"),
            Principal::Token(n) => write!(f, "token:{n}"),
        }
    }
}

struct User {
    name: String,
    password_hash: SecretString,
}

struct Token {
    name: String,
    token: SecretString,
}

/// Users, tokens, sessions and the login rate limit of one server.
pub struct Auth {
    users: Arc<[User]>,
    tokens: Vec<Token>,
    sessions: SessionStore,
    limiter: LoginLimiter,
    clock: RwLock<Arc<dyn Clock>>,
    session_ttl: Duration,
    secure_cookies: bool,
    hashing: Semaphore,
}

impl Auth {
    /// From `[web]`, with the system clock.
    pub fn new(settings: &WebSettings) -> Self {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// From `[web]`, reading time from `clock`.
    pub fn with_clock(settings: &WebSettings, clock: Arc<dyn Clock>) -> Self {
        let users: Vec<User> = settings
            .users
            .iter()
            .map(|u| User {
                name: u.name.clone(),
                password_hash: u.password_hash.clone(),
            })
            .collect();
        for u in &users {
            if !password::is_well_formed(u.password_hash.expose_secret()) {
                tracing::error!(
                    message = "password hash does not parse; this user cannot log in",
                    user = %u.name
                );
            }
        }
        Auth {
            users: users.into(),
            tokens: settings
                .api_tokens
                .iter()
                .map(|t| Token {
                    name: t.name.clone(),
                    token: t.token.clone(),
                })
                .collect(),
            sessions: SessionStore::new(settings.session_ttl),
            limiter: LoginLimiter::new(settings.login_attempts_per_minute),
            clock: RwLock::new(clock),
            session_ttl: settings.session_ttl,
            secure_cookies: settings.secure_cookies,
            hashing: Semaphore::new(MAX_PARALLEL_HASHES),
        }
    }

    /// Read time from `clock` from now on. A seam for tests that drive a server built
    /// by [`AppState::new`]; production never calls it.
    pub fn replace_clock(&self, clock: Arc<dyn Clock>) {
        let mut c = self.clock.write().unwrap_or_else(|p| p.into_inner());
        *c = clock;
    }

    fn now(&self) -> Instant {
        self.clock.read().unwrap_or_else(|p| p.into_inner()).now()
    }

    /// The session cookie's name: [`SECURE_SESSION_COOKIE`] under TLS.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The `Set-Cookie` value that starts session `id`.
    fn session_cookie(&self, id: &str) -> Option<HeaderValue> {
        self.set_cookie(id, self.session_ttl.as_secs())
    }

    /// The `Set-Cookie` value that removes the session cookie.
    fn clearing_cookie(&self) -> HeaderValue {
        self.set_cookie("", 0)
            .unwrap_or_else(|| HeaderValue::from_static("hs_session=; Max-Age=0"))
    }

    fn set_cookie(&self, value: &str, max_age: u64) -> Option<HeaderValue> {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            self.cookie_name()
        );
        HeaderValue::from_str(&cookie).ok()
    }

    /// The live session named by the request's cookie, with its id.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let now = self.now();
        session_ids(headers, self.cookie_name())
            .find_map(|id| self.sessions.get(id, now).map(|s| (id.to_owned(), s)))
    }

    /// The name of the API token `presented`, comparing with every configured token
    /// in constant time.
    fn token_name(&self, presented: &str) -> Option<String> {
        let mut found = None;
        for t in &self.tokens {
            if same_secret(t.token.expose_secret().as_bytes(), presented.as_bytes()) {
                found = Some(t.name.clone());
            }
        }
        found
    }

    /// The user whose name and password these are, hashing exactly once either way.
    async fn check_password(
        &self,
        username: String,
        password: SecretString,
    ) -> Result<Option<String>, AppError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AppError::Internal("password hashing is shut down".to_owned()))?;
        let users = Arc::clone(&self.users);
        tokio::task::spawn_blocking(move || {
            let mut found: Option<&User> = None;
            for u in users.iter() {
                if same_secret(u.name.as_bytes(), username.as_bytes()) {
                    found = Some(u);
                }
            }
            match found {
                Some(u) => {
                    verify_password(u.password_hash.expose_secret(), password.expose_secret())
                        .then(|| u.name.clone())
                }
                None => {
                    // The same work as for a real user, so timing does not tell
                    // which names exist; the result is ignored.
                    if let Some(any) = users.first() {
                        let _ = verify_password(
                            any.password_hash.expose_secret(),
                            password.expose_secret(),
                        );
                    }
                    None
                }
            }
        })
        .await
        .map_err(|e| AppError::Internal(format!("password check failed: {e}")))
    }
}

/// Every value of the cookie `cookie` in the request's `Cookie` headers.
fn session_ids<'a>(headers: &'a HeaderMap, cookie: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == cookie && !value.is_empty()).then_some(value)
        })
}

/// The client's address: the TCP peer. Never a forwarded header.
pub fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Whether `method` may change state (everything but GET and HEAD).
fn changes_state(method: &Method) -> bool {
    !(method == Method::GET || method == Method::HEAD)
}

/// Whether the request comes from this site's own pages (or from something that is
/// not a browser: no `Sec-Fetch-Site` and no `Origin`). `Sec-Fetch-Site` must be
/// `same-origin` or `none`; `Origin` must name the host the request was sent to.
/// Behind a reverse proxy, the proxy must pass the original `Host`.
pub fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // "null" and anything else that is not an origin
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    host.is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

/// Whether `path` is served as JSON (or Prometheus text) rather than a page: those
/// answer 401 instead of redirecting to the login page.
pub fn is_api_path(path: &str) -> bool {
    path == "/metrics" || path == "/api" || path.starts_with("/api/")
}

/// `next` when it is a path on this site that is safe to redirect to after login
/// (starts with one `/`, no `//` or `/\` that browsers read as another host, no
/// backslash or control character); else `None`. The login page must check its
/// `next` parameter with this before redirecting.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

/// `/login?next=<the request's path and query>`, percent-encoded.
fn login_location(uri: &Uri) -> String {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let target = safe_next(target).unwrap_or("/");
    let mut location = String::from("/login?next=");
    for b in target.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            location.push(char::from(b));
        } else {
            location.push_str(&format!("%{b:02X}"));
        }
    }
    location
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denial {
    /// No session and no token.
    NotLoggedIn,
    /// An `Authorization` header that is not one of the API tokens.
    BadToken,
    /// An API token on a state-changing request.
    ReadOnlyToken,
    /// A state-changing request from another site.
    CrossSite,
    /// A state-changing request without the session's CSRF token.
    Csrf,
}

impl Denial {
    fn response(self, auth: &Auth, method: &Method, uri: &Uri, had_cookie: bool) -> Response {
        let mut resp = match self {
            Denial::NotLoggedIn if !is_api_path(uri.path()) && !changes_state(method) => {
                let mut resp = StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = HeaderValue::from_str(&login_location(uri)) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp
            }
            Denial::NotLoggedIn => AppError::Unauthorized.into_response(),
            Denial::BadToken => {
                let mut resp = AppError::Unauthorized.into_response();
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                resp
            }
            Denial::ReadOnlyToken => {
                AppError::Forbidden("API tokens are read-only".to_owned()).into_response()
            }
            Denial::CrossSite => {
                AppError::Forbidden("cross-site request refused".to_owned()).into_response()
            }
            Denial::Csrf => {
                AppError::Forbidden("missing or wrong CSRF token".to_owned()).into_response()
            }
        };
        if self == Denial::NotLoggedIn && had_cookie {
            // A stale or unknown session cookie: tell the browser to drop it.
            resp.headers_mut()
                .append(header::SET_COOKIE, auth.clearing_cookie());
        }
        resp
    }
}

/// The session of a request, checked for CSRF and origin when it changes state.
fn checked_session(
    auth: &Auth,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(String, Session), Denial> {
    let (id, session) = auth.session(headers).ok_or(Denial::NotLoggedIn)?;
    if changes_state(method) {
        if !same_origin(headers, uri) {
            return Err(Denial::CrossSite);
        }
        let presented = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !same_secret(presented, session.csrf_token.as_bytes()) {
            return Err(Denial::Csrf);
        }
    }
    Ok((id, session))
}

/// Who may make this request, or why not.
fn authenticate(
    auth: &Auth,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Principal, Denial> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(Denial::BadToken)?;
        let name = auth.token_name(presented).ok_or(Denial::BadToken)?;
        if changes_state(method) {
            return Err(Denial::ReadOnlyToken);
        }
        return Ok(Principal::Token(name));
    }
    checked_session(auth, method, uri, headers).map(|(_, s)| Principal::User(s.user))
}

/// Lets a request through with a valid session (and CSRF token when it changes
/// state) or a read-only API token; otherwise 401 (API) or a redirect to /login.
/// The [`Principal`] goes into the request's and the response's extensions.
pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authenticate(&state.auth, req.method(), req.uri(), req.headers()) {
        Ok(principal) => {
            req.extensions_mut().insert(principal.clone());
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(principal);
            resp
        }
        Err(denial) => {
            let had_cookie = session_ids(req.headers(), state.auth.cookie_name())
                .next()
                .is_some();
            tracing::debug!(
                message = "request refused",
                reason = ?denial,
                method = %req.method(),
                path = %req.uri().path(),
                client = ?client_ip(req.extensions()),
            );
            denial.response(&state.auth, req.method(), req.uri(), had_cookie)
        }
    }
}

/// `/api/v1/login`, `/api/v1/logout`, `/api/v1/session`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/session", get(session))
}

/// The body of `POST /api/v1/login`.
#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: SecretString,
}

fn invalid_credentials() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": "invalid credentials" })),
    )
        .into_response()
}

/// `POST /api/v1/login` `{"username","password"}` → `{"user","csrf_token"}` and the
/// session cookie; 401 on wrong credentials, 429 when rate-limited.
async fn login(State(state): State<AppState>, req: Request) -> Response {
    let auth = &state.auth;
    let client = client_ip(req.extensions());
    if !same_origin(req.headers(), req.uri()) {
        return AppError::Forbidden("cross-site request refused".to_owned()).into_response();
    }
    let key = ClientKey::of(client);
    if let Err(wait) = auth.limiter.begin(key, auth.now()) {
        tracing::warn!(message = "login rate limit reached", client = ?client);
        return AppError::TooManyRequests {
            retry_after_secs: retry_after_secs(wait),
        }
        .into_response();
    }
    let previous = auth.session(req.headers()).map(|(id, _)| id);
    let body = match Json::<LoginRequest>::from_request(req, &()).await {
        Ok(Json(body)) => body,
        Err(rejection) => {
            auth.limiter.give_back(key);
            return AppError::bad("body", rejection.body_text()).into_response();
        }
    };
    if body.username.len() > MAX_USERNAME_LEN
        || body.password.expose_secret().len() > MAX_PASSWORD_LEN
    {
        auth.limiter.give_back(key);
        return AppError::bad("body", "username or password too long").into_response();
    }
    let user = match auth.check_password(body.username, body.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::warn!(message = "login failed", client = ?client);
            return invalid_credentials();
        }
        Err(e) => {
            auth.limiter.give_back(key);
            return e.into_response();
        }
    };
    auth.limiter.give_back(key);
    if let Some(previous) = previous {
        auth.sessions.remove(&previous);
    }
    let (id, session) = auth.sessions.create(&user, auth.now());
    tracing::info!(message = "login", user = %user, client = ?client);
    let mut resp =
        Json(serde_json::json!({ "user": session.user, "csrf_token": session.csrf_token }))
            .into_response();
    match auth.session_cookie(&id) {
        Some(cookie) => {
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        None => AppError::Internal("cannot build the session cookie".to_owned()).into_response(),
    }
}

/// `POST /api/v1/logout` (session and CSRF token required): ends the session; 204.
async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let auth = &state.auth;
    let had_cookie = session_ids(req.headers(), auth.cookie_name())
        .next()
        .is_some();
    match checked_session(auth, req.method(), req.uri(), req.headers()) {
        Ok((id, session)) => {
            auth.sessions.remove(&id);
            tracing::info!(message = "logout", user = %session.user);
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, auth.clearing_cookie());
            resp
        }
        Err(denial) => denial.response(auth, req.method(), req.uri(), had_cookie),
    }
}

/// `GET /api/v1/session` (session required) → `{"user","csrf_token"}`.
async fn session(State(state): State<AppState>, req: Request) -> Response {
    let auth = &state.auth;
    match auth.session(req.headers()) {
        Some((_, session)) => {
            Json(serde_json::json!({ "user": session.user, "csrf_token": session.csrf_token }))
                .into_response()
        }
        None => {
            let had_cookie = session_ids(req.headers(), auth.cookie_name())
                .next()
                .is_some();
            Denial::NotLoggedIn.response(auth, req.method(), req.uri(), had_cookie)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_cases() {
        let uri: Uri = "/api/v1/logout".parse().unwrap();
        let check = |pairs: &[(&'static str, &'static str)], expected: bool| {
            assert_eq!(same_origin(&headers(pairs), &uri), expected, "{pairs:?}");
        };
        check(&[], true);
        check(&[("host", "mon:8080")], true);
        check(&[("host", "mon:8080"), ("origin", "http://mon:8080")], true);
        check(
            &[("host", "mon:8080"), ("origin", "https://MON:8080")],
            true,
        );
        check(
            &[("host", "mon:8080"), ("origin", "http://evil.example")],
            false,
        );
        check(
            &[("host", "mon:8080"), ("origin", "http://mon:8081")],
            false,
        );
        check(&[("host", "mon:8080"), ("origin", "null")], false);
        check(&[("origin", "http://mon:8080")], false);
        check(&[("sec-fetch-site", "same-origin")], true);
        check(&[("sec-fetch-site", "none")], true);
        check(&[("sec-fetch-site", "same-site")], false);
        check(
            &[
                ("sec-fetch-site", "cross-site"),
                ("host", "mon"),
                ("origin", "http://mon"),
            ],
            false,
        );
    }

    #[test]
    fn login_redirects_keep_only_local_paths() {
        let check = |uri: &str, expected: &str| {
            assert_eq!(login_location(&uri.parse().unwrap()), expected, "{uri}");
        };
        check("/hosts/x", "/login?next=/hosts/x");
        check(
            "/hosts/x?range=1h&y=%20",
            "/login?next=/hosts/x%3Frange%3D1h%26y%3D%2520",
        );
        check("//evil.example/x", "/login?next=/");
        check("/", "/login?next=/");
        assert_eq!(safe_next("/alerts"), Some("/alerts"));
        assert_eq!(safe_next("//evil"), None);
        assert_eq!(safe_next("/\\evil"), None);
        assert_eq!(safe_next("https://evil"), None);
        assert_eq!(safe_next("evil"), None);
        assert_eq!(safe_next("/a\nb"), None);
    }

    #[test]
    fn session_cookie_values_are_found() {
        let h = headers(&[
            ("cookie", "a=1; hs_session=abc; b=2"),
            ("cookie", "hs_session=def"),
        ]);
        assert_eq!(
            session_ids(&h, SESSION_COOKIE).collect::<Vec<_>>(),
            ["abc", "def"]
        );
        assert_eq!(session_ids(&h, SECURE_SESSION_COOKIE).count(), 0);
        let h = headers(&[("cookie", "hs_session_x=1; xhs_session=2; hs_session=")]);
        assert_eq!(session_ids(&h, SESSION_COOKIE).count(), 0);
        let h = headers(&[("cookie", "hs_session=abc; __Host-hs_session=def")]);
        assert_eq!(
            session_ids(&h, SECURE_SESSION_COOKIE).collect::<Vec<_>>(),
            ["def"]
        );
    }

    #[test]
    fn api_paths() {
        for p in ["/api/v1/hosts", "/api", "/metrics"] {
            assert!(is_api_path(p), "{p}");
        }
        for p in ["/", "/hosts/x", "/apix", "/metrics/x", "/alerts"] {
            assert!(!is_api_path(p), "{p}");
        }
    }
}
