//! Query-string parameters: strict parsing (unknown or repeated parameters are
//! refused, naming them), times, ranges, durations and the window ("step") choice.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use hostscope_core::influx::query::{check_name, parse_rfc3339_ms};
use hostscope_core::influx::TimeRange;

use crate::config::WebSettings;
use crate::error::AppError;

/// The range when neither `start` nor `end` says otherwise.
pub const DEFAULT_RANGE_MS: i64 = 3_600_000;

/// Window lengths the server picks from, in ms; beyond the last, whole days.
pub const NICE_STEPS_MS: [i64; 14] = [
    1_000,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
];

/// The raw query string of a request, as extracted by axum.
pub type RawParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The parameters of one request, each given at most once and each one the route
/// knows.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Checks the query string against the route's parameter names.
    pub fn new(raw: RawParams, allowed: &[&str]) -> Result<Self, AppError> {
        let Query(pairs) = raw.map_err(|e| AppError::bad("query", e.body_text()))?;
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(AppError::bad(
                    key_for_message(&key),
                    format!(
                        "unknown parameter; this endpoint takes {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if map.contains_key(&key) {
                return Err(AppError::bad(key, "is given more than once"));
            }
            map.insert(key, value);
        }
        Ok(Params(map))
    }

    /// The value of `name`, if given (an empty value counts as given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, which must be given and non-empty, without control
    /// characters.
    pub fn required(&self, name: &'static str) -> Result<&str, AppError> {
        match self.get(name) {
            None | Some("") => Err(AppError::bad(name, "is required")),
            Some(v) => {
                check_text(name, v)?;
                Ok(v)
            }
        }
    }

    /// `[start, end)` from `start` and `end` (see [`parse_time`]): `end` defaults to
    /// `now_ms`, `start` to an hour before `end`. Refuses `start >= end` and ranges
    /// longer than `web.max_range`.
    pub fn range(&self, settings: &WebSettings, now_ms: i64) -> Result<TimeRange, AppError> {
        let end = match self.get("end") {
            Some(v) => parse_time("end", v, now_ms)?,
            None => now_ms,
        };
        let start = match self.get("start") {
            Some(v) => parse_time("start", v, now_ms)?,
            None => end.saturating_sub(DEFAULT_RANGE_MS),
        };
        if start >= end {
            return Err(AppError::bad(
                "start",
                format!("must be before end (start is {start}, end is {end}, in unix ms)"),
            ));
        }
        let max = i64::try_from(settings.max_range.as_millis()).unwrap_or(i64::MAX);
        let length = end.checked_sub(start).unwrap_or(i64::MAX);
        if length > max {
            return Err(AppError::bad(
                "start",
                format!(
                    "the range from start to end ({}) is longer than the longest allowed ({}, web.max_range)",
                    human_ms(length),
                    human_ms(max)
                ),
            ));
        }
        TimeRange::new(start, end).map_err(|e| AppError::bad("start", e.to_string()))
    }
}

/// A parameter name fit for an error message: at most 64 characters, no control
/// characters.
fn key_for_message(key: &str) -> String {
    key.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Refuses control characters (a newline cannot be part of any name or tag value).
pub fn check_text(param: &'static str, value: &str) -> Result<(), AppError> {
    if value.is_empty() {
        return Ok(());
    }
    check_name(param, value).map_err(|e| AppError::bad(param, e.to_string()))
}

/// The current time in unix ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A time parameter: unix milliseconds (`1704067200000`), RFC 3339
/// (`2024-01-01T00:00:00Z`, `…+08:00`), `now`, or `now-<duration>` (`now-1h`,
/// `now-7d`, `now-1h30m`).
pub fn parse_time(param: &'static str, value: &str, now_ms: i64) -> Result<i64, AppError> {
    let bad = |why: &str| {
        AppError::bad(
            param,
            format!(
                "{why}; expected unix milliseconds, an RFC 3339 time (2024-01-01T00:00:00Z), now, or now-<duration> (now-1h, now-7d)"
            ),
        )
    };
    let value = value.trim();
    if value == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = value.strip_prefix("now-") {
        let d = parse_duration_text(ago).map_err(|e| bad(&e))?;
        let ms = i64::try_from(d.as_millis()).map_err(|_| bad("the duration is too long"))?;
        return now_ms
            .checked_sub(ms)
            .ok_or_else(|| bad("the time is too early"));
    }
    let digits = value.strip_prefix('-').unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<i64>()
            .map_err(|_| bad("the number is too large"));
    }
    parse_rfc3339_ms(value).ok_or_else(|| bad("not a time"))
}

/// A duration such as `10s`, `5m`, `1h30m`, `7d` (at least 1 ms).
pub fn parse_duration_text(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("the duration is empty".to_owned());
    }
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))?;
    if d < Duration::from_millis(1) {
        return Err(format!("{text:?} is shorter than 1ms"));
    }
    Ok(d)
}

/// `step`: a duration (`30s`, `5m`) or whole milliseconds (`30000`).
pub fn parse_step(value: &str) -> Result<i64, AppError> {
    let ms = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<i64>().ok()
    } else {
        parse_duration_text(value)
            .map_err(|e| AppError::bad("step", e))
            .map(|d| i64::try_from(d.as_millis()).ok())?
    };
    match ms {
        Some(ms) if ms >= 1 => Ok(ms),
        _ => Err(AppError::bad(
            "step",
            format!("{value:?} is not a duration like 30s or 5m, or a number of milliseconds ≥ 1"),
        )),
    }
}

/// Windows a series may have, whatever `points` asks for.
pub const MAX_WINDOWS: i64 = 2000;

/// The window length for `points` windows over `range`, at least `min_ms`:
/// `max(min_ms, range / points)` rounded up to the next length of [`NICE_STEPS_MS`]
/// (or whole days beyond it), longer still if the range would otherwise be cut into
/// more than [`MAX_WINDOWS`] epoch-aligned windows. A range is cut into at most
/// `points + 1` windows (one more when its start is not aligned).
pub fn nice_step(min_ms: i64, range: TimeRange, points: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    let points = points.max(1);
    let per_point = (range.duration_ms() + points - 1) / points;
    let needed = min_ms.max(per_point).max(1);
    let fits = |step: i64| windows(range, step) <= MAX_WINDOWS;
    for step in NICE_STEPS_MS {
        if step >= needed && fits(step) {
            return step;
        }
    }
    let mut step = (needed.max(DAY) + DAY - 1)
        .div_euclid(DAY)
        .saturating_mul(DAY);
    while !fits(step) {
        step = step.saturating_add(DAY);
    }
    step
}

/// How many epoch-aligned windows of `step` ms touch `[start, end)`.
pub fn windows(range: TimeRange, step: i64) -> i64 {
    let first = range.start_ms.div_euclid(step);
    let last = (range.end_ms - 1).div_euclid(step);
    last - first + 1
}

/// A duration in ms as text for messages: `7d`, `1h 30m`, `250ms`.
pub fn human_ms(ms: i64) -> String {
    let d = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

    #[test]
    fn times() {
        for (text, want) in [
            ("now", Some(NOW)),
            ("now-1h", Some(NOW - 3_600_000)),
            ("now-7d", Some(NOW - 7 * 86_400_000)),
            ("now-1h30m", Some(NOW - 5_400_000)),
            ("1704067200000", Some(NOW)),
            ("-5", Some(-5)),
            ("2024-01-01T00:00:00Z", Some(NOW)),
            ("2024-01-01T08:00:00.250+08:00", Some(NOW + 250)),
            ("now-", None),
            ("now-1x", None),
            ("now+1h", None),
            ("yesterday", None),
            ("99999999999999999999", None),
            ("2024-13-01T00:00:00Z", None),
            ("", None),
        ] {
            assert_eq!(parse_time("start", text, NOW).ok(), want, "{text:?}");
        }
        match parse_time("end", "later", NOW) {
            Err(AppError::BadRequest { param, message }) => {
                assert_eq!(param, "end");
                assert!(message.contains("now-1h"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn steps() {
        assert_eq!(parse_step("30s").ok(), Some(30_000));
        assert_eq!(parse_step("1500").ok(), Some(1500));
        assert!(parse_step("0").is_err());
        assert!(parse_step("0s").is_err());
        assert!(parse_step("fast").is_err());
        let hour = TimeRange::new(NOW - 3_600_000, NOW).unwrap();
        assert_eq!(nice_step(10_000, hour, 1000), 10_000);
        assert_eq!(nice_step(1, hour, 1000), 5_000);
        assert_eq!(nice_step(12_000, hour, 1000), 30_000);
        let week = TimeRange::new(NOW - 7 * 86_400_000, NOW).unwrap();
        // 604.8 s per point rounds up to 30m (336 windows); 302.4 s to 10m (1008).
        assert_eq!(nice_step(10_000, week, 1000), 1_800_000);
        assert_eq!(nice_step(10_000, week, 2000), 600_000);
        assert_eq!(nice_step(10_000, week, 60), 3 * 3_600_000);
        assert_eq!(nice_step(3_600_000 + 1, week, 1000), 3 * 3_600_000);
        let long = TimeRange::new(NOW - 400 * 86_400_000 + 1, NOW).unwrap();
        let step = nice_step(10_000, long, 1);
        assert_eq!(step, 400 * 86_400_000);
        assert!(windows(long, step) <= 2, "{step}");
        // An unaligned hour needs one window more than it is long.
        let unaligned = TimeRange::new(NOW - 3_600_000 + 1, NOW + 1).unwrap();
        assert_eq!(windows(unaligned, 60_000), 61);
        assert_eq!(nice_step(60_000, unaligned, 60), 60_000);
        // 2000 windows of exactly 1s, unaligned, would be 2001: the next length.
        let exact = TimeRange::new(NOW + 500, NOW + 2_000_500).unwrap();
        assert_eq!(nice_step(1, exact, 2000), 5_000);
        for points in [1, 7, 999, 1000, 1999, 2000] {
            for (start, len) in [
                (NOW, 3_600_000),
                (NOW + 1, 7 * 86_400_000),
                (NOW - 77, 123_456),
            ] {
                let r = TimeRange::new(start, start + len).unwrap();
                let step = nice_step(1, r, points);
                assert!(
                    windows(r, step) <= (points + 1).min(MAX_WINDOWS),
                    "{points} {len}: {step}"
                );
            }
        }
    }
}
