//! `[collector.inputs.processes]`: processes counted by state, Telegraf's `processes`
//! measurement.
//!
//! One point per cycle, no tags of its own. Fields (integers), from the state letter in
//! each `/proc/<pid>/stat` of the shared scan: `running` (R), `sleeping` (S), `blocked`
//! (D), `zombies` (Z), `stopped` (T, t), `idle` (I), `dead` (X), `paging` (W),
//! `unknown` (any other letter), `total`, and `total_threads` (sum of every process's
//! thread count); `parked` (P) only when some process is parked, as Telegraf does.

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;
use serde::Deserialize;

use super::procscan::{ProcessTable, Scanner};
use super::{Accumulator, HostPaths, InputError};

/// `[collector.inputs.processes]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Count processes by state. Default `true`.
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { enabled: true }
    }
}

impl Config {
    /// Nothing can be wrong in this section beyond what deserialization checks.
    pub fn validate(&self, _key: &str, _errors: &mut ConfigErrors) {}
}

/// Counts by state, in Telegraf's field names.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Every process.
    pub total: i64,
    /// State `R`.
    pub running: i64,
    /// State `S`.
    pub sleeping: i64,
    /// State `D` (uninterruptible sleep).
    pub blocked: i64,
    /// State `Z`.
    pub zombies: i64,
    /// States `T` and `t` (stopped, traced).
    pub stopped: i64,
    /// State `I` (idle kernel threads).
    pub idle: i64,
    /// State `X`.
    pub dead: i64,
    /// State `W`.
    pub paging: i64,
    /// State `P`.
    pub parked: i64,
    /// Any other state letter.
    pub unknown: i64,
    /// Sum of the processes' thread counts.
    pub total_threads: i64,
}

impl Counts {
    /// Count the processes of one scan.
    pub fn of(table: &ProcessTable) -> Self {
        let mut c = Counts::default();
        for p in table {
            c.total += 1;
            c.total_threads = c.total_threads.saturating_add(p.num_threads.max(0));
            let slot = match p.state {
                'R' => &mut c.running,
                'S' => &mut c.sleeping,
                'D' => &mut c.blocked,
                'Z' => &mut c.zombies,
                'T' | 't' => &mut c.stopped,
                'I' => &mut c.idle,
                'X' | 'x' => &mut c.dead,
                'W' => &mut c.paging,
                'P' => &mut c.parked,
                _ => &mut c.unknown,
            };
            *slot += 1;
        }
        c
    }
}

/// The `processes` input.
#[derive(Debug)]
pub struct Input {
    enabled: bool,
}

impl Input {
    /// Build the input; it keeps no state between cycles.
    pub fn new(config: &Config, _paths: &HostPaths) -> Self {
        Input {
            enabled: config.enabled,
        }
    }

    /// Add this cycle's `processes` point (nothing when disabled).
    pub fn gather(
        &mut self,
        _scanner: &mut Scanner,
        table: &ProcessTable,
        acc: &mut Accumulator,
    ) -> Result<(), InputError> {
        if !self.enabled {
            return Ok(());
        }
        let c = Counts::of(table);
        let mut point = Point::builder("processes")
            .field("total", c.total)
            .field("running", c.running)
            .field("sleeping", c.sleeping)
            .field("blocked", c.blocked)
            .field("zombies", c.zombies)
            .field("stopped", c.stopped)
            .field("idle", c.idle)
            .field("dead", c.dead)
            .field("paging", c.paging)
            .field("unknown", c.unknown)
            .field("total_threads", c.total_threads);
        if c.parked > 0 {
            point = point.field("parked", c.parked);
        }
        acc.add(point);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use hostscope_core::point::FieldValue;

    use super::super::procscan::testing::{Fake, FakeProc};
    use super::super::test_accumulator;
    use super::*;

    #[test]
    fn counts_every_state() {
        let fake = FakeProc::new();
        for rel in ["1/stat", "2/stat", "1234/stat", "4321/stat", "999/stat"] {
            fake.copy_fixture(rel);
        }
        fake.put(&Fake::new(10, "r").state('R').threads(8));
        fake.put(&Fake::new(11, "d").state('D'));
        fake.put(&Fake::new(12, "t").state('T'));
        fake.put(&Fake::new(13, "t2").state('t'));
        fake.put(&Fake::new(14, "i").state('I').kernel_thread());
        fake.put(&Fake::new(15, "x").state('X'));
        fake.put(&Fake::new(16, "w").state('W'));
        fake.put(&Fake::new(17, "p").state('P'));
        fake.put(&Fake::new(18, "k").state('K'));
        let paths = fake.paths();
        let mut scanner = Scanner::new(&paths);
        let table = scanner.scan_at(Instant::now()).unwrap();
        let mut input = Input::new(&Config::default(), &paths);
        let mut acc = test_accumulator();
        input.gather(&mut scanner, &table, &mut acc).unwrap();
        let [p] = acc.points() else {
            panic!("{:?}", acc.points())
        };
        assert_eq!(p.measurement(), "processes");
        assert_eq!(p.tag("host"), Some("test"));
        let got: Vec<(&str, i64)> = p
            .fields()
            .iter()
            .map(|(k, v)| match v {
                FieldValue::Integer(i) => (k.as_str(), *i),
                other => panic!("{k}: {other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                ("blocked", 1),
                ("dead", 1),
                ("idle", 1),
                ("paging", 1),
                ("parked", 1),
                ("running", 1),
                ("sleeping", 3),
                ("stopped", 2),
                ("total", 13),
                ("total_threads", 20),
                ("unknown", 1),
                ("zombies", 1),
            ]
        );
    }

    #[test]
    fn disabled_adds_nothing_and_config_parses() {
        let c: Config = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
        assert!(!c.enabled);
        assert!(serde_json::from_str::<Config>(r#"{"enable": false}"#).is_err());
        let fake = FakeProc::new();
        let paths = fake.paths();
        let mut scanner = Scanner::new(&paths);
        let table = scanner.scan().unwrap();
        let mut acc = test_accumulator();
        Input::new(&c, &paths)
            .gather(&mut scanner, &table, &mut acc)
            .unwrap();
        assert!(acc.points().is_empty());
    }
}
