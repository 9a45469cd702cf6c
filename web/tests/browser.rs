//! The dashboards in a real browser: Debian's headless `chromium`, driven by
//! playwright-core (`web/tests/browser/drive.mjs`, run with node), against the app
//! in-process over a real `influxd` seeded with six hours of collector data.
//!
//! The driver logs in, checks that every ECharts chart of the host page holds data,
//! zooms by dragging, switches to the dark theme and to Chinese, checks the overview
//! (a silent host stays) and the alerts page with the analyzer's kept reports (one
//! opened: its charts show under its own restrictive CSP), and fails on any CSP
//! violation, script error or request to another host. Screenshots land in
//! `target/browser/`.
//!
//! Never skipped: without chromium, node or playwright-core the test fails and says
//! how to install them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hostscope_core::config::ConfigErrors;
use hostscope_core::influx::Client;
use hostscope_core::{Point, PointBuilder};
use hostscope_tests::influxd::TestInflux;
use hostscope_tests::require_program;
use hostscope_web::config::UserConfig;
use hostscope_web::{Settings, WebConfig};

const CHROMIUM: &str = "/usr/bin/chromium";
const DB: &str = "browser";
const USER: &str = "ops";
const PASSWORD: &str = "correct horse battery staple";
const HOSTS: [&str; 3] = ["web-1", "web-2", "db-1"];
/// The host with process, port, log and business data, and alerts.
const DETAIL: usize = 0;
/// The host that stopped reporting 40 minutes ago.
const SILENT: usize = 2;
const STEP_MS: i64 = 10_000;
const HOURS: i64 = 6;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A repeatable value in [0, 1) for (a, b, c).
fn noise(a: u64, b: i64, c: u64) -> f64 {
    let mut x =
        a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ c;
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn wave(i: i64, period: f64, phase: f64) -> f64 {
    (i as f64 / period * std::f64::consts::TAU + phase).sin()
}

struct Cycle<'a> {
    host: &'a str,
    h: u64,
    i: i64,
    t_ns: i64,
}

impl Cycle<'_> {
    fn point(&self, b: PointBuilder) -> Point {
        b.tag("host", self.host)
            .timestamp(self.t_ns)
            .build()
            .expect("valid point")
    }
}

/// One collector cycle of host `h` at step `i` (of `n`), in Telegraf's schema.
fn cycle(c: &Cycle<'_>, n: i64, counters: &mut [i64; 8], out: &mut Vec<Point>) {
    let (h, i) = (c.h, c.i);
    let busy = if h as usize == DETAIL && (90..150).contains(&(n - 1 - i)) {
        45.0
    } else {
        0.0
    };
    let user = 14.0 + 8.0 * h as f64 + 7.0 * wave(i, 540.0, h as f64) + 6.0 * noise(h, i, 1) + busy;
    let system = 4.0 + 2.5 * noise(h, i, 2) + busy / 5.0;
    let iowait = if h == 2 {
        3.0 + 4.0 * noise(h, i, 3)
    } else {
        0.8 * noise(h, i, 3)
    };
    let fields = [
        ("usage_user", user),
        ("usage_system", system),
        ("usage_iowait", iowait),
        ("usage_steal", 0.4 * noise(h, i, 4)),
        ("usage_irq", 0.2 + 0.1 * noise(h, i, 5)),
        ("usage_softirq", 0.6 * noise(h, i, 6)),
        ("usage_nice", 0.3 * noise(h, i, 7)),
    ];
    let idle = 100.0 - fields.iter().map(|(_, v)| v).sum::<f64>();
    let mut cpu = Point::builder("cpu")
        .tag("cpu", "cpu-total")
        .field("usage_idle", idle);
    for (k, v) in fields {
        cpu = cpu.field(k, v);
    }
    out.push(c.point(cpu));
    let mem = 48.0 + 10.0 * h as f64 + 6.0 * wave(i, 900.0, 1.0) + 2.0 * noise(h, i, 8);
    out.push(c.point(Point::builder("mem").field("used_percent", mem)));
    out.push(c.point(Point::builder("swap").field("used_percent", 2.0 + h as f64)));
    for (m, (path, base)) in [("/", 41.0), ("/var", 76.0)].into_iter().enumerate() {
        let used = base + 3.0 * h as f64 + i as f64 / n as f64 * 4.0 + m as f64;
        out.push(
            c.point(
                Point::builder("disk")
                    .tag("path", path)
                    .tag("device", format!("sda{}", m + 1))
                    .field("used_percent", used),
            ),
        );
    }
    // Counters grow by a varying, always positive step: rates vary, never go back.
    let mut grow = |k: usize, scale: f64| -> i64 {
        let step = scale * STEP_MS as f64 / 1000.0
            * (1.0 + 0.6 * wave(i, 720.0, k as f64) + 0.3 * noise(h, i, k as u64));
        counters[k] += step as i64;
        counters[k]
    };
    for (d, dev) in ["sda", "sdb"].into_iter().enumerate() {
        let s = (1 + h + d as u64) as f64;
        out.push(
            c.point(
                Point::builder("diskio")
                    .tag("name", dev)
                    .field("read_bytes", grow(d, 900_000.0 * s))
                    .field("write_bytes", grow(2 + d, 2_400_000.0 * s)),
            ),
        );
    }
    for (k, iface) in ["eth0", "lo"].into_iter().enumerate() {
        let s = if k == 0 { 6_000_000.0 } else { 400_000.0 } * (1 + h) as f64;
        out.push(
            c.point(
                Point::builder("net")
                    .tag("interface", iface)
                    .field("bytes_recv", grow(4 + k, s))
                    .field("bytes_sent", grow(6 + k, s * 0.4)),
            ),
        );
    }
    let load1 = user / 25.0 + noise(h, i, 9);
    out.push(
        c.point(
            Point::builder("system")
                .field("load1", load1)
                .field("load5", user / 25.0 + 0.3)
                .field("load15", user / 25.0 + 0.1)
                .field("n_cpus", 4i64),
        ),
    );
    out.push(
        c.point(
            Point::builder("processes")
                .field("running", 1 + (noise(h, i, 11) * 4.0) as i64)
                .field(
                    "sleeping",
                    180 + 20 * h as i64 + (noise(h, i, 12) * 10.0) as i64,
                )
                .field("blocked", (noise(h, i, 13) * 2.0) as i64)
                .field("zombies", i64::from(h == 1))
                .field("total", 200i64),
        ),
    );
}

/// Processes, ports, log matches, a business measurement and alerts for the detail host.
fn details(host: &str, last_ms: i64, out: &mut Vec<Point>) {
    let at = |b: PointBuilder, ms: i64| {
        b.tag("host", host)
            .timestamp(ms * 1_000_000)
            .build()
            .expect("valid point")
    };
    let procs = [
        (
            "nginx",
            "www-data",
            "nginx: worker process",
            38.5f64,
            120_000_000i64,
            4242i64,
        ),
        (
            "postgres",
            "postgres",
            "postgres: 16/main: checkpointer",
            12.0,
            820_000_000,
            1001,
        ),
        (
            "hostscope-col",
            "hostscope",
            "/usr/bin/hostscope-collector --config /etc/hostscope/hostscope.toml",
            1.2,
            24_000_000,
            611,
        ),
        (
            "java",
            "app",
            "java -Xmx4g -jar /opt/shop/shop.jar --spring.profiles.active=prod",
            22.0,
            2_300_000_000,
            2210,
        ),
        (
            "sshd",
            "root",
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
            0.1,
            8_000_000,
            812,
        ),
    ];
    for by in ["cpu", "memory"] {
        let mut sorted = procs.to_vec();
        if by == "cpu" {
            sorted.sort_by(|a, b| b.3.total_cmp(&a.3));
        } else {
            sorted.sort_by_key(|p| std::cmp::Reverse(p.4));
        }
        for (rank, (name, user, cmdline, cpu, rss, pid)) in sorted.into_iter().enumerate() {
            out.push(at(
                Point::builder("procstat_top")
                    .tag("by", by)
                    .tag("rank", (rank + 1).to_string())
                    .field("pid", pid)
                    .field("name", name)
                    .field("user", user)
                    .field("cmdline", cmdline)
                    .field("cpu_usage", cpu)
                    .field("memory_rss", rss),
                last_ms,
            ));
        }
    }
    for (proto, address, port, pid, process) in [
        ("tcp", "0.0.0.0", 22, 812i64, "sshd"),
        ("tcp", "0.0.0.0", 80, 4242, "nginx"),
        ("tcp", "0.0.0.0", 443, 4242, "nginx"),
        ("tcp", "127.0.0.1", 5432, 1001, "postgres"),
        ("tcp6", "::", 8080, 2210, "java"),
    ] {
        out.push(at(
            Point::builder("listen")
                .tag("proto", proto)
                .tag("address", address)
                .tag("port", port.to_string())
                .field("pid", pid)
                .field("process", process),
            last_ms,
        ));
    }
    for c in 0..180i64 {
        let ms = last_ms - (179 - c) * STEP_MS;
        let matched = c % 7 == 3;
        let mut error = Point::builder("logmatch")
            .tag("file", "/var/log/shop/app.log")
            .tag("rule", "error")
            .field("count", i64::from(matched));
        if matched {
            error = error.field(
                "last_line",
                format!(
                    "2025-01-01T10:{:02}:00Z ERROR order {} failed: upstream timeout",
                    c % 60,
                    9000 + c
                ),
            );
        }
        out.push(at(error, ms));
        out.push(at(
            Point::builder("shop")
                .tag("url", "http://127.0.0.1:9000/stats.json")
                .field("pending", 20 + (c * 7) % 13)
                .field("revenue", 1500.0 + c as f64 * 12.5),
            ms,
        ));
    }
    // Alert transitions: cpu_high while the CPU was busy, disk_full still firing.
    for (rule, severity, before_ms, state) in [
        ("cpu_high", "critical", 150 * STEP_MS, "firing"),
        ("cpu_high", "critical", 90 * STEP_MS, "resolved"),
        ("disk_full", "warning", 40 * 60_000, "firing"),
    ] {
        out.push(at(
            Point::builder("alerts")
                .tag("rule", rule)
                .tag("severity", severity)
                .field("state", state),
            last_ms - before_ms,
        ));
    }
}

/// Six hours of every host, ending at `end_ms`; the silent host stops 40 minutes early.
async fn seed(client: &Client, end_ms: i64) {
    let last_ms = end_ms - end_ms.rem_euclid(STEP_MS);
    let n = HOURS * 3_600_000 / STEP_MS;
    let mut points = Vec::new();
    for (h, host) in HOSTS.iter().enumerate() {
        let stop = if h == SILENT { n - 240 } else { n };
        let mut counters = [1_000_000_000i64; 8];
        for i in 0..stop {
            let t_ms = last_ms - (n - 1 - i) * STEP_MS;
            let c = Cycle {
                host,
                h: h as u64,
                i,
                t_ns: t_ms * 1_000_000,
            };
            cycle(&c, n, &mut counters, &mut points);
        }
    }
    details(HOSTS[DETAIL], last_ms, &mut points);
    let report = client.write_points(&points).await.expect("seed write");
    assert!(
        report.rejected.is_empty(),
        "influxd refused {:?}",
        report.rejected.first()
    );
}

/// What the stand-in analyzer was asked to do: (path, JSON body).
type Posts = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A kept report: one host with a CPU/memory chart and one anomaly, rendered and
/// stored by the analyzer's own code. Returns its id.
fn store_report(state_dir: &Path, end_ms: i64) -> String {
    use hostscope_analyzer::report::data::{Anomaly, HostReport, Stat};
    use hostscope_analyzer::report::{
        render, Language, RenderOptions, ReportData, ReportStore, UtcOffset,
    };
    let start_ms = end_ms - HOURS * 3_600_000;
    let step = 10 * 60_000;
    let series = |base: f64| -> Vec<(i64, Option<f64>)> {
        (0..HOURS * 6)
            .map(|i| (start_ms + i * step, Some(base + 8.0 * wave(i, 9.0, base))))
            .collect()
    };
    let data = ReportData {
        range: hostscope_core::influx::TimeRange::new(start_ms, end_ms).unwrap(),
        step_ms: step,
        hosts: vec![HostReport {
            host: HOSTS[DETAIL].into(),
            availability: 1.0,
            cpu: Stat {
                mean: Some(24.0),
                peak: Some(71.0),
            },
            mem: Stat {
                mean: Some(52.0),
                peak: Some(58.0),
            },
            disks: vec![],
            anomalies: vec![Anomaly {
                rule: "cpu_high".into(),
                severity: "critical".into(),
                start_ms: end_ms - 150 * STEP_MS,
                end_ms: Some(end_ms - 90 * STEP_MS),
                value: Some(93.5),
                reason: Some("93.5 is above the critical bound 90".into()),
            }],
            cpu_series: series(20.0),
            mem_series: series(50.0),
        }],
    };
    let options = RenderOptions {
        language: Language::En,
        web_url: None,
        offset: UtcOffset::default(),
        name: Some("daily"),
    };
    let content = render(&data, &options).unwrap();
    ReportStore::new(state_dir)
        .save(end_ms, Some("daily"), Language::En, &data, &content)
        .unwrap()
        .id
}

/// The real analyzer API over `state_dir` (its reports), with no rules and an engine
/// whose client is never called.
fn real_analyzer(state_dir: &Path, now_ms: i64) -> axum::Router {
    use hostscope_analyzer::engine::{Engine, EngineSettings, GroupBy};
    let client = Client::new(hostscope_core::config::InfluxSettings::new(
        "http://127.0.0.1:9".parse().unwrap(),
        hostscope_core::config::VersionSetting::Auto,
    ))
    .unwrap();
    let engine = Engine::new(
        client,
        Vec::new(),
        EngineSettings {
            state_dir: state_dir.to_owned(),
            concurrency: 1,
            timeout: Duration::from_secs(1),
            group_by: GroupBy::Host,
            group_wait: Duration::ZERO,
        },
    )
    .unwrap();
    hostscope_analyzer::api::router(engine.shared(), Arc::new(move || now_ms))
}

/// hostscope-analyzer's HTTP API (the web server proxies the Alerts page to it): a
/// stand-in for the alerts (two firing, one resolved; acknowledgements and silences
/// are recorded), the real API for everything else, with one kept report in
/// `state_dir`.
async fn start_analyzer(now_ms: i64, state_dir: &Path) -> (String, Posts) {
    let posts = Posts::default();
    let alerts = serde_json::json!({ "alerts": [
        { "id": "cpu_high:web-1", "rule": "cpu_high", "host": HOSTS[DETAIL], "severity": "critical",
          "state": "firing", "since": now_ms - 12 * 60_000, "summary": "CPU above 90% for 5m", "value": 93.5 },
        { "id": "disk_full:web-2", "rule": "disk_full", "host": HOSTS[1], "severity": "warning",
          "state": "firing", "since": now_ms - 50 * 60_000, "summary": "/var is 91% full" },
        { "id": "mem_high:db-1", "rule": "mem_high", "host": HOSTS[SILENT], "severity": "warning",
          "state": "resolved", "since": now_ms - 3 * 3_600_000, "summary": "memory above 85%" },
    ]});
    let record = |posts: Posts| {
        move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let posts = posts.clone();
            async move {
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                posts.lock().unwrap().push((uri.path().to_owned(), json));
                axum::Json(serde_json::json!({ "ok": true }))
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/api/v1/alerts",
            axum::routing::get(move || async move { axum::Json(alerts) }),
        )
        .route(
            "/api/v1/alerts/{id}/ack",
            axum::routing::post(record(posts.clone())),
        )
        .route(
            "/api/v1/silences",
            axum::routing::post(record(posts.clone())),
        )
        .fallback_service(real_analyzer(state_dir, now_ms));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts)
}

/// Serve the app on a free port until the returned sender is dropped or fires.
async fn start_app(
    settings: Settings,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hostscope_web::serve(listener, settings, async {
        let _ = stopped.await;
    }));
    (base, stop, server)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_work_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: this test drives Debian's headless Chromium and never skips. \
         Install it with `apt-get install chromium` (./scripts/test does)."
    );
    let node = require_program("node", "apt-get install nodejs npm");
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    assert!(
        ui.join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is missing from {}: run `npm ci` there (the build runs it when ECharts is missing)",
        ui.display()
    );

    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    seed(&client, now_ms()).await;

    let hash = hostscope_web::auth::hash_password(PASSWORD).expect("hash");
    let web = |analyzer_url: Option<String>| {
        let config = WebConfig {
            users: vec![UserConfig {
                name: USER.to_owned(),
                password_hash: hash.clone().into(),
            }],
            analyzer_url,
            ..WebConfig::default()
        };
        let mut errors = ConfigErrors::new("test");
        let web = config.validate(&mut errors).expect("web settings");
        assert!(errors.is_empty(), "{errors:?}");
        Settings {
            influx: influx.settings(DB),
            web,
        }
    };
    let analyzer_state = tempfile::tempdir().unwrap();
    let report_id = store_report(analyzer_state.path(), now_ms());
    let (analyzer_url, posts) = start_analyzer(now_ms(), analyzer_state.path()).await;
    let (base, stop, server) = start_app(web(None)).await;
    let (base_analyzer, stop_analyzer, server_analyzer) = start_app(web(Some(analyzer_url))).await;

    let shots = target_dir().join("browser");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/drive.mjs");
    let run = tokio::process::Command::new(node)
        .arg(&script)
        .env("HS_BASE_URL", &base)
        .env("HS_ANALYZER_BASE_URL", &base_analyzer)
        .env("HS_USER", USER)
        .env("HS_PASSWORD", PASSWORD)
        .env("HS_HOST", HOSTS[DETAIL])
        .env("HS_SILENT_HOST", HOSTS[SILENT])
        .env("HS_REPORT_ID", &report_id)
        .env("HS_REPORT_CSP", hostscope_web::api::reports::REPORT_CSP)
        .env("HS_UI_DIR", &ui)
        .env("HS_SHOTS", &shots)
        .env("HS_CHROMIUM", CHROMIUM)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser driver did not finish within 4 minutes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    println!("{stderr}");
    assert!(
        out.status.success(),
        "the browser driver failed ({}):\n{stderr}",
        out.status
    );

    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .expect("the driver's JSON summary");
    let cpu = &summary["charts"]["cpu"]["series"];
    assert!(cpu.as_array().map(Vec::len).unwrap_or(0) >= 7, "{cpu}");
    assert!(cpu[0]["points"].as_u64().unwrap_or(0) > 0, "{cpu}");
    let shot = std::fs::metadata(shots.join("host.png")).expect("host.png was saved");
    assert!(shot.len() > 20_000, "host.png is suspiciously small");
    println!("screenshots in {}", shots.display());

    let posts = posts.lock().unwrap().clone();
    let ack = posts.iter().find(|(path, _)| path.ends_with("/ack"));
    assert_eq!(
        ack.map(|(path, _)| path.as_str()),
        Some("/api/v1/alerts/cpu_high:web-1/ack"),
        "{posts:?}"
    );
    let silence = posts.iter().find(|(path, _)| path == "/api/v1/silences");
    let silence = silence.map(|(_, body)| body.clone()).unwrap_or_default();
    assert_eq!(silence["host"], HOSTS[DETAIL], "{posts:?}");
    assert_eq!(silence["rule"], "cpu_high", "{posts:?}");
    assert_eq!(silence["duration"], "4h", "{posts:?}");

    for (stop, server) in [(stop, server), (stop_analyzer, server_analyzer)] {
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
