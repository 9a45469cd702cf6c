//! The data point: measurement, sorted tags, typed fields, optional timestamp.
//!
//! A [`Point`] can only be made through [`PointBuilder::build`], which refuses what
//! InfluxDB would refuse (no fields, non-finite floats, newlines, empty or reserved
//! keys), so the line-protocol encoder never has to fail.

use std::collections::BTreeMap;
use std::fmt;

/// Largest string field InfluxDB 1.x accepts (bytes).
pub const MAX_STRING_FIELD_LEN: usize = 64 * 1024 - 1;

/// Keys InfluxDB reserves; a tag or field with one of these names is refused.
const RESERVED_KEYS: [&str; 3] = ["time", "_measurement", "_field"];

/// A typed field value; the line-protocol suffix follows the type.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `1.5`
    Float(f64),
    /// `42i`
    Integer(i64),
    /// `42u`
    UInteger(u64),
    /// `"text"`
    String(String),
    /// `true` / `false`
    Boolean(bool),
}

impl FieldValue {
    /// The value as a float, for numeric types; strings are `None`, booleans 0/1.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Float(v) => Some(*v),
            FieldValue::Integer(v) => Some(*v as f64),
            FieldValue::UInteger(v) => Some(*v as f64),
            FieldValue::Boolean(v) => Some(if *v { 1.0 } else { 0.0 }),
            FieldValue::String(_) => None,
        }
    }
}

macro_rules! field_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {
        $(impl From<$t> for FieldValue {
            fn from(v: $t) -> Self { FieldValue::$variant(<$conv>::from(v)) }
        })*
    };
}
field_from!(
    f64 => Float as f64, f32 => Float as f64,
    i64 => Integer as i64, i32 => Integer as i64, i16 => Integer as i64,
    u64 => UInteger as u64, u32 => UInteger as u64, u16 => UInteger as u64,
    bool => Boolean as bool, String => String as String,
);

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::String(v.to_owned())
    }
}

/// Why a point was refused. Every variant names the offending part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointError {
    #[error("measurement name is empty")]
    EmptyMeasurement,
    #[error("point `{measurement}` has no fields; InfluxDB needs at least one")]
    NoFields { measurement: String },
    #[error("{what} `{name}` is empty")]
    EmptyKey { what: &'static str, name: String },
    #[error("{what} {name:?} contains a newline or carriage return")]
    Newline { what: &'static str, name: String },
    #[error("{what} {name:?} has a backslash at its end or before a comma, space, `=` or `\"`, which line protocol cannot carry faithfully")]
    UnencodableBackslash { what: &'static str, name: String },
    #[error("measurement {name:?} starts with `#`, which InfluxDB reads as a comment")]
    CommentMeasurement { name: String },
    #[error("{what} `{name}` is reserved by InfluxDB")]
    ReservedKey { what: &'static str, name: String },
    #[error("field `{field}` is {value}; only finite floats can be stored")]
    NonFiniteFloat { field: String, value: f64 },
    #[error(
        "string field `{field}` is {len} bytes, over InfluxDB's limit of {MAX_STRING_FIELD_LEN}"
    )]
    StringTooLong { field: String, len: usize },
}

/// A validated point. Tags and fields are kept sorted by key.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, FieldValue>,
    /// Nanoseconds since the Unix epoch; `None` lets the server stamp it.
    timestamp: Option<i64>,
}

impl Point {
    /// Start building a point for `measurement`.
    pub fn builder(measurement: impl Into<String>) -> PointBuilder {
        PointBuilder {
            measurement: measurement.into(),
            tags: BTreeMap::new(),
            fields: BTreeMap::new(),
            timestamp: None,
        }
    }

    pub fn measurement(&self) -> &str {
        &self.measurement
    }
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
    pub fn fields(&self) -> &BTreeMap<String, FieldValue> {
        &self.fields
    }
    pub fn field(&self, key: &str) -> Option<&FieldValue> {
        self.fields.get(key)
    }
    /// Nanoseconds since the Unix epoch.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Turn the point back into a builder, e.g. to add the collector's common tags.
    pub fn into_builder(self) -> PointBuilder {
        PointBuilder {
            measurement: self.measurement,
            tags: self.tags,
            fields: self.fields,
            timestamp: self.timestamp,
        }
    }
}

/// Builds a [`Point`]; nothing is checked until [`PointBuilder::build`].
#[derive(Debug, Clone)]
pub struct PointBuilder {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, FieldValue>,
    timestamp: Option<i64>,
}

impl PointBuilder {
    /// Add a tag. A tag with an empty value is dropped at build time, as Telegraf does:
    /// line protocol cannot carry it.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Add a tag unless one with that key is already set.
    pub fn tag_if_absent(mut self, key: &str, value: &str) -> Self {
        if !self.tags.contains_key(key) {
            self.tags.insert(key.to_owned(), value.to_owned());
        }
        self
    }

    /// Add or replace a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Set the timestamp in nanoseconds since the Unix epoch.
    pub fn timestamp(mut self, nanos: i64) -> Self {
        self.timestamp = Some(nanos);
        self
    }

    /// Set the timestamp unless one is set already.
    pub fn timestamp_if_absent(mut self, nanos: i64) -> Self {
        self.timestamp.get_or_insert(nanos);
        self
    }

    /// Validate and build.
    pub fn build(mut self) -> Result<Point, PointError> {
        if self.measurement.is_empty() {
            return Err(PointError::EmptyMeasurement);
        }
        check_text("measurement", &self.measurement)?;
        if self.measurement.starts_with('#') {
            return Err(PointError::CommentMeasurement {
                name: self.measurement,
            });
        }
        self.tags.retain(|_, v| !v.is_empty());
        for (k, v) in &self.tags {
            check_key("tag key", k)?;
            check_text("tag value", v)?;
        }
        if self.fields.is_empty() {
            return Err(PointError::NoFields {
                measurement: self.measurement,
            });
        }
        for (k, v) in &self.fields {
            check_key("field key", k)?;
            match v {
                FieldValue::Float(f) if !f.is_finite() => {
                    return Err(PointError::NonFiniteFloat {
                        field: k.clone(),
                        value: *f,
                    })
                }
                FieldValue::String(s) if s.len() > MAX_STRING_FIELD_LEN => {
                    return Err(PointError::StringTooLong {
                        field: k.clone(),
                        len: s.len(),
                    })
                }
                _ => {}
            }
        }
        Ok(Point {
            measurement: self.measurement,
            tags: self.tags,
            fields: self.fields,
            timestamp: self.timestamp,
        })
    }
}

fn check_key(what: &'static str, key: &str) -> Result<(), PointError> {
    if key.is_empty() {
        return Err(PointError::EmptyKey {
            what,
            name: key.to_owned(),
        });
    }
    if RESERVED_KEYS.contains(&key) {
        return Err(PointError::ReservedKey {
            what,
            name: key.to_owned(),
        });
    }
    check_text(what, key)
}

/// Names and tag values: single-line, and no backslash that InfluxDB 1.x would read
/// differently from what was meant. 1.x keeps every backslash literally except in
/// `\,`, `\ `, `\=` (and `\"` in measurements and field keys), where it drops it; so a
/// backslash before one of those, or at the very end (where it would escape the
/// separator), has no encoding that reads back the same. Refusing it here keeps the
/// encoder exact and infallible.
fn check_text(what: &'static str, s: &str) -> Result<(), PointError> {
    if s.contains(['\n', '\r']) {
        return Err(PointError::Newline {
            what,
            name: s.to_owned(),
        });
    }
    let bytes = s.as_bytes();
    let bad_backslash = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'\\' && matches!(bytes.get(i + 1), None | Some(b',' | b' ' | b'=' | b'"'))
    });
    if bad_backslash {
        return Err(PointError::UnencodableBackslash {
            what,
            name: s.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for Point {
    /// Line protocol, nanosecond precision.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(128);
        crate::lineproto::encode(self, crate::lineproto::Precision::Nanoseconds, &mut buf);
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds and reports the error's message, so NaN payloads compare cleanly.
    fn check(b: PointBuilder, expected: Result<(), &str>) {
        let got = b.build().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned));
    }

    #[test]
    fn builder_validation() {
        check(Point::builder("m").field("f", 1.0), Ok(()));
        check(
            Point::builder("").field("f", 1.0),
            Err("measurement name is empty"),
        );
        check(
            Point::builder("m"),
            Err("point `m` has no fields; InfluxDB needs at least one"),
        );
        check(
            Point::builder("m").field("f", f64::NAN),
            Err("field `f` is NaN; only finite floats can be stored"),
        );
        check(
            Point::builder("m").field("f", f64::INFINITY),
            Err("field `f` is inf; only finite floats can be stored"),
        );
        check(
            Point::builder("m").tag("", "v").field("f", 1i64),
            Err("tag key `` is empty"),
        );
        check(
            Point::builder("m").field("", 1i64),
            Err("field key `` is empty"),
        );
        check(
            Point::builder("m").tag("host", r"a\nb").field("f", 1i64),
            Ok(()),
        );
        check(
            Point::builder("m").tag("host", "a\nb").field("f", 1i64),
            Err("tag value \"a\\nb\" contains a newline or carriage return"),
        );
        check(
            Point::builder("m\r").field("f", 1i64),
            Err("measurement \"m\\r\" contains a newline or carriage return"),
        );
        check(
            Point::builder("m").tag("path", r"C:\dir").field("f", 1i64),
            Ok(()),
        );
        for bad in [r"trailing\", r"a\ b", r"a\,b", r"a\=b", r#"a\"b"#] {
            let want = format!(
                "tag value {bad:?} has a backslash at its end or before a comma, space, `=` or `\"`, which line protocol cannot carry faithfully"
            );
            check(
                Point::builder("m").tag("t", bad).field("f", 1i64),
                Err(&want),
            );
        }
        check(
            Point::builder("#m").field("f", 1i64),
            Err("measurement \"#m\" starts with `#`, which InfluxDB reads as a comment"),
        );
        check(
            Point::builder("m").field("time", 1i64),
            Err("field key `time` is reserved by InfluxDB"),
        );
        check(
            Point::builder("m").field("s", "x".repeat(MAX_STRING_FIELD_LEN + 1)),
            Err("string field `s` is 65536 bytes, over InfluxDB's limit of 65535"),
        );
    }

    #[test]
    fn empty_tag_values_are_dropped() {
        let p = Point::builder("m")
            .tag("a", "")
            .tag("b", "x")
            .field("f", 1u64)
            .build()
            .unwrap();
        assert_eq!(p.tags().len(), 1);
        assert_eq!(p.tag("b"), Some("x"));
    }
}
