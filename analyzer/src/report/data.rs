//! A report's figures, read through the typed query layer with a fixed handful of
//! queries grouped by host (aggregates computed by InfluxDB).
//!
//! | figure                 | how                                                          |
//! |------------------------|--------------------------------------------------------------|
//! | hosts                  | the filter, or every `host` of `cpu`, `mem` and `alerts` in the period |
//! | availability           | windows of [`availability_window_ms`] (1 minute up to 7 days) with at least one `cpu` `cpu-total` point, over the windows of the whole period |
//! | CPU mean / peak        | 100 − mean / min `cpu.usage_idle` (`cpu=cpu-total`)           |
//! | memory mean / peak     | mean / max `mem.used_percent`                                 |
//! | disk growth            | `disk.used` at the last point − at the first point, per mount |
//! | growth per day         | least-squares slope of the windowed mean of `disk.used`       |
//! | days to full           | `free` (else `total − used`) at the end / growth per day, when growing |
//! | anomalies              | `alerts` transitions: a period runs from `firing` to the next `resolved`; one still firing at the start (seen up to [`ALERT_LOOKBACK_MS`] before) keeps its real start |
//! | chart series           | mean CPU and memory per window of [`chart_step_ms`] (≤ [`MAX_CHART_POINTS`]) |

use std::collections::{BTreeMap, BTreeSet};

use hostscope_core::influx::{
    Aggregate, Client, Every, FieldData, InfluxError, Row, RowSelect, RowsQuery, Series,
    SeriesQuery, TagValuesQuery, TimeRange,
};

use super::time::DAY_MS;

/// The most windows availability is counted in (a week of minutes).
pub const MAX_AVAILABILITY_WINDOWS: i64 = 10_080;
/// The most points a chart series has.
pub const MAX_CHART_POINTS: i64 = 300;
/// How far before the period an alert still firing at its start is looked for.
pub const ALERT_LOOKBACK_MS: i64 = 30 * DAY_MS;
/// Alert transitions read per alert.
pub const MAX_TRANSITIONS: u32 = 10_000;

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    /// The period.
    pub range: TimeRange,
    /// The chart series' window, ms.
    pub step_ms: i64,
    /// One entry per host, sorted by name.
    pub hosts: Vec<HostReport>,
}

impl ReportData {
    /// Anomaly periods over all hosts.
    pub fn anomaly_count(&self) -> usize {
        self.hosts.iter().map(|h| h.anomalies.len()).sum()
    }
}

/// Mean and peak of a percentage over the period; `None` without data.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stat {
    pub mean: Option<f64>,
    pub peak: Option<f64>,
}

/// One host's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HostReport {
    /// The `host` tag.
    pub host: String,
    /// Share (0–1) of the period's windows with data.
    pub availability: f64,
    /// CPU use, percent.
    pub cpu: Stat,
    /// Memory use, percent.
    pub mem: Stat,
    /// One entry per mount path, sorted by path.
    pub disks: Vec<DiskReport>,
    /// Anomaly periods overlapping the period, by start.
    pub anomalies: Vec<Anomaly>,
    /// CPU use per window, percent; `None` is a window without data.
    pub cpu_series: Vec<(i64, Option<f64>)>,
    /// Memory use per window, percent.
    pub mem_series: Vec<(i64, Option<f64>)>,
}

/// One mount's growth.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskReport {
    /// The `path` tag.
    pub path: String,
    /// `used` bytes at the first point in the period.
    pub used_start: f64,
    /// `used` bytes at the last point.
    pub used_end: f64,
    /// `total` bytes at the last point.
    pub total: f64,
    /// Bytes still usable at the last point (`free`, else `total − used`).
    pub free: f64,
    /// `used_end − used_start`.
    pub growth: f64,
    /// Slope of a least-squares line through the windowed `used`, bytes per day;
    /// `None` with fewer than two windows of data.
    pub growth_per_day: Option<f64>,
    /// `free / growth_per_day` when growing; `None` when not.
    pub days_to_full: Option<f64>,
}

/// One firing period of one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub rule: String,
    pub severity: String,
    /// When it fired (may be before the period).
    pub start_ms: i64,
    /// When it resolved; `None` while still firing at the end of the period.
    pub end_ms: Option<i64>,
    /// The `value` of the firing transition.
    pub value: Option<f64>,
    /// The `reason` of the firing transition.
    pub reason: Option<String>,
}

/// A query that failed, with which one it was.
#[derive(Debug, thiserror::Error)]
#[error("report: reading {what}: {source}")]
pub struct GatherError {
    pub what: &'static str,
    #[source]
    pub source: InfluxError,
}

/// The window availability is counted in: a minute, or for periods over a week the
/// smallest of 2, 5, 10, 15, 30 or 60 minutes that keeps to
/// [`MAX_AVAILABILITY_WINDOWS`] (the answer has one count per window and host).
pub fn availability_window_ms(range: TimeRange) -> i64 {
    [1, 2, 5, 10, 15, 30, 60]
        .iter()
        .map(|m| m * 60_000)
        .find(|w| window_count(range, *w) <= MAX_AVAILABILITY_WINDOWS)
        .unwrap_or(3_600_000)
}

/// The chart window for a period: the smallest of 1, 2, 5, 10, 15, 30 minutes, 1, 2,
/// 3, 6, 12 hours or a day that keeps a series at most [`MAX_CHART_POINTS`] long.
pub fn chart_step_ms(range: TimeRange) -> i64 {
    const STEPS_MIN: [i64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
    let need = (range.duration_ms() + MAX_CHART_POINTS - 1) / MAX_CHART_POINTS;
    STEPS_MIN
        .iter()
        .map(|m| m * 60_000)
        .find(|s| *s >= need)
        .unwrap_or_else(|| (need + DAY_MS - 1) / DAY_MS * DAY_MS)
}

/// Windows of `window_ms` (aligned to the epoch, as InfluxDB aligns them) that
/// overlap `range`.
pub fn window_count(range: TimeRange, window_ms: i64) -> i64 {
    (range.end_ms - 1).div_euclid(window_ms) - range.start_ms.div_euclid(window_ms) + 1
}

fn series_query(
    measurement: &str,
    field: &str,
    range: TimeRange,
    every_ms: Option<i64>,
    aggregate: Aggregate,
    group_by: &[&str],
) -> Result<SeriesQuery, GatherError> {
    let every = every_ms
        .map(|ms| Every::from_millis(ms.unsigned_abs()))
        .transpose()
        .map_err(|e| GatherError {
            what: "the window",
            source: e.into(),
        })?;
    let tags = if measurement == "cpu" {
        BTreeMap::from([("cpu".to_owned(), "cpu-total".to_owned())])
    } else {
        BTreeMap::new()
    };
    Ok(SeriesQuery {
        measurement: measurement.to_owned(),
        field: field.to_owned(),
        tags,
        range,
        every,
        aggregate: Some(aggregate),
        group_by: group_by.iter().map(|g| (*g).to_owned()).collect(),
    })
}

fn rows_query(
    measurement: &str,
    fields: &[&str],
    range: TimeRange,
    select: RowSelect,
) -> RowsQuery {
    RowsQuery {
        measurement: measurement.to_owned(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        tags: BTreeMap::new(),
        range,
        select,
    }
}

fn tag<'a>(tags: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    tags.get(key).map_or("", String::as_str)
}

/// The first value of each host's series (single-value aggregates).
fn value_per_host(series: &[Series]) -> BTreeMap<&str, f64> {
    series
        .iter()
        .filter_map(|s| {
            let v = s.points.iter().find_map(|(_, v)| *v)?;
            Some((tag(&s.tags, "host"), v))
        })
        .filter(|(h, v)| !h.is_empty() && v.is_finite())
        .collect()
}

/// Each host's points.
fn points_per_host(series: Vec<Series>) -> BTreeMap<String, Vec<(i64, Option<f64>)>> {
    let mut out: BTreeMap<String, Vec<(i64, Option<f64>)>> = BTreeMap::new();
    for s in series {
        let host = tag(&s.tags, "host").to_owned();
        out.entry(host).or_default().extend(s.points);
    }
    for points in out.values_mut() {
        points.sort_by_key(|(t, _)| *t);
    }
    out
}

/// Least-squares slope of `(t ms, y)`, in y per day; `None` with fewer than two
/// distinct times.
pub fn slope_per_day(points: &[(i64, f64)]) -> Option<f64> {
    let (&(t0, _), n) = (points.first()?, points.len() as f64);
    let x = |t: i64| (t - t0) as f64 / DAY_MS as f64;
    let mean_x = points.iter().map(|(t, _)| x(*t)).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(t, y) in points {
        let dx = x(t) - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Gathers the report over `range` for `hosts` (every host when `None`).
pub async fn gather(
    client: &Client,
    range: TimeRange,
    hosts: Option<&[String]>,
) -> Result<ReportData, GatherError> {
    let step_ms = chart_step_ms(range);
    let by_host = ["host"];
    let q = [
        series_query(
            "cpu",
            "usage_idle",
            range,
            Some(availability_window_ms(range)),
            Aggregate::Count,
            &by_host,
        )?,
        series_query("cpu", "usage_idle", range, None, Aggregate::Mean, &by_host)?,
        series_query("cpu", "usage_idle", range, None, Aggregate::Min, &by_host)?,
        series_query(
            "mem",
            "used_percent",
            range,
            None,
            Aggregate::Mean,
            &by_host,
        )?,
        series_query("mem", "used_percent", range, None, Aggregate::Max, &by_host)?,
        series_query(
            "cpu",
            "usage_idle",
            range,
            Some(step_ms),
            Aggregate::Mean,
            &by_host,
        )?,
        series_query(
            "mem",
            "used_percent",
            range,
            Some(step_ms),
            Aggregate::Mean,
            &by_host,
        )?,
        series_query(
            "disk",
            "used",
            range,
            Some(step_ms),
            Aggregate::Mean,
            &["host", "path"],
        )?,
    ];
    let disk_fields = ["used", "total", "free"];
    let alert_fields = ["state", "value", "reason"];
    let all = RowSelect::All {
        limit_per_series: MAX_TRANSITIONS,
    };
    let before = TimeRange {
        start_ms: range.start_ms.saturating_sub(ALERT_LOOKBACK_MS),
        end_ms: range.start_ms,
    };
    let r = [
        rows_query(
            "disk",
            &disk_fields,
            range,
            RowSelect::All {
                limit_per_series: 1,
            },
        ),
        rows_query("disk", &disk_fields, range, RowSelect::Last),
        rows_query("alerts", &alert_fields, range, all),
        rows_query("alerts", &alert_fields, before, RowSelect::Last),
    ];
    let tag_values = |measurement: &str| TagValuesQuery {
        measurement: measurement.to_owned(),
        key: "host".to_owned(),
        tags: BTreeMap::new(),
        range,
    };
    let (cpu_hosts, mem_hosts) = (tag_values("cpu"), tag_values("mem"));

    let (avail, cpu_mean, cpu_min, mem_mean, mem_max, cpu_chart, mem_chart, disk_fit) = tokio::join!(
        client.query_series(&q[0]),
        client.query_series(&q[1]),
        client.query_series(&q[2]),
        client.query_series(&q[3]),
        client.query_series(&q[4]),
        client.query_series(&q[5]),
        client.query_series(&q[6]),
        client.query_series(&q[7]),
    );
    let (disk_first, disk_last, alerts_within, alerts_before, cpu_hosts, mem_hosts) = tokio::join!(
        client.query_rows(&r[0]),
        client.query_rows(&r[1]),
        client.query_rows(&r[2]),
        client.query_rows(&r[3]),
        client.query_tag_values(&cpu_hosts),
        client.query_tag_values(&mem_hosts),
    );
    let ctx = |what: &'static str| move |source| GatherError { what, source };
    let avail = avail.map_err(ctx("cpu availability"))?;
    let cpu_mean = cpu_mean.map_err(ctx("mean cpu"))?;
    let cpu_min = cpu_min.map_err(ctx("peak cpu"))?;
    let mem_mean = mem_mean.map_err(ctx("mean memory"))?;
    let mem_max = mem_max.map_err(ctx("peak memory"))?;
    let cpu_chart = cpu_chart.map_err(ctx("the cpu chart"))?;
    let mem_chart = mem_chart.map_err(ctx("the memory chart"))?;
    let disk_fit = disk_fit.map_err(ctx("disk use over time"))?;
    let disk_first = disk_first.map_err(ctx("disk use at the start"))?;
    let disk_last = disk_last.map_err(ctx("disk use at the end"))?;
    let alerts_within = alerts_within.map_err(ctx("alerts"))?;
    let alerts_before = alerts_before.map_err(ctx("alerts before the period"))?;
    let cpu_hosts = cpu_hosts.map_err(ctx("hosts"))?;
    let mem_hosts = mem_hosts.map_err(ctx("hosts"))?;

    let anomalies = anomalies(&alerts_before, &alerts_within, range);
    let names: BTreeSet<String> = match hosts {
        Some(list) => list.iter().cloned().collect(),
        None => cpu_hosts
            .into_iter()
            .chain(mem_hosts)
            .chain(anomalies.keys().cloned())
            .filter(|h| !h.is_empty())
            .collect(),
    };

    let windows = window_count(range, availability_window_ms(range)).max(1);
    let mut up: BTreeMap<&str, i64> = BTreeMap::new();
    for s in &avail {
        let n = s
            .points
            .iter()
            .filter(|(t, v)| *t < range.end_ms && v.is_some_and(|c| c > 0.0))
            .count();
        *up.entry(tag(&s.tags, "host")).or_default() += n as i64;
    }
    let (cpu_mean, cpu_min) = (value_per_host(&cpu_mean), value_per_host(&cpu_min));
    let (mem_mean, mem_max) = (value_per_host(&mem_mean), value_per_host(&mem_max));
    let used = |v: f64| (100.0 - v).clamp(0.0, 100.0);
    let mut cpu_chart = points_per_host(cpu_chart);
    let mut mem_chart = points_per_host(mem_chart);
    let mut disks = disks(&disk_fit, &disk_first, &disk_last);
    let mut anomalies = anomalies;

    let hosts = names
        .into_iter()
        .map(|host| {
            let h = host.as_str();
            HostReport {
                availability: (up.get(h).copied().unwrap_or(0) as f64 / windows as f64).min(1.0),
                cpu: Stat {
                    mean: cpu_mean.get(h).map(|v| used(*v)),
                    peak: cpu_min.get(h).map(|v| used(*v)),
                },
                mem: Stat {
                    mean: mem_mean.get(h).copied(),
                    peak: mem_max.get(h).copied(),
                },
                disks: disks.remove(h).unwrap_or_default(),
                anomalies: anomalies.remove(h).unwrap_or_default(),
                cpu_series: cpu_chart
                    .remove(h)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, v)| (t, v.map(used)))
                    .collect(),
                mem_series: mem_chart.remove(h).unwrap_or_default(),
                host,
            }
        })
        .collect();
    Ok(ReportData {
        range,
        step_ms,
        hosts,
    })
}

fn number(row: &Row, field: &str) -> Option<f64> {
    row.fields
        .get(field)
        .and_then(FieldData::as_f64)
        .filter(|v| v.is_finite())
}

/// Disk figures per host, from the windowed `used` series and the first and last
/// rows of every `disk` series.
fn disks(fit: &[Series], first: &[Row], last: &[Row]) -> BTreeMap<String, Vec<DiskReport>> {
    type Key = (String, String);
    let key = |tags: &BTreeMap<String, String>| -> Key {
        (tag(tags, "host").to_owned(), tag(tags, "path").to_owned())
    };
    // A mount may have several series (a device or fstype changed): take the
    // earliest first row and the latest last row.
    let mut start: BTreeMap<Key, (i64, f64)> = BTreeMap::new();
    for r in first {
        if let Some(u) = number(r, "used") {
            let e = start.entry(key(&r.tags)).or_insert((r.time_ms, u));
            if r.time_ms < e.0 {
                *e = (r.time_ms, u);
            }
        }
    }
    let mut end: BTreeMap<Key, (i64, &Row)> = BTreeMap::new();
    for r in last {
        if number(r, "used").is_some() {
            let e = end.entry(key(&r.tags)).or_insert((r.time_ms, r));
            if r.time_ms > e.0 {
                *e = (r.time_ms, r);
            }
        }
    }
    let mut fit_points: BTreeMap<Key, Vec<(i64, f64)>> = BTreeMap::new();
    for s in fit {
        let points = fit_points.entry(key(&s.tags)).or_default();
        points.extend(
            s.points
                .iter()
                .filter_map(|(t, v)| v.filter(|v| v.is_finite()).map(|v| (*t, v))),
        );
    }
    let mut out: BTreeMap<String, Vec<DiskReport>> = BTreeMap::new();
    for (k, (_, row)) in end {
        let Some(used_end) = number(row, "used") else {
            continue;
        };
        let used_start = start.get(&k).map_or(used_end, |(_, u)| *u);
        let total = number(row, "total").unwrap_or(0.0);
        let free = number(row, "free").unwrap_or((total - used_end).max(0.0));
        let mut points = fit_points.remove(&k).unwrap_or_default();
        points.sort_by_key(|(t, _)| *t);
        let growth_per_day = slope_per_day(&points);
        let days_to_full = growth_per_day.filter(|g| *g > 0.0).map(|g| free / g);
        out.entry(k.0).or_default().push(DiskReport {
            path: k.1,
            used_start,
            used_end,
            total,
            free,
            growth: used_end - used_start,
            growth_per_day,
            days_to_full,
        });
    }
    out
}

/// An alert's period open at the start of the range, and its transitions in it.
type OpenAndTransitions<'a> = (Option<Anomaly>, Vec<&'a Row>);

/// Alert periods per host from each alert's last transition before the period and
/// its transitions in it; only periods overlapping the period, sorted by start.
pub fn anomalies(
    before: &[Row],
    within: &[Row],
    range: TimeRange,
) -> BTreeMap<String, Vec<Anomaly>> {
    let state = |r: &Row| {
        r.fields
            .get("state")
            .and_then(FieldData::as_str)
            .map(str::to_owned)
    };
    let open_at = |r: &Row| Anomaly {
        rule: tag(&r.tags, "rule").to_owned(),
        severity: tag(&r.tags, "severity").to_owned(),
        start_ms: r.time_ms,
        end_ms: None,
        value: number(r, "value"),
        reason: r
            .fields
            .get("reason")
            .and_then(FieldData::as_str)
            .map(str::to_owned),
    };
    // Per alert (tag set): the open period and the transitions in the period.
    let mut alerts: BTreeMap<&BTreeMap<String, String>, OpenAndTransitions> = BTreeMap::new();
    for r in before {
        if state(r).as_deref() == Some("firing") {
            alerts.entry(&r.tags).or_default().0 = Some(open_at(r));
        }
    }
    for r in within {
        alerts.entry(&r.tags).or_default().1.push(r);
    }
    let mut out: BTreeMap<String, Vec<Anomaly>> = BTreeMap::new();
    for (tags, (mut open, mut rows)) in alerts {
        let host = tag(tags, "host");
        if host.is_empty() {
            continue;
        }
        rows.sort_by_key(|r| r.time_ms);
        let list = out.entry(host.to_owned()).or_default();
        for r in rows {
            match (state(r).as_deref(), open.take()) {
                (Some("firing"), None) => open = Some(open_at(r)),
                (Some("resolved"), Some(mut a)) => {
                    a.end_ms = Some(r.time_ms);
                    if r.time_ms >= range.start_ms {
                        list.push(a);
                    }
                }
                (_, still) => open = still,
            }
        }
        list.extend(open);
    }
    out.retain(|_, list| !list.is_empty());
    for list in out.values_mut() {
        list.sort_by(|a, b| (a.start_ms, &a.rule).cmp(&(b.start_ms, &b.rule)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rule: &str, host: &str, t: i64, state: &str) -> Row {
        Row {
            tags: BTreeMap::from([
                ("rule".to_owned(), rule.to_owned()),
                ("host".to_owned(), host.to_owned()),
                ("severity".to_owned(), "warning".to_owned()),
            ]),
            time_ms: t,
            fields: BTreeMap::from([
                ("state".to_owned(), FieldData::Text(state.to_owned())),
                ("value".to_owned(), FieldData::Number(t as f64)),
            ]),
        }
    }

    #[test]
    fn alert_periods_pair_firing_and_resolved() {
        let range = TimeRange::new(1000, 2000).unwrap();
        let before = [
            row("a", "h1", 900, "firing"),
            row("b", "h1", 800, "resolved"),
        ];
        let within = [
            row("a", "h1", 1100, "resolved"),
            row("a", "h1", 1300, "firing"),
            row("a", "h1", 1350, "firing"), // a repeat while firing: same period
            row("a", "h1", 1400, "resolved"),
            row("b", "h1", 1500, "resolved"), // resolved without firing: nothing
            row("c", "h2", 1800, "firing"),
            row("d", "", 1800, "firing"), // no host: not a host's anomaly
        ];
        let got = anomalies(&before, &within, range);
        let h1: Vec<_> = got["h1"]
            .iter()
            .map(|a| (a.rule.as_str(), a.start_ms, a.end_ms, a.value))
            .collect();
        assert_eq!(
            h1,
            [
                ("a", 900, Some(1100), Some(900.0)),
                ("a", 1300, Some(1400), Some(1300.0))
            ]
        );
        let h2: Vec<_> = got["h2"].iter().map(|a| (a.start_ms, a.end_ms)).collect();
        assert_eq!(h2, [(1800, None)]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn steps_and_windows() {
        let r = |ms| TimeRange::new(0, ms).unwrap();
        assert_eq!(chart_step_ms(r(3_600_000)), 60_000);
        assert_eq!(chart_step_ms(r(DAY_MS)), 300_000);
        assert_eq!(chart_step_ms(r(7 * DAY_MS)), 3_600_000);
        assert_eq!(chart_step_ms(r(90 * DAY_MS)), 12 * 3_600_000);
        assert_eq!(chart_step_ms(r(400 * DAY_MS)), 2 * DAY_MS);
        for days in [1, 7, 30, 93] {
            assert!(
                r(days * DAY_MS).duration_ms() / chart_step_ms(r(days * DAY_MS))
                    <= MAX_CHART_POINTS
            );
        }
        assert_eq!(window_count(r(DAY_MS), 60_000), 1440);
        assert_eq!(availability_window_ms(r(7 * DAY_MS)), 60_000);
        assert_eq!(availability_window_ms(r(7 * DAY_MS + 1)), 120_000);
        assert_eq!(availability_window_ms(r(30 * DAY_MS)), 300_000);
        assert_eq!(availability_window_ms(r(93 * DAY_MS)), 900_000);
        assert_eq!(
            window_count(TimeRange::new(30_000, 90_000).unwrap(), 60_000),
            2
        );
        assert_eq!(
            window_count(TimeRange::new(-60_000, 60_000).unwrap(), 60_000),
            2
        );
    }

    #[test]
    fn slopes() {
        let line: Vec<(i64, f64)> = (0..10)
            .map(|i| (i * 3_600_000, 5.0 + i as f64 * 2.0))
            .collect();
        let s = slope_per_day(&line).unwrap();
        assert!((s - 48.0).abs() < 1e-9, "{s}");
        assert_eq!(slope_per_day(&line[..1]), None);
        assert_eq!(slope_per_day(&[]), None);
        assert_eq!(slope_per_day(&[(5, 1.0), (5, 2.0)]), None);
    }
}
