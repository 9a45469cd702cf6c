//! `disk`: space and inodes of each mounted filesystem, in Telegraf's `disk` schema.
//!
//! The mount table comes from `<proc_root>/self/mounts` (the mounts this process sees,
//! which is what statvfs sees), or, when `mount_prefix` is set (a container reading
//! the host's root mounted at, say, `/hostfs`), from `<proc_root>/1/mounts`, the
//! host's table; each falls back to the other. It is parsed again only when its
//! content changes.
//!
//! Which mounts are reported, as in Telegraf:
//! - every mount whose type is not in `ignore_fs` (and never `autofs`: a statvfs there
//!   would trigger the automount); network and FUSE filesystems (nfs, cifs, sshfs, zfs
//!   datasets) are reported;
//! - and whose statvfs succeeds and shows a non-zero size (pseudo filesystems show 0);
//! - a mount point listed twice (one mount over another) is reported once, for the
//!   last (visible) mount; if that one is ignored, the path is not reported.
//!
//! Tags: `path` (the mount point, without `mount_prefix`), `device` (the device with
//! `/dev/` taken out; `/dev/mapper/NAME` and `/dev/root` resolved to the kernel name,
//! `dm-0`, `sda1`, as gopsutil does, so it matches `diskio`'s `name`), `fstype`,
//! `mode` (`rw`, `ro` or `unknown`).
//!
//! Fields, from statvfs with `f_frsize` as the unit: `total` (`f_blocks`), `free`
//! (`f_bavail`, the space available to unprivileged users), `used`
//! (`f_blocks - f_bfree`), `used_percent` (`used / (used + free) * 100`, as `df`
//! shows), `inodes_total`, `inodes_free`, `inodes_used`.
//!
//! statvfs on a hard-mounted NFS share whose server is gone blocks in the kernel, and
//! cannot be interrupted. The scheduler's per-input timeout keeps the rest of the
//! collector going, but this input stays stuck with it; list such filesystems in
//! `ignore_fs` (`"nfs"`, `"nfs4"`) or restrict `mount_points` where that is a risk.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;

use super::system::{fields, lines, sat_i64, ProcFile};
use super::{Accumulator, HostPaths, InputError};

/// Filesystem types never reported: statvfs on an autofs mount point mounts it.
const ALWAYS_IGNORED: &[&str] = &["autofs"];

/// Telegraf's default `ignore_fs`.
const TELEGRAF_IGNORE_FS: &[&str] = &[
    "tmpfs", "devtmpfs", "devfs", "iso9660", "overlay", "aufs", "squashfs",
];

/// Kernel pseudo filesystems: no storage to report. Listing them saves a statvfs each
/// (most would be dropped anyway for their zero size).
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "hugetlbfs",
    "nsfs",
    "rpc_pipefs",
    "efivarfs",
    "selinuxfs",
    "ramfs",
];

fn default_ignore_fs() -> Vec<String> {
    TELEGRAF_IGNORE_FS
        .iter()
        .chain(PSEUDO_FS)
        .map(|s| (*s).to_owned())
        .collect()
}

/// `[collector.inputs.disk]`
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report the `disk` measurement. Default `true`.
    pub enabled: bool,
    /// Only these mount points (exact paths as the host sees them, e.g. `["/",
    /// "/var"]`). Default `[]`: every mount not ignored by type.
    pub mount_points: Vec<String>,
    /// Filesystem types not to report. Default: Telegraf's list (`tmpfs`, `devtmpfs`,
    /// `devfs`, `iso9660`, `overlay`, `aufs`, `squashfs`) plus the kernel's pseudo
    /// filesystems (`proc`, `sysfs`, `cgroup`, `cgroup2`, `devpts`, `mqueue`,
    /// `debugfs`, `tracefs`, `securityfs`, `pstore`, `bpf`, `configfs`, `fusectl`,
    /// `binfmt_misc`, `hugetlbfs`, `nsfs`, `rpc_pipefs`, `efivarfs`, `selinuxfs`,
    /// `ramfs`). Setting it replaces the whole list. `autofs` is always ignored.
    pub ignore_fs: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            mount_points: Vec::new(),
            ignore_fs: default_ignore_fs(),
        }
    }
}

impl Config {
    /// Mount points must be absolute; filesystem types non-empty.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        for (i, p) in self.mount_points.iter().enumerate() {
            if !p.starts_with('/') {
                errors.push(
                    format!("{key}.mount_points[{i}]"),
                    format!("{p:?} is not an absolute path"),
                );
            }
        }
        for (i, t) in self.ignore_fs.iter().enumerate() {
            if t.trim().is_empty() || t.contains(char::is_whitespace) {
                errors.push(
                    format!("{key}.ignore_fs[{i}]"),
                    format!("{t:?} is not a filesystem type"),
                );
            }
        }
    }
}

/// A mount to report, with its tags made once per mount table.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    path: String,
    device: String,
    fstype: String,
    mode: &'static str,
    /// `mount_prefix` + the mount point, for statvfs.
    stat_path: CString,
}

/// What decides which mounts are reported and how they are found.
#[derive(Debug)]
struct Settings {
    /// `mount_prefix` as bytes, no trailing `/`; empty on the host itself.
    prefix: Vec<u8>,
    sys_root: PathBuf,
    mount_points: HashSet<String>,
    ignore_fs: HashSet<String>,
}

/// Reads the mount table and calls statvfs on each reported mount.
#[derive(Debug)]
pub struct Input {
    mounts: ProcFile,
    settings: Settings,
    /// The mount table's content when `table` was built.
    last_table: Option<Vec<u8>>,
    table: Vec<Mount>,
}

impl Input {
    /// Nothing is opened until the first [`Input::gather`].
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        let mut prefix = paths.mount_prefix.as_os_str().as_bytes().to_vec();
        while prefix.last() == Some(&b'/') {
            prefix.pop();
        }
        let (own, host) = (paths.proc("self/mounts"), paths.proc("1/mounts"));
        let candidates = if prefix.is_empty() {
            vec![own, host]
        } else {
            vec![host, own]
        };
        Input {
            mounts: ProcFile::with_fallbacks(candidates),
            settings: Settings {
                prefix,
                sys_root: paths.sys_root.clone(),
                mount_points: config.mount_points.iter().cloned().collect(),
                ignore_fs: config
                    .ignore_fs
                    .iter()
                    .map(String::as_str)
                    .chain(ALWAYS_IGNORED.iter().copied())
                    .map(str::to_owned)
                    .collect(),
            },
            last_table: None,
            table: Vec::new(),
        }
    }

    /// One point per reported mount. Fails only if the mount table cannot be read; a
    /// mount whose statvfs fails is skipped (logged at debug).
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let buf = self.mounts.read_for("disk")?;
        if self.last_table.as_deref() != Some(buf) {
            self.table = build_table(buf, &self.settings);
            self.last_table = Some(buf.to_vec());
        }
        for m in &self.table {
            let st = match rustix::fs::statvfs(m.stat_path.as_c_str()) {
                Ok(st) => st,
                Err(error) => {
                    tracing::debug!(message = "disk: statvfs failed; skipping the mount", path = %m.path, %error);
                    continue;
                }
            };
            if st.f_blocks == 0 {
                continue;
            }
            let unit = st.f_frsize;
            let total = st.f_blocks.saturating_mul(unit);
            let free = st.f_bavail.saturating_mul(unit);
            let used = st.f_blocks.saturating_sub(st.f_bfree).saturating_mul(unit);
            let both = used as f64 + free as f64;
            let used_percent = if both > 0.0 {
                used as f64 * 100.0 / both
            } else {
                0.0
            };
            acc.add(
                Point::builder("disk")
                    .tag("path", m.path.as_str())
                    .tag("device", m.device.as_str())
                    .tag("fstype", m.fstype.as_str())
                    .tag("mode", m.mode)
                    .field("total", sat_i64(total))
                    .field("free", sat_i64(free))
                    .field("used", sat_i64(used))
                    .field("used_percent", used_percent)
                    .field("inodes_total", sat_i64(st.f_files))
                    .field("inodes_free", sat_i64(st.f_ffree))
                    .field(
                        "inodes_used",
                        sat_i64(st.f_files.saturating_sub(st.f_ffree)),
                    ),
            );
        }
        Ok(())
    }
}

/// The mounts to report, from a `mounts` file: later entries for the same path win;
/// malformed lines and ignored types are left out.
fn build_table(buf: &[u8], settings: &Settings) -> Vec<Mount> {
    // (path tag, stat path bytes, device, fstype, mode), in file order.
    let mut parsed: Vec<(String, Vec<u8>, String, String, &'static str)> = Vec::new();
    for line in lines(buf) {
        let mut it = fields(line);
        let (Some(device), Some(path), Some(fstype), Some(options)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            if !line.trim_ascii().is_empty() {
                tracing::debug!(message = "disk: skipping a malformed mounts line", line = %String::from_utf8_lossy(line));
            }
            continue;
        };
        let path = unescape(path);
        let (tag_path, stat_path) = locate(&path, &settings.prefix);
        let mode = options
            .split(|b| *b == b',')
            .find_map(|o| match o {
                b"rw" => Some("rw"),
                b"ro" => Some("ro"),
                _ => None,
            })
            .unwrap_or("unknown");
        parsed.push((
            String::from_utf8_lossy(&tag_path).into_owned(),
            stat_path,
            String::from_utf8_lossy(&unescape(device)).into_owned(),
            String::from_utf8_lossy(fstype).into_owned(),
            mode,
        ));
    }
    // The last entry for a path is the visible mount.
    let mut seen = HashSet::new();
    let mut visible: Vec<_> = parsed
        .into_iter()
        .rev()
        .filter(|(path, ..)| seen.insert(path.clone()))
        .collect();
    visible.reverse();

    visible
        .into_iter()
        .filter(|(path, _, _, fstype, _)| {
            !settings.ignore_fs.contains(fstype)
                && (settings.mount_points.is_empty() || settings.mount_points.contains(path))
        })
        .filter_map(|(path, stat_path, device, fstype, mode)| {
            let stat_path = CString::new(stat_path).ok()?;
            let device = device_tag(&device, &stat_path, settings);
            Some(Mount {
                path,
                device,
                fstype,
                mode,
                stat_path,
            })
        })
        .collect()
}

/// Decode the octal escapes of the mounts file (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash); anything else is kept as it is.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'\\' {
            if let Some(&[a, b2, c]) = s.get(i + 1..i + 4) {
                let octal = |d: u8| (b'0'..=b'7').contains(&d).then(|| d - b'0');
                if let (Some(a), Some(b2), Some(c)) = (octal(a), octal(b2), octal(c)) {
                    if a <= 3 {
                        out.push(a * 64 + b2 * 8 + c);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// The `path` tag and the path to statvfs for a mount point. With a prefix, a mount
/// point under it (a container's own table) is stat'ed as it is and reported without
/// the prefix; any other is reported as it is and stat'ed under the prefix.
fn locate(path: &[u8], prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (path.to_vec(), path.to_vec());
    }
    if let Some(rest) = path.strip_prefix(prefix) {
        if rest.is_empty() {
            return (b"/".to_vec(), path.to_vec());
        }
        if rest.first() == Some(&b'/') {
            return (rest.to_vec(), path.to_vec());
        }
    }
    let mut stat = prefix.to_vec();
    if path != b"/" {
        stat.extend_from_slice(path);
    }
    (path.to_vec(), stat)
}

/// Telegraf's `device` tag: the device with `/dev/` taken out, where
/// `/dev/mapper/NAME` and `/dev/root` become the kernel's name for the device (as
/// gopsutil resolves them), when that can be found.
fn device_tag(device: &str, stat_path: &CStr, settings: &Settings) -> String {
    let resolved = if device.starts_with("/dev/mapper/") {
        let mut link = settings.prefix.clone();
        link.extend_from_slice(device.as_bytes());
        std::fs::read_link(Path::new(OsStr::from_bytes(&link)))
            .ok()
            .and_then(|target| basename(&target))
    } else if device == "/dev/root" {
        rustix::fs::stat(stat_path).ok().and_then(|st| {
            let dev = st.st_dev;
            let link = settings.sys_root.join(format!(
                "dev/block/{}:{}",
                rustix::fs::major(dev),
                rustix::fs::minor(dev)
            ));
            std::fs::read_link(link).ok().and_then(|t| basename(&t))
        })
    } else {
        None
    };
    resolved.unwrap_or_else(|| device.replace("/dev/", ""))
}

fn basename(p: &Path) -> Option<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use hostscope_core::FieldValue;
    use std::collections::BTreeMap;

    /// (path, device, fstype, mode) of each expected point, in order.
    type Want<'a> = (&'a str, &'a str, &'a str, &'a str);

    /// Gather with the given mounts file (as `proc/self/mounts`, or `proc/1/mounts`
    /// with a prefix) and compare the tags of the points; the fields are checked for
    /// consistency.
    fn check(dir: &Path, config: &Config, prefix: Option<&Path>, mounts: &str, want: &[Want]) {
        let paths = HostPaths {
            proc_root: dir.join("proc"),
            sys_root: dir.join("sys"),
            mount_prefix: prefix.map(Path::to_owned).unwrap_or_default(),
        };
        let file = if prefix.is_some() {
            "proc/1/mounts"
        } else {
            "proc/self/mounts"
        };
        std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
        std::fs::write(dir.join(file), mounts).unwrap();
        let mut input = Input::new(config, &paths);
        // Twice: the second time from the cached table.
        for _ in 0..2 {
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            let got: Vec<BTreeMap<String, String>> =
                acc.points().iter().map(|p| p.tags().clone()).collect();
            let expected: Vec<BTreeMap<String, String>> = want
                .iter()
                .map(|(path, device, fstype, mode)| {
                    BTreeMap::from([
                        ("host".to_owned(), "test".to_owned()),
                        ("path".to_owned(), (*path).to_owned()),
                        ("device".to_owned(), (*device).to_owned()),
                        ("fstype".to_owned(), (*fstype).to_owned()),
                        ("mode".to_owned(), (*mode).to_owned()),
                    ])
                })
                .collect();
            assert_eq!(got, expected);
            for p in acc.points() {
                assert_eq!(p.measurement(), "disk");
                check_fields(p);
            }
        }
    }

    fn int(p: &Point, f: &str) -> i64 {
        match p.field(f) {
            Some(FieldValue::Integer(v)) => *v,
            other => panic!("{f}: {other:?}"),
        }
    }

    fn check_fields(p: &Point) {
        assert_eq!(p.fields().len(), 7);
        let (total, free, used) = (int(p, "total"), int(p, "free"), int(p, "used"));
        assert!(total > 0);
        assert!(free >= 0 && free <= total);
        assert!(used >= 0 && used <= total);
        let pct = p
            .field("used_percent")
            .and_then(FieldValue::as_f64)
            .unwrap();
        let want = used as f64 * 100.0 / (used as f64 + free as f64);
        assert!((pct - want).abs() < 1e-9, "{pct} vs {want}");
        assert_eq!(
            int(p, "inodes_used"),
            int(p, "inodes_total") - int(p, "inodes_free")
        );
    }

    fn tmp() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        for d in ["with space", "dup", "over", "data", "ro"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        (dir, root)
    }

    #[test]
    fn mounts_are_filtered_and_deduplicated() {
        let (dir, t) = tmp();
        let mounts = format!(
            "\
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=3264k,mode=755 0 0
systemd-1 {t}/data autofs rw,relatime,fd=29 0 0
/dev/sda1 {t} ext4 rw,relatime 0 0
/dev/sdb1 {t}/with\\040space xfs ro,noatime 0 0
/dev/sdc1 {t}/dup ext4 ro,relatime 0 0
/dev/sdd1 {t}/dup btrfs rw,relatime,subvol=/ 0 0
/dev/sde1 {t}/over ext4 rw 0 0
tmpfs {t}/over tmpfs rw 0 0
/dev/sdf1 {t}/missing ext4 rw 0 0
server:/export {t}/ro nfs4 bogus,opts 0 0
garbage
/dev/sdg1 {t}/data ext4
"
        );
        check(
            dir.path(),
            &Config::default(),
            None,
            &mounts,
            &[
                (&t, "sda1", "ext4", "rw"),
                (&format!("{t}/with space"), "sdb1", "xfs", "ro"),
                (&format!("{t}/dup"), "sdd1", "btrfs", "rw"),
                // A network filesystem is reported; its device has no /dev/.
                (&format!("{t}/ro"), "server:/export", "nfs4", "unknown"),
            ],
        );
    }

    #[test]
    fn mount_points_and_ignore_fs() {
        let (dir, t) = tmp();
        let mounts = format!(
            "/dev/sda1 {t} ext4 rw 0 0\ntmpfs {t}/data tmpfs rw 0 0\n/dev/sdb1 {t}/dup xfs rw 0 0\n"
        );
        let only = Config {
            mount_points: vec![format!("{t}/dup"), "/nonexistent".to_owned()],
            ..Config::default()
        };
        check(
            dir.path(),
            &only,
            None,
            &mounts,
            &[(&format!("{t}/dup"), "sdb1", "xfs", "rw")],
        );
        let custom = Config {
            ignore_fs: vec!["xfs".to_owned()],
            ..Config::default()
        };
        check(
            dir.path(),
            &custom,
            None,
            &mounts,
            &[
                (&t, "sda1", "ext4", "rw"),
                (&format!("{t}/data"), "tmpfs", "tmpfs", "rw"),
            ],
        );
    }

    #[test]
    fn mount_prefix_and_device_names() {
        let (dir, t) = tmp();
        // The host's root is at the prefix `<t>`; its /dev/mapper link names dm-3.
        std::fs::create_dir_all(dir.path().join("dev/mapper")).unwrap();
        std::os::unix::fs::symlink("../dm-3", dir.path().join("dev/mapper/vg-root")).unwrap();
        let mounts = "\
/dev/mapper/vg-root / ext4 rw,relatime 0 0
/dev/mapper/vg-data /data xfs rw,relatime 0 0
/dev/root /dup ext4 rw 0 0
/dev/nvme0n1p1 /missing vfat rw 0 0
";
        check(
            dir.path(),
            &Config::default(),
            Some(dir.path()),
            mounts,
            &[
                ("/", "dm-3", "ext4", "rw"),
                // Not resolvable: Telegraf's plain rule.
                ("/data", "mapper/vg-data", "xfs", "rw"),
                // No sysfs under the temp dir: not resolvable either.
                ("/dup", "root", "ext4", "rw"),
            ],
        );
        // A container's own table, with the host's mounts under the prefix.
        let own = format!(
            "overlay / overlay rw 0 0\n/dev/sda1 {t} ext4 rw 0 0\n/dev/sda2 {t}/data ext4 ro 0 0\n"
        );
        std::fs::remove_file(dir.path().join("proc/1/mounts")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(dir.path().join("proc/self/mounts"), own).unwrap();
        let paths = HostPaths {
            proc_root: dir.path().join("proc"),
            sys_root: dir.path().join("sys"),
            mount_prefix: dir.path().to_owned(),
        };
        let mut input = Input::new(&Config::default(), &paths);
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let paths: Vec<&str> = acc.points().iter().filter_map(|p| p.tag("path")).collect();
        assert_eq!(paths, ["/", "/data"]);
    }

    #[test]
    fn table_changes_between_cycles() {
        let (dir, t) = tmp();
        let paths = HostPaths {
            proc_root: dir.path().join("proc"),
            sys_root: dir.path().join("sys"),
            mount_prefix: PathBuf::new(),
        };
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        let file = dir.path().join("proc/self/mounts");
        let mut input = Input::new(&Config::default(), &paths);
        let mut gather = |content: String| {
            std::fs::write(&file, content).unwrap();
            let mut acc = test_accumulator();
            input.gather(&mut acc).unwrap();
            acc.points()
                .iter()
                .map(|p| p.tag("device").unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(gather(format!("/dev/sda1 {t} ext4 rw 0 0\n")), ["sda1"]);
        assert_eq!(
            gather(format!(
                "/dev/sda1 {t} ext4 rw 0 0\n/dev/sdb1 {t}/data ext4 rw 0 0\n"
            )),
            ["sda1", "sdb1"]
        );
        assert_eq!(
            gather(format!("/dev/sdb1 {t}/data ext4 rw 0 0\n")),
            ["sdb1"]
        );
        assert_eq!(gather(String::new()), Vec::<String>::new());
    }

    #[test]
    fn unescaping() {
        let check = |s: &str, want: &[u8]| assert_eq!(unescape(s.as_bytes()), want, "{s:?}");
        check(r"/mnt/a\040b", b"/mnt/a b");
        check(r"\011\012\134", b"\t\n\\");
        check(r"/x\04", b"/x\\04");
        check(r"/x\400", b"/x\\400");
        check(r"/x\08a", b"/x\\08a");
        check(r"\", b"\\");
        check("", b"");
    }

    #[test]
    fn prefix_location() {
        let check = |path: &str, prefix: &str, tag: &str, stat: &str| {
            let (t, s) = locate(path.as_bytes(), prefix.as_bytes());
            assert_eq!(
                (t.as_slice(), s.as_slice()),
                (tag.as_bytes(), stat.as_bytes()),
                "{path} {prefix}"
            );
        };
        check("/var", "", "/var", "/var");
        check("/", "/hostfs", "/", "/hostfs");
        check("/var", "/hostfs", "/var", "/hostfs/var");
        check("/hostfs", "/hostfs", "/", "/hostfs");
        check("/hostfs/var", "/hostfs", "/var", "/hostfs/var");
        check("/hostfsx", "/hostfs", "/hostfsx", "/hostfs/hostfsx");
    }

    #[test]
    fn validation() {
        let mut errors = ConfigErrors::new("test");
        Config::default().validate("collector.inputs.disk", &mut errors);
        assert!(errors.is_empty());
        let bad = Config {
            mount_points: vec!["/".to_owned(), "var".to_owned()],
            ignore_fs: vec!["ext4".to_owned(), "".to_owned()],
            ..Config::default()
        };
        bad.validate("collector.inputs.disk", &mut errors);
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "collector.inputs.disk.mount_points[1]",
                "collector.inputs.disk.ignore_fs[1]"
            ]
        );
    }

    #[test]
    fn unreadable_table_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::inputs::test_paths(dir.path());
        let mut input = Input::new(&Config::default(), &paths);
        let e = input
            .gather(&mut test_accumulator())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("disk: cannot read "), "{e}");
        assert!(e.contains("mounts"), "{e}");
    }

    #[test]
    fn fixture_file() {
        // A captured table: nothing in it exists here except `/`, so only `/` (and
        // whatever statvfs finds at the other paths on this machine) can show; check
        // that parsing keeps the expected mounts.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/system");
        let buf = std::fs::read(root.join("proc/self/mounts")).unwrap();
        let input = Input::new(&Config::default(), &HostPaths::default());
        let table = build_table(&buf, &input.settings);
        let got: Vec<(&str, &str, &str, &str)> = table
            .iter()
            .map(|m| {
                (
                    m.path.as_str(),
                    m.device.as_str(),
                    m.fstype.as_str(),
                    m.mode,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/", "vda1", "ext4", "rw"),
                ("/boot/efi", "vda15", "vfat", "rw"),
                ("/mnt/backup disk", "sdb1", "xfs", "ro"),
                ("/var/lib/docker", "vdb", "ext4", "rw"),
                ("/home", "nas:/export/home", "nfs4", "rw"),
            ]
        );
    }

    #[test]
    fn real_host() {
        let mut input = Input::new(&Config::default(), &HostPaths::default());
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        // `/` is reported unless its type is ignored (an overlay root in a container).
        let table = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root_type = table
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(1) == Some(&"/"))
                    .then(|| f.get(2).copied())
                    .flatten()
            })
            .next_back()
            .unwrap();
        let root_reported = acc.points().iter().any(|p| p.tag("path") == Some("/"));
        let ignored = Config::default().ignore_fs.iter().any(|t| t == root_type);
        assert_eq!(root_reported, !ignored, "/ is {root_type}");
        for p in acc.points() {
            assert_eq!(p.measurement(), "disk");
            check_fields(p);
            for t in ["path", "device", "fstype", "mode"] {
                assert!(p.tag(t).is_some(), "{t} missing in {p}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(content: Vec<u8>) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("self")).unwrap();
            std::fs::write(dir.path().join("self/mounts"), &content).unwrap();
            let paths = HostPaths {
                proc_root: dir.path().to_owned(),
                sys_root: dir.path().to_owned(),
                mount_prefix: PathBuf::from("/nonexistent-prefix"),
            };
            let mut input = Input::new(&Config::default(), &paths);
            let _ = input.gather(&mut test_accumulator());
        }

        #[test]
        fn plausible_garbage_never_panics(
            lines in proptest::collection::vec(r"(/dev/[a-z]{1,4}|/dev/mapper/x|/dev/root|none) (/|/[a-z\\0-9]{1,8}) (ext4|tmpfs|nfs) (rw|ro|x)(,[a-z]{1,3})? 0 0", 0..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("self")).unwrap();
            std::fs::write(dir.path().join("self/mounts"), lines.join("\n")).unwrap();
            let paths = crate::inputs::test_paths(dir.path());
            let mut input = Input::new(&Config::default(), &paths);
            let _ = input.gather(&mut test_accumulator());
        }
    }
}
