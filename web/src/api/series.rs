//! `GET /api/v1/series?host=&measurement=&field=&tags=&start=&end=&step=&agg=&points=&group_by=`
//!
//! One field of one host over a range, aggregated in the database into windows the
//! server picks: `step = max(step, collect interval, range / points)`, rounded up to
//! a nice length (1s, 5s, 10s, 30s, 1m, 5m, 10m, 30m, 1h, 3h, 6h, 12h, 1d, 7d, then
//! whole days) so that the range holds at most `points` (default 1000, at most 2000)
//! windows. Each series has exactly one point per window, `null` where there is no
//! value.
//!
//! Counters of the built-in schema (`net` bytes/packets/errors/drops, `diskio`
//! operations, bytes and times, `swap` in/out) always come back as non-negative rates
//! per second (`"agg": "rate"`, `"rate": true`; an `agg` parameter is checked but
//! does not apply to them). A rate is computed per series, i.e. per value of the
//! measurement's identifying tag (interface, device), and only then summed over the
//! series that share the requested `group_by` tags; so `group_by=` (empty) gives a
//! host's total over all interfaces. The same holds for `agg=rate` on any field.
//!
//! `group_by` absent means the measurement's identifying tag (`cpu` for `cpu`, `path`
//! for `disk`, `name` for `diskio`, `interface` for `net`, …); `group_by=` merges
//! every series of the host into one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use hostscope_core::influx::{Aggregate, Every, Series, SeriesQuery, TimeRange};
use serde_json::Value;

use super::params::{check_text, nice_step, now_ms, parse_step, Params, RawParams};
use super::query_failed;
use super::schema::{identifying_tags, is_counter, SchemaCache};
use crate::error::AppError;
use crate::state::AppState;

/// Windows per series when `points` is not given.
pub const DEFAULT_POINTS: i64 = 1000;
/// The most windows a series may have.
pub const MAX_POINTS: i64 = 2000;

const PARAMS: [&str; 10] = [
    "host",
    "measurement",
    "field",
    "tags",
    "start",
    "end",
    "step",
    "agg",
    "points",
    "group_by",
];

/// `k:v,k2:v2` → equality filters. A value may contain `:` (`address:::1`); keys may
/// not repeat, and `host` has its own parameter.
pub fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, AppError> {
    let mut tags = BTreeMap::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once(':') else {
            return Err(AppError::bad(
                "tags",
                format!("{pair:?} is not key:value (tags=cpu:cpu-total,path:/)"),
            ));
        };
        if k.is_empty() {
            return Err(AppError::bad("tags", format!("{pair:?} has an empty key")));
        }
        if k == "host" {
            return Err(AppError::bad(
                "tags",
                "filter the host with the host parameter",
            ));
        }
        check_text("tags", k)?;
        check_text("tags", v)?;
        if tags.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(AppError::bad(
                "tags",
                format!("the key {k:?} is given twice"),
            ));
        }
    }
    Ok(tags)
}

/// `a,b` → tag keys (spaces around a key ignored), without empties and repeats.
pub fn parse_group_by(text: &str) -> Result<Vec<String>, AppError> {
    let mut keys: Vec<String> = Vec::new();
    for k in text
        .split(',')
        .map(|k| k.trim_matches(' '))
        .filter(|k| !k.is_empty())
    {
        check_text("group_by", k)?;
        if !keys.iter().any(|x| x == k) {
            keys.push(k.to_owned());
        }
    }
    Ok(keys)
}

/// `points`: 1..=2000.
fn parse_points(value: Option<&str>) -> Result<i64, AppError> {
    let Some(value) = value else {
        return Ok(DEFAULT_POINTS);
    };
    match value.parse::<i64>() {
        Ok(n) if (1..=MAX_POINTS).contains(&n) => Ok(n),
        _ => Err(AppError::bad(
            "points",
            format!("{value:?} is not a whole number from 1 to {MAX_POINTS}"),
        )),
    }
}

/// The handler.
pub async fn series(
    State(state): State<AppState>,
    Extension(schema): Extension<Arc<SchemaCache>>,
    raw: RawParams,
) -> Result<Json<Value>, AppError> {
    let params = Params::new(raw, &PARAMS)?;
    let host = params.required("host")?.to_owned();
    let measurement = params.required("measurement")?.to_owned();
    let field = params.required("field")?.to_owned();
    let tags = parse_tags(params.get("tags").unwrap_or(""))?;
    let requested_agg = match params.get("agg") {
        None | Some("") => None,
        Some(a) => Some(
            a.parse::<Aggregate>()
                .map_err(|e| AppError::bad("agg", e.to_string()))?,
        ),
    };
    let points = parse_points(params.get("points"))?;
    let step_floor = match params.get("step") {
        None | Some("") => 0,
        Some(s) => parse_step(s)?,
    };
    let group_by = match params.get("group_by") {
        Some(g) => parse_group_by(g)?,
        None => identifying_tags(&measurement)
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
    };
    let range = params.range(&state.settings, now_ms())?;

    let fields = schema.fields(&state, Some((&measurement, &field))).await?;
    let Some(known) = fields.get(&measurement) else {
        return Err(AppError::bad(
            "measurement",
            format!("{measurement:?} is not a measurement in the database"),
        ));
    };
    let Some(kind) = known.get(&field) else {
        return Err(AppError::bad(
            "field",
            format!("{measurement} has no field {field:?}"),
        ));
    };
    if !kind.is_numeric() {
        return Err(AppError::bad(
            "field",
            format!(
                "{measurement}.{field} is a {} field; only numeric fields can be charted",
                format!("{kind:?}").to_lowercase()
            ),
        ));
    }

    let counter = is_counter(&measurement, &field);
    let agg = if counter {
        Aggregate::Rate
    } else {
        requested_agg.unwrap_or(Aggregate::Mean)
    };
    let interval_ms = i64::try_from(state.settings.collect_interval.as_millis()).unwrap_or(10_000);
    let step = nice_step(step_floor.max(interval_ms).max(1), range, points);
    let every =
        Every::from_millis(step.unsigned_abs()).map_err(|e| AppError::Internal(e.to_string()))?;

    // A rate is computed per series: add the identifying tags to the grouping, and
    // sum over them afterwards.
    let mut query_group = group_by.clone();
    if agg == Aggregate::Rate {
        for t in identifying_tags(&measurement) {
            if !query_group.iter().any(|g| g == t) {
                query_group.push((*t).to_owned());
            }
        }
    }
    let mut filters = tags.clone();
    filters.insert("host".to_owned(), host.clone());
    let q = SeriesQuery {
        measurement: measurement.clone(),
        field: field.clone(),
        tags: filters,
        range,
        every: Some(every),
        aggregate: Some(agg),
        group_by: query_group,
    };
    let result = state
        .influx
        .query_series(&q)
        .await
        .map_err(|e| query_failed(&state, e))?;
    let series = on_grid(result, &group_by, range, step);
    let series: Vec<Value> = series
        .into_iter()
        .map(|(tags, points)| serde_json::json!({ "tags": tags, "points": points }))
        .collect();
    Ok(Json(serde_json::json!({
        "host": host,
        "measurement": measurement,
        "field": field,
        "agg": agg.to_string(),
        "rate": agg == Aggregate::Rate,
        "counter": counter,
        "step_ms": step,
        "start": range.start_ms,
        "end": range.end_ms,
        "group_by": group_by,
        "series": series,
    })))
}

/// A result series: its tags and its `(window start, value)` points.
pub type TaggedPoints = (BTreeMap<String, String>, Vec<(i64, Option<f64>)>);

/// The windows of `range` (epoch-aligned starts), each series' values on them, and
/// series that share the `group_by` tags summed (a `null` window stays `null` only
/// when it is `null` in every summed series). Sorted by tags.
pub fn on_grid(
    result: Vec<Series>,
    group_by: &[String],
    range: TimeRange,
    step: i64,
) -> Vec<TaggedPoints> {
    let first = range.start_ms.div_euclid(step) * step;
    let n = usize::try_from(super::params::windows(range, step)).unwrap_or(0);
    let mut out: BTreeMap<BTreeMap<String, String>, Vec<Option<f64>>> = BTreeMap::new();
    let keys: BTreeSet<&String> = group_by.iter().collect();
    for s in result {
        let tags: BTreeMap<String, String> = s
            .tags
            .into_iter()
            .filter(|(k, _)| keys.contains(k))
            .collect();
        let slots = out.entry(tags).or_insert_with(|| vec![None; n]);
        for (t, v) in s.points {
            let Some(v) = v else { continue };
            let i = (t - first).div_euclid(step);
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get_mut(i)) {
                *slot = Some(slot.unwrap_or(0.0) + v);
            }
        }
    }
    out.into_iter()
        .map(|(tags, slots)| {
            let points = slots
                .into_iter()
                .enumerate()
                .map(|(i, v)| (first + i as i64 * step, v))
                .collect();
            (tags, points)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_group_by() {
        assert_eq!(
            parse_tags("cpu:cpu-total,address:::1").ok(),
            Some(BTreeMap::from([
                ("address".to_owned(), "::1".to_owned()),
                ("cpu".to_owned(), "cpu-total".to_owned())
            ]))
        );
        assert_eq!(parse_tags("").ok(), Some(BTreeMap::new()));
        for bad in ["cpu", ":x", "host:a", "a:1,a:2", "a:b\nc"] {
            match parse_tags(bad) {
                Err(AppError::BadRequest { param, .. }) => assert_eq!(param, "tags", "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert_eq!(
            parse_group_by(" cpu, ,host,cpu").ok(),
            Some(vec!["cpu".to_owned(), "host".to_owned()])
        );
        assert!(parse_group_by("a\r").is_err());
        assert!(parse_points(Some("0")).is_err());
        assert!(parse_points(Some("2001")).is_err());
        assert_eq!(parse_points(Some("2000")).ok(), Some(2000));
        assert_eq!(parse_points(None).ok(), Some(DEFAULT_POINTS));
    }

    #[test]
    fn grid_and_sums() {
        let range = TimeRange::new(1_005, 4_000).unwrap();
        let s = |iface: &str, points: Vec<(i64, Option<f64>)>| Series {
            tags: BTreeMap::from([("interface".to_owned(), iface.to_owned())]),
            points,
        };
        let result = vec![
            s("eth0", vec![(1_000, Some(1.0)), (3_000, Some(3.0))]),
            s(
                "lo",
                vec![(1_000, Some(10.0)), (2_000, None), (9_000, Some(99.0))],
            ),
        ];
        let merged = on_grid(result.clone(), &[], range, 1_000);
        assert_eq!(
            merged,
            vec![(
                BTreeMap::new(),
                vec![(1_000, Some(11.0)), (2_000, None), (3_000, Some(3.0))]
            )]
        );
        let split = on_grid(result, &["interface".to_owned()], range, 1_000);
        assert_eq!(split.len(), 2);
        assert_eq!(
            split[1].1,
            vec![(1_000, Some(10.0)), (2_000, None), (3_000, None)]
        );
    }
}
