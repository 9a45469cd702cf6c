//! `cpu`: CPU time shares over the last interval, per CPU and in total, from
//! `/proc/stat`, in Telegraf's `cpu` schema.
//!
//! Each cycle reads the `cpu` lines of `/proc/stat` and reports, for every CPU seen in
//! the previous cycle too, the share of the interval spent in each state, in percent.
//! As in Telegraf, guest time (which the kernel also counts in user time) is taken out
//! of `usage_user`, and guest_nice out of `usage_nice`; the ten `usage_*` fields sum
//! to 100.

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;

use super::system::{fields, lines, parse_u64, ProcFile};
use super::{Accumulator, HostPaths, InputError};

/// `[collector.inputs.cpu]`
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the `cpu` measurement. Default `true`.
    pub enabled: bool,
    /// Report each CPU (`cpu=cpu0`, `cpu=cpu1`, …). Default `true`.
    pub percpu: bool,
    /// Report all CPUs together (`cpu=cpu-total`). Default `true`.
    pub totalcpu: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            percpu: true,
            totalcpu: true,
        }
    }
}

impl Config {
    /// `percpu` and `totalcpu` cannot both be off while the input is enabled.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        if self.enabled && !self.percpu && !self.totalcpu {
            errors.push(
                format!("{key}.percpu"),
                "percpu and totalcpu are both false, so the input would report nothing; \
                 set enabled = false instead",
            );
        }
    }
}

/// The ten times of a `/proc/stat` cpu line, in clock ticks, in kernel order.
type Times = [u64; N_TIMES];
/// Percent of the interval in each state, in the same order as [`Times`].
type Shares = [f64; N_TIMES];
const N_TIMES: usize = 10;
const USER: usize = 0;
const NICE: usize = 1;
const SYSTEM: usize = 2;
const IDLE: usize = 3;
const IOWAIT: usize = 4;
const IRQ: usize = 5;
const SOFTIRQ: usize = 6;
const STEAL: usize = 7;
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;
/// user..steal: guest and guest_nice are already counted in user and nice.
const N_TOTAL: usize = 8;

/// One CPU's state between cycles.
#[derive(Debug)]
struct CpuState {
    /// N in `cpuN`.
    id: u64,
    /// The `cpu` tag, `cpuN`, made once.
    tag: String,
    prev: Times,
    /// The cycle in which the CPU's line was last seen.
    seen: u64,
}

/// Reads `/proc/stat`; keeps the previous sample of each CPU.
#[derive(Debug)]
pub struct Input {
    stat: ProcFile,
    percpu: bool,
    totalcpu: bool,
    /// The `cpu` line's previous sample.
    total: Option<Times>,
    /// Online CPUs seen last cycle, sorted by id.
    cpus: Vec<CpuState>,
    cycle: u64,
}

impl Input {
    /// Takes a first sample of the counters right away, so the first cycle already
    /// reports usage (since start) instead of nothing.
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        let mut input = Input {
            stat: ProcFile::new(paths.proc("stat")),
            percpu: config.percpu,
            totalcpu: config.totalcpu,
            total: None,
            cpus: Vec::new(),
            cycle: 0,
        };
        let mut baseline = Accumulator::new(0, std::sync::Arc::default());
        if let Err(error) = input.gather(&mut baseline) {
            tracing::debug!(message = "cpu: no baseline sample yet", error = %format!("{error:#}"));
        }
        input
    }

    /// One point per CPU that has a previous sample, and one for the total. The first
    /// call (and the first after a CPU comes online) only records counters.
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        self.cycle += 1;
        let cycle = self.cycle;
        let buf = self.stat.read_for("cpu")?;
        let mut total_now: Option<Times> = None;
        let mut in_cpu_block = false;
        for line in lines(buf) {
            let Some(rest) = line.strip_prefix(b"cpu") else {
                // The cpu lines come first; stop before the long `intr` line.
                if in_cpu_block {
                    break;
                }
                continue;
            };
            in_cpu_block = true;
            let id_end = rest
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let (id, values) = rest.split_at(id_end);
            let Some(times) = parse_times(values) else {
                tracing::debug!(
                    message = "cpu: skipping a malformed /proc/stat line",
                    line = %String::from_utf8_lossy(line)
                );
                continue;
            };
            if id.is_empty() {
                total_now = Some(times);
                continue;
            }
            let Some(id) = parse_u64(id) else {
                continue;
            };
            if !self.percpu {
                continue;
            }
            match self.cpus.binary_search_by_key(&id, |c| c.id) {
                Ok(i) => {
                    let Some(cpu) = self.cpus.get_mut(i) else {
                        continue;
                    };
                    if cpu.seen == cycle {
                        // The same CPU twice in one file: keep the first.
                        continue;
                    }
                    if let Some(usage) = usage(&cpu.prev, &times) {
                        acc.add(point(&cpu.tag, &usage));
                    }
                    cpu.prev = times;
                    cpu.seen = cycle;
                }
                Err(i) => self.cpus.insert(
                    i,
                    CpuState {
                        id,
                        tag: format!("cpu{id}"),
                        prev: times,
                        seen: cycle,
                    },
                ),
            }
        }
        // CPUs whose line is gone went offline: forget them, so that when they come
        // back their first sample is not compared with a stale one.
        self.cpus.retain(|c| c.seen == cycle);

        let Some(now) = total_now else {
            anyhow::bail!("cpu: no `cpu` line in {}", self.stat.path().display());
        };
        if self.totalcpu {
            if let Some(prev) = &self.total {
                if let Some(usage) = usage(prev, &now) {
                    acc.add(point("cpu-total", &usage));
                }
            }
        }
        self.total = Some(now);
        Ok(())
    }
}

/// The times after the `cpuN` label. Kernels before 2.6.33 have fewer than ten; at
/// least user, nice, system and idle are required, missing ones are 0.
fn parse_times(values: &[u8]) -> Option<Times> {
    let mut times = [0u64; N_TIMES];
    let mut n = 0;
    for (slot, field) in times.iter_mut().zip(fields(values)) {
        *slot = parse_u64(field)?;
        n += 1;
    }
    (n > IDLE).then_some(times)
}

/// Percent of the interval in each state, in `Times` order; `None` when the interval
/// cannot be measured: no time passed, or the counters were reset (their sum went
/// backwards).
///
/// A single counter going backwards while the sum advances is a known kernel quirk
/// (iowait and idle on tickless kernels); its delta counts as 0 rather than dropping
/// the sample.
fn usage(prev: &Times, now: &Times) -> Option<Shares> {
    let sum = |t: &Times| -> u128 { t.iter().take(N_TOTAL).map(|v| u128::from(*v)).sum() };
    if sum(now) < sum(prev) {
        return None;
    }
    let mut delta = [0u64; N_TIMES];
    for ((d, n), p) in delta.iter_mut().zip(now).zip(prev) {
        *d = n.saturating_sub(*p);
    }
    let total: u128 = delta.iter().take(N_TOTAL).map(|v| u128::from(*v)).sum();
    if total == 0 {
        return None;
    }
    let total = total as f64;
    let mut shares = [0f64; N_TIMES];
    // Guest time is also in user time, guest_nice in nice: report them apart.
    delta[USER] = delta[USER].saturating_sub(delta[GUEST]);
    delta[NICE] = delta[NICE].saturating_sub(delta[GUEST_NICE]);
    for (s, d) in shares.iter_mut().zip(delta) {
        // Multiplying first keeps whole percentages exact.
        *s = d as f64 * 100.0 / total;
    }
    Some(shares)
}

/// A `cpu` point from the shares of [`usage`].
fn point(tag: &str, usage: &Shares) -> hostscope_core::PointBuilder {
    Point::builder("cpu")
        .tag("cpu", tag)
        .field("usage_user", usage[USER])
        .field("usage_nice", usage[NICE])
        .field("usage_system", usage[SYSTEM])
        .field("usage_idle", usage[IDLE])
        .field("usage_iowait", usage[IOWAIT])
        .field("usage_irq", usage[IRQ])
        .field("usage_softirq", usage[SOFTIRQ])
        .field("usage_steal", usage[STEAL])
        .field("usage_guest", usage[GUEST])
        .field("usage_guest_nice", usage[GUEST_NICE])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use std::path::{Path, PathBuf};

    /// `[user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice]`.
    type Want = (&'static str, [f64; N_TIMES]);

    fn expected(tag: &str, u: &[f64; N_TIMES]) -> Point {
        point(tag, u)
            .tag("host", "test")
            .timestamp(1_000_000_000)
            .build()
            .unwrap()
    }

    /// Write each sample as /proc/stat in turn, gather after each, and compare every
    /// cycle's points with the expected ones.
    fn check(config: Config, samples: &[&str], want: &[&[Want]]) {
        assert_eq!(samples.len(), want.len());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        let paths = HostPaths {
            proc_root: dir.path().join("proc"),
            sys_root: dir.path().join("sys"),
            mount_prefix: PathBuf::new(),
        };
        let mut input = Input::new(&config, &paths);
        for (i, (sample, want)) in samples.iter().zip(want).enumerate() {
            std::fs::write(dir.path().join("proc/stat"), sample).unwrap();
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            let want: Vec<Point> = want.iter().map(|(t, u)| expected(t, u)).collect();
            assert_eq!(acc.into_points(), want, "cycle {i}");
        }
    }

    const T1: &str = "\
cpu  3000 100 900 17000 150 30 30 5 300 40
cpu0 1000 0 500 9000 100 10 10 0 300 0
cpu1 2000 100 400 8000 50 20 20 5 0 40
intr 114 0 0 1
ctxt 1615168
btime 1700000000
";
    // cpu0: +200 user (100 of it guest), +50 system, +200 idle, +25 iowait, +10 irq,
    //       +5 softirq, +10 steal: 500 ticks.
    // cpu1: +100 user, +50 nice (25 of it guest_nice), +50 system, +250 idle,
    //       +25 iowait, +10 irq, +5 softirq, +10 steal: 500 ticks.
    const T2: &str = "\
cpu  3300 150 1000 17450 200 50 40 25 400 65
cpu0 1200 0 550 9200 125 20 15 10 400 0
cpu1 2100 150 450 8250 75 30 25 15 0 65
intr 115 0 0 1
";
    const CPU0_T2: Want = (
        "cpu0",
        [20.0, 0.0, 10.0, 40.0, 5.0, 2.0, 1.0, 2.0, 20.0, 0.0],
    );
    const CPU1_T2: Want = (
        "cpu1",
        [20.0, 5.0, 10.0, 50.0, 5.0, 2.0, 1.0, 2.0, 0.0, 5.0],
    );
    const TOTAL_T2: Want = (
        "cpu-total",
        [20.0, 2.5, 10.0, 45.0, 5.0, 2.0, 1.0, 2.0, 10.0, 2.5],
    );

    #[test]
    fn usage_from_two_samples() {
        check(
            Config::default(),
            &[T1, T2],
            &[&[], &[CPU0_T2, CPU1_T2, TOTAL_T2]],
        );
        check(
            Config {
                percpu: false,
                ..Config::default()
            },
            &[T1, T2],
            &[&[], &[TOTAL_T2]],
        );
        check(
            Config {
                totalcpu: false,
                ..Config::default()
            },
            &[T1, T2],
            &[&[], &[CPU0_T2, CPU1_T2]],
        );
    }

    #[test]
    fn the_ten_shares_sum_to_100() {
        for (_, u) in [CPU0_T2, CPU1_T2, TOTAL_T2] {
            assert_eq!(u.iter().sum::<f64>(), 100.0);
        }
    }

    #[test]
    fn cpu_offline_and_back() {
        // t3: cpu1 offline (its line is gone): cpu0 +100 idle, total +100 idle.
        let t3 = "\
cpu  3300 150 1000 17550 200 50 40 25 400 65
cpu0 1200 0 550 9300 125 20 15 10 400 0
intr 1
";
        // t4: cpu1 back, with counters that moved on while it was away: first sample.
        let t4 = "\
cpu  3400 150 1000 17650 200 50 40 25 400 65
cpu0 1300 0 550 9400 125 20 15 10 400 0
cpu1 2100 150 450 8300 75 30 25 15 0 65
";
        // t5: cpu1 +100 user +300 idle.
        let t5 = "\
cpu  3500 150 1000 17950 200 50 40 25 400 65
cpu0 1300 0 550 9400 125 20 15 10 400 0
cpu1 2200 150 450 8600 75 30 25 15 0 65
";
        let idle = [0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let half = [50.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let quarter = [25.0, 0.0, 0.0, 75.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        check(
            Config::default(),
            &[T1, T2, t3, t4, t5],
            &[
                &[],
                &[CPU0_T2, CPU1_T2, TOTAL_T2],
                &[("cpu0", idle), ("cpu-total", idle)],
                &[("cpu0", half), ("cpu-total", half)],
                // cpu0 did not move: no point for it; cpu1 compares with t4.
                &[("cpu1", quarter), ("cpu-total", quarter)],
            ],
        );
    }

    #[test]
    fn counters_going_backwards() {
        // cpu0 reset (all counters lower): skipped this cycle, compared next cycle.
        let reset = "\
cpu  2100 150 450 8250 75 30 25 15 0 65
cpu0 10 0 10 10 0 0 0 0 0 0
cpu1 2100 150 450 8250 75 30 25 15 0 65
";
        let after = "\
cpu  2200 150 450 8350 75 30 25 15 0 65
cpu0 20 0 10 30 0 0 0 0 0 0
cpu1 2150 150 450 8300 75 30 25 15 0 65
";
        let third = [
            100.0 / 3.0,
            0.0,
            0.0,
            200.0 / 3.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ];
        let half = [50.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        check(
            Config::default(),
            &[T1, T2, reset, after],
            &[
                &[],
                &[CPU0_T2, CPU1_T2, TOTAL_T2],
                // cpu1 did not move (no point); the total went backwards (no point).
                &[],
                &[("cpu0", third), ("cpu1", half), ("cpu-total", half)],
            ],
        );
        // One counter dipping (the iowait quirk) while the sum advances: that delta
        // counts as 0.
        let dip = "cpu  3000 100 900 17100 140 30 30 5 300 40\n";
        let idle = [0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        check(
            Config::default(),
            &["cpu  3000 100 900 17000 150 30 30 5 300 40\n", dip],
            &[&[], &[("cpu-total", idle)]],
        );
    }

    #[test]
    fn old_kernels_and_odd_lines() {
        // Four times only (2.4 kernels), a malformed line, a duplicate and an id that
        // is not a number: only the good lines count.
        let a =
            "cpu  0 0 0 100\ncpu0 0 0 0 100\ncpu1 x 0 0 0\ncpu0 5 5 5 5\ncpuX 1 2 3 4\ncpu2 1 2\n";
        let b = "cpu  50 0 0 150\ncpu0 50 0 0 150\ncpu1 1 1 1 1\ncpu0 0 0 0 0\ncpuX 1 2 3 4\ncpu2 1 2\n";
        let half = [50.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        check(
            Config::default(),
            &[a, b],
            &[&[], &[("cpu0", half), ("cpu-total", half)]],
        );
    }

    #[test]
    fn no_time_passed_and_errors() {
        check(Config::default(), &[T1, T1], &[&[], &[]]);
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&Config::default(), &paths);
        let e = input
            .gather(&mut test_accumulator())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cpu: cannot read "), "{e}");
        assert!(e.contains("stat"), "{e}");
        std::fs::write(dir.path().join("stat"), "intr 1\n").unwrap();
        let e = input
            .gather(&mut test_accumulator())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cpu: no `cpu` line in "), "{e}");
    }

    #[test]
    fn validation() {
        let check = |c: Config, want: &[&str]| {
            let mut errors = ConfigErrors::new("test");
            c.validate("collector.inputs.cpu", &mut errors);
            let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
            assert_eq!(keys, want);
        };
        check(Config::default(), &[]);
        let none = Config {
            percpu: false,
            totalcpu: false,
            ..Config::default()
        };
        check(none.clone(), &["collector.inputs.cpu.percpu"]);
        check(
            Config {
                enabled: false,
                ..none
            },
            &[],
        );
    }

    #[test]
    fn fixture_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/system");
        let paths = HostPaths {
            proc_root: root.join("proc"),
            sys_root: root.join("sys"),
            mount_prefix: PathBuf::new(),
        };
        let mut input = Input::new(&Config::default(), &paths);
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        assert!(acc.points().is_empty());
        assert_eq!(input.cpus.len(), 4);
        assert!(input.total.is_some());
    }

    #[test]
    fn real_host() {
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        assert!(acc.points().is_empty());
        // Burn a little CPU so that ticks pass even on an idle tickless machine.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(100) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let total = acc
            .points()
            .iter()
            .find(|p| p.tag("cpu") == Some("cpu-total"))
            .expect("a cpu-total point");
        let sum: f64 = total
            .fields()
            .values()
            .filter_map(hostscope_core::FieldValue::as_f64)
            .sum();
        assert!((sum - 100.0).abs() < 0.001, "sum {sum}");
        assert_eq!(total.fields().len(), N_TIMES);
        for p in acc.points() {
            assert_eq!(p.measurement(), "cpu");
            for (k, v) in p.fields() {
                let v = v.as_f64().unwrap();
                assert!((0.0..=100.0).contains(&v), "{k} = {v}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(a: Vec<u8>, b: Vec<u8>) {
            let dir = tempfile::tempdir().unwrap();
            let paths = crate::inputs::test_paths(dir.path());
            let mut input = Input::new(&Config::default(), &paths);
            for content in [&a, &b] {
                std::fs::write(dir.path().join("stat"), content).unwrap();
                let _ = input.gather(&mut test_accumulator());
            }
        }

        #[test]
        fn plausible_garbage_never_panics(
            lines in proptest::collection::vec("cpu[0-9]{0,3} ( ?[0-9]{1,20}){0,12}", 0..6),
            lines2 in proptest::collection::vec("cpu[0-9]{0,3} ( ?[0-9]{1,20}){0,12}", 0..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let paths = crate::inputs::test_paths(dir.path());
            let mut input = Input::new(&Config::default(), &paths);
            for content in [lines.join("\n"), lines2.join("\n")] {
                std::fs::write(dir.path().join("stat"), content).unwrap();
                let mut acc = test_accumulator();
                let _ = input.gather(&mut acc);
                proptest::prop_assert_eq!(acc.invalid, 0);
            }
        }
    }
}
