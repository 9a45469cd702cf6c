//! `[collector.inputs.procstat_top]`: the top N processes by CPU and by memory.
//!
//! Measurement `procstat_top`, one point per (ranking, rank) each cycle:
//! - tags `by` = `cpu` | `memory` and `rank` = `1`..`N`: bounded cardinality (pids and
//!   names are fields, not tags), and the points of one cycle do not overwrite each
//!   other in InfluxDB;
//! - fields `pid` (integer), `name` (the kernel's `comm`), `user` (user name, or the uid
//!   as a number when the host's passwd does not know it; `""` when unreadable),
//!   `cmdline` (arguments joined by spaces, cut at [`MAX_CMDLINE_FIELD`] bytes; `""` for
//!   kernel threads), `cpu_usage` (float, percent of one core since the previous scan)
//!   and `memory_rss` (integer, bytes).
//!
//! A process seen for the first time has no CPU usage yet and ranks (and reports) as 0.
//! Ties are broken by the other resource, then by pid. Only the selected processes'
//! command lines and users are read, through the scanner's per-process cache.

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;
use serde::Deserialize;

use super::procscan::{ProcessInfo, ProcessTable, Scanner};
use super::{Accumulator, HostPaths, InputError};

/// Longest `cmdline` field, in bytes (cut at a character boundary).
pub const MAX_CMDLINE_FIELD: usize = 1024;

/// Most processes a ranking may list.
pub const MAX_TOP: usize = 100;

/// `[collector.inputs.procstat_top]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the top processes. Default `true`.
    pub enabled: bool,
    /// How many processes each ranking (by CPU, by memory) lists, 1 to 100. Default 10.
    pub top: usize,
}

fn default_top() -> usize {
    10
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            top: default_top(),
        }
    }
}

impl Config {
    /// Check `top`; `key` is this section's dotted path.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        if self.top == 0 || self.top > MAX_TOP {
            errors.push(
                format!("{key}.top"),
                format!(
                    "must be between 1 and {MAX_TOP} (got {}); to turn the input off, set enabled = false",
                    self.top
                ),
            );
        }
    }
}

/// Which resource a ranking orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Cpu,
    Memory,
}

impl By {
    fn tag(self) -> &'static str {
        match self {
            By::Cpu => "cpu",
            By::Memory => "memory",
        }
    }

    /// Highest first; ties by the other resource, then lowest pid.
    fn cmp(self, a: &ProcessInfo, b: &ProcessInfo) -> std::cmp::Ordering {
        let cpu = |p: &ProcessInfo| p.cpu_usage.unwrap_or(0.0);
        let by_cpu = cpu(b).total_cmp(&cpu(a));
        let by_rss = b.rss_bytes.cmp(&a.rss_bytes);
        match self {
            By::Cpu => by_cpu.then(by_rss),
            By::Memory => by_rss.then(by_cpu),
        }
        .then(a.pid.cmp(&b.pid))
    }
}

/// The `procstat_top` input.
#[derive(Debug)]
pub struct Input {
    enabled: bool,
    top: usize,
}

impl Input {
    /// Build the input (`top` is clamped to 1..=100 if validation was skipped).
    pub fn new(config: &Config, _paths: &HostPaths) -> Self {
        Input {
            enabled: config.enabled,
            top: config.top.clamp(1, MAX_TOP),
        }
    }

    /// Add the two rankings of this cycle (nothing when disabled).
    pub fn gather(
        &mut self,
        scanner: &mut Scanner,
        table: &ProcessTable,
        acc: &mut Accumulator,
    ) -> Result<(), InputError> {
        if !self.enabled {
            return Ok(());
        }
        for by in [By::Cpu, By::Memory] {
            for (i, p) in top_n(table.as_slice(), self.top, by)
                .into_iter()
                .enumerate()
            {
                let cmdline = scanner.cmdline(p);
                let user = scanner.user(p);
                acc.add(
                    Point::builder("procstat_top")
                        .tag("by", by.tag())
                        .tag("rank", (i + 1).to_string())
                        .field("pid", i64::from(p.pid))
                        .field("name", &*p.comm)
                        .field("user", user.as_deref().unwrap_or(""))
                        .field(
                            "cmdline",
                            truncate_at_char(cmdline.as_str(), MAX_CMDLINE_FIELD),
                        )
                        .field("cpu_usage", p.cpu_usage.unwrap_or(0.0))
                        .field("memory_rss", p.rss_bytes),
                );
            }
        }
        Ok(())
    }
}

/// The `n` highest processes by `by`, best first, in O(len) plus O(n log n).
fn top_n(procs: &[ProcessInfo], n: usize, by: By) -> Vec<&ProcessInfo> {
    let mut refs: Vec<&ProcessInfo> = procs.iter().collect();
    if n == 0 {
        return Vec::new();
    }
    if refs.len() > n {
        refs.select_nth_unstable_by(n - 1, |a, b| by.cmp(a, b));
        refs.truncate(n);
    }
    refs.sort_unstable_by(|a, b| by.cmp(a, b));
    refs
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hostscope_core::point::FieldValue;

    use super::super::procscan::testing::{Fake, FakeProc};
    use super::super::test_accumulator;
    use super::*;

    fn int(p: &Point, k: &str) -> i64 {
        match p.field(k) {
            Some(FieldValue::Integer(i)) => *i,
            other => panic!("{k}: {other:?}"),
        }
    }
    fn text<'a>(p: &'a Point, k: &str) -> &'a str {
        match p.field(k) {
            Some(FieldValue::String(s)) => s,
            other => panic!("{k}: {other:?}"),
        }
    }
    fn float(p: &Point, k: &str) -> f64 {
        match p.field(k) {
            Some(FieldValue::Float(f)) => *f,
            other => panic!("{k}: {other:?}"),
        }
    }

    #[test]
    fn ranks_by_cpu_and_memory() {
        let fake = FakeProc::new();
        fake.put(&Fake::new(10, "web").ticks(0, 0).rss_pages(1000));
        fake.put(&Fake::new(11, "db").ticks(0, 0).rss_pages(5000));
        fake.put(&Fake::new(12, "cron").ticks(0, 0).rss_pages(10));
        fake.put(&Fake::new(13, "idle").ticks(0, 0).rss_pages(10));
        let long: String = "é".repeat(600); // 1200 bytes
        fake.put_cmdline(10, &["/usr/bin/web", "--flags", &long]);
        fake.put_cmdline(11, &["postgres", "-D", "/var/lib/pg"]);
        fake.put_uid(10, 33);
        fake.put_uid(11, 4242);
        let paths = fake.paths();
        let mut scanner = Scanner::with_units(&paths, 100, 4096);
        let t0 = Instant::now();
        let first = scanner.scan_at(t0).unwrap();
        let mut input = Input::new(
            &Config {
                enabled: true,
                top: 2,
            },
            &paths,
        );
        // First cycle: nobody has a CPU usage; ranked as 0, ties by memory.
        let mut acc = test_accumulator();
        input.gather(&mut scanner, &first, &mut acc).unwrap();
        let pids: Vec<(String, i64)> = acc
            .points()
            .iter()
            .map(|p| {
                (
                    format!("{}{}", p.tag("by").unwrap(), p.tag("rank").unwrap()),
                    int(p, "pid"),
                )
            })
            .collect();
        assert_eq!(
            pids,
            [
                ("cpu1".into(), 11),
                ("cpu2".into(), 10),
                ("memory1".into(), 11),
                ("memory2".into(), 10)
            ]
        );
        assert_eq!(float(&acc.points()[0], "cpu_usage"), 0.0);

        // 10 s later: cron used 5 s of CPU, web 1 s; a new process used a lot already
        // but is first seen now (ranks as 0).
        fake.put(&Fake::new(10, "web").ticks(60, 40).rss_pages(1000));
        fake.put(&Fake::new(12, "cron").ticks(400, 100).rss_pages(10));
        fake.put(&Fake::new(14, "fresh").ticks(90_000, 0).rss_pages(20));
        let second = scanner.scan_at(t0 + Duration::from_secs(10)).unwrap();
        let mut acc = test_accumulator();
        input.gather(&mut scanner, &second, &mut acc).unwrap();
        let points = acc.points();
        assert_eq!(points.len(), 4);
        let cpu1 = &points[0];
        assert_eq!(
            (cpu1.measurement(), cpu1.tag("by"), cpu1.tag("rank")),
            ("procstat_top", Some("cpu"), Some("1"))
        );
        assert_eq!(int(cpu1, "pid"), 12);
        assert_eq!(text(cpu1, "name"), "cron");
        assert_eq!(float(cpu1, "cpu_usage"), 50.0);
        assert_eq!(int(cpu1, "memory_rss"), 10 * 4096);
        assert_eq!(text(cpu1, "cmdline"), "");
        let cpu2 = &points[1];
        assert_eq!((int(cpu2, "pid"), float(cpu2, "cpu_usage")), (10, 10.0));
        assert_eq!(text(cpu2, "user"), "www-data");
        let cmd = text(cpu2, "cmdline");
        assert!(cmd.starts_with("/usr/bin/web --flags éé"), "{cmd}");
        assert_eq!(
            cmd.len(),
            1023,
            "cut before the character that crosses 1024"
        );
        let mem1 = &points[2];
        assert_eq!(
            (mem1.tag("by"), mem1.tag("rank")),
            (Some("memory"), Some("1"))
        );
        assert_eq!(int(mem1, "pid"), 11);
        assert_eq!(text(mem1, "user"), "4242");
        assert_eq!(text(mem1, "cmdline"), "postgres -D /var/lib/pg");
        assert_eq!(int(mem1, "memory_rss"), 5000 * 4096);
        assert_eq!(int(&points[3], "pid"), 10);
        // The next cycle reads no command line or status again.
        let reads = scanner.detail_reads();
        let third = scanner.scan_at(t0 + Duration::from_secs(20)).unwrap();
        input
            .gather(&mut scanner, &third, &mut test_accumulator())
            .unwrap();
        assert_eq!(scanner.detail_reads(), reads);
    }

    #[test]
    fn fewer_processes_than_top() {
        let fake = FakeProc::new();
        fake.put(&Fake::new(10, "only"));
        let paths = fake.paths();
        let mut scanner = Scanner::new(&paths);
        let table = scanner.scan().unwrap();
        let mut acc = test_accumulator();
        Input::new(&Config::default(), &paths)
            .gather(&mut scanner, &table, &mut acc)
            .unwrap();
        assert_eq!(acc.points().len(), 2);
    }

    #[test]
    fn config_validation() {
        let check = |top: usize, ok: bool| {
            let mut errors = ConfigErrors::new("test");
            Config { enabled: true, top }.validate("collector.inputs.procstat_top", &mut errors);
            assert_eq!(errors.is_empty(), ok, "{top}: {errors}");
            if !ok {
                assert_eq!(errors.issues[0].key, "collector.inputs.procstat_top.top");
            }
        };
        check(0, false);
        check(1, true);
        check(100, true);
        check(101, false);
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!((c.enabled, c.top), (true, 10));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_at_char("abc", 5), "abc");
        assert_eq!(truncate_at_char("abc", 2), "ab");
        assert_eq!(truncate_at_char("aé", 2), "a");
        assert_eq!(truncate_at_char("", 0), "");
    }
}
