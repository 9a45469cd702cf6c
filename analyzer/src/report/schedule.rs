//! `[[analyzer.reports]]`: when each report is sent, over which period, to whom.
//!
//! Schedules are wall-clock times at a fixed UTC offset (`timezone = "+08:00"`), so
//! there is no daylight saving time: a zone that changes its offset needs its config
//! changed with it. IANA zone names are not supported, to keep the analyzer free of a
//! time zone database.

use std::fmt;
use std::time::Duration;

use hostscope_core::config::{ConfigErrors, HumanDuration};
use serde::Deserialize;

use super::store::ReportMeta;
use super::time::{days_from_civil, UtcOffset, DAY_MS};
use super::Language;

/// `[[analyzer.reports]]`: one scheduled report.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// The report's name, unique among the reports: shown in the subject and in the
    /// web's list of reports.
    pub name: String,
    /// When it is sent, in `timezone`: `"hourly"` (at minute 0), `"daily HH:MM"` or
    /// `"weekly DAY HH:MM"` with DAY one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`,
    /// `sun`.
    pub schedule: String,
    /// The period it covers, ending when it is sent. Default `1h` for hourly, `24h`
    /// for daily, `7d` for weekly reports.
    pub period: Option<HumanDuration>,
    /// Recipients' e-mail addresses. Default: `smtp.to`.
    pub to: Option<Vec<String>>,
    /// The hosts it covers. Default: every host that reported or alerted in the
    /// period.
    pub hosts: Option<Vec<String>>,
    /// The fixed UTC offset of the schedule and of the times the report shows, like
    /// `"+08:00"` or `"-05:30"`. Default `"+00:00"`. IANA zone names (and so daylight
    /// saving time) are not supported.
    pub timezone: Option<String>,
    /// `en` or `zh-CN`. Default: the analyzer's language for e-mail.
    pub language: Option<String>,
}

/// When a report is due, in local (offset) wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every hour at minute 0.
    Hourly,
    /// Every day at `minute` minutes after local midnight.
    Daily { minute: i64 },
    /// Every week on `weekday` (0 = Monday) at `minute` minutes after local midnight.
    Weekly { weekday: i64, minute: i64 },
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Schedule {
    /// Reads `hourly`, `daily HH:MM` or `weekly DAY HH:MM` (case-insensitive, any
    /// whitespace between the words).
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let usage = "write \"hourly\", \"daily HH:MM\" or \"weekly DAY HH:MM\" (DAY: mon, tue, wed, thu, fri, sat, sun)";
        match words.as_slice() {
            ["hourly"] => Ok(Schedule::Hourly),
            ["daily", time] => Ok(Schedule::Daily {
                minute: parse_hh_mm(time)
                    .ok_or_else(|| format!("{time:?} is not a time HH:MM; {usage}"))?,
            }),
            ["weekly", day, time] => {
                let weekday = WEEKDAYS
                    .iter()
                    .position(|d| d == day)
                    .ok_or_else(|| format!("{day:?} is not a day; {usage}"))?;
                Ok(Schedule::Weekly {
                    weekday: weekday as i64,
                    minute: parse_hh_mm(time)
                        .ok_or_else(|| format!("{time:?} is not a time HH:MM; {usage}"))?,
                })
            }
            _ => Err(format!("{s:?} is not a schedule; {usage}")),
        }
    }

    /// The period a report of this schedule covers unless configured.
    pub fn default_period(self) -> Duration {
        Duration::from_millis(match self {
            Schedule::Hourly => 3_600_000,
            Schedule::Daily { .. } => DAY_MS as u64,
            Schedule::Weekly { .. } => 7 * DAY_MS as u64,
        })
    }

    /// The last due time at or before `at_ms`: due times come once a cycle (an hour,
    /// a day or a week; the offset is fixed), so it is the first one after one cycle
    /// earlier.
    pub fn last_due(self, at_ms: i64, offset: UtcOffset) -> i64 {
        let cycle = i64::try_from(self.default_period().as_millis()).unwrap_or(i64::MAX);
        self.next_due(at_ms.saturating_sub(cycle), offset)
    }

    /// The first due time strictly after `after_ms` (unix ms): a report sent at its
    /// due time `t` asks for `next_due(t)` and gets the following one.
    pub fn next_due(self, after_ms: i64, offset: UtcOffset) -> i64 {
        let local = after_ms + offset.as_millis();
        let next_local = match self {
            Schedule::Hourly => (local.div_euclid(3_600_000) + 1) * 3_600_000,
            Schedule::Daily { minute } => {
                let at = local.div_euclid(DAY_MS) * DAY_MS + minute * 60_000;
                if at > local {
                    at
                } else {
                    at + DAY_MS
                }
            }
            Schedule::Weekly { weekday, minute } => {
                let day = local.div_euclid(DAY_MS);
                // 1970-01-01 was a Thursday (weekday 3).
                let today = (day + 3).rem_euclid(7);
                let at = (day + (weekday - today).rem_euclid(7)) * DAY_MS + minute * 60_000;
                if at > local {
                    at
                } else {
                    at + 7 * DAY_MS
                }
            }
        };
        next_local - offset.as_millis()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
        match *self {
            Schedule::Hourly => f.write_str("hourly"),
            Schedule::Daily { minute } => write!(f, "daily {}", hm(minute)),
            Schedule::Weekly { weekday, minute } => write!(
                f,
                "weekly {} {}",
                WEEKDAYS.get(weekday as usize).copied().unwrap_or("?"),
                hm(minute)
            ),
        }
    }
}

/// `H:MM` or `HH:MM` (24-hour) as minutes after midnight.
fn parse_hh_mm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    let digits = |p: &str, len: std::ops::RangeInclusive<usize>| -> Option<i64> {
        (len.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (h, m) = (digits(h, 1..=2)?, digits(m, 2..=2)?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// A validated `[[analyzer.reports]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    pub name: String,
    pub schedule: Schedule,
    pub period: Duration,
    /// Empty: send to `smtp.to`.
    pub to: Vec<String>,
    /// `None`: every host.
    pub hosts: Option<Vec<String>>,
    pub offset: UtcOffset,
    /// `None`: the analyzer's language for e-mail.
    pub language: Option<Language>,
}

impl ReportSettings {
    /// The first due time strictly after `after_ms`.
    pub fn next_due(&self, after_ms: i64) -> i64 {
        self.schedule.next_due(after_ms, self.offset)
    }

    /// The last due time at or before `at_ms`.
    pub fn last_due(&self, at_ms: i64) -> i64 {
        self.schedule.last_due(at_ms, self.offset)
    }

    /// The period a report due at `due_ms` covers: `period` up to `due_ms` (a due
    /// time is always on a whole minute).
    pub fn range_at(&self, due_ms: i64) -> Option<hostscope_core::influx::TimeRange> {
        super::range_ending(due_ms, self.period)
    }
}

/// The scheduled reports whose latest due time, at `now_ms`, passed without a report
/// (the analyzer was down then): `(index into reports, due time)`. Only a schedule
/// that has made a report before counts (a new one starts at its next due time), and
/// only its latest due time is made up, not every one missed.
pub fn missed(reports: &[ReportSettings], made: &[ReportMeta], now_ms: i64) -> Vec<(usize, i64)> {
    reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let due = r.last_due(now_ms);
            let range = r.range_at(due)?;
            let mine: Vec<&ReportMeta> = made
                .iter()
                .filter(|m| m.name.as_deref() == Some(r.name.as_str()))
                .collect();
            let before = mine.iter().any(|m| m.end_ms < range.end_ms);
            let done = mine.iter().any(|m| m.end_ms >= range.end_ms);
            (before && !done).then_some((i, due))
        })
        .collect()
}

/// Longest period a report may cover.
pub const MAX_PERIOD: Duration = Duration::from_secs(93 * 86_400);

/// Validates every report, pushing errors named `analyzer.reports[i].<key>`.
pub fn validate(reports: &[ReportConfig], errors: &mut ConfigErrors) -> Vec<ReportSettings> {
    let mut out = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let key = |k: &str| format!("analyzer.reports[{i}].{k}");
        let before = errors.issues.len();
        let name = r.name.trim();
        if name.is_empty() {
            errors.push(key("name"), "is empty");
        } else if name.chars().any(char::is_control) || name.chars().count() > 100 {
            errors.push(
                key("name"),
                "must be at most 100 characters, without control characters",
            );
        } else if reports[..i].iter().any(|o| o.name.trim() == name) {
            errors.push(key("name"), format!("{name:?} names an earlier report too"));
        }
        let schedule = match Schedule::parse(&r.schedule) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(key("schedule"), e);
                None
            }
        };
        let period = r.period.map(|p| p.get());
        if let Some(p) = period {
            if p < Duration::from_secs(60) || p > MAX_PERIOD {
                errors.push(key("period"), "must be between 1m and 93d");
            }
        }
        let to = r.to.clone().unwrap_or_default();
        if r.to.as_ref().is_some_and(Vec::is_empty) {
            errors.push(
                key("to"),
                "is empty; leave it out to send to smtp.to, or list addresses",
            );
        }
        for (j, addr) in to.iter().enumerate() {
            if let Err(e) = check_address(addr) {
                errors.push(format!("{}[{j}]", key("to")), e);
            }
        }
        if let Some(hosts) = &r.hosts {
            if hosts.is_empty() {
                errors.push(
                    key("hosts"),
                    "is empty; leave it out to cover every host, or list hosts",
                );
            }
            for (j, h) in hosts.iter().enumerate() {
                if h.is_empty() || h.chars().any(char::is_control) {
                    errors.push(
                        format!("{}[{j}]", key("hosts")),
                        "must be a host name without control characters",
                    );
                }
            }
        }
        let offset = match r.timezone.as_deref().map(str::parse::<UtcOffset>) {
            None => UtcOffset::UTC,
            Some(Ok(o)) => o,
            Some(Err(e)) => {
                errors.push(key("timezone"), e);
                UtcOffset::UTC
            }
        };
        let language = match r.language.as_deref().map(str::parse::<Language>) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                errors.push(key("language"), e);
                None
            }
        };
        if let (Some(schedule), true) = (schedule, errors.issues.len() == before) {
            out.push(ReportSettings {
                name: name.to_owned(),
                schedule,
                period: period.unwrap_or_else(|| schedule.default_period()),
                to,
                hosts: r.hosts.clone(),
                offset,
                language,
            });
        }
    }
    out
}

/// A plain check of an e-mail address: `local@domain`, no spaces, quotes, angle
/// brackets or control characters (the mailer refuses anything it cannot send).
pub fn check_address(addr: &str) -> Result<(), String> {
    let ok = match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !addr.chars().any(|c| {
                    c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"' | ',')
                })
                && !domain.contains('@')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{addr:?} is not an e-mail address like ops@example.com"
        ))
    }
}

/// Unix ms of a local wall-clock time; for tests and for callers that name a moment.
pub fn local_ms(offset: UtcOffset, y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * DAY_MS + (h * 60 + mi) * 60_000 - offset.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        local_ms(UtcOffset::UTC, y, mo, d, h, mi)
    }

    #[test]
    fn schedules_parse() {
        for (text, want) in [
            ("hourly", Schedule::Hourly),
            ("daily 08:00", Schedule::Daily { minute: 480 }),
            ("Daily  7:05", Schedule::Daily { minute: 425 }),
            ("daily 23:59", Schedule::Daily { minute: 1439 }),
            (
                "weekly mon 08:00",
                Schedule::Weekly {
                    weekday: 0,
                    minute: 480,
                },
            ),
            (
                "weekly SUN 00:00",
                Schedule::Weekly {
                    weekday: 6,
                    minute: 0,
                },
            ),
        ] {
            assert_eq!(Schedule::parse(text), Ok(want), "{text}");
        }
        assert_eq!(
            Schedule::parse("weekly mon 8:00").unwrap().to_string(),
            "weekly mon 08:00"
        );
        for bad in [
            "",
            "daily",
            "daily 24:00",
            "daily 08:60",
            "daily 8",
            "daily 08:5",
            "daily 008:00",
            "weekly monday 08:00",
            "weekly 08:00",
            "monthly 1 08:00",
            "hourly 5",
            "daily +8:00",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// `(schedule, offset, after, expected next)`, in the offset's local time.
    fn check(
        schedule: &str,
        offset: &str,
        after: (i64, i64, i64, i64, i64),
        want: (i64, i64, i64, i64, i64),
    ) {
        let s = Schedule::parse(schedule).unwrap();
        let o: UtcOffset = offset.parse().unwrap();
        let ms = |(y, mo, d, h, mi): (i64, i64, i64, i64, i64)| local_ms(o, y, mo, d, h, mi);
        assert_eq!(
            s.next_due(ms(after), o),
            ms(want),
            "{schedule} at {offset} after {after:?}"
        );
    }

    #[test]
    fn next_due_daily() {
        check(
            "daily 08:00",
            "+00:00",
            (2026, 11, 21, 7, 59),
            (2026, 11, 21, 8, 0),
        );
        // Exactly on the boundary: the next one.
        check(
            "daily 08:00",
            "+00:00",
            (2026, 11, 21, 8, 0),
            (2026, 11, 22, 8, 0),
        );
        check(
            "daily 08:00",
            "+08:00",
            (2026, 12, 31, 9, 0),
            (2027, 1, 1, 8, 0),
        );
        check(
            "daily 00:00",
            "-05:30",
            (2024, 2, 28, 23, 0),
            (2024, 2, 29, 0, 0),
        );
        // 08:00 at +08:00 is 00:00 UTC.
        let o: UtcOffset = "+08:00".parse().unwrap();
        let s = Schedule::parse("daily 08:00").unwrap();
        assert_eq!(
            s.next_due(at(2026, 11, 20, 23, 0), o),
            at(2026, 11, 21, 0, 0)
        );
        // One ms after a due time.
        assert_eq!(
            s.next_due(at(2026, 11, 21, 0, 0) + 1, o),
            at(2026, 11, 22, 0, 0)
        );
        assert_eq!(
            s.next_due(at(2026, 11, 21, 0, 0) - 1, o),
            at(2026, 11, 21, 0, 0)
        );
    }

    #[test]
    fn next_due_weekly_and_hourly() {
        // 2026-11-21 is a Saturday.
        check(
            "weekly mon 08:00",
            "+00:00",
            (2026, 11, 21, 12, 0),
            (2026, 11, 23, 8, 0),
        );
        check(
            "weekly sat 08:00",
            "+00:00",
            (2026, 11, 21, 7, 0),
            (2026, 11, 21, 8, 0),
        );
        check(
            "weekly sat 08:00",
            "+00:00",
            (2026, 11, 21, 8, 0),
            (2026, 11, 28, 8, 0),
        );
        // Across a month and a year.
        check(
            "weekly mon 08:00",
            "+00:00",
            (2026, 12, 29, 0, 0),
            (2027, 1, 4, 8, 0),
        );
        check(
            "weekly fri 18:30",
            "+08:00",
            (2026, 1, 30, 19, 0),
            (2026, 2, 6, 18, 30),
        );
        // A leap day: 2028-02-29 is a Tuesday.
        check(
            "weekly tue 00:00",
            "+00:00",
            (2028, 2, 25, 0, 0),
            (2028, 2, 29, 0, 0),
        );
        // Local Monday 01:00 at +08:00 is still Sunday in UTC.
        check(
            "weekly mon 01:00",
            "+08:00",
            (2026, 11, 22, 23, 0),
            (2026, 11, 23, 1, 0),
        );
        check(
            "hourly",
            "+00:00",
            (2026, 11, 21, 7, 59),
            (2026, 11, 21, 8, 0),
        );
        check(
            "hourly",
            "+00:00",
            (2026, 11, 21, 8, 0),
            (2026, 11, 21, 9, 0),
        );
        check(
            "hourly",
            "+05:30",
            (2026, 12, 31, 23, 10),
            (2027, 1, 1, 0, 0),
        );
        // Before 1970 too.
        check(
            "daily 08:00",
            "+00:00",
            (1969, 12, 31, 9, 0),
            (1970, 1, 1, 8, 0),
        );
    }

    /// Reports as the config loader would hand them over (JSON has the same shape).
    fn config(json: &str) -> Vec<ReportConfig> {
        #[derive(Deserialize)]
        struct File {
            reports: Vec<ReportConfig>,
        }
        serde_json::from_str::<File>(json).unwrap().reports
    }

    #[test]
    fn validation_names_keys_and_fills_defaults() {
        let reports = config(
            r#"{"reports": [
                {"name": "ops daily", "schedule": "daily 08:00", "timezone": "+08:00"},
                {"name": "weekly", "schedule": "weekly mon 08:00", "to": ["a@example.com"],
                 "hosts": ["web-1"], "language": "zh-CN", "period": "14d"},
                {"name": "ops daily", "schedule": "sometimes", "to": ["not an address"],
                 "timezone": "Asia/Shanghai", "language": "fr", "period": "10s", "hosts": []}
            ]}"#,
        );
        let mut errors = ConfigErrors::new("test");
        let settings = validate(&reports, &mut errors);
        assert_eq!(settings.len(), 2);
        assert_eq!(settings[0].period, Duration::from_secs(86_400));
        assert_eq!(settings[0].offset.to_string(), "+08:00");
        assert_eq!(settings[0].to, Vec::<String>::new());
        assert_eq!(settings[0].language, None);
        assert_eq!(settings[1].period, Duration::from_secs(14 * 86_400));
        assert_eq!(settings[1].language, Some(Language::ZhCn));
        assert_eq!(settings[1].hosts, Some(vec!["web-1".to_owned()]));
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "analyzer.reports[2].name",
                "analyzer.reports[2].schedule",
                "analyzer.reports[2].period",
                "analyzer.reports[2].to[0]",
                "analyzer.reports[2].hosts",
                "analyzer.reports[2].timezone",
                "analyzer.reports[2].language",
            ],
            "{errors}"
        );
        assert_eq!(
            settings[0].next_due(at(2026, 11, 20, 23, 0)),
            at(2026, 11, 21, 0, 0)
        );
        let r = settings[0].range_at(at(2026, 11, 21, 0, 0)).unwrap();
        assert_eq!(
            (r.start_ms, r.end_ms),
            (at(2026, 11, 20, 0, 0), at(2026, 11, 21, 0, 0))
        );
    }

    /// Through the real loader: a TOML array of tables, an unknown key named by its
    /// path, and validation into `Settings`.
    #[test]
    fn loads_from_a_file() {
        use hostscope_core::app::ProgramConfig;
        use hostscope_core::config::{load, Sources};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostscope.toml");
        let load_text = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load::<crate::FileConfig>(&Sources {
                file: Some(path.clone()),
                env: Some(vec![]),
            })
        };
        let good = "[influx]\nurl = \"http://127.0.0.1:8086\"\n\n\
                    [[analyzer.reports]]\nname = \"ops\"\nschedule = \"weekly mon 08:00\"\n\
                    timezone = \"+08:00\"\nto = [\"ops@example.com\"]\n";
        let settings = load_text(good).unwrap().validate().unwrap();
        assert_eq!(settings.reports.len(), 1);
        assert_eq!(settings.reports[0].period, Duration::from_secs(7 * 86_400));
        let bad = format!("{good}\n[[analyzer.reports]]\nname = \"x\"\nschedule = \"daily 7\"\nsend_to = [\"a@b\"]\n");
        let err = load_text(&bad).unwrap_err().to_string();
        assert!(
            err.contains("analyzer.reports[1].send_to: unknown field"),
            "{err}"
        );
        let bad = format!("{good}\n[[analyzer.reports]]\nname = \"x\"\nschedule = \"daily 7\"\n");
        let err = load_text(&bad).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("analyzer.reports[1].schedule"), "{err}");
    }

    #[test]
    fn addresses() {
        for good in ["ops@example.com", "a.b+c@sub.example.org", "x@localhost"] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a b@example.com",
            "<a@b>",
            "a@b@c",
            "a@b,c@d",
            "a@b\r\nBcc: x@y",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn last_due_is_at_or_before() {
        let utc = UtcOffset::default();
        for (schedule, now, want) in [
            ("hourly", at(2026, 11, 21, 7, 59), at(2026, 11, 21, 7, 0)),
            ("hourly", at(2026, 11, 21, 8, 0), at(2026, 11, 21, 8, 0)),
            (
                "daily 08:00",
                at(2026, 11, 21, 7, 59),
                at(2026, 11, 20, 8, 0),
            ),
            (
                "daily 08:00",
                at(2026, 11, 21, 8, 0),
                at(2026, 11, 21, 8, 0),
            ),
            (
                "daily 08:00",
                at(2026, 11, 21, 8, 1),
                at(2026, 11, 21, 8, 0),
            ),
            // 2026-11-21 is a Saturday.
            (
                "weekly mon 08:00",
                at(2026, 11, 21, 12, 0),
                at(2026, 11, 16, 8, 0),
            ),
            (
                "weekly sat 08:00",
                at(2026, 11, 21, 8, 0),
                at(2026, 11, 21, 8, 0),
            ),
        ] {
            let s = Schedule::parse(schedule).unwrap();
            assert_eq!(s.last_due(now, utc), want, "{schedule}");
        }
        // 08:00 at +08:00 is 00:00 UTC.
        let cst: UtcOffset = "+08:00".parse().unwrap();
        let s = Schedule::parse("daily 08:00").unwrap();
        assert_eq!(
            s.last_due(at(2026, 11, 21, 23, 0), cst),
            at(2026, 11, 21, 0, 0)
        );
    }

    #[test]
    fn only_the_latest_missed_report_of_a_known_schedule_is_made_up() {
        let daily = |name: &str| ReportSettings {
            name: name.to_owned(),
            schedule: Schedule::parse("daily 08:00").unwrap(),
            period: Duration::from_secs(86_400),
            to: vec![],
            hosts: None,
            offset: UtcOffset::default(),
            language: None,
        };
        let made = |name: Option<&str>, end_ms: i64| ReportMeta {
            id: "1".to_owned(),
            name: name.map(str::to_owned),
            created_ms: end_ms,
            start_ms: end_ms - 86_400_000,
            end_ms,
            subject: String::new(),
            hosts: 0,
            anomalies: 0,
            language: Language::En,
        };
        let reports = [daily("ops"), daily("new")];
        let now = at(2026, 11, 21, 15, 0);
        // The analyzer was down from the 18th to now: only today's 08:00 is made up,
        // and only for the schedule that made reports before.
        let history = [
            made(Some("ops"), at(2026, 11, 18, 8, 0)),
            made(None, at(2026, 11, 20, 9, 0)),
        ];
        assert_eq!(
            missed(&reports, &history, now),
            vec![(0, at(2026, 11, 21, 8, 0))]
        );
        // Made already: nothing to do.
        let history = [made(Some("ops"), at(2026, 11, 21, 8, 0))];
        assert_eq!(missed(&reports, &history, now), vec![]);
        // A new schedule starts at its next due time.
        assert_eq!(missed(&reports, &[], now), vec![]);
    }
}
