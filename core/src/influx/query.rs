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

/// Which rows of each series a [`RowsQuery`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSelect {
    /// The most recent row of each series that has a value for at least one of the
    /// fields (the fields without a value at that time are absent from the row).
    Last,
    /// Every row of each series that has a value for at least one of the fields,
    /// oldest first, at most this many per series.
    All {
        /// At least 1.
        limit_per_series: u32,
    },
}

/// Several fields of one measurement, as rows: for text fields (`cmdline`,
/// `last_line`, an alert's `state`) and for reading a whole point at once.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsQuery {
    /// The measurement.
    pub measurement: String,
    /// At least one field, each named once.
    pub fields: Vec<String>,
    /// Tag equality filters, ANDed.
    pub tags: BTreeMap<String, String>,
    /// The range to read.
    pub range: TimeRange,
    /// Which rows.
    pub select: RowSelect,
}

impl RowsQuery {
    /// Refuses empty or duplicate fields, control characters, a zero limit and an
    /// empty range.
    pub fn validate(&self) -> Result<(), QueryError> {
        check_name("measurement", &self.measurement)?;
        if self.fields.is_empty() {
            return Err(QueryError::invalid(
                "fields",
                "at least one field is needed",
            ));
        }
        for (i, f) in self.fields.iter().enumerate() {
            check_name("fields", f)?;
            if self.fields[..i].contains(f) {
                return Err(QueryError::invalid(
                    "fields",
                    format!("{f:?} is listed twice"),
                ));
            }
        }
        check_tags(&self.tags)?;
        if let RowSelect::All {
            limit_per_series: 0,
        } = self.select
        {
            return Err(QueryError::invalid("limit", "must be at least 1"));
        }
        self.range.validate()
    }
}

/// A field value read by a [`RowsQuery`]. Integers become `f64` (exact up to 2^53).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldData {
    /// A float, integer or unsigned field.
    Number(f64),
    /// A string field.
    Text(String),
    /// A boolean field.
    Bool(bool),
}

impl FieldData {
    /// A number, or a boolean as 1/0; `None` for text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldData::Number(v) => Some(*v),
            FieldData::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            FieldData::Text(_) => None,
        }
    }
    /// The text of a text field; `None` for numbers and booleans.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldData::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One row of a [`RowsQuery`]: its series' tags, its time (unix ms), and the fields
/// that have a value at that time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// The series' tags.
    pub tags: BTreeMap<String, String>,
    /// The row's time, unix ms.
    pub time_ms: i64,
    /// The fields with a value at that time.
    pub fields: BTreeMap<String, FieldData>,
}

/// The fields (and their types) of one measurement or of all, optionally only of the
/// measurements that have series matching `tags` (e.g. the measurements one host
/// reports).
///
/// Flux looks at the series with points in `range`. InfluxQL (1.x `SHOW MEASUREMENTS`,
/// `SHOW FIELD KEYS`) cannot bound these statements in time and answers from the
/// index: every measurement with a matching series still in the database, whatever
/// `range` says. Callers must treat the answer as "may have data", not "has data in
/// the range".
#[derive(Debug, Clone, PartialEq)]
pub struct FieldKeysQuery {
    /// One measurement, or `None` for every measurement.
    pub measurement: Option<String>,
    /// Tag equality filters, ANDed; empty lists every measurement.
    pub tags: BTreeMap<String, String>,
    /// See above for what the range means per dialect.
    pub range: TimeRange,
}

impl FieldKeysQuery {
    /// Refuses control characters, an empty measurement name and an empty range.
    pub fn validate(&self) -> Result<(), QueryError> {
        if let Some(m) = &self.measurement {
            check_name("measurement", m)?;
        }
        check_tags(&self.tags)?;
        self.range.validate()
    }
}

/// The type InfluxDB stores a field with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldKind {
    /// `float` / `double`.
    Float,
    /// `integer` / `long`.
    Integer,
    /// `unsigned` / `unsignedLong`.
    Unsigned,
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
}

impl FieldKind {
    /// Float, integer or unsigned: a field that can be aggregated and charted.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldKind::Float | FieldKind::Integer | FieldKind::Unsigned
        )
    }
}

/// One field of one measurement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldKey {
    /// The measurement.
    pub measurement: String,
    /// The field's name.
    pub field: String,
    /// Its type.
    pub kind: FieldKind,
}

/// Reads an RFC 3339 time (`2024-01-01T00:00:00Z`, `…T08:00:00.5+08:00`; up to 9
/// fractional digits, `Z` or a `±hh:mm` offset) as unix milliseconds, rounded down.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    super::flux::parse_time_ms(s)
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
    fn rows_and_field_keys_validate() {
        let range = TimeRange {
            start_ms: 0,
            end_ms: 1,
        };
        let q = RowsQuery {
            measurement: "procstat_top".into(),
            fields: vec!["pid".into(), "cmdline".into()],
            tags: BTreeMap::new(),
            range,
            select: RowSelect::Last,
        };
        assert!(q.validate().is_ok());
        for (bad, param) in [
            (
                RowsQuery {
                    fields: vec![],
                    ..q.clone()
                },
                "fields",
            ),
            (
                RowsQuery {
                    fields: vec!["a".into(), "a".into()],
                    ..q.clone()
                },
                "fields",
            ),
            (
                RowsQuery {
                    fields: vec!["a\nb".into()],
                    ..q.clone()
                },
                "fields",
            ),
            (
                RowsQuery {
                    select: RowSelect::All {
                        limit_per_series: 0,
                    },
                    ..q.clone()
                },
                "limit",
            ),
            (
                RowsQuery {
                    measurement: String::new(),
                    ..q.clone()
                },
                "measurement",
            ),
            (
                RowsQuery {
                    range: TimeRange {
                        start_ms: 1,
                        end_ms: 1,
                    },
                    ..q.clone()
                },
                "range",
            ),
        ] {
            match bad.validate() {
                Err(QueryError::Invalid { param: p, .. }) => assert_eq!(p, param, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let fk = FieldKeysQuery {
            measurement: None,
            tags: BTreeMap::from([("host".to_owned(), "a\rb".to_owned())]),
            range,
        };
        assert!(matches!(
            fk.validate(),
            Err(QueryError::Invalid { param: "tags", .. })
        ));
        assert!(FieldKind::Unsigned.is_numeric() && !FieldKind::String.is_numeric());
        assert!(!FieldKind::Boolean.is_numeric());
        assert_eq!(FieldData::Bool(true).as_f64(), Some(1.0));
        assert_eq!(FieldData::Text("x".into()).as_str(), Some("x"));
        assert_eq!(parse_rfc3339_ms("1970-01-01T08:00:00.001+08:00"), Some(1));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
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
