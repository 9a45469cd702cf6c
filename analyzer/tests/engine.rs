//! The rules engine against a real InfluxDB 1.x (`influxd`): seeded data with injected
//! anomalies, evaluated at chosen times (the clock is passed in, nothing sleeps).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hostscope_analyzer::engine::{Cycle, Engine, EngineSettings, GroupBy};
use hostscope_analyzer::notify::EventKind;
use hostscope_analyzer::rules::{self, Rule};
use hostscope_core::influx::Client;
use hostscope_core::lineproto::Precision;
use hostscope_tests::influxd::TestInflux;

const MIN: i64 = 60_000;
const DB: &str = "engine";

/// A whole hour, so steps line up.
fn base_time() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now / 3_600_000 * 3_600_000
}

/// `usage_user` of `host` at minute `i` (relative to base): normal 20 ± 3, unless
/// `hot` says otherwise.
fn cpu_line(host: &str, t_ms: i64, value: f64) -> String {
    format!("cpu,host={host},cpu=cpu-total usage_user={value},usage_system=5,usage_iowait=1,usage_idle={} {t_ms}", 100.0 - value - 6.0)
}

fn normal(i: i64) -> f64 {
    20.0 + ((i * 7919) % 13) as f64 / 2.0 - 3.0
}

async fn write(client: &Client, lines: &[String]) {
    let report = client
        .write_lines(&lines.join("\n"), Precision::Milliseconds)
        .await
        .expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

fn rules_from(toml_text: &str, channels: &[&str]) -> Vec<Rule> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostscope.toml");
    std::fs::write(&path, toml_text).unwrap();
    let cfg: hostscope_analyzer::FileConfig =
        hostscope_core::config::load(&hostscope_core::config::Sources::file(&path)).unwrap();
    let channels: Vec<String> = channels.iter().map(|s| (*s).to_owned()).collect();
    rules::validate(&cfg.analyzer.rules, &channels).unwrap()
}

fn engine(
    client: &Client,
    rules: Vec<Rule>,
    dir: &Path,
    group_wait: Duration,
    by: GroupBy,
) -> Engine {
    Engine::new(
        client.clone(),
        rules,
        EngineSettings {
            state_dir: dir.to_owned(),
            concurrency: 2,
            timeout: Duration::from_secs(20),
            group_by: by,
            group_wait,
        },
    )
    .unwrap()
}

/// Every event of a cycle as (rule, host, kind).
fn events(c: &Cycle) -> Vec<(String, String, EventKind)> {
    let mut v: Vec<_> = c
        .notifications
        .iter()
        .flat_map(|(n, _)| n.events.iter())
        .map(|e| (e.rule.clone(), e.host.clone().unwrap_or_default(), e.kind))
        .collect();
    v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    v
}

fn ev(rule: &str, host: &str, kind: EventKind) -> (String, String, EventKind) {
    (rule.to_owned(), host.to_owned(), kind)
}

/// The threshold rule alone.
const CPU_RULE: &str = r#"
[[analyzer.rules]]
name = "cpu-high"
measurement = "cpu"
field = "usage_user"
tags = { cpu = "cpu-total" }
window = "30m"
step = "1m"
delay = "0s"
detector = { type = "threshold", warning_above = 80.0, critical_above = 90.0 }
for = "2m"
labels = { team = "ops" }
channels = ["email"]

"#;

/// The nodata rule.
const SILENT_RULE: &str = r#"
[[analyzer.rules]]
name = "host-silent"
detector = { type = "nodata", after = "5m" }
channels = ["email"]
"#;

/// Both.
fn threshold_rules() -> String {
    format!("{CPU_RULE}\n{SILENT_RULE}")
}

/// web-1 runs hot for the last 10 minutes before `base`; web-2 stops sending 15
/// minutes before `base`. One evaluation: cpu-high fires for web-1 (critical, the
/// band crossed and the value in the event), host-silent for web-2; history lands in
/// the `alerts` measurement; a second engine on the same state sends nothing again.
#[tokio::test]
async fn a_rule_fires_on_injected_data_writes_history_and_survives_a_restart() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let mut lines = Vec::new();
    for i in -120..0 {
        let t = base + i * MIN;
        let hot = i >= -10;
        lines.push(cpu_line("web-1", t, if hot { 95.0 } else { normal(i) }));
        if i < -15 {
            lines.push(cpu_line("web-2", t, normal(i)));
        }
    }
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(&threshold_rules(), &["email"]);
    let mut e = engine(
        &client,
        rules.clone(),
        state.path(),
        Duration::ZERO,
        GroupBy::Host,
    );
    let cycle = e.evaluate(base).await;
    assert_eq!(cycle.failed, 0);
    assert_eq!(
        events(&cycle),
        vec![
            ev("cpu-high", "web-1", EventKind::Firing),
            ev("host-silent", "web-2", EventKind::Firing),
        ]
    );
    let (n, channels) = cycle
        .notifications
        .iter()
        .find(|(n, _)| n.group == "host=web-1")
        .unwrap();
    assert_eq!(channels, &["email".to_owned()]);
    let fired = &n.events[0];
    assert_eq!(fired.severity, hostscope_core::detect::Severity::Critical);
    assert_eq!(fired.value, Some(95.0));
    // The normal band (up to the warning bound); the reason names the critical bound.
    assert_eq!(fired.upper, Some(80.0));
    assert!(
        fired.reason.contains("critical bound 90"),
        "{}",
        fired.reason
    );
    assert_eq!(fired.labels.get("team").map(String::as_str), Some("ops"));
    assert_eq!(fired.labels.get("host").map(String::as_str), Some("web-1"));
    assert!(fired.reason.contains("95"), "{}", fired.reason);
    // It started when the breach began (10 minutes ago) and fired `for` later.
    assert_eq!(fired.since_ms, base - 10 * MIN);
    assert_eq!(fired.at_ms, base - 8 * MIN);
    let silent = &cycle
        .notifications
        .iter()
        .find(|(n, _)| n.group == "host=web-2")
        .unwrap()
        .0
        .events[0];
    assert!(
        silent.reason.starts_with("no data for 16m"),
        "{}",
        silent.reason
    );

    // History: one firing point per alert, tagged for the web's chart markers.
    let h = influx
        .influxql(
            DB,
            r#"SELECT "state", "value", "rule", "host", "severity" FROM "alerts""#,
        )
        .await;
    let rows = &h["results"][0]["series"][0]["values"];
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{h}");
    assert!(
        rows.iter().any(|r| r[1] == "firing"
            && r[2] == 95.0
            && r[3] == "cpu-high"
            && r[4] == "web-1"
            && r[5] == "critical"),
        "{h}"
    );
    assert!(
        rows.iter()
            .any(|r| r[1] == "firing" && r[3] == "host-silent" && r[4] == "web-2"),
        "{h}"
    );

    // The same cycle again, and a restarted engine: no duplicate.
    assert!(e.evaluate(base).await.notifications.is_empty());
    drop(e);
    let mut e = engine(
        &client,
        rules.clone(),
        state.path(),
        Duration::ZERO,
        GroupBy::Host,
    );
    assert!(e.evaluate(base + 30_000).await.notifications.is_empty());

    // web-1 cools down and web-2 comes back: both resolve, once.
    let lines: Vec<String> = (0..3)
        .flat_map(|i| {
            let t = base + i * MIN;
            [
                cpu_line("web-1", t, normal(i)),
                cpu_line("web-2", t, normal(i)),
            ]
        })
        .collect();
    write(&client, &lines).await;
    let cycle = e.evaluate(base + 3 * MIN).await;
    assert_eq!(
        events(&cycle),
        vec![
            ev("cpu-high", "web-1", EventKind::Resolved),
            ev("host-silent", "web-2", EventKind::Resolved),
        ]
    );
    assert!(e
        .evaluate(base + 3 * MIN + 1000)
        .await
        .notifications
        .is_empty());
    let h = influx
        .influxql(
            DB,
            r#"SELECT count("state") FROM "alerts" WHERE "state" = 'resolved'"#,
        )
        .await;
    assert_eq!(h["results"][0]["series"][0]["values"][0][1], 2, "{h}");
    // Self-metrics: counters of this process (three cycles of two rules since the
    // restart), and nothing firing now.
    let m = influx
        .influxql(DB, r#"SELECT last("evaluations"), last("alerts_firing") FROM "hostscope_internal" WHERE "component" = 'analyzer'"#)
        .await;
    let row = &m["results"][0]["series"][0]["values"][0];
    assert_eq!(
        (row[1].as_i64(), row[2].as_i64()),
        (Some(6), Some(0)),
        "{m}"
    );
}

/// The analyzer was down while a breach came and went: the next evaluation judges the
/// steps it missed, so the alert fires and resolves (both sent), in data time.
#[tokio::test]
async fn an_alert_that_fired_while_the_analyzer_was_down_is_still_reported() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let line = |i: i64, v: f64| cpu_line("db-1", base + i * MIN, v);
    write(
        &client,
        &(-60..0).map(|i| line(i, normal(i))).collect::<Vec<_>>(),
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(CPU_RULE, &["email"]);
    let mut e = engine(&client, rules, state.path(), Duration::ZERO, GroupBy::Host);
    assert!(e.evaluate(base).await.notifications.is_empty());
    // Down for 20 minutes; meanwhile minutes 5..10 were hot.
    let later: Vec<String> = (0..20)
        .map(|i| {
            line(
                i,
                if (5..10).contains(&i) {
                    99.0
                } else {
                    normal(i)
                },
            )
        })
        .collect();
    write(&client, &later).await;
    let cycle = e.evaluate(base + 20 * MIN).await;
    assert_eq!(
        events(&cycle),
        vec![
            ev("cpu-high", "db-1", EventKind::Firing),
            ev("cpu-high", "db-1", EventKind::Resolved),
        ]
    );
    let evs: Vec<_> = cycle
        .notifications
        .iter()
        .flat_map(|(n, _)| &n.events)
        .collect();
    let fire = evs.iter().find(|e| e.kind == EventKind::Firing).unwrap();
    let resolve = evs.iter().find(|e| e.kind == EventKind::Resolved).unwrap();
    assert_eq!(fire.at_ms, base + 7 * MIN);
    assert_eq!(resolve.at_ms, base + 10 * MIN);
}

/// Events of one cycle are grouped: by rule, two hosts firing together make one
/// message; a group waits `group_wait` for more before it is sent.
#[tokio::test]
async fn events_are_grouped_and_wait_for_their_group() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let mut lines = Vec::new();
    for i in -30..0 {
        for host in ["a", "b"] {
            lines.push(cpu_line(
                host,
                base + i * MIN,
                if i >= -3 { 97.0 } else { normal(i) },
            ));
        }
    }
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(CPU_RULE, &["email"]);
    let mut e = engine(
        &client,
        rules,
        state.path(),
        Duration::from_secs(30),
        GroupBy::Rule,
    );
    assert!(
        e.evaluate(base).await.notifications.is_empty(),
        "held for group_wait"
    );
    let cycle = e.evaluate(base + 30_000).await;
    assert_eq!(cycle.notifications.len(), 1);
    let (n, _) = &cycle.notifications[0];
    assert_eq!(n.group, "rule=cpu-high");
    let hosts: Vec<_> = n.events.iter().map(|e| e.host.clone().unwrap()).collect();
    assert_eq!(hosts, ["a", "b"]);
}

/// A silence keeps a matching alert quiet (state and history still kept); an
/// acknowledged alert sends no reminders but still its resolution.
#[tokio::test]
async fn silences_and_acknowledgements() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let mut lines = Vec::new();
    for i in -30..0 {
        for host in ["quiet", "loud"] {
            lines.push(cpu_line(
                host,
                base + i * MIN,
                if i >= -5 { 97.0 } else { normal(i) },
            ));
        }
    }
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let toml = CPU_RULE.replace("for = \"2m\"", "for = \"2m\"\nrepeat_interval = \"10m\"");
    let rules = rules_from(&toml, &["email"]);
    let mut e = engine(&client, rules, state.path(), Duration::ZERO, GroupBy::Host);
    {
        let shared = e.shared();
        let mut store = shared.store.lock().await;
        store.silences.push(hostscope_analyzer::state::Silence {
            id: "s1".into(),
            rule: Some("cpu-high".into()),
            host: Some("quiet".into()),
            labels: BTreeMap::new(),
            starts_at_ms: base - MIN,
            ends_at_ms: base + 60 * MIN,
            comment: "maintenance".into(),
            created_by: "test".into(),
        });
    }
    let cycle = e.evaluate(base).await;
    assert_eq!(
        events(&cycle),
        vec![ev("cpu-high", "loud", EventKind::Firing)]
    );
    {
        let shared = e.shared();
        let store = shared.store.lock().await;
        let quiet = store
            .alerts
            .values()
            .find(|a| a.host() == Some("quiet"))
            .unwrap();
        assert_eq!(
            quiet.lifecycle.state,
            hostscope_analyzer::lifecycle::State::Firing
        );
    }
    // Still hot 12 minutes later: a reminder for loud; ack it first and there is none.
    let hot: Vec<String> = (0..12)
        .flat_map(|i| ["quiet", "loud"].map(|h| cpu_line(h, base + i * MIN, 97.0)))
        .collect();
    write(&client, &hot).await;
    {
        let shared = e.shared();
        let mut store = shared.store.lock().await;
        for a in store.alerts.values_mut() {
            a.acknowledged = true;
        }
    }
    let cycle = e.evaluate(base + 12 * MIN).await;
    assert!(cycle.notifications.is_empty(), "{:?}", events(&cycle));
    let cool: Vec<String> = (12..14)
        .flat_map(|i| ["quiet", "loud"].map(|h| cpu_line(h, base + i * MIN, normal(i))))
        .collect();
    write(&client, &cool).await;
    let cycle = e.evaluate(base + 14 * MIN).await;
    assert_eq!(
        events(&cycle),
        vec![ev("cpu-high", "loud", EventKind::Resolved)]
    );
}

/// The isolation forest, per host, over several metrics: a host whose cpu, iowait and
/// load jump together is flagged; the steady host is not.
#[tokio::test]
async fn an_isolation_forest_rule_flags_the_odd_host_state() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let mut lines = Vec::new();
    for i in -600..0 {
        let t = base + i * MIN;
        for host in ["steady", "odd"] {
            let anomalous = host == "odd" && i >= -3;
            let wobble = ((i * 7919 + 13) % 17) as f64 / 4.0;
            let (user, iowait, load, mem) = if anomalous {
                (92.0, 40.0, 24.0, 97.0)
            } else {
                (
                    20.0 + wobble,
                    1.0 + wobble / 4.0,
                    1.0 + wobble / 8.0,
                    40.0 + wobble,
                )
            };
            lines.push(format!("cpu,host={host},cpu=cpu-total usage_user={user},usage_system=5,usage_iowait={iowait} {t}"));
            lines.push(format!("mem,host={host} used_percent={mem} {t}"));
            lines.push(format!("system,host={host} load1={load} {t}"));
        }
    }
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(
        r#"
        [[analyzer.rules]]
        name = "host-shape"
        step = "1m"
        delay = "0s"
        detector = { type = "iforest", history = "10h", threshold = 0.65 }
        "#,
        &[],
    );
    let mut e = engine(&client, rules, state.path(), Duration::ZERO, GroupBy::Host);
    let cycle = e.evaluate(base).await;
    assert_eq!(cycle.failed, 0);
    let shared = e.shared();
    let store = shared.store.lock().await;
    let state_of = |h: &str| {
        store
            .alerts
            .values()
            .find(|a| a.host() == Some(h))
            .map(|a| (a.lifecycle.state, a.last.clone()))
    };
    let (odd, odd_obs) = state_of("odd").unwrap();
    assert_eq!(
        odd,
        hostscope_analyzer::lifecycle::State::Firing,
        "{odd_obs:?}"
    );
    let obs = odd_obs.unwrap();
    assert!(obs.reason.contains("cpu.usage_user=92"), "{}", obs.reason);
    let (steady, steady_obs) = state_of("steady").unwrap();
    assert_eq!(
        steady,
        hostscope_analyzer::lifecycle::State::Ok,
        "{steady_obs:?}"
    );
}

/// A host that stops sending stays "silent" even once its last point has left the
/// rule's window: it never resolves by being forgotten.
#[tokio::test]
async fn a_host_gone_for_longer_than_the_window_keeps_its_nodata_alert() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let lines: Vec<String> = (-90..-30)
        .map(|i| cpu_line("gone", base + i * MIN, normal(i)))
        .collect();
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(
        r#"
        [[analyzer.rules]]
        name = "host-silent"
        window = "2h"
        detector = { type = "nodata", after = "5m" }
        channels = ["email"]
        "#,
        &["email"],
    );
    let mut e = engine(&client, rules, state.path(), Duration::ZERO, GroupBy::Host);
    let cycle = e.evaluate(base).await;
    assert_eq!(
        events(&cycle),
        vec![ev("host-silent", "gone", EventKind::Firing)]
    );
    // Three hours later nothing of "gone" is in the 2 h window any more.
    let cycle = e.evaluate(base + 180 * MIN).await;
    assert!(cycle.notifications.is_empty(), "{:?}", events(&cycle));
    let shared = e.shared();
    let store = shared.store.lock().await;
    let a = store
        .alerts
        .values()
        .find(|a| a.host() == Some("gone"))
        .unwrap();
    assert_eq!(
        a.lifecycle.state,
        hostscope_analyzer::lifecycle::State::Firing
    );
    let reason = &a.last.as_ref().unwrap().reason;
    assert_eq!(reason, "no data for more than 2h (the rule's window)");
}

/// A firing warning that crosses the critical level is escalated: a new "firing"
/// message at critical severity, the warning period closed and a critical one opened
/// in the history, and the resolution closes the critical one.
#[tokio::test]
async fn a_firing_warning_escalates_to_critical() {
    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let value = |i: i64| match i {
        ..-20 => normal(i),
        -20..-10 => 85.0,
        -10..0 => 95.0,
        _ => normal(i),
    };
    let lines: Vec<String> = (-60..0)
        .map(|i| cpu_line("web-1", base + i * MIN, value(i)))
        .collect();
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(CPU_RULE, &["email"]);
    let mut e = engine(&client, rules, state.path(), Duration::ZERO, GroupBy::Host);
    // Evaluated after the warning has fired (minute -15), then again at the end.
    let cycle = e.evaluate(base - 15 * MIN).await;
    let severities = |c: &Cycle| {
        c.notifications
            .iter()
            .flat_map(|(n, _)| &n.events)
            .map(|e| (e.kind, e.severity))
            .collect::<Vec<_>>()
    };
    use hostscope_core::detect::Severity::{Critical, Warning};
    assert_eq!(severities(&cycle), vec![(EventKind::Firing, Warning)]);
    let cycle = e.evaluate(base).await;
    assert_eq!(severities(&cycle), vec![(EventKind::Firing, Critical)]);
    write(
        &client,
        &(0..3)
            .map(|i| cpu_line("web-1", base + i * MIN, normal(i)))
            .collect::<Vec<_>>(),
    )
    .await;
    let cycle = e.evaluate(base + 3 * MIN).await;
    assert_eq!(severities(&cycle), vec![(EventKind::Resolved, Critical)]);
    let h = influx
        .influxql(
            DB,
            r#"SELECT "state", "severity" FROM "alerts" WHERE "host" = 'web-1'"#,
        )
        .await;
    // (time, state, severity); the two points of the escalation share a time.
    let mut rows: Vec<(i64, String, String)> = h["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |i: usize| r[i].as_str().unwrap().to_owned();
            (r[0].as_i64().unwrap(), text(1), text(2))
        })
        .collect();
    rows.sort();
    let row = |t: i64, s: &str, sev: &str| (base + t * MIN, s.to_owned(), sev.to_owned());
    assert_eq!(
        rows,
        vec![
            row(-18, "firing", "warning"),
            row(-10, "firing", "critical"),
            row(-10, "resolved", "warning"),
            row(0, "resolved", "critical"),
        ],
        "{h}"
    );
}

/// The analyzer queues notifications, then crashes before it saves its state: after
/// the restart it judges the same steps again and finds the same transitions, but the
/// outbox already holds them, so nothing is queued (or sent) twice. That holds for the
/// nodata rule too, whose steps are wall-clock time: judged a minute later, its event
/// is still the same one (keyed by the host's last point).
#[tokio::test]
async fn a_crash_between_queuing_and_saving_queues_nothing_twice() {
    use hostscope_analyzer::engine::Sink;
    use hostscope_analyzer::notify::Outbox;
    use std::sync::Arc;

    let influx = TestInflux::start();
    let client = influx.client(DB).await;
    let base = base_time();
    let mut lines = Vec::new();
    for i in -60..0 {
        let t = base + i * MIN;
        lines.push(cpu_line(
            "web-1",
            t,
            if i >= -10 { 95.0 } else { normal(i) },
        ));
        if i < -15 {
            lines.push(cpu_line("web-2", t, normal(i)));
        }
    }
    write(&client, &lines).await;
    let state = tempfile::tempdir().unwrap();
    let rules = rules_from(&threshold_rules(), &["email"]);
    let run = async |rules: Vec<Rule>, now: i64| {
        let outbox = Arc::new(Outbox::open(state.path()).unwrap());
        let mut e = engine(&client, rules, state.path(), Duration::ZERO, GroupBy::Host);
        e.set_sink(Sink {
            outbox: outbox.clone(),
            wake: Arc::new(tokio::sync::Notify::new()),
        });
        let cycle = e.evaluate(now).await;
        (events(&cycle), outbox.len())
    };
    let (first, queued) = run(rules.clone(), base).await;
    assert_eq!(
        first,
        vec![
            ev("cpu-high", "web-1", EventKind::Firing),
            ev("host-silent", "web-2", EventKind::Firing),
        ]
    );
    assert_eq!(queued, 2, "one delivery per host");
    // The crash: the state saved after queuing is lost.
    std::fs::remove_file(state.path().join("alerts.json")).unwrap();
    let (again, queued) = run(rules, base + MIN).await;
    assert_eq!(again, first, "the same transitions are found again");
    assert_eq!(queued, 2, "and not queued a second time");
}
