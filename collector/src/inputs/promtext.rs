//! A parser for the Prometheus text exposition format, version 0.0.4.
//!
//! ```text
//! # HELP http_requests_total Requests served.
//! # TYPE http_requests_total counter
//! http_requests_total{method="post",code="200"} 1027 1395066363000
//! ```
//!
//! [`parse`] turns a whole exposition into typed [`Sample`]s, or fails with the first
//! malformed line (a [`ParseError`] with its 1-based line number), as Prometheus fails a
//! scrape with a broken line. It never panics, whatever the input.
//!
//! What it accepts, following the format's specification:
//! - `#` lines: `# HELP name text` (text escapes `\\` and `\n`), `# TYPE name type`
//!   (`counter`, `gauge`, `histogram`, `summary`, `untyped`; at most one per name, before
//!   the name's first sample), anything else is a comment (so OpenMetrics' `# EOF` and
//!   `# UNIT` are ignored);
//! - samples: `name{label="value",...} value [timestamp]`, blanks and tabs between
//!   tokens, an optional trailing comma in the label set, label values escaping `\\`,
//!   `\"` and `\n`; a value is a float (`1`, `-2.5e3`, `NaN`, `+Inf`, `-Inf`), a
//!   timestamp an integer of milliseconds;
//! - blank lines and a `\r` before the `\n` (Windows line endings).
//!
//! A sample named `<h>_bucket` (with an `le` label), `<h>_sum` or `<h>_count` belongs to
//! the family `<h>` when `<h>` was declared a histogram; `<s>` (with a `quantile` label),
//! `<s>_sum` and `<s>_count` to the family `<s>` declared a summary. Other samples form
//! their own family, `untyped` unless declared.
//!
//! Samples whose value is NaN or infinite are left out and listed in
//! [`Exposition::skipped`]: InfluxDB cannot store them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The type a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`: `_bucket` (with `le`), `_sum`, `_count` samples.
    Histogram,
    /// `summary`: quantile samples (with `quantile`), `_sum`, `_count`.
    Summary,
    /// `untyped`, or no `# TYPE` line.
    Untyped,
}

impl MetricType {
    fn from_token(token: &str) -> Option<Self> {
        Some(match token {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        })
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's own name: `http_requests_total`, `latency_bucket`, `latency_sum`.
    pub name: String,
    /// The family it belongs to: `latency` for `latency_bucket` of a histogram
    /// `latency`; the sample's name otherwise.
    pub family: String,
    /// The family's declared type, `Untyped` when none was declared.
    pub metric_type: MetricType,
    /// The labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// Always finite (non-finite samples go to [`Exposition::skipped`]).
    pub value: f64,
    /// The optional timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// 1-based line number in the exposition.
    pub line: usize,
}

/// A well-formed sample left out because its value is NaN or infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// 1-based line number.
    pub line: usize,
    /// The sample's name.
    pub name: String,
    /// The non-finite value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// The samples with finite values, in the order of the text.
    pub samples: Vec<Sample>,
    /// Samples left out because their value is NaN or ±Inf.
    pub skipped: Vec<Skipped>,
    /// `# TYPE` declarations, by family name.
    pub types: BTreeMap<String, MetricType>,
    /// `# HELP` texts, unescaped, by metric name.
    pub help: BTreeMap<String, String>,
}

/// The first malformed line of an exposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Longest piece of input quoted in an error message.
const SNIPPET_CHARS: usize = 40;

/// Quote at most [`SNIPPET_CHARS`] characters of `s` for an error message.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(SNIPPET_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Parse an exposition given as bytes; bytes that are not UTF-8 are an error naming
/// their line.
pub fn parse_bytes(body: &[u8]) -> Result<Exposition, ParseError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse(text),
        Err(e) => {
            let valid = body.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
            Err(ParseError {
                line,
                message: "not valid UTF-8".to_owned(),
            })
        }
    }
}

/// Parse a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut parser = Parser::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        parser
            .line(line, content)
            .map_err(|message| ParseError { line, message })?;
    }
    Ok(parser.out)
}

#[derive(Default)]
struct Parser {
    out: Exposition,
    /// Families that already had a sample: a `# TYPE` for them comes too late.
    sampled: BTreeSet<String>,
}

impl Parser {
    fn line(&mut self, line: usize, content: &str) -> Result<(), String> {
        let trimmed = content.trim_start_matches([' ', '\t']);
        if trimmed.trim_end_matches([' ', '\t']).is_empty() {
            return Ok(());
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            return self.comment(comment);
        }
        self.sample(line, trimmed)
    }

    fn comment(&mut self, rest: &str) -> Result<(), String> {
        let mut c = Cursor::new(rest);
        c.skip_blanks();
        let keyword = c.token();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        c.skip_blanks();
        if c.at_end() {
            // `# HELP` alone: a comment.
            return Ok(());
        }
        let name = c
            .metric_name()
            .map_err(|e| format!("in # {keyword}: {e}"))?;
        if keyword == "HELP" {
            let text = if c.at_end() {
                ""
            } else if c.skip_blanks() {
                c.rest()
            } else {
                return Err(format!(
                    "in # HELP: expected a blank after the metric name {}",
                    snippet(&name)
                ));
            };
            self.out.help.insert(name, unescape_help(text));
            return Ok(());
        }
        if !c.skip_blanks() {
            return Err(format!(
                "in # TYPE: expected a blank and a type after the metric name {}",
                snippet(&name)
            ));
        }
        let token = c.token();
        let metric_type = MetricType::from_token(token).ok_or_else(|| {
            format!(
                "in # TYPE: unknown type {} for {}; expected counter, gauge, histogram, summary or untyped",
                snippet(token),
                snippet(&name)
            )
        })?;
        c.skip_blanks();
        if !c.at_end() {
            return Err(format!(
                "in # TYPE: unexpected text {} after the type",
                snippet(c.rest())
            ));
        }
        if self.out.types.contains_key(&name) {
            return Err(format!("second # TYPE line for {}", snippet(&name)));
        }
        if self.sampled.contains(&name) {
            return Err(format!(
                "# TYPE line for {} comes after its samples",
                snippet(&name)
            ));
        }
        self.out.types.insert(name, metric_type);
        Ok(())
    }

    fn sample(&mut self, line: usize, text: &str) -> Result<(), String> {
        let mut c = Cursor::new(text);
        let name = c.metric_name()?;
        let blank_after_name = c.skip_blanks();
        let mut labels = BTreeMap::new();
        if c.peek() == Some('{') {
            c.bump();
            c.labels(&mut labels)?;
            c.skip_blanks();
        } else if !blank_after_name {
            return Err(match c.peek() {
                Some(ch) => format!(
                    "unexpected {ch:?} in the metric name after {}",
                    snippet(&name)
                ),
                None => format!("sample {} has no value", snippet(&name)),
            });
        }
        let value_token = c.token();
        if value_token.is_empty() {
            return Err(format!("sample {} has no value", snippet(&name)));
        }
        let value = parse_value(value_token).ok_or_else(|| {
            format!(
                "value {} of {} is not a number",
                snippet(value_token),
                snippet(&name)
            )
        })?;
        c.skip_blanks();
        let timestamp_ms = if c.at_end() {
            None
        } else {
            let token = c.token();
            let ts = token.parse::<i64>().map_err(|_| {
                format!(
                    "timestamp {} of {} is not an integer of milliseconds",
                    snippet(token),
                    snippet(&name)
                )
            })?;
            c.skip_blanks();
            if !c.at_end() {
                return Err(format!(
                    "unexpected text {} after the timestamp of {}",
                    snippet(c.rest()),
                    snippet(&name)
                ));
            }
            Some(ts)
        };

        let (family, metric_type) = self.family_of(&name);
        match metric_type {
            MetricType::Histogram if name.ends_with("_bucket") => {
                check_bound(&labels, "le", &name)?;
            }
            MetricType::Summary if name == family => {
                check_bound(&labels, "quantile", &name)?;
            }
            _ => {}
        }
        self.sampled.insert(family.clone());
        if value.is_finite() {
            self.out.samples.push(Sample {
                name,
                family,
                metric_type,
                labels,
                value,
                timestamp_ms,
                line,
            });
        } else {
            self.out.skipped.push(Skipped { line, name, value });
        }
        Ok(())
    }

    /// The family a sample name belongs to, and its type.
    fn family_of(&self, name: &str) -> (String, MetricType) {
        if let Some(t) = self.out.types.get(name) {
            return (name.to_owned(), *t);
        }
        let typed = |base: &str, allowed: &[MetricType]| {
            self.out
                .types
                .get(base)
                .filter(|t| allowed.contains(t))
                .map(|t| (base.to_owned(), *t))
        };
        let hist = [MetricType::Histogram];
        let both = [MetricType::Histogram, MetricType::Summary];
        let found = if let Some(base) = name.strip_suffix("_bucket") {
            typed(base, &hist)
        } else if let Some(base) = name.strip_suffix("_sum") {
            typed(base, &both)
        } else if let Some(base) = name.strip_suffix("_count") {
            typed(base, &both)
        } else {
            None
        };
        found.unwrap_or_else(|| (name.to_owned(), MetricType::Untyped))
    }
}

/// A histogram bucket needs `le`, a summary quantile `quantile`, each a float.
fn check_bound(labels: &BTreeMap<String, String>, label: &str, name: &str) -> Result<(), String> {
    match labels.get(label) {
        None => Err(format!("sample {} has no `{label}` label", snippet(name))),
        Some(v) if parse_value(v).is_none() => Err(format!(
            "label `{label}` of {} is {}, not a number",
            snippet(name),
            snippet(v)
        )),
        Some(_) => Ok(()),
    }
}

/// A sample value: Go's float syntax as the format uses it (`NaN`, `+Inf`, `-Inf`).
fn parse_value(token: &str) -> Option<f64> {
    // Rust's parser also accepts `inf`, `infinity` and `nan` in any case, as Go's does.
    token.parse::<f64>().ok()
}

/// Unescape a HELP text: `\\` and `\n`; any other backslash is kept as it is.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A position in one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    /// Skip blanks and tabs; true if there was at least one.
    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Everything up to the next blank or the end.
    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    fn metric_name(&mut self) -> Result<String, String> {
        self.name(
            |c| c.is_ascii_alphabetic() || c == '_' || c == ':',
            |c| c.is_ascii_alphanumeric() || c == '_' || c == ':',
        )
        .ok_or_else(|| format!("expected a metric name, found {}", snippet(self.rest())))
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    fn label_name(&mut self) -> Result<String, String> {
        self.name(
            |c| c.is_ascii_alphabetic() || c == '_',
            |c| c.is_ascii_alphanumeric() || c == '_',
        )
        .ok_or_else(|| format!("expected a label name, found {}", snippet(self.rest())))
    }

    fn name(
        &mut self,
        first: impl Fn(char) -> bool,
        next: impl Fn(char) -> bool,
    ) -> Option<String> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if first(c) => {}
            _ => return None,
        }
        let len = chars
            .find(|(_, c)| !next(*c))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).map(str::to_owned)
    }

    /// After the `{`: `name="value"` pairs separated by commas, an optional trailing
    /// comma, then `}`.
    fn labels(&mut self, labels: &mut BTreeMap<String, String>) -> Result<(), String> {
        loop {
            self.skip_blanks();
            if self.peek() == Some('}') {
                self.bump();
                return Ok(());
            }
            let name = self.label_name()?;
            self.skip_blanks();
            if self.bump() != Some('=') {
                return Err(format!(
                    "expected `=` after the label name {}",
                    snippet(&name)
                ));
            }
            self.skip_blanks();
            if self.bump() != Some('"') {
                return Err(format!(
                    "expected a quoted value for the label {}",
                    snippet(&name)
                ));
            }
            let value = self.label_value(&name)?;
            if labels.insert(name.clone(), value).is_some() {
                return Err(format!("label {} appears twice", snippet(&name)));
            }
            self.skip_blanks();
            match self.bump() {
                Some(',') => {}
                Some('}') => return Ok(()),
                Some(other) => {
                    return Err(format!(
                        "expected `,` or `}}` after the label {}, found {other:?}",
                        snippet(&name)
                    ))
                }
                None => return Err("the label set is not closed with `}`".to_owned()),
            }
        }
    }

    /// After the opening quote: the value up to the closing quote, unescaped.
    fn label_value(&mut self, name: &str) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "the value of the label {} is not closed with `\"`",
                        snippet(name)
                    ))
                }
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('n') => out.push('\n'),
                    Some(other) => {
                        return Err(format!(
                            "invalid escape `\\{other}` in the value of the label {}; only \\\\, \\\" and \\n are allowed",
                            snippet(name)
                        ))
                    }
                    None => {
                        return Err(format!(
                            "the value of the label {} ends in a lone backslash",
                            snippet(name)
                        ))
                    }
                },
                Some(ch) => out.push(ch),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// (name, labels, value, timestamp) of one sample.
    type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64, Option<i64>);

    /// Parse `text` and compare every sample.
    fn check(text: &str, expected: &[Expected<'_>]) {
        let got = parse(text).unwrap();
        let got: Vec<_> = got
            .samples
            .iter()
            .map(|s| (s.name.clone(), s.labels.clone(), s.value, s.timestamp_ms))
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|(n, l, v, t)| ((*n).to_owned(), labels(l), *v, *t))
            .collect();
        assert_eq!(got, want);
    }

    fn check_err(text: &str, line: usize, message_part: &str) {
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, line, "{err}");
        assert!(
            err.message.contains(message_part),
            "{err} does not contain {message_part:?}"
        );
    }

    #[test]
    fn samples() {
        check("a 1\n", &[("a", &[], 1.0, None)]);
        check("a 1", &[("a", &[], 1.0, None)]);
        check("  a\t-2.5e3   \r\n", &[("a", &[], -2500.0, None)]);
        check("a{} 1 17", &[("a", &[], 1.0, Some(17))]);
        check("a{}1", &[("a", &[], 1.0, None)]);
        check("a:b_c 1 -5", &[("a:b_c", &[], 1.0, Some(-5))]);
        check(
            r#"a{x="1",y = "2" ,} 3"#,
            &[("a", &[("x", "1"), ("y", "2")], 3.0, None)],
        );
        check(
            r#"a{path="C:\\dir",q="say \"hi\"",nl="1\n2"} 3"#,
            &[(
                "a",
                &[("path", r"C:\dir"), ("q", r#"say "hi""#), ("nl", "1\n2")],
                3.0,
                None,
            )],
        );
        check(
            "a{x=\"{},= #ü\"} 1",
            &[("a", &[("x", "{},= #ü")], 1.0, None)],
        );
        check("\n\n# just a comment\n#\n# EOF\n", &[]);
        check("", &[]);
    }

    #[test]
    fn help_and_type() {
        let e = parse(
            "# HELP a Some \\\\ text\\nmore \\q\n# TYPE a counter\n#TYPE b gauge\na 1\nb 2\nc 3\n",
        )
        .unwrap();
        assert_eq!(e.help["a"], "Some \\ text\nmore \\q");
        assert_eq!(e.types["a"], MetricType::Counter);
        assert_eq!(e.types["b"], MetricType::Gauge);
        let types: Vec<_> = e.samples.iter().map(|s| s.metric_type).collect();
        assert_eq!(
            types,
            [MetricType::Counter, MetricType::Gauge, MetricType::Untyped]
        );
    }

    #[test]
    fn histograms_and_summaries() {
        let text = "\
# TYPE h histogram
h_bucket{le=\"0.5\"} 1
h_bucket{le=\"+Inf\"} 3
h_sum 4.5
h_count 3
# TYPE s summary
s{quantile=\"0.99\"} NaN
s{quantile=\"0.5\"} 2
s_sum 10
s_count 5
h_total 1
";
        let e = parse(text).unwrap();
        let got: Vec<_> = e
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.family.as_str(), s.metric_type))
            .collect();
        use MetricType::*;
        assert_eq!(
            got,
            [
                ("h_bucket", "h", Histogram),
                ("h_bucket", "h", Histogram),
                ("h_sum", "h", Histogram),
                ("h_count", "h", Histogram),
                ("s", "s", Summary),
                ("s_sum", "s", Summary),
                ("s_count", "s", Summary),
                ("h_total", "h_total", Untyped),
            ]
        );
        assert_eq!(e.skipped.len(), 1);
        assert_eq!(e.skipped[0].line, 7);
        assert_eq!(e.skipped[0].name, "s");
        assert!(e.skipped[0].value.is_nan());
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let e = parse("a +Inf\nb -Inf\nc NaN\nd 1\ne Inf\n").unwrap();
        assert_eq!(e.samples.len(), 1);
        let skipped: Vec<_> = e
            .skipped
            .iter()
            .map(|s| (s.line, s.name.as_str()))
            .collect();
        assert_eq!(skipped, [(1, "a"), (2, "b"), (3, "c"), (5, "e")]);
    }

    #[test]
    fn errors_name_the_line() {
        check_err("a 1\n\nb{x=\"1\" 2\n", 3, "expected `,` or `}`");
        check_err("a 1\nnot a sample\n", 2, "is not a number");
        check_err("a", 1, "has no value");
        check_err("a{x=\"1\"}", 1, "has no value");
        check_err("a{x=\"1\"} 1 2 3", 1, "unexpected text");
        check_err("a 1 1.5", 1, "not an integer of milliseconds");
        check_err("a{x=1} 1", 1, "expected a quoted value");
        check_err("a{x=\"1} 1", 1, "is not closed");
        check_err("a{x=\"\\t\"} 1", 1, "invalid escape `\\t`");
        check_err("a{x=\"1\",x=\"2\"} 1", 1, "appears twice");
        check_err("a{1x=\"1\"} 1", 1, "expected a label name");
        check_err("a{x\"1\"} 1", 1, "expected `=`");
        check_err("1a 1", 1, "expected a metric name");
        check_err("a-b 1", 1, "unexpected '-'");
        check_err("# TYPE a counter\n# TYPE a gauge\n", 2, "second # TYPE");
        check_err("a 1\n# TYPE a counter\n", 2, "after its samples");
        check_err("# TYPE a countr\n", 1, "unknown type");
        check_err("# TYPE a\n", 1, "expected a blank and a type");
        check_err("# TYPE a gauge extra\n", 1, "unexpected text");
        check_err("# TYPE h histogram\nh_bucket 1\n", 2, "no `le` label");
        check_err(
            "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
            2,
            "not a number",
        );
        check_err("# TYPE s summary\ns 1\n", 2, "no `quantile` label");
        let err = parse_bytes(b"a 1\nb\xff 2\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: not valid UTF-8");
    }

    #[test]
    fn long_garbage_is_quoted_briefly() {
        let garbage = format!("x {}", "y".repeat(10_000));
        let err = parse(&garbage).unwrap_err();
        assert!(err.message.len() < 200, "{err}");
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_bytes(&bytes);
        }

        #[test]
        fn never_panics_on_exposition_like_text(
            text in "([a-z_:]{0,4}(\\{[a-z]{0,3}=?\"?[a-z\\\\\"n ,]{0,6}\"?,?\\}?)?[ \t]{0,2}[-+0-9.eEInfNa]{0,6}[ \t]?[0-9]{0,3}|# (HELP|TYPE) [a-z_]{0,3} [a-z\\\\]{0,8})(\r?\n)?{0,1}"
                .prop_map(|s| s.repeat(3))
        ) {
            let _ = parse(&text);
        }

        #[test]
        fn well_formed_samples_round_trip(
            name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,10}",
            label in "[a-zA-Z_][a-zA-Z0-9_]{0,5}",
            value_text in "[^\\\\\"\n]{0,10}",
            value in -1e12f64..1e12,
            ts in proptest::option::of(any::<i64>()),
        ) {
            let mut text = format!("{name}{{{label}=\"{value_text}\"}} {value}");
            if let Some(ts) = ts {
                text.push_str(&format!(" {ts}"));
            }
            let e = parse(&text).unwrap();
            prop_assert_eq!(e.samples.len(), 1);
            let s = &e.samples[0];
            prop_assert_eq!(&s.name, &name);
            prop_assert_eq!(s.labels.get(&label), Some(&value_text));
            prop_assert_eq!(s.value, value);
            prop_assert_eq!(s.timestamp_ms, ts);
        }
    }
}
