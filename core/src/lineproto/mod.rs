//! InfluxDB line protocol: the encoder the collector writes with and a parser for the
//! same grammar.
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//! ```
//!
//! - [`encode`] / [`encode_all`] append lines to a reused buffer and cannot fail: a
//!   [`Point`](crate::point::Point) has already been validated by its builder.
//! - [`parse_line`] / [`parse_lines`] read the same grammar back into points built
//!   through [`PointBuilder::build`](crate::point::PointBuilder::build), so parsed points
//!   obey the same rules as built ones. Errors name the line, the column and the part
//!   that is wrong.
//!
//! # Escaping
//!
//! | position                            | escaped with `\`          |
//! |-------------------------------------|---------------------------|
//! | measurement                         | `,` and space; a leading `#` |
//! | tag key, tag value, field key       | `,`, `=` and space        |
//! | string field value (inside `"…"`)   | `"` and `\`               |
//!
//! Field values: floats print in the shortest form that reads back to the identical
//! `f64` (Ryū: `1.0`, `0.25`, `1e-7`, `1.5e300`; the parser also takes a bare `1` as a
//! float, as InfluxDB does), integers as `42i`, unsigned as `42u`, booleans as
//! `true`/`false`. Newlines and carriage returns inside a string value are written as
//! they are: InfluxDB 1.x/2.x (checked on 1.6) and this parser read them inside quotes.
//!
//! ## Backslashes in names (measurement, tag keys/values, field keys)
//!
//! Rule: **a run of backslashes is written as it is, unless it stands directly before a
//! character that gets escaped, or at the very end of the name; then it is doubled.**
//! The parser undoes exactly that: before an escapable character an odd run is `n/2`
//! backslashes plus the literal character, an even run is `n/2` backslashes and the
//! character ends the name; any other run is literal.
//!
//! Why: InfluxDB 1.x/2.x (checked against a real 1.6 server) never unescapes `\\` in
//! names, it only removes the backslash of `\,`, `\ ` and `\=`. So `C:\Windows` or
//! `\\server\share` must go out verbatim to be read back identically, and they do under
//! this rule. What InfluxDB 1.x/2.x cannot represent at all is a name *ending* in `\`
//! (the backslash escapes the following separator: `t=a\ f=1` and `t=a\\ f=1` both fail
//! with "invalid tag format"). Once such names must round-trip through our own parser,
//! some backslash sequence has to change meaning, and the least common one is a
//! backslash directly before `,`, ` ` or `=`. Consequences, all rare:
//!
//! - a name ending in `\` is written with the run doubled; InfluxDB 1.x/2.x reject such
//!   a line (or, for a measurement followed by tags, misread it), as they would any
//!   spelling of it;
//! - a name with `\` directly before `,`, ` ` or `=` (e.g. the tag value `a\ b`) reads
//!   back in InfluxDB 1.x/2.x with the extra backslashes (`a\\ b`);
//! - InfluxDB 1.x also unescapes `\"` in field keys and `\=`/`\"` in measurements, so a
//!   name containing those two-character sequences reads back there without the
//!   backslash;
//! - a measurement starting with `#` is written `\#…` because InfluxDB skips lines
//!   starting with `#` as comments and would drop the point silently; 1.x stores the
//!   name with the backslash.
//!
//! # Parser leniency and strictness
//!
//! Like InfluxDB, the parser accepts unsorted tags, several spaces between sections,
//! trailing spaces, booleans spelled `t`/`T`/`True`/`TRUE` (and the `false` forms) and
//! floats such as `1.`, `.5` or `1E+10`. It refuses duplicate tag keys (as InfluxDB
//! does) and also duplicate field keys (InfluxDB keeps the last one). [`parse_lines`]
//! also accepts `\r\n` line ends.

mod encode;
mod parse;

use std::fmt;
use std::str::FromStr;

pub use encode::{encode, encode_all};
pub use parse::{parse_line, parse_lines, ParseError, Position};

/// Timestamp precision of a write: line-protocol timestamps count units of this size
/// since the Unix epoch. [`Point`](crate::point::Point) timestamps are always
/// nanoseconds; the encoder divides (rounding towards negative infinity) and the parser
/// multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Whole seconds (`s`).
    Seconds,
    /// Milliseconds (`ms`).
    Milliseconds,
    /// Microseconds (`us`).
    Microseconds,
    /// Nanoseconds (`ns`), InfluxDB's default.
    Nanoseconds,
}

impl Precision {
    /// All precisions, coarsest first.
    pub const ALL: [Precision; 4] = [
        Precision::Seconds,
        Precision::Milliseconds,
        Precision::Microseconds,
        Precision::Nanoseconds,
    ];

    /// The `precision` query parameter of the InfluxDB 2.x/3.x write API:
    /// `s`, `ms`, `us` or `ns`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Seconds => "s",
            Precision::Milliseconds => "ms",
            Precision::Microseconds => "us",
            Precision::Nanoseconds => "ns",
        }
    }

    /// The `precision` query parameter of the InfluxDB 1.x `/write` endpoint:
    /// `s`, `ms`, `u` or `n`.
    ///
    /// InfluxDB 1.x accepts `us` but silently treats it as nanoseconds (checked on 1.6),
    /// so a 1.x client must send `u`.
    pub fn as_v1_str(self) -> &'static str {
        match self {
            Precision::Seconds => "s",
            Precision::Milliseconds => "ms",
            Precision::Microseconds => "u",
            Precision::Nanoseconds => "n",
        }
    }

    /// How many nanoseconds one unit of this precision is.
    pub fn nanos_per_unit(self) -> i64 {
        match self {
            Precision::Seconds => 1_000_000_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Microseconds => 1_000,
            Precision::Nanoseconds => 1,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A precision name that is not one of `s`, `ms`, `us`, `ns`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision `{given}`; expected one of s, ms, us, ns")]
pub struct UnknownPrecision {
    /// What was given.
    pub given: String,
}

impl FromStr for Precision {
    type Err = UnknownPrecision;

    /// Parses the write API's names `s`, `ms`, `us`, `ns`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPrecision {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(
            "u".parse::<Precision>().map_err(|e| e.to_string()),
            Err("unknown precision `u`; expected one of s, ms, us, ns".to_owned())
        );
        assert_eq!(Precision::Microseconds.as_v1_str(), "u");
        assert_eq!(Precision::Milliseconds.nanos_per_unit(), 1_000_000);
    }
}
