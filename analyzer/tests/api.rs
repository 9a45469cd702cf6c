//! The alerts API over real HTTP: what the web's Alerts page reads and sends, bad
//! bodies, hostile strings, and that acks and silences persist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hostscope_analyzer::api;
use hostscope_analyzer::engine::{Engine, EngineSettings, GroupBy, Shared};
use hostscope_analyzer::lifecycle::State;
use hostscope_analyzer::rules;
use hostscope_analyzer::state::{AlertRecord, Observation, Store};
use hostscope_core::influx::Client;
use serde_json::{json, Value};

const NOW: i64 = 1_790_000_000_000;

struct Api {
    base: String,
    http: reqwest::Client,
    shared: Arc<Shared>,
    state: tempfile::TempDir,
}

fn rules() -> Vec<rules::Rule> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        r#"
        [[analyzer.rules]]
        name = "cpu-high"
        measurement = "cpu"
        field = "usage_user"
        detector = { type = "threshold", critical_above = 90.0 }
        "#,
    )
    .unwrap();
    let cfg: hostscope_analyzer::FileConfig =
        hostscope_core::config::load(&hostscope_core::config::Sources::file(&path)).unwrap();
    rules::validate(&cfg.analyzer.rules, &[]).unwrap()
}

/// An API over a state with one firing alert on `web-1` and one pending on `<b>`.
async fn start() -> Api {
    start_with(None).await
}

/// The API, behind `token` when one is given.
async fn start_with(token: Option<&str>) -> Api {
    let state = tempfile::tempdir().unwrap();
    let mut store = Store::default();
    for (host, st) in [("web-1", State::Firing), ("<b>\"x'", State::Pending)] {
        let tags = BTreeMap::from([("host".to_owned(), host.to_owned())]);
        let id = hostscope_analyzer::state::alert_id("cpu-high", &tags);
        let mut a = AlertRecord::new(id.clone(), "cpu-high", tags, NOW);
        a.lifecycle.state = st;
        a.lifecycle.breach_since_ms = Some(NOW - 600_000);
        a.last = Some(Observation {
            value: 95.5,
            lower: None,
            upper: Some(90.0),
            score: 5.5,
            reason: "95.5 is above the critical bound 90".into(),
            breached: true,
            severity: None,
            anchor_ms: None,
        });
        a.severity = hostscope_core::detect::Severity::Critical;
        store.alerts.insert(id, a);
    }
    store.save(state.path()).unwrap();
    // The engine is only used to load the state; its client is never called.
    let client = Client::new(hostscope_core::config::InfluxSettings::new(
        "http://127.0.0.1:9".parse().unwrap(),
        hostscope_core::config::VersionSetting::Auto,
    ))
    .unwrap();
    let engine = Engine::new(
        client,
        rules(),
        EngineSettings {
            state_dir: state.path().to_owned(),
            concurrency: 1,
            timeout: Duration::from_secs(1),
            group_by: GroupBy::Host,
            group_wait: Duration::ZERO,
        },
    )
    .unwrap();
    let shared = engine.shared();
    let app = api::with_token(
        api::router(shared.clone(), Arc::new(|| NOW)),
        token.map(|t| hostscope_core::secret::SecretString::from(t.to_owned())),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // As the analyzer serves, with a short header timeout to test it.
    tokio::spawn(api::serve(listener, app, HEADERS, std::future::pending()));
    Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        shared,
        state,
    }
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
        )
    }

    async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
        )
    }
}

/// The header timeout of the API under test.
const HEADERS: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let api = start().await;
    assert_eq!(api.get("/api/v1/rules").await.0, 200);
    let port: u16 = api.base.rsplit(':').next().unwrap().parse().unwrap();
    for (what, bytes, waits) in hostscope_tests::STALLED_CLIENTS {
        let held = hostscope_tests::held_open_for(port, bytes, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{what}: still open"));
        assert!(
            !waits || held >= HEADERS.mul_f64(0.9),
            "{what}: closed after {held:?}"
        );
    }
    assert_eq!(api.get("/api/v1/rules").await.0, 200, "still serving");
}

#[tokio::test]
async fn a_token_guards_everything_but_healthz() {
    const TOKEN: &str = "analyzer-token-0123456789";
    let api = start_with(Some(TOKEN)).await;
    let url = |path: &str| format!("{}{path}", api.base);
    for path in [
        "/api/v1/alerts",
        "/api/v1/silences",
        "/api/v1/rules",
        "/nowhere",
    ] {
        for auth in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
            let mut req = api.http.get(url(path));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{path} {auth:?}");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            assert!(body["error"]
                .as_str()
                .unwrap()
                .contains("analyzer.api_token"));
        }
        let resp = api
            .http
            .get(url(path))
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        let want = if path == "/nowhere" { 404 } else { 200 };
        assert_eq!(resp.status(), want, "{path}");
    }
    let resp = api
        .http
        .post(url("/api/v1/silences"))
        .body(r#"{"host": "web-1", "duration": "1h"}"#)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "writes too");
    let resp = api.http.get(url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "health checks need no token");
}

#[tokio::test]
async fn alerts_list_has_what_the_web_reads() {
    let api = start().await;
    let (status, body) = api.get("/api/v1/alerts").await;
    assert_eq!(status, 200);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let a = alerts.iter().find(|a| a["host"] == "web-1").unwrap();
    assert_eq!(a["rule"], "cpu-high");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["value"], 95.5);
    assert_eq!(a["upper"], 90.0);
    assert_eq!(a["acknowledged"], false);
    assert_eq!(a["silenced"], false);
    assert_eq!(a["labels"]["host"], "web-1");
    assert_eq!(a["since"], "2026-09-21T14:03:20.000Z");
    assert_eq!(a["summary"], "95.5 is above the critical bound 90");
    assert!(a["id"].as_str().unwrap().len() == 16);
    let odd = alerts.iter().find(|a| a["state"] == "pending").unwrap();
    assert_eq!(
        odd["host"], "<b>\"x'",
        "hostile host names come back as data"
    );
}

#[tokio::test]
async fn acknowledging_persists_and_refuses_what_it_cannot_ack() {
    let api = start().await;
    let (_, body) = api.get("/api/v1/alerts").await;
    let firing = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "firing")
        .unwrap();
    let pending = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "pending")
        .unwrap();
    let id = firing["id"].as_str().unwrap();
    let (status, body) = api.post(&format!("/api/v1/alerts/{id}/ack"), "{}").await;
    assert_eq!(
        (status, &body["acknowledged"]),
        (200, &json!(true)),
        "{body}"
    );
    let on_disk = Store::load(api.state.path()).unwrap();
    assert!(on_disk.alerts[id].acknowledged);
    let (status, body) = api
        .post(
            &format!("/api/v1/alerts/{}/ack", pending["id"].as_str().unwrap()),
            "",
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = api.post("/api/v1/alerts/nope/ack", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no alert with id \"nope\"");
    let (status, body) = api.post(&format!("/api/v1/alerts/{id}/ack"), "[1]").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "the body must be a JSON object");
}

#[tokio::test]
async fn silences_from_the_alerts_page_mute_the_alert() {
    let api = start().await;
    // What the web sends: {host, rule, duration}.
    let (status, s) = api
        .post(
            "/api/v1/silences",
            r#"{"host":"web-1","rule":"cpu-high","duration":"4h"}"#,
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["ends_at"], "2026-09-21T18:13:20.000Z");
    assert_eq!(s["active"], true);
    let (_, body) = api.get("/api/v1/alerts").await;
    let a = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["host"] == "web-1")
        .unwrap()
        .clone();
    assert_eq!(a["silenced"], true);
    assert_eq!(a["silenced_until"], "2026-09-21T18:13:20.000Z");
    let (_, list) = api.get("/api/v1/silences").await;
    assert_eq!(list["silences"].as_array().unwrap().len(), 1);
    assert_eq!(Store::load(api.state.path()).unwrap().silences.len(), 1);
    // Expire it.
    let id = s["id"].as_str().unwrap();
    let r = api
        .http
        .delete(format!("{}/api/v1/silences/{id}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["active"], false);
    let store = api.shared.store.lock().await;
    assert!(store
        .silenced_by(
            "cpu-high",
            &BTreeMap::from([("host".to_owned(), "web-1".to_owned())]),
            NOW
        )
        .is_none());
}

#[tokio::test]
async fn bad_silences_are_refused_with_the_reason() {
    let api = start().await;
    for (body, want) in [
        (
            r#"{"duration":"1h"}"#,
            "a silence needs at least one matcher",
        ),
        (
            r#"{"host":"a"}"#,
            "duration (e.g. \"1h\") or ends_at is required",
        ),
        (
            r#"{"host":"a","duration":"soon"}"#,
            "duration \"soon\" is not a duration",
        ),
        (
            r#"{"host":"a","duration":"1000d"}"#,
            "between 1s and 90 days",
        ),
        (r#"{"host":"a","duration":"1h","ends_at":1}"#, "not both"),
        (
            r#"{"host":"a","ends_at":"2020-01-01T00:00:00Z"}"#,
            "in the past",
        ),
        (
            r#"{"host":"a","ends_at":"tomorrow"}"#,
            "not an RFC 3339 time",
        ),
        (
            r#"{"host":"a\u0000b","duration":"1h"}"#,
            "control characters",
        ),
        (
            r#"{"host":"a","duration":"1h","extra":1}"#,
            "unknown field `extra`",
        ),
        (r#"not json"#, "invalid silence"),
    ] {
        let (status, answer) = api.post("/api/v1/silences", body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let msg = answer["error"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    // A hostile but printable matcher is fine, and stays data.
    let (status, s) = api
        .post(
            "/api/v1/silences",
            r#"{"rule":"x' OR 1=1 --\"","duration":"1h"}"#,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(s["rule"], "x' OR 1=1 --\"");
    let (status, body) = api.get("/api/v1/nothing").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no such endpoint"))
    );
    let (status, rules) = api.get("/api/v1/rules").await;
    assert_eq!(status, 200);
    assert_eq!(rules["rules"][0]["query"], "mean(cpu.usage_user)");
}
