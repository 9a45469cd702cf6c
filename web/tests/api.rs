//! The JSON API against a real `influxd` (1.x), seeded with a week of 10-second data
//! by `hostscope_tests::seed`, with the app served in-process on a free port and
//! called over HTTP with a read-only API token (and a session for the POSTs).
//!
//! Seeding takes a couple of seconds, so one test (`api_over_a_seeded_week`) seeds
//! once and runs every read-only check against it, each check a function named for
//! what it proves. The analyzer proxy, the reports (served by the real analyzer API
//! over a temp state directory) and the database-down cases have their own small
//! servers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hostscope_core::config::{ConfigErrors, HumanDuration};
use hostscope_core::lineproto::Precision;
use hostscope_tests::influxd::TestInflux;
use hostscope_tests::seed::{self, Seed, HOSTS, STEP_MS};
use hostscope_web::config::{TokenConfig, UserConfig, WebConfig};
use hostscope_web::Settings;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

const TOKEN: &str = "read-only-test-token-0123456789";
const USER: &str = "admin";
const PASSWORD: &str = "correct horse battery staple";
const DB: &str = "api";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

// -- harness --------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A served app; shut down when dropped.
struct App {
    base: String,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The argon2id hash of [`PASSWORD`], computed once per test binary.
fn password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hostscope_web::auth::hash_password(PASSWORD).unwrap())
        .clone()
}

impl App {
    /// Serve the app for `server`'s database `DB`, optionally with an analyzer.
    async fn start(server: &TestInflux, analyzer_url: Option<String>) -> App {
        Self::start_with(server, analyzer_url, None).await
    }

    /// The same, sending `analyzer_token` to the analyzer.
    async fn start_with(
        server: &TestInflux,
        analyzer_url: Option<String>,
        analyzer_token: Option<&str>,
    ) -> App {
        let config = WebConfig {
            listen: Some("127.0.0.1:0".into()),
            users: vec![UserConfig {
                name: USER.into(),
                password_hash: SecretString::from(password_hash()),
            }],
            api_tokens: vec![TokenConfig {
                name: "tests".into(),
                token: SecretString::from(TOKEN),
            }],
            max_range: Some(HumanDuration::from_secs(8 * 86_400)),
            login_attempts_per_minute: Some(100),
            analyzer_url,
            analyzer_token: analyzer_token.map(|t| SecretString::from(t.to_owned())),
            collect_interval: Some(HumanDuration::from_secs(10)),
            ..WebConfig::default()
        };
        let mut errors = ConfigErrors::new("test");
        let web = config.validate(&mut errors).expect("web settings");
        assert!(errors.is_empty(), "{errors:?}");
        let mut influx = server.settings(DB);
        influx.max_retries = 1;
        let settings = Settings { influx, web };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            hostscope_web::serve(listener, settings, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        App {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            shutdown: Some(tx),
        }
    }

    /// GET `path` (with its query) with the API token: status and JSON body.
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("GET {path}: {status} with a body that is not JSON ({e}): {text}")
        });
        (status, body)
    }

    /// GET that must answer 200.
    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// GET that must answer 400 naming `param`.
    async fn bad(&self, path: &str, param: &str) {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "GET {path}: {body}");
        assert_eq!(body["error"], "invalid parameter", "GET {path}: {body}");
        assert_eq!(body["param"], param, "GET {path}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }

    /// Log in: the session cookie and CSRF token.
    async fn login(&self) -> (String, String) {
        let resp = self
            .http
            .post(format!("{}/api/v1/login", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "username": USER, "password": PASSWORD }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next().filter(|c| c.starts_with("hs_session=")))
            .expect("session cookie")
            .to_owned();
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_owned())
    }

    /// POST `body` with a session: status and JSON body (`null` when empty).
    async fn post(
        &self,
        session: &(String, String),
        path: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &session.0)
            .header("x-csrf-token", &session.1)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
        };
        (status, body)
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn approx(got: &Value, want: f64, what: &str) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {got} is not a number (want {want})"));
    assert!(
        (g - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: got {g}, want {want}"
    );
}

/// The series of a `/series` answer by one tag's value (`""` for untagged).
fn by_tag<'a>(body: &'a Value, key: &str) -> BTreeMap<String, &'a Vec<Value>> {
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let tag = s["tags"][key].as_str().unwrap_or("").to_owned();
            (tag, s["points"].as_array().unwrap())
        })
        .collect()
}

/// The mean CPU use of `host` (cpu-total) over the points in `[t, t + step)`.
fn window_mean(seed: &Seed, host: usize, t: i64, step: i64) -> f64 {
    let first = ((t - seed.first_ms).max(0) + STEP_MS - 1) / STEP_MS;
    let last = ((t + step - 1 - seed.first_ms) / STEP_MS).min(seed.last_index(host));
    let used: Vec<f64> = (first..=last)
        .map(|i| 100.0 - seed::cpu_idle(host, 2, i))
        .collect();
    used.iter().sum::<f64>() / used.len() as f64
}

fn series_path(host: &str, measurement: &str, field: &str, rest: &str) -> String {
    format!("/api/v1/series?host={host}&measurement={measurement}&field={field}{rest}")
}

// -- the seeded week -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_over_a_seeded_week() {
    let server = TestInflux::start();
    let seed = seed::seed_week(&server.settings(DB), now_ms()).await;
    eprintln!(
        "seeded {} points in {:.2?} ({:.0} points/s)",
        seed.points,
        seed.elapsed,
        seed.points as f64 / seed.elapsed.as_secs_f64()
    );
    assert!(
        seed.elapsed < Duration::from_secs(20),
        "seeding took {:?}",
        seed.elapsed
    );
    let app = App::start(&server, None).await;

    let checks = Instant::now();
    host_list_has_latest_values_and_the_silent_host(&app, &seed).await;
    host_list_covers_the_whole_week(&app, &seed).await;
    series_values_and_step_selection(&app, &seed).await;
    a_week_at_10s_is_capped_at_2000_points(&app, &seed).await;
    counters_are_exact_rates_per_interface_and_summed(&app, &seed).await;
    rates_stay_non_negative_across_a_counter_reset(&app, &seed).await;
    details_tables(&app, &seed).await;
    alert_history_periods(&app, &seed).await;
    alerts_without_an_analyzer(&app).await;
    reports_without_an_analyzer(&app).await;
    bad_parameters_are_400s_naming_the_parameter(&app, &seed).await;
    hostile_strings_never_change_a_query(&app, &server, &seed).await;
    openapi_is_served(&app).await;
    eprintln!("checks took {:.2?}", checks.elapsed());
}

async fn host_list_has_latest_values_and_the_silent_host(app: &App, seed: &Seed) {
    let end = seed.last_ms + 1;
    // Two hours, so the silent host (stopped an hour ago) has points in the range.
    let body = app
        .ok(&format!("/api/v1/hosts?start={}&end={end}", end - 2 * HOUR))
        .await;
    assert_eq!(body["alerts_source"], "none");
    let hosts = body["hosts"].as_array().unwrap();
    let names: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(names, ["db-1", "web-1", "web-2"], "sorted by name");
    for h in hosts {
        let name = h["host"].as_str().unwrap();
        let idx = HOSTS.iter().position(|x| *x == name).unwrap();
        let i = seed.last_index(idx);
        let what = |f: &str| format!("{name}.{f}");
        assert_eq!(h["last_seen"], json!(seed.time(i)), "{}", what("last_seen"));
        approx(&h["cpu"], 100.0 - seed::cpu_idle(idx, 2, i), &what("cpu"));
        approx(&h["mem"], seed::mem_used_percent(idx, i), &what("mem"));
        approx(&h["load1"], seed::load1(idx, i), &what("load1"));
        let (want_disk, want_path) =
            if seed::disk_used_percent(idx, 0) > seed::disk_used_percent(idx, 1) {
                (seed::disk_used_percent(idx, 0), "/")
            } else {
                (seed::disk_used_percent(idx, 1), "/data")
            };
        approx(&h["disk"], want_disk, &what("disk"));
        assert_eq!(h["disk_path"], want_path, "{}", what("disk_path"));
        let spark = h["sparkline"].as_array().unwrap();
        assert!(
            (30..=61).contains(&spark.len()),
            "{}: {}",
            what("sparkline"),
            spark.len()
        );
        if idx == seed::SILENT_HOST {
            assert_eq!(h["state"], "silent", "{h}");
            assert_eq!(
                h["net_bytes_per_s"],
                Value::Null,
                "no traffic in the last minutes"
            );
            assert_eq!(
                spark.last().unwrap()[1],
                Value::Null,
                "silent for the last hour"
            );
        } else {
            assert_eq!(h["state"], "ok", "{h}");
            approx(
                &h["net_bytes_per_s"],
                seed::net_bytes_per_s(idx),
                &what("net"),
            );
            // A whole window of the sparkline (2h / 60 = 2 minutes): its mean.
            let step = spark[1][0].as_i64().unwrap() - spark[0][0].as_i64().unwrap();
            assert_eq!(step, 120_000);
            let p = &spark[spark.len() - 2];
            approx(
                &p[1],
                window_mean(seed, idx, p[0].as_i64().unwrap(), step),
                &what("sparkline"),
            );
        }
    }
    // The silent host does not vanish when its last point is older than the range:
    // the default range is the last hour, and it stopped an hour ago.
    let body = app.ok(&format!("/api/v1/hosts?end={end}")).await;
    let names: Vec<&str> = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["web-1", "web-2"],
        "a host without points in the range is not listed"
    );
}

async fn host_list_covers_the_whole_week(app: &App, seed: &Seed) {
    let started = Instant::now();
    let body = app
        .ok(&format!(
            "/api/v1/hosts?start={}&end={}",
            seed.first_ms,
            seed.last_ms + 1
        ))
        .await;
    let elapsed = started.elapsed();
    let hosts = body["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    for h in hosts {
        let spark = h["sparkline"].as_array().unwrap();
        assert!((30..=61).contains(&spark.len()), "{}", spark.len());
        let idx = HOSTS.iter().position(|x| *x == h["host"]).unwrap();
        let step = spark[1][0].as_i64().unwrap() - spark[0][0].as_i64().unwrap();
        assert_eq!(step, 10_080_000, "a week / 60");
        for p in &spark[1..spark.len() - 1] {
            approx(
                &p[1],
                window_mean(seed, idx, p[0].as_i64().unwrap(), step),
                "sparkline window",
            );
        }
    }
    let silent = hosts.iter().find(|h| h["host"] == "db-1").unwrap();
    assert_eq!(silent["state"], "silent");
    eprintln!("a week of hosts in {elapsed:.2?}");
}

async fn series_values_and_step_selection(app: &App, seed: &Seed) {
    let end = seed.last_ms + 1;
    let start = seed.last_ms - HOUR + STEP_MS;
    let range = format!("&start={start}&end={end}");
    let i0 = seed.last_index(0) - 359;

    // cpu-total, one window per point: the points themselves.
    let body = app
        .ok(&series_path(
            "web-1",
            "cpu",
            "usage_idle",
            &format!("&tags=cpu:cpu-total{range}"),
        ))
        .await;
    assert_eq!(body["step_ms"], 10_000);
    assert_eq!(body["agg"], "mean");
    assert_eq!(body["rate"], false);
    assert_eq!(
        body["group_by"],
        json!(["cpu"]),
        "cpu is grouped by core by default"
    );
    let series = by_tag(&body, "cpu");
    assert_eq!(series.keys().collect::<Vec<_>>(), ["cpu-total"]);
    let points = series["cpu-total"];
    assert_eq!(points.len(), 360);
    for (n, p) in points.iter().enumerate() {
        let i = i0 + n as i64;
        assert_eq!(p[0], json!(seed.time(i)));
        approx(&p[1], seed::cpu_idle(0, 2, i), "usage_idle");
    }

    // Every core by default; one merged series with group_by empty.
    let body = app
        .ok(&series_path("web-1", "cpu", "usage_user", &range))
        .await;
    let series = by_tag(&body, "cpu");
    assert_eq!(
        series.keys().collect::<Vec<_>>(),
        ["cpu-total", "cpu0", "cpu1"]
    );
    approx(&series["cpu0"][5][1], seed::cpu_user(0, 0, i0 + 5), "cpu0");
    let body = app
        .ok(&series_path(
            "web-1",
            "cpu",
            "usage_user",
            &format!("&group_by={range}"),
        ))
        .await;
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    assert_eq!(body["series"][0]["tags"], json!({}));
    let i = i0 + 7;
    let mean = (0..3).map(|c| seed::cpu_user(0, c, i)).sum::<f64>() / 3.0;
    approx(&body["series"][0]["points"][7][1], mean, "mean over cores");

    // Step: max(requested, interval, range/points), rounded up to a nice length.
    for (extra, step) in [
        ("", 10_000),
        ("&step=1s", 10_000),
        ("&step=7s", 10_000),
        ("&step=45s", 60_000),
        ("&step=60000", 60_000),
        ("&points=10", 600_000),
        ("&points=100&step=1m", 60_000),
        ("&points=7", 600_000),
    ] {
        let body = app
            .ok(&series_path(
                "web-1",
                "mem",
                "used_percent",
                &format!("{range}{extra}"),
            ))
            .await;
        assert_eq!(body["step_ms"], step, "{extra}");
        let n = body["series"][0]["points"].as_array().unwrap().len() as i64;
        assert_eq!(
            n,
            (end - 1) / step - start / step + 1,
            "{extra}: one point per window"
        );
        assert!(n <= 361);
    }

    // Aggregates over whole minutes.
    let minute = |agg: &str| {
        let path = series_path(
            "web-2",
            "cpu",
            "usage_idle",
            &format!("&tags=cpu:cpu-total&step=1m&agg={agg}{range}"),
        );
        async move { app.ok(&path).await }
    };
    let body = minute("max").await;
    let p = &body["series"][0]["points"][2];
    let t = p[0].as_i64().unwrap();
    let i = (t - seed.first_ms) / STEP_MS;
    let values: Vec<f64> = (i..i + 6).map(|i| seed::cpu_idle(1, 2, i)).collect();
    approx(
        &p[1],
        values.iter().cloned().fold(f64::MIN, f64::max),
        "max",
    );
    let body = minute("count").await;
    approx(&body["series"][0]["points"][2][1], 6.0, "count");
    assert_eq!(body["agg"], "count");
    let body = minute("p50").await;
    assert_eq!(body["agg"], "p50");
    let body = minute("last").await;
    approx(&body["series"][0]["points"][2][1], values[5], "last");

    // A host without data: no series, not an error.
    let body = app
        .ok(&series_path("nobody", "cpu", "usage_idle", &range))
        .await;
    assert_eq!(body["series"], json!([]));
    // A business measurement's field, found in the database.
    let body = app
        .ok(&series_path("web-1", seed::BUSINESS, "pending", &range))
        .await;
    assert_eq!(body["group_by"], json!([]));
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
}

async fn a_week_at_10s_is_capped_at_2000_points(app: &App, seed: &Seed) {
    let range = format!("&start={}&end={}", seed.first_ms, seed.last_ms + 1);
    let raw = seed.last_index(0) + 1;
    assert!(raw > 60_000, "{raw} raw points");
    for (extra, step) in [
        ("", 1_800_000),
        ("&points=2000", 600_000),
        ("&points=2000&step=1s", 600_000),
        ("&points=1500", 600_000),
        ("&step=1h", 3_600_000),
        ("&points=1", 7 * 86_400_000),
    ] {
        let started = Instant::now();
        let body = app
            .ok(&series_path(
                "web-1",
                "cpu",
                "usage_idle",
                &format!("&tags=cpu:cpu-total{range}{extra}"),
            ))
            .await;
        assert_eq!(body["step_ms"], step, "{extra}");
        let points = body["series"][0]["points"].as_array().unwrap();
        assert!(points.len() <= 2000, "{extra}: {} points", points.len());
        let want_points: i64 = (seed.last_ms) / step - seed.first_ms / step + 1;
        assert_eq!(points.len() as i64, want_points, "{extra}");
        // Whole windows hold a multiple of 5 points: the mean idle is exactly 88.
        if step <= 3_600_000 {
            for p in &points[1..points.len() - 1] {
                approx(&p[1], 88.0, &format!("{extra}: window {}", p[0]));
            }
        }
        eprintln!(
            "week of cpu{extra}: {} points in {:.2?}",
            points.len(),
            started.elapsed()
        );
    }
    // A counter over the week: the rate of every whole window is the slope.
    let body = app
        .ok(&series_path(
            "web-1",
            "net",
            "bytes_recv",
            &format!("&tags=interface:eth0{range}"),
        ))
        .await;
    assert_eq!(body["rate"], true);
    let points = body["series"][0]["points"].as_array().unwrap();
    assert!(points.len() <= 2000);
    assert_eq!(points[0][1], Value::Null, "no data before the first window");
    for p in &points[1..points.len() - 1] {
        approx(&p[1], 100.0, "week-long eth0 rate");
    }
}

async fn counters_are_exact_rates_per_interface_and_summed(app: &App, seed: &Seed) {
    let range = format!(
        "&start={}&end={}",
        seed.last_ms - HOUR + STEP_MS,
        seed.last_ms + 1
    );
    let body = app
        .ok(&series_path("web-1", "net", "bytes_recv", &range))
        .await;
    assert_eq!(
        (
            body["agg"].as_str(),
            body["rate"].as_bool(),
            body["counter"].as_bool()
        ),
        (Some("rate"), Some(true), Some(true))
    );
    assert_eq!(body["group_by"], json!(["interface"]));
    let series = by_tag(&body, "interface");
    assert_eq!(series.keys().collect::<Vec<_>>(), ["eth0", "lo"]);
    for (iface, per_s) in [("eth0", 100.0), ("lo", 20.0)] {
        let points = series[iface];
        assert_eq!(points.len(), 360);
        // InfluxQL reads one window before the range for the first rate (Flux
        // leaves the first window empty): the first point is the rate or null.
        if !points[0][1].is_null() {
            approx(&points[0][1], per_s, iface);
        }
        for p in &points[1..] {
            approx(&p[1], per_s, iface);
        }
    }
    // Rates are computed per interface and then summed; `agg` does not apply to counters.
    let body = app
        .ok(&series_path(
            "web-1",
            "net",
            "bytes_sent",
            &format!("&group_by=&agg=max{range}"),
        ))
        .await;
    assert_eq!(body["agg"], "rate");
    let points = body["series"][0]["points"].as_array().unwrap();
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    for p in &points[1..] {
        approx(&p[1], 50.0 + 20.0, "eth0 + lo sent");
    }
    // Over minutes: the same rates.
    let body = app
        .ok(&series_path(
            "web-1",
            "net",
            "bytes_recv",
            &format!("&group_by=&step=5m{range}"),
        ))
        .await;
    assert_eq!(body["step_ms"], 300_000);
    let points = body["series"][0]["points"].as_array().unwrap();
    for p in &points[1..points.len() - 1] {
        approx(&p[1], 120.0, "eth0 + lo received, 5m windows");
    }
    // diskio per device, and summed; swap (one series).
    let body = app
        .ok(&series_path("web-2", "diskio", "reads", &range))
        .await;
    let series = by_tag(&body, "name");
    approx(&series["sda"][9][1], 1.0, "sda reads/s");
    approx(&series["sdb"][9][1], 0.2, "sdb reads/s");
    let body = app
        .ok(&series_path(
            "web-2",
            "diskio",
            "write_bytes",
            &format!("&group_by={range}"),
        ))
        .await;
    approx(
        &body["series"][0]["points"][9][1],
        (40_960.0 + 8192.0) / 10.0,
        "write bytes/s",
    );
    let body = app
        .ok(&series_path(
            "db-1",
            "swap",
            "out",
            &format!(
                "&start={}&end={}",
                seed.silent_last_ms - 10 * MINUTE,
                seed.silent_last_ms + 1
            ),
        ))
        .await;
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    approx(
        &body["series"][0]["points"][3][1],
        102.4,
        "swap out bytes/s",
    );
    // A gauge asked as a rate is a rate too.
    let body = app
        .ok(&series_path(
            "web-1",
            "processes",
            "total",
            &format!("&agg=rate{range}"),
        ))
        .await;
    assert_eq!(body["rate"], true);
    approx(
        &body["series"][0]["points"][3][1],
        0.0,
        "constant gauge rate",
    );
}

async fn rates_stay_non_negative_across_a_counter_reset(app: &App, seed: &Seed) {
    let host = HOSTS[seed::RESET_HOST];
    let per_s = seed::net_recv_step(seed::RESET_HOST, 0) as f64 / 10.0;
    // Ten-second windows around the reset.
    let range = format!(
        "&start={}&end={}",
        seed.reset_ms - 30 * MINUTE,
        seed.reset_ms + 30 * MINUTE
    );
    let body = app
        .ok(&series_path(
            host,
            "net",
            "bytes_recv",
            &format!("&tags=interface:eth0{range}"),
        ))
        .await;
    let points = body["series"][0]["points"].as_array().unwrap();
    let mut nulls = Vec::new();
    for p in points {
        match p[1].as_f64() {
            None => nulls.push(p[0].as_i64().unwrap()),
            Some(v) => {
                assert!(v >= 0.0, "negative rate {v} at {}", p[0]);
                approx(&p[1], per_s, "rate around the reset");
            }
        }
    }
    nulls.retain(|t| *t != seed.reset_ms - 30 * MINUTE);
    assert_eq!(
        nulls,
        [seed.reset_ms],
        "only the window of the reset has no rate"
    );
    // Over the week, in 30-minute windows: never negative.
    let range = format!("&start={}&end={}", seed.first_ms, seed.last_ms + 1);
    let body = app
        .ok(&series_path(
            host,
            "net",
            "bytes_recv",
            &format!("&group_by={range}"),
        ))
        .await;
    let values: Vec<f64> = body["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p[1].as_f64())
        .collect();
    assert!(values.len() > 300);
    assert!(values.iter().all(|v| *v >= 0.0), "{values:?}");
}

async fn details_tables(app: &App, seed: &Seed) {
    let end = seed.last_ms + 1;
    let body = app
        .ok(&format!(
            "/api/v1/hosts/web-1/details?start={}&end={end}",
            end - HOUR
        ))
        .await;
    for (key, by) in [("top_cpu", "cpu"), ("top_memory", "memory")] {
        let rows = body[key].as_array().unwrap();
        let want: Vec<_> = seed::TOP.iter().filter(|t| t.by == by).collect();
        assert_eq!(
            rows.len(),
            want.len(),
            "{key}: the older cycle's rank 4 is gone: {rows:?}"
        );
        for (row, t) in rows.iter().zip(want) {
            assert_eq!(
                row,
                &json!({
                    "rank": t.rank, "pid": t.pid, "name": t.name, "user": t.user,
                    "cmdline": t.cmdline, "cpu_usage": t.cpu_usage, "memory_rss": t.memory_rss,
                    "time": seed.last_ms,
                }),
                "{key}"
            );
        }
    }
    let listen = body["listen"].as_array().unwrap();
    let got: Vec<(String, String, i64, i64, String)> = listen
        .iter()
        .map(|l| {
            (
                l["proto"].as_str().unwrap().to_owned(),
                l["address"].as_str().unwrap().to_owned(),
                l["port"].as_i64().unwrap(),
                l["pid"].as_i64().unwrap(),
                l["process"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, i64, i64, String)> = seed::LISTEN
        .iter()
        .map(|(p, a, port, pid, proc_)| {
            (p.to_string(), a.to_string(), *port, *pid, proc_.to_string())
        })
        .collect();
    want.sort_by_key(|w| w.2);
    assert_eq!(got, want, "by port; the older cycle's 8080 is gone");

    assert_eq!(
        body["logmatch"],
        json!([
            { "file": seed::LOG_FILE, "rule": "error", "count": seed::LOG_ERRORS,
              "last_line": seed::log_line(seed::LOG_CYCLES - 1), "last_time": seed.last_ms },
            { "file": seed::LOG_FILE, "rule": "warn", "count": 0, "last_line": null, "last_time": null },
        ])
    );
    assert_eq!(
        body["business"],
        json!([{ "measurement": "shop", "fields": ["pending", "revenue"] }])
    );
    assert_eq!(body["disks"], json!(["/", "/data"]));
    assert_eq!(body["interfaces"], json!(["eth0", "lo"]));
    assert_eq!(body["cpus"], json!(["cpu0", "cpu1"]));
    assert_eq!(body["devices"], json!(["sda", "sdb"]));

    // Over a range without the cycle: empty tables, not errors.
    let body = app
        .ok(&format!(
            "/api/v1/hosts/web-1/details?start={}&end={}",
            seed.first_ms,
            seed.first_ms + HOUR
        ))
        .await;
    for key in [
        "top_cpu",
        "top_memory",
        "listen",
        "logmatch",
        "disks",
        "cpus",
    ] {
        assert_eq!(body[key], json!([]), "{key}");
    }
    assert_eq!(
        body["interfaces"],
        json!(["eth0"]),
        "only eth0 has a week of data"
    );
    let body = app.ok("/api/v1/hosts/nobody/details").await;
    assert_eq!(body["business"], json!([]));
    assert_eq!(body["top_cpu"], json!([]));
}

async fn alert_history_periods(app: &App, seed: &Seed) {
    let last = seed.last_ms;
    let range = format!("start={}&end={}", last - HOUR, last + 1);
    let body = app.ok(&format!("/api/v1/alerts/history?{range}")).await;
    assert_eq!(
        body["periods"],
        json!([
            { "rule": "disk_full", "severity": "warning", "host": "web-2", "start": last - 3 * HOUR, "end": last - 30 * MINUTE },
            { "rule": "cpu_high", "severity": "critical", "host": "web-1", "start": last - 50 * MINUTE, "end": last - 40 * MINUTE },
            { "rule": "cpu_high", "severity": "critical", "host": "web-1", "start": last - 10 * MINUTE, "end": null },
        ]),
        "a period open before the range keeps its real start"
    );
    let body = app
        .ok(&format!("/api/v1/alerts/history?host=web-2&{range}"))
        .await;
    assert_eq!(body["periods"].as_array().unwrap().len(), 1);
    let body = app
        .ok(&format!(
            "/api/v1/alerts/history?start={}&end={}",
            seed.first_ms,
            seed.first_ms + HOUR
        ))
        .await;
    assert_eq!(body["periods"], json!([]));
}

async fn alerts_without_an_analyzer(app: &App) {
    assert_eq!(
        app.ok("/api/v1/alerts").await,
        json!({ "source": "none", "alerts": [] })
    );
    let session = app.login().await;
    for path in ["/api/v1/alerts/a1/ack", "/api/v1/silences"] {
        let (status, body) = app.post(&session, path, "{}").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body, json!({ "error": "no analyzer configured" }), "{path}");
    }
}

async fn bad_parameters_are_400s_naming_the_parameter(app: &App, seed: &Seed) {
    let end = seed.last_ms + 1;
    let ok = format!("host=web-1&measurement=cpu&field=usage_idle&end={end}");
    let series = |extra: &str| format!("/api/v1/series?{ok}{extra}");
    let cases: Vec<(String, &str)> = vec![
        (
            "/api/v1/series?measurement=cpu&field=usage_idle".into(),
            "host",
        ),
        (
            "/api/v1/series?host=&measurement=cpu&field=usage_idle".into(),
            "host",
        ),
        (
            "/api/v1/series?host=web-1&field=usage_idle".into(),
            "measurement",
        ),
        ("/api/v1/series?host=web-1&measurement=cpu".into(), "field"),
        (
            "/api/v1/series?host=web-1&measurement=nope&field=usage_idle".into(),
            "measurement",
        ),
        (
            "/api/v1/series?host=web-1&measurement=cpu&field=nope".into(),
            "field",
        ),
        (
            "/api/v1/series?host=web-1&measurement=procstat_top&field=cmdline".into(),
            "field",
        ),
        (
            "/api/v1/series?host=web-1&measurement=shop&field=status".into(),
            "field",
        ),
        (series(&format!("&start={}", end + 1)), "start"),
        (series(&format!("&start={end}")), "start"),
        (series(&format!("&start={}", end - 9 * 86_400_000)), "start"),
        (
            "/api/v1/series?host=web-1&measurement=cpu&field=usage_idle&start=now-9d".into(),
            "start",
        ),
        (series("&start=yesterday"), "start"),
        (series("&start=now-"), "start"),
        (series("&start=now-5x"), "start"),
        (series("&start=2024-13-01T00:00:00Z"), "start"),
        (
            "/api/v1/series?host=web-1&measurement=cpu&field=usage_idle&end=soon".into(),
            "end",
        ),
        (series("&agg=median"), "agg"),
        (series("&agg=p0"), "agg"),
        (series("&agg=mean)%20|>%20drop()"), "agg"),
        (series("&points=0"), "points"),
        (series("&points=2001"), "points"),
        (series("&points=many"), "points"),
        (series("&step=fast"), "step"),
        (series("&step=0"), "step"),
        (series("&step=0s"), "step"),
        (series("&tags=cpu"), "tags"),
        (series("&tags=host:web-2"), "tags"),
        (series("&tags=a:1,a:2"), "tags"),
        (series("&group_by=a%0Ab"), "group_by"),
        (series("&colour=blue"), "colour"),
        (series("&host=web-2"), "host"),
        ("/api/v1/hosts?start=later".into(), "start"),
        ("/api/v1/hosts?start=now&end=now-1h".into(), "start"),
        ("/api/v1/hosts?host=web-1".into(), "host"),
        ("/api/v1/hosts/web-1/details?end=never".into(), "end"),
        ("/api/v1/hosts/web-1/details?start=now-30d".into(), "start"),
        ("/api/v1/hosts/web-1/details?field=x".into(), "field"),
        ("/api/v1/alerts/history?start=x".into(), "start"),
        ("/api/v1/alerts/history?host=a%0Ab".into(), "host"),
        ("/api/v1/alerts?verbose=1".into(), "verbose"),
    ];
    for (path, param) in &cases {
        app.bad(path, param).await;
    }
    // The times that are fine.
    for t in [
        "now-1h",
        "now-7d",
        "now-1h30m",
        "2024-01-01T00:00:00Z",
        "2024-01-01T08:00:00+08:00",
        "1704067200000",
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/hosts?start={}&end=now", enc(t)))
            .await;
        let want = if t.starts_with("now") {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, want, "{t}: {body}");
    }
    let (status, body) = app
        .get("/api/v1/hosts?start=2024-01-01T00:00:00Z&end=2024-01-01T08:00:00%2B08:00")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty range: {body}");
    let body = app
        .ok("/api/v1/hosts?start=2024-01-01T00:00:00Z&end=2024-01-01T09:00:00%2B08:00")
        .await;
    assert_eq!(
        (body["start"].as_i64(), body["end"].as_i64()),
        (Some(1_704_067_200_000), Some(1_704_070_800_000))
    );
}

async fn hostile_strings_never_change_a_query(app: &App, server: &TestInflux, seed: &Seed) {
    let range = format!("&start={}&end={}", seed.last_ms - HOUR, seed.last_ms + 1);
    let hostile = [
        "'; DROP DATABASE api",
        "\"; DROP DATABASE api; --",
        "cpu\") |> drop()",
        "cpu\" |> yield(name: \"x",
        "${x}",
        "${r._value}",
        "\"",
        "'",
        "\\",
        "\\'",
        "\\\"",
        "a\\nb",
        "/.*/",
        "cpu WHERE 1=1",
        "usage_idle\" OR \"1\"=\"1",
        "日本語 ✓ \u{202e}",
        "a\nb",
        "x\r",
        "\t",
        "a\u{0}b",
    ];
    for s in hostile {
        let e = enc(s);
        let control = s.chars().any(char::is_control);
        let checks: Vec<(String, &str, bool)> = vec![
            (series_path(&e, "cpu", "usage_idle", &range), "host", true),
            (
                series_path("web-1", &e, "usage_idle", &range),
                "measurement",
                false,
            ),
            (series_path("web-1", "cpu", &e, &range), "field", false),
            (
                series_path(
                    "web-1",
                    "cpu",
                    "usage_idle",
                    &format!("&tags=cpu:{e}{range}"),
                ),
                "tags",
                true,
            ),
            (
                series_path("web-1", "cpu", "usage_idle", &format!("&tags={e}:x{range}")),
                "tags",
                true,
            ),
            (
                series_path(
                    "web-1",
                    "cpu",
                    "usage_idle",
                    &format!("&group_by={e}{range}"),
                ),
                "group_by",
                true,
            ),
            (
                format!("/api/v1/hosts/{e}/details?{}", &range[1..]),
                "host",
                true,
            ),
            (
                format!("/api/v1/alerts/history?host={e}{range}"),
                "host",
                true,
            ),
            (format!("/api/v1/hosts?start={e}"), "start", false),
            (
                series_path("web-1", "cpu", "usage_idle", &format!("&agg={e}{range}")),
                "agg",
                false,
            ),
        ];
        for (path, param, may_succeed) in checks {
            let (status, body) = app.get(&path).await;
            if may_succeed && !control {
                assert_eq!(status, StatusCode::OK, "{s:?} in {param}: {body}");
                match param {
                    "group_by" => {
                        // An unknown tag groups everything under an empty value.
                        let series = body["series"].as_array().unwrap();
                        assert_eq!(series.len(), 1, "{s:?}: {body}");
                        assert_eq!(series[0]["tags"][s], "", "{s:?}: {body}");
                    }
                    "host" if path.contains("details") => {
                        assert_eq!(body["top_cpu"], json!([]));
                        assert_eq!(body["cpus"], json!([]));
                    }
                    "host" if path.contains("history") => assert_eq!(body["periods"], json!([])),
                    _ => assert_eq!(body["series"], json!([]), "{s:?} in {param}: {body}"),
                }
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{s:?} in {param}: {body}");
                assert_eq!(body["param"], param, "{s:?}: {body}");
            }
        }
    }
    // Nothing was dropped or changed, and no query failed.
    let dbs = server.influxql(DB, "SHOW DATABASES").await;
    assert!(dbs.to_string().contains("\"api\""), "{dbs}");
    let body = app
        .ok(&format!(
            "/api/v1/hosts?start={}&end={}",
            seed.last_ms - 2 * HOUR,
            seed.last_ms + 1
        ))
        .await;
    assert_eq!(body["hosts"].as_array().unwrap().len(), 3);
    let count = server
        .influxql(DB, "SELECT count(\"usage_idle\") FROM \"cpu\"")
        .await;
    assert!(count.to_string().contains("values"), "{count}");
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hostscope_web_query_errors_total 0"),
        "{metrics}"
    );
}

async fn openapi_is_served(app: &App) {
    let doc = app.ok("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/api/v1/hosts",
        "/api/v1/hosts/{host}/details",
        "/api/v1/series",
        "/api/v1/alerts",
        "/api/v1/alerts/history",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/silences",
        "/api/v1/reports",
        "/api/v1/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

// -- the analyzer -----------------------------------------------------------------------

/// A stand-in analyzer: answers `GET /api/v1/alerts` with `alerts` and records the
/// POSTs it gets (path and body), answering `{"ok": true, "path": …}`.
async fn fake_analyzer(
    alerts: Value,
) -> (
    String,
    Arc<Mutex<Vec<(String, String)>>>,
    tokio::sync::oneshot::Sender<()>,
) {
    use axum::routing::{get, post};
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let handler = move |uri: axum::http::Uri, body: String| {
        let record = record.clone();
        async move {
            let path = uri.path().to_owned();
            record.lock().unwrap().push((path.clone(), body));
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "ok": true, "path": path })),
            )
        }
    };
    let app = axum::Router::new()
        .route(
            "/api/v1/alerts",
            get(move || async move { axum::Json(alerts) }),
        )
        .route("/api/v1/alerts/{id}/ack", post(handler.clone()))
        .route("/api/v1/silences", post(handler));
    let (url, tx) = serve_until_stopped(app).await;
    (url, seen, tx)
}

/// Serve `app` on a free loopback port until the returned sender is used or dropped;
/// its base URL (with a trailing slash).
async fn serve_until_stopped(app: axum::Router) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (url, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_go_through_the_analyzer() {
    let server = TestInflux::start();
    let client = server.client(DB).await;
    let now = now_ms();
    let mut lines = String::new();
    for host in ["web-1", "web-2", "web-3"] {
        lines.push_str(&format!(
            "cpu,cpu=cpu-total,host={host} usage_idle=90 {now}\nmem,host={host} used_percent=50 {now}\n"
        ));
    }
    client
        .write_lines(&lines, Precision::Milliseconds)
        .await
        .unwrap();
    let alerts = json!([
        { "id": "a/1", "rule": "cpu_high", "host": "web-1", "severity": "critical", "state": "firing" },
        { "id": "a2", "rule": "disk_full", "labels": { "host": "web-2" }, "severity": "warning" },
        { "id": "a3", "rule": "mem", "host": "web-3", "severity": "critical", "state": "resolved" },
    ]);
    let (url, seen, stop) = fake_analyzer(alerts.clone()).await;
    let app = App::start(&server, Some(url)).await;

    assert_eq!(
        app.ok("/api/v1/alerts").await,
        json!({ "source": "analyzer", "alerts": alerts })
    );
    // No `alerts` measurement in this database: no periods, not an error.
    let body = app.ok("/api/v1/alerts/history").await;
    assert_eq!(body["periods"], json!([]));
    let body = app.ok("/api/v1/hosts").await;
    assert_eq!(body["alerts_source"], "analyzer");
    let states: Vec<(&str, &str, i64)> = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap(),
                h["state"].as_str().unwrap(),
                h["alerts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("web-1", "firing", 1),
            ("web-2", "warning", 1),
            ("web-3", "ok", 0)
        ]
    );

    // POSTs are forwarded with their body; the id stays one path segment.
    let session = app.login().await;
    let (status, body) = app
        .post(
            &session,
            "/api/v1/alerts/a%2F1%20..%3F/ack",
            r#"{"by":"me"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["path"], "/api/v1/alerts/a%2F1%20..%3F/ack");
    let (status, _) = app
        .post(
            &session,
            "/api/v1/silences",
            r#"{"host":"web-1","for":"1h"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        seen.lock().unwrap().clone(),
        [
            (
                "/api/v1/alerts/a%2F1%20..%3F/ack".to_owned(),
                r#"{"by":"me"}"#.to_owned()
            ),
            (
                "/api/v1/silences".to_owned(),
                r#"{"host":"web-1","for":"1h"}"#.to_owned()
            ),
        ]
    );
    let (status, body) = app.post(&session, "/api/v1/silences", "not json").await;
    assert_eq!(
        (status, body["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let (status, body) = app.post(&session, "/api/v1/alerts/a%0Ab/ack", "").await;
    assert_eq!(
        (status, body["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "nothing else reached the analyzer"
    );
    // A read-only token cannot POST.
    let resp = app
        .http
        .post(format!("{}/api/v1/silences", app.base))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());

    // The analyzer goes away.
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = app.get("/api/v1/alerts").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "analyzer unavailable" })
        )
    );
    let body = app.ok("/api/v1/hosts").await;
    assert_eq!(body["alerts_source"], "unavailable");
    assert!(body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["state"] == "ok"));
    let (status, body) = app.post(&session, "/api/v1/silences", "{}").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "analyzer unavailable" })
        )
    );
}

// -- reports ---------------------------------------------------------------------------

/// The real analyzer API (`hostscope_analyzer::api::router`) over a temp state
/// directory; every path it is asked for is recorded.
struct Analyzer {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    store: hostscope_analyzer::report::ReportStore,
    _state: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Analyzer {
    async fn start() -> Analyzer {
        Self::start_with(None).await
    }

    /// The analyzer API behind `token` (its `analyzer.api_token`) when given.
    async fn start_with(token: Option<&str>) -> Analyzer {
        use hostscope_analyzer::engine::{Engine, EngineSettings, GroupBy};
        let state = tempfile::tempdir().unwrap();
        // The engine only loads the (empty) state here; its client is never called.
        let client =
            hostscope_core::influx::Client::new(hostscope_core::config::InfluxSettings::new(
                "http://127.0.0.1:9".parse().unwrap(),
                hostscope_core::config::VersionSetting::Auto,
            ))
            .unwrap();
        let engine = Engine::new(
            client,
            Vec::new(),
            EngineSettings {
                state_dir: state.path().to_owned(),
                concurrency: 1,
                timeout: Duration::from_secs(1),
                group_by: GroupBy::Host,
                group_wait: Duration::ZERO,
            },
        )
        .unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let api = hostscope_analyzer::api::with_token(
            hostscope_analyzer::api::router(engine.shared(), Arc::new(now_ms)),
            token.map(|t| SecretString::from(t.to_owned())),
        );
        let app = api.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(req.uri().path().to_owned());
                    next.run(req).await
                }
            },
        ));
        let (url, tx) = serve_until_stopped(app).await;
        Analyzer {
            url,
            seen,
            store: hostscope_analyzer::report::ReportStore::new(state.path()),
            _state: state,
            stop: Some(tx),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A report of one host with a CPU/memory chart and one anomaly, rendered by the
/// analyzer's own renderer (so the stored page holds a real PNG as a `data:` URI).
fn report(
    end_ms: i64,
    language: hostscope_analyzer::report::Language,
    name: Option<&str>,
) -> (
    hostscope_analyzer::report::ReportData,
    hostscope_analyzer::report::ReportContent,
) {
    use hostscope_analyzer::report::data::{Anomaly, HostReport, Stat};
    use hostscope_analyzer::report::{render, RenderOptions, ReportData, UtcOffset};
    let start_ms = end_ms - 6 * HOUR;
    let step = 10 * MINUTE;
    let series = |base: f64| -> Vec<(i64, Option<f64>)> {
        (0..36)
            .map(|i| (start_ms + i * step, Some(base + (i % 7) as f64)))
            .collect()
    };
    let data = ReportData {
        range: hostscope_core::influx::TimeRange::new(start_ms, end_ms).unwrap(),
        step_ms: step,
        hosts: vec![HostReport {
            host: "web-1".into(),
            availability: 1.0,
            cpu: Stat {
                mean: Some(23.0),
                peak: Some(96.0),
            },
            mem: Stat {
                mean: Some(51.0),
                peak: Some(57.0),
            },
            disks: vec![],
            anomalies: vec![Anomaly {
                rule: "cpu-high".into(),
                severity: "critical".into(),
                start_ms: start_ms + HOUR,
                end_ms: Some(start_ms + 2 * HOUR),
                value: Some(96.0),
                reason: Some("96 is above the critical bound 90".into()),
            }],
            cpu_series: series(20.0),
            mem_series: series(50.0),
        }],
    };
    let content = render(
        &data,
        &RenderOptions {
            language,
            web_url: None,
            offset: UtcOffset::default(),
            name,
        },
    )
    .unwrap();
    (data, content)
}

impl App {
    /// GET `path` with the API token, as it comes.
    async fn raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }
}

/// Ids that must be refused with a 400 naming `id`, before the analyzer is asked.
fn hostile_report_ids() -> Vec<String> {
    vec![
        "..%2F..%2Fetc".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "1%2F..%2F..%2Fapi%2Fv1%2Falerts".into(),
        "1;drop".into(),
        "1%3Bdrop".into(),
        "%00".into(),
        "1%00".into(),
        "1%0A".into(),
        "%20".into(),
        "1?x".replace('?', "%3F"),
        "%FF".into(),
        "-1".into(),
        "1-".into(),
        "1-2-3".into(),
        "0x1".into(),
        "%EF%BC%91".into(), // a fullwidth digit one
        "9".repeat(20),
        "1-".to_owned() + &"9".repeat(10),
        "1".repeat(5000),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_sends_the_analyzers_token() {
    const ANALYZER_TOKEN: &str = "analyzer-token-0123456789";
    let server = TestInflux::start();
    let analyzer = Analyzer::start_with(Some(ANALYZER_TOKEN)).await;
    let url = Some(analyzer.url.clone());

    let app = App::start_with(&server, url.clone(), Some(ANALYZER_TOKEN)).await;
    assert_eq!(
        app.ok("/api/v1/reports").await,
        json!({ "source": "analyzer", "reports": [] })
    );
    assert_eq!(app.ok("/api/v1/alerts").await["source"], "analyzer");
    let session = app.login().await;
    let (status, body) = app.post(&session, "/api/v1/alerts/nope/ack", "").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the analyzer's own answer: {body}"
    );

    // Without it: the analyzer refuses, and the web says why (never a 401 of its own,
    // which would send the browser to the login page).
    let names_the_key = |body: &Value| {
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("web.analyzer_token"))
    };
    let bare = App::start(&server, url).await;
    let session = bare.login().await;
    let (status, body) = bare.post(&session, "/api/v1/alerts/nope/ack", "").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(names_the_key(&body), "{body}");
    for list in ["/api/v1/reports", "/api/v1/alerts"] {
        let (status, body) = bare.get(list).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{list}");
        assert!(names_the_key(&body), "{list}: {body}");
    }
    let resp = bare.raw("/reports/1790000000000").await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(names_the_key(&body), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_come_from_the_real_analyzer() {
    use hostscope_analyzer::report::Language;
    let server = TestInflux::start();
    let mut analyzer = Analyzer::start().await;
    let app = App::start(&server, Some(analyzer.url.clone())).await;

    // Nothing stored yet: an empty list, not an error.
    assert_eq!(
        app.ok("/api/v1/reports").await,
        json!({ "source": "analyzer", "reports": [] })
    );

    // A scheduled report and one made on demand in the same millisecond (`-1`).
    let created = 1_790_000_000_000;
    let (data, content) = report(created, Language::En, Some("daily"));
    let daily = analyzer
        .store
        .save(created, Some("daily"), Language::En, &data, &content)
        .unwrap();
    let (data, content) = report(created, Language::ZhCn, None);
    let adhoc = analyzer
        .store
        .save(created, None, Language::ZhCn, &data, &content)
        .unwrap();
    assert_eq!(
        (daily.id.as_str(), adhoc.id.as_str()),
        ("1790000000000", "1790000000000-1")
    );

    let body = app.ok("/api/v1/reports").await;
    assert_eq!(body["source"], "analyzer");
    let listed = body["reports"].as_array().unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1790000000000-1", "1790000000000"], "newest first");
    let created_text = hostscope_analyzer::api::rfc3339(created);
    assert_eq!(
        listed[1],
        json!({
            "id": daily.id,
            "name": "daily",
            "created": created_text,
            "start": hostscope_analyzer::api::rfc3339(created - 6 * HOUR),
            "end": created_text,
            "subject": daily.subject,
            "hosts": 1,
            "anomalies": 1,
        })
    );
    assert_eq!(listed[0]["name"], Value::Null, "made on demand");
    assert_eq!(listed[0]["subject"], adhoc.subject);
    app.bad("/api/v1/reports?limit=5", "limit").await;

    // Each page is the stored HTML, with the analyzer's restrictive policy.
    for meta in [&daily, &adhoc] {
        let resp = app.raw(&format!("/reports/{}", meta.id)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", meta.id);
        let headers = resp.headers().clone();
        assert_eq!(
            headers["content-security-policy"],
            hostscope_analyzer::api::REPORT_CSP
        );
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
        );
        assert_eq!(headers.get_all("content-security-policy").iter().count(), 1);
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        let html = resp.text().await.unwrap();
        let stored = analyzer.store.load(&meta.id).unwrap().unwrap();
        assert_eq!(html, stored.html, "{}", meta.id);
        assert!(
            html.contains("src=\"data:image/png;base64,"),
            "a chart is inlined"
        );
        assert!(html.contains("web-1"));
    }
    let seen = analyzer.seen();
    assert!(
        seen.contains(&"/api/v1/reports/1790000000000-1".to_owned()),
        "{seen:?}"
    );

    // An id the analyzer does not have: its 404.
    let resp = app.raw("/reports/1790000000001").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap(),
        json!({ "error": "no such report" })
    );
    assert_eq!(
        analyzer.seen().last().map(String::as_str),
        Some("/api/v1/reports/1790000000001")
    );

    // Hostile ids never reach the analyzer.
    let before = analyzer.seen();
    for id in hostile_report_ids() {
        let shown: String = id.chars().take(40).collect();
        let resp = app.raw(&format!("/reports/{id}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{shown}");
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert_eq!(body["param"], "id", "{shown}: {body}");
    }
    assert_eq!(analyzer.seen(), before, "a hostile id reached the analyzer");

    // A page is capped at 16 MiB: one of exactly that size passes, one byte more is a 502.
    let max = hostscope_web::api::reports::MAX_REPORT_BYTES;
    let (data, content) = report(created + 1, Language::En, Some("big"));
    let big = analyzer
        .store
        .save(created + 1, Some("big"), Language::En, &data, &content)
        .unwrap();
    let path = analyzer.store.dir().join(format!("{}.html", big.id));
    std::fs::write(&path, "x".repeat(max)).unwrap();
    let resp = app.raw(&format!("/reports/{}", big.id)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), max);
    std::fs::write(&path, "x".repeat(max + 1)).unwrap();
    let resp = app.raw(&format!("/reports/{}", big.id)).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);

    // The analyzer goes away: the list and the pages say so.
    analyzer.stop.take().unwrap().send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get("/api/v1/reports").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body, json!({ "error": "analyzer unavailable" }));
            break;
        }
        assert!(Instant::now() < deadline, "still {status}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = app.raw(&format!("/reports/{}", daily.id)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap(),
        json!({ "error": "analyzer unavailable" })
    );
}

async fn reports_without_an_analyzer(app: &App) {
    assert_eq!(
        app.ok("/api/v1/reports").await,
        json!({ "source": "none", "reports": [] })
    );
    let resp = app.raw("/reports/1790000000000").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap(),
        json!({ "error": "no analyzer configured" })
    );
    // A bad id is still a bad id.
    let resp = app.raw("/reports/..%2F..%2Fetc").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Without a login the page sends the browser to the login page.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/reports/1790000000000", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

// -- InfluxDB down -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_down_is_a_503_without_details_and_counted() {
    let mut server = TestInflux::start();
    let client = server.client(DB).await;
    client
        .write_lines(
            &format!("cpu,cpu=cpu-total,host=a usage_idle=90 {}", now_ms()),
            Precision::Milliseconds,
        )
        .await
        .unwrap();
    let app = App::start(&server, None).await;
    assert_eq!(
        app.ok("/api/v1/hosts").await["hosts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.stop();
    for path in [
        "/api/v1/hosts",
        "/api/v1/hosts/a/details",
        "/api/v1/alerts/history",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body, json!({ "error": "database unavailable" }), "{path}");
    }
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hostscope_web_query_errors_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("query error counter");
    assert!(errors >= 3, "{errors}");
}
