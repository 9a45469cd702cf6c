//! The collector against a real `influxd`: every input's measurement lands with the
//! expected tags and fields, and an outage loses nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use hostscope_collector::{Collector, FileConfig};
use hostscope_core::app;
use hostscope_tests::influxd::TestInflux;
use serde_json::Value;

/// Load a collector configuration the way the binary does.
fn settings(dir: &Path, toml: &str) -> hostscope_collector::Settings {
    let path = dir.join("hostscope.toml");
    std::fs::write(&path, toml).unwrap();
    app::load::<FileConfig>(Some(path)).unwrap_or_else(|e| panic!("{e}"))
}

fn values(v: &Value) -> Vec<Vec<Value>> {
    v["results"][0]["series"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

async fn field_keys(server: &TestInflux, db: &str, measurement: &str) -> BTreeSet<String> {
    let q = format!("SHOW FIELD KEYS FROM \"{measurement}\"");
    values(&server.influxql(db, &q).await)
        .into_iter()
        .filter_map(|row| row.first().and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}

async fn tag_keys(server: &TestInflux, db: &str, measurement: &str) -> BTreeSet<String> {
    let q = format!("SHOW TAG KEYS FROM \"{measurement}\"");
    values(&server.influxql(db, &q).await)
        .into_iter()
        .filter_map(|row| row.first().and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_doubles_nothing() {
    let mut server = TestInflux::start();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[influx]
url = "{url}"
version = 1
database = "outage"
max_retries = 0
retry_backoff = "50ms"
timeout = "1s"

[collector]
interval = "1s"
hostname = "outage-host"
state_dir = "{state}"
buffer_max_points = 5

[collector.inputs]
only = ["cpu"]
"#,
        url = server.url(),
        state = dir.path().join("state").display(),
    );
    let collector = Collector::new(settings(dir.path(), &toml)).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(collector.run(async {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    server.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // While it is down, points go to the spool.
    let spool = dir.path().join("state/spool");
    let spooled = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert!(spooled > 0, "nothing spooled during the outage");
    server.start_again();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _ = stop_tx.send(());
    let cycles = run.await.unwrap().unwrap().cycles;
    assert!(cycles >= 10, "only {cycles} cycles");

    let v = server
        .influxql(
            "outage",
            "SELECT usage_user FROM cpu WHERE cpu = 'cpu-total' AND host = 'outage-host'",
        )
        .await;
    let times: Vec<i64> = values(&v)
        .iter()
        .map(|row| row[0].as_i64().unwrap())
        .collect();
    assert_eq!(
        times.len() as u64,
        cycles,
        "one cpu-total point per cycle: {times:?}"
    );
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1000,
            "consecutive 1 s cycles, no gap: {times:?}"
        );
    }
    // The spool was replayed and removed.
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

/// A tiny HTTP endpoint for the `http` input: JSON business metrics on `/stats.json`,
/// Prometheus text on `/metrics`.
async fn business_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let (ctype, body) = if head.starts_with("GET /metrics") {
                    (
                        "text/plain; version=0.0.4",
                        "# TYPE queue_depth gauge\nqueue_depth{queue=\"mail\"} 7\n",
                    )
                } else {
                    (
                        "application/json",
                        "{\"orders\": {\"pending\": 42, \"failed\": 3}}",
                    )
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_lands_with_its_tags_and_fields() {
    let server = TestInflux::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app_log = logs.join("app.log");
    std::fs::write(&app_log, "").unwrap();
    let endpoint = business_endpoint().await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let toml = format!(
        r#"
[influx]
url = "{url}"
version = 1
database = "inputs"

[collector]
interval = "1s"
hostname = "inputs-host"
state_dir = "{state}"
[collector.tags]
dc = "sh1"

[[collector.inputs.procstat]]
pattern = "integration"
[[collector.inputs.procstat]]
process_name = "no-such-process-xyz"

[collector.inputs.listen]
expected = [{{ port = {held_port} }}, {{ port = 1 }}]

[[collector.inputs.logmatch]]
files = ["{logs}/*.log"]
rules = [{{ name = "error", regex = "ERROR|FATAL" }}]

[[collector.inputs.http]]
name = "shop"
url = "{endpoint}/stats.json"
fields = {{ pending = "orders.pending" }}

[[collector.inputs.http]]
name = "queues"
url = "{endpoint}/metrics"
"#,
        url = server.url(),
        state = dir.path().join("state").display(),
        logs = logs.display(),
    );
    let collector = Collector::new(settings(dir.path(), &toml)).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(collector.run(async {
        let _ = stop_rx.await;
    }));
    // A log file that appears after start is read from its beginning.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::write(&app_log, "ok\nERROR disk full\nfine\nFATAL out of memory\n").unwrap();
    std::fs::write(logs.join("late.log"), "ERROR late file\n").unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let _ = stop_tx.send(());
    run.await.unwrap().unwrap();
    drop(held);

    let db = "inputs";
    let check =
        |m: &'static str, tags: &'static [&'static str], fields: &'static [&'static str]| {
            let server = &server;
            async move {
                let got_tags = tag_keys(server, db, m).await;
                let got_fields = field_keys(server, db, m).await;
                for t in tags.iter().chain(["host", "dc"].iter()) {
                    assert!(
                        got_tags.contains(*t),
                        "{m}: tag {t} missing from {got_tags:?}"
                    );
                }
                for f in fields.iter() {
                    assert!(
                        got_fields.contains(*f),
                        "{m}: field {f} missing from {got_fields:?}"
                    );
                }
            }
        };
    check(
        "cpu",
        &["cpu"],
        &[
            "usage_user",
            "usage_system",
            "usage_idle",
            "usage_iowait",
            "usage_steal",
            "usage_irq",
            "usage_softirq",
            "usage_nice",
            "usage_guest",
        ],
    )
    .await;
    check(
        "mem",
        &[],
        &[
            "total",
            "available",
            "used",
            "free",
            "cached",
            "buffered",
            "used_percent",
            "available_percent",
        ],
    )
    .await;
    check(
        "swap",
        &[],
        &["total", "used", "free", "used_percent", "in", "out"],
    )
    .await;
    check(
        "disk",
        &["path", "device", "fstype"],
        &[
            "total",
            "used",
            "free",
            "used_percent",
            "inodes_total",
            "inodes_used",
            "inodes_free",
        ],
    )
    .await;
    check(
        "diskio",
        &["name"],
        &[
            "reads",
            "writes",
            "read_bytes",
            "write_bytes",
            "read_time",
            "write_time",
            "io_time",
            "weighted_io_time",
            "iops_in_progress",
        ],
    )
    .await;
    check(
        "system",
        &[],
        &["load1", "load5", "load15", "n_cpus", "uptime"],
    )
    .await;
    check(
        "processes",
        &[],
        &[
            "total",
            "running",
            "sleeping",
            "stopped",
            "zombies",
            "blocked",
            "total_threads",
        ],
    )
    .await;
    check(
        "procstat_top",
        &["by", "rank"],
        &["pid", "name", "user", "cmdline", "cpu_usage", "memory_rss"],
    )
    .await;
    check(
        "procstat",
        &["pattern", "process_name"],
        &[
            "cpu_usage",
            "memory_rss",
            "num_threads",
            "pid_count",
            "running",
        ],
    )
    .await;
    check("listen", &["proto", "port", "address"], &["pid", "process"]).await;
    check("listen_check", &["port"], &["up"]).await;
    check("logmatch", &["file", "rule"], &["count", "last_line"]).await;
    check("shop", &[], &["pending"]).await;
    check("queues", &["queue"], &["queue_depth"]).await;
    check(
        "http_response",
        &["server", "result"],
        &["response_time", "http_response_code"],
    )
    .await;
    check(
        "hostscope_internal",
        &["component"],
        &["gathered", "written", "cycle_time_ms"],
    )
    .await;
    // net depends on the machine having a non-loopback interface.
    let interfaces = std::fs::read_to_string("/proc/net/dev").unwrap();
    if interfaces
        .lines()
        .skip(2)
        .any(|l| !l.trim_start().starts_with("lo:"))
    {
        check(
            "net",
            &["interface"],
            &[
                "bytes_sent",
                "bytes_recv",
                "packets_sent",
                "packets_recv",
                "err_in",
                "err_out",
                "drop_in",
                "drop_out",
            ],
        )
        .await;
    }

    // The values mean what they say.
    let one = |q: &'static str| {
        let server = &server;
        async move { values(&server.influxql(db, q).await) }
    };
    let rows = one("SELECT last(running) FROM procstat WHERE pattern = 'integration'").await;
    assert_eq!(rows[0][1], 1, "this test process is running");
    let rows = one("SELECT last(running), last(pid_count) FROM procstat WHERE process_name = 'no-such-process-xyz'").await;
    assert_eq!(
        (rows[0][1].as_i64(), rows[0][2].as_i64()),
        (Some(0), Some(0))
    );
    let rows = one("SELECT last(up) FROM listen_check WHERE port = '1'").await;
    assert_eq!(rows[0][1], 0, "nothing listens on port 1");
    let q = format!("SELECT last(up) FROM listen_check WHERE port = '{held_port}'");
    let rows = values(&server.influxql(db, &q).await);
    assert_eq!(rows[0][1], 1, "the test holds {held_port}");
    let rows = one("SELECT sum(count) FROM logmatch WHERE rule = 'error' GROUP BY file").await;
    let total: i64 = rows.iter().map(|r| r[1].as_i64().unwrap()).sum();
    assert_eq!(
        total, 3,
        "two matches in app.log and one in late.log, each counted once"
    );
    let rows = one("SELECT last(pending) FROM shop").await;
    assert_eq!(rows[0][1], 42.0);
    let rows = one("SELECT last(queue_depth) FROM queues WHERE queue = 'mail'").await;
    assert_eq!(rows[0][1], 7.0);
}
