//! Line protocol → points. See the module docs of [`super`] for the grammar and the
//! escaping rules this parser undoes.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;

use super::encode::Escapes;
use super::Precision;
use crate::point::{FieldValue, Point, PointError};

/// Where in the input something went wrong: 1-based line and column (columns count
/// characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number in the text given to the parser.
    pub line: usize,
    /// 1-based character column within that line.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a line is not a valid point. Every message starts with the line and column and
/// names the part (measurement, tag, field, timestamp) that is wrong.
///
/// Fields: `at` is where ([`ParseError::position`]); `key` the tag or field key
/// involved; `value` and `text` the offending input, cut at 40 characters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Blank or `#` comment line given to [`parse_line`].
    #[error("{at}: the line is blank or a comment, not a point")]
    NotAPoint { at: Position },
    /// Nothing before the first `,` or space.
    #[error("{at}: missing measurement name")]
    MissingMeasurement { at: Position },
    /// `m,=v` or `m, f=1`.
    #[error("{at}: missing tag key")]
    MissingTagKey { at: Position },
    /// A tag key not followed by `=`.
    #[error("{at}: tag `{key}` has no `=value`")]
    TagWithoutValue { at: Position, key: String },
    /// `m,t= f=1`.
    #[error("{at}: tag `{key}` has an empty value")]
    EmptyTagValue { at: Position, key: String },
    /// `m,t=a=b f=1`.
    #[error("{at}: tag `{key}` has an unescaped `=` in its value")]
    UnescapedEquals { at: Position, key: String },
    /// The same tag key twice.
    #[error("{at}: tag `{key}` appears twice")]
    DuplicateTag { at: Position, key: String },
    /// The line ends before the field set.
    #[error("{at}: missing fields; a point needs at least one `key=value` field after the measurement and tags")]
    MissingFields { at: Position },
    /// `m =1` or `m f=1,=2`.
    #[error("{at}: missing field key")]
    MissingFieldKey { at: Position },
    /// A field key not followed by `=`.
    #[error("{at}: field `{key}` has no `=value`")]
    FieldWithoutValue { at: Position, key: String },
    /// `m f= 1`.
    #[error("{at}: field `{key}` has an empty value")]
    EmptyFieldValue { at: Position, key: String },
    /// Not a float, integer, unsigned, boolean or quoted string.
    #[error("{at}: field `{key}` has invalid value `{value}`")]
    InvalidFieldValue {
        at: Position,
        key: String,
        value: String,
    },
    /// A number that does not fit its type (`i64`, `u64`, finite `f64`).
    #[error("{at}: field `{key}` value `{value}` is out of range for its type")]
    NumberOutOfRange {
        at: Position,
        key: String,
        value: String,
    },
    /// A string value without its closing `"`.
    #[error("{at}: string field `{key}` has no closing quote")]
    UnterminatedString { at: Position, key: String },
    /// Something other than `,`, a space or the line end right after a string value.
    #[error("{at}: field `{key}` has `{text}` after its closing quote")]
    AfterString {
        at: Position,
        key: String,
        text: String,
    },
    /// The same field key twice.
    #[error("{at}: field `{key}` appears twice")]
    DuplicateField { at: Position, key: String },
    /// A timestamp that is not an optionally negative decimal integer.
    #[error("{at}: timestamp `{value}` is not an integer")]
    InvalidTimestamp { at: Position, value: String },
    /// A timestamp that does not fit in `i64` nanoseconds at the given precision.
    #[error(
        "{at}: timestamp `{value}` (precision {precision}) is out of range for 64-bit nanoseconds"
    )]
    TimestampOutOfRange {
        at: Position,
        value: String,
        precision: Precision,
    },
    /// More text after the timestamp.
    #[error("{at}: unexpected `{text}` after the timestamp")]
    TrailingGarbage { at: Position, text: String },
    /// A newline outside a string value, in text given to [`parse_line`].
    #[error("{at}: unexpected newline; a point is one line (newlines may only appear inside string field values)")]
    Newline { at: Position },
    /// The syntax is fine but the point breaks a rule of
    /// [`PointBuilder::build`](crate::point::PointBuilder::build).
    /// The message includes the point error's, so it is not also given as the
    /// `source()` (error reporters would print it twice).
    #[error("{at}: {error}")]
    InvalidPoint { at: Position, error: PointError },
}

impl ParseError {
    /// Where the error is.
    pub fn position(&self) -> Position {
        match self {
            ParseError::NotAPoint { at }
            | ParseError::MissingMeasurement { at }
            | ParseError::MissingTagKey { at }
            | ParseError::TagWithoutValue { at, .. }
            | ParseError::EmptyTagValue { at, .. }
            | ParseError::UnescapedEquals { at, .. }
            | ParseError::DuplicateTag { at, .. }
            | ParseError::MissingFields { at }
            | ParseError::MissingFieldKey { at }
            | ParseError::FieldWithoutValue { at, .. }
            | ParseError::EmptyFieldValue { at, .. }
            | ParseError::InvalidFieldValue { at, .. }
            | ParseError::NumberOutOfRange { at, .. }
            | ParseError::UnterminatedString { at, .. }
            | ParseError::AfterString { at, .. }
            | ParseError::DuplicateField { at, .. }
            | ParseError::InvalidTimestamp { at, .. }
            | ParseError::TimestampOutOfRange { at, .. }
            | ParseError::TrailingGarbage { at, .. }
            | ParseError::Newline { at }
            | ParseError::InvalidPoint { at, .. } => *at,
        }
    }
}

/// Parse one line of line protocol. Timestamps are read at `precision` and stored as
/// nanoseconds. One trailing `\n` (or `\r\n`) is allowed, so the output of
/// [`encode`](super::encode) parses as it is; any other newline outside a string value
/// is an error.
pub fn parse_line(line: &str, precision: Precision) -> Result<Point, ParseError> {
    let mut p = Parser::new(line, 0, 1, precision);
    if p.is_blank_or_comment() {
        return Err(ParseError::NotAPoint { at: p.at(0) });
    }
    let point = p.point().map_err(|(e, _)| e)?;
    // `point()` stops at the end of the text or at a line end outside strings.
    let end = p.pos;
    let rest = p.bytes.get(end..).unwrap_or_default();
    if !(rest.is_empty() || rest == b"\n" || rest == b"\r\n") {
        return Err(ParseError::Newline { at: p.at(end) });
    }
    Ok(point)
}

/// Parse every point of `text`, one per line, skipping blank lines and `#` comments.
///
/// Yields the 1-based line number where each point starts with its result; after an
/// error, parsing resumes on the next line. A string field value may span lines.
pub fn parse_lines(
    text: &str,
    precision: Precision,
) -> impl Iterator<Item = (usize, Result<Point, ParseError>)> + '_ {
    Lines {
        text,
        pos: 0,
        line: 1,
        precision,
    }
}

struct Lines<'a> {
    text: &'a str,
    /// Start of the next physical line.
    pos: usize,
    /// Its 1-based number.
    line: usize,
    precision: Precision,
}

impl Lines<'_> {
    /// Move to the start of the line after the first `\n` at or after `from`.
    fn skip_past_newline(&mut self, from: usize) {
        let bytes = self.text.as_bytes();
        let from = from.max(self.pos).min(bytes.len());
        let end = bytes
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map_or(bytes.len(), |i| from + i + 1);
        self.line += count_newlines(bytes.get(self.pos..end).unwrap_or_default());
        self.pos = end;
    }
}

impl Iterator for Lines<'_> {
    type Item = (usize, Result<Point, ParseError>);

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.text.len() {
            let line = self.line;
            let mut p = Parser::new(self.text, self.pos, line, self.precision);
            if p.is_blank_or_comment() {
                self.skip_past_newline(self.pos);
                continue;
            }
            return Some(match p.point() {
                Ok(point) => {
                    self.skip_past_newline(p.pos);
                    (line, Ok(point))
                }
                Err((e, resume)) => {
                    self.skip_past_newline(resume);
                    (line, Err(e))
                }
            });
        }
        None
    }
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// How a name ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// At an unescaped `,`, space or `=` (left unconsumed).
    At(u8),
    /// At the end of the line.
    Eol,
}

/// An error and the byte offset to resume after (the rest of that line is skipped).
type Failure = (ParseError, usize);

/// Longest value quoted back in an error message, in characters.
const MAX_QUOTED: usize = 40;

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Start of the physical line the point starts on, and its number.
    line_start: usize,
    line_no: usize,
    precision: Precision,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, start: usize, line_no: usize, precision: Precision) -> Self {
        Parser {
            bytes: text.as_bytes(),
            pos: start,
            line_start: start,
            line_no,
            precision,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// End of line at `i`: end of text, `\n`, or the `\r` of `\r\n`.
    fn is_eol_at(&self, i: usize) -> bool {
        match self.bytes.get(i) {
            None | Some(b'\n') => true,
            Some(b'\r') => self.bytes.get(i + 1) == Some(&b'\n'),
            Some(_) => false,
        }
    }

    fn is_eol(&self) -> bool {
        self.is_eol_at(self.pos)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Whether the line from `pos` is only spaces and tabs, or a `#` comment (after
    /// spaces only: a tab can start a measurement name).
    fn is_blank_or_comment(&self) -> bool {
        let mut i = self.pos;
        while self.bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        if self.bytes.get(i) == Some(&b'#') {
            return true;
        }
        while matches!(self.bytes.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        self.is_eol_at(i)
    }

    /// Line and column of byte offset `offset`.
    fn at(&self, offset: usize) -> Position {
        let offset = offset.min(self.bytes.len());
        let before = self.bytes.get(self.line_start..offset).unwrap_or_default();
        let (line, col_start) = match before.iter().rposition(|&b| b == b'\n') {
            Some(i) => (self.line_no + count_newlines(before), i + 1),
            None => (self.line_no, 0),
        };
        let in_line = before.get(col_start..).unwrap_or_default();
        // Count characters: every byte that does not continue a UTF-8 sequence.
        let column = in_line.iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1;
        Position { line, column }
    }

    /// Text of `start..end` for an error message, shortened if long.
    fn quote(&self, start: usize, end: usize) -> String {
        let raw = String::from_utf8_lossy(self.bytes.get(start..end).unwrap_or_default());
        if raw.chars().count() <= MAX_QUOTED {
            raw.into_owned()
        } else {
            let mut s: String = raw.chars().take(MAX_QUOTED).collect();
            s.push('…');
            s
        }
    }

    /// Parse one point from `pos`, leaving `pos` at its line end. On error, also returns
    /// where to resume.
    fn point(&mut self) -> Result<Point, Failure> {
        self.skip_spaces();
        let point_start = self.pos;

        // Measurement.
        let (measurement, mut end) = self.name(Escapes::Measurement);
        if measurement.is_empty() {
            return Err(self.fail_at(point_start, |at| ParseError::MissingMeasurement { at }));
        }

        // Tag set.
        let mut tags = BTreeMap::new();
        while end == End::At(b',') {
            self.pos += 1;
            let key_start = self.pos;
            let (key, key_end) = self.name(Escapes::Key);
            if key.is_empty() {
                return Err(self.fail_at(key_start, |at| ParseError::MissingTagKey { at }));
            }
            if key_end != End::At(b'=') {
                return Err(self.fail_at(key_start, |at| ParseError::TagWithoutValue { at, key }));
            }
            self.pos += 1;
            let value_start = self.pos;
            let (value, value_end) = self.name(Escapes::Key);
            if value_end == End::At(b'=') {
                let at_eq = self.pos;
                return Err(self.fail_at(at_eq, |at| ParseError::UnescapedEquals { at, key }));
            }
            if value.is_empty() {
                return Err(self.fail_at(value_start, |at| ParseError::EmptyTagValue { at, key }));
            }
            match tags.entry(key) {
                Entry::Occupied(e) => {
                    let key = e.key().clone();
                    return Err(self.fail_at(key_start, |at| ParseError::DuplicateTag { at, key }));
                }
                Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
            end = value_end;
        }

        // Field set.
        if end == End::Eol {
            let here = self.pos;
            return Err(self.fail_at(here, |at| ParseError::MissingFields { at }));
        }
        self.skip_spaces();
        if self.is_eol() {
            let here = self.pos;
            return Err(self.fail_at(here, |at| ParseError::MissingFields { at }));
        }
        let mut fields = BTreeMap::new();
        loop {
            let key_start = self.pos;
            let (key, key_end) = self.name(Escapes::Key);
            if key.is_empty() {
                return Err(self.fail_at(key_start, |at| ParseError::MissingFieldKey { at }));
            }
            if key_end != End::At(b'=') {
                return Err(self.fail_at(key_start, |at| ParseError::FieldWithoutValue { at, key }));
            }
            self.pos += 1;
            let value = self.field_value(&key)?;
            match fields.entry(key) {
                Entry::Occupied(e) => {
                    let key = e.key().clone();
                    return Err(
                        self.fail_at(key_start, |at| ParseError::DuplicateField { at, key })
                    );
                }
                Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
            if self.peek() == Some(b',') {
                self.pos += 1;
            } else {
                break;
            }
        }

        // Timestamp.
        self.skip_spaces();
        let timestamp = if self.is_eol() {
            None
        } else {
            Some(self.timestamp()?)
        };
        self.skip_spaces();
        if !self.is_eol() {
            let start = self.pos;
            let mut end = start;
            while !self.is_eol_at(end) {
                end += 1;
            }
            let text = self.quote(start, end);
            return Err(self.fail_at(start, |at| ParseError::TrailingGarbage { at, text }));
        }

        let mut builder = Point::builder(measurement);
        for (k, v) in tags {
            builder = builder.tag(k, v);
        }
        for (k, v) in fields {
            builder = builder.field(k, v);
        }
        if let Some(ts) = timestamp {
            builder = builder.timestamp(ts);
        }
        builder.build().map_err(|error| {
            (
                ParseError::InvalidPoint {
                    at: self.at(point_start),
                    error,
                },
                self.pos,
            )
        })
    }

    /// An error at byte offset `offset`; resume after the line containing it.
    fn fail_at(&self, offset: usize, make: impl FnOnce(Position) -> ParseError) -> Failure {
        (make(self.at(offset)), offset)
    }

    /// Read a measurement, tag key, tag value or field key, undoing the escapes; stops
    /// at an unescaped escapable character (unconsumed) or at the line end.
    fn name(&mut self, escapes: Escapes) -> (String, End) {
        let name_start = self.pos;
        let mut out: Vec<u8> = Vec::new();
        // Start of the bytes not yet copied to `out`.
        let mut copied = self.pos;
        let end = loop {
            let b = match self.peek() {
                Some(b) if !self.is_eol() => b,
                _ => break End::Eol,
            };
            if b == b'\\' {
                let run_start = self.pos;
                while self.peek() == Some(b'\\') {
                    self.pos += 1;
                }
                let run = self.pos - run_start;
                let next = if self.is_eol() { None } else { self.peek() };
                let leading_hash = escapes == Escapes::Measurement
                    && run_start == name_start
                    && next == Some(b'#')
                    && run % 2 == 1;
                match next {
                    Some(c) if escapes.is_escaped(c) || leading_hash => {
                        out.extend_from_slice(
                            self.bytes.get(copied..run_start).unwrap_or_default(),
                        );
                        out.resize(out.len() + run / 2, b'\\');
                        if run % 2 == 1 {
                            // Escaped: the character is part of the name.
                            out.push(c);
                            self.pos += 1;
                            copied = self.pos;
                        } else {
                            // The backslashes were escaped; `c` ends the name.
                            copied = self.pos;
                            break End::At(c);
                        }
                    }
                    // Before anything else (or the line end) a run is literal.
                    _ => {}
                }
            } else if escapes.is_escaped(b) {
                break End::At(b);
            } else {
                self.pos += 1;
            }
        };
        out.extend_from_slice(self.bytes.get(copied..self.pos).unwrap_or_default());
        // Only ASCII bytes were dropped or inserted, so this is still UTF-8.
        let name = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        (name, end)
    }

    /// Read a field value after `key=`; leaves `pos` at the `,`, space or line end
    /// after it.
    fn field_value(&mut self, key: &str) -> Result<FieldValue, Failure> {
        let start = self.pos;
        if self.peek() == Some(b'"') {
            return self.string_value(key);
        }
        while !self.is_eol() && !matches!(self.peek(), Some(b',' | b' ')) {
            self.pos += 1;
        }
        let token = self.bytes.get(start..self.pos).unwrap_or_default();
        if token.is_empty() {
            let key = key.to_owned();
            return Err(self.fail_at(start, |at| ParseError::EmptyFieldValue { at, key }));
        }
        let invalid = |p: &Self| {
            let (key, value) = (key.to_owned(), p.quote(start, p.pos));
            p.fail_at(start, |at| ParseError::InvalidFieldValue { at, key, value })
        };
        let out_of_range = |p: &Self| {
            let (key, value) = (key.to_owned(), p.quote(start, p.pos));
            p.fail_at(start, |at| ParseError::NumberOutOfRange { at, key, value })
        };
        // Every byte checked below is ASCII, so these slices are valid UTF-8.
        let text = std::str::from_utf8(token).map_err(|_| invalid(self))?;
        match text {
            "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Boolean(true)),
            "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Boolean(false)),
            _ => {}
        }
        if let Some(digits) = text.strip_suffix('i') {
            if !is_integer(digits, true) {
                return Err(invalid(self));
            }
            return digits
                .parse::<i64>()
                .map(FieldValue::Integer)
                .map_err(|_| out_of_range(self));
        }
        if let Some(digits) = text.strip_suffix('u') {
            if !is_integer(digits, false) {
                return Err(invalid(self));
            }
            return digits
                .parse::<u64>()
                .map(FieldValue::UInteger)
                .map_err(|_| out_of_range(self));
        }
        if !is_float(text) {
            return Err(invalid(self));
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(FieldValue::Float(v)),
            Ok(_) => Err(out_of_range(self)),
            Err(_) => Err(invalid(self)),
        }
    }

    /// Read a `"…"` value: `\"` and `\\` are unescaped, any other backslash is literal.
    fn string_value(&mut self, key: &str) -> Result<FieldValue, Failure> {
        let open = self.pos;
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        let mut copied = self.pos;
        loop {
            match self.peek() {
                None => {
                    let key = key.to_owned();
                    return Err(self.fail_at(open, |at| ParseError::UnterminatedString { at, key }));
                }
                Some(b'"') => break,
                Some(b'\\') => match self.bytes.get(self.pos + 1) {
                    Some(&c @ (b'"' | b'\\')) => {
                        out.extend_from_slice(self.bytes.get(copied..self.pos).unwrap_or_default());
                        out.push(c);
                        self.pos += 2;
                        copied = self.pos;
                    }
                    _ => self.pos += 1,
                },
                Some(_) => self.pos += 1,
            }
        }
        out.extend_from_slice(self.bytes.get(copied..self.pos).unwrap_or_default());
        self.pos += 1; // closing quote
        if !self.is_eol() && !matches!(self.peek(), Some(b',' | b' ')) {
            let start = self.pos;
            let mut end = start;
            while !self.is_eol_at(end) && !matches!(self.bytes.get(end), Some(b',' | b' ')) {
                end += 1;
            }
            let (key, text) = (key.to_owned(), self.quote(start, end));
            return Err(self.fail_at(start, |at| ParseError::AfterString { at, key, text }));
        }
        // Only ASCII bytes were dropped, so this is still UTF-8.
        let s = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(FieldValue::String(s))
    }

    /// Read the timestamp at `pos` and convert it to nanoseconds.
    fn timestamp(&mut self) -> Result<i64, Failure> {
        let start = self.pos;
        while !self.is_eol() && self.peek() != Some(b' ') {
            self.pos += 1;
        }
        let token = self.bytes.get(start..self.pos).unwrap_or_default();
        let value = self.quote(start, self.pos);
        let text = std::str::from_utf8(token).unwrap_or_default();
        if !is_integer(text, true) {
            return Err(self.fail_at(start, |at| ParseError::InvalidTimestamp { at, value }));
        }
        let precision = self.precision;
        text.parse::<i64>()
            .ok()
            .and_then(|units| units.checked_mul(precision.nanos_per_unit()))
            .ok_or_else(|| {
                self.fail_at(start, |at| ParseError::TimestampOutOfRange {
                    at,
                    value,
                    precision,
                })
            })
    }
}

/// `-?[0-9]+` (the sign only if `signed`).
fn is_integer(s: &str, signed: bool) -> bool {
    let digits = match s.strip_prefix('-') {
        Some(rest) if signed => rest,
        _ => s,
    };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `-?(digits[.digits?] | .digits)([eE][+-]?digits)?`
fn is_float(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    let digits = |from: usize| {
        b.iter()
            .skip(from)
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let int = digits(0);
    let mut i = int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        frac = digits(i + 1);
        i += 1 + frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineproto::encode;
    use proptest::prelude::*;

    /// Parses `input` at nanosecond precision; compares the point, or the error message.
    fn check(input: &str, expected: Result<Point, &str>) {
        check_at(input, Precision::Nanoseconds, expected);
    }

    fn check_at(input: &str, precision: Precision, expected: Result<Point, &str>) {
        let got = parse_line(input, precision).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "input: {input:?}");
    }

    fn point(b: crate::point::PointBuilder) -> Result<Point, &'static str> {
        Ok(b.build().unwrap())
    }

    #[test]
    fn valid_lines() {
        let m = Point::builder;
        check("m f=1", point(m("m").field("f", 1.0)));
        check("m f=1\n", point(m("m").field("f", 1.0)));
        check("m f=1\r\n", point(m("m").field("f", 1.0)));
        check(
            "cpu,host=a,dc=x usage=0.5,n=3i,u=7u,ok=true,s=\"hi\" 1700000000000000000",
            point(
                m("cpu")
                    .tag("host", "a")
                    .tag("dc", "x")
                    .field("usage", 0.5)
                    .field("n", 3i64)
                    .field("u", 7u64)
                    .field("ok", true)
                    .field("s", "hi")
                    .timestamp(1_700_000_000_000_000_000),
            ),
        );
        // Leniencies InfluxDB has too.
        check(
            "  m   f=1   5  ",
            point(m("m").field("f", 1.0).timestamp(5)),
        );
        check(
            "m b=t,c=F,d=True,e=FALSE",
            point(
                m("m")
                    .field("b", true)
                    .field("c", false)
                    .field("d", true)
                    .field("e", false),
            ),
        );
        check(
            "m a=1.,b=.5,c=1E+10,d=-2e-3,e=-0",
            point(
                m("m")
                    .field("a", 1.0)
                    .field("b", 0.5)
                    .field("c", 1e10)
                    .field("d", -2e-3)
                    .field("e", -0.0),
            ),
        );
        check(
            "m i=-9223372036854775808i,u=18446744073709551615u",
            point(m("m").field("i", i64::MIN).field("u", u64::MAX)),
        );
        check("m f=1 -5", point(m("m").field("f", 1.0).timestamp(-5)));
        // Escapes.
        check(
            r"a\,b\ c,k\=1=v\,2 f\ 1=1",
            point(m("a,b c").tag("k=1", "v,2").field("f 1", 1.0)),
        );
        check(
            r"m,t=C:\Windows f=1",
            point(m("m").tag("t", r"C:\Windows").field("f", 1.0)),
        );
        // Backslashes InfluxDB 1.x cannot read back faithfully, and a leading `#`,
        // parse but are refused by the point builder (see point.rs).
        for (line, refused) in [
            (r"m,t=a\\ f=1", r"a\"),
            (r"m,t=a\\\ b f=1", r"a\ b"),
            (r"m\= f=1", r"m\="),
        ] {
            let err = parse_line(line, Precision::Nanoseconds)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("{refused:?} has a backslash")),
                "{line}: {err}"
            );
        }
        let err = parse_line(r"\#m f=1", Precision::Nanoseconds)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reads as a comment"), "{err}");
        check(r#"m s="a\"b\\c\d""#, point(m("m").field("s", r#"a"b\c\d"#)));
        check("m s=\"two\nlines\"", point(m("m").field("s", "two\nlines")));
        check(
            "m s=\"a,b c=d\" 1",
            point(m("m").field("s", "a,b c=d").timestamp(1)),
        );
        // Unicode.
        check(
            "température,hôte=サーバー\\ 1 値=\"ü\"",
            point(m("température").tag("hôte", "サーバー 1").field("値", "ü")),
        );
    }

    #[test]
    fn timestamp_precision() {
        let p = |ts| point(Point::builder("m").field("f", 1.0).timestamp(ts));
        check_at("m f=1 3", Precision::Seconds, p(3_000_000_000));
        check_at("m f=1 3", Precision::Milliseconds, p(3_000_000));
        check_at("m f=1 -3", Precision::Microseconds, p(-3_000));
        check_at("m f=1 3", Precision::Nanoseconds, p(3));
        check_at(
            "m f=1 9223372036",
            Precision::Seconds,
            p(9_223_372_036_000_000_000),
        );
        check_at(
            "m f=1 9223372037",
            Precision::Seconds,
            Err("line 1, column 7: timestamp `9223372037` (precision s) is out of range for 64-bit nanoseconds"),
        );
        check_at(
            "m f=1 -9223372036854776",
            Precision::Milliseconds,
            Err("line 1, column 7: timestamp `-9223372036854776` (precision ms) is out of range for 64-bit nanoseconds"),
        );
    }

    #[test]
    fn errors() {
        check(
            "",
            Err("line 1, column 1: the line is blank or a comment, not a point"),
        );
        check(
            "   ",
            Err("line 1, column 1: the line is blank or a comment, not a point"),
        );
        check(
            "# cpu f=1",
            Err("line 1, column 1: the line is blank or a comment, not a point"),
        );
        check(
            ",t=v f=1",
            Err("line 1, column 1: missing measurement name"),
        );
        check(" f=1", Err("line 1, column 5: missing fields; a point needs at least one `key=value` field after the measurement and tags"));
        check("cpu", Err("line 1, column 4: missing fields; a point needs at least one `key=value` field after the measurement and tags"));
        check("cpu ", Err("line 1, column 5: missing fields; a point needs at least one `key=value` field after the measurement and tags"));
        check("cpu,host=a", Err("line 1, column 11: missing fields; a point needs at least one `key=value` field after the measurement and tags"));
        check("m,=v f=1", Err("line 1, column 3: missing tag key"));
        check("m, f=1", Err("line 1, column 3: missing tag key"));
        check("m,t f=1", Err("line 1, column 3: tag `t` has no `=value`"));
        check(
            "m,t,u=v f=1",
            Err("line 1, column 3: tag `t` has no `=value`"),
        );
        check(
            "m,t= f=1",
            Err("line 1, column 5: tag `t` has an empty value"),
        );
        check(
            "m,t=a=b f=1",
            Err("line 1, column 6: tag `t` has an unescaped `=` in its value"),
        );
        check(
            "m,t=a,t=b f=1",
            Err("line 1, column 7: tag `t` appears twice"),
        );
        check("m =1", Err("line 1, column 3: missing field key"));
        check("m f=1,=2", Err("line 1, column 7: missing field key"));
        check("m f", Err("line 1, column 3: field `f` has no `=value`"));
        check("m f 1", Err("line 1, column 3: field `f` has no `=value`"));
        check(
            "m f=",
            Err("line 1, column 5: field `f` has an empty value"),
        );
        check(
            "m f=,g=1",
            Err("line 1, column 5: field `f` has an empty value"),
        );
        check("m f=1,", Err("line 1, column 7: missing field key"));
        check(
            "m usage=1.2.3",
            Err("line 1, column 9: field `usage` has invalid value `1.2.3`"),
        );
        check(
            "m f=abc",
            Err("line 1, column 5: field `f` has invalid value `abc`"),
        );
        check(
            "m f=NaN",
            Err("line 1, column 5: field `f` has invalid value `NaN`"),
        );
        check(
            "m f=inf",
            Err("line 1, column 5: field `f` has invalid value `inf`"),
        );
        check(
            "m f=+1",
            Err("line 1, column 5: field `f` has invalid value `+1`"),
        );
        check(
            "m f=1e",
            Err("line 1, column 5: field `f` has invalid value `1e`"),
        );
        check(
            "m f=.",
            Err("line 1, column 5: field `f` has invalid value `.`"),
        );
        check(
            "m f=i",
            Err("line 1, column 5: field `f` has invalid value `i`"),
        );
        check(
            "m f=1.5i",
            Err("line 1, column 5: field `f` has invalid value `1.5i`"),
        );
        check(
            "m f=-1u",
            Err("line 1, column 5: field `f` has invalid value `-1u`"),
        );
        check(
            "m f=1e999",
            Err("line 1, column 5: field `f` value `1e999` is out of range for its type"),
        );
        check("m f=9223372036854775808i", Err("line 1, column 5: field `f` value `9223372036854775808i` is out of range for its type"));
        check("m f=-9223372036854775809i", Err("line 1, column 5: field `f` value `-9223372036854775809i` is out of range for its type"));
        check("m f=18446744073709551616u", Err("line 1, column 5: field `f` value `18446744073709551616u` is out of range for its type"));
        check(
            "m s=\"abc",
            Err("line 1, column 5: string field `s` has no closing quote"),
        );
        check(
            r#"m s="abc\""#,
            Err("line 1, column 5: string field `s` has no closing quote"),
        );
        check(
            r#"m s="a"b"#,
            Err("line 1, column 8: field `s` has `b` after its closing quote"),
        );
        check(
            "m f=1,f=2",
            Err("line 1, column 7: field `f` appears twice"),
        );
        check(
            "m f=1 12x",
            Err("line 1, column 7: timestamp `12x` is not an integer"),
        );
        check(
            "m f=1 1.5",
            Err("line 1, column 7: timestamp `1.5` is not an integer"),
        );
        check(
            "m f=1 -",
            Err("line 1, column 7: timestamp `-` is not an integer"),
        );
        check("m f=1 99999999999999999999", Err("line 1, column 7: timestamp `99999999999999999999` (precision ns) is out of range for 64-bit nanoseconds"));
        check(
            "m f=1 1 2",
            Err("line 1, column 9: unexpected `2` after the timestamp"),
        );
        check(
            "m f=1 1 extra stuff",
            Err("line 1, column 9: unexpected `extra stuff` after the timestamp"),
        );
        check("m f=1\nm f=2", Err("line 1, column 6: unexpected newline; a point is one line (newlines may only appear inside string field values)"));
        check("m f=1\n\n", Err("line 1, column 6: unexpected newline; a point is one line (newlines may only appear inside string field values)"));
        check("m,t=a\nb f=1", Err("line 1, column 6: missing fields; a point needs at least one `key=value` field after the measurement and tags"));
        // Rules of the point builder.
        check(
            "m time=1",
            Err("line 1, column 1: field key `time` is reserved by InfluxDB"),
        );
        check(
            "m,t=a\rb f=1",
            Err("line 1, column 1: tag value \"a\\rb\" contains a newline or carriage return"),
        );
        // Columns count characters, and lines continue through string values.
        check(
            "é,t=ü f=x",
            Err("line 1, column 9: field `f` has invalid value `x`"),
        );
        check(
            "m s=\"a\nbc\",f=x",
            Err("line 2, column 7: field `f` has invalid value `x`"),
        );
        // Long values are shortened in messages.
        check(
            &format!("m f={}", "x".repeat(100)),
            Err("line 1, column 5: field `f` has invalid value `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…`"),
        );
    }

    #[test]
    fn error_positions() {
        let e = parse_line("m f=1 x", Precision::Nanoseconds).unwrap_err();
        assert_eq!(e.position(), Position { line: 1, column: 7 });
    }

    #[test]
    fn lines_skip_blanks_and_comments_and_resume_after_errors() {
        let text = "# header\n\ncpu f=1 1\n \t \nbad\ncpu f=2 2\r\n  # indented comment\ncpu s=\"multi\nline\" 3\ncpu f=x\ncpu f=4";
        let got: Vec<(usize, Result<Point, String>)> = parse_lines(text, Precision::Nanoseconds)
            .map(|(n, r)| (n, r.map_err(|e| e.to_string())))
            .collect();
        let p = |f: FieldValue, ts: Option<i64>| {
            let b = Point::builder("cpu").field(
                if matches!(f, FieldValue::String(_)) {
                    "s"
                } else {
                    "f"
                },
                f,
            );
            Ok(match ts {
                Some(ts) => b.timestamp(ts),
                None => b,
            }
            .build()
            .unwrap())
        };
        assert_eq!(
            got,
            vec![
                (3, p(FieldValue::Float(1.0), Some(1))),
                (5, Err("line 5, column 4: missing fields; a point needs at least one `key=value` field after the measurement and tags".to_owned())),
                (6, p(FieldValue::Float(2.0), Some(2))),
                (8, p(FieldValue::String("multi\nline".into()), Some(3))),
                (10, Err("line 10, column 7: field `f` has invalid value `x`".to_owned())),
                (11, p(FieldValue::Float(4.0), None)),
            ]
        );
    }

    #[test]
    fn unterminated_string_resumes_on_next_line() {
        let got: Vec<usize> = parse_lines("m s=\"oops\nm f=1\n", Precision::Nanoseconds)
            .map(|(n, r)| {
                assert_eq!(r.is_ok(), n == 2, "line {n}: {r:?}");
                n
            })
            .collect();
        assert_eq!(got, vec![1, 2]);
    }

    fn encode_line(point: &Point, precision: Precision) -> String {
        let mut buf = Vec::new();
        encode(point, precision, &mut buf);
        String::from_utf8(buf).unwrap()
    }

    /// Strings made mostly of the characters line protocol treats specially.
    fn tricky_string() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => prop::sample::select(vec![
                "\\", "\\", ",", " ", "=", "\"", "#", "a", "z", "é", "サ", "🦀", "\t", "i", "1", ".", "-",
            ])
            .prop_map(str::to_owned),
            1 => "[^\n\r]{0,3}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    fn non_empty(s: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
        s.prop_filter("names are not empty", |s| !s.is_empty())
    }

    fn field_value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(FieldValue::Float),
            any::<i64>().prop_map(FieldValue::Integer),
            any::<u64>().prop_map(FieldValue::UInteger),
            any::<bool>().prop_map(FieldValue::Boolean),
            // String values may also hold newlines.
            prop_oneof![tricky_string(), "\\PC*", "[\n\r\"\\\\a]{0,8}"]
                .prop_map(FieldValue::String),
        ]
    }

    fn arb_point() -> impl Strategy<Value = Point> {
        (
            non_empty(tricky_string()),
            prop::collection::vec(
                (non_empty(tricky_string()), non_empty(tricky_string())),
                0..4,
            ),
            prop::collection::vec((non_empty(tricky_string()), field_value()), 1..5),
            prop::option::of(any::<i64>()),
        )
            .prop_filter_map("builder refuses reserved keys", |(m, tags, fields, ts)| {
                let mut b = Point::builder(m);
                for (k, v) in tags {
                    b = b.tag(k, v);
                }
                for (k, v) in fields {
                    b = b.field(k, v);
                }
                if let Some(ts) = ts {
                    b = b.timestamp(ts);
                }
                b.build().ok()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn encode_then_parse_is_identity(p in arb_point()) {
            let line = encode_line(&p, Precision::Nanoseconds);
            let parsed = parse_line(&line, Precision::Nanoseconds);
            prop_assert_eq!(parsed.as_ref(), Ok(&p), "line: {:?}", line);
            // Compare floats bit for bit too (== treats -0 and 0 alike).
            if let Ok(parsed) = parsed {
                for (k, v) in p.fields() {
                    if let (FieldValue::Float(a), Some(FieldValue::Float(b))) = (v, parsed.field(k)) {
                        prop_assert_eq!(a.to_bits(), b.to_bits());
                    }
                }
            }
            // And through parse_lines, several at once.
            let text = format!("{line}{line}");
            let all: Vec<_> = parse_lines(&text, Precision::Nanoseconds).collect();
            prop_assert_eq!(all.len(), 2);
            for (_, r) in all {
                prop_assert_eq!(r, Ok(p.clone()));
            }
        }

        #[test]
        fn coarser_precision_floors(ts in any::<i64>(), pi in 0usize..4) {
            let precision = Precision::ALL[pi];
            let p = Point::builder("m").field("f", 1i64).timestamp(ts).build().unwrap();
            let parsed = parse_line(&encode_line(&p, precision), precision);
            let unit = precision.nanos_per_unit();
            match ts.div_euclid(unit).checked_mul(unit) {
                Some(floored) => prop_assert_eq!(parsed.unwrap().timestamp(), Some(floored)),
                // Flooring the last second before i64::MIN leaves the i64 range.
                None => prop_assert!(
                    matches!(parsed, Err(ParseError::TimestampOutOfRange { .. })),
                    "{:?}",
                    parsed
                ),
            }
        }

        #[test]
        fn parse_line_never_panics(s in "\\PC*") {
            let _ = parse_line(&s, Precision::Seconds);
        }

        #[test]
        fn parse_never_panics_on_tricky_text(parts in prop::collection::vec(
            prop::sample::select(vec!["m", ",", " ", "=", "\\", "\"", "\n", "\r", "#", "1", "-", "i", "u", ".", "e", "t", "é"]),
            0..40,
        )) {
            let s = parts.concat();
            let _ = parse_line(&s, Precision::Nanoseconds);
            for (_, r) in parse_lines(&s, Precision::Milliseconds) {
                let _ = r.map(|p| p.to_string());
            }
        }

        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_line(&s, Precision::Nanoseconds);
            let _ = parse_lines(&s, Precision::Nanoseconds).count();
        }
    }
}
