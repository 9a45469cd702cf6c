//! The collector's inputs: one module per metric family, each a closed-enum variant.
//!
//! Every input keeps whatever state it needs between cycles (previous counters, open
//! files, caches) and, once per cycle, adds points to an [`Accumulator`], which stamps
//! the common tags and the cycle's timestamp. An input that fails logs and is skipped
//! for that cycle; it never stops the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hostscope_core::{Point, PointBuilder};

pub mod cpu;
pub mod disk;
pub mod diskio;
pub mod http;
pub mod listen;
pub mod logmatch;
pub mod mem;
pub mod net;
pub mod processes;
pub mod procscan;
pub mod procstat;
pub mod procstat_top;
pub mod promtext;
pub mod system;

/// Where the host's `/proc`, `/sys` and root filesystem are (a container reading the
/// host mounts them elsewhere: `HOST_PROC`, `HOST_SYS`, `HOST_MOUNT_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    /// Prefix to put before mount points when calling statvfs (`/hostfs`), empty on
    /// the host itself. Reported `path` tags never carry it.
    pub mount_prefix: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            mount_prefix: PathBuf::new(),
        }
    }
}

impl HostPaths {
    /// `<proc_root>/<rel>`, e.g. `proc("stat")`.
    pub fn proc(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.proc_root.join(rel)
    }
    /// `<sys_root>/<rel>`.
    pub fn sys(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.sys_root.join(rel)
    }
}

/// Collects one input's points for one cycle. Points get the cycle's timestamp unless
/// they carry their own, and the `host` and global tags unless they set those tags.
#[derive(Debug)]
pub struct Accumulator {
    timestamp_ns: i64,
    tags: Arc<BTreeMap<String, String>>,
    points: Vec<Point>,
    /// Points refused by the builder (a bug or hostile input): counted and logged.
    pub invalid: u64,
}

impl Accumulator {
    /// `tags` must include `host`.
    pub fn new(timestamp_ns: i64, tags: Arc<BTreeMap<String, String>>) -> Self {
        Accumulator {
            timestamp_ns,
            tags,
            points: Vec::new(),
            invalid: 0,
        }
    }

    /// The cycle's timestamp, nanoseconds since the epoch.
    pub fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }

    /// Stamp and add a point; a point the builder refuses is logged and counted.
    pub fn add(&mut self, point: PointBuilder) {
        let mut b = point;
        for (k, v) in self.tags.iter() {
            b = b.tag_if_absent(k, v);
        }
        b = b.timestamp_if_absent(self.timestamp_ns);
        match b.build() {
            Ok(p) => self.points.push(p),
            Err(error) => {
                self.invalid += 1;
                tracing::warn!(message = "dropped an invalid point", %error);
            }
        }
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }

    pub fn into_points(self) -> Vec<Point> {
        self.points
    }
}

/// An input's failure for one cycle. The message names the input and what failed.
pub type InputError = anyhow::Error;

/// `/proc` and `/sys` both at `dir`, for tests with fixture trees.
#[cfg(test)]
pub fn test_paths(dir: &Path) -> HostPaths {
    HostPaths {
        proc_root: dir.to_owned(),
        sys_root: dir.to_owned(),
        mount_prefix: PathBuf::new(),
    }
}

/// A fresh accumulator for tests: `host=test`, timestamp 1 s.
#[cfg(test)]
pub fn test_accumulator() -> Accumulator {
    let tags = BTreeMap::from([("host".to_owned(), "test".to_owned())]);
    Accumulator::new(1_000_000_000, Arc::new(tags))
}
