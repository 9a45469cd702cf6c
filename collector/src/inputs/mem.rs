//! `mem` and `swap`: memory and swap use from `/proc/meminfo` and `/proc/vmstat`, in
//! the schema of Telegraf's `mem` and `swap` inputs.
//!
//! The derived values follow gopsutil, which Telegraf uses:
//! - `cached` is `Cached` plus `SReclaimable` (reclaimable slab is cache too);
//! - `used` is `total - free - buffered - cached` (never below 0);
//! - `available` is `MemAvailable`; kernels before 3.14 lack it, and then it is
//!   estimated as `free + buffered + cached`;
//! - every other Linux field Telegraf reports is copied from the line of the same
//!   meaning, and is 0 when the kernel does not have that line (as Telegraf does), so
//!   the set of fields never changes between hosts.
//!
//! `swap` has `total`, `free`, `used` and `used_percent` (0 without swap), and `in` and
//! `out`, the bytes swapped in and out since boot (`pswpin`/`pswpout` pages × the page
//! size). These are counters, as in Telegraf.

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;

use super::system::{fields, lines, parse_u64, sat_i64, ProcFile};
use super::{Accumulator, HostPaths, InputError};

/// `[collector.inputs.mem]`
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the `mem` measurement (and `swap`, see below). Default `true`.
    pub enabled: bool,
    /// Also report the `swap` measurement (Telegraf's `swap` input). Default `true`.
    pub swap: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            swap: true,
        }
    }
}

impl Config {
    /// Nothing to check beyond the types; kept for the common input contract.
    pub fn validate(&self, _key: &str, _errors: &mut ConfigErrors) {}
}

/// `/proc/meminfo` lines this input reads, in the order of [`MEMINFO_KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Key {
    MemTotal,
    MemFree,
    MemAvailable,
    Buffers,
    Cached,
    SwapCached,
    Active,
    Inactive,
    ActiveAnon,
    InactiveAnon,
    ActiveFile,
    InactiveFile,
    Unevictable,
    HighTotal,
    HighFree,
    LowTotal,
    LowFree,
    SwapTotal,
    SwapFree,
    Dirty,
    Writeback,
    Mapped,
    Shmem,
    Slab,
    SReclaimable,
    SUnreclaim,
    PageTables,
    WritebackTmp,
    CommitLimit,
    CommittedAs,
    VmallocTotal,
    VmallocUsed,
    VmallocChunk,
    Percpu,
    HugePagesTotal,
    HugePagesFree,
    Hugepagesize,
}
const N_KEYS: usize = Key::Hugepagesize as usize + 1;

/// Each key (in [`Key`] order), its `/proc/meminfo` name and, for the ones copied as
/// they are, the Telegraf field. Values in `kB` are turned into bytes; `HugePages_*` are page counts.
const MEMINFO_KEYS: [(Key, &[u8], Option<&str>); N_KEYS] = [
    (Key::MemTotal, b"MemTotal", Some("total")),
    (Key::MemFree, b"MemFree", Some("free")),
    (Key::MemAvailable, b"MemAvailable", None),
    (Key::Buffers, b"Buffers", Some("buffered")),
    (Key::Cached, b"Cached", None),
    (Key::SwapCached, b"SwapCached", Some("swap_cached")),
    (Key::Active, b"Active", Some("active")),
    (Key::Inactive, b"Inactive", Some("inactive")),
    (Key::ActiveAnon, b"Active(anon)", Some("active_anon")),
    (Key::InactiveAnon, b"Inactive(anon)", Some("inactive_anon")),
    (Key::ActiveFile, b"Active(file)", Some("active_file")),
    (Key::InactiveFile, b"Inactive(file)", Some("inactive_file")),
    (Key::Unevictable, b"Unevictable", Some("unevictable")),
    (Key::HighTotal, b"HighTotal", Some("high_total")),
    (Key::HighFree, b"HighFree", Some("high_free")),
    (Key::LowTotal, b"LowTotal", Some("low_total")),
    (Key::LowFree, b"LowFree", Some("low_free")),
    (Key::SwapTotal, b"SwapTotal", Some("swap_total")),
    (Key::SwapFree, b"SwapFree", Some("swap_free")),
    (Key::Dirty, b"Dirty", Some("dirty")),
    (Key::Writeback, b"Writeback", Some("write_back")),
    (Key::Mapped, b"Mapped", Some("mapped")),
    (Key::Shmem, b"Shmem", Some("shared")),
    (Key::Slab, b"Slab", Some("slab")),
    (Key::SReclaimable, b"SReclaimable", Some("sreclaimable")),
    (Key::SUnreclaim, b"SUnreclaim", Some("sunreclaim")),
    (Key::PageTables, b"PageTables", Some("page_tables")),
    (Key::WritebackTmp, b"WritebackTmp", Some("write_back_tmp")),
    (Key::CommitLimit, b"CommitLimit", Some("commit_limit")),
    (Key::CommittedAs, b"Committed_AS", Some("committed_as")),
    (Key::VmallocTotal, b"VmallocTotal", Some("vmalloc_total")),
    (Key::VmallocUsed, b"VmallocUsed", Some("vmalloc_used")),
    (Key::VmallocChunk, b"VmallocChunk", Some("vmalloc_chunk")),
    (Key::Percpu, b"Percpu", Some("percpu")),
    (
        Key::HugePagesTotal,
        b"HugePages_Total",
        Some("huge_pages_total"),
    ),
    (
        Key::HugePagesFree,
        b"HugePages_Free",
        Some("huge_pages_free"),
    ),
    (Key::Hugepagesize, b"Hugepagesize", Some("huge_page_size")),
];

/// The values of one read of `/proc/meminfo`, bytes (page counts for huge pages).
type MemInfo = [Option<u64>; N_KEYS];

/// Reads `/proc/meminfo` and, for swap, `/proc/vmstat`.
#[derive(Debug)]
pub struct Input {
    meminfo: ProcFile,
    vmstat: ProcFile,
    swap: bool,
    page_size: u64,
}

impl Input {
    /// Nothing is opened until the first [`Input::gather`].
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        Input {
            meminfo: ProcFile::new(paths.proc("meminfo")),
            vmstat: ProcFile::new(paths.proc("vmstat")),
            swap: config.swap,
            page_size: procfs::page_size(),
        }
    }

    /// One `mem` point and, if enabled, one `swap` point.
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let info = parse_meminfo(self.meminfo.read_for("mem")?);
        let Some(total) = info[Key::MemTotal as usize].filter(|t| *t > 0) else {
            anyhow::bail!("mem: no MemTotal in {}", self.meminfo.path().display());
        };
        acc.add(mem_point(&info, total));

        if self.swap {
            let counters = match self.vmstat.read() {
                Ok(buf) => swap_counters(buf),
                Err(error) => {
                    tracing::debug!(message = "mem: cannot read vmstat; swap in/out left out", path = %self.vmstat.path().display(), %error);
                    None
                }
            };
            acc.add(swap_point(&info, counters, self.page_size));
        }
        Ok(())
    }
}

fn key_index(name: &[u8]) -> Option<usize> {
    MEMINFO_KEYS.iter().position(|(_, k, _)| *k == name)
}

/// Lines `Name:   value [kB]`; unknown names and malformed lines are skipped.
fn parse_meminfo(buf: &[u8]) -> MemInfo {
    let mut info: MemInfo = [None; N_KEYS];
    for line in lines(buf) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, rest) = line.split_at(colon);
        let Some(i) = key_index(name) else {
            continue;
        };
        let mut it = fields(rest.get(1..).unwrap_or_default());
        let value = it.next().and_then(parse_u64);
        let value = match (value, it.next()) {
            (Some(v), None) => Some(v),
            (Some(v), Some(b"kB")) => v.checked_mul(1024),
            _ => None,
        };
        match (value, info.get_mut(i)) {
            (Some(v), Some(slot)) => *slot = Some(v),
            _ => tracing::debug!(
                message = "mem: skipping a malformed meminfo line",
                line = %String::from_utf8_lossy(line)
            ),
        }
    }
    info
}

fn get(info: &MemInfo, key: Key) -> u64 {
    info.get(key as usize).copied().flatten().unwrap_or(0)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn mem_point(info: &MemInfo, total: u64) -> hostscope_core::PointBuilder {
    let free = get(info, Key::MemFree);
    let buffers = get(info, Key::Buffers);
    let cached = get(info, Key::Cached).saturating_add(get(info, Key::SReclaimable));
    let available = info[Key::MemAvailable as usize]
        .unwrap_or_else(|| free.saturating_add(buffers).saturating_add(cached));
    let used = total
        .saturating_sub(free)
        .saturating_sub(buffers)
        .saturating_sub(cached);
    let mut point = Point::builder("mem")
        .field("available", sat_i64(available))
        .field("cached", sat_i64(cached))
        .field("used", sat_i64(used))
        .field("used_percent", percent(used, total))
        .field("available_percent", percent(available, total));
    for ((_, _, field), value) in MEMINFO_KEYS.iter().zip(info) {
        if let Some(field) = field {
            point = point.field(*field, sat_i64(value.unwrap_or(0)));
        }
    }
    point
}

/// `pswpin` and `pswpout` of `/proc/vmstat`, in pages.
fn swap_counters(buf: &[u8]) -> Option<(u64, u64)> {
    let (mut sin, mut sout) = (None, None);
    for line in lines(buf) {
        let mut it = fields(line);
        match (it.next(), it.next()) {
            (Some(b"pswpin"), Some(v)) => sin = parse_u64(v),
            (Some(b"pswpout"), Some(v)) => sout = parse_u64(v),
            _ => continue,
        }
        if sin.is_some() && sout.is_some() {
            break;
        }
    }
    Some((sin?, sout?))
}

fn swap_point(
    info: &MemInfo,
    counters: Option<(u64, u64)>,
    page_size: u64,
) -> hostscope_core::PointBuilder {
    let total = get(info, Key::SwapTotal);
    let free = get(info, Key::SwapFree);
    let used = total.saturating_sub(free);
    let mut point = Point::builder("swap")
        .field("total", sat_i64(total))
        .field("free", sat_i64(free))
        .field("used", sat_i64(used))
        .field("used_percent", percent(used, total));
    if let Some((sin, sout)) = counters {
        point = point
            .field("in", sat_i64(sin.saturating_mul(page_size)))
            .field("out", sat_i64(sout.saturating_mul(page_size)));
    }
    point
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use hostscope_core::FieldValue;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    const KB: i64 = 1024;

    /// Write the files, gather once, and compare the fields: for `mem`, the listed
    /// ones (all 40 must be there); for `swap`, exactly the listed ones.
    fn check(
        meminfo: &str,
        vmstat: Option<&str>,
        mem: &[(&str, FieldValue)],
        swap: Option<&[(&str, FieldValue)]>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), meminfo).unwrap();
        if let Some(v) = vmstat {
            std::fs::write(dir.path().join("vmstat"), v).unwrap();
        }
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&Config::default(), &paths);
        input.page_size = 4096;
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let points = acc.into_points();
        assert_eq!(points.len(), 2);
        let host = BTreeMap::from([("host".to_owned(), "test".to_owned())]);
        let (m, s) = (&points[0], &points[1]);
        assert_eq!((m.measurement(), m.tags()), ("mem", &host));
        assert_eq!((s.measurement(), s.tags()), ("swap", &host));
        assert_eq!(m.fields().len(), 40, "{:?}", m.fields().keys());
        for (k, v) in mem {
            assert_eq!(m.field(k), Some(v), "mem {k}");
        }
        if let Some(swap) = swap {
            let want: BTreeMap<String, FieldValue> = swap
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            assert_eq!(s.fields(), &want);
        }
    }

    fn int(v: i64) -> FieldValue {
        FieldValue::Integer(v)
    }
    fn float(v: f64) -> FieldValue {
        FieldValue::Float(v)
    }

    const MEMINFO: &str = "\
MemTotal:        8000000 kB
MemFree:         2000000 kB
MemAvailable:    5000000 kB
Buffers:          200000 kB
Cached:          1600000 kB
SwapCached:         1000 kB
Active:          3000000 kB
Inactive:        1500000 kB
Active(anon):    2000000 kB
Inactive(anon):   100000 kB
Active(file):    1000000 kB
Inactive(file):  1400000 kB
Unevictable:       13632 kB
Mlocked:           12680 kB
SwapTotal:       2000000 kB
SwapFree:        1500000 kB
Dirty:               860 kB
Writeback:             4 kB
AnonPages:         11412 kB
Mapped:            10792 kB
Shmem:              8872 kB
KReclaimable:     200000 kB
Slab:             300000 kB
SReclaimable:     200000 kB
SUnreclaim:       100000 kB
KernelStack:        1408 kB
PageTables:         1852 kB
WritebackTmp:          0 kB
CommitLimit:    12342040 kB
Committed_AS:      56188 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       14188 kB
VmallocChunk:          0 kB
Percpu:              664 kB
HugePages_Total:       4
HugePages_Free:        3
HugePages_Rsvd:        0
Hugepagesize:       2048 kB
DirectMap4k:       30720 kB
";
    const VMSTAT: &str = "nr_free_pages 1\npgpgin 5\npswpin 10\npswpout 25\npgfault 3\n";

    #[test]
    fn key_table_is_in_key_order() {
        for (i, (key, _, _)) in MEMINFO_KEYS.iter().enumerate() {
            assert_eq!(*key as usize, i);
        }
    }

    #[test]
    fn with_mem_available() {
        // cached = 1600000 + 200000 kB; used = 8000000 - 2000000 - 200000 - 1800000.
        check(
            MEMINFO,
            Some(VMSTAT),
            &[
                ("total", int(8_000_000 * KB)),
                ("free", int(2_000_000 * KB)),
                ("buffered", int(200_000 * KB)),
                ("cached", int(1_800_000 * KB)),
                ("available", int(5_000_000 * KB)),
                ("used", int(4_000_000 * KB)),
                ("used_percent", float(50.0)),
                ("available_percent", float(62.5)),
                ("slab", int(300_000 * KB)),
                ("sreclaimable", int(200_000 * KB)),
                ("shared", int(8872 * KB)),
                ("active_file", int(1_000_000 * KB)),
                ("committed_as", int(56188 * KB)),
                ("vmalloc_total", int(34_359_738_367 * KB)),
                ("huge_pages_total", int(4)),
                ("huge_pages_free", int(3)),
                ("huge_page_size", int(2048 * KB)),
                ("swap_total", int(2_000_000 * KB)),
                // Absent on 64-bit kernels: 0, as Telegraf.
                ("high_total", int(0)),
                ("low_free", int(0)),
            ],
            Some(&[
                ("total", int(2_000_000 * KB)),
                ("free", int(1_500_000 * KB)),
                ("used", int(500_000 * KB)),
                ("used_percent", float(25.0)),
                ("in", int(10 * 4096)),
                ("out", int(25 * 4096)),
            ]),
        );
    }

    #[test]
    fn without_mem_available() {
        // A 3.10 kernel: no MemAvailable; available = free + buffers + cached.
        let old = MEMINFO.replace("MemAvailable:    5000000 kB\n", "");
        check(
            &old,
            Some(VMSTAT),
            &[
                ("available", int(4_000_000 * KB)),
                ("available_percent", float(50.0)),
                ("used", int(4_000_000 * KB)),
            ],
            None,
        );
    }

    #[test]
    fn no_swap() {
        let none = MEMINFO
            .replace("SwapTotal:       2000000 kB", "SwapTotal:             0 kB")
            .replace("SwapFree:        1500000 kB", "SwapFree:              0 kB");
        let vm = "pswpin 0\npswpout 0\n";
        let want: &[(&str, FieldValue)] = &[
            ("total", int(0)),
            ("free", int(0)),
            ("used", int(0)),
            ("used_percent", float(0.0)),
            ("in", int(0)),
            ("out", int(0)),
        ];
        check(&none, Some(vm), &[("swap_total", int(0))], Some(want));
        // No vmstat at all: in/out are left out, the rest is reported.
        check(&none, None, &[], Some(&want[..4]));
        // No swap lines at all (a kernel without CONFIG_SWAP).
        let no_lines = MEMINFO
            .replace("SwapTotal:       2000000 kB\n", "")
            .replace("SwapFree:        1500000 kB\n", "");
        check(&no_lines, Some(vm), &[], Some(want));
    }

    #[test]
    fn odd_content() {
        // Cached larger than total (seen with some filesystems' accounting): used is 0.
        let odd = "MemTotal: 100 kB\nMemFree: 10 kB\nCached: 200 kB\nBogus line\nSlab: x kB\nDirty: 5 MB\nShmem:\n";
        check(
            odd,
            Some(VMSTAT),
            &[
                ("used", int(0)),
                ("used_percent", float(0.0)),
                ("slab", int(0)),
                ("dirty", int(0)),
                ("shared", int(0)),
            ],
            None,
        );
    }

    #[test]
    fn two_cycles_read_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&Config::default(), &paths);
        input.page_size = 4096;
        let mut gather = |meminfo: &str, vmstat: &str| {
            std::fs::write(dir.path().join("meminfo"), meminfo).unwrap();
            std::fs::write(dir.path().join("vmstat"), vmstat).unwrap();
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            let p = acc.into_points();
            (
                p[0].field("free").cloned(),
                p[1].field("used").cloned(),
                p[1].field("in").cloned(),
            )
        };
        assert_eq!(
            gather(MEMINFO, VMSTAT),
            (
                Some(int(2_000_000 * KB)),
                Some(int(500_000 * KB)),
                Some(int(10 * 4096))
            )
        );
        let later = MEMINFO
            .replace("MemFree:         2000000 kB", "MemFree:         1000 kB")
            .replace("SwapFree:        1500000 kB", "SwapFree:        1000000 kB");
        assert_eq!(
            gather(&later, "pswpin 30\npswpout 25\n"),
            (
                Some(int(1000 * KB)),
                Some(int(1_000_000 * KB)),
                Some(int(30 * 4096))
            )
        );
    }

    #[test]
    fn errors() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&Config::default(), &paths);
        let e = input
            .gather(&mut test_accumulator())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mem: cannot read "), "{e}");
        assert!(e.contains("meminfo"), "{e}");
        std::fs::write(dir.path().join("meminfo"), "MemFree: 1 kB\n").unwrap();
        let e = input
            .gather(&mut test_accumulator())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mem: no MemTotal in "), "{e}");
    }

    #[test]
    fn swap_can_be_turned_off() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/system");
        let paths = HostPaths {
            proc_root: root.join("proc"),
            sys_root: root.join("sys"),
            mount_prefix: PathBuf::new(),
        };
        let config = Config {
            swap: false,
            ..Config::default()
        };
        let mut input = Input::new(&config, &paths);
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let names: Vec<&str> = acc.points().iter().map(Point::measurement).collect();
        assert_eq!(names, ["mem"]);
    }

    #[test]
    fn fixture_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/system");
        let paths = HostPaths {
            proc_root: root.join("proc"),
            sys_root: root.join("sys"),
            mount_prefix: PathBuf::new(),
        };
        let mut input = Input::new(&Config::default(), &paths);
        input.page_size = 4096;
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let p = acc.points();
        assert_eq!(p[0].field("total"), Some(&int(16_318_480 * KB)));
        assert_eq!(p[0].field("available"), Some(&int(11_206_632 * KB)));
        assert_eq!(p[1].field("in"), Some(&int(1_234 * 4096)));
        assert_eq!(p[1].field("out"), Some(&int(5_678 * 4096)));
    }

    #[test]
    fn real_host() {
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let p = acc.points();
        assert_eq!(p.len(), 2);
        let num = |i: usize, f: &str| p[i].field(f).and_then(FieldValue::as_f64).unwrap();
        assert!(num(0, "total") > 0.0);
        assert!(num(0, "available") <= num(0, "total"));
        assert!(num(0, "used") <= num(0, "total"));
        assert!((0.0..=100.0).contains(&num(0, "used_percent")));
        assert!(num(1, "total") >= num(1, "used"));
        assert!(num(1, "in") >= 0.0);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(meminfo: Vec<u8>, vmstat: Vec<u8>) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("meminfo"), &meminfo).unwrap();
            std::fs::write(dir.path().join("vmstat"), &vmstat).unwrap();
            let paths = crate::inputs::test_paths(dir.path());
            let mut input = Input::new(&Config::default(), &paths);
            let _ = input.gather(&mut test_accumulator());
        }

        #[test]
        fn plausible_garbage_never_panics(
            lines in proptest::collection::vec("(MemTotal|MemFree|Cached|SwapTotal|SwapFree|MemAvailable): {0,3}[0-9]{1,21}( kB)?", 0..8),
        ) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("meminfo"), lines.join("\n")).unwrap();
            std::fs::write(dir.path().join("vmstat"), "pswpin 18446744073709551615\npswpout 1\n").unwrap();
            let paths = crate::inputs::test_paths(dir.path());
            let mut input = Input::new(&Config::default(), &paths);
            let mut acc = test_accumulator();
            let _ = input.gather(&mut acc);
            proptest::prop_assert_eq!(acc.invalid, 0);
        }
    }
}
