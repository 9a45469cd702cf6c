//! The typed query model. Callers describe *what* they want; the dialect modules
//! ([`super::flux`], [`super::influxql`]) render it. No caller ever writes query text,
//! and every piece of user input reaches a dialect only as an escaped literal or
//! identifier, after [`SeriesQuery::validate`] and friends have refused control
//! characters, bad durations and unknown aggregates.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Half-open time range `[start, end)`, milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeRange {
    pub fn new(start_ms: i64, end_ms: i64) -> Result<Self, QueryError> {
        let r = TimeRange { start_ms, end_ms };
        r.validate()?;
        Ok(r)
    }

    pub fn validate(&self) -> Result<(), QueryError> {
        if self.start_ms >= self.end_ms {
            return Err(QueryError::invalid(
                "range",
                format!(
                    "start ({}) must be before end ({})",
                    self.start_ms, self.end_ms
                ),
            ));
        }
        Ok(())
    }

    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

/// A window length for `GROUP BY time(..)` / `aggregateWindow(every: ..)`: whole
/// milliseconds, at least 1 ms. Rendered as `<n>ms` in both dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Every(u64);

impl Every {
    pub fn from_millis(ms: u64) -> Result<Self, QueryError> {
        if ms == 0 {
            return Err(QueryError::invalid("every", "must be at least 1ms"));
        }
        Ok(Every(ms))
    }
    pub fn from_duration(d: Duration) -> Result<Self, QueryError> {
        let ms = u64::try_from(d.as_millis())
            .map_err(|_| QueryError::invalid("every", "is too long"))?;
        if Duration::from_millis(ms) != d {
            return Err(QueryError::invalid(
                "every",
                format!("{d:?} is not a whole number of milliseconds"),
            ));
        }
        Every::from_millis(ms)
    }
    pub fn as_millis(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// The aggregates a query may ask for: a closed list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    Mean,
    Max,
    Min,
    Last,
    Sum,
    Count,
    /// Nearest-rank percentile, 0 < p <= 100 (`p95`, `p99.9`).
    Percentile(f64),
    /// Non-negative rate per second, for counters. With a window, the rate between
    /// the last values of consecutive non-empty windows; without, between points.
    Rate,
}

impl FromStr for Aggregate {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        Ok(match s {
            "mean" => Aggregate::Mean,
            "max" => Aggregate::Max,
            "min" => Aggregate::Min,
            "last" => Aggregate::Last,
            "sum" => Aggregate::Sum,
            "count" => Aggregate::Count,
            "rate" => Aggregate::Rate,
            _ => {
                let p = s
                    .strip_prefix('p')
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p <= 100.0);
                match p {
                    Some(p) => Aggregate::Percentile(p),
                    None => {
                        return Err(QueryError::invalid(
                            "agg",
                            format!(
                                "unknown aggregate {s:?}; expected one of mean, max, min, last, sum, count, rate, pNN (0 < NN <= 100)"
                            ),
                        ))
                    }
                }
            }
        })
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregate::Mean => f.write_str("mean"),
            Aggregate::Max => f.write_str("max"),
            Aggregate::Min => f.write_str("min"),
            Aggregate::Last => f.write_str("last"),
            Aggregate::Sum => f.write_str("sum"),
            Aggregate::Count => f.write_str("count"),
            Aggregate::Rate => f.write_str("rate"),
            Aggregate::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// One numeric series over a range.
///
/// | `aggregate` | `every` | result                                               |
/// |-------------|---------|------------------------------------------------------|
/// | `None`      | `None`  | the raw points                                       |
/// | `Some(a)`   | `Some`  | one value per window; empty windows are `None`       |
/// | `Some(a)`   | `None`  | one value for the whole range (rate: per raw point)  |
/// | `None`      | `Some`  | refused by [`SeriesQuery::validate`]                 |
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    pub measurement: String,
    pub field: String,
    /// Tag equality filters, ANDed.
    pub tags: BTreeMap<String, String>,
    pub range: TimeRange,
    pub every: Option<Every>,
    pub aggregate: Option<Aggregate>,
    /// Tags to split the result by; empty merges every matching series into one.
    pub group_by: Vec<String>,
}

impl SeriesQuery {
    pub fn validate(&self) -> Result<(), QueryError> {
        check_name("measurement", &self.measurement)?;
        check_name("field", &self.field)?;
        check_tags(&self.tags)?;
        for g in &self.group_by {
            check_name("group_by", g)?;
        }
        self.range.validate()?;
        if let (None, Some(_)) = (self.aggregate, self.every) {
            return Err(QueryError::invalid(
                "agg",
                "a window (every) needs an aggregate",
            ));
        }
        if let Some(Aggregate::Percentile(p)) = self.aggregate {
            if !(p > 0.0 && p <= 100.0) {
                return Err(QueryError::invalid(
                    "agg",
                    format!("percentile {p} is not in (0, 100]"),
                ));
            }
        }
        Ok(())
    }
}

/// The distinct values of one tag key (e.g. every `host`) seen in a range.
#[derive(Debug, Clone, PartialEq)]
pub struct TagValuesQuery {
    pub measurement: String,
    pub key: String,
    pub tags: BTreeMap<String, String>,
    pub range: TimeRange,
}

impl TagValuesQuery {
    pub fn validate(&self) -> Result<(), QueryError> {
        check_name("measurement", &self.measurement)?;
        check_name("key", &self.key)?;
        check_tags(&self.tags)?;
        self.range.validate()
    }
}

/// The last value of a field for every series (every distinct tag set) in a range.
#[derive(Debug, Clone, PartialEq)]
pub struct LastQuery {
    pub measurement: String,
    pub field: String,
    pub tags: BTreeMap<String, String>,
    pub range: TimeRange,
}

impl LastQuery {
    pub fn validate(&self) -> Result<(), QueryError> {
        check_name("measurement", &self.measurement)?;
        check_name("field", &self.field)?;
        check_tags(&self.tags)?;
        self.range.validate()
    }
}

/// A result series: its tags and its points `(unix ms, value)`; `None` is an empty
/// window or a null.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub tags: BTreeMap<String, String>,
    pub points: Vec<(i64, Option<f64>)>,
}

/// Errors of the query layer that happen before any request: bad input, or a
/// response body that could not be understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A query parameter is unacceptable; `param` names it.
    #[error("invalid {param}: {reason}")]
    Invalid { param: &'static str, reason: String },
    /// The database answered with an error inside a 2xx body.
    #[error("query failed: {message}")]
    Database { message: String },
    /// The response body did not have the expected shape.
    #[error("cannot read the query response: {reason}")]
    Decode { reason: String },
}

impl QueryError {
    pub fn invalid(param: &'static str, reason: impl Into<String>) -> Self {
        QueryError::Invalid {
            param,
            reason: reason.into(),
        }
    }
    pub fn decode(reason: impl Into<String>) -> Self {
        QueryError::Decode {
            reason: reason.into(),
        }
    }
}

/// Names and tag values may be any text but empty or containing control characters
/// (a newline could never have been written, and is refused rather than escaped).
pub fn check_name(param: &'static str, s: &str) -> Result<(), QueryError> {
    if s.is_empty() {
        return Err(QueryError::invalid(param, "is empty"));
    }
    check_value(param, s)
}

fn check_value(param: &'static str, s: &str) -> Result<(), QueryError> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(QueryError::invalid(
            param,
            format!("{s:?} contains the control character {c:?}"),
        ));
    }
    Ok(())
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), QueryError> {
    for (k, v) in tags {
        check_name("tags", k)?;
        check_value("tags", v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_names() {
        for (s, want) in [
            ("mean", Some(Aggregate::Mean)),
            ("rate", Some(Aggregate::Rate)),
            ("p95", Some(Aggregate::Percentile(95.0))),
            ("p99.9", Some(Aggregate::Percentile(99.9))),
            ("p100", Some(Aggregate::Percentile(100.0))),
            ("p0", None),
            ("p101", None),
            ("p", None),
            ("pNaN", None),
            ("p-5", None),
            ("median", None),
            ("mean) |> drop()", None),
        ] {
            assert_eq!(s.parse::<Aggregate>().ok(), want, "{s}");
        }
        assert_eq!(Aggregate::Percentile(99.9).to_string(), "p99.9");
    }

    #[test]
    fn control_characters_are_refused() {
        let q = SeriesQuery {
            measurement: "cpu".into(),
            field: "usage\nuser".into(),
            tags: BTreeMap::new(),
            range: TimeRange {
                start_ms: 0,
                end_ms: 1,
            },
            every: None,
            aggregate: None,
            group_by: vec![],
        };
        let err = q.validate().unwrap_err();
        assert!(err.to_string().starts_with("invalid field:"), "{err}");
    }

    #[test]
    fn every_needs_whole_millis() {
        assert!(Every::from_duration(Duration::from_micros(1500)).is_err());
        assert_eq!(
            Every::from_duration(Duration::from_secs(10))
                .unwrap()
                .to_string(),
            "10000ms"
        );
        assert!(Every::from_millis(0).is_err());
    }
}
