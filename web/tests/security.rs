//! hostscope-web is secure by default, end to end: the real app on a loopback port
//! (plain HTTP or TLS) in front of a real InfluxDB, driven by an HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use hostscope_core::config::ConfigErrors;
use hostscope_core::influx::Client;
use hostscope_tests::influxd::TestInflux;
use hostscope_web::auth::ManualClock;
use hostscope_web::config::{TokenConfig, UserConfig};
use hostscope_web::security::TlsConfig;
use hostscope_web::{AppState, Settings, WebConfig, WebSettings};
use reqwest::header::{HeaderMap, CACHE_CONTROL, LOCATION, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const USER: &str = "admin";
const PASSWORD: &str = "correct horse battery staple";
const TOKEN: &str = "grafana-read-only-0123456789";
const ATTEMPTS: u32 = 3;

/// Every route behind the login, with the method it answers. Pages redirect to the
/// login page; `/api/…` and `/metrics` answer 401. Add new routes here.
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/hosts/x"),
    ("GET", "/alerts"),
    ("GET", "/reports/1"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/hosts"),
    ("GET", "/api/v1/series"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/reports"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/logout"),
];

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// An argon2id hash with tiny parameters (debug builds hash slowly; the server
/// verifies with whatever parameters the hash names).
fn cheap_hash(password: &str) -> String {
    let params = argon2::Params::new(64, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"hostscope-test-s").unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn settings(influx: &TestInflux, edit: impl FnOnce(&mut WebSettings)) -> Settings {
    let mut errors = ConfigErrors::new("test");
    let mut web = WebConfig::default()
        .validate(&mut errors)
        .expect("default [web]");
    web.users = vec![UserConfig {
        name: USER.to_owned(),
        password_hash: SecretString::from(cheap_hash(PASSWORD)),
    }];
    web.api_tokens = vec![TokenConfig {
        name: "grafana".to_owned(),
        token: SecretString::from(TOKEN.to_owned()),
    }];
    web.session_ttl = Duration::from_secs(60);
    web.login_attempts_per_minute = ATTEMPTS;
    edit(&mut web);
    Settings {
        influx: influx.settings("hostscope"),
        web,
    }
}

/// hostscope-web on a free loopback port; stopped on drop.
struct Web {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Web {
    /// Serve `settings` as the binary does (`hostscope_web::serve`).
    async fn start(settings: Settings) -> Web {
        let tls = settings.web.tls.is_some();
        Self::spawn(tls, move |listener, shutdown| {
            Box::pin(hostscope_web::serve(listener, settings, shutdown))
        })
        .await
    }

    /// Serve `settings` with the sessions and rate limit reading `clock`.
    async fn start_with_clock(settings: Settings, clock: Arc<ManualClock>) -> Web {
        let tls = settings.web.tls.is_some();
        let state = AppState::new(Client::new(settings.influx).unwrap(), settings.web);
        state.auth.replace_clock(clock);
        Self::spawn(tls, move |listener, shutdown| {
            Box::pin(hostscope_web::serve_state(listener, state, shutdown))
        })
        .await
    }

    async fn spawn<F>(tls: bool, serve: F) -> Web
    where
        F: FnOnce(
            tokio::net::TcpListener,
            std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>,
        >,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(listener, shutdown));
        let base = if tls {
            format!("https://localhost:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        Web {
            base,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Stop the server and return what `serve` returned.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn client() -> reqwest::Client {
    client_builder().build().unwrap()
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
}

/// A logged-in browser: its `Cookie` header value and the CSRF token.
struct Login {
    cookie: String,
    csrf: String,
}

async fn login_response(
    client: &reqwest::Client,
    web: &Web,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(web.url("/api/v1/login"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "username": user, "password": password }).to_string())
        .send()
        .await
        .unwrap()
}

/// The `name=value` part of the session cookie in `headers`, and its attributes.
fn session_cookie(headers: &HeaderMap) -> (String, Vec<String>) {
    let set_cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("hs_session=") || c.starts_with("__Host-hs_session="))
        .expect("a session cookie");
    let mut parts = set_cookie.split(';').map(|p| p.trim().to_owned());
    let pair = parts.next().unwrap();
    (pair, parts.collect())
}

async fn login(client: &reqwest::Client, web: &Web) -> Login {
    let resp = login_response(client, web, USER, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (cookie, _) = session_cookie(resp.headers());
    let body = json(resp).await;
    assert_eq!(body["user"], USER);
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
    Login { cookie, csrf }
}

async fn get(
    client: &reqwest::Client,
    web: &Web,
    path: &str,
    login: Option<&Login>,
) -> reqwest::Response {
    let mut req = client.get(web.url(path));
    if let Some(l) = login {
        req = req.header("cookie", &l.cookie);
    }
    req.send().await.unwrap()
}

/// The response's JSON body.
async fn json(resp: reqwest::Response) -> serde_json::Value {
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

async fn error_of(resp: reqwest::Response) -> serde_json::Value {
    json(resp).await
}

#[tokio::test]
async fn every_route_needs_a_login_but_healthz() {
    let influx = TestInflux::start();
    let web = Web::start(settings(&influx, |_| {})).await;
    let client = client();

    for &(method, path) in PROTECTED {
        let method: Method = method.parse().unwrap();
        let resp = client
            .request(method.clone(), web.url(path))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} is not routed; PROTECTED lists the routes the app must have"
        );
        if is_api(path) {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a login"
            );
            assert_eq!(
                error_of(resp).await["error"],
                "not logged in",
                "{method} {path}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::SEE_OTHER,
                "{method} {path} without a login"
            );
            assert_eq!(
                resp.headers()[LOCATION],
                format!("/login?next={path}"),
                "{method} {path}"
            );
        }
        // An unknown session cookie is no better, and the browser is told to drop it.
        let resp = client
            .request(method.clone(), web.url(path))
            .header("cookie", format!("hs_session={}", "0".repeat(64)))
            .send()
            .await
            .unwrap();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::SEE_OTHER].contains(&resp.status()),
            "{method} {path} with an unknown session: {}",
            resp.status()
        );
        let (pair, attributes) = session_cookie(resp.headers());
        assert_eq!(pair, "hs_session=");
        assert!(
            attributes.contains(&"Max-Age=0".to_owned()),
            "{attributes:?}"
        );
    }

    // The query string survives the trip through the login page, encoded.
    let resp = get(&client, &web, "/hosts/x?range=1h&step=10s", None).await;
    assert_eq!(
        resp.headers()[LOCATION],
        "/login?next=/hosts/x%3Frange%3D1h%26step%3D10s"
    );

    let resp = get(&client, &web, "/healthz", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(error_of(resp).await["status"], "ok");

    // With a session, the auth layer lets every route through.
    let l = login(&client, &web).await;
    for &(method, path) in PROTECTED.iter().filter(|(m, _)| *m == "GET") {
        let resp = get(&client, &web, path, Some(&l)).await;
        assert!(
            ![
                StatusCode::UNAUTHORIZED,
                StatusCode::SEE_OTHER,
                StatusCode::FORBIDDEN
            ]
            .contains(&resp.status()),
            "{method} {path} with a session: {}",
            resp.status()
        );
    }
    web.stop().await.unwrap();
}

#[tokio::test]
async fn login_cookie_expiry_and_logout() {
    let influx = TestInflux::start();
    let clock = Arc::new(ManualClock::new());
    let web = Web::start_with_clock(
        settings(&influx, |w| w.login_attempts_per_minute = 10),
        clock.clone(),
    )
    .await;
    let client = client();

    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD), (USER, "")] {
        let resp = login_response(&client, &web, user, password).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{user}/{password}");
        assert!(resp.headers().get(SET_COOKIE).is_none());
        assert_eq!(
            error_of(resp).await,
            serde_json::json!({ "error": "invalid credentials" })
        );
    }
    // Not JSON: refused without counting as a guess.
    let resp = client
        .post(web.url("/api/v1/login"))
        .body("username=admin&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = login_response(&client, &web, USER, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (pair, attributes) = session_cookie(resp.headers());
    let id = pair.strip_prefix("hs_session=").unwrap();
    assert_eq!(id.len(), 64, "256 random bits in hex");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=60"] {
        assert!(
            attributes.contains(&wanted.to_owned()),
            "{wanted} in {attributes:?}"
        );
    }
    assert!(
        !attributes.contains(&"Secure".to_owned()),
        "no Secure on plain HTTP: {attributes:?}"
    );
    let body = json(resp).await;
    let l = Login {
        cookie: pair.clone(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(l.csrf.len(), 64);

    let resp = get(&client, &web, "/api/v1/session", Some(&l)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        json(resp).await,
        serde_json::json!({ "user": USER, "csrf_token": l.csrf })
    );
    assert_eq!(
        get(&client, &web, "/metrics", Some(&l)).await.status(),
        StatusCode::OK
    );

    // The session lasts session_ttl (60s), not a moment longer.
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        get(&client, &web, "/metrics", Some(&l)).await.status(),
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get(&client, &web, "/metrics", Some(&l)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&client, &web, "/api/v1/session", Some(&l))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Logout needs the CSRF token, then ends the session.
    let l = login(&client, &web).await;
    let logout = |csrf: Option<&str>| {
        let mut req = client
            .post(web.url("/api/v1/logout"))
            .header("cookie", &l.cookie);
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    let resp = logout(None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&client, &web, "/api/v1/session", Some(&l))
            .await
            .status(),
        StatusCode::OK
    );
    let resp = logout(Some(&l.csrf)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (pair, attributes) = session_cookie(resp.headers());
    assert_eq!(pair, "hs_session=");
    assert!(attributes.contains(&"Max-Age=0".to_owned()));
    assert_eq!(
        get(&client, &web, "/api/v1/session", Some(&l))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&client, &web, "/metrics", Some(&l)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    web.stop().await.unwrap();
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_the_same_origin() {
    let influx = TestInflux::start();
    let web = Web::start(settings(&influx, |_| {})).await;
    let client = client();
    let l = login(&client, &web).await;
    let host = format!("127.0.0.1:{}", web.port());

    // Through require_auth: a POST to a protected route (/metrics answers only GET,
    // so past the auth layer it is 405). Refused without the token; with it, the
    // auth layer lets it through.
    let post = |csrf: Option<&str>, extra: &[(&str, String)]| {
        let mut req = client.post(web.url("/metrics")).header("cookie", &l.cookie);
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        for (k, v) in extra {
            req = req.header(*k, v);
        }
        req.send()
    };
    let resp = post(None, &[]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        error_of(resp).await,
        serde_json::json!({ "error": "forbidden", "message": "missing or wrong CSRF token" })
    );
    let wrong = "0".repeat(64);
    assert_eq!(
        post(Some(&wrong), &[]).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(""), &[]).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let resp = post(Some(&l.csrf), &[]).await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "with the CSRF token"
    );
    let same = [
        ("origin", format!("http://{host}")),
        ("sec-fetch-site", "same-origin".to_owned()),
    ];
    let resp = post(Some(&l.csrf), &same).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "same origin");

    // Cross-site, even with the right token.
    for extra in [
        vec![("origin", "http://evil.example".to_owned())],
        vec![("origin", "null".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![("sec-fetch-site", "same-site".to_owned())],
    ] {
        let resp = post(Some(&l.csrf), &extra).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{extra:?}");
        assert_eq!(
            error_of(resp).await["message"],
            "cross-site request refused"
        );
    }

    // The same rules on the login endpoint's sibling, logout.
    let resp = client
        .post(web.url("/api/v1/logout"))
        .header("cookie", &l.cookie)
        .header("x-csrf-token", &l.csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A cross-site login (login CSRF) is refused too.
    let resp = client
        .post(web.url("/api/v1/login"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(serde_json::json!({ "username": USER, "password": PASSWORD }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get(SET_COOKIE).is_none());
    // A GET needs no token.
    assert_eq!(
        get(&client, &web, "/metrics", Some(&l)).await.status(),
        StatusCode::OK
    );
    web.stop().await.unwrap();
}

#[tokio::test]
async fn api_tokens_are_read_only() {
    let influx = TestInflux::start();
    let web = Web::start(settings(&influx, |_| {})).await;
    let client = client();
    let bearer = format!("Bearer {TOKEN}");

    let resp = client
        .get(web.url("/metrics"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("hostscope_web_requests_total"));
    let resp = client
        .head(web.url("/metrics"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for &(_, path) in PROTECTED
        .iter()
        .filter(|(m, p)| *m == "GET" && *p != "/api/v1/session")
    {
        let resp = client
            .get(web.url(path))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        assert!(
            ![
                StatusCode::UNAUTHORIZED,
                StatusCode::SEE_OTHER,
                StatusCode::FORBIDDEN
            ]
            .contains(&resp.status()),
            "GET {path} with a token: {}",
            resp.status()
        );
    }

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let resp = client
            .request(method.clone(), web.url("/metrics"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method}");
        assert_eq!(error_of(resp).await["message"], "API tokens are read-only");
    }

    for wrong in [
        "Bearer grafana-read-only-0123456780".to_owned(),
        "Bearer ".to_owned(),
        format!("Basic {TOKEN}"),
        format!("Bearer {TOKEN}x"),
    ] {
        for path in ["/metrics", "/"] {
            let resp = client
                .get(web.url(path))
                .header("authorization", &wrong)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{wrong:?} on {path}"
            );
        }
    }
    web.stop().await.unwrap();
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_client_address() {
    let influx = TestInflux::start();
    let clock = Arc::new(ManualClock::new());
    let web = Web::start_with_clock(settings(&influx, |_| {}), clock.clone()).await;
    let client = client();

    for i in 0..ATTEMPTS {
        let resp = login_response(&client, &web, USER, "wrong").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "failure {}", i + 1);
    }
    clock.advance(Duration::from_secs(20));
    for password in ["wrong", PASSWORD] {
        let resp = login_response(&client, &web, USER, password).await;
        assert_eq!(
            resp.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "attempt {} ({password})",
            ATTEMPTS + 1
        );
        let retry_after: u64 = resp.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            retry_after, 40,
            "until the minute that began with the first failure ends"
        );
        assert!(resp.headers().get(SET_COOKIE).is_none());
    }

    // Another client address (127.0.0.2 is loopback too) is not affected.
    let other = client_builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let resp = login_response(&other, &web, USER, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // When the window has passed, the first client may try again.
    clock.advance(Duration::from_secs(40));
    assert_eq!(
        login_response(&client, &web, USER, PASSWORD).await.status(),
        StatusCode::OK
    );
    web.stop().await.unwrap();
}

fn assert_security_headers(headers: &HeaderMap, what: &str, tls: bool) {
    let expect = [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ];
    for (name, value) in expect {
        assert_eq!(
            headers.get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name} on {what}"
        );
    }
    assert_eq!(
        headers.contains_key("strict-transport-security"),
        tls,
        "Strict-Transport-Security on {what} (TLS: {tls})"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let influx = TestInflux::start();
    let timeout = Duration::from_secs(1);
    let web = Web::start(settings(&influx, |w| w.header_read_timeout = timeout)).await;
    // Wait until it serves.
    let resp = get(&client(), &web, "/healthz", None).await;
    assert_eq!(resp.status(), 200);
    for (what, bytes, waits) in hostscope_tests::STALLED_CLIENTS {
        let held = hostscope_tests::held_open_for(web.port(), bytes, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{what}: still open"));
        assert!(
            !waits || held >= timeout.mul_f64(0.9),
            "{what}: closed after {held:?}"
        );
    }
    // Meanwhile complete requests are served as ever.
    let resp = get(&client(), &web, "/healthz", None).await;
    assert_eq!(resp.status(), 200);
    web.stop().await.unwrap();

    // With the default (30 s) the same connection is still open after 3 s.
    let web = Web::start(settings(&influx, |_| {})).await;
    assert_eq!(get(&client(), &web, "/healthz", None).await.status(), 200);
    let (_, half, _) = hostscope_tests::STALLED_CLIENTS[1];
    let held = hostscope_tests::held_open_for(web.port(), half, Duration::from_secs(3)).await;
    assert_eq!(held, None);
    web.stop().await.unwrap();
}

/// `web.secure_cookies`: on with TLS, and on demand behind a proxy that ends TLS.
#[tokio::test]
async fn secure_cookies_follow_tls_or_the_setting() {
    let validated = |json: &str| {
        let config: WebConfig = serde_json::from_str(json).unwrap();
        let mut errors = ConfigErrors::new("test");
        let web = config.validate(&mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        web.secure_cookies
    };
    assert!(!validated("{}"));
    assert!(validated(r#"{"tls_cert": "a.crt", "tls_key": "a.key"}"#));
    assert!(validated(r#"{"secure_cookies": true}"#));
    assert!(!validated(
        r#"{"tls_cert": "a.crt", "tls_key": "a.key", "secure_cookies": false}"#
    ));

    // Behind a TLS proxy: plain HTTP here, but the cookie is for HTTPS only.
    let influx = TestInflux::start();
    let web = Web::start(settings(&influx, |w| w.secure_cookies = true)).await;
    let client = client();
    let resp = login_response(&client, &web, USER, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (pair, attributes) = session_cookie(resp.headers());
    assert!(pair.starts_with("__Host-hs_session="), "{pair}");
    assert!(attributes.contains(&"Secure".to_owned()), "{attributes:?}");
    // Logging out clears that cookie.
    let id = pair.strip_prefix("__Host-hs_session=").unwrap();
    let csrf = json(
        client
            .get(web.url("/api/v1/session"))
            .header("cookie", &pair)
            .send()
            .await
            .unwrap(),
    )
    .await["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = client
        .post(web.url("/api/v1/logout"))
        .header("cookie", format!("__Host-hs_session={id}"))
        .header(hostscope_web::auth::CSRF_HEADER, csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (pair, attributes) = session_cookie(resp.headers());
    assert_eq!(pair, "__Host-hs_session=");
    assert!(
        attributes.contains(&"Max-Age=0".to_owned()),
        "{attributes:?}"
    );
    web.stop().await.unwrap();
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let influx = TestInflux::start();
    let web = Web::start(settings(&influx, |_| {})).await;
    let client = client();
    let l = login(&client, &web).await;

    let cases = [
        ("a page", get(&client, &web, "/", Some(&l)).await),
        (
            "a redirect to the login page",
            get(&client, &web, "/alerts", None).await,
        ),
        (
            "an API response",
            get(&client, &web, "/api/v1/session", Some(&l)).await,
        ),
        ("a 401", get(&client, &web, "/api/v1/hosts", None).await),
        ("a 404", get(&client, &web, "/no/such/page", Some(&l)).await),
        ("/healthz", get(&client, &web, "/healthz", None).await),
        ("/metrics", get(&client, &web, "/metrics", Some(&l)).await),
    ];
    for (what, resp) in &cases {
        assert_security_headers(resp.headers(), what, false);
    }
    for (what, resp) in &cases[2..] {
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store", "{what}");
    }
    web.stop().await.unwrap();
}

#[tokio::test]
async fn allowlist_decides_who_may_connect() {
    let influx = TestInflux::start();
    let client = client();

    let web = Web::start(settings(&influx, |w| {
        w.allow = vec!["10.0.0.0/8".parse().unwrap()]
    }))
    .await;
    for path in ["/healthz", "/api/v1/login", "/", "/metrics"] {
        let resp = get(&client, &web, path, None).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert_security_headers(resp.headers(), path, false);
        assert_eq!(
            error_of(resp).await["message"],
            "client address not allowed"
        );
    }
    let resp = login_response(&client, &web, USER, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    web.stop().await.unwrap();

    let web = Web::start(settings(&influx, |w| {
        w.allow = vec!["127.0.0.0/8".parse().unwrap()]
    }))
    .await;
    assert_eq!(
        get(&client, &web, "/healthz", None).await.status(),
        StatusCode::OK
    );
    login(&client, &web).await;
    web.stop().await.unwrap();

    // An IPv4 CIDR matches an IPv4 client on a dual-stack listener ([::], where
    // the peer shows as ::ffff:127.0.0.1), when the loopback has IPv6.
    if let Ok(listener) = tokio::net::TcpListener::bind("[::]:0").await {
        let port = listener.local_addr().unwrap().port();
        let settings = settings(&influx, |w| w.allow = vec!["127.0.0.0/8".parse().unwrap()]);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hostscope_web::serve(listener, settings, async move {
            let _ = stopped.await;
        }));
        let resp = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "IPv4-mapped peer");
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}

/// A self-signed certificate for `localhost`, written as `<name>.crt`/`<name>.key`;
/// returns the paths and the certificate PEM.
fn write_self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let pem = generated.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key, pem)
}

/// A client that trusts only the certificate `pem` and reaches `localhost` at `port`.
fn tls_client(pem: &str, port: u16) -> reqwest::Client {
    client_builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap()
}

/// Whether the server presents the certificate `pem` (a client trusting only that
/// one completes a request).
async fn serves_certificate(pem: &str, web: &Web) -> bool {
    tls_client(pem, web.port())
        .get(web.url("/healthz"))
        .send()
        .await
        .is_ok()
}

async fn wait_for_certificate(pem: &str, web: &Web) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !serves_certificate(pem, web).await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 10s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tls_serves_secure_cookies_and_reloads_on_sighup() {
    let influx = TestInflux::start();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = write_self_signed(dir.path(), "server");
    let web = Web::start(settings(&influx, |w| {
        w.tls = Some((cert.clone(), key.clone()));
        w.secure_cookies = true; // as validation sets it with tls_cert
    }))
    .await;
    let client = tls_client(&first, web.port());

    let resp = client.get(web.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(resp.headers(), "/healthz over TLS", true);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let resp = login_response(&client, &web, USER, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (pair, attributes) = session_cookie(resp.headers());
    // __Host-: browsers take it only from a secure origin, for the whole host.
    assert!(pair.starts_with("__Host-hs_session="), "{pair}");
    assert!(!attributes.iter().any(|a| a.starts_with("Domain")));
    for wanted in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            attributes.contains(&wanted.to_owned()),
            "{wanted} in {attributes:?}"
        );
    }
    // The session is read under that name only.
    let id = pair.strip_prefix("__Host-hs_session=").unwrap();
    for (cookie, status) in [
        (format!("__Host-hs_session={id}"), StatusCode::OK),
        (format!("hs_session={id}"), StatusCode::UNAUTHORIZED),
    ] {
        let resp = client
            .get(web.url("/api/v1/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{cookie}");
    }
    // Plain HTTP on the TLS port gets nowhere.
    let plain = client_builder().build().unwrap();
    assert!(plain
        .get(format!("http://127.0.0.1:{}/healthz", web.port()))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success()));

    // New files, then SIGHUP (the server registered its handler before it answered
    // the requests above, so the signal cannot kill the test process).
    let (new_cert, new_key, second) = write_self_signed(dir.path(), "next");
    std::fs::rename(&new_cert, &cert).unwrap();
    std::fs::rename(&new_key, &key).unwrap();
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP).unwrap();
    wait_for_certificate(&second, &web).await;
    assert!(
        !serves_certificate(&first, &web).await,
        "the old certificate is no longer served"
    );
    web.stop().await.unwrap();
}

#[tokio::test]
async fn tls_failed_reload_keeps_the_certificate_and_bad_files_are_named() {
    let influx = TestInflux::start();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = write_self_signed(dir.path(), "server");

    // Startup: a missing or broken file stops the server with an error naming it.
    let missing = dir.path().join("missing.key");
    let web = Web::start(settings(&influx, |w| {
        w.tls = Some((cert.clone(), missing.clone()))
    }))
    .await;
    let error = web.stop().await.unwrap_err().to_string();
    assert!(
        error.contains("TLS key") && error.contains("missing.key"),
        "{error}"
    );
    let garbage = dir.path().join("garbage.crt");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let web = Web::start(settings(&influx, |w| {
        w.tls = Some((garbage.clone(), key.clone()))
    }))
    .await;
    let error = web.stop().await.unwrap_err().to_string();
    assert!(
        error.contains("TLS certificate") && error.contains("garbage.crt"),
        "{error}"
    );

    // Reloads triggered directly (the same call SIGHUP makes).
    let settings = settings(&influx, |w| w.tls = Some((cert.clone(), key.clone())));
    let tls = TlsConfig::load(&cert, &key).await.unwrap();
    let reloader = tls.clone();
    let state = AppState::new(Client::new(settings.influx).unwrap(), settings.web);
    let app = hostscope_web::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let web = Web::spawn(true, move |listener, shutdown| {
        Box::pin(hostscope_web::security::serve_tls_config(
            listener,
            app,
            tls,
            Duration::from_secs(30),
            shutdown,
        ))
    })
    .await;
    assert!(serves_certificate(&first, &web).await);

    std::fs::write(&cert, "garbage").unwrap();
    let error = reloader.reload().await.unwrap_err().to_string();
    assert!(error.contains("server.crt"), "{error}");
    assert!(
        serves_certificate(&first, &web).await,
        "a failed reload keeps the certificate"
    );

    let (_, other_key, _) = write_self_signed(dir.path(), "other");
    let (new_cert, new_key, second) = write_self_signed(dir.path(), "next");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&other_key, &key).unwrap();
    let error = reloader.reload().await.unwrap_err().to_string();
    assert!(error.contains("cannot be used together"), "{error}");
    assert!(serves_certificate(&first, &web).await);

    std::fs::copy(&new_key, &key).unwrap();
    reloader.reload().await.unwrap();
    assert!(
        serves_certificate(&second, &web).await,
        "the new certificate after a good reload"
    );
    assert!(!serves_certificate(&first, &web).await);
    web.stop().await.unwrap();
}

#[test]
fn hash_password_on_a_terminal_prompts_and_does_not_echo() {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let terminal = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(terminal.to_str().unwrap())
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostscope-web"))
        .arg("hash-password")
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Type only once it asks (it turns echo off first).
    let mut stderr = child.stderr.take().unwrap();
    let mut prompt = Vec::new();
    let mut buf = [0u8; 64];
    while !String::from_utf8_lossy(&prompt).contains("Password: ") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {:?}", String::from_utf8_lossy(&prompt));
        prompt.extend_from_slice(&buf[..n]);
    }
    let mut master = std::fs::File::from(master);
    master.write_all(b"typed-in-secret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hostscope_web::auth::verify_password(
        hash.trim_end(),
        "typed-in-secret"
    ));
    // What the terminal showed: the newline, never the password. (The child has
    // exited and nothing else holds the terminal, so the read ends.)
    let mut shown = Vec::new();
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => shown.extend_from_slice(&buf[..n]),
        }
    }
    let shown = String::from_utf8_lossy(&shown);
    assert!(!shown.contains("typed-in-secret"), "echoed: {shown:?}");
    // And the terminal echoes again afterwards.
    let modes = rustix::termios::tcgetattr(&master).unwrap().local_modes;
    assert!(
        modes.contains(rustix::termios::LocalModes::ECHO),
        "{modes:?}"
    );
}

#[test]
fn hash_password_command() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hostscope-web"))
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };

    let out = run("secret\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim_end();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(hostscope_web::auth::verify_password(hash, "secret"));
    assert!(!hostscope_web::auth::verify_password(hash, "secret\n"));

    // CRLF and a missing newline are fine too; salts differ each time.
    let again = String::from_utf8(run("secret\r\n").stdout).unwrap();
    assert_ne!(again.trim_end(), hash);
    assert!(hostscope_web::auth::verify_password(
        again.trim_end(),
        "secret"
    ));

    for empty in ["", "\n", "\r\n"] {
        let out = run(empty);
        assert!(!out.status.success(), "{empty:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("empty"), "{stderr}");
    }
}
