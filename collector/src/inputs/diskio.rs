//! `diskio`: I/O counters of each block device and partition, from
//! `/proc/diskstats`, in Telegraf's `diskio` schema.
//!
//! Tag `name` (the kernel's device name: `sda`, `sda1`, `nvme0n1`, `dm-0`). Fields,
//! all counters since boot as the kernel keeps them (no rates): `reads`, `writes`,
//! `merged_reads`, `merged_writes`, `read_bytes`, `write_bytes` (sectors × 512: the
//! kernel counts 512-byte sectors whatever the device's sector size), `read_time`,
//! `write_time`, `io_time`, `weighted_io_time` (milliseconds) and `iops_in_progress`
//! (a gauge). Devices that appear or disappear between cycles simply appear or
//! disappear.

use std::collections::HashMap;

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;

use super::system::{
    compile_globs, fields, lines, matches_any, parse_u64, sat_i64, validate_globs, ProcFile,
};
use super::{Accumulator, HostPaths, InputError};

/// `[collector.inputs.diskio]`
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the `diskio` measurement. Default `true`.
    pub enabled: bool,
    /// Only devices whose name matches one of these globs (`["sd*", "nvme*"]`).
    /// Default `[]`: every device.
    pub devices: Vec<String>,
    /// Never devices whose name matches one of these globs, even when listed in
    /// `devices`. Default `["loop*", "ram*"]`; set `[]` to report those too.
    pub skip: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            devices: Vec::new(),
            skip: vec!["loop*".to_owned(), "ram*".to_owned()],
        }
    }
}

impl Config {
    /// Every pattern must be a valid glob.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        validate_globs(&format!("{key}.devices"), &self.devices, errors);
        validate_globs(&format!("{key}.skip"), &self.skip, errors);
    }
}

/// What is known of a device name seen in /proc/diskstats.
#[derive(Debug)]
struct Device {
    /// The `name` tag.
    name: String,
    /// Whether the filters let it through.
    report: bool,
    /// The cycle in which it was last seen.
    seen: u64,
}

/// Reads `/proc/diskstats`.
#[derive(Debug)]
pub struct Input {
    diskstats: ProcFile,
    devices: Vec<glob::Pattern>,
    skip: Vec<glob::Pattern>,
    /// Device names seen, so the filters run once per device, not once per cycle.
    known: HashMap<Vec<u8>, Device>,
    cycle: u64,
}

impl Input {
    /// Nothing is opened until the first [`Input::gather`].
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        Input {
            diskstats: ProcFile::new(paths.proc("diskstats")),
            devices: compile_globs(&config.devices),
            skip: compile_globs(&config.skip),
            known: HashMap::new(),
            cycle: 0,
        }
    }

    /// One point per reported device.
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        self.cycle += 1;
        let cycle = self.cycle;
        let buf = self.diskstats.read_for("diskio")?;
        for line in lines(buf) {
            let mut it = fields(line);
            let (Some(_major), Some(_minor), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            // reads, merged, sectors, ms, writes, merged, sectors, ms, in progress,
            // io ms, weighted ms; later kernels add discard and flush counters.
            let mut v = [0u64; 11];
            let mut n = 0;
            for (slot, field) in v.iter_mut().zip(it.by_ref()) {
                let Some(x) = parse_u64(field) else { break };
                *slot = x;
                n += 1;
            }
            if n < v.len() {
                // Partitions on kernels before 2.6.25 have four counters only.
                tracing::debug!(message = "diskio: skipping a short /proc/diskstats line", line = %String::from_utf8_lossy(line));
                continue;
            }
            let device = match self.known.get_mut(name) {
                Some(d) => d,
                None => {
                    let Ok(text) = std::str::from_utf8(name) else {
                        continue;
                    };
                    let report = (self.devices.is_empty() || matches_any(&self.devices, text))
                        && !matches_any(&self.skip, text);
                    self.known.entry(name.to_vec()).or_insert(Device {
                        name: text.to_owned(),
                        report,
                        seen: 0,
                    })
                }
            };
            if device.seen == cycle {
                // The same name twice in one file: keep the first.
                continue;
            }
            device.seen = cycle;
            if !device.report {
                continue;
            }
            let [reads, merged_reads, read_sectors, read_time, writes, merged_writes, write_sectors, write_time, in_progress, io_time, weighted] =
                v;
            acc.add(
                Point::builder("diskio")
                    .tag("name", device.name.as_str())
                    .field("reads", sat_i64(reads))
                    .field("merged_reads", sat_i64(merged_reads))
                    .field("read_bytes", sat_i64(read_sectors.saturating_mul(512)))
                    .field("read_time", sat_i64(read_time))
                    .field("writes", sat_i64(writes))
                    .field("merged_writes", sat_i64(merged_writes))
                    .field("write_bytes", sat_i64(write_sectors.saturating_mul(512)))
                    .field("write_time", sat_i64(write_time))
                    .field("iops_in_progress", sat_i64(in_progress))
                    .field("io_time", sat_i64(io_time))
                    .field("weighted_io_time", sat_i64(weighted)),
            );
        }
        // Forget devices that are gone (loop devices come and go by the thousand on
        // some hosts).
        self.known.retain(|_, d| d.seen == cycle);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use std::path::{Path, PathBuf};

    /// `(name, [reads, merged_reads, read_bytes, read_time, writes, merged_writes,
    /// write_bytes, write_time, iops_in_progress, io_time, weighted_io_time])`.
    type Want = (&'static str, [i64; 11]);

    fn expected((name, v): &Want) -> Point {
        let keys = [
            "reads",
            "merged_reads",
            "read_bytes",
            "read_time",
            "writes",
            "merged_writes",
            "write_bytes",
            "write_time",
            "iops_in_progress",
            "io_time",
            "weighted_io_time",
        ];
        let mut b = Point::builder("diskio")
            .tag("name", *name)
            .tag("host", "test");
        for (k, v) in keys.iter().zip(v) {
            b = b.field(*k, *v);
        }
        b.timestamp(1_000_000_000).build().unwrap()
    }

    /// Write each sample as /proc/diskstats in turn, gather after each, compare.
    fn check(config: Config, samples: &[&str], want: &[&[Want]]) {
        assert_eq!(samples.len(), want.len());
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&config, &paths);
        for (i, (sample, want)) in samples.iter().zip(want).enumerate() {
            std::fs::write(dir.path().join("diskstats"), sample).unwrap();
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            let want: Vec<Point> = want.iter().map(expected).collect();
            assert_eq!(acc.into_points(), want, "cycle {i}");
        }
    }

    // A 5.5+ kernel (discard and flush columns), a 4.18 one (discard only) and the
    // minimum of 14 columns; a loop and a ram device.
    const T1: &str = "\
   7       0 loop0 57 0 2212 12 0 0 0 0 0 28 12 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 378967 14827 25666570 615542 23198 60206 23715768 124958 0 30724 744650 24426 28 9662928 4062 1436 86
 254       1 vda1 370000 14000 25000000 600000 23000 60000 23700000 124000 2 30000 740000 24426 28 9662928 4062
 259       0 nvme0n1 10 1 80 3 20 2 160 7 0 9 11
";
    const T2: &str = "\
   7       0 loop0 57 0 2212 12 0 0 0 0 0 28 12 0 0 0 0 0 0
 254       0 vda 378970 14827 25666600 615545 23200 60206 23715800 124960 1 30730 744660 24426 28 9662928 4062 1436 86
 254       1 vda1 370003 14000 25000030 600003 23002 60000 23700032 124002 0 30006 740010 24426 28 9662928 4062
";
    const VDA_T1: Want = (
        "vda",
        [
            378967,
            14827,
            25666570 * 512,
            615542,
            23198,
            60206,
            23715768 * 512,
            124958,
            0,
            30724,
            744650,
        ],
    );
    const VDA1_T1: Want = (
        "vda1",
        [
            370000,
            14000,
            25000000 * 512,
            600000,
            23000,
            60000,
            23700000 * 512,
            124000,
            2,
            30000,
            740000,
        ],
    );
    const NVME_T1: Want = (
        "nvme0n1",
        [10, 1, 80 * 512, 3, 20, 2, 160 * 512, 7, 0, 9, 11],
    );
    const VDA_T2: Want = (
        "vda",
        [
            378970,
            14827,
            25666600 * 512,
            615545,
            23200,
            60206,
            23715800 * 512,
            124960,
            1,
            30730,
            744660,
        ],
    );
    const VDA1_T2: Want = (
        "vda1",
        [
            370003,
            14000,
            25000030 * 512,
            600003,
            23002,
            60000,
            23700032 * 512,
            124002,
            0,
            30006,
            740010,
        ],
    );

    #[test]
    fn counters_and_devices_coming_and_going() {
        // nvme0n1 disappears at t2 and comes back at t3; loop and ram are skipped.
        let t3 = format!("{T2} 259       0 nvme0n1 11 1 88 3 20 2 160 7 0 9 11\n");
        let nvme_t3: Want = (
            "nvme0n1",
            [11, 1, 88 * 512, 3, 20, 2, 160 * 512, 7, 0, 9, 11],
        );
        check(
            Config::default(),
            &[T1, T2, &t3],
            &[
                &[VDA_T1, VDA1_T1, NVME_T1],
                &[VDA_T2, VDA1_T2],
                &[VDA_T2, VDA1_T2, nvme_t3],
            ],
        );
    }

    #[test]
    fn filters() {
        let loop0: Want = ("loop0", [57, 0, 2212 * 512, 12, 0, 0, 0, 0, 0, 28, 12]);
        let ram0: Want = ("ram0", [0; 11]);
        let no_skip = Config {
            skip: Vec::new(),
            ..Config::default()
        };
        check(no_skip, &[T1], &[&[loop0, ram0, VDA_T1, VDA1_T1, NVME_T1]]);
        let only = Config {
            devices: vec!["vda".to_owned(), "nvme*".to_owned(), "loop*".to_owned()],
            ..Config::default()
        };
        check(only, &[T1], &[&[VDA_T1, NVME_T1]]);
        let skip_parts = Config {
            skip: vec!["vda[0-9]*".to_owned()],
            ..Config::default()
        };
        check(skip_parts, &[T1], &[&[loop0, ram0, VDA_T1, NVME_T1]]);
    }

    #[test]
    fn odd_lines() {
        let odd = "\
   8       1 sda1 100 200 300 400
   8       0 sda 1 2 3 4 5 6 7 8 9 10 x
   8       16 sdb 1 2 3 4 5 6 7 8 9 10 11
   8       16 sdb 9 9 9 9 9 9 9 9 9 9 9

garbage
   8       32 sdc 18446744073709551615 0 18446744073709551615 0 0 0 0 0 0 0 0
";
        let big = i64::MAX;
        check(
            Config::default(),
            &[odd],
            &[&[
                ("sdb", [1, 2, 3 * 512, 4, 5, 6, 7 * 512, 8, 9, 10, 11]),
                ("sdc", [big, 0, big, 0, 0, 0, 0, 0, 0, 0, 0]),
            ]],
        );
    }

    #[test]
    fn errors_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&Config::default(), &paths);
        let e = input
            .gather(&mut test_accumulator())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("diskio: cannot read "), "{e}");
        assert!(e.contains("diskstats"), "{e}");

        let mut errors = ConfigErrors::new("test");
        Config::default().validate("collector.inputs.diskio", &mut errors);
        assert!(errors.is_empty());
        let bad = Config {
            devices: vec!["sd[".to_owned()],
            skip: vec!["ok*".to_owned(), String::new()],
            ..Config::default()
        };
        bad.validate("collector.inputs.diskio", &mut errors);
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "collector.inputs.diskio.devices[0]",
                "collector.inputs.diskio.skip[1]"
            ]
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
        let names: Vec<&str> = acc.points().iter().filter_map(|p| p.tag("name")).collect();
        assert_eq!(
            names,
            ["sda", "sda1", "sda2", "nvme0n1", "nvme0n1p1", "dm-0"]
        );
    }

    #[test]
    fn real_host() {
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        for p in acc.points() {
            assert_eq!(p.measurement(), "diskio");
            assert_eq!(p.fields().len(), 11);
            let name = p.tag("name").unwrap();
            assert!(
                !name.starts_with("loop") && !name.starts_with("ram"),
                "{name}"
            );
            for (k, v) in p.fields() {
                assert!(v.as_f64().unwrap() >= 0.0, "{name} {k}");
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
                std::fs::write(dir.path().join("diskstats"), content).unwrap();
                let _ = input.gather(&mut test_accumulator());
            }
        }
    }
}
