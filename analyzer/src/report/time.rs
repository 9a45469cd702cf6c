//! Wall-clock arithmetic for reports: fixed UTC offsets and proleptic Gregorian dates,
//! without a calendar library. Times are unix milliseconds throughout.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A fixed offset from UTC (`+08:00`, `-05:30`, `Z`): no daylight saving time, no
/// IANA zone names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcOffset {
    seconds: i32,
}

impl UtcOffset {
    /// UTC itself.
    pub const UTC: UtcOffset = UtcOffset { seconds: 0 };

    /// An offset of whole minutes, at most ±18 hours.
    pub fn from_minutes(minutes: i32) -> Option<Self> {
        (minutes.abs() <= 18 * 60).then_some(UtcOffset {
            seconds: minutes * 60,
        })
    }

    /// The offset in milliseconds (local = UTC + this).
    pub fn as_millis(self) -> i64 {
        i64::from(self.seconds) * 1000
    }

    /// The local wall-clock time of `ms`.
    pub fn local(self, ms: i64) -> Civil {
        Civil::from_ms(ms + self.as_millis())
    }
}

impl FromStr for UtcOffset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?} is not a UTC offset; write it like \"+08:00\", \"-05:30\" or \"+00:00\" (IANA zone names are not supported)")
        };
        if s == "Z" || s == "UTC" {
            return Ok(UtcOffset::UTC);
        }
        let b = s.as_bytes();
        if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
            return Err(bad());
        }
        let digits = |r: std::ops::Range<usize>| -> Option<i32> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (Some(h), Some(m)) = (digits(1..3), digits(4..6)) else {
            return Err(bad());
        };
        if h > 18 || m > 59 {
            return Err(bad());
        }
        let minutes = (h * 60 + m) * if b[0] == b'-' { -1 } else { 1 };
        UtcOffset::from_minutes(minutes).ok_or_else(bad)
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.seconds < 0 { '-' } else { '+' };
        let m = self.seconds.abs() / 60;
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A wall-clock time, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1–12.
    pub month: i64,
    /// 1–31.
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: i64,
}

impl Civil {
    /// The UTC calendar time of `ms` (apply an offset first for local time).
    pub fn from_ms(ms: i64) -> Self {
        let days = ms.div_euclid(DAY_MS);
        let in_day = ms.rem_euclid(DAY_MS) / 1000;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            // 1970-01-01 was a Thursday (3).
            weekday: (days + 3).rem_euclid(7),
        }
    }

    /// `2026-11-21`
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `08:00`
    pub fn hh_mm(&self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }

    /// `2026-11-21 08:00`
    pub fn date_time(&self) -> String {
        format!("{} {}", self.date(), self.hh_mm())
    }
}

pub use hostscope_core::calendar::{civil_from_days, days_from_civil};

/// A duration as the reports write it: `90m`, `24h`, `36h`, `7d`, `3d 12h`.
pub fn format_period(ms: i64) -> String {
    let minutes = ms / 60_000;
    let (hours, m) = (minutes / 60, minutes % 60);
    let mut parts = Vec::new();
    if hours >= 48 {
        parts.push(format!("{}d", hours / 24));
        if hours % 24 > 0 {
            parts.push(format!("{}h", hours % 24));
        }
    } else if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(format!("{m}m"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_and_print() {
        for (text, minutes) in [
            ("+08:00", 480),
            ("-05:30", -330),
            ("+00:00", 0),
            ("Z", 0),
            ("+14:00", 840),
        ] {
            let o: UtcOffset = text.parse().unwrap();
            assert_eq!(o, UtcOffset::from_minutes(minutes).unwrap(), "{text}");
        }
        assert_eq!("-05:30".parse::<UtcOffset>().unwrap().to_string(), "-05:30");
        for bad in [
            "",
            "8",
            "+8:00",
            "+08:60",
            "+19:00",
            "Asia/Shanghai",
            "+0800",
            "+-8:00",
            "++08:00",
        ] {
            let err = bad.parse::<UtcOffset>().unwrap_err();
            assert!(err.contains("UTC offset"), "{bad}: {err}");
        }
    }

    #[test]
    fn civil_round_trips() {
        for days in [-719_468, -1, 0, 59, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2024-02-29 12:34:56 UTC, a Thursday.
        let c = Civil::from_ms(1_709_210_096_000);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second, c.weekday),
            (2024, 2, 29, 12, 34, 56, 3)
        );
        assert_eq!(c.date_time(), "2024-02-29 12:34");
        let local = "+08:00"
            .parse::<UtcOffset>()
            .unwrap()
            .local(1_709_210_096_000);
        assert_eq!(local.date_time(), "2024-02-29 20:34");
        assert_eq!(Civil::from_ms(-1).date_time(), "1969-12-31 23:59");
    }

    #[test]
    fn periods_read_well() {
        for (ms, want) in [
            (86_400_000, "24h"),
            (7 * 86_400_000, "7d"),
            (3_600_000, "1h"),
            (36 * 3_600_000, "36h"),
            (90 * 60_000, "1h 30m"),
            (0, "0m"),
            (8 * 86_400_000 + 3_600_000, "8d 1h"),
            (2 * 86_400_000 + 60_000, "2d 1m"),
        ] {
            assert_eq!(format_period(ms), want, "{ms}");
        }
    }
}
