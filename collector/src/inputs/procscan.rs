//! One scan of `/proc/<pid>` per cycle, shared by every process input.
//!
//! [`Scanner::scan`] lists `<proc_root>` once and reads only `/proc/<pid>/stat` for each
//! process: one `openat` (relative to a `/proc` directory descriptor kept open across
//! scans) + one `read` into a reused buffer + `close`, hand-parsed without allocating.
//! Everything a consumer needs for all processes (state, threads, RSS, CPU usage) comes
//! from that line, so the per-process cost of a cycle is that of reading `stat`.
//!
//! What only some consumers need for a few processes (command line, user, systemd
//! cgroup) is read on demand through the scanner and cached per process, i.e. per
//! `(pid, starttime)`. A cached detail is re-read after [`DETAIL_TTL`] (argv rewriting,
//! setuid after start-up and cgroup moves happen after a process is first seen) and
//! dropped at once when the process's `comm` changes (an `exec`). Entries of processes
//! that are gone are removed at the end of every scan.
//!
//! CPU usage is the delta of `utime + stime` ticks between two scans of the same
//! `(pid, starttime)`, divided by the ticks per second and the monotonic time between
//! the scans: percent of one core. A process seen for the first time, or a pid reused
//! by a new process, has no usage yet (`None`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt;
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};
use rustix::io::Errno;

use super::{HostPaths, InputError};

/// How long a lazily read detail (command line, uid, cgroup, user names) is trusted
/// before it is read again.
pub const DETAIL_TTL: Duration = Duration::from_secs(60);

/// Longest command line kept (bytes); longer ones are cut. Matching and reporting see
/// at most this much.
pub const MAX_CMDLINE_BYTES: usize = 16 * 1024;

/// `PF_KTHREAD` in the `flags` field of `stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// A `stat` line is well under this; a longer one is refused as garbage.
const STAT_LIMIT: usize = 4096;

/// `status` and `cgroup` files are a few KiB; more is not read.
const SMALL_FILE_LIMIT: usize = 64 * 1024;

/// One process as seen by the latest scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// Process id (thread-group id).
    pub pid: i32,
    /// The kernel's name of the process (`comm`, at most 15 bytes), shared with the
    /// scanner's cache so an unchanged name costs no allocation.
    pub comm: Arc<str>,
    /// State letter: `R` running, `S` sleeping, `D` blocked, `Z` zombie, `T`/`t`
    /// stopped, `I` idle, `X` dead, `W` paging, `P` parked.
    pub state: char,
    /// Parent process id.
    pub ppid: i32,
    /// A kernel thread (`PF_KTHREAD`): no command line, no user-space memory, no fds.
    pub kernel_thread: bool,
    /// Number of threads.
    pub num_threads: i64,
    /// Resident set size in bytes.
    pub rss_bytes: i64,
    /// Virtual memory size in bytes.
    pub vsize_bytes: u64,
    /// Start time in clock ticks after boot; with `pid` it identifies the process.
    pub starttime: u64,
    /// `utime + stime` in clock ticks.
    pub cpu_ticks: u64,
    /// Percent of one core since the previous scan; `None` on first sight.
    pub cpu_usage: Option<f64>,
}

/// Every process seen by one scan, sorted by pid.
#[derive(Debug, Clone)]
pub struct ProcessTable {
    processes: Vec<ProcessInfo>,
    scanned_at: Instant,
    elapsed: Option<Duration>,
    skipped: usize,
}

impl ProcessTable {
    /// The processes, sorted by pid.
    pub fn as_slice(&self) -> &[ProcessInfo] {
        &self.processes
    }
    /// Iterate over the processes in pid order.
    pub fn iter(&self) -> std::slice::Iter<'_, ProcessInfo> {
        self.processes.iter()
    }
    /// Number of processes.
    pub fn len(&self) -> usize {
        self.processes.len()
    }
    /// No process at all (an empty or foreign `proc_root`).
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }
    /// The process with this pid, if the scan saw it.
    pub fn get(&self, pid: i32) -> Option<&ProcessInfo> {
        self.processes
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .and_then(|i| self.processes.get(i))
    }
    /// The monotonic instant of the scan (the injected clock in tests).
    pub fn scanned_at(&self) -> Instant {
        self.scanned_at
    }
    /// Time since the previous scan; `None` for the first.
    pub fn elapsed(&self) -> Option<Duration> {
        self.elapsed
    }
    /// Entries that looked like processes but whose `stat` could not be read or parsed
    /// (processes that exited during the scan are not counted).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

impl<'a> IntoIterator for &'a ProcessTable {
    type Item = &'a ProcessInfo;
    type IntoIter = std::slice::Iter<'a, ProcessInfo>;
    fn into_iter(self) -> Self::IntoIter {
        self.processes.iter()
    }
}

/// A process's command line: arguments joined by spaces, trailing NULs and spaces
/// trimmed, cut at [`MAX_CMDLINE_BYTES`]. Empty for kernel threads and zombies. Cheap
/// to clone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cmdline {
    text: Arc<str>,
    argv0_len: usize,
}

impl Cmdline {
    /// Parse the raw contents of `/proc/<pid>/cmdline`.
    pub fn from_raw(raw: &[u8]) -> Self {
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let lossy = String::from_utf8_lossy(raw.get(..end).unwrap_or_default());
        let argv0_len = lossy.find('\0').unwrap_or(lossy.len());
        let joined = lossy.replace('\0', " ");
        let text = joined.trim_end();
        Cmdline {
            argv0_len: argv0_len.min(text.len()),
            text: Arc::from(text),
        }
    }
    /// The whole command line.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// The first argument (the program as invoked).
    pub fn argv0(&self) -> &str {
        self.text.get(..self.argv0_len).unwrap_or(&self.text)
    }
    /// No command line (kernel thread, zombie, unreadable).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
    /// The same text allocation (cache identity, for consumers caching results).
    pub fn ptr_eq(&self, other: &Cmdline) -> bool {
        Arc::ptr_eq(&self.text, &other.text)
    }
}

impl fmt::Display for Cmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A detail read at some instant.
#[derive(Debug, Clone)]
struct Timed<T> {
    value: T,
    at: Instant,
}

impl<T: Clone> Timed<T> {
    fn fresh(&self, now: Instant) -> Option<T> {
        (now.saturating_duration_since(self.at) < DETAIL_TTL).then(|| self.value.clone())
    }
}

/// What the scanner remembers about one `(pid, starttime)`.
#[derive(Debug)]
struct Tracked {
    starttime: u64,
    ticks: u64,
    seen: u64,
    comm: Arc<str>,
    cmdline: Option<Timed<Cmdline>>,
    uid: Option<Timed<Option<u32>>>,
    cgroup: Option<Timed<Option<Arc<str>>>>,
}

impl Tracked {
    fn new(starttime: u64, comm: Arc<str>) -> Self {
        Tracked {
            starttime,
            ticks: 0,
            seen: 0,
            comm,
            cmdline: None,
            uid: None,
            cgroup: None,
        }
    }
}

/// The fields of a `/proc/<pid>/stat` line that hostscope uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLine<'a> {
    /// Field 1.
    pub pid: i32,
    /// Field 2, between the first `(` and the last `)`; raw bytes.
    pub comm: &'a [u8],
    /// Field 3.
    pub state: u8,
    /// Field 4.
    pub ppid: i32,
    /// Field 9.
    pub flags: u64,
    /// Field 14, ticks.
    pub utime: u64,
    /// Field 15, ticks.
    pub stime: u64,
    /// Field 20.
    pub num_threads: i64,
    /// Field 22, ticks after boot.
    pub starttime: u64,
    /// Field 23, bytes.
    pub vsize: u64,
    /// Field 24, pages.
    pub rss_pages: i64,
}

/// Parse a `stat` line without allocating; `None` for anything malformed.
pub fn parse_stat(line: &[u8]) -> Option<StatLine<'_>> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = i32::try_from(parse_i64(line.get(..open)?.trim_ascii())?).ok()?;
    let comm = line.get(open + 1..close)?;
    let rest = line.get(close + 1..)?;
    let mut it = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = match it.next()? {
        [s] if s.is_ascii_alphabetic() => *s,
        _ => return None,
    };
    let ppid = i32::try_from(parse_i64(it.next()?)?).ok()?; // 4
    let flags = parse_u64(it.nth(4)?)?; // 9
    let utime = parse_u64(it.nth(4)?)?; // 14
    let stime = parse_u64(it.next()?)?; // 15
    let num_threads = parse_i64(it.nth(4)?)?; // 20
    let starttime = parse_u64(it.nth(1)?)?; // 22
    let vsize = parse_u64(it.next()?)?; // 23
    let rss_pages = parse_i64(it.next()?)?; // 24
    Some(StatLine {
        pid,
        comm,
        state,
        ppid,
        flags,
        utime,
        stime,
        num_threads,
        starttime,
        vsize,
        rss_pages,
    })
}

/// Decimal digits only, no sign; `None` on overflow or anything else.
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// Optional `-`, then decimal digits.
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    match b.split_first() {
        Some((b'-', digits)) => i64::try_from(parse_u64(digits)?).ok()?.checked_neg(),
        _ => i64::try_from(parse_u64(b)?).ok(),
    }
}

/// A `/proc` entry name that is a pid.
fn parse_pid(name: &[u8]) -> Option<i32> {
    if name.first() == Some(&b'0') {
        return None;
    }
    i32::try_from(parse_u64(name)?).ok().filter(|p| *p > 0)
}

/// `"<pid>/<suffix>\0"` in a stack buffer.
pub(crate) fn pid_path<'a>(out: &'a mut [u8; 64], pid: i32, suffix: &str) -> Option<&'a CStr> {
    let len = {
        let mut cursor = io::Cursor::new(&mut out[..]);
        write!(cursor, "{pid}/{suffix}\0").ok()?;
        usize::try_from(cursor.position()).ok()?
    };
    CStr::from_bytes_with_nul(out.get(..len)?).ok()
}

/// Read a whole file relative to `dir` into `buf` (grown as needed, reused), at most
/// `limit` bytes. With `line`, stop as soon as a read ends in `\n`: a `stat` line comes
/// in one read, which saves the read that would return 0.
pub(crate) fn read_file_at(
    dir: BorrowedFd<'_>,
    path: &CStr,
    buf: &mut Vec<u8>,
    limit: usize,
    line: bool,
) -> Result<usize, Errno> {
    let fd = rustix::fs::openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let mut len = 0;
    loop {
        if len >= limit {
            break;
        }
        if len == buf.len() {
            let grown = buf.len().saturating_mul(2).clamp(1024, limit);
            buf.resize(grown, 0);
        }
        let end = buf.len().min(limit);
        let Some(space) = buf.get_mut(len..end) else {
            break;
        };
        let n = match rustix::io::read(&fd, space) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        len += n;
        if line && buf.get(len - 1) == Some(&b'\n') {
            break;
        }
    }
    Ok(len)
}

/// Open a directory for `openat`/`getdents`.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// A reusable, aligned-enough buffer for [`RawDir`].
pub(crate) fn dir_buffer() -> Vec<MaybeUninit<u8>> {
    vec![MaybeUninit::uninit(); 16 * 1024]
}

/// uid → user name, from the host's `/etc/passwd`, read lazily and again (at most once
/// per [`DETAIL_TTL`]) when a uid is missing.
#[derive(Debug)]
struct Users {
    path: PathBuf,
    names: HashMap<u32, Arc<str>>,
    loaded_at: Option<Instant>,
}

impl Users {
    fn name(&mut self, uid: u32, now: Instant) -> Arc<str> {
        if let Some(name) = self.names.get(&uid) {
            return name.clone();
        }
        let stale = self
            .loaded_at
            .is_none_or(|at| now.saturating_duration_since(at) >= DETAIL_TTL);
        if stale {
            self.loaded_at = Some(now);
            match std::fs::read(&self.path) {
                Ok(bytes) => self.names = parse_passwd(&String::from_utf8_lossy(&bytes)),
                Err(error) => {
                    tracing::debug!(message = "cannot read passwd", path = %self.path.display(), %error);
                }
            }
            if let Some(name) = self.names.get(&uid) {
                return name.clone();
            }
        }
        Arc::from(uid.to_string())
    }
}

/// `name:x:uid:...` lines; the first name of a uid wins.
fn parse_passwd(text: &str) -> HashMap<u32, Arc<str>> {
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if let Ok(uid) = uid.trim().parse::<u32>() {
            names.entry(uid).or_insert_with(|| Arc::from(name));
        }
    }
    names
}

/// The real uid from a `status` file (`Uid:\treal\teffective\t...`).
fn parse_status_uid(status: &[u8]) -> Option<u32> {
    let line = status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Uid:"))?;
    let real = line
        .split(|b| b.is_ascii_whitespace())
        .find(|f| !f.is_empty())?;
    u32::try_from(parse_u64(real)?).ok()
}

/// The systemd cgroup path from a `cgroup` file: the `name=systemd` hierarchy (cgroup
/// v1 or hybrid), else the unified one (`0::`).
pub fn parse_systemd_cgroup(text: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(text).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers == "name=systemd" {
            return Some(path);
        }
        if id == "0" && controllers.is_empty() {
            unified = Some(path);
        }
    }
    unified
}

/// Whether a cgroup path lies in a unit's subtree: one of its components is the unit
/// (`/system.slice/nginx.service`, `/system.slice/nginx.service/worker`, and every
/// user process under `user@1000.service`).
pub fn cgroup_in_unit(cgroup: &str, unit: &str) -> bool {
    cgroup.split('/').any(|c| c == unit)
}

/// Walks `/proc` once per cycle and keeps what must outlive a cycle: previous CPU ticks
/// and the lazily read details of live processes.
pub struct Scanner {
    proc_root: PathBuf,
    proc_dir: Option<OwnedFd>,
    users: Users,
    ticks_per_second: f64,
    page_size: i64,
    buf: Vec<u8>,
    dirbuf: Vec<MaybeUninit<u8>>,
    tracked: HashMap<i32, Tracked>,
    generation: u64,
    last_scan: Option<Instant>,
    detail_reads: u64,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("proc_root", &self.proc_root)
            .field("tracked", &self.tracked.len())
            .field("last_scan", &self.last_scan)
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// A scanner of `paths.proc_root`; user names come from `<mount_prefix>/etc/passwd`.
    /// Ticks per second and the page size are read once, here.
    pub fn new(paths: &HostPaths) -> Self {
        let tps = procfs::ticks_per_second();
        let page = procfs::page_size();
        Self::with_units(
            paths,
            if tps == 0 { 100 } else { tps },
            i64::try_from(page).unwrap_or(4096),
        )
    }

    /// A scanner with explicit units (tests).
    pub(crate) fn with_units(paths: &HostPaths, ticks_per_second: u64, page_size: i64) -> Self {
        let passwd = if paths.mount_prefix.as_os_str().is_empty() {
            PathBuf::from("/etc/passwd")
        } else {
            paths.mount_prefix.join("etc/passwd")
        };
        Scanner {
            proc_root: paths.proc_root.clone(),
            proc_dir: None,
            users: Users {
                path: passwd,
                names: HashMap::new(),
                loaded_at: None,
            },
            ticks_per_second: ticks_per_second.max(1) as f64,
            page_size,
            buf: vec![0; 1024],
            dirbuf: dir_buffer(),
            tracked: HashMap::new(),
            generation: 0,
            last_scan: None,
            detail_reads: 0,
        }
    }

    /// Scan now.
    pub fn scan(&mut self) -> Result<ProcessTable, InputError> {
        self.scan_at(Instant::now())
    }

    /// Scan, taking `now` as the current monotonic time (inject the clock in tests).
    /// Fails only when `proc_root` cannot be listed; unreadable or malformed entries are
    /// skipped and counted in [`ProcessTable::skipped`].
    pub fn scan_at(&mut self, now: Instant) -> Result<ProcessTable, InputError> {
        let result = self.scan_inner(now);
        if result.is_err() {
            // Forget everything: the next scan starts afresh rather than computing CPU
            // usage from a half-updated state.
            self.tracked.clear();
            self.last_scan = None;
            self.proc_dir = None;
        }
        result
    }

    fn scan_inner(&mut self, now: Instant) -> Result<ProcessTable, InputError> {
        if self.proc_dir.is_none() {
            let fd = open_dir(&self.proc_root)
                .with_context(|| format!("cannot open {}", self.proc_root.display()))?;
            self.proc_dir = Some(fd);
        }
        let Some(dir) = self.proc_dir.as_ref() else {
            anyhow::bail!("cannot open {}", self.proc_root.display());
        };
        rustix::fs::seek(dir, SeekFrom::Start(0))
            .map_err(io::Error::from)
            .with_context(|| format!("cannot rewind {}", self.proc_root.display()))?;

        let elapsed = self
            .last_scan
            .and_then(|prev| now.checked_duration_since(prev))
            .filter(|d| !d.is_zero());
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let units = Units {
            ticks_per_second: self.ticks_per_second,
            page_size: self.page_size,
            elapsed,
        };
        let mut processes = Vec::with_capacity(self.tracked.len() + 32);
        let mut skipped = 0;
        let mut entries = RawDir::new(dir, &mut self.dirbuf[..]);
        while let Some(entry) = entries.next() {
            let entry = entry
                .map_err(io::Error::from)
                .with_context(|| format!("cannot list {}", self.proc_root.display()))?;
            let Some(pid) = parse_pid(entry.file_name().to_bytes()) else {
                continue;
            };
            let mut path = [0u8; 64];
            let Some(path) = pid_path(&mut path, pid, "stat") else {
                continue;
            };
            let len = match read_file_at(dir.as_fd(), path, &mut self.buf, STAT_LIMIT, true) {
                Ok(len) => len,
                // Exited between the listing and the read.
                Err(Errno::NOENT | Errno::SRCH) => continue,
                Err(error) => {
                    skipped += 1;
                    tracing::debug!(message = "cannot read stat", pid, %error);
                    continue;
                }
            };
            let stat = self.buf.get(..len).and_then(parse_stat);
            let Some(stat) = stat.filter(|s| s.pid == pid) else {
                skipped += 1;
                tracing::debug!(message = "malformed stat line", pid);
                continue;
            };
            processes.push(observe(&mut self.tracked, &stat, generation, &units));
        }
        self.tracked.retain(|_, t| t.seen == generation);
        self.last_scan = Some(now);
        processes.sort_unstable_by_key(|p| p.pid);
        Ok(ProcessTable {
            processes,
            scanned_at: now,
            elapsed,
            skipped,
        })
    }

    /// The command line of `p` (read on first demand, cached); empty for kernel
    /// threads, which have none, without reading.
    pub fn cmdline(&mut self, p: &ProcessInfo) -> Cmdline {
        if p.kernel_thread {
            return Cmdline::default();
        }
        let now = self.now();
        if let Some(v) = self
            .tracked_of(p)
            .and_then(|t| t.cmdline.as_ref())
            .and_then(|c| c.fresh(now))
        {
            return v;
        }
        let value = match self.read_pid_file(p.pid, "cmdline", MAX_CMDLINE_BYTES) {
            Ok(len) => Cmdline::from_raw(self.buf.get(..len).unwrap_or_default()),
            Err(_) => Cmdline::default(),
        };
        if let Some(t) = self.tracked_mut_of(p) {
            t.cmdline = Some(Timed {
                value: value.clone(),
                at: now,
            });
        }
        value
    }

    /// The real uid of `p`, from `/proc/<pid>/status` (as `ps` and Telegraf report it;
    /// the owner of `/proc/<pid>` is root for processes that dropped privileges).
    pub fn uid(&mut self, p: &ProcessInfo) -> Option<u32> {
        let now = self.now();
        if let Some(v) = self
            .tracked_of(p)
            .and_then(|t| t.uid.as_ref())
            .and_then(|c| c.fresh(now))
        {
            return v;
        }
        let value = match self.read_pid_file(p.pid, "status", SMALL_FILE_LIMIT) {
            Ok(len) => parse_status_uid(self.buf.get(..len).unwrap_or_default()),
            Err(_) => None,
        };
        if let Some(t) = self.tracked_mut_of(p) {
            t.uid = Some(Timed { value, at: now });
        }
        value
    }

    /// The user name of `p`; the uid as a number when the host's passwd does not know
    /// it; `None` when the uid cannot be read.
    pub fn user(&mut self, p: &ProcessInfo) -> Option<Arc<str>> {
        let uid = self.uid(p)?;
        let now = self.now();
        Some(self.users.name(uid, now))
    }

    /// The systemd cgroup path of `p` (see [`parse_systemd_cgroup`]); `None` for kernel
    /// threads and when unreadable.
    pub fn cgroup(&mut self, p: &ProcessInfo) -> Option<Arc<str>> {
        if p.kernel_thread {
            return None;
        }
        let now = self.now();
        if let Some(v) = self
            .tracked_of(p)
            .and_then(|t| t.cgroup.as_ref())
            .and_then(|c| c.fresh(now))
        {
            return v;
        }
        let value = match self.read_pid_file(p.pid, "cgroup", SMALL_FILE_LIMIT) {
            Ok(len) => parse_systemd_cgroup(self.buf.get(..len).unwrap_or_default()).map(Arc::from),
            Err(_) => None,
        };
        if let Some(t) = self.tracked_mut_of(p) {
            t.cgroup = Some(Timed {
                value: value.clone(),
                at: now,
            });
        }
        value
    }

    /// How many detail files (cmdline, status, cgroup) were read so far: for tests and
    /// benchmarks of the caching.
    pub fn detail_reads(&self) -> u64 {
        self.detail_reads
    }

    /// The `/proc` root this scanner reads.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    fn now(&self) -> Instant {
        self.last_scan.unwrap_or_else(Instant::now)
    }

    fn tracked_of(&self, p: &ProcessInfo) -> Option<&Tracked> {
        self.tracked
            .get(&p.pid)
            .filter(|t| t.starttime == p.starttime)
    }

    fn tracked_mut_of(&mut self, p: &ProcessInfo) -> Option<&mut Tracked> {
        self.tracked
            .get_mut(&p.pid)
            .filter(|t| t.starttime == p.starttime)
    }

    fn read_pid_file(&mut self, pid: i32, name: &str, limit: usize) -> Result<usize, Errno> {
        self.detail_reads += 1;
        let mut path = [0u8; 64];
        let path = pid_path(&mut path, pid, name).ok_or(Errno::NAMETOOLONG)?;
        match self.proc_dir.as_ref() {
            Some(dir) => read_file_at(dir.as_fd(), path, &mut self.buf, limit, false),
            None => {
                let dir = rustix::fs::open(
                    &self.proc_root,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                read_file_at(dir.as_fd(), path, &mut self.buf, limit, false)
            }
        }
    }
}

/// What turns a `stat` line into a [`ProcessInfo`].
struct Units {
    ticks_per_second: f64,
    page_size: i64,
    elapsed: Option<Duration>,
}

/// Update the tracked state of one process and describe it.
fn observe(
    tracked: &mut HashMap<i32, Tracked>,
    stat: &StatLine<'_>,
    generation: u64,
    units: &Units,
) -> ProcessInfo {
    let ticks = stat.utime.saturating_add(stat.stime);
    let comm = String::from_utf8_lossy(stat.comm);
    let mut cpu_usage = None;
    let t = match tracked.entry(stat.pid) {
        Entry::Occupied(o) => {
            let t = o.into_mut();
            if t.starttime == stat.starttime {
                if let (Some(elapsed), Some(delta)) = (units.elapsed, ticks.checked_sub(t.ticks)) {
                    cpu_usage =
                        Some(delta as f64 / units.ticks_per_second / elapsed.as_secs_f64() * 100.0);
                }
                if *t.comm != *comm {
                    // A new program (exec) or a renamed one: its details are stale.
                    *t = Tracked::new(stat.starttime, Arc::from(comm.as_ref()));
                }
            } else {
                // The pid was reused by a new process.
                *t = Tracked::new(stat.starttime, Arc::from(comm.as_ref()));
            }
            t
        }
        Entry::Vacant(v) => v.insert(Tracked::new(stat.starttime, Arc::from(comm.as_ref()))),
    };
    t.ticks = ticks;
    t.seen = generation;
    ProcessInfo {
        pid: stat.pid,
        comm: t.comm.clone(),
        state: char::from(stat.state),
        ppid: stat.ppid,
        kernel_thread: stat.flags & PF_KTHREAD != 0,
        num_threads: stat.num_threads,
        rss_bytes: stat.rss_pages.saturating_mul(units.page_size),
        vsize_bytes: stat.vsize,
        starttime: stat.starttime,
        cpu_ticks: ticks,
        cpu_usage,
    }
}

/// Fake `/proc` trees for the process inputs' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use super::super::HostPaths;

    /// The static fixtures under `collector/tests/fixtures/proc`.
    pub fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
    }

    /// One fake process; `stat_line()` renders it.
    #[derive(Debug, Clone)]
    pub struct Fake {
        pub pid: i32,
        pub comm: String,
        pub state: char,
        pub ppid: i32,
        pub flags: u64,
        pub utime: u64,
        pub stime: u64,
        pub threads: i64,
        pub starttime: u64,
        pub rss_pages: i64,
    }

    impl Fake {
        pub fn new(pid: i32, comm: &str) -> Self {
            Fake {
                pid,
                comm: comm.to_owned(),
                state: 'S',
                ppid: 1,
                flags: 4_194_560,
                utime: 0,
                stime: 0,
                threads: 1,
                starttime: 1000 + pid as u64,
                rss_pages: 100,
            }
        }
        pub fn state(mut self, s: char) -> Self {
            self.state = s;
            self
        }
        pub fn ticks(mut self, utime: u64, stime: u64) -> Self {
            self.utime = utime;
            self.stime = stime;
            self
        }
        pub fn threads(mut self, n: i64) -> Self {
            self.threads = n;
            self
        }
        pub fn rss_pages(mut self, n: i64) -> Self {
            self.rss_pages = n;
            self
        }
        pub fn starttime(mut self, t: u64) -> Self {
            self.starttime = t;
            self
        }
        pub fn kernel_thread(mut self) -> Self {
            self.flags |= super::PF_KTHREAD;
            self.ppid = 2;
            self
        }
        pub fn stat_line(&self) -> String {
            format!(
                "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 {flags} 120 0 3 0 {utime} {stime} 0 0 20 0 {threads} 0 {start} {vsize} {rss} 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                pid = self.pid,
                comm = self.comm,
                state = self.state,
                ppid = self.ppid,
                flags = self.flags,
                utime = self.utime,
                stime = self.stime,
                threads = self.threads,
                start = self.starttime,
                vsize = self.rss_pages * 4096 * 3,
                rss = self.rss_pages,
            )
        }
    }

    /// A fake `/proc` in a temp dir, with `<root>/etc/passwd` for user names.
    pub struct FakeProc {
        pub dir: tempfile::TempDir,
    }

    impl FakeProc {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("proc")).unwrap();
            std::fs::create_dir_all(dir.path().join("host/etc")).unwrap();
            std::fs::write(
                dir.path().join("host/etc/passwd"),
                "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
            )
            .unwrap();
            FakeProc { dir }
        }
        pub fn proc_root(&self) -> PathBuf {
            self.dir.path().join("proc")
        }
        pub fn paths(&self) -> HostPaths {
            HostPaths {
                proc_root: self.proc_root(),
                sys_root: self.dir.path().join("sys"),
                mount_prefix: self.dir.path().join("host"),
            }
        }
        /// Write (or rewrite) a process's `stat`; `uid` goes to `status`.
        pub fn put(&self, p: &Fake) {
            let d = self.proc_root().join(p.pid.to_string());
            std::fs::create_dir_all(d.join("fd")).unwrap();
            std::fs::write(d.join("stat"), p.stat_line()).unwrap();
        }
        pub fn put_cmdline(&self, pid: i32, args: &[&str]) {
            let mut raw = args.join("\0");
            raw.push('\0');
            self.write(&format!("{pid}/cmdline"), raw.as_bytes());
        }
        pub fn put_uid(&self, pid: i32, uid: u32) {
            self.write(
                &format!("{pid}/status"),
                format!("Name:\tx\nState:\tS (sleeping)\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t0\t0\t0\t0\n").as_bytes(),
            );
        }
        pub fn put_cgroup(&self, pid: i32, path: &str) {
            self.write(&format!("{pid}/cgroup"), format!("0::{path}\n").as_bytes());
        }
        pub fn remove(&self, pid: i32) {
            std::fs::remove_dir_all(self.proc_root().join(pid.to_string())).unwrap();
        }
        /// Write a file relative to the fake `/proc`.
        pub fn write(&self, rel: &str, content: &[u8]) {
            let path = self.proc_root().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(path, content).unwrap();
        }
        /// Copy a static fixture file into the fake `/proc`.
        pub fn copy_fixture(&self, rel: &str) {
            let content = std::fs::read(fixture_dir().join(rel)).unwrap();
            self.write(rel, &content);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{fixture_dir, Fake, FakeProc};
    use super::*;
    use proptest::prelude::*;

    fn scanner(fake: &FakeProc) -> Scanner {
        Scanner::with_units(&fake.paths(), 100, 4096)
    }

    /// comm, state, ppid, utime + stime, rss pages, kernel-thread flag.
    type Summary<'a> = (&'a [u8], u8, i32, u64, i64, u64);

    #[test]
    fn parses_the_fixture_stat_lines() {
        let check = |rel: &str, expected: Option<Summary<'_>>| {
            let raw = std::fs::read(fixture_dir().join(rel)).unwrap();
            let got = parse_stat(&raw).map(|s| {
                (
                    s.comm,
                    s.state,
                    s.ppid,
                    s.utime + s.stime,
                    s.rss_pages,
                    s.flags & PF_KTHREAD,
                )
            });
            assert_eq!(got, expected, "{rel}");
        };
        check("1/stat", Some((b"systemd", b'S', 0, 2139, 3322, 0)));
        check("2/stat", Some((b"kthreadd", b'S', 0, 7, 0, PF_KTHREAD)));
        check("1234/stat", Some((b"(sd-pam) x)", b'S', 1233, 0, 1271, 0)));
        check("4321/stat", Some((b"defunct worker", b'Z', 1, 3, 0, 0)));
        check("999/stat", None);
    }

    #[test]
    fn parse_stat_refuses_garbage() {
        for bad in [
            &b""[..],
            b"1 (x",
            b"1 x) S",
            b") 1 (x",
            b"1 (x) S 1",
            b"1 (x) SS 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0",
            b"1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 -5 0 0",
            b"1 (x) S 1 1 1 0 -1 0 0 0 0 0 99999999999999999999999 1 0 0 20 0 1 0 5 0 0",
            b"abc (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0",
        ] {
            assert_eq!(parse_stat(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let ok = parse_stat(b"7 (a b) R -1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 3 0 5 6 -7\n").unwrap();
        assert_eq!(
            (
                ok.pid,
                ok.ppid,
                ok.utime,
                ok.stime,
                ok.num_threads,
                ok.starttime,
                ok.vsize,
                ok.rss_pages
            ),
            (7, -1, 1, 2, 3, 5, 6, -7)
        );
    }

    proptest! {
        #[test]
        fn parse_stat_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_stat(&raw);
        }

        #[test]
        fn parse_stat_reads_back_any_comm(
            comm in proptest::collection::vec(any::<u8>().prop_filter("no NUL or newline", |b| *b != 0 && *b != b'\n'), 0..16),
            utime in any::<u32>(), start in any::<u64>(), threads in 1i64..100_000, rss in 0i64..(1 << 40),
        ) {
            let mut line = b"42 (".to_vec();
            line.extend_from_slice(&comm);
            line.extend_from_slice(format!(") R 1 42 42 0 -1 0 0 0 0 0 {utime} 3 0 0 20 0 {threads} 0 {start} 9 {rss} 1 2 3\n").as_bytes());
            let s = parse_stat(&line).unwrap();
            prop_assert_eq!(s.comm, &comm[..]);
            prop_assert_eq!((s.utime, s.stime, s.num_threads, s.starttime, s.rss_pages), (u64::from(utime), 3, threads, start, rss));
        }
    }

    #[test]
    fn cmdline_parsing() {
        let c = Cmdline::from_raw(b"/usr/bin/python3\0-m\0http.server\0\0");
        assert_eq!(c.as_str(), "/usr/bin/python3 -m http.server");
        assert_eq!(c.argv0(), "/usr/bin/python3");
        let c = Cmdline::from_raw(b"nginx: worker process          \0\0\0");
        assert_eq!(c.as_str(), "nginx: worker process");
        assert_eq!(c.argv0(), "nginx: worker process");
        assert!(Cmdline::from_raw(b"").is_empty());
        assert_eq!(Cmdline::from_raw(b"a\xffb\0c").as_str(), "a\u{fffd}b c");
    }

    #[test]
    fn cgroup_parsing() {
        assert_eq!(
            parse_systemd_cgroup(
                b"12:pids:/x\n1:name=systemd:/system.slice/nginx.service\n0::/other\n"
            ),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(
            parse_systemd_cgroup(b"0::/system.slice/ssh.service\n"),
            Some("/system.slice/ssh.service")
        );
        assert_eq!(parse_systemd_cgroup(b"garbage\n"), None);
        assert!(cgroup_in_unit(
            "/system.slice/nginx.service/worker",
            "nginx.service"
        ));
        assert!(!cgroup_in_unit(
            "/system.slice/nginx2.service",
            "nginx.service"
        ));
    }

    #[test]
    fn passwd_and_status_parsing() {
        let names =
            parse_passwd("# c\nroot:x:0:0::/:/bin/sh\nbad line\nx:x:notanumber\nalt:x:0:0\n");
        assert_eq!(names.get(&0).map(|s| &**s), Some("root"));
        assert_eq!(names.len(), 1);
        assert_eq!(
            parse_status_uid(b"Name:\tsshd\nUid:\t1000\t0\t0\t0\n"),
            Some(1000)
        );
        assert_eq!(parse_status_uid(b"Name:\tsshd\n"), None);
    }

    #[test]
    fn scans_the_static_fixture_tree() {
        let fake = FakeProc::new();
        for rel in ["1/stat", "2/stat", "1234/stat", "4321/stat", "999/stat"] {
            fake.copy_fixture(rel);
        }
        fake.write("self", b"not a pid dir");
        fake.write("net/tcp", b"");
        let mut s = scanner(&fake);
        let t = s.scan_at(Instant::now()).unwrap();
        let pids: Vec<i32> = t.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, 2, 1234, 4321]);
        assert_eq!(t.skipped(), 1);
        let sd = t.get(1234).unwrap();
        assert_eq!(&*sd.comm, "(sd-pam) x)");
        assert_eq!(sd.rss_bytes, 1271 * 4096);
        assert!(t.get(2).unwrap().kernel_thread);
        assert_eq!(t.get(4321).unwrap().state, 'Z');
        assert!(t.iter().all(|p| p.cpu_usage.is_none()));
    }

    #[test]
    fn cpu_usage_between_scans() {
        let fake = FakeProc::new();
        fake.put(&Fake::new(10, "busy").ticks(100, 50));
        fake.put(&Fake::new(11, "idle").ticks(7, 3));
        fake.put(&Fake::new(12, "leaving"));
        let mut s = scanner(&fake);
        let t0 = Instant::now();
        let first = s.scan_at(t0).unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(first.elapsed(), None);

        // 2 s later: busy used 150 more ticks (1.5 s of CPU at 100 ticks/s), idle none;
        // 12 is gone, 13 appeared.
        fake.put(&Fake::new(10, "busy").ticks(200, 100));
        fake.remove(12);
        fake.put(&Fake::new(13, "new").ticks(500, 500));
        let second = s.scan_at(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(second.elapsed(), Some(Duration::from_secs(2)));
        let usage: Vec<(i32, Option<f64>)> = second.iter().map(|p| (p.pid, p.cpu_usage)).collect();
        assert_eq!(usage, [(10, Some(75.0)), (11, Some(0.0)), (13, None)]);
        assert!(!s.tracked.contains_key(&12), "gone processes are forgotten");

        // pid 11 reused by a new process with a larger tick count: no spike.
        fake.put(&Fake::new(11, "reused").starttime(99_999).ticks(900, 0));
        let third = s.scan_at(t0 + Duration::from_secs(4)).unwrap();
        let p11 = third.get(11).unwrap();
        assert_eq!((&*p11.comm, p11.cpu_usage), ("reused", None));
        assert_eq!(third.get(13).unwrap().cpu_usage, Some(0.0));
        // Multi-threaded: above 100 % of one core.
        fake.put(&Fake::new(10, "busy").ticks(600, 100));
        let fourth = s.scan_at(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(fourth.get(10).unwrap().cpu_usage, Some(400.0));
    }

    #[test]
    fn same_instant_gives_no_usage() {
        let fake = FakeProc::new();
        fake.put(&Fake::new(10, "busy").ticks(100, 50));
        let mut s = scanner(&fake);
        let t0 = Instant::now();
        s.scan_at(t0).unwrap();
        let again = s.scan_at(t0).unwrap();
        assert_eq!(again.get(10).unwrap().cpu_usage, None);
    }

    #[test]
    fn details_are_cached_per_process_and_dropped_on_exec() {
        let fake = FakeProc::new();
        fake.put(&Fake::new(20, "bash"));
        fake.put_cmdline(20, &["/bin/bash", "-c", "x"]);
        fake.put_uid(20, 33);
        fake.put_cgroup(20, "/system.slice/web.service");
        let mut s = scanner(&fake);
        let t0 = Instant::now();
        let t = s.scan_at(t0).unwrap();
        let p = t.get(20).unwrap();
        assert_eq!(s.cmdline(p).as_str(), "/bin/bash -c x");
        assert_eq!(s.user(p).as_deref(), Some("www-data"));
        assert_eq!(s.cgroup(p).as_deref(), Some("/system.slice/web.service"));
        assert_eq!(s.detail_reads(), 3);
        // Cached: a changed file is not read again within the TTL.
        fake.put_cmdline(20, &["/bin/bash", "-c", "changed"]);
        let t = s.scan_at(t0 + Duration::from_secs(10)).unwrap();
        let p = t.get(20).unwrap();
        assert_eq!(s.cmdline(p).as_str(), "/bin/bash -c x");
        assert_eq!(s.user(p).as_deref(), Some("www-data"));
        assert_eq!(s.detail_reads(), 3);
        // After the TTL it is read again.
        let t = s.scan_at(t0 + DETAIL_TTL + Duration::from_secs(1)).unwrap();
        let p = t.get(20).unwrap();
        assert_eq!(s.cmdline(p).as_str(), "/bin/bash -c changed");
        assert_eq!(s.detail_reads(), 4);
        // exec: comm changes, so the cache is dropped at once.
        fake.put(&Fake::new(20, "python3"));
        fake.put_cmdline(20, &["python3", "app.py"]);
        let t = s.scan_at(t0 + DETAIL_TTL + Duration::from_secs(2)).unwrap();
        let p = t.get(20).unwrap();
        assert_eq!(s.cmdline(p).as_str(), "python3 app.py");
        // Unknown uid: the number.
        fake.put_uid(20, 4242);
        let t = s.scan_at(t0 + 3 * DETAIL_TTL).unwrap();
        assert_eq!(s.user(t.get(20).unwrap()).as_deref(), Some("4242"));
    }

    #[test]
    fn missing_details_do_not_fail() {
        let fake = FakeProc::new();
        fake.put(&Fake::new(30, "kworker/0:1").kernel_thread());
        let mut s = scanner(&fake);
        let t = s.scan_at(Instant::now()).unwrap();
        let p = t.get(30).unwrap();
        assert!(s.cmdline(p).is_empty());
        assert_eq!(s.uid(p), None);
        assert_eq!(s.user(p), None);
        assert_eq!(s.cgroup(p), None);
    }

    #[test]
    fn missing_proc_root_is_an_error() {
        let fake = FakeProc::new();
        let mut paths = fake.paths();
        paths.proc_root = fake.dir.path().join("nope");
        let err = Scanner::new(&paths).scan().unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }

    /// Cost of one cycle of the default process inputs on this machine's `/proc`:
    /// `cargo test --release -p hostscope-collector scan_cost -- --ignored --nocapture`.

    #[test]
    fn finds_this_process_in_the_real_proc() {
        let mut s = Scanner::new(&HostPaths::default());
        let t = s.scan().unwrap();
        let me = t.get(std::process::id() as i32).expect("own pid in /proc");
        assert!(
            me.rss_bytes > 1 << 20 && me.rss_bytes < 16 << 30,
            "{}",
            me.rss_bytes
        );
        assert!(me.num_threads >= 1);
        assert!(!me.kernel_thread);
        assert!(!s.cmdline(me).is_empty());
        assert_eq!(s.uid(me), Some(rustix::process::getuid().as_raw()));
        // A second scan gives this process a CPU usage.
        let t = s.scan().unwrap();
        let me = t.get(std::process::id() as i32).unwrap();
        assert!(me.cpu_usage.is_some_and(|u| u >= 0.0));
        assert!(t.len() > 1);
    }
}
