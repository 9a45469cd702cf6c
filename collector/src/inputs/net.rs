//! `net`: traffic counters of each network interface, from `/proc/net/dev`, in
//! Telegraf's `net` schema.
//!
//! Tag `interface`. Fields, counters since the interface was created: `bytes_sent`,
//! `bytes_recv`, `packets_sent`, `packets_recv`, `err_in`, `err_out`, `drop_in`,
//! `drop_out`. Interfaces that appear or disappear between cycles simply appear or
//! disappear.
//!
//! `/proc/net/dev` belongs to the network namespace of the reader: in a container,
//! the host's interfaces are seen only with the host's network (as with Telegraf).

use std::collections::HashMap;

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;

use super::system::{
    compile_globs, fields, lines, matches_any, parse_u64, sat_i64, validate_globs, ProcFile,
};
use super::{Accumulator, HostPaths, InputError};

/// `IFF_LOOPBACK` in `/sys/class/net/<if>/flags`.
const IFF_LOOPBACK: u64 = 0x8;

/// `[collector.inputs.net]`
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the `net` measurement. Default `true`.
    pub enabled: bool,
    /// Only interfaces whose name matches one of these globs (`["eth*", "en*"]`); a
    /// loopback interface is reported when listed. Default `[]`: every interface but
    /// loopback ones, as Telegraf.
    pub interfaces: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            interfaces: Vec::new(),
        }
    }
}

impl Config {
    /// Every pattern must be a valid glob.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        validate_globs(&format!("{key}.interfaces"), &self.interfaces, errors);
    }
}

/// What is known of an interface name seen in /proc/net/dev.
#[derive(Debug)]
struct Interface {
    /// The `interface` tag.
    name: String,
    /// Whether the filters let it through.
    report: bool,
    /// The cycle in which it was last seen.
    seen: u64,
}

/// Reads `/proc/net/dev`.
#[derive(Debug)]
pub struct Input {
    dev: ProcFile,
    sys_root: std::path::PathBuf,
    interfaces: Vec<glob::Pattern>,
    /// Interfaces seen, so the filters (and the loopback check) run once per
    /// interface, not once per cycle.
    known: HashMap<Vec<u8>, Interface>,
    cycle: u64,
}

impl Input {
    /// Nothing is opened until the first [`Input::gather`].
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        Input {
            dev: ProcFile::new(paths.proc("net/dev")),
            sys_root: paths.sys_root.clone(),
            interfaces: compile_globs(&config.interfaces),
            known: HashMap::new(),
            cycle: 0,
        }
    }

    /// One point per reported interface.
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        self.cycle += 1;
        let cycle = self.cycle;
        let buf = self.dev.read_for("net")?;
        // Two header lines, then `  name: 16 counters` (older kernels: `name:counters`).
        for line in lines(buf) {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, rest) = line.split_at(colon);
            let name = name.trim_ascii();
            if name.is_empty() {
                continue;
            }
            let mut v = [0u64; 16];
            let mut n = 0;
            for (slot, field) in v.iter_mut().zip(fields(rest.get(1..).unwrap_or_default())) {
                let Some(x) = parse_u64(field) else { break };
                *slot = x;
                n += 1;
            }
            if n < v.len() {
                tracing::debug!(message = "net: skipping a malformed /proc/net/dev line", line = %String::from_utf8_lossy(line));
                continue;
            }
            let iface = match self.known.get_mut(name) {
                Some(i) => i,
                None => {
                    let Ok(text) = std::str::from_utf8(name) else {
                        continue;
                    };
                    let report = if self.interfaces.is_empty() {
                        !is_loopback(&self.sys_root, text)
                    } else {
                        matches_any(&self.interfaces, text)
                    };
                    self.known.entry(name.to_vec()).or_insert(Interface {
                        name: text.to_owned(),
                        report,
                        seen: 0,
                    })
                }
            };
            if iface.seen == cycle {
                continue;
            }
            iface.seen = cycle;
            if !iface.report {
                continue;
            }
            // Receive: bytes packets errs drop fifo frame compressed multicast;
            // transmit: bytes packets errs drop fifo colls carrier compressed.
            acc.add(
                Point::builder("net")
                    .tag("interface", iface.name.as_str())
                    .field("bytes_recv", sat_i64(v[0]))
                    .field("packets_recv", sat_i64(v[1]))
                    .field("err_in", sat_i64(v[2]))
                    .field("drop_in", sat_i64(v[3]))
                    .field("bytes_sent", sat_i64(v[8]))
                    .field("packets_sent", sat_i64(v[9]))
                    .field("err_out", sat_i64(v[10]))
                    .field("drop_out", sat_i64(v[11])),
            );
        }
        // Forget interfaces that are gone (containers' veth pairs come and go).
        self.known.retain(|_, i| i.seen == cycle);
        Ok(())
    }
}

/// Whether the interface is a loopback one, from its sysfs flags; without sysfs, by
/// its name (`lo`).
fn is_loopback(sys_root: &std::path::Path, name: &str) -> bool {
    // The kernel allows no `/` in names, nor `.`/`..`; do not follow such garbage.
    if name.contains('/') || name == "." || name == ".." {
        return name == "lo";
    }
    let path = sys_root.join("class/net").join(name).join("flags");
    let flags = std::fs::read_to_string(path).ok().and_then(|s| {
        let s = s.trim();
        let hex = s.strip_prefix("0x").unwrap_or(s);
        u64::from_str_radix(hex, 16).ok()
    });
    match flags {
        Some(f) => f & IFF_LOOPBACK != 0,
        None => name == "lo",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use std::path::{Path, PathBuf};

    /// `(interface, [bytes_recv, packets_recv, err_in, drop_in, bytes_sent,
    /// packets_sent, err_out, drop_out])`.
    type Want = (&'static str, [i64; 8]);

    fn expected((name, v): &Want) -> Point {
        let keys = [
            "bytes_recv",
            "packets_recv",
            "err_in",
            "drop_in",
            "bytes_sent",
            "packets_sent",
            "err_out",
            "drop_out",
        ];
        let mut b = Point::builder("net")
            .tag("interface", *name)
            .tag("host", "test");
        for (k, v) in keys.iter().zip(v) {
            b = b.field(*k, *v);
        }
        b.timestamp(1_000_000_000).build().unwrap()
    }

    /// Write each sample as /proc/net/dev in turn (with `sys` holding the given flags
    /// files), gather after each, compare.
    fn check(config: Config, flags: &[(&str, &str)], samples: &[&str], want: &[&[Want]]) {
        assert_eq!(samples.len(), want.len());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        for (name, f) in flags {
            let d = dir.path().join("sys/class/net").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("flags"), f).unwrap();
        }
        let paths = HostPaths {
            proc_root: dir.path().join("proc"),
            sys_root: dir.path().join("sys"),
            mount_prefix: PathBuf::new(),
        };
        let mut input = Input::new(&config, &paths);
        for (i, (sample, want)) in samples.iter().zip(want).enumerate() {
            std::fs::write(dir.path().join("proc/net/dev"), sample).unwrap();
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            let want: Vec<Point> = want.iter().map(expected).collect();
            assert_eq!(acc.into_points(), want, "cycle {i}");
        }
    }

    const HEADER: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
";
    const LO: &str =
        "    lo: 105405970   22019    0    0    0     0          0         0 105405970   22019    0    0    0     0       0          0\n";
    const ETH0_1: &str =
        "  eth0: 124062171    6014    1    2    0     0          0         0   411116    3524    3    4    0     0       0          0\n";
    const ETH0_2: &str =
        "  eth0: 124062500    6020    1    2    0     0          0         0   411200    3530    3    4    0     0       0          0\n";
    const VETH: &str =
        "veth1a2b3c:    1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n";

    #[test]
    fn interfaces_coming_and_going() {
        let t1 = format!("{HEADER}{LO}{ETH0_1}");
        let t2 = format!("{HEADER}{LO}{ETH0_2}{VETH}");
        let t3 = format!("{HEADER}{LO}{ETH0_2}");
        let eth0_1: Want = ("eth0", [124062171, 6014, 1, 2, 411116, 3524, 3, 4]);
        let eth0_2: Want = ("eth0", [124062500, 6020, 1, 2, 411200, 3530, 3, 4]);
        let veth: Want = ("veth1a2b3c", [1000, 10, 0, 0, 2000, 20, 0, 0]);
        check(
            Config::default(),
            &[],
            &[&t1, &t2, &t3],
            &[&[eth0_1], &[eth0_2, veth], &[eth0_2]],
        );
    }

    #[test]
    fn loopback_by_flags_and_filters() {
        let t = format!("{HEADER}{LO}{ETH0_1}{VETH}");
        let lo: Want = ("lo", [105405970, 22019, 0, 0, 105405970, 22019, 0, 0]);
        let veth: Want = ("veth1a2b3c", [1000, 10, 0, 0, 2000, 20, 0, 0]);
        // sysfs says which is loopback, whatever the names.
        check(
            Config::default(),
            &[
                ("lo", "0x1003\n"),
                ("eth0", "0x9\n"),
                ("veth1a2b3c", "0x1003\n"),
            ],
            &[&t],
            &[&[lo, veth]],
        );
        // Listed interfaces are reported even when loopback.
        let only = Config {
            interfaces: vec!["lo".to_owned(), "veth*".to_owned()],
            ..Config::default()
        };
        check(only, &[], &[&t], &[&[lo, veth]]);
    }

    #[test]
    fn odd_lines() {
        // Old kernels put no space after the colon; short and garbled lines are skipped.
        let t = format!(
            "{HEADER}eth1:10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n  bad: 1 2 3\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  big: 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\n"
        );
        check(
            Config::default(),
            &[],
            &[&t],
            &[&[
                ("eth1", [10, 1, 0, 0, 20, 2, 0, 0]),
                ("big", [i64::MAX, 0, 0, 0, 0, 0, 0, 0]),
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
        assert!(e.starts_with("net: cannot read "), "{e}");
        assert!(e.contains("net/dev"), "{e}");

        let mut errors = ConfigErrors::new("test");
        Config {
            interfaces: vec!["eth*".to_owned(), "[".to_owned()],
            ..Config::default()
        }
        .validate("collector.inputs.net", &mut errors);
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["collector.inputs.net.interfaces[1]"]);
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
        let names: Vec<&str> = acc
            .points()
            .iter()
            .filter_map(|p| p.tag("interface"))
            .collect();
        assert_eq!(names, ["enp3s0", "docker0", "veth7f3a21b", "wlp2s0"]);
    }

    #[test]
    fn real_host() {
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        for p in acc.points() {
            assert_eq!(p.measurement(), "net");
            assert_eq!(p.fields().len(), 8);
            assert_ne!(p.tag("interface"), Some("lo"));
        }
        let only_lo = Config {
            interfaces: vec!["lo".to_owned()],
            ..Config::default()
        };
        let mut input = Input::new(&only_lo, &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let names: Vec<&str> = acc
            .points()
            .iter()
            .filter_map(|p| p.tag("interface"))
            .collect();
        assert_eq!(names, ["lo"]);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(a: Vec<u8>, b: Vec<u8>) {
            let dir = tempfile::tempdir().unwrap();
            let paths = crate::inputs::test_paths(dir.path());
            std::fs::create_dir_all(dir.path().join("net")).unwrap();
            let mut input = Input::new(&Config::default(), &paths);
            for content in [&a, &b] {
                std::fs::write(dir.path().join("net/dev"), content).unwrap();
                let _ = input.gather(&mut test_accumulator());
            }
        }
    }
}
