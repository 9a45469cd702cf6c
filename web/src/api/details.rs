//! `GET /api/v1/hosts/{host}/details?start=&end=`: the tables of a host page, and
//! what its charts can be split by.
//!
//! - `top_cpu`, `top_memory`: the last `procstat_top` cycle in the range (tags
//!   `by` = `cpu` | `memory`, `rank`), by rank;
//! - `listen`: the last `listen` cycle (one row per proto, address and port);
//! - `logmatch`: per file and rule, the sum of `count` over the range and the last
//!   matching line (`last_line`) with its time;
//! - `business`: measurements outside the built-in schema the host reports, with their
//!   numeric fields (on InfluxDB 1.x, any the host ever reported: see
//!   `FieldKeysQuery`);
//! - `disks`, `interfaces`, `cpus` (without `cpu-total`), `devices` (`diskio`): tag
//!   values seen in the range, in natural order.
//!
//! "The last cycle" is the rows stamped within half a collect interval of the newest
//! row of that measurement: ranks and sockets that have gone since do not linger.

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use hostscope_core::influx::{
    Aggregate, FieldData, FieldKeysQuery, Row, RowSelect, RowsQuery, SeriesQuery, TagValuesQuery,
    TimeRange,
};
use serde_json::{json, Value};

use super::params::{check_text, now_ms, Params, RawParams};
use super::schema::business;
use super::{natural_cmp, query_failed};
use crate::error::AppError;
use crate::state::AppState;

const TOP_FIELDS: [&str; 6] = ["pid", "name", "user", "cmdline", "cpu_usage", "memory_rss"];

/// One file and rule of `logmatch`: the sum of `count`, and the newest `last_line`.
#[derive(Default)]
struct LogEntry {
    count: Option<f64>,
    last: Option<(i64, Value)>,
}

fn host_tags(host: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("host".to_owned(), host.to_owned())])
}

fn last_rows(measurement: &str, fields: &[&str], host: &str, range: TimeRange) -> RowsQuery {
    RowsQuery {
        measurement: measurement.to_owned(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        tags: host_tags(host),
        range,
        select: RowSelect::Last,
    }
}

fn tag_values(measurement: &str, key: &str, host: &str, range: TimeRange) -> TagValuesQuery {
    TagValuesQuery {
        measurement: measurement.to_owned(),
        key: key.to_owned(),
        tags: host_tags(host),
        range,
    }
}

/// The rows of the newest cycle: within half an interval of the newest row.
fn last_cycle(rows: Vec<Row>, interval_ms: i64) -> Vec<Row> {
    let Some(newest) = rows.iter().map(|r| r.time_ms).max() else {
        return rows;
    };
    let from = newest.saturating_sub(interval_ms / 2);
    rows.into_iter().filter(|r| r.time_ms >= from).collect()
}

fn number(row: &Row, field: &str) -> Value {
    match row.fields.get(field).and_then(FieldData::as_f64) {
        Some(v) => json!(v),
        None => Value::Null,
    }
}

/// A number that is a whole count (pid, bytes) as an integer.
fn integer(row: &Row, field: &str) -> Value {
    match row.fields.get(field).and_then(FieldData::as_f64) {
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => json!(v as i64),
        Some(v) => json!(v),
        None => Value::Null,
    }
}

fn text(row: &Row, field: &str) -> Value {
    match row.fields.get(field) {
        Some(FieldData::Text(s)) => json!(s),
        Some(other) => other.as_f64().map_or(Value::Null, |v| json!(v.to_string())),
        None => Value::Null,
    }
}

fn tag<'a>(row: &'a Row, key: &str) -> &'a str {
    row.tags.get(key).map_or("", String::as_str)
}

/// The handler.
pub async fn details(
    State(state): State<AppState>,
    host: Result<Path<String>, PathRejection>,
    raw: RawParams,
) -> Result<Json<Value>, AppError> {
    let Path(host) = host.map_err(|e| AppError::bad("host", e.body_text()))?;
    if host.is_empty() {
        return Err(AppError::bad("host", "is required"));
    }
    check_text("host", &host)?;
    let params = Params::new(raw, &["start", "end"])?;
    let range = params.range(&state.settings, now_ms())?;
    let interval_ms = i64::try_from(state.settings.collect_interval.as_millis()).unwrap_or(10_000);

    let logmatch_sums = SeriesQuery {
        measurement: "logmatch".into(),
        field: "count".into(),
        tags: host_tags(&host),
        range,
        every: None,
        aggregate: Some(Aggregate::Sum),
        group_by: vec!["file".into(), "rule".into()],
    };
    let top = last_rows("procstat_top", &TOP_FIELDS, &host, range);
    let listen = last_rows("listen", &["pid", "process"], &host, range);
    let lines = last_rows("logmatch", &["last_line"], &host, range);
    let keys = FieldKeysQuery {
        measurement: None,
        tags: host_tags(&host),
        range,
    };
    let disks = tag_values("disk", "path", &host, range);
    let interfaces = tag_values("net", "interface", &host, range);
    let cpus = tag_values("cpu", "cpu", &host, range);
    let devices = tag_values("diskio", "name", &host, range);
    let db = &state.influx;
    let (top, listen, sums, lines, keys, disks, interfaces, cpus, devices) = tokio::join!(
        db.query_rows(&top),
        db.query_rows(&listen),
        db.query_series(&logmatch_sums),
        db.query_rows(&lines),
        db.query_field_keys(&keys),
        db.query_tag_values(&disks),
        db.query_tag_values(&interfaces),
        db.query_tag_values(&cpus),
        db.query_tag_values(&devices),
    );
    // Every failed query counts in /metrics; the first one answers.
    let fail = |e| query_failed(&state, e);
    let (top, listen, sums, lines, keys) = (
        top.map_err(fail),
        listen.map_err(fail),
        sums.map_err(fail),
        lines.map_err(fail),
        keys.map_err(fail),
    );
    let (disks, interfaces, cpus, devices) = (
        disks.map_err(fail),
        interfaces.map_err(fail),
        cpus.map_err(fail),
        devices.map_err(fail),
    );
    let (top, listen, sums, lines, keys) = (top?, listen?, sums?, lines?, keys?);
    let (mut disks, mut interfaces, mut cpus, mut devices) = (disks?, interfaces?, cpus?, devices?);

    // Process tables.
    let mut top = last_cycle(top, interval_ms);
    top.sort_by_key(|r| {
        (
            tag(r, "by").to_owned(),
            tag(r, "rank").parse::<u64>().unwrap_or(u64::MAX),
        )
    });
    let ranking = |by: &str| -> Vec<Value> {
        top.iter()
            .filter(|r| tag(r, "by") == by)
            .map(|r| {
                json!({
                    "rank": tag(r, "rank").parse::<u64>().ok(),
                    "pid": integer(r, "pid"),
                    "name": text(r, "name"),
                    "user": text(r, "user"),
                    "cmdline": text(r, "cmdline"),
                    "cpu_usage": number(r, "cpu_usage"),
                    "memory_rss": integer(r, "memory_rss"),
                    "time": r.time_ms,
                })
            })
            .collect()
    };
    let (top_cpu, top_memory) = (ranking("cpu"), ranking("memory"));

    // Listening sockets.
    let mut listen = last_cycle(listen, interval_ms);
    listen.sort_by(|a, b| {
        let port = |r: &Row| tag(r, "port").parse::<u32>().unwrap_or(u32::MAX);
        port(a)
            .cmp(&port(b))
            .then_with(|| tag(a, "proto").cmp(tag(b, "proto")))
            .then_with(|| tag(a, "address").cmp(tag(b, "address")))
    });
    let listen: Vec<Value> = listen
        .iter()
        .map(|r| {
            json!({
                "proto": tag(r, "proto"),
                "address": tag(r, "address"),
                "port": tag(r, "port").parse::<u32>().ok(),
                "pid": integer(r, "pid"),
                "process": text(r, "process"),
                "time": r.time_ms,
            })
        })
        .collect();

    // Log matches: sums per (file, rule), with the newest last line.
    let mut logs: BTreeMap<(String, String), LogEntry> = BTreeMap::new();
    for s in sums {
        let key = (
            s.tags.get("file").cloned().unwrap_or_default(),
            s.tags.get("rule").cloned().unwrap_or_default(),
        );
        let sum: Option<f64> = s.points.iter().filter_map(|(_, v)| *v).reduce(|a, b| a + b);
        logs.entry(key).or_default().count = sum;
    }
    for r in &lines {
        let key = (tag(r, "file").to_owned(), tag(r, "rule").to_owned());
        let entry = logs.entry(key).or_default();
        if entry.last.as_ref().is_none_or(|(t, _)| *t < r.time_ms) {
            entry.last = Some((r.time_ms, text(r, "last_line")));
        }
    }
    let logmatch: Vec<Value> = logs
        .into_iter()
        .map(|((file, rule), LogEntry { count, last })| {
            let (last_time, last_line) = match last {
                Some((t, line)) => (json!(t), line),
                None => (Value::Null, Value::Null),
            };
            json!({
                "file": file,
                "rule": rule,
                "count": count.map_or(json!(0), |c| json!(c as i64)),
                "last_line": last_line,
                "last_time": last_time,
            })
        })
        .collect();

    let business: Vec<Value> = business(&keys)
        .into_iter()
        .map(|(measurement, fields)| json!({ "measurement": measurement, "fields": fields }))
        .collect();

    cpus.retain(|c| c != "cpu-total");
    for list in [&mut disks, &mut interfaces, &mut cpus, &mut devices] {
        list.sort_by(|a, b| natural_cmp(a, b));
    }
    Ok(Json(json!({
        "host": host,
        "start": range.start_ms,
        "end": range.end_ms,
        "top_cpu": top_cpu,
        "top_memory": top_memory,
        "listen": listen,
        "logmatch": logmatch,
        "business": business,
        "disks": disks,
        "interfaces": interfaces,
        "cpus": cpus,
        "devices": devices,
    })))
}
