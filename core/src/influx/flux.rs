//! The Flux dialect: renders the typed query model ([`super::query`]) to Flux for
//! InfluxDB 2's `/api/v2/query`, and parses the annotated CSV it answers with.
//!
//! No InfluxDB 2 server runs in this project's test environment; these tests check the
//! rendered Flux text and parse bodies in the annotated-CSV format InfluxDB 2 returns.
//!
//! # Rendering
//!
//! Every piece of user input reaches the Flux text through [`string_literal`]; times,
//! durations and quantiles are numbers this module formats itself. The shapes follow
//! the InfluxQL dialect (`GROUP BY time(every), "tag"… fill(null)`):
//!
//! ```text
//! from(bucket: "telegraf")
//!   |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
//!   |> filter(fn: (r) => r._measurement == "cpu" and r._field == "usage_user" and r["host"] == "web-1")
//!   |> group(columns: ["_start", "_stop", "host"])
//!   |> sort(columns: ["_time"])
//!   |> aggregateWindow(every: 60000ms, fn: mean, timeSrc: "_start", createEmpty: true)
//! ```
//!
//! - `group` always runs, so an empty `group_by` merges every matching series into one
//!   (InfluxQL without `GROUP BY` tags). `_start` and `_stop` stay in the group key: they
//!   are the same for every row, so they split nothing, and an aggregate without a
//!   window keeps `_start`, which becomes the point's time (InfluxQL reports the range
//!   start too). `sort` puts the merged rows in time order for `last` and `rate`.
//! - With a window, `timeSrc: "_start"` stamps each window with its start, as InfluxQL
//!   does. Flux clips the first window to the range start while InfluxQL reports the
//!   epoch-aligned window start, so when the range start is not a multiple of `every`
//!   a `map` moves that one timestamp back to the aligned start.
//! - Empty windows are nulls (`createEmpty: true`), except for `rate`, which takes the
//!   last value of every non-empty window (`createEmpty: false`) and then
//!   `derivative(unit: 1s, nonNegative: true)`; the nulls `derivative` writes where a
//!   counter went down are dropped, as InfluxQL's `NON_NEGATIVE_DERIVATIVE` drops them.
//!   A rate series therefore has no `None` points.
//! - `count` of an empty window is 0 (Flux counts the rows of an empty table), as in
//!   InfluxQL. The selectors (`max`, `min`, `last`, `pNN`) give null windows only on
//!   Flux releases since mid-2021 (flux#3733 made `aggregateWindow` fill the empty
//!   windows a selector drops); older InfluxDB 2.0 servers leave those windows out.
//! - `pNN` is `quantile(method: "exact_selector")`: the value of rank `ceil(n·p/100)`.
//!   InfluxQL's `percentile` takes rank `floor(n·p/100 + 0.5)` and has no value when
//!   that is 0, so on small windows the two can pick neighbouring values.
//! - A tag filter with an empty value matches series without that tag (InfluxDB never
//!   stores an empty tag value; InfluxQL's `"tag" = ''` means the same).
//!
//! # Parsing
//!
//! The request must ask for the `datatype`, `group` and `default` annotations (the
//! client's `/api/v2/query` body does); without `#group` the tags of a table cannot be
//! known, and the parser says so. Each `(result, table)` pair is one [`Series`]; its tags are the
//! group-key columns other than InfluxDB's own (`_start`, `_stop`, `_time`, `_value`,
//! `_measurement`, `_field`). A table without rows yields no series, as InfluxQL never
//! returns a series without points.

use std::collections::{BTreeMap, HashMap};

use crate::calendar::{civil_from_days, days_from_civil};

use super::query::{
    check_name, Aggregate, Every, FieldData, FieldKey, FieldKeysQuery, FieldKind, LastQuery,
    QueryError, Row, RowSelect, RowsQuery, Series, SeriesQuery, TagValuesQuery,
};

/// Columns InfluxDB 2 puts in tables itself. They are never reported as tags, and the
/// Flux dialect refuses them as `group_by` keys.
const RESERVED_COLUMNS: [&str; 6] = [
    "_start",
    "_stop",
    "_time",
    "_value",
    "_measurement",
    "_field",
];

/// The earliest and latest instants, in ms, that Flux can represent (its times are
/// signed 64-bit nanoseconds since the epoch: 1677-09-21 to 2262-04-11).
const MIN_MS: i64 = i64::MIN / 1_000_000;
const MAX_MS: i64 = i64::MAX / 1_000_000;

/// How much of an unreadable error body goes into a message.
const ERROR_BODY_LIMIT: usize = 500;

// ---------------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------------

/// A Flux double-quoted string literal holding exactly `s`.
///
/// Escapes `\` as `\\`, `"` as `\"`, the interpolation opener `${` as `\${`, and newline,
/// carriage return and tab as `\n`, `\r`, `\t`. Every other character, including any
/// Unicode, stands for itself inside a Flux string.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `[a, b]` of string literals.
fn string_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(string_literal).collect();
    format!("[{}]", items.join(", "))
}

/// Range bounds outside the times Flux can represent are clamped to them, as the
/// InfluxQL dialect clamps to InfluxDB 1.x's limits.
fn clamp_time(ms: i64) -> i64 {
    ms.clamp(MIN_MS, MAX_MS)
}

/// An RFC 3339 time literal in UTC for `ms` since the epoch, with a fractional part only
/// when the time is not a whole second: `2024-01-01T00:00:00Z`, `…00:00:00.250Z`.
fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let second_of_day = secs.rem_euclid(86_400);
    let (h, m, s) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let frac = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{frac}Z")
}

/// A Flux duration literal for a window: `Every`'s own `<n>ms`.
fn duration_literal(every: Every) -> Result<String, QueryError> {
    // Flux durations are signed 64-bit nanoseconds.
    if every.as_millis() > MAX_MS.unsigned_abs() {
        return Err(QueryError::invalid(
            "every",
            format!("{every} is longer than InfluxDB can represent"),
        ));
    }
    Ok(every.to_string())
}

/// The Flux float literal for percentile `p` as a quantile, `p / 100`, computed on the
/// decimal text so that `p99.9` gives `0.999` and not `0.9990000000000001`.
fn quantile_literal(p: f64) -> String {
    // `Display` for f64 never uses an exponent, so this is `digits[.digits]`.
    let text = p.to_string();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let padded = format!("{int_part:0>3}");
    let split = padded.len() - 2;
    let (whole, hundredths) = padded.split_at(split);
    let whole = whole.trim_start_matches('0');
    let fraction = format!("{hundredths}{frac_part}");
    let fraction = fraction.trim_end_matches('0');
    format!(
        "{}.{}",
        if whole.is_empty() { "0" } else { whole },
        if fraction.is_empty() { "0" } else { fraction }
    )
}

// ---------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------

/// A Flux pipeline under construction, one `|>` per line.
struct Pipeline(String);

impl Pipeline {
    fn source(bucket: &str) -> Result<Self, QueryError> {
        check_name("bucket", bucket)?;
        Ok(Pipeline(format!(
            "from(bucket: {})",
            string_literal(bucket)
        )))
    }

    fn pipe(&mut self, op: &str) {
        self.0.push_str("\n  |> ");
        self.0.push_str(op);
    }

    fn range(&mut self, start_ms: i64, end_ms: i64) {
        let start = format_time(clamp_time(start_ms));
        let stop = format_time(clamp_time(end_ms));
        self.pipe(&format!("range(start: {start}, stop: {stop})"));
    }

    /// `filter` on the measurement, the field if any, and the tag equalities.
    fn filter(&mut self, measurement: &str, field: Option<&str>, tags: &BTreeMap<String, String>) {
        let mut terms = vec![format!("r._measurement == {}", string_literal(measurement))];
        if let Some(field) = field {
            terms.push(format!("r._field == {}", string_literal(field)));
        }
        for (key, value) in tags {
            if value.is_empty() {
                terms.push(format!("(not exists r[{}])", string_literal(key)));
            } else {
                terms.push(format!(
                    "r[{}] == {}",
                    string_literal(key),
                    string_literal(value)
                ));
            }
        }
        self.pipe(&format!("filter(fn: (r) => {})", terms.join(" and ")));
    }
}

/// The `filter` terms of tag equalities, as [`Pipeline::filter`] writes them.
fn tag_terms(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.iter()
        .map(|(key, value)| {
            if value.is_empty() {
                format!("(not exists r[{}])", string_literal(key))
            } else {
                format!("r[{}] == {}", string_literal(key), string_literal(value))
            }
        })
        .collect()
}

/// Renders a [`SeriesQuery`] against `bucket`.
///
/// Refuses what [`SeriesQuery::validate`] refuses, an empty bucket or one with control
/// characters, a window longer than Flux durations hold (about 292 years), and
/// `group_by` keys InfluxDB 2 reserves (`_start`, `_stop`, `_time`, `_value`,
/// `_measurement`, `_field`). Range bounds outside 1677-09-21..2262-04-11 are clamped.
pub fn series(bucket: &str, q: &SeriesQuery) -> Result<String, QueryError> {
    q.validate()?;
    let mut group_columns: Vec<&str> = vec!["_start", "_stop"];
    for key in &q.group_by {
        if RESERVED_COLUMNS.contains(&key.as_str()) {
            return Err(QueryError::invalid(
                "group_by",
                format!("{key:?} is a column InfluxDB 2 reserves, not a tag"),
            ));
        }
        if !group_columns.contains(&key.as_str()) {
            group_columns.push(key);
        }
    }

    let mut flux = Pipeline::source(bucket)?;
    flux.range(q.range.start_ms, q.range.end_ms);
    flux.filter(&q.measurement, Some(&q.field), &q.tags);
    flux.pipe(&format!("group(columns: {})", string_list(group_columns)));
    flux.pipe("sort(columns: [\"_time\"])");

    match (q.aggregate, q.every) {
        (None, None) => {}
        (None, Some(_)) => {
            // validate() refuses this; kept as an error rather than a panic.
            return Err(QueryError::invalid(
                "agg",
                "a window (every) needs an aggregate",
            ));
        }
        (Some(Aggregate::Rate), Some(every)) => {
            flux.pipe(&format!(
                "aggregateWindow(every: {}, fn: last, timeSrc: \"_start\", createEmpty: false)",
                duration_literal(every)?
            ));
            align_first_window(&mut flux, q.range.start_ms, every)?;
            flux.pipe("derivative(unit: 1s, nonNegative: true)");
            flux.pipe("filter(fn: (r) => exists r._value)");
        }
        (Some(aggregate), Some(every)) => {
            flux.pipe(&format!(
                "aggregateWindow(every: {}, fn: {}, timeSrc: \"_start\", createEmpty: true)",
                duration_literal(every)?,
                window_fn(aggregate)
            ));
            align_first_window(&mut flux, q.range.start_ms, every)?;
        }
        (Some(Aggregate::Rate), None) => {
            flux.pipe("derivative(unit: 1s, nonNegative: true)");
            flux.pipe("filter(fn: (r) => exists r._value)");
        }
        (Some(Aggregate::Percentile(p)), None) => {
            flux.pipe(&format!(
                "quantile(q: {}, method: \"exact_selector\")",
                quantile_literal(p)
            ));
        }
        (Some(aggregate), None) => flux.pipe(&format!("{aggregate}()")),
    }
    Ok(flux.0)
}

/// The `fn:` argument of `aggregateWindow` for an aggregate other than rate.
fn window_fn(aggregate: Aggregate) -> String {
    match aggregate {
        Aggregate::Percentile(p) => format!(
            "(column, tables=<-) => tables |> quantile(q: {}, method: \"exact_selector\", column: column)",
            quantile_literal(p)
        ),
        // mean, max, min, last, sum, count: Flux's functions of the same names.
        other => other.to_string(),
    }
}

/// Flux clips the first window to the range start; InfluxQL stamps it with the
/// epoch-aligned window start. When they differ, move that one timestamp back.
fn align_first_window(flux: &mut Pipeline, start_ms: i64, every: Every) -> Result<(), QueryError> {
    let every_ms = i64::try_from(every.as_millis())
        .map_err(|_| QueryError::invalid("every", "is too long"))?;
    let start_ms = clamp_time(start_ms);
    let aligned_ms = clamp_time(start_ms.div_euclid(every_ms) * every_ms);
    if aligned_ms != start_ms {
        flux.pipe(&format!(
            "map(fn: (r) => ({{r with _time: if r._time == {} then {} else r._time}}))",
            format_time(start_ms),
            format_time(aligned_ms)
        ));
    }
    Ok(())
}

/// Renders a [`TagValuesQuery`]: the distinct values of `q.key` among the series of the
/// measurement (and tag filters) with data in the range, in the `_value` column.
///
/// `last()` first reduces every series to one row (InfluxDB answers it from the storage
/// engine), so the cost grows with the number of series, not of points.
pub fn tag_values(bucket: &str, q: &TagValuesQuery) -> Result<String, QueryError> {
    q.validate()?;
    let key = string_literal(&q.key);
    let mut flux = Pipeline::source(bucket)?;
    flux.range(q.range.start_ms, q.range.end_ms);
    flux.filter(&q.measurement, None, &q.tags);
    flux.pipe("last()");
    flux.pipe(&format!("filter(fn: (r) => exists r[{key}])"));
    flux.pipe(&format!("keep(columns: [{key}])"));
    flux.pipe("group()");
    flux.pipe(&format!("distinct(column: {key})"));
    Ok(flux.0)
}

/// Renders a [`LastQuery`]: the last point of every series (every distinct tag set), each
/// its own table and so its own [`Series`].
pub fn last(bucket: &str, q: &LastQuery) -> Result<String, QueryError> {
    q.validate()?;
    let mut flux = Pipeline::source(bucket)?;
    flux.range(q.range.start_ms, q.range.end_ms);
    flux.filter(&q.measurement, Some(&q.field), &q.tags);
    flux.pipe("last()");
    Ok(flux.0)
}

/// Renders a [`RowsQuery`]: the fields of each series side by side, one row per time
/// (`pivot`), read with [`parse_rows`].
///
/// [`RowSelect::Last`] first reduces every field of every series to its last point
/// (`last()`, answered from the storage engine), so only those few points are pivoted;
/// the newest of the pivoted rows is the newest time at which any of the fields has a
/// value, holding the fields that have one then, as InfluxQL's
/// `ORDER BY time DESC LIMIT 1` does. [`RowSelect::All`] pivots every point in the
/// range and keeps the first `n` rows of each series. Fields named like InfluxDB 2's
/// own columns (`_time`, `_value`, …) are refused: they would collide after the pivot.
pub fn rows(bucket: &str, q: &RowsQuery) -> Result<String, QueryError> {
    q.validate()?;
    if let Some(f) = q
        .fields
        .iter()
        .find(|f| RESERVED_COLUMNS.contains(&f.as_str()))
    {
        return Err(QueryError::invalid(
            "fields",
            format!("{f:?} is a column InfluxDB 2 reserves"),
        ));
    }
    let mut flux = Pipeline::source(bucket)?;
    flux.range(q.range.start_ms, q.range.end_ms);
    let fields: Vec<String> = q
        .fields
        .iter()
        .map(|f| format!("r._field == {}", string_literal(f)))
        .collect();
    let fields = if fields.len() == 1 {
        fields.join("")
    } else {
        format!("({})", fields.join(" or "))
    };
    let mut terms = vec![
        format!("r._measurement == {}", string_literal(&q.measurement)),
        fields,
    ];
    terms.extend(tag_terms(&q.tags));
    flux.pipe(&format!("filter(fn: (r) => {})", terms.join(" and ")));
    if q.select == RowSelect::Last {
        flux.pipe("last()");
    }
    flux.pipe("pivot(rowKey: [\"_time\"], columnKey: [\"_field\"], valueColumn: \"_value\")");
    match q.select {
        RowSelect::Last => {
            flux.pipe("sort(columns: [\"_time\"], desc: true)");
            flux.pipe("limit(n: 1)");
        }
        RowSelect::All { limit_per_series } => {
            flux.pipe("sort(columns: [\"_time\"])");
            flux.pipe(&format!("limit(n: {limit_per_series})"));
        }
    }
    Ok(flux.0)
}

/// Renders a [`FieldKeysQuery`]: the last point of every field of every matching
/// series in the range; [`parse_field_keys`] reads each table's measurement, field and
/// `_value` type. The cost grows with the number of series and fields, not of points.
pub fn field_keys(bucket: &str, q: &FieldKeysQuery) -> Result<String, QueryError> {
    q.validate()?;
    let mut flux = Pipeline::source(bucket)?;
    flux.range(q.range.start_ms, q.range.end_ms);
    let mut terms = Vec::new();
    if let Some(m) = &q.measurement {
        terms.push(format!("r._measurement == {}", string_literal(m)));
    }
    terms.extend(tag_terms(&q.tags));
    if !terms.is_empty() {
        flux.pipe(&format!("filter(fn: (r) => {})", terms.join(" and ")));
    }
    flux.pipe("last()");
    Ok(flux.0)
}

// ---------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------

/// One column of a table: its label and annotations.
#[derive(Debug, Default)]
struct Column {
    label: String,
    /// The `#datatype` value, e.g. `double`, `dateTime:RFC3339`; empty when absent.
    datatype: String,
    /// From `#group`: part of the group key.
    group: bool,
    /// From `#default`: the value of an empty cell; empty means null.
    default: String,
}

/// The annotations and header of one block, and its rows. Column 0 is the annotation
/// column and never holds data.
#[derive(Debug)]
struct Block {
    header_line: u64,
    columns: Vec<Column>,
    result: Option<usize>,
    table: Option<usize>,
    rows: Vec<(u64, csv::StringRecord)>,
}

/// The group-key columns that are tags: not the annotation column, `result`,
/// `table`, nor Flux's own columns (`_start`, `_field`, …).
fn tag_columns(block: &Block) -> Vec<usize> {
    block
        .columns
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, c)| {
            c.group
                && Some(*i) != block.result
                && Some(*i) != block.table
                && !RESERVED_COLUMNS.contains(&c.label.as_str())
        })
        .map(|(i, _)| i)
        .collect()
}

impl Block {
    fn column(&self, label: &str) -> Option<usize> {
        self.columns
            .iter()
            .enumerate()
            .skip(1)
            .find(|(i, c)| c.label == label && Some(*i) != self.result && Some(*i) != self.table)
            .map(|(i, _)| i)
    }

    /// The cell, or the column default when the cell is empty; `None` for null.
    fn value<'a>(&'a self, row: &'a csv::StringRecord, idx: usize) -> Option<&'a str> {
        match row.get(idx) {
            Some(cell) if !cell.is_empty() => Some(cell),
            _ => self
                .columns
                .get(idx)
                .map(|c| c.default.as_str())
                .filter(|d| !d.is_empty()),
        }
    }
}

/// Annotation rows seen since the last header.
#[derive(Default)]
struct Annotations {
    width: Option<(usize, u64)>,
    datatype: Option<Vec<String>>,
    group: Option<Vec<String>>,
    default: Option<Vec<String>>,
}

impl Annotations {
    fn is_empty(&self) -> bool {
        self.width.is_none()
    }

    fn add(&mut self, line: u64, record: &csv::StringRecord) -> Result<(), QueryError> {
        check_width(line, record.len(), self.width, "the annotation row")?;
        self.width.get_or_insert((record.len(), line));
        let cells: Vec<String> = record.iter().map(str::to_owned).collect();
        match cells.first().map(String::as_str) {
            Some("#datatype") => self.datatype = Some(cells),
            Some("#group") => self.group = Some(cells),
            Some("#default") => self.default = Some(cells),
            // Unknown annotations are allowed by the format and ignored.
            _ => {}
        }
        Ok(())
    }
}

fn check_width(
    line: u64,
    len: usize,
    expected: Option<(usize, u64)>,
    what: &str,
) -> Result<(), QueryError> {
    match expected {
        Some((width, at)) if width != len => Err(QueryError::decode(format!(
            "line {line} has {len} cells but {what} on line {at} has {width}"
        ))),
        _ => Ok(()),
    }
}

/// Splits an annotated-CSV body into blocks. Returns the in-band error table, if the
/// body has one, as [`QueryError::Database`].
fn read_blocks(body: &str) -> Result<Vec<Block>, QueryError> {
    let mut lines = LineCounter::new(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut blocks: Vec<Block> = Vec::new();
    let mut annotations = Annotations::default();
    let mut current: Option<Block> = None;
    // Set after an `,error,reference` header: the column of the message.
    let mut error_header: Option<usize> = None;

    for record in reader.records() {
        let record = record.map_err(|e| QueryError::decode(format!("malformed CSV: {e}")))?;
        let line = lines.line_at(record.position().map_or(0, |p| p.byte()));
        let first = record.get(0).unwrap_or("");

        if let Some(message_col) = error_header {
            // The row after an `error,reference` header carries the message.
            let message = record.get(message_col).unwrap_or("").to_owned();
            return Err(database_error(message, record.get(message_col + 1)));
        }
        if record.len() <= 1 && first.is_empty() {
            // A blank line: the separator between blocks and after each result.
            continue;
        }
        if first.starts_with('#') {
            if let Some(block) = current.take() {
                blocks.push(block);
            }
            annotations.add(line, &record)?;
            continue;
        }
        if !first.is_empty() {
            return Err(QueryError::decode(format!(
                "line {line} starts with {first:?}; expected an annotation (#…) or an empty annotation cell"
            )));
        }
        let is_error_header = record.len() == 3
            && record.get(1) == Some("error")
            && record.get(2) == Some("reference");
        match current.as_mut() {
            // An error table right after a table, without annotations (a request that
            // did not ask for them): a 3-cell row whose table cell is not a number.
            Some(_) if is_error_header => error_header = Some(1),
            Some(block) => {
                check_width(
                    line,
                    record.len(),
                    Some((block.columns.len(), block.header_line)),
                    "the header",
                )?;
                block.rows.push((line, record));
            }
            None => {
                check_width(line, record.len(), annotations.width, "the annotation row")?;
                if is_error_header || record.get(1) == Some("error") {
                    error_header = Some(1);
                    continue;
                }
                let taken = std::mem::take(&mut annotations);
                current = Some(header_block(line, &record, taken)?);
            }
        }
    }
    if error_header.is_some() {
        return Err(database_error(String::new(), None));
    }
    if let Some(block) = current {
        blocks.push(block);
    }
    if !annotations.is_empty() {
        let at = annotations.width.map_or(0, |(_, l)| l);
        return Err(QueryError::decode(format!(
            "the annotations from line {at} are not followed by a header row"
        )));
    }
    Ok(blocks)
}

/// Line numbers for error messages. The csv crate's own count is off with CRLF and
/// blank lines, and a record's byte position may point at the line ending before it,
/// so this counts `\n` up to the record's first byte. Positions only move forward.
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(body: &'a str) -> Self {
        LineCounter {
            bytes: body.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let mut target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(target), Some(b'\r' | b'\n')) {
            target += 1;
        }
        if let Some(skipped) = self.bytes.get(self.pos..target) {
            self.line += skipped.iter().filter(|&&b| b == b'\n').count() as u64;
            self.pos = target;
        }
        self.line
    }
}

fn database_error(message: String, reference: Option<&str>) -> QueryError {
    let message = match (message.trim(), reference.map(str::trim)) {
        ("", _) => "InfluxDB reported an error without a message".to_owned(),
        (m, Some(r)) if !r.is_empty() => format!("{m} (reference {r})"),
        (m, _) => m.to_owned(),
    };
    QueryError::Database { message }
}

fn header_block(
    line: u64,
    header: &csv::StringRecord,
    annotations: Annotations,
) -> Result<Block, QueryError> {
    let Some(groups) = annotations.group else {
        return Err(QueryError::decode(format!(
            "the table header on line {line} has no #group annotation; the query must ask for the annotations datatype, group and default"
        )));
    };
    let cell = |row: &Option<Vec<String>>, i: usize| -> String {
        row.as_ref()
            .and_then(|r| r.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let mut columns = Vec::with_capacity(header.len());
    for (i, label) in header.iter().enumerate() {
        let group = groups.get(i).map(String::as_str).unwrap_or("");
        columns.push(Column {
            label: label.to_owned(),
            datatype: cell(&annotations.datatype, i),
            group: group == "true",
            default: cell(&annotations.default, i),
        });
    }
    let first_named = |name: &str| {
        columns
            .iter()
            .skip(1)
            .position(|c| c.label == name)
            .map(|i| i + 1)
    };
    let result = first_named("result");
    let table = first_named("table");
    if table.is_none() {
        return Err(QueryError::decode(format!(
            "the table header on line {line} has no table column"
        )));
    }
    Ok(Block {
        header_line: line,
        columns,
        result,
        table,
        rows: Vec::new(),
    })
}

/// Cell text as InfluxDB meant it: its CSV writer turns a newline inside a quoted cell
/// into CRLF (and drops lone CRs), so CRLF inside a cell stands for `\n`.
fn cell_text(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// Parses an annotated-CSV body from `/api/v2/query` into series.
///
/// Each distinct `(result, table)` is one [`Series`], in order of appearance; its tags
/// are the group-key columns other than `result`, `table` and InfluxDB's own columns
/// (a null key cell gives the tag an empty value, as InfluxQL reports a missing tag).
/// A point's time is `_time`, or `_start` for aggregates that drop `_time`; its value
/// is `_value` (`double`, `long`, `unsignedLong` or `boolean`) as f64, an empty cell
/// being the column's `#default` or else `None`. An empty body or one with no tables
/// is an empty Vec; the in-band error table is [`QueryError::Database`].
pub fn parse_series(body: &str) -> Result<Vec<Series>, QueryError> {
    let blocks = read_blocks(body)?;
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();

    for block in &blocks {
        if block.rows.is_empty() {
            continue;
        }
        let value_col = block.column("_value").ok_or_else(|| {
            QueryError::decode(format!(
                "the table header on line {} has no _value column",
                block.header_line
            ))
        })?;
        let time_col = block.column("_time");
        let start_col = block.column("_start");
        let tag_cols = tag_columns(block);

        for (line, row) in &block.rows {
            let line = *line;
            let result = block
                .result
                .and_then(|i| block.value(row, i))
                .unwrap_or("_result")
                .to_owned();
            let table = block
                .table
                .and_then(|i| block.value(row, i))
                .ok_or_else(|| QueryError::decode(format!("line {line} has no table id")))?
                .to_owned();
            let slot = match index.get(&(result.clone(), table.clone())) {
                Some(slot) => *slot,
                None => {
                    let tags = tag_cols
                        .iter()
                        .filter_map(|&i| {
                            let column = block.columns.get(i)?;
                            let value = block.value(row, i).map(cell_text).unwrap_or_default();
                            Some((column.label.clone(), value))
                        })
                        .collect();
                    out.push(Series {
                        tags,
                        points: Vec::new(),
                    });
                    index.insert((result, table), out.len() - 1);
                    out.len() - 1
                }
            };
            let time_text = time_col
                .and_then(|i| block.value(row, i))
                .or_else(|| start_col.and_then(|i| block.value(row, i)))
                .ok_or_else(|| {
                    QueryError::decode(format!(
                        "line {line} has neither a _time nor a _start value"
                    ))
                })?;
            let time = parse_time_ms(time_text).ok_or_else(|| {
                QueryError::decode(format!("line {line} has a bad timestamp {time_text:?}"))
            })?;
            let datatype = block
                .columns
                .get(value_col)
                .map_or("", |c| c.datatype.as_str());
            let value = match block.value(row, value_col) {
                None => None,
                Some(text) => Some(parse_number(datatype, text).map_err(|reason| {
                    QueryError::decode(format!("line {line}: _value {reason}"))
                })?),
            };
            if let Some(series) = out.get_mut(slot) {
                series.points.push((time, value));
            }
        }
    }
    Ok(out)
}

/// Parses the answer to a [`rows`] query for the same `fields`: one [`Row`] per CSV row,
/// with the group-key columns other than InfluxDB's own as tags, `_time` as the time,
/// and each field that has a column and a value in that row (`string` columns as
/// text, `boolean` as booleans, numbers as f64).
pub fn parse_rows(body: &str, fields: &[String]) -> Result<Vec<Row>, QueryError> {
    let blocks = read_blocks(body)?;
    let mut out = Vec::new();
    for block in &blocks {
        if block.rows.is_empty() {
            continue;
        }
        let time_col = block.column("_time").ok_or_else(|| {
            QueryError::decode(format!(
                "the table header on line {} has no _time column",
                block.header_line
            ))
        })?;
        let tag_cols = tag_columns(block);
        let field_cols: Vec<(usize, &String)> = fields
            .iter()
            .filter_map(|f| block.column(f).map(|i| (i, f)))
            .filter(|(i, _)| !tag_cols.contains(i))
            .collect();
        for (line, row) in &block.rows {
            let line = *line;
            let tags = tag_cols
                .iter()
                .filter_map(|&i| {
                    let column = block.columns.get(i)?;
                    let value = block.value(row, i).map(cell_text).unwrap_or_default();
                    Some((column.label.clone(), value))
                })
                .collect();
            let time_text = block
                .value(row, time_col)
                .ok_or_else(|| QueryError::decode(format!("line {line} has no _time value")))?;
            let time_ms = parse_time_ms(time_text).ok_or_else(|| {
                QueryError::decode(format!("line {line} has a bad timestamp {time_text:?}"))
            })?;
            let mut values = BTreeMap::new();
            for &(i, field) in &field_cols {
                let Some(text) = block.value(row, i) else {
                    continue;
                };
                let datatype = block.columns.get(i).map_or("", |c| c.datatype.as_str());
                let data = match datatype {
                    "string" => FieldData::Text(cell_text(text)),
                    "boolean" => match text {
                        "true" => FieldData::Bool(true),
                        "false" => FieldData::Bool(false),
                        _ => {
                            return Err(QueryError::decode(format!(
                                "line {line}: {field} {text:?} is not a valid boolean"
                            )))
                        }
                    },
                    _ => FieldData::Number(parse_number(datatype, text).map_err(|reason| {
                        QueryError::decode(format!("line {line}: {field} {reason}"))
                    })?),
                };
                values.insert(field.clone(), data);
            }
            out.push(Row {
                tags,
                time_ms,
                fields: values,
            });
        }
    }
    Ok(out)
}

/// Parses the answer to a [`field_keys`] query: every `(_measurement, _field)` with the
/// type of its `_value` column, sorted and deduplicated.
pub fn parse_field_keys(body: &str) -> Result<Vec<FieldKey>, QueryError> {
    let blocks = read_blocks(body)?;
    let mut out = Vec::new();
    for block in &blocks {
        if block.rows.is_empty() {
            continue;
        }
        let column = |label: &str| {
            block.column(label).ok_or_else(|| {
                QueryError::decode(format!(
                    "the table header on line {} has no {label} column",
                    block.header_line
                ))
            })
        };
        let (m_col, f_col, v_col) = (
            column("_measurement")?,
            column("_field")?,
            column("_value")?,
        );
        let datatype = block.columns.get(v_col).map_or("", |c| c.datatype.as_str());
        let kind = match datatype {
            "double" => FieldKind::Float,
            "long" => FieldKind::Integer,
            "unsignedLong" => FieldKind::Unsigned,
            "string" => FieldKind::String,
            "boolean" => FieldKind::Boolean,
            other => {
                return Err(QueryError::decode(format!(
                    "the table header on line {}: _value has datatype {other:?}",
                    block.header_line
                )))
            }
        };
        for (line, row) in &block.rows {
            let (Some(measurement), Some(field)) =
                (block.value(row, m_col), block.value(row, f_col))
            else {
                return Err(QueryError::decode(format!(
                    "line {line} has no _measurement or _field"
                )));
            };
            out.push(FieldKey {
                measurement: cell_text(measurement),
                field: cell_text(field),
                kind,
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A `_value` cell of the given `#datatype` as f64.
fn parse_number(datatype: &str, text: &str) -> Result<f64, String> {
    let bad = || format!("{text:?} is not a valid {datatype}");
    match datatype {
        "double" => text.parse::<f64>().map_err(|_| bad()),
        // Counts and integer fields; beyond 2^53 the f64 is the nearest value.
        "long" => text.parse::<i64>().map(|v| v as f64).map_err(|_| bad()),
        "unsignedLong" => text.parse::<u64>().map(|v| v as f64).map_err(|_| bad()),
        "boolean" => match text {
            "true" => Ok(1.0),
            "false" => Ok(0.0),
            _ => Err(bad()),
        },
        // No #datatype: take the text for what it looks like.
        "" => match text {
            "true" => Ok(1.0),
            "false" => Ok(0.0),
            _ => text
                .parse::<f64>()
                .map_err(|_| format!("{text:?} is not a number")),
        },
        other => Err(format!(
            "has datatype {other:?}; only numeric and boolean fields can be read as series"
        )),
    }
}

/// Parses the answer to a [`tag_values`] query: the `_value` column as strings, sorted
/// and deduplicated. Nulls are skipped.
pub fn parse_tag_values(body: &str) -> Result<Vec<String>, QueryError> {
    let blocks = read_blocks(body)?;
    let mut values = Vec::new();
    for block in &blocks {
        if block.rows.is_empty() {
            continue;
        }
        let col = block.column("_value").ok_or_else(|| {
            QueryError::decode(format!(
                "the table header on line {} has no _value column",
                block.header_line
            ))
        })?;
        for (_, row) in &block.rows {
            if let Some(v) = block.value(row, col) {
                values.push(cell_text(v));
            }
        }
    }
    values.sort();
    values.dedup();
    Ok(values)
}

/// The message of a non-2xx `/api/v2/query` answer: the `message` of InfluxDB 2's JSON
/// error (`{"code":"invalid","message":"…"}`), else the body itself cut to about 500
/// characters, else a note that the body was empty.
pub fn parse_error_body(status: u16, body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["message", "error"] {
            if let Some(serde_json::Value::String(m)) = map.get(key) {
                if !m.trim().is_empty() {
                    return m.clone();
                }
            }
        }
    }
    let body = body.trim();
    if body.is_empty() {
        return format!("HTTP status {status} with an empty body");
    }
    match body.char_indices().nth(ERROR_BODY_LIMIT) {
        Some((cut, _)) => format!("{}…", body.get(..cut).unwrap_or(body)),
        None => body.to_owned(),
    }
}

// ---------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// An RFC 3339 timestamp (`2024-01-01T00:00:00.123456789Z`, up to 9 fractional digits,
/// `Z` or a `±hh:mm` offset) as ms since the epoch, rounded down.
pub(crate) fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits
            .iter()
            .try_fold(0i64, |acc, d| Some(acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let mut at = 19;
    let mut nanos = 0i64;
    if b.get(at) == Some(&b'.') {
        let digits = b
            .get(at + 1..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(at + 1, at + 1 + digits)? * 10i64.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset_secs = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1, at + 3)?, num(at + 4, at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    secs.checked_mul(1000)?.checked_add(nanos / 1_000_000)
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

// No InfluxDB 2 server runs in this project's test environment; these tests check the
// rendered Flux text and parse bodies in the annotated-CSV format InfluxDB 2 returns.
// The fixtures under core/tests/fixtures/flux/ are built by hand to the byte from the
// format's reference (CRLF rows, `#datatype`/`#group`/`#default` in the order the
// request asks for, an empty row between blocks and after each result).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::query::TimeRange;
    use proptest::prelude::*;

    const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000;

    fn base() -> SeriesQuery {
        SeriesQuery {
            measurement: "cpu".into(),
            field: "usage_user".into(),
            tags: BTreeMap::new(),
            range: TimeRange {
                start_ms: T0,
                end_ms: T0 + HOUR,
            },
            every: None,
            aggregate: None,
            group_by: vec![],
        }
    }

    fn windowed(agg: &str) -> SeriesQuery {
        SeriesQuery {
            aggregate: Some(agg.parse().unwrap()),
            every: Some(Every::from_millis(60_000).unwrap()),
            ..base()
        }
    }

    fn check(name: &str, actual: Result<String, QueryError>, expected: &str) {
        let actual = actual.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(actual, expected.trim(), "{name}");
    }

    const HEAD: &str = r#"from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "cpu" and r._field == "usage_user")
  |> group(columns: ["_start", "_stop"])
  |> sort(columns: ["_time"])"#;

    #[test]
    fn golden_series() {
        let cases: Vec<(&str, SeriesQuery, String)> = vec![
            ("raw", base(), HEAD.to_owned()),
            (
                "mean without window",
                SeriesQuery {
                    aggregate: Some(Aggregate::Mean),
                    ..base()
                },
                format!("{HEAD}\n  |> mean()"),
            ),
            (
                "rate without window",
                SeriesQuery {
                    aggregate: Some(Aggregate::Rate),
                    ..base()
                },
                format!(
                    "{HEAD}\n  |> derivative(unit: 1s, nonNegative: true)\n  |> filter(fn: (r) => exists r._value)"
                ),
            ),
            (
                "p99.9 without window",
                SeriesQuery {
                    aggregate: Some(Aggregate::Percentile(99.9)),
                    ..base()
                },
                format!("{HEAD}\n  |> quantile(q: 0.999, method: \"exact_selector\")"),
            ),
            (
                "rate with window",
                windowed("rate"),
                format!(
                    "{HEAD}\n  |> aggregateWindow(every: 60000ms, fn: last, timeSrc: \"_start\", createEmpty: false)\n  |> derivative(unit: 1s, nonNegative: true)\n  |> filter(fn: (r) => exists r._value)"
                ),
            ),
            (
                "p95 with window",
                windowed("p95"),
                format!(
                    "{HEAD}\n  |> aggregateWindow(every: 60000ms, fn: (column, tables=<-) => tables |> quantile(q: 0.95, method: \"exact_selector\", column: column), timeSrc: \"_start\", createEmpty: true)"
                ),
            ),
        ];
        let mut cases = cases;
        for agg in ["mean", "max", "min", "last", "sum", "count"] {
            cases.push((
                agg,
                windowed(agg),
                format!(
                    "{HEAD}\n  |> aggregateWindow(every: 60000ms, fn: {agg}, timeSrc: \"_start\", createEmpty: true)"
                ),
            ));
        }
        for (name, q, expected) in cases {
            check(name, series("telegraf", &q), &expected);
        }
    }

    #[test]
    fn golden_windowed_mean() {
        check(
            "windowed mean",
            series("telegraf", &windowed("mean")),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "cpu" and r._field == "usage_user")
  |> group(columns: ["_start", "_stop"])
  |> sort(columns: ["_time"])
  |> aggregateWindow(every: 60000ms, fn: mean, timeSrc: "_start", createEmpty: true)
"#,
        );
    }

    #[test]
    fn golden_group_by_and_tag_filters() {
        let q = SeriesQuery {
            tags: BTreeMap::from([
                ("dc".to_owned(), "eu-1".to_owned()),
                ("role".to_owned(), String::new()),
            ]),
            group_by: vec!["host".into(), "cpu".into(), "host".into()],
            ..windowed("max")
        };
        check(
            "group by two tags, tag filters",
            series("telegraf", &q),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "cpu" and r._field == "usage_user" and r["dc"] == "eu-1" and (not exists r["role"]))
  |> group(columns: ["_start", "_stop", "host", "cpu"])
  |> sort(columns: ["_time"])
  |> aggregateWindow(every: 60000ms, fn: max, timeSrc: "_start", createEmpty: true)
"#,
        );
    }

    #[test]
    fn golden_unaligned_window_start() {
        // 00:00:30.250 is inside the window that InfluxQL stamps 00:00:00.
        let q = SeriesQuery {
            range: TimeRange {
                start_ms: T0 + 30_250,
                end_ms: T0 + HOUR,
            },
            ..windowed("mean")
        };
        check(
            "unaligned start",
            series("telegraf", &q),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:30.250Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "cpu" and r._field == "usage_user")
  |> group(columns: ["_start", "_stop"])
  |> sort(columns: ["_time"])
  |> aggregateWindow(every: 60000ms, fn: mean, timeSrc: "_start", createEmpty: true)
  |> map(fn: (r) => ({r with _time: if r._time == 2024-01-01T00:00:30.250Z then 2024-01-01T00:00:00Z else r._time}))
"#,
        );
    }

    #[test]
    fn golden_clamped_range() {
        let q = SeriesQuery {
            range: TimeRange {
                start_ms: i64::MIN,
                end_ms: i64::MAX,
            },
            ..base()
        };
        let text = series("telegraf", &q).unwrap();
        assert!(
            text.contains("range(start: 1677-09-21T00:12:43.146Z, stop: 2262-04-11T23:47:16.854Z)"),
            "{text}"
        );
    }

    #[test]
    fn golden_tag_values_and_last() {
        let range = TimeRange {
            start_ms: T0,
            end_ms: T0 + HOUR,
        };
        let tv = TagValuesQuery {
            measurement: "cpu".into(),
            key: "host".into(),
            tags: BTreeMap::from([("dc".to_owned(), "eu-1".to_owned())]),
            range,
        };
        check(
            "tag values",
            tag_values("telegraf", &tv),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "cpu" and r["dc"] == "eu-1")
  |> last()
  |> filter(fn: (r) => exists r["host"])
  |> keep(columns: ["host"])
  |> group()
  |> distinct(column: "host")
"#,
        );
        let lq = LastQuery {
            measurement: "mem".into(),
            field: "used_percent".into(),
            tags: BTreeMap::new(),
            range,
        };
        check(
            "last",
            last("telegraf", &lq),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "mem" and r._field == "used_percent")
  |> last()
"#,
        );
    }

    fn rows_query(select: RowSelect) -> RowsQuery {
        RowsQuery {
            measurement: "procstat_top".into(),
            fields: vec!["pid".into(), "cmdline".into()],
            tags: BTreeMap::from([("host".to_owned(), "web-1".to_owned())]),
            range: TimeRange {
                start_ms: T0,
                end_ms: T0 + HOUR,
            },
            select,
        }
    }

    #[test]
    fn golden_rows() {
        check(
            "last row per series",
            rows("telegraf", &rows_query(RowSelect::Last)),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "procstat_top" and (r._field == "pid" or r._field == "cmdline") and r["host"] == "web-1")
  |> last()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> sort(columns: ["_time"], desc: true)
  |> limit(n: 1)
"#,
        );
        let q = RowsQuery {
            measurement: "alerts".into(),
            fields: vec!["state".into()],
            tags: BTreeMap::from([("role".to_owned(), String::new())]),
            ..rows_query(RowSelect::All {
                limit_per_series: 10_000,
            })
        };
        check(
            "every row, one field",
            rows("telegraf", &q),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "alerts" and r._field == "state" and (not exists r["role"]))
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> sort(columns: ["_time"])
  |> limit(n: 10000)
"#,
        );
        let err = rows(
            "b",
            &RowsQuery {
                fields: vec!["pid".into(), "_time".into()],
                ..rows_query(RowSelect::Last)
            },
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid fields:"), "{err}");
        assert!(rows("", &rows_query(RowSelect::Last)).is_err());
    }

    #[test]
    fn golden_field_keys() {
        let range = TimeRange {
            start_ms: T0,
            end_ms: T0 + HOUR,
        };
        let all = FieldKeysQuery {
            measurement: None,
            tags: BTreeMap::new(),
            range,
        };
        check(
            "every field",
            field_keys("telegraf", &all),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> last()
"#,
        );
        let one = FieldKeysQuery {
            measurement: Some("shop".into()),
            tags: BTreeMap::from([("host".to_owned(), "web-1".to_owned())]),
            range,
        };
        check(
            "one measurement of one host",
            field_keys("telegraf", &one),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r._measurement == "shop" and r["host"] == "web-1")
  |> last()
"#,
        );
        let by_host = FieldKeysQuery {
            measurement: None,
            ..one
        };
        check(
            "the measurements of one host",
            field_keys("telegraf", &by_host),
            r#"
from(bucket: "telegraf")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00Z)
  |> filter(fn: (r) => r["host"] == "web-1")
  |> last()
"#,
        );
    }

    #[test]
    fn injection_in_rows_and_field_keys_is_inert() {
        let benign_rows = RowsQuery {
            measurement: "m".into(),
            fields: vec!["f".into(), "g".into()],
            tags: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            ..rows_query(RowSelect::Last)
        };
        let (rows_shape, _) = tokenize(&rows("b", &benign_rows).unwrap());
        let benign_keys = FieldKeysQuery {
            measurement: Some("m".into()),
            tags: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            range: benign_rows.range,
        };
        let (keys_shape, _) = tokenize(&field_keys("b", &benign_keys).unwrap());
        for e in [
            r#"""#,
            r"\",
            "${x}",
            r#"") |> drop(columns: ["_value"]) |> yield(name: "x"#,
            "'; DROP DATABASE x",
            "日本語 ✓",
        ] {
            let q = RowsQuery {
                measurement: e.into(),
                fields: vec![e.into(), "g".into()],
                tags: BTreeMap::from([(e.to_owned(), e.to_owned())]),
                ..benign_rows.clone()
            };
            let (shape, literals) = tokenize(&rows(e, &q).unwrap());
            assert_eq!(shape, rows_shape, "{e:?}");
            // bucket, measurement, field, tag key, tag value.
            assert_eq!(literals.iter().filter(|l| *l == e).count(), 5, "{e:?}");
            let q = FieldKeysQuery {
                measurement: Some(e.into()),
                tags: BTreeMap::from([(e.to_owned(), e.to_owned())]),
                range: benign_rows.range,
            };
            let (shape, literals) = tokenize(&field_keys(e, &q).unwrap());
            assert_eq!(shape, keys_shape, "{e:?}");
            assert_eq!(literals.iter().filter(|l| *l == e).count(), 4, "{e:?}");
        }
    }

    #[test]
    fn parse_rows_bodies() {
        let fields = vec!["pid".to_owned(), "cmdline".to_owned(), "up".to_owned()];
        let csv = body(&[
            "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,long,string,string",
            "#group,false,false,true,true,false,true,true,true,false,false,false",
            "#default,_result,,,,,,,,,,",
            ",result,table,_start,_stop,_time,_measurement,host,rank,pid,cmdline,name",
            &format!(",,0,{S},2024-01-01T00:59:50Z,procstat_top,web-1,1,4242,\"nginx: \"\"main\"\", ü\r\nnext\",nginx"),
            &format!(",,1,{S},2024-01-01T00:59:50Z,procstat_top,web-1,2,77,,cron"),
            "",
            "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,double,boolean",
            "#group,false,false,true,true,false,true,true,false,false",
            "#default,_result,,,,,,,,",
            ",result,table,_start,_stop,_time,_measurement,host,pid,up",
            &format!(",,2,{S},2024-01-01T00:00:10Z,procstat_top,db-1,1.5,true"),
        ]);
        let row = |host: &str, rank: Option<&str>, t: i64, f: Vec<(&str, FieldData)>| {
            let mut tags = BTreeMap::from([("host".to_owned(), host.to_owned())]);
            if let Some(rank) = rank {
                tags.insert("rank".into(), rank.into());
            }
            Row {
                tags,
                time_ms: t,
                fields: f.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            }
        };
        assert_eq!(
            parse_rows(&csv, &fields).unwrap(),
            vec![
                row(
                    "web-1",
                    Some("1"),
                    T0 + HOUR - 10_000,
                    vec![
                        ("pid", FieldData::Number(4242.0)),
                        (
                            "cmdline",
                            FieldData::Text("nginx: \"main\", ü\nnext".into())
                        ),
                    ]
                ),
                row(
                    "web-1",
                    Some("2"),
                    T0 + HOUR - 10_000,
                    vec![("pid", FieldData::Number(77.0))]
                ),
                row(
                    "db-1",
                    None,
                    T0 + 10_000,
                    vec![
                        ("pid", FieldData::Number(1.5)),
                        ("up", FieldData::Bool(true))
                    ]
                ),
            ]
        );
        assert_eq!(parse_rows("", &fields).unwrap(), vec![]);
        let bad_bool = body(&[
            "#datatype,string,long,dateTime:RFC3339,boolean",
            "#group,false,false,false,false",
            "#default,_result,,,",
            ",result,table,_time,up",
            ",,0,2024-01-01T00:00:00Z,maybe",
        ]);
        let err = parse_rows(&bad_bool, &fields).unwrap_err().to_string();
        assert!(
            err.contains("line 5: up \"maybe\" is not a valid boolean"),
            "{err}"
        );
        let no_time = body(&[
            "#datatype,string,long,long",
            "#group,false,false,false",
            "#default,_result,,",
            ",result,table,pid",
            ",,0,1",
        ]);
        assert!(parse_rows(&no_time, &fields).is_err());
    }

    #[test]
    fn parse_field_keys_bodies() {
        let csv = body(&[
            "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string",
            "#group,false,false,true,true,false,false,true,true,true",
            "#default,_result,,,,,,,,",
            ",result,table,_start,_stop,_time,_value,_field,_measurement,host",
            &format!(",,0,{S},2024-01-01T00:00:00Z,1.5,usage_idle,cpu,web-1"),
            &format!(",,1,{S},2024-01-01T00:00:00Z,2.5,usage_idle,cpu,web-2"),
            "",
            "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string",
            "#group,false,false,true,true,false,false,true,true,true",
            "#default,_result,,,,,,,,",
            ",result,table,_start,_stop,_time,_value,_field,_measurement,host",
            &format!(",,2,{S},2024-01-01T00:00:00Z,open,status,shop,web-1"),
            "",
            "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string,string",
            "#group,false,false,true,true,false,false,true,true,true",
            "#default,_result,,,,,,,,",
            ",result,table,_start,_stop,_time,_value,_field,_measurement,host",
            &format!(",,3,{S},2024-01-01T00:00:00Z,3,pending,shop,web-1"),
        ]);
        let key = |m: &str, f: &str, kind| FieldKey {
            measurement: m.into(),
            field: f.into(),
            kind,
        };
        assert_eq!(
            parse_field_keys(&csv).unwrap(),
            vec![
                key("cpu", "usage_idle", FieldKind::Float),
                key("shop", "pending", FieldKind::Integer),
                key("shop", "status", FieldKind::String),
            ]
        );
        assert_eq!(parse_field_keys("\r\n").unwrap(), vec![]);
        let odd = csv.replace("double", "duration");
        assert!(parse_field_keys(&odd).is_err());
    }

    #[test]
    fn refusals() {
        let cases: Vec<(&str, Result<String, QueryError>, &str)> = vec![
            (
                "window without aggregate",
                series(
                    "b",
                    &SeriesQuery {
                        every: Some(Every::from_millis(1000).unwrap()),
                        ..base()
                    },
                ),
                "invalid agg:",
            ),
            ("empty bucket", series("", &base()), "invalid bucket:"),
            (
                "newline in bucket",
                series("a\nb", &base()),
                "invalid bucket:",
            ),
            (
                "reserved group_by",
                series(
                    "b",
                    &SeriesQuery {
                        group_by: vec!["_field".into()],
                        ..base()
                    },
                ),
                "invalid group_by:",
            ),
            (
                "window Flux cannot hold",
                series(
                    "b",
                    &SeriesQuery {
                        every: Some(Every::from_millis(u64::MAX).unwrap()),
                        ..windowed("mean")
                    },
                ),
                "invalid every:",
            ),
        ];
        for (name, got, prefix) in cases {
            let err = got.expect_err(name).to_string();
            assert!(err.starts_with(prefix), "{name}: {err}");
        }
    }

    #[test]
    fn literals() {
        for (input, want) in [
            ("cpu", r#""cpu""#),
            (r#"a"b"#, r#""a\"b""#),
            (r"a\b", r#""a\\b""#),
            ("${x}", r#""\${x}""#),
            ("$x {y} $", r#""$x {y} $""#),
            ("a\nb\rc\td", r#""a\nb\rc\td""#),
            ("日本語 ✓", r#""日本語 ✓""#),
            (r"\${", r#""\\\${""#),
        ] {
            assert_eq!(string_literal(input), want, "{input:?}");
        }
        for (p, want) in [
            (95.0, "0.95"),
            (99.9, "0.999"),
            (100.0, "1.0"),
            (50.0, "0.5"),
            (0.5, "0.005"),
            (12.345, "0.12345"),
            (5.0, "0.05"),
        ] {
            assert_eq!(quantile_literal(p), want, "p{p}");
        }
        for (ms, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (T0, "2024-01-01T00:00:00Z"),
            (T0 + 1, "2024-01-01T00:00:00.001Z"),
            (T0 - 1, "2023-12-31T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (MIN_MS, "1677-09-21T00:12:43.146Z"),
            (MAX_MS, "2262-04-11T23:47:16.854Z"),
        ] {
            assert_eq!(format_time(ms), want, "{ms}");
            assert_eq!(parse_time_ms(want), Some(ms), "{want}");
        }
    }

    /// Splits Flux text into its structure (every string literal replaced by `""`) and
    /// the decoded literals. Panics on an unterminated literal or an unknown escape.
    fn tokenize(flux: &str) -> (String, Vec<String>) {
        let mut skeleton = String::new();
        let mut literals = Vec::new();
        let mut chars = flux.chars();
        while let Some(c) = chars.next() {
            if c != '"' {
                skeleton.push(c);
                continue;
            }
            let mut lit = String::new();
            loop {
                match chars.next().expect("unterminated literal") {
                    '"' => break,
                    '\\' => match chars.next().expect("dangling escape") {
                        'n' => lit.push('\n'),
                        'r' => lit.push('\r'),
                        't' => lit.push('\t'),
                        '\\' => lit.push('\\'),
                        '"' => lit.push('"'),
                        '$' => lit.push('$'),
                        other => panic!("unknown escape \\{other}"),
                    },
                    '$' => {
                        lit.push('$');
                        assert_ne!(chars.clone().next(), Some('{'), "unescaped ${{ in {flux}");
                    }
                    c => lit.push(c),
                }
            }
            skeleton.push_str("\"\"");
            literals.push(lit);
        }
        (skeleton, literals)
    }

    #[test]
    fn injection_is_inert() {
        let evil = [
            r#"""#,
            r"\",
            r"\\",
            "${x}",
            r#"${r._value}"#,
            r#"") |> drop(columns: ["_value"]) |> yield(name: "x"#,
            "; DROP MEASUREMENT cpu",
            r#"\"); from(bucket: "other"#,
            "日本語 ✓ \u{202e}",
            "",
        ];
        let benign = SeriesQuery {
            tags: BTreeMap::from([("tagkey".to_owned(), "tagvalue".to_owned())]),
            group_by: vec!["grp".into()],
            ..windowed("mean")
        };
        let (benign_shape, _) = tokenize(&series("bucket", &benign).unwrap());
        for e in evil {
            let non_empty = if e.is_empty() { "x" } else { e };
            let q = SeriesQuery {
                measurement: non_empty.into(),
                field: non_empty.into(),
                tags: BTreeMap::from([(non_empty.to_owned(), e.to_owned())]),
                group_by: vec![non_empty.into()],
                ..benign.clone()
            };
            let text = series(non_empty, &q).unwrap();
            let (shape, literals) = tokenize(&text);
            if e.is_empty() {
                // An empty tag value renders `not exists`, a different but fixed shape.
                assert!(text.contains("(not exists r[\"x\"])"), "{text}");
                continue;
            }
            assert_eq!(shape, benign_shape, "structure changed for {e:?}:\n{text}");
            // Outside string literals there are exactly as many operators as before.
            assert_eq!(
                shape.matches("|>").count(),
                benign_shape.matches("|>").count()
            );
            assert!(text.contains(&string_literal(e)), "{text}");
            // bucket, measurement, field, tag key, tag value, group key.
            assert_eq!(literals.iter().filter(|l| *l == e).count(), 6, "{text}");

            let tv = TagValuesQuery {
                measurement: non_empty.into(),
                key: non_empty.into(),
                tags: BTreeMap::from([(non_empty.to_owned(), e.to_owned())]),
                range: benign.range,
            };
            let (_, literals) = tokenize(&tag_values(non_empty, &tv).unwrap());
            assert_eq!(literals.iter().filter(|l| *l == e).count(), 7, "{e:?}");
        }
    }

    fn fixture(name: &str) -> &'static str {
        match name {
            "mean_by_host" => include_str!("../../tests/fixtures/flux/mean_by_host.csv"),
            "schema_change" => include_str!("../../tests/fixtures/flux/schema_change.csv"),
            "last_by_series" => include_str!("../../tests/fixtures/flux/last_by_series.csv"),
            "error_after_partial" => {
                include_str!("../../tests/fixtures/flux/error_after_partial.csv")
            }
            "tag_values" => include_str!("../../tests/fixtures/flux/tag_values.csv"),
            other => panic!("no fixture {other}"),
        }
    }

    fn series_of(tags: &[(&str, &str)], points: &[(i64, Option<f64>)]) -> Series {
        Series {
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            points: points.to_vec(),
        }
    }

    fn check_parse(name: &str, body: &str, expected: &[Series]) {
        let got = parse_series(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
        // InfluxDB writes CRLF; the same body with LF must read the same.
        let lf = body.replace("\r\n", "\n");
        assert_eq!(parse_series(&lf).unwrap(), expected, "{name} (LF)");
    }

    const M: i64 = 60_000;

    #[test]
    fn parse_fixtures() {
        assert!(fixture("mean_by_host").contains("\r\n"));
        check_parse(
            "windowed mean by host, one null window",
            fixture("mean_by_host"),
            &[
                series_of(
                    &[("host", "web-1")],
                    &[(T0, Some(12.5)), (T0 + M, None), (T0 + 2 * M, Some(14.25))],
                ),
                series_of(
                    &[("host", "web-2")],
                    &[
                        (T0, Some(3.0)),
                        (T0 + M, Some(4.000000000000001)),
                        (T0 + 2 * M, Some(5.0)),
                    ],
                ),
            ],
        );
        check_parse(
            "schema change between tables, RFC3339Nano times, long values",
            fixture("schema_change"),
            &[
                series_of(
                    &[("host", "web-1")],
                    &[(T0 + 1500, Some(0.25)), (T0 + 2123, Some(0.5))],
                ),
                series_of(
                    &[("host", "web-2")],
                    &[(T0 + 1000, Some(7.0)), (T0 + 11_000, Some(-3.0))],
                ),
            ],
        );
        check_parse(
            "last per series, quoted tag values",
            fixture("last_by_series"),
            &[
                series_of(
                    &[("cpu", "cpu0"), ("host", "web-1")],
                    &[(T0 + 179_500, Some(1.5))],
                ),
                series_of(
                    &[("cpu", "cpu1"), ("host", "web-1")],
                    &[(T0 + 170_000, Some(2.75))],
                ),
                series_of(
                    &[("cpu", "cpu0"), ("host", "db,1")],
                    &[(T0 + 178_001, Some(99.0))],
                ),
                series_of(
                    &[("cpu", "cpu0"), ("host", "say \"hi\"")],
                    &[(T0 + 177_000, Some(0.0))],
                ),
            ],
        );
    }

    /// Joins rows with CRLF and ends with the result delimiter, as InfluxDB 2 writes.
    fn body(rows: &[&str]) -> String {
        let mut s: String = rows.iter().map(|r| format!("{r}\r\n")).collect();
        s.push_str("\r\n");
        s
    }

    const S: &str = "2024-01-01T00:00:00Z,2024-01-01T01:00:00Z";

    #[test]
    fn parse_inline_bodies() {
        let cases: Vec<(&str, String, Vec<Series>)> = vec![
            ("empty body", String::new(), vec![]),
            (
                "no tables: just the result delimiter",
                "\r\n".into(),
                vec![],
            ),
            (
                "count without window: no _time, long values, time from _start",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,long",
                    "#group,false,false,true,true,false",
                    "#default,_result,,,,",
                    ",result,table,_start,_stop,_value",
                    &format!(",,0,{S},42"),
                ]),
                vec![series_of(&[], &[(T0, Some(42.0))])],
            ),
            (
                "unsignedLong and boolean",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339,unsignedLong,string",
                    "#group,false,false,false,false,true",
                    "#default,_result,,,,",
                    ",result,table,_time,_value,host",
                    ",,0,2024-01-01T00:00:00Z,18446744073709551615,a",
                    "",
                    "#datatype,string,long,dateTime:RFC3339,boolean,string",
                    "#group,false,false,false,false,true",
                    "#default,_result,,,,",
                    ",result,table,_time,_value,host",
                    ",,1,2024-01-01T00:00:00Z,true,b",
                    ",,1,2024-01-01T00:00:01Z,false,b",
                ]),
                vec![
                    series_of(
                        &[("host", "a")],
                        &[(T0, Some(18_446_744_073_709_551_615.0))],
                    ),
                    series_of(&[("host", "b")], &[(T0, Some(1.0)), (T0 + 1000, Some(0.0))]),
                ],
            ),
            (
                "#default fills empty cells, including the table id",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339,double,string",
                    "#group,false,false,false,false,true",
                    "#default,_result,7,,-1,fallback",
                    ",result,table,_time,_value,host",
                    ",,,2024-01-01T00:00:00Z,,",
                    ",,,2024-01-01T00:00:01Z,2.5,",
                ]),
                vec![series_of(
                    &[("host", "fallback")],
                    &[(T0, Some(-1.0)), (T0 + 1000, Some(2.5))],
                )],
            ),
            (
                "two results, table ids restart",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339,double",
                    "#group,false,false,false,false",
                    "#default,_result,,,",
                    ",result,table,_time,_value",
                    ",,0,2024-01-01T00:00:00Z,1",
                    "",
                    "#datatype,string,long,dateTime:RFC3339,double",
                    "#group,false,false,false,false",
                    "#default,other,,,",
                    ",result,table,_time,_value",
                    ",,0,2024-01-01T00:00:00Z,2",
                ]),
                vec![
                    series_of(&[], &[(T0, Some(1.0))]),
                    series_of(&[], &[(T0, Some(2.0))]),
                ],
            ),
            (
                "a table with no rows yields no series",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,string,double",
                    "#group,false,false,true,true,true,false",
                    &format!("#default,_result,0,{S},web-9,"),
                    ",result,table,_start,_stop,host,_value",
                    "",
                    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,string,double",
                    "#group,false,false,true,true,true,false",
                    "#default,_result,,,,,",
                    ",result,table,_start,_stop,host,_value",
                    &format!(",,1,{S},web-1,1.5"),
                ]),
                vec![series_of(&[("host", "web-1")], &[(T0, Some(1.5))])],
            ),
            (
                "null group-key cell is an empty tag; CRLF inside a quoted cell is a newline",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339,double,string,string",
                    "#group,false,false,false,false,true,true",
                    "#default,_result,,,,,",
                    ",result,table,_time,_value,dc,host",
                    ",,0,2024-01-01T00:00:00Z,1,,\"two\r\nlines\"",
                ]),
                vec![series_of(
                    &[("dc", ""), ("host", "two\nlines")],
                    &[(T0, Some(1.0))],
                )],
            ),
            (
                "RFC3339Nano: fractions floor to ms, before and after the epoch; offsets",
                body(&[
                    "#datatype,string,long,dateTime:RFC3339Nano,double",
                    "#group,false,false,false,false",
                    "#default,_result,,,",
                    ",result,table,_time,_value",
                    ",,0,1969-12-31T23:59:59.9995Z,1",
                    ",,0,1970-01-01T00:00:00.000999999Z,2",
                    ",,0,2024-01-01T01:00:00.5+01:00,3",
                    ",,0,2023-12-31T23:30:00-00:30,+Inf",
                ]),
                vec![series_of(
                    &[],
                    &[
                        (-1, Some(1.0)),
                        (0, Some(2.0)),
                        (T0 + 500, Some(3.0)),
                        (T0, Some(f64::INFINITY)),
                    ],
                )],
            ),
        ];
        for (name, body, expected) in cases {
            check_parse(name, &body, &expected);
        }
    }

    #[test]
    fn in_band_errors() {
        let err = parse_series(fixture("error_after_partial")).unwrap_err();
        assert_eq!(
            err,
            QueryError::Database {
                message: "runtime error @6:6-6:80: aggregateWindow: schema collision: cannot group float and integer types together, column _value".into()
            }
        );
        assert!(matches!(
            parse_tag_values(fixture("error_after_partial")),
            Err(QueryError::Database { .. })
        ));
        let only_error = body(&[
            "#datatype,string,long",
            "#group,true,true",
            "#default,,",
            ",error,reference",
            ",Failed to parse query,897",
        ]);
        assert_eq!(
            parse_series(&only_error).unwrap_err().to_string(),
            "query failed: Failed to parse query (reference 897)"
        );
        let without_annotations = ",error,reference\r\n,bucket not found,\r\n";
        let after_table = format!(
            "{}\r\n,error,reference\r\n,out of memory,\r\n",
            fixture("tag_values").trim_end()
        );
        assert_eq!(
            parse_tag_values(&after_table).unwrap_err().to_string(),
            "query failed: out of memory"
        );
        assert_eq!(
            parse_series(without_annotations).unwrap_err().to_string(),
            "query failed: bucket not found"
        );
    }

    #[test]
    fn malformed_bodies() {
        let head = "#datatype,string,long,dateTime:RFC3339,double\r\n#group,false,false,false,false\r\n#default,_result,,,\r\n";
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "short row",
                format!("{head},result,table,_time,_value\r\n,,0,2024-01-01T00:00:00Z\r\n"),
                "line 5 has 4 cells but the header on line 4 has 5",
            ),
            (
                "annotation widths differ",
                "#datatype,string,long\r\n#group,false,false,false\r\n".into(),
                "line 2 has 4 cells but the annotation row on line 1 has 3",
            ),
            (
                "no _value",
                format!("{head},result,table,_time,_other\r\n,,0,2024-01-01T00:00:00Z,1\r\n"),
                "the table header on line 4 has no _value column",
            ),
            (
                "bad timestamp",
                format!("{head},result,table,_time,_value\r\n,,0,2024-13-01T00:00:00Z,1\r\n"),
                "line 5 has a bad timestamp \"2024-13-01T00:00:00Z\"",
            ),
            (
                "bad timestamp in a second block, after a blank line",
                format!(
                    "{head},result,table,_time,_value\r\n,,0,2024-01-01T00:00:00Z,1\r\n\r\n{head},result,table,_time,_value\r\n,,1,yesterday,1\r\n"
                ),
                "line 11 has a bad timestamp \"yesterday\"",
            ),
            (
                "bad number",
                format!("{head},result,table,_time,_value\r\n,,0,2024-01-01T00:00:00Z,1.2.3\r\n"),
                "line 5: _value \"1.2.3\" is not a valid double",
            ),
            (
                "string field",
                "#datatype,string,long,dateTime:RFC3339,string\r\n#group,false,false,false,false\r\n#default,_result,,,\r\n,result,table,_time,_value\r\n,,0,2024-01-01T00:00:00Z,up\r\n".into(),
                "line 5: _value has datatype \"string\"; only numeric and boolean fields can be read as series",
            ),
            (
                "no annotations",
                ",result,table,_time,_value\r\n,_result,0,2024-01-01T00:00:00Z,1\r\n".into(),
                "the table header on line 1 has no #group annotation",
            ),
            (
                "not CSV of tables",
                "<html>502 Bad Gateway</html>\r\n".into(),
                "line 1 starts with \"<html>502 Bad Gateway</html>\"",
            ),
            (
                "annotations without a header",
                head.to_owned(),
                "the annotations from line 1 are not followed by a header row",
            ),
        ];
        for (name, body, want) in cases {
            // Line numbers are the same whether the body uses CRLF or LF.
            for body in [body.clone(), body.replace("\r\n", "\n")] {
                match parse_series(&body) {
                    Err(QueryError::Decode { reason }) => {
                        assert!(reason.starts_with(want), "{name}: {reason}")
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn tag_values_parse() {
        assert_eq!(
            parse_tag_values(fixture("tag_values")).unwrap(),
            ["db,1", "web-1", "web-2"]
        );
        let dup = body(&[
            "#datatype,string,long,string",
            "#group,false,false,false",
            "#default,_result,,",
            ",result,table,_value",
            ",,0,b",
            ",,0,a",
            ",,0,",
            ",,1,b",
        ]);
        assert_eq!(parse_tag_values(&dup).unwrap(), ["a", "b"]);
        assert_eq!(parse_tag_values("\r\n").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn error_bodies() {
        let long = "x".repeat(2000);
        for (status, body, want) in [
            (
                400,
                r#"{"code":"invalid","message":"compilation failed: error @1:1-1:5: undefined identifier frmo"}"#,
                "compilation failed: error @1:1-1:5: undefined identifier frmo".to_owned(),
            ),
            (
                404,
                r#"{"code":"not found","message":"bucket \"x\" not found"}"#,
                "bucket \"x\" not found".into(),
            ),
            (
                502,
                "<html>bad gateway</html>\n",
                "<html>bad gateway</html>".into(),
            ),
            (500, "  ", "HTTP status 500 with an empty body".into()),
            (500, &long, format!("{}…", "x".repeat(500))),
        ] {
            assert_eq!(parse_error_body(status, body), want);
        }
        let wide = "é".repeat(600);
        assert_eq!(parse_error_body(500, &wide).chars().count(), 501);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse_rows(&s, &["a".to_owned()]);
            let _ = parse_field_keys(&s);
            let _ = parse_series(&s);
            let _ = parse_tag_values(&s);
        }

        #[test]
        fn parse_never_panics_on_near_csv(
            rows in proptest::collection::vec("[#,\"\r\n a-z0-9_:.TZ+-]{0,40}", 0..12),
        ) {
            let head = "#datatype,string,long,dateTime:RFC3339,double,string\r\n#group,false,false,false,false,true\r\n#default,_result,,,,\r\n,result,table,_time,_value,host\r\n";
            let body = format!("{head}{}", rows.join("\r\n"));
            let _ = parse_series(&body);
            let _ = parse_series(&rows.join("\n"));
        }

        #[test]
        fn literal_round_trips(s in any::<String>()) {
            let (_, literals) = tokenize(&string_literal(&s));
            prop_assert_eq!(literals, vec![s]);
        }

        #[test]
        fn time_round_trips(ms in MIN_MS..=MAX_MS) {
            prop_assert_eq!(parse_time_ms(&format_time(ms)), Some(ms));
        }
    }
}
