//! `GET /api/v1/hosts?start=&end=`: every host that reported in the range, with its
//! latest figures and a CPU sparkline, from a handful of queries grouped by host.
//!
//! | figure            | query (all hosts at once)                                           |
//! |-------------------|---------------------------------------------------------------------|
//! | `cpu`, last seen  | last `cpu.usage_idle` (`cpu=cpu-total`) per series; 100 − idle     |
//! | `mem`             | last `mem.used_percent` per series                                  |
//! | `load1`           | last `system.load1` per series                                      |
//! | `disk`            | last `disk.used_percent` per mount; the fullest current mount       |
//! | `net_bytes_per_s` | `net` `bytes_recv` and `bytes_sent` rates per host and interface    |
//! |                   | over the last minutes, averaged per interface, summed               |
//! | `sparkline`       | mean `cpu.usage_idle` (`cpu-total`) per ~1/60 of the range per host |
//!
//! The host list is the union of the hosts of the `cpu`, `mem` and `system` answers
//! over the whole range, so a host that stopped reporting stays listed, as `silent`
//! (its last point is older than 3 collect intervals before the end, or before now
//! when the end is later). `warning` and `firing` come from the analyzer's active
//! alerts when one is configured; the order is firing > silent > warning > ok.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::Json;
use hostscope_core::influx::{Aggregate, Every, LastQuery, Series, SeriesQuery, TimeRange};
use serde::Serialize;
use serde_json::Value;

use super::alerts::fetch_alerts;
use super::params::{now_ms, Params, RawParams};
use super::query_failed;
use crate::error::AppError;
use crate::state::AppState;

/// Points a sparkline aims for.
pub const SPARKLINE_POINTS: i64 = 60;
/// How far back the network rate looks, at least (and at least 3 intervals).
pub const NET_WINDOW_MS: i64 = 5 * 60_000;

/// The sparkline's window: 1/60 of the range in whole seconds, at least the collect
/// interval, so a range of any length gives about 60 points (61 when unaligned).
pub fn sparkline_step(range: TimeRange, interval_ms: i64) -> i64 {
    let per_point = (range.duration_ms() + SPARKLINE_POINTS - 1) / SPARKLINE_POINTS;
    let whole_seconds = (per_point + 999) / 1000 * 1000;
    whole_seconds.max(interval_ms).max(1000)
}

/// One row of the host list.
#[derive(Debug, Serialize, Default)]
pub struct HostRow {
    /// The `host` tag.
    pub host: String,
    /// `ok`, `warning`, `firing` or `silent`.
    pub state: &'static str,
    /// Unix ms of the newest `cpu`, `mem` or `system` point in the range.
    pub last_seen: Option<i64>,
    /// CPU use, percent: 100 − `usage_idle` of `cpu-total`.
    pub cpu: Option<f64>,
    /// `mem.used_percent`.
    pub mem: Option<f64>,
    /// `disk.used_percent` of the fullest mount of the last disk cycle.
    pub disk: Option<f64>,
    /// That mount's `path`.
    pub disk_path: Option<String>,
    /// `system.load1`.
    pub load1: Option<f64>,
    /// Bytes received and sent per second, all interfaces, over the last minutes.
    pub net_bytes_per_s: Option<f64>,
    /// `[ms, cpu percent or null]`, one per window.
    pub sparkline: Vec<(i64, Option<f64>)>,
    /// The analyzer's active alerts for this host (when one is configured).
    pub alerts: usize,
}

fn last(measurement: &str, field: &str, tags: &[(&str, &str)], range: TimeRange) -> LastQuery {
    LastQuery {
        measurement: measurement.to_owned(),
        field: field.to_owned(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        range,
    }
}

/// The latest point of each host among `series`: `(time, value)`.
fn latest_per_host(series: &[Series]) -> BTreeMap<String, (i64, Option<f64>)> {
    let mut out: BTreeMap<String, (i64, Option<f64>)> = BTreeMap::new();
    for s in series {
        let Some(host) = s.tags.get("host").filter(|h| !h.is_empty()) else {
            continue;
        };
        for &(t, v) in &s.points {
            match out.get(host) {
                Some((seen, _)) if *seen >= t => {}
                _ => {
                    out.insert(host.clone(), (t, v));
                }
            }
        }
    }
    out
}

/// The handler.
pub async fn hosts(State(state): State<AppState>, raw: RawParams) -> Result<Json<Value>, AppError> {
    let params = Params::new(raw, &["start", "end"])?;
    let now = now_ms();
    let range = params.range(&state.settings, now)?;
    let interval_ms = i64::try_from(state.settings.collect_interval.as_millis())
        .unwrap_or(10_000)
        .max(1);

    let net_start = range
        .start_ms
        .max(range.end_ms - NET_WINDOW_MS.max(3 * interval_ms));
    let net_range =
        TimeRange::new(net_start, range.end_ms).map_err(|e| AppError::Internal(e.to_string()))?;
    let net_rate = |field: &str| SeriesQuery {
        measurement: "net".into(),
        field: field.into(),
        tags: BTreeMap::new(),
        range: net_range,
        every: None,
        aggregate: Some(Aggregate::Rate),
        group_by: vec!["host".into(), "interface".into()],
    };
    let spark_step = sparkline_step(range, interval_ms);
    let spark = SeriesQuery {
        measurement: "cpu".into(),
        field: "usage_idle".into(),
        tags: BTreeMap::from([("cpu".to_owned(), "cpu-total".to_owned())]),
        range,
        every: Some(
            Every::from_millis(spark_step.unsigned_abs())
                .map_err(|e| AppError::Internal(e.to_string()))?,
        ),
        aggregate: Some(Aggregate::Mean),
        group_by: vec!["host".into()],
    };

    let total = [("cpu", "cpu-total")];
    let queries = (
        last("cpu", "usage_idle", &total, range),
        last("mem", "used_percent", &[], range),
        last("system", "load1", &[], range),
        last("disk", "used_percent", &[], range),
        net_rate("bytes_recv"),
        net_rate("bytes_sent"),
    );
    let db = &state.influx;
    let (cpu, mem, load, disk, recv, sent, spark, alerts) = tokio::join!(
        db.query_last(&queries.0),
        db.query_last(&queries.1),
        db.query_last(&queries.2),
        db.query_last(&queries.3),
        db.query_series(&queries.4),
        db.query_series(&queries.5),
        db.query_series(&spark),
        fetch_alerts(&state),
    );
    // Every failed query counts in /metrics; the first one answers.
    let fail = |e| query_failed(&state, e);
    let (cpu, mem, load, disk) = (
        cpu.map_err(fail),
        mem.map_err(fail),
        load.map_err(fail),
        disk.map_err(fail),
    );
    let (recv, sent, spark) = (recv.map_err(fail), sent.map_err(fail), spark.map_err(fail));
    let (cpu, mem, load, disk) = (cpu?, mem?, load?, disk?);
    let (recv, sent, spark) = (recv?, sent?, spark?);

    let cpu = latest_per_host(&cpu);
    let mem = latest_per_host(&mem);
    let load = latest_per_host(&load);
    let names: BTreeSet<&String> = cpu.keys().chain(mem.keys()).chain(load.keys()).collect();

    // The fullest mount among those that reported in the host's last disk cycle.
    let mut disks: BTreeMap<String, Vec<(i64, f64, String)>> = BTreeMap::new();
    for s in &disk {
        let Some(host) = s.tags.get("host") else {
            continue;
        };
        let path = s.tags.get("path").cloned().unwrap_or_default();
        for &(t, v) in &s.points {
            if let Some(v) = v {
                disks
                    .entry(host.clone())
                    .or_default()
                    .push((t, v, path.clone()));
            }
        }
    }

    // Average rate per interface, summed per host.
    let mut net: BTreeMap<String, f64> = BTreeMap::new();
    for s in recv.iter().chain(&sent) {
        let Some(host) = s.tags.get("host") else {
            continue;
        };
        let values: Vec<f64> = s.points.iter().filter_map(|(_, v)| *v).collect();
        if values.is_empty() {
            continue;
        }
        *net.entry(host.clone()).or_default() += values.iter().sum::<f64>() / values.len() as f64;
    }

    let mut sparks: BTreeMap<String, Vec<(i64, Option<f64>)>> = BTreeMap::new();
    for s in spark {
        let Some(host) = s.tags.get("host") else {
            continue;
        };
        let points = s
            .points
            .iter()
            .map(|&(t, v)| (t, v.map(|idle| 100.0 - idle)))
            .collect();
        sparks.insert(host.clone(), points);
    }

    let reference = range.end_ms.min(now);
    let silent_before = reference.saturating_sub(3 * interval_ms);
    let (alert_source, alerts) = match alerts {
        Ok(Some(list)) => ("analyzer", list),
        Ok(None) => ("none", Vec::new()),
        Err(error) => {
            tracing::warn!(message = "analyzer alerts unavailable for the host list", %error);
            ("unavailable", Vec::new())
        }
    };

    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        let mut row = HostRow {
            host: name.clone(),
            state: "ok",
            ..HostRow::default()
        };
        let seen = [cpu.get(name), mem.get(name), load.get(name)]
            .into_iter()
            .flatten()
            .map(|(t, _)| *t)
            .max();
        row.last_seen = seen;
        row.cpu = cpu.get(name).and_then(|(_, v)| v.map(|idle| 100.0 - idle));
        row.mem = mem.get(name).and_then(|(_, v)| *v);
        row.load1 = load.get(name).and_then(|(_, v)| *v);
        if let Some(mounts) = disks.get(name) {
            let newest = mounts.iter().map(|(t, _, _)| *t).max().unwrap_or(i64::MIN);
            let current = mounts
                .iter()
                .filter(|(t, _, _)| *t >= newest.saturating_sub(interval_ms));
            if let Some((_, v, path)) = current.max_by(|a, b| a.1.total_cmp(&b.1)) {
                row.disk = Some(*v);
                row.disk_path = Some(path.clone());
            }
        }
        row.net_bytes_per_s = net.get(name).copied();
        row.sparkline = sparks.remove(name).unwrap_or_default();
        let (severity, count) = alert_state(&alerts, name);
        row.alerts = count;
        row.state = host_state(seen.is_none_or(|t| t < silent_before), severity);
        rows.push(row);
    }
    Ok(Json(serde_json::json!({
        "start": range.start_ms,
        "end": range.end_ms,
        "alerts_source": alert_source,
        "hosts": rows,
    })))
}

/// A host's state: `firing` (an active alert someone must handle, even on a host
/// that went quiet), then `silent`, then `warning`, then `ok`.
pub fn host_state(silent: bool, alert: &'static str) -> &'static str {
    match (alert, silent) {
        ("firing", _) => "firing",
        (_, true) => "silent",
        (other, false) => other,
    }
}

/// `firing`, `warning` or `ok` for `host` from the analyzer's alerts, and how many
/// active alerts it has. An alert names its host in `host` or `labels.host`; a
/// `severity` of `warning` or `info` makes the host `warning`, any other `firing`;
/// alerts whose `state` is `resolved` or `ok` do not count.
pub fn alert_state(alerts: &[Value], host: &str) -> (&'static str, usize) {
    let mut state = "ok";
    let mut count = 0;
    for a in alerts {
        let h = a
            .get("host")
            .or_else(|| a.get("labels").and_then(|l| l.get("host")))
            .and_then(Value::as_str);
        if h != Some(host) {
            continue;
        }
        if matches!(
            a.get("state").and_then(Value::as_str),
            Some("resolved" | "ok")
        ) {
            continue;
        }
        count += 1;
        match a.get("severity").and_then(Value::as_str) {
            Some("warning" | "warn" | "info") => {
                if state == "ok" {
                    state = "warning";
                }
            }
            _ => state = "firing",
        }
    }
    (state, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_steps() {
        let range = |len: i64| TimeRange::new(1_000_000, 1_000_000 + len).unwrap();
        assert_eq!(sparkline_step(range(3_600_000), 10_000), 60_000);
        assert_eq!(sparkline_step(range(7_200_000), 10_000), 120_000);
        assert_eq!(sparkline_step(range(60_000), 10_000), 10_000);
        assert_eq!(sparkline_step(range(7 * 86_400_000), 10_000), 10_080_000);
        assert_eq!(sparkline_step(range(100), 1), 1000);
    }

    #[test]
    fn state_order() {
        assert_eq!(host_state(true, "firing"), "firing");
        assert_eq!(host_state(true, "warning"), "silent");
        assert_eq!(host_state(true, "ok"), "silent");
        assert_eq!(host_state(false, "warning"), "warning");
        assert_eq!(host_state(false, "ok"), "ok");
    }

    #[test]
    fn alert_states() {
        let alerts: Vec<Value> = serde_json::from_str(
            r#"[{"host":"a","severity":"warning","state":"firing"},
                {"labels":{"host":"b"},"severity":"critical"},
                {"host":"b","severity":"warning"},
                {"host":"c","severity":"critical","state":"resolved"}]"#,
        )
        .unwrap();
        assert_eq!(alert_state(&alerts, "a"), ("warning", 1));
        assert_eq!(alert_state(&alerts, "b"), ("firing", 2));
        assert_eq!(alert_state(&alerts, "c"), ("ok", 0));
        assert_eq!(alert_state(&alerts, "d"), ("ok", 0));
    }
}
