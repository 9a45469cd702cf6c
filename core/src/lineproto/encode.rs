//! Point → line protocol. See the module docs of [`super`] for the escaping rules.

use super::Precision;
use crate::point::{FieldValue, Point};

/// Characters escaped in a measurement name.
pub(super) const MEASUREMENT_ESCAPES: &[u8] = b", ";
/// Characters escaped in tag keys, tag values and field keys.
pub(super) const KEY_ESCAPES: &[u8] = b", =";
/// Characters escaped inside a quoted string field value.
pub(super) const STRING_ESCAPES: &[u8] = b"\"\\";

/// Which escape set a name is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escapes {
    /// [`MEASUREMENT_ESCAPES`], plus a leading `#`.
    Measurement,
    /// [`KEY_ESCAPES`].
    Key,
}

impl Escapes {
    fn bit(self) -> u8 {
        match self {
            Escapes::Measurement => MEASUREMENT_BIT,
            Escapes::Key => KEY_BIT,
        }
    }

    /// Whether `b` is escaped in this position (not counting the leading `#`).
    pub(super) fn is_escaped(self, b: u8) -> bool {
        CLASS[b as usize] & self.bit() != 0
    }
}

const MEASUREMENT_BIT: u8 = 1;
const KEY_BIT: u8 = 2;
const BACKSLASH_BIT: u8 = 4;

/// Per byte: which escape sets it belongs to, and whether it is a backslash.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < MEASUREMENT_ESCAPES.len() {
        t[MEASUREMENT_ESCAPES[i] as usize] |= MEASUREMENT_BIT;
        i += 1;
    }
    let mut i = 0;
    while i < KEY_ESCAPES.len() {
        t[KEY_ESCAPES[i] as usize] |= KEY_BIT;
        i += 1;
    }
    t[b'\\' as usize] |= BACKSLASH_BIT;
    t
};

/// Append `point` as one line of line protocol, ending in `\n`, to `buf`.
///
/// The timestamp (nanoseconds) is divided down to `precision`, rounding towards
/// negative infinity, so `-1` ns is `-1` s. A point without a timestamp is written
/// without one, and the server stamps it.
pub fn encode(point: &Point, precision: Precision, buf: &mut Vec<u8>) {
    write_name(buf, point.measurement(), Escapes::Measurement);
    for (key, value) in point.tags() {
        buf.push(b',');
        write_name(buf, key, Escapes::Key);
        buf.push(b'=');
        write_name(buf, value, Escapes::Key);
    }
    let mut sep = b' ';
    for (key, value) in point.fields() {
        buf.push(sep);
        sep = b',';
        write_name(buf, key, Escapes::Key);
        buf.push(b'=');
        write_field_value(buf, value);
    }
    if let Some(nanos) = point.timestamp() {
        buf.push(b' ');
        write_i64(buf, nanos.div_euclid(precision.nanos_per_unit()));
    }
    buf.push(b'\n');
}

/// Append every point of `points`, one line each, to `buf`.
pub fn encode_all(points: &[Point], precision: Precision, buf: &mut Vec<u8>) {
    for point in points {
        encode(point, precision, buf);
    }
}

/// Write a measurement, tag key, tag value or field key with its escapes.
#[inline]
fn write_name(buf: &mut Vec<u8>, name: &str, escapes: Escapes) {
    let bytes = name.as_bytes();
    let leading_hash = escapes == Escapes::Measurement && bytes.first() == Some(&b'#');
    if !leading_hash && !needs_escaping(bytes, escapes) {
        buf.extend_from_slice(bytes);
        return;
    }
    write_name_escaped(buf, bytes, escapes);
}

/// Whether `bytes` holds a backslash or a character of the escape set: eight bytes at a
/// time (this check runs on every name of every point, and almost never finds one).
#[inline]
fn needs_escaping(bytes: &[u8], escapes: Escapes) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Non-zero iff some byte of `word` equals `byte`.
    fn has(word: u64, byte: u8) -> u64 {
        let x = word ^ (ONES * byte as u64);
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    // Spelled out rather than folded over MEASUREMENT_ESCAPES/KEY_ESCAPES, which
    // measured slower; a property test checks that this agrees with those sets.
    let found = |word: u64| {
        let common = has(word, b'\\') | has(word, b',') | has(word, b' ');
        match escapes {
            Escapes::Measurement => common != 0,
            Escapes::Key => common | has(word, b'=') != 0,
        }
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if found(u64::from_ne_bytes(word)) {
            return true;
        }
    }
    let mask = escapes.bit() | BACKSLASH_BIT;
    chunks
        .remainder()
        .iter()
        .fold(0, |acc, &b| acc | CLASS[b as usize])
        & mask
        != 0
}

/// The slow path of [`write_name`]. Works on bytes: every character it looks at is
/// ASCII, and UTF-8 never uses ASCII bytes inside a multi-byte character.
fn write_name_escaped(buf: &mut Vec<u8>, bytes: &[u8], escapes: Escapes) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            let run_start = i;
            while i < bytes.len() && bytes[i] == b'\\' {
                i += 1;
            }
            let run = i - run_start;
            match bytes.get(i) {
                // At the end: doubled, so the separator that follows is not escaped.
                None => buf.resize(buf.len() + 2 * run, b'\\'),
                Some(&c)
                    if escapes.is_escaped(c)
                        || (escapes == Escapes::Measurement && run_start == 0 && c == b'#') =>
                {
                    // Doubled, plus the escape of `c` itself: an odd run.
                    buf.resize(buf.len() + 2 * run + 1, b'\\');
                    buf.push(c);
                    i += 1;
                }
                Some(_) => buf.resize(buf.len() + run, b'\\'),
            }
        } else if escapes.is_escaped(b) || (escapes == Escapes::Measurement && i == 0 && b == b'#')
        {
            buf.push(b'\\');
            buf.push(b);
            i += 1;
        } else {
            // Copy up to the next byte that needs a look.
            let start = i;
            while i < bytes.len() && bytes[i] != b'\\' && !escapes.is_escaped(bytes[i]) {
                i += 1;
            }
            buf.extend_from_slice(&bytes[start..i]);
        }
    }
}

fn write_field_value(buf: &mut Vec<u8>, value: &FieldValue) {
    match value {
        FieldValue::Float(v) => write_f64(buf, *v),
        FieldValue::Integer(v) => {
            write_i64(buf, *v);
            buf.push(b'i');
        }
        FieldValue::UInteger(v) => {
            write_u64(buf, *v);
            buf.push(b'u');
        }
        FieldValue::Boolean(v) => buf.extend_from_slice(if *v { b"true" } else { b"false" }),
        FieldValue::String(s) => {
            buf.push(b'"');
            let bytes = s.as_bytes();
            let mut start = 0;
            for (i, &b) in bytes.iter().enumerate() {
                if STRING_ESCAPES.contains(&b) {
                    buf.extend_from_slice(&bytes[start..i]);
                    buf.push(b'\\');
                    buf.push(b);
                    start = i + 1;
                }
            }
            buf.extend_from_slice(&bytes[start..]);
            buf.push(b'"');
        }
    }
}

/// Shortest text that parses back to exactly `v` (Ryū): plain decimal with at least
/// one fractional digit for ordinary magnitudes (`1.0`, `0.25`), exponent form outside
/// them (`1e300`, `1.5e-7`), which InfluxDB reads as floats. `v` is finite: the point
/// builder refuses NaN and infinities.
fn write_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
}

/// Two ASCII digits for each of 0..100.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

fn write_u64(buf: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        tmp[i] = b'0' + n as u8;
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn write_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    write_u64(buf, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::PointBuilder;

    /// Encodes the built point and compares with the expected line (without `\n`).
    fn check(point: PointBuilder, precision: Precision, expected: &str) {
        let point = point.build().unwrap();
        let mut buf = Vec::new();
        encode(&point, precision, &mut buf);
        let line = String::from_utf8(buf).unwrap();
        assert_eq!(line.strip_suffix('\n'), Some(expected), "line: {line:?}");
    }

    fn ns(point: PointBuilder, expected: &str) {
        check(point, Precision::Nanoseconds, expected);
    }

    #[test]
    fn field_types() {
        let p = || Point::builder("m");
        ns(p().field("f", 1.0), "m f=1.0");
        ns(p().field("f", -0.0), "m f=-0.0");
        ns(p().field("f", 0.1), "m f=0.1");
        ns(
            p().field("f", 100.0 * 1234.0 / 40001.0),
            "m f=3.084922876928077",
        );
        ns(p().field("f", 1.5e300), "m f=1.5e300");
        ns(p().field("f", 1e16), "m f=1e16");
        ns(
            p().field("f", 9_999_999_999_999_998.0),
            "m f=9999999999999998.0",
        );
        ns(p().field("f", 1e-5), "m f=0.00001");
        ns(p().field("f", 1.5e-7), "m f=1.5e-7");
        ns(
            p().field("f", f64::MIN_POSITIVE / 2.0),
            "m f=1.1125369292536007e-308",
        );
        ns(p().field("f", 5e-324), "m f=5e-324");
        ns(p().field("f", f64::MAX), "m f=1.7976931348623157e308");
        ns(p().field("f", f32::MAX), "m f=3.4028234663852886e38");
        ns(p().field("i", 42i64), "m i=42i");
        ns(p().field("i", 0i64), "m i=0i");
        ns(p().field("i", i64::MIN), "m i=-9223372036854775808i");
        ns(p().field("i", i64::MAX), "m i=9223372036854775807i");
        ns(p().field("u", 42u64), "m u=42u");
        ns(p().field("u", u64::MAX), "m u=18446744073709551615u");
        ns(p().field("b", true), "m b=true");
        ns(p().field("b", false), "m b=false");
        ns(p().field("s", ""), r#"m s="""#);
        ns(p().field("s", "plain text"), r#"m s="plain text""#);
        ns(
            p().field("b", true).field("a", 1i64).field("c", "x"),
            r#"m a=1i,b=true,c="x""#,
        );
    }

    #[test]
    fn escaping() {
        let p = Point::builder;
        // Measurement: comma and space; `=` and quotes are literal there.
        ns(p("a,b c=\"d").field("f", 1i64), r#"a\,b\ c="d f=1i"#);
        // A leading `#` would make the line a comment (the builder refuses it).
        ns(p("m#").field("f", 1i64), r"m# f=1i");
        ns(p(r"\#m").field("f", 1i64), r"\\\#m f=1i");
        // Tag keys, tag values, field keys: comma, space and `=`.
        ns(
            p("m").tag("k,1 =", "v,1 =").field("f,1 =", 1i64),
            r"m,k\,1\ \==v\,1\ \= f\,1\ \==1i",
        );
        // Quotes are literal in names, escaped in string values with the backslash.
        ns(
            p("m").tag("q\"", "\"v\"").field("s", r#"say "hi" \o/"#),
            r#"m,q"="v" s="say \"hi\" \\o/""#,
        );
        // Tags and fields come out sorted.
        ns(
            p("m")
                .tag("z", "1")
                .tag("a", "2")
                .field("y", 1i64)
                .field("b", 2i64),
            "m,a=2,z=1 b=2i,y=1i",
        );
        // Newlines are refused in names but travel raw inside string values.
        ns(p("m").field("s", "a\nb\r\n"), "m s=\"a\nb\r\n\"");
        // Unicode passes through.
        ns(
            p("température").tag("hôte", "サーバー 1").field("値", "ü"),
            "température,hôte=サーバー\\ 1 値=\"ü\"",
        );
    }

    #[test]
    fn backslashes_in_names() {
        let tag = |v: &str, expected: &str| {
            ns(
                Point::builder("m").tag("t", v).field("f", 1i64),
                &format!("m,t={expected} f=1i"),
            );
        };
        // Verbatim unless before an escaped character or at the end.
        tag(r"C:\Windows\System32", r"C:\Windows\System32");
        tag(r"\\server\share", r"\\server\share");
        tag(r"\n", r"\n");
        // A backslash at the end or before an escaped character has no faithful
        // encoding for InfluxDB 1.x: the builder refuses it, so the encoder never sees it.
        for bad in [r"\", r"a\", r"a\\", r"a\ b", r"a\\,b", r"a\="] {
            assert!(
                Point::builder("m")
                    .tag("t", bad)
                    .field("f", 1i64)
                    .build()
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_per_precision() {
        let p = |ts: i64| Point::builder("m").field("f", 1i64).timestamp(ts);
        let t = 1_700_000_000_123_456_789;
        check(p(t), Precision::Nanoseconds, "m f=1i 1700000000123456789");
        check(p(t), Precision::Microseconds, "m f=1i 1700000000123456");
        check(p(t), Precision::Milliseconds, "m f=1i 1700000000123");
        check(p(t), Precision::Seconds, "m f=1i 1700000000");
        // Negative timestamps round down (floor), not towards zero.
        check(p(-1), Precision::Seconds, "m f=1i -1");
        check(p(-1), Precision::Milliseconds, "m f=1i -1");
        check(p(-1_000_000_000), Precision::Seconds, "m f=1i -1");
        check(p(-1_000_000_001), Precision::Seconds, "m f=1i -2");
        check(p(-1_500), Precision::Microseconds, "m f=1i -2");
        check(p(0), Precision::Seconds, "m f=1i 0");
        check(
            p(i64::MIN),
            Precision::Nanoseconds,
            "m f=1i -9223372036854775808",
        );
        check(p(i64::MIN), Precision::Seconds, "m f=1i -9223372037");
        check(p(i64::MAX), Precision::Seconds, "m f=1i 9223372036");
        // No timestamp: the server stamps the point.
        check(
            Point::builder("m").field("f", 1i64),
            Precision::Seconds,
            "m f=1i",
        );
    }

    #[test]
    fn encode_all_appends_lines() {
        let a = Point::builder("a").field("f", 1i64).build().unwrap();
        let b = Point::builder("b")
            .field("f", 2i64)
            .timestamp(5)
            .build()
            .unwrap();
        let mut buf = b"existing\n".to_vec();
        encode_all(&[a, b], Precision::Nanoseconds, &mut buf);
        assert_eq!(buf, b"existing\na f=1i\nb f=2i 5\n");
    }

    proptest::proptest! {
        #[test]
        fn word_at_a_time_check_agrees_with_table(bytes in proptest::collection::vec(
            proptest::sample::select(b"ab,= \\#\x00\x80\xff".to_vec()), 0..40,
        )) {
            for escapes in [Escapes::Measurement, Escapes::Key] {
                let mask = escapes.bit() | BACKSLASH_BIT;
                let slow = bytes.iter().any(|&b| CLASS[b as usize] & mask != 0);
                proptest::prop_assert_eq!(needs_escaping(&bytes, escapes), slow);
            }
        }
    }

    #[test]
    fn integers_format_like_std() {
        let mut buf = Vec::new();
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12345,
            i64::MAX,
            i64::MIN,
            -1,
            -10,
            -100,
        ] {
            buf.clear();
            write_i64(&mut buf, n);
            assert_eq!(buf, n.to_string().into_bytes());
        }
        for n in [0, 7, 10, 100, u64::MAX, u64::MAX / 10] {
            buf.clear();
            write_u64(&mut buf, n);
            assert_eq!(buf, n.to_string().into_bytes());
        }
    }
}
