//! The on-disk spool: where points wait while InfluxDB is unreachable.
//!
//! Each spill is one file of line protocol, written to a temporary name, synced and
//! renamed into place, so a file is either whole or absent: a crash can lose only
//! what was not yet spilled and never leaves a torn file behind (leftover temporary
//! files are removed on open). Names sort in spill order and carry the point count:
//! `<seq:020>-<points>.lp`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hostscope_core::lineproto::{self, Precision};
use hostscope_core::Point;

/// One spooled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub seq: u64,
    pub points: u64,
    pub bytes: u64,
}

/// The spool directory and its size bound.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: Vec<Segment>,
    next_seq: u64,
}

impl Spool {
    /// Open (creating) the directory and index what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("spool: cannot create {}", dir.display()))?;
        let mut segments = Vec::new();
        for entry in
            fs::read_dir(dir).with_context(|| format!("spool: cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some((seq, points)) = parse_name(&name) else {
                continue;
            };
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            segments.push(Segment {
                path,
                seq,
                points,
                bytes,
            });
        }
        segments.sort_by_key(|s| s.seq);
        let next_seq = segments.last().map_or(0, |s| s.seq + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            segments,
            next_seq,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
    pub fn points(&self) -> u64 {
        self.segments.iter().map(|s| s.points).sum()
    }
    /// The oldest segment, the next to replay.
    pub fn oldest(&self) -> Option<&Segment> {
        self.segments.first()
    }

    /// Write `points` as a new segment. Then, while the spool is over its bound, drop
    /// the oldest segments; returns how many points were dropped that way.
    pub fn spill(&mut self, points: &[Point]) -> anyhow::Result<u64> {
        if points.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::with_capacity(points.len() * 160);
        lineproto::encode_all(points, Precision::Nanoseconds, &mut buf);
        let seq = self.next_seq;
        let name = format!("{seq:020}-{}.lp", points.len());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            // Make the rename itself durable.
            fs::File::open(&self.dir)?.sync_all()
        };
        write().with_context(|| format!("spool: cannot write {}", path.display()))?;
        self.next_seq += 1;
        self.segments.push(Segment {
            path,
            seq,
            points: points.len() as u64,
            bytes: buf.len() as u64,
        });
        let mut dropped = 0;
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            let old = self.segments.remove(0);
            dropped += old.points;
            let _ = fs::remove_file(&old.path);
            tracing::warn!(message = "spool over its size bound; dropped the oldest points", points = old.points, file = %old.path.display());
        }
        Ok(dropped)
    }

    /// Read the oldest segment's points. A line that no longer parses (the file was
    /// edited, or a future version wrote it) is skipped and counted, not fatal.
    pub fn read_oldest(&self) -> anyhow::Result<Option<(Vec<Point>, u64)>> {
        let Some(seg) = self.segments.first() else {
            return Ok(None);
        };
        let text = fs::read_to_string(&seg.path)
            .with_context(|| format!("spool: cannot read {}", seg.path.display()))?;
        let mut points = Vec::with_capacity(seg.points as usize);
        let mut bad = 0;
        for (line, parsed) in lineproto::parse_lines(&text, Precision::Nanoseconds) {
            match parsed {
                Ok(p) => points.push(p),
                Err(error) => {
                    bad += 1;
                    tracing::warn!(message = "unreadable line in the spool, skipped", file = %seg.path.display(), line, %error);
                }
            }
        }
        Ok(Some((points, bad)))
    }

    /// The oldest segment was written: delete it.
    pub fn pop_oldest(&mut self) -> anyhow::Result<()> {
        if !self.segments.is_empty() {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path)
                .with_context(|| format!("spool: cannot remove {}", seg.path.display()))?;
        }
        Ok(())
    }
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".lp")?;
    let (seq, points) = stem.split_once('-')?;
    Some((seq.parse().ok()?, points.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(n: usize, base: i64) -> Vec<Point> {
        (0..n)
            .map(|i| {
                Point::builder("cpu")
                    .tag("host", "a")
                    .field("v", i as f64)
                    .field("s", "two\nlines")
                    .timestamp(base + i as i64)
                    .build()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn spill_reopen_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.spill(&pts(3, 0)).unwrap();
        spool.spill(&pts(2, 100)).unwrap();
        assert_eq!(spool.points(), 5);
        // A crash mid-spill leaves a temporary file: ignored and removed on open.
        fs::write(dir.path().join("00000000000000000009-7.lp.tmp"), "torn").unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.points(), 5);
        assert!(!dir.path().join("00000000000000000009-7.lp.tmp").exists());
        let (first, bad) = spool.read_oldest().unwrap().unwrap();
        assert_eq!((first, bad), (pts(3, 0), 0));
        spool.pop_oldest().unwrap();
        let (second, _) = spool.read_oldest().unwrap().unwrap();
        assert_eq!(second, pts(2, 100));
        spool.pop_oldest().unwrap();
        assert!(spool.is_empty());
        assert!(spool.read_oldest().unwrap().is_none());
        // New segments continue the sequence after a reopen.
        spool.spill(&pts(1, 7)).unwrap();
        assert_eq!(spool.oldest().unwrap().seq, 2);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let one = {
            let mut b = Vec::new();
            lineproto::encode_all(&pts(10, 1000), Precision::Nanoseconds, &mut b);
            b.len() as u64
        };
        let mut spool = Spool::open(dir.path(), one * 2 + 1).unwrap();
        assert_eq!(spool.spill(&pts(10, 1000)).unwrap(), 0);
        assert_eq!(spool.spill(&pts(10, 2000)).unwrap(), 0);
        assert_eq!(spool.spill(&pts(10, 3000)).unwrap(), 10);
        assert_eq!(spool.points(), 20);
        let (oldest, _) = spool.read_oldest().unwrap().unwrap();
        assert_eq!(oldest, pts(10, 2000));
    }

    #[test]
    fn damaged_lines_are_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("00000000000000000000-3.lp"),
            "cpu v=1 1\nthis is not line protocol\ncpu v=3 3\n",
        )
        .unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let (points, bad) = spool.read_oldest().unwrap().unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(bad, 1);
    }
}
