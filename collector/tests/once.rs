//! `hostscope-collector --once` prints line protocol that a real InfluxDB accepts as
//! is, like `telegraf --test`, and writes nothing itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use hostscope_tests::influxd::TestInflux;

#[tokio::test]
async fn once_prints_line_protocol_influxdb_accepts_as_is() {
    let server = TestInflux::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hostscope.toml");
    std::fs::write(
        &config,
        format!(
            "[influx]\nurl = \"{}\"\nversion = 1\ndatabase = \"once\"\n[collector]\nstate_dir = \"{}\"\n",
            server.url(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hostscope-collector"))
        .args(["--config", config.to_str().unwrap(), "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for m in [
        "cpu,",
        "mem,",
        "swap,",
        "disk,",
        "system,",
        "processes,",
        "procstat_top,",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(m)),
            "no {m} line in:\n{text}"
        );
    }
    // It wrote nothing: the database does not even exist yet.
    let dbs = server.influxql("", "SHOW DATABASES").await.to_string();
    assert!(!dbs.contains("\"once\""), "{dbs}");

    server.influxql("", "CREATE DATABASE once").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/write?db=once&precision=n", server.url()))
        .body(text.clone())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status.as_u16(), 204, "{}", resp.text().await.unwrap());
    let v = server
        .influxql(
            "once",
            "SELECT count(usage_idle) FROM cpu WHERE cpu = 'cpu-total'",
        )
        .await;
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 1, "{v}");
}
