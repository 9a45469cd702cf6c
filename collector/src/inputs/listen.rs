//! `[collector.inputs.listen]`: listening sockets and the processes that own them, and
//! whether the expected ports are up.
//!
//! Sockets come from the tables `tcp`, `tcp6` (state `0A`, LISTEN), `udp` and `udp6`
//! (state `07`: bound, not connected), read through netlink `sock_diag` (see
//! [`sock_diag`]) asking for those states only, or from `<proc>/net/{tcp,tcp6,udp,udp6}`.
//! Reading `/proc/net/tcp` makes the kernel walk the whole established hash table (sized
//! by RAM) on every read, ~1.3 ms of CPU per file whatever the socket count; the netlink
//! dump walks only the listening sockets. Both give the same sockets, but netlink answers
//! for the network namespace of this process, while `<proc>/net` is the namespace of the
//! process that `<proc>/self` resolves to. So netlink is used only when `<proc>` is a
//! procfs whose `self/ns/net` is this process's (`/proc/self/ns/net`, same device and
//! inode): the real `/proc`, or a host's `/proc` mounted elsewhere that still resolves
//! `self` to this process (and then shows this process's namespace either way). Anything
//! else (a test directory, a copy) is read from `<proc>/net`. A table whose netlink read
//! fails (no `sock_diag` in the kernel or sandbox, `udp_diag` not loadable, a refused or
//! malformed reply) is read from `<proc>/net` from then on, logged once.
//!
//! One point per distinct (proto, address, port) in measurement `listen`:
//! - tags `proto` (`tcp`, `tcp6`, `udp`, `udp6`), `address` (`0.0.0.0`, `127.0.0.1`,
//!   `::`, `::1`, `::ffff:127.0.0.1`, ...), `port`;
//! - fields `pid` (integer, 0 when unknown) and `process` (the owner's `comm`, `""`
//!   when unknown). Several sockets on the same address and port (`SO_REUSEPORT`) are
//!   one point; the same port on several addresses is several points.
//!
//! One point per `expected` entry in measurement `listen_check`: tags `proto` (as
//! configured: `tcp` matches `tcp` and `tcp6` sockets, `tcp4`/`tcp6` only one family;
//! likewise for `udp`) and `port`; field `up` (integer, 1 when some socket of that
//! protocol listens on that port on any address, else 0).
//!
//! Owners are found by reading the `/proc/<pid>/fd/*` links (`socket:[inode]`) of the
//! processes of the shared scan, oldest first (so the process that opened a socket
//! inherited by workers is reported) and stopping once every socket is found. That walk
//! is the expensive part, so its result is cached and redone only every
//! `rescan_interval`, or at the next cycle when a listening socket is not in the cache
//! or its cached owner has exited. A socket whose owner cannot be found (other users'
//! processes when not root) is looked for in two walks, then only at the interval.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hostscope_core::config::{ConfigErrors, HumanDuration};
use hostscope_core::Point;
use rustix::fs::{Mode, OFlags, RawDir};
use serde::Deserialize;

use super::procscan::{self, parse_u64, ProcessTable, Scanner};
use super::{Accumulator, HostPaths, InputError};

pub mod sock_diag;

use sock_diag::SockDiag;

/// Which sockets an expected entry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedProto {
    /// TCP over IPv4 or IPv6 (a dual-stack `::` socket accepts both).
    #[default]
    Tcp,
    /// TCP over IPv4 only (`/proc/net/tcp`).
    Tcp4,
    /// TCP over IPv6 only (`/proc/net/tcp6`).
    Tcp6,
    /// UDP over IPv4 or IPv6.
    Udp,
    /// UDP over IPv4 only.
    Udp4,
    /// UDP over IPv6 only.
    Udp6,
}

impl ExpectedProto {
    /// The `proto` tag of a `listen_check` point.
    pub fn tag(self) -> &'static str {
        match self {
            ExpectedProto::Tcp => "tcp",
            ExpectedProto::Tcp4 => "tcp4",
            ExpectedProto::Tcp6 => "tcp6",
            ExpectedProto::Udp => "udp",
            ExpectedProto::Udp4 => "udp4",
            ExpectedProto::Udp6 => "udp6",
        }
    }

    fn accepts(self, proto: Proto) -> bool {
        matches!(
            (self, proto),
            (ExpectedProto::Tcp, Proto::Tcp | Proto::Tcp6)
                | (ExpectedProto::Tcp4, Proto::Tcp)
                | (ExpectedProto::Tcp6, Proto::Tcp6)
                | (ExpectedProto::Udp, Proto::Udp | Proto::Udp6)
                | (ExpectedProto::Udp4, Proto::Udp)
                | (ExpectedProto::Udp6, Proto::Udp6)
        )
    }
}

/// One `expected = [{ port = 22, proto = "tcp" }]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedPort {
    /// The port that must be listened on.
    pub port: u16,
    /// `tcp` (default), `udp`, or one family only: `tcp4`, `tcp6`, `udp4`, `udp6`.
    #[serde(default)]
    pub proto: ExpectedProto,
}

/// `[collector.inputs.listen]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report listening sockets. Default `true`.
    pub enabled: bool,
    /// Ports that must be listened on; each gets a `listen_check` point with `up` 0/1.
    /// Default none.
    pub expected: Vec<ExpectedPort>,
    /// How often the socket owners are looked up again by reading every process's
    /// `/proc/<pid>/fd`, besides when a new listening socket appears. Default `"60s"`;
    /// `"0s"` walks every cycle.
    pub rescan_interval: HumanDuration,
}

fn default_rescan_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            expected: Vec::new(),
            rescan_interval: default_rescan_interval(),
        }
    }
}

impl Config {
    /// Check the expected ports; `key` is this section's dotted path.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        for (i, e) in self.expected.iter().enumerate() {
            if e.port == 0 {
                errors.push(format!("{key}.expected[{i}].port"), "must be 1 to 65535");
            }
            if let Some(j) = self
                .expected
                .get(..i)
                .and_then(|before| before.iter().position(|b| b == e))
            {
                errors.push(
                    format!("{key}.expected[{i}]"),
                    format!(
                        "port {} ({}) is already expected[{j}]",
                        e.port,
                        e.proto.tag()
                    ),
                );
            }
        }
    }
}

/// The socket tables read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// `/proc/net/tcp`
    Tcp,
    /// `/proc/net/tcp6`
    Tcp6,
    /// `/proc/net/udp`
    Udp,
    /// `/proc/net/udp6`
    Udp6,
}

impl Proto {
    const ALL: [Proto; 4] = [Proto::Tcp, Proto::Tcp6, Proto::Udp, Proto::Udp6];

    /// The `proto` tag, also the file name under `/proc/net`.
    pub fn tag(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Tcp6 => "tcp6",
            Proto::Udp => "udp",
            Proto::Udp6 => "udp6",
        }
    }

    /// The state of a listening socket: TCP_LISTEN, or TCP_CLOSE for unconnected UDP.
    fn listening_state(self) -> u32 {
        match self {
            Proto::Tcp | Proto::Tcp6 => 0x0A,
            Proto::Udp | Proto::Udp6 => 0x07,
        }
    }
}

/// A listening socket from a `/proc/net` table or a `sock_diag` dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    /// The table it came from.
    pub proto: Proto,
    /// Local address.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// Socket inode (0 when the kernel shows none).
    pub inode: u64,
}

/// Append the listening sockets of one `/proc/net/{tcp,tcp6,udp,udp6}` table to `out`.
/// The header and malformed lines are skipped.
pub fn parse_sockets(proto: Proto, text: &[u8], out: &mut Vec<Socket>) {
    for line in text.split(|&b| b == b'\n').skip(1) {
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (Some(_sl), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if parse_hex(state) != Some(proto.listening_state()) {
            continue;
        }
        let Some(inode) = fields.nth(5).and_then(parse_u64) else {
            continue;
        };
        let Some((address, port)) = parse_endpoint(local) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        out.push(Socket {
            proto,
            address,
            port,
            inode,
        });
    }
}

/// `ADDR:PORT` as the kernel prints it: the address as 1 (IPv4) or 4 (IPv6) 32-bit words
/// in host byte order, each `%08X`; the port in plain hex.
pub fn parse_endpoint(field: &[u8]) -> Option<(IpAddr, u16)> {
    let colon = field.iter().position(|&b| b == b':')?;
    let (addr, port) = (field.get(..colon)?, field.get(colon + 1..)?);
    if port.len() > 4 {
        return None;
    }
    let port = u16::try_from(parse_hex(port)?).ok()?;
    let address = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(parse_hex(addr)?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (word, out) in addr.chunks_exact(8).zip(bytes.chunks_exact_mut(4)) {
                out.copy_from_slice(&parse_hex(word)?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((address, port))
}

/// 1 to 8 hex digits, nothing else.
fn parse_hex(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        Some((acc << 4) | d)
    })
}

/// The inode of a `socket:[12345]` fd link.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    parse_u64(link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
}

/// Who holds a socket: the process, identified across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    pid: i32,
    starttime: u64,
}

/// How many fd walks an unfindable socket gets before it waits for the interval: one
/// when it appears, one more at the next cycle in case its process started after the
/// scan of the cycle it appeared in.
const WALKS_PER_UNKNOWN: u8 = 2;

/// The `listen` input.
pub struct Input {
    enabled: bool,
    expected: Vec<ExpectedPort>,
    rescan_interval: Duration,
    proc_root: PathBuf,
    /// The tables read through netlink; `None` until the first cycle decides.
    netlink_tables: Option<Vec<Proto>>,
    /// The netlink socket, kept open between cycles.
    diag: Option<SockDiag>,
    buf: Vec<u8>,
    dirbuf: Vec<MaybeUninit<u8>>,
    owners: HashMap<u64, Owner>,
    /// Sockets not found by the last walks, with how many walks missed them.
    misses: HashMap<u64, u8>,
    last_rescan: Option<Instant>,
    rescans: u64,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("listen::Input")
            .field("enabled", &self.enabled)
            .field("expected", &self.expected)
            .field("rescan_interval", &self.rescan_interval)
            .field("netlink_tables", &self.netlink_tables)
            .field("owners", &self.owners.len())
            .field("rescans", &self.rescans)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// Build the input; sockets are read through netlink, or from `paths.proc("net/…")`
    /// when `paths.proc_root` does not show this process's network namespace (see the
    /// module documentation). Nothing is opened before the first cycle.
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        Input {
            enabled: config.enabled,
            expected: config.expected.clone(),
            rescan_interval: config.rescan_interval.get(),
            proc_root: paths.proc_root.clone(),
            netlink_tables: None,
            diag: None,
            buf: Vec::new(),
            dirbuf: Vec::new(),
            owners: HashMap::new(),
            misses: HashMap::new(),
            last_rescan: None,
            rescans: 0,
        }
    }

    /// How many times the `/proc/<pid>/fd` directories were walked.
    pub fn rescans(&self) -> u64 {
        self.rescans
    }

    /// Add this cycle's `listen` and `listen_check` points (nothing when disabled).
    /// The clock is the table's scan time.
    pub fn gather(
        &mut self,
        _scanner: &mut Scanner,
        table: &ProcessTable,
        acc: &mut Accumulator,
    ) -> Result<(), InputError> {
        if !self.enabled {
            return Ok(());
        }
        let sockets = self.read_sockets()?;
        self.resolve_owners(&sockets, table);

        // One point per (proto, address, port); prefer a socket whose owner is known.
        let mut points: BTreeMap<(Proto, IpAddr, u16), Option<Owner>> = BTreeMap::new();
        for s in &sockets {
            let owner = self.owners.get(&s.inode).copied();
            let slot = points.entry((s.proto, s.address, s.port)).or_insert(owner);
            if slot.is_none() {
                *slot = owner;
            }
        }
        for ((proto, address, port), owner) in &points {
            let process =
                owner.and_then(|o| table.get(o.pid).filter(|p| p.starttime == o.starttime));
            acc.add(
                Point::builder("listen")
                    .tag("proto", proto.tag())
                    .tag("address", address.to_string())
                    .tag("port", port.to_string())
                    .field("pid", i64::from(process.map_or(0, |p| p.pid)))
                    .field("process", process.map_or("", |p| &*p.comm)),
            );
        }
        for e in &self.expected {
            let up = points
                .keys()
                .any(|(proto, _, port)| *port == e.port && e.proto.accepts(*proto));
            acc.add(
                Point::builder("listen_check")
                    .tag("proto", e.proto.tag())
                    .tag("port", e.port.to_string())
                    .field("up", i64::from(up)),
            );
        }
        Ok(())
    }

    /// Every listening socket of the four tables. A missing `/proc/net` table (no IPv6)
    /// is skipped; an unreadable one, or none at all, is an error.
    fn read_sockets(&mut self) -> Result<Vec<Socket>, InputError> {
        let mut sockets = Vec::new();
        let mut found = false;
        for proto in Proto::ALL {
            if self.read_netlink(proto, &mut sockets) {
                found = true;
                continue;
            }
            let path = self.proc_root.join("net").join(proto.tag());
            match read_into(&path, &mut self.buf) {
                Ok(()) => {
                    found = true;
                    parse_sockets(proto, &self.buf, &mut sockets);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow!("listen: cannot read {}: {e}", path.display())),
            }
        }
        if !found {
            return Err(anyhow!(
                "listen: none of {}/net/{{tcp,tcp6,udp,udp6}} exists",
                self.proc_root.display()
            ));
        }
        Ok(sockets)
    }

    /// Append one table's sockets through netlink; `false` when the table is to be read
    /// from `/proc/net` instead. The first call decides whether netlink may be used at
    /// all; a failure moves the failing table to `/proc/net` for good. Each is logged once.
    fn read_netlink(&mut self, proto: Proto, out: &mut Vec<Socket>) -> bool {
        let tables = self.netlink_tables.get_or_insert_with(|| {
            if netlink_matches_proc(&self.proc_root) {
                Proto::ALL.to_vec()
            } else {
                tracing::info!(
                    message = "listen: proc_root does not show this process's network namespace; reading its net/{tcp,tcp6,udp,udp6} files instead of netlink sock_diag",
                    proc_root = %self.proc_root.display()
                );
                Vec::new()
            }
        });
        if !tables.contains(&proto) {
            return false;
        }
        if self.diag.is_none() {
            match SockDiag::open() {
                Ok(diag) => self.diag = Some(diag),
                Err(error) => {
                    tracing::warn!(
                        message = "listen: netlink sock_diag unavailable; reading /proc/net/{tcp,tcp6,udp,udp6} instead",
                        %error
                    );
                    tables.clear();
                    return false;
                }
            }
        }
        let Some(diag) = self.diag.as_mut() else {
            return false;
        };
        match diag.dump(proto, out) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    message = "listen: sock_diag dump failed; reading this table from /proc/net from now on",
                    table = proto.tag(),
                    %error
                );
                tables.retain(|p| *p != proto);
                // Replies to the failed request may still be queued on the socket.
                self.diag = None;
                false
            }
        }
    }

    /// Bring `owners` up to date for these sockets, walking fds only when needed.
    fn resolve_owners(&mut self, sockets: &[Socket], table: &ProcessTable) {
        let now = table.scanned_at();
        let wanted: HashSet<u64> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|i| *i != 0)
            .collect();
        // Forget closed sockets and owners that exited (the socket may live on in a
        // child: it is then unknown and found again).
        self.owners.retain(|inode, o| {
            wanted.contains(inode) && table.get(o.pid).is_some_and(|p| p.starttime == o.starttime)
        });
        self.misses.retain(|inode, _| wanted.contains(inode));
        let due = self
            .last_rescan
            .is_none_or(|at| now.saturating_duration_since(at) >= self.rescan_interval);
        let unknown = wanted.iter().any(|i| {
            !self.owners.contains_key(i)
                && self.misses.get(i).is_none_or(|m| *m < WALKS_PER_UNKNOWN)
        });
        if due || unknown {
            self.rescan(table, &wanted, now);
        }
    }

    /// Walk `/proc/<pid>/fd` of the scanned processes, oldest first, until every wanted
    /// socket is found.
    fn rescan(&mut self, table: &ProcessTable, wanted: &HashSet<u64>, now: Instant) {
        self.rescans += 1;
        self.last_rescan = Some(now);
        let mut found: HashMap<u64, Owner> = HashMap::new();
        if !wanted.is_empty() {
            match procscan::open_dir(&self.proc_root) {
                Ok(dir) => {
                    if self.dirbuf.is_empty() {
                        self.dirbuf = procscan::dir_buffer();
                    }
                    let mut order: Vec<_> = table
                        .iter()
                        .filter(|p| !p.kernel_thread && !matches!(p.state, 'Z' | 'X' | 'x'))
                        .collect();
                    order.sort_unstable_by_key(|p| (p.starttime, p.pid));
                    for p in order {
                        if found.len() == wanted.len() {
                            break;
                        }
                        let owner = Owner {
                            pid: p.pid,
                            starttime: p.starttime,
                        };
                        walk_fds(&dir, owner, wanted, &mut self.dirbuf, &mut found);
                    }
                }
                Err(error) => {
                    tracing::debug!(message = "listen: cannot open proc", path = %self.proc_root.display(), %error);
                }
            }
        }
        for inode in wanted {
            if found.contains_key(inode) {
                self.misses.remove(inode);
            } else {
                let m = self.misses.entry(*inode).or_insert(0);
                *m = m.saturating_add(1);
            }
        }
        self.owners = found;
    }
}

/// Record the wanted sockets among one process's fds (first holder wins).
fn walk_fds(
    proc_dir: &rustix::fd::OwnedFd,
    owner: Owner,
    wanted: &HashSet<u64>,
    dirbuf: &mut [MaybeUninit<u8>],
    found: &mut HashMap<u64, Owner>,
) {
    let mut path = [0u8; 64];
    let Some(path) = procscan::pid_path(&mut path, owner.pid, "fd") else {
        return;
    };
    // Other users' processes are unreadable unless we are root: skipped.
    let Ok(fd_dir) = rustix::fs::openat(
        proc_dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let mut entries = RawDir::new(&fd_dir, dirbuf);
    while let Some(Ok(entry)) = entries.next() {
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        let mut link = [0u8; 64];
        let Ok(len) = rustix::fs::readlinkat_raw(&fd_dir, name, &mut link[..]) else {
            continue;
        };
        if let Some(inode) = link.get(..len).and_then(parse_socket_link) {
            if wanted.contains(&inode) {
                found.entry(inode).or_insert(owner);
            }
        }
    }
}

/// Whether netlink sees the sockets `<proc_root>/net` shows: `proc_root` is a procfs
/// and its `self/ns/net` is this process's network namespace.
fn netlink_matches_proc(proc_root: &Path) -> bool {
    let is_procfs =
        rustix::fs::statfs(proc_root).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
    let netns = |root: &Path| {
        rustix::fs::stat(root.join("self/ns/net"))
            .ok()
            .map(|s| (s.st_dev, s.st_ino))
    };
    is_procfs && netns(proc_root).is_some_and(|ns| Some(ns) == netns(Path::new("/proc")))
}

/// Read a whole file into a reused buffer.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use hostscope_core::point::FieldValue;

    use super::super::procscan::testing::{fixture_dir, Fake, FakeProc};
    use super::super::test_accumulator;
    use super::*;

    fn endpoint(s: &str) -> Option<(String, u16)> {
        parse_endpoint(s.as_bytes()).map(|(a, p)| (a.to_string(), p))
    }

    #[test]
    fn decodes_addresses() {
        let check = |hex: &str, want: Option<(&str, u16)>| {
            assert_eq!(endpoint(hex), want.map(|(a, p)| (a.to_owned(), p)), "{hex}");
        };
        check("00000000:0016", Some(("0.0.0.0", 22)));
        check("0100007F:0277", Some(("127.0.0.1", 631)));
        check("3500007F:0035", Some(("127.0.0.53", 53)));
        check("00000000000000000000000000000000:0016", Some(("::", 22)));
        check("00000000000000000000000001000000:0277", Some(("::1", 631)));
        check(
            "0000000000000000FFFF00000100007F:1F90",
            Some(("::ffff:127.0.0.1", 8080)),
        );
        check(
            "B80D0120000000000000000001000000:01BB",
            Some(("2001:db8::1", 443)),
        );
        for bad in [
            "",
            ":",
            "0100007F",
            "0100007G:0016",
            "0100007F:10000",
            "100007F:0016",
            "+100007F:0016",
            "0100007F:+16",
            "é0000000:0016",
        ] {
            check(bad, None);
        }
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"socket:[x]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
    }

    #[test]
    fn parses_the_fixture_tables() {
        let mut sockets = Vec::new();
        for proto in Proto::ALL {
            let text = std::fs::read(fixture_dir().join("net").join(proto.tag())).unwrap();
            parse_sockets(proto, &text, &mut sockets);
        }
        let got: Vec<String> = sockets
            .iter()
            .map(|s| format!("{} {} {} {}", s.proto.tag(), s.address, s.port, s.inode))
            .collect();
        assert_eq!(
            got,
            [
                "tcp 0.0.0.0 22 1001",
                "tcp 127.0.0.1 631 1002",
                "tcp 0.0.0.0 8080 1004",
                "tcp 0.0.0.0 8080 1005",
                "tcp6 :: 22 2001",
                "tcp6 ::1 631 2002",
                "tcp6 ::ffff:127.0.0.1 8081 2003",
                "udp 0.0.0.0 68 3001",
                "udp 127.0.0.53 53 3002",
                "udp6 :: 514 4001",
            ]
        );
        let mut none = Vec::new();
        parse_sockets(Proto::Tcp, b"\xff\xfe garbage\n\n  0: \n", &mut none);
        assert!(none.is_empty());
    }

    /// The fixture tables, and processes holding some of their sockets:
    /// sshd (10) holds 0.0.0.0:22 and :::22; cupsd (20) 127.0.0.1:631 and ::1:631; web
    /// (30) 0.0.0.0:8080 #1004, inherited by its worker (31), which also has #1005.
    struct World {
        fake: FakeProc,
        scanner: Scanner,
    }

    impl World {
        fn new() -> Self {
            let fake = FakeProc::new();
            for t in ["tcp", "tcp6", "udp", "udp6"] {
                fake.copy_fixture(&format!("net/{t}"));
            }
            fake.put(&Fake::new(10, "sshd").starttime(100));
            fake.put(&Fake::new(20, "cupsd").starttime(200));
            fake.put(&Fake::new(30, "web").starttime(300));
            fake.put(&Fake::new(31, "web-worker").starttime(310));
            fake.put(&Fake::new(40, "zombie").state('Z').starttime(400));
            let w = World {
                scanner: Scanner::with_units(&fake.paths(), 100, 4096),
                fake,
            };
            w.link(10, 3, "socket:[1001]");
            w.link(10, 4, "socket:[2001]");
            w.link(10, 0, "/dev/null");
            w.link(20, 5, "socket:[1002]");
            w.link(20, 6, "socket:[2002]");
            w.link(20, 7, "pipe:[1003]");
            w.link(31, 8, "socket:[1004]");
            w.link(31, 9, "socket:[1005]");
            w.link(30, 8, "socket:[1004]");
            w.link(30, 9, "socket:[9999]");
            w
        }
        fn link(&self, pid: i32, fd: u32, target: &str) {
            let dir = self.fake.proc_root().join(format!("{pid}/fd"));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(fd.to_string());
            let _ = std::fs::remove_file(&path);
            symlink(target, path).unwrap();
        }
        /// Scan at `t` seconds and gather; the points as `measurement tags fields`.
        fn cycle(&mut self, input: &mut Input, t0: Instant, secs: u64) -> Vec<String> {
            let table = self
                .scanner
                .scan_at(t0 + Duration::from_secs(secs))
                .unwrap();
            let mut acc = test_accumulator();
            input.gather(&mut self.scanner, &table, &mut acc).unwrap();
            acc.points().iter().map(render).collect()
        }
    }

    fn render(p: &Point) -> String {
        let tags: Vec<String> = p
            .tags()
            .iter()
            .filter(|(k, _)| *k != "host")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let fields: Vec<String> = p
            .fields()
            .iter()
            .map(|(k, v)| match v {
                FieldValue::Integer(i) => format!("{k}={i}"),
                FieldValue::String(s) => format!("{k}={s:?}"),
                other => format!("{k}={other:?}"),
            })
            .collect();
        format!(
            "{} {} {}",
            p.measurement(),
            tags.join(","),
            fields.join(",")
        )
    }

    fn config(json: &str) -> Config {
        let c: Config = serde_json::from_str(json).unwrap();
        let mut errors = ConfigErrors::new("test");
        c.validate("collector.inputs.listen", &mut errors);
        assert!(errors.is_empty(), "{errors}");
        c
    }

    #[test]
    fn reports_sockets_owners_and_expected_ports() {
        let mut w = World::new();
        let mut input = Input::new(
            &config(
                r#"{"expected": [{"port": 22}, {"port": 22, "proto": "tcp6"}, {"port": 53, "proto": "udp"},
                                 {"port": 9999}, {"port": 514, "proto": "udp4"}, {"port": 514, "proto": "udp"}]}"#,
            ),
            &w.fake.paths(),
        );
        let points = w.cycle(&mut input, Instant::now(), 0);
        assert_eq!(
            points,
            [
                r#"listen address=0.0.0.0,port=22,proto=tcp pid=10,process="sshd""#,
                r#"listen address=0.0.0.0,port=8080,proto=tcp pid=30,process="web""#,
                r#"listen address=127.0.0.1,port=631,proto=tcp pid=20,process="cupsd""#,
                r#"listen address=::,port=22,proto=tcp6 pid=10,process="sshd""#,
                r#"listen address=::1,port=631,proto=tcp6 pid=20,process="cupsd""#,
                r#"listen address=::ffff:127.0.0.1,port=8081,proto=tcp6 pid=0,process="""#,
                r#"listen address=0.0.0.0,port=68,proto=udp pid=0,process="""#,
                r#"listen address=127.0.0.53,port=53,proto=udp pid=0,process="""#,
                r#"listen address=::,port=514,proto=udp6 pid=0,process="""#,
                "listen_check port=22,proto=tcp up=1",
                "listen_check port=22,proto=tcp6 up=1",
                "listen_check port=53,proto=udp up=1",
                "listen_check port=9999,proto=tcp up=0",
                "listen_check port=514,proto=udp4 up=0",
                "listen_check port=514,proto=udp up=1",
            ]
        );
        assert_eq!(input.rescans(), 1);
    }

    #[test]
    fn rescans_only_when_needed() {
        let mut w = World::new();
        let mut input = Input::new(&Config::default(), &w.fake.paths());
        let t0 = Instant::now();
        w.cycle(&mut input, t0, 0);
        assert_eq!(input.rescans(), 1, "first cycle");
        // Unowned sockets (no fd link anywhere) get one more walk, then wait.
        w.cycle(&mut input, t0, 10);
        assert_eq!(input.rescans(), 2);
        w.cycle(&mut input, t0, 20);
        w.cycle(&mut input, t0, 30);
        assert_eq!(input.rescans(), 2, "nothing new: cache used");

        // A new listening socket: found at the next cycle.
        let mut tcp = std::fs::read_to_string(w.fake.proc_root().join("net/tcp")).unwrap();
        tcp.push_str("   7: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1010 1 0000000000000000 100 0 0 10 0\n");
        w.fake.write("net/tcp", tcp.as_bytes());
        w.link(20, 11, "socket:[1010]");
        let points = w.cycle(&mut input, t0, 40);
        assert_eq!(input.rescans(), 3);
        assert!(
            points.contains(
                &r#"listen address=0.0.0.0,port=80,proto=tcp pid=20,process="cupsd""#.to_owned()
            ),
            "{points:#?}"
        );
        w.cycle(&mut input, t0, 50);
        assert_eq!(input.rescans(), 3);

        // The web master exits; its worker keeps the socket: the owner is looked up again.
        w.fake.remove(30);
        let points = w.cycle(&mut input, t0, 60);
        assert_eq!(input.rescans(), 4);
        assert!(
            points.contains(
                &r#"listen address=0.0.0.0,port=8080,proto=tcp pid=31,process="web-worker""#
                    .to_owned()
            ),
            "{points:#?}"
        );

        // pid reuse: sshd's pid now belongs to another process; its sockets are unknown.
        w.fake.put(&Fake::new(10, "impostor").starttime(9_000));
        std::fs::remove_dir_all(w.fake.proc_root().join("10/fd")).unwrap();
        let points = w.cycle(&mut input, t0, 70);
        assert_eq!(input.rescans(), 5);
        assert!(
            points.contains(
                &r#"listen address=0.0.0.0,port=22,proto=tcp pid=0,process="""#.to_owned()
            ),
            "{points:#?}"
        );
        w.cycle(&mut input, t0, 80);
        assert_eq!(input.rescans(), 6, "second walk for the unfound sockets");
        w.cycle(&mut input, t0, 90);
        assert_eq!(input.rescans(), 6);
        // The interval (60 s after the walk at 80 s).
        w.cycle(&mut input, t0, 140);
        assert_eq!(input.rescans(), 7);
    }

    #[test]
    fn rescan_interval_zero_walks_every_cycle() {
        let mut w = World::new();
        let mut input = Input::new(&config(r#"{"rescan_interval": "0s"}"#), &w.fake.paths());
        let t0 = Instant::now();
        for i in 0..4 {
            w.cycle(&mut input, t0, i);
        }
        assert_eq!(input.rescans(), 4);
    }

    #[test]
    fn missing_tables() {
        let mut w = World::new();
        std::fs::remove_file(w.fake.proc_root().join("net/tcp6")).unwrap();
        std::fs::remove_file(w.fake.proc_root().join("net/udp6")).unwrap();
        let mut input = Input::new(&Config::default(), &w.fake.paths());
        assert_eq!(w.cycle(&mut input, Instant::now(), 0).len(), 5);
        std::fs::remove_dir_all(w.fake.proc_root().join("net")).unwrap();
        let table = w.scanner.scan().unwrap();
        let mut acc = test_accumulator();
        let err = input.gather(&mut w.scanner, &table, &mut acc).unwrap_err();
        assert!(err.to_string().contains("none of"), "{err}");
    }

    #[test]
    fn config_validation() {
        let c: Config = serde_json::from_str(
            r#"{"expected": [{"port": 0}, {"port": 22}, {"port": 22, "proto": "tcp"}]}"#,
        )
        .unwrap();
        let mut errors = ConfigErrors::new("test");
        c.validate("collector.inputs.listen", &mut errors);
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "collector.inputs.listen.expected[0].port",
                "collector.inputs.listen.expected[2]"
            ]
        );
        assert!(
            serde_json::from_str::<Config>(r#"{"expected": [{"port": 22, "proto": "sctp"}]}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Config>(r#"{"expected": [{"port": 22, "host": "x"}]}"#).is_err()
        );
        let d = Config::default();
        assert_eq!(
            (d.enabled, d.expected.len(), d.rescan_interval.get()),
            (true, 0, Duration::from_secs(60))
        );
    }

    /// Sockets a test binds on loopback, open while this lives.
    struct Bound {
        /// (proto tag, address, port) of each.
        want: Vec<(&'static str, IpAddr, u16)>,
        _tcp: Vec<std::net::TcpListener>,
        _udp: Vec<std::net::UdpSocket>,
    }

    /// A TCP listener and a UDP socket on 127.0.0.1, and on ::1 when the machine has it.
    fn bind_own() -> Bound {
        let mut b = Bound {
            want: Vec::new(),
            _tcp: Vec::new(),
            _udp: Vec::new(),
        };
        for (tcp, udp, addr) in [("tcp", "udp", "127.0.0.1:0"), ("tcp6", "udp6", "[::1]:0")] {
            let (Ok(t), Ok(u)) = (
                std::net::TcpListener::bind(addr),
                std::net::UdpSocket::bind(addr),
            ) else {
                assert_eq!(tcp, "tcp6", "cannot bind on {addr}");
                continue;
            };
            let (ta, ua) = (t.local_addr().unwrap(), u.local_addr().unwrap());
            b.want.push((tcp, ta.ip(), ta.port()));
            b.want.push((udp, ua.ip(), ua.port()));
            b._tcp.push(t);
            b._udp.push(u);
        }
        b
    }

    #[test]
    fn finds_own_sockets_in_the_real_proc() {
        let bound = bind_own();
        let tcp_port = bound.want[0].2;
        let paths = HostPaths::default();
        let mut scanner = Scanner::new(&paths);
        let table = scanner.scan().unwrap();
        let me = table.get(std::process::id() as i32).unwrap();
        let config = Config {
            expected: vec![ExpectedPort {
                port: tcp_port,
                proto: ExpectedProto::Tcp4,
            }],
            ..Config::default()
        };
        // Through netlink (the default on the real /proc), then forced to /proc/net.
        for netlink in [true, false] {
            let mut input = Input::new(&config, &paths);
            if !netlink {
                input.netlink_tables = Some(Vec::new());
            }
            let mut acc = test_accumulator();
            input.gather(&mut scanner, &table, &mut acc).unwrap();
            if netlink {
                assert_eq!(input.netlink_tables.as_deref(), Some(&Proto::ALL[..]));
                assert!(input.diag.is_some(), "the socket is kept open");
            } else {
                assert!(input.diag.is_none());
            }
            let points: Vec<String> = acc.points().iter().map(render).collect();
            for (proto, address, port) in &bound.want {
                let want = format!(
                    "listen address={address},port={port},proto={proto} pid={},process={:?}",
                    me.pid, &*me.comm
                );
                assert!(points.contains(&want), "{want} not in {points:#?}");
            }
            assert!(points.contains(&format!("listen_check port={tcp_port},proto=tcp4 up=1")));
        }
    }

    #[test]
    fn netlink_and_proc_net_agree() {
        let bound = bind_own();
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut diag = SockDiag::open().unwrap();
        let mut proc_net = || {
            let mut out = Vec::new();
            for proto in Proto::ALL {
                let path = input.proc_root.join("net").join(proto.tag());
                read_into(&path, &mut input.buf).unwrap();
                parse_sockets(proto, &input.buf, &mut out);
            }
            sorted(out)
        };
        // Other programs on this machine open and close sockets: compare a netlink dump
        // with two /proc/net reads around it that agree with each other.
        for _ in 0..100 {
            let before = proc_net();
            let mut out = Vec::new();
            for proto in Proto::ALL {
                diag.dump(proto, &mut out).unwrap();
            }
            let netlink = sorted(out);
            if proc_net() != before {
                continue;
            }
            assert_eq!(netlink, before);
            for (proto, address, port) in &bound.want {
                assert!(
                    netlink
                        .iter()
                        .any(|s| s.0 == *proto && s.1 == *address && s.2 == *port),
                    "{proto} {address} {port} not in {netlink:#?}"
                );
            }
            return;
        }
        panic!("the sockets kept changing between reads");
    }

    fn sorted(sockets: Vec<Socket>) -> Vec<(&'static str, IpAddr, u16, u64)> {
        let mut v: Vec<_> = sockets
            .iter()
            .map(|s| (s.proto.tag(), s.address, s.port, s.inode))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn netlink_only_for_this_process_namespace() {
        assert!(netlink_matches_proc(Path::new("/proc")));
        let fake = FakeProc::new();
        assert!(!netlink_matches_proc(&fake.proc_root()));
        assert!(!netlink_matches_proc(Path::new("/nonexistent")));
        // A fake proc_root is read from its files: the fixture tables, not this host's.
        let mut w = World::new();
        let mut input = Input::new(&Config::default(), &w.fake.paths());
        assert_eq!(w.cycle(&mut input, Instant::now(), 0).len(), 9);
        assert_eq!(input.netlink_tables.as_deref(), Some(&[][..]));
        assert!(input.diag.is_none());
    }
}
