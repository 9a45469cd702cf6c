//! `system`: load averages, uptime and the number of online CPUs, in Telegraf's
//! `system` schema.
//!
//! This module also holds what the other system inputs (`cpu`, `mem`, `disk`,
//! `diskio`, `net`) share: `ProcFile`, a kept-open file re-read from offset 0 into a
//! reused buffer every cycle, and allocation-free parsers for byte slices.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;

use super::{Accumulator, HostPaths, InputError};

// ---------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------

/// Largest file [`ProcFile`] reads (bytes). Real /proc files are far smaller; this
/// only stops a misconfigured `proc_root` from eating memory.
const MAX_FILE_LEN: usize = 64 * 1024 * 1024;

/// A file under /proc or /sys that is read whole every cycle.
///
/// The file stays open between cycles and is re-read from offset 0 with `pread`, into a
/// buffer that keeps its size, so a steady-state read costs two system calls and no
/// allocation. If the open file goes bad (ENODEV after a hot-unplug, say), it is
/// reopened and read once more; if that fails too, the next call tries again.
#[derive(Debug)]
pub(crate) struct ProcFile {
    /// Paths to try in order; the first that opens is used.
    candidates: Vec<PathBuf>,
    /// The open file and the index of its path in `candidates`.
    file: Option<(File, usize)>,
    buf: Vec<u8>,
}

impl ProcFile {
    /// A file at `path`; nothing is opened until the first read.
    pub(crate) fn new(path: PathBuf) -> Self {
        ProcFile::with_fallbacks(vec![path])
    }

    /// The first of `paths` that can be opened.
    pub(crate) fn with_fallbacks(paths: Vec<PathBuf>) -> Self {
        ProcFile {
            candidates: paths,
            file: None,
            buf: Vec::new(),
        }
    }

    /// The path in use, or the first candidate when none is open.
    pub(crate) fn path(&self) -> &Path {
        let i = self.file.as_ref().map_or(0, |(_, i)| *i);
        self.candidates
            .get(i)
            .map_or(Path::new(""), PathBuf::as_path)
    }

    /// The whole file as it is now.
    pub(crate) fn read(&mut self) -> io::Result<&[u8]> {
        let was_open = self.file.is_some();
        if !was_open {
            self.open()?;
        }
        let len = match self.read_from_start() {
            Ok(len) => len,
            Err(error) if was_open => {
                tracing::debug!(message = "reopening", path = %self.path().display(), %error);
                self.file = None;
                self.open()?;
                self.read_from_start().inspect_err(|_| self.file = None)?
            }
            Err(error) => {
                self.file = None;
                return Err(error);
            }
        };
        Ok(self.buf.get(..len).unwrap_or_default())
    }

    /// [`ProcFile::read`] with an error that names the input and the file:
    /// `cpu: cannot read /proc/stat: …`.
    pub(crate) fn read_for(&mut self, input: &str) -> Result<&[u8], InputError> {
        // The path must be taken before the read borrows the buffer.
        let described = self.path().display().to_string();
        self.read()
            .map_err(|e| anyhow::anyhow!("{input}: cannot read {described}: {e}"))
    }

    fn open(&mut self) -> io::Result<()> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no path to open");
        for (i, path) in self.candidates.iter().enumerate() {
            match File::open(path) {
                Ok(f) => {
                    self.file = Some((f, i));
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn read_from_start(&mut self) -> io::Result<usize> {
        let Some((file, _)) = &self.file else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "file not open"));
        };
        let mut len = 0usize;
        loop {
            if len == self.buf.len() {
                if len >= MAX_FILE_LEN {
                    return Err(io::Error::other(format!(
                        "file is larger than {MAX_FILE_LEN} bytes"
                    )));
                }
                let grown = (len * 2).clamp(4096, MAX_FILE_LEN);
                self.buf.resize(grown, 0);
            }
            let Some(spare) = self.buf.get_mut(len..) else {
                return Ok(len);
            };
            match file.read_at(spare, len as u64) {
                Ok(0) => return Ok(len),
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Lines of a buffer (the last one may be empty).
pub(crate) fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|b| *b == b'\n')
}

/// Whitespace-separated fields of a line, empty ones skipped.
pub(crate) fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// A decimal unsigned integer; `None` for anything else or on overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A finite decimal float (`0.52`).
pub(crate) fn parse_f64(s: &[u8]) -> Option<f64> {
    let v: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A counter as InfluxDB 1.x stores integers, saturating at `i64::MAX`.
pub(crate) fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Compile glob patterns of a config list, reporting each bad one as `key[i]`.
pub(crate) fn validate_globs(key: &str, patterns: &[String], errors: &mut ConfigErrors) {
    for (i, p) in patterns.iter().enumerate() {
        if p.is_empty() {
            errors.push(format!("{key}[{i}]"), "must not be empty");
        } else if let Err(e) = glob::Pattern::new(p) {
            errors.push(format!("{key}[{i}]"), format!("invalid glob {p:?}: {e}"));
        }
    }
}

/// Compiled glob patterns; patterns that do not compile (refused by validation) are
/// dropped.
pub(crate) fn compile_globs(patterns: &[String]) -> Vec<glob::Pattern> {
    patterns
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect()
}

/// Whether any pattern matches `name`.
pub(crate) fn matches_any(patterns: &[glob::Pattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

// ---------------------------------------------------------------------------------
// The `system` input
// ---------------------------------------------------------------------------------

/// `[collector.inputs.system]`
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the `system` measurement (`load1`, `load5`, `load15`, `n_cpus`,
    /// `uptime`). Default `true`.
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { enabled: true }
    }
}

impl Config {
    /// Nothing to check beyond the types; kept for the common input contract.
    pub fn validate(&self, _key: &str, _errors: &mut ConfigErrors) {}
}

/// Reads `/proc/loadavg`, `/proc/uptime` and `/sys/devices/system/cpu/online`.
#[derive(Debug)]
pub struct Input {
    loadavg: ProcFile,
    uptime: ProcFile,
    online: ProcFile,
    /// Fallback for `n_cpus` when the sysfs file cannot be read: count `cpuN` lines.
    stat: ProcFile,
}

impl Input {
    /// Nothing is opened until the first [`Input::gather`].
    pub fn new(_config: &Config, paths: &HostPaths) -> Self {
        Input {
            loadavg: ProcFile::new(paths.proc("loadavg")),
            uptime: ProcFile::new(paths.proc("uptime")),
            online: ProcFile::new(paths.sys("devices/system/cpu/online")),
            stat: ProcFile::new(paths.proc("stat")),
        }
    }

    /// One `system` point. Fails if the load averages or the uptime cannot be read;
    /// `n_cpus` is left out if neither of its sources can be.
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let loads = {
            let buf = self.loadavg.read_for("system")?;
            let mut it = fields(buf).map(parse_f64);
            (it.next(), it.next(), it.next())
        };
        let (Some(Some(load1)), Some(Some(load5)), Some(Some(load15))) = loads else {
            anyhow::bail!(
                "system: cannot parse {}: expected three load averages",
                self.loadavg.path().display()
            );
        };

        let buf = self.uptime.read_for("system")?;
        let Some(uptime) = fields(buf).next().and_then(parse_f64) else {
            anyhow::bail!(
                "system: cannot parse {}: expected seconds since boot",
                self.uptime.path().display()
            );
        };

        let n_cpus = match self.online.read() {
            Ok(buf) => count_cpu_list(buf),
            Err(error) => {
                tracing::debug!(message = "system: no online CPU list, counting /proc/stat", path = %self.online.path().display(), %error);
                None
            }
        };
        let n_cpus = match n_cpus {
            Some(n) => Some(n),
            None => self.stat.read().ok().map(count_stat_cpus),
        };

        let mut point = Point::builder("system")
            .field("load1", load1)
            .field("load5", load5)
            .field("load15", load15)
            // Seconds, as Telegraf: truncated, and never negative.
            .field("uptime", uptime.max(0.0) as i64);
        if let Some(n) = n_cpus {
            point = point.field("n_cpus", sat_i64(n));
        }
        acc.add(point);
        Ok(())
    }
}

/// The number of CPUs in a kernel CPU list such as `0-3,5,7-8`; `None` if malformed.
fn count_cpu_list(buf: &[u8]) -> Option<u64> {
    let text = buf.trim_ascii();
    if text.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for part in text.split(|b| *b == b',') {
        let count = match part.iter().position(|b| *b == b'-') {
            Some(dash) => {
                let lo = parse_u64(part.get(..dash)?)?;
                let hi = parse_u64(part.get(dash + 1..)?)?;
                hi.checked_sub(lo)?.checked_add(1)?
            }
            None => {
                parse_u64(part)?;
                1
            }
        };
        n = n.checked_add(count)?;
    }
    Some(n)
}

/// The number of `cpuN` lines in /proc/stat.
fn count_stat_cpus(buf: &[u8]) -> u64 {
    lines(buf)
        .filter(|l| {
            l.strip_prefix(b"cpu")
                .and_then(|rest| rest.first())
                .is_some_and(u8::is_ascii_digit)
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use hostscope_core::point::FieldValue;
    use std::collections::BTreeMap;

    fn paths(dir: &Path) -> HostPaths {
        HostPaths {
            proc_root: dir.join("proc"),
            sys_root: dir.join("sys"),
            mount_prefix: PathBuf::new(),
        }
    }

    fn write(dir: &Path, rel: &str, content: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Gather once from files laid out under a temp dir; the fields of the one point,
    /// or the error.
    fn check(files: &[(&str, &str)], expected: Result<&[(&str, FieldValue)], &str>) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, content) in files {
            write(dir.path(), rel, content);
        }
        let mut input = Input::new(&Config::default(), &paths(dir.path()));
        let mut acc = test_accumulator();
        let got = input.gather(&mut acc);
        match expected {
            Ok(fields) => {
                got.unwrap();
                let points = acc.into_points();
                assert_eq!(points.len(), 1);
                let p = &points[0];
                assert_eq!(p.measurement(), "system");
                assert_eq!(
                    p.tags(),
                    &BTreeMap::from([("host".to_owned(), "test".to_owned())])
                );
                let want: BTreeMap<String, FieldValue> = fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect();
                assert_eq!(p.fields(), &want);
            }
            Err(msg) => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains(msg), "{e:?} does not contain {msg:?}");
                assert!(acc.points().is_empty());
            }
        }
    }

    const LOADAVG: &str = "0.52 0.58 0.59 2/1200 12345\n";
    const UPTIME: &str = "350735.47 234388.90\n";

    #[test]
    fn system_point() {
        let ok = [
            ("load1", FieldValue::Float(0.52)),
            ("load5", FieldValue::Float(0.58)),
            ("load15", FieldValue::Float(0.59)),
            ("uptime", FieldValue::Integer(350735)),
            ("n_cpus", FieldValue::Integer(6)),
        ];
        check(
            &[
                ("proc/loadavg", LOADAVG),
                ("proc/uptime", UPTIME),
                ("sys/devices/system/cpu/online", "0-3,5,7\n"),
            ],
            Ok(&ok),
        );
        // No sysfs: count the cpuN lines of /proc/stat.
        let stat = "cpu  1 2 3 4\ncpu0 1 1 1 1\ncpu2 0 1 2 3\nintr 5\n";
        let ok2 = [
            ("load1", FieldValue::Float(0.52)),
            ("load5", FieldValue::Float(0.58)),
            ("load15", FieldValue::Float(0.59)),
            ("uptime", FieldValue::Integer(350735)),
            ("n_cpus", FieldValue::Integer(2)),
        ];
        check(
            &[
                ("proc/loadavg", LOADAVG),
                ("proc/uptime", UPTIME),
                ("proc/stat", stat),
            ],
            Ok(&ok2),
        );
        // Neither: n_cpus is left out.
        check(
            &[("proc/loadavg", LOADAVG), ("proc/uptime", UPTIME)],
            Ok(&ok2[..4]),
        );
        check(&[("proc/uptime", UPTIME)], Err("system: cannot read"));
        check(
            &[("proc/loadavg", "0.1 0.2\n"), ("proc/uptime", UPTIME)],
            Err("expected three load averages"),
        );
        check(
            &[("proc/loadavg", "0.1 NaN 0.3\n"), ("proc/uptime", UPTIME)],
            Err("expected three load averages"),
        );
        check(
            &[("proc/loadavg", LOADAVG), ("proc/uptime", "\n")],
            Err("expected seconds since boot"),
        );
    }

    #[test]
    fn two_cycles_read_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut input = Input::new(&Config::default(), &paths(dir.path()));
        let mut gather = |loadavg: &str, uptime: &str, online: &str| {
            write(dir.path(), "proc/loadavg", loadavg);
            write(dir.path(), "proc/uptime", uptime);
            write(dir.path(), "sys/devices/system/cpu/online", online);
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            let p = &acc.points()[0];
            ["load1", "uptime", "n_cpus"].map(|f| p.field(f).and_then(FieldValue::as_f64))
        };
        assert_eq!(
            gather(LOADAVG, UPTIME, "0-7\n"),
            [Some(0.52), Some(350735.0), Some(8.0)]
        );
        // A CPU went offline; time passed.
        assert_eq!(
            gather(
                "12.25 3.00 1.00 9/1300 12400\n",
                "350745.99 0\n",
                "0-2,4-7\n"
            ),
            [Some(12.25), Some(350745.0), Some(7.0)]
        );
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
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let p = &acc.points()[0];
        assert_eq!(p.field("load1"), Some(&FieldValue::Float(1.06)));
        assert_eq!(p.field("n_cpus"), Some(&FieldValue::Integer(4)));
        assert_eq!(p.field("uptime"), Some(&FieldValue::Integer(183942)));
    }

    #[test]
    fn cpu_lists() {
        let check =
            |s: &str, want: Option<u64>| assert_eq!(count_cpu_list(s.as_bytes()), want, "{s:?}");
        check("0\n", Some(1));
        check("0-7\n", Some(8));
        check("0-3,5,7-8\n", Some(7));
        check("", None);
        check("3-1", None);
        check("a-b", None);
        check("0-18446744073709551615", None);
        check("1,,2", None);
    }

    #[test]
    fn number_parsers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"1x"), None);
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"inf"), None);
        assert_eq!(parse_f64(b"\xff"), None);
        assert_eq!(sat_i64(u64::MAX), i64::MAX);
        assert_eq!(sat_i64(7), 7);
    }

    #[test]
    fn proc_file_rereads_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "one\n").unwrap();
        let mut f = ProcFile::new(p.clone());
        assert_eq!(f.read().unwrap(), b"one\n");
        // Rewritten in place: the open file sees the new content from offset 0.
        std::fs::write(&p, "two, longer than before\n").unwrap();
        assert_eq!(f.read().unwrap(), b"two, longer than before\n");
        // Large content grows the buffer.
        let big = "x".repeat(100_000);
        std::fs::write(&p, &big).unwrap();
        assert_eq!(f.read().unwrap(), big.as_bytes());
        // Replaced by a new file: the old inode is still what we hold; after removal the
        // path is gone but the open file still reads. A missing file on first open fails
        // with an error naming it.
        let mut missing = ProcFile::new(dir.path().join("nope"));
        let e = missing.read_for("test").unwrap_err().to_string();
        assert!(e.starts_with("test: cannot read "), "{e}");
        assert!(e.contains("nope"), "{e}");
        // Fallbacks: the first path that opens is used.
        let mut fb = ProcFile::with_fallbacks(vec![dir.path().join("nope"), p.clone()]);
        assert_eq!(fb.read().unwrap().len(), 100_000);
        assert_eq!(fb.path(), p.as_path());
    }

    #[test]
    fn real_host() {
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let p = &acc.points()[0];
        assert_eq!(p.measurement(), "system");
        for f in ["load1", "load5", "load15"] {
            let v = p.field(f).and_then(FieldValue::as_f64).unwrap();
            assert!(v >= 0.0, "{f} = {v}");
        }
        let n = p.field("n_cpus").and_then(FieldValue::as_f64).unwrap();
        assert!(n >= 1.0);
        let up = p.field("uptime").and_then(FieldValue::as_f64).unwrap();
        assert!(up > 0.0);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(loadavg: Vec<u8>, uptime: Vec<u8>, online: Vec<u8>) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("proc")).unwrap();
            std::fs::create_dir_all(dir.path().join("sys/devices/system/cpu")).unwrap();
            std::fs::write(dir.path().join("proc/loadavg"), &loadavg).unwrap();
            std::fs::write(dir.path().join("proc/uptime"), &uptime).unwrap();
            std::fs::write(dir.path().join("sys/devices/system/cpu/online"), &online).unwrap();
            let mut input = Input::new(&Config::default(), &paths(dir.path()));
            let mut acc = test_accumulator();
            let _ = input.gather(&mut acc);
        }
    }
}
