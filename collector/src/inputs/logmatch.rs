//! `[[collector.inputs.logmatch]]`: count the log lines that match regexes, tailing
//! files the way `tail -F` does.
//!
//! ```toml
//! [[collector.inputs.logmatch]]
//! name = "app"                       # optional
//! files = ["/var/log/app/*.log"]
//! rules = [{ name = "error", regex = "ERROR|FATAL" }, { name = "warn", regex = "WARN" }]
//! from_beginning = false
//! max_line_bytes = 4096
//! ```
//!
//! Every cycle, per file and rule, one point in measurement `logmatch`: tags `file` (the
//! path), `rule` (the rule's name) and `name` (when configured); fields `count` (integer,
//! lines that matched since the previous cycle; 0 when none did, so graphs show zeros
//! rather than gaps) and `last_line` (the last matching line, truncated to
//! `max_line_bytes`; only when `count` > 0). A line that matches several rules counts
//! once for each.
//!
//! Files are identified by (device, inode), so:
//! - the globs are expanded again every cycle: a file that appears after the collector
//!   started is read from its beginning. A file already there at start with no saved
//!   offset is read from its end (`from_beginning = true` reads it whole) — except when
//!   the saved state knew its path under another inode: then it replaced the file we
//!   were reading while the collector was stopped, and is read from its beginning;
//! - rotation by rename and create: the old file is read to its end through the open
//!   descriptor, and kept as long as it still grows (a program may write to it until it
//!   reopens its log); the new one is read from its beginning. Both count under the
//!   path they were found at;
//! - truncation (copytruncate, size below our offset): read again from offset 0;
//! - a deleted file is read to its end and then dropped;
//! - a last line without its newline is not counted until the newline arrives, except
//!   when its file is dropped (rotated away or deleted and no longer growing): that
//!   line is then complete and counts.
//!
//! At most 16 MiB are read per file per cycle; a larger backlog is read over the next
//! cycles. Offsets (the start of the first line not yet counted) are saved after every
//! cycle in `<state_dir>/logmatch-<hash>.json` (written to a temporary file, synced,
//! then renamed), the hash taken from `name` when set, else from `files` and `rules`: a
//! restart resumes exactly where the last cycle stopped, as long as the file keeps its
//! inode (a file smaller than its saved offset was truncated and is read from 0). Give
//! the input a `name` to keep its offsets when editing its `files` or `rules`.
//!
//! Problems with single files (unreadable, vanished) are logged once, not returned: the
//! other files are still counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use hostscope_core::config::ConfigErrors;
use hostscope_core::point::MAX_STRING_FIELD_LEN;
use hostscope_core::Point;
use regex::bytes::{Regex, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use super::{Accumulator, InputError};

/// The measurement of every point this input adds.
pub const MEASUREMENT: &str = "logmatch";

/// Longest allowed `max_line_bytes`.
const MAX_MAX_LINE_BYTES: usize = 1 << 20;
/// Most bytes read from one file in one cycle.
const READ_CAP_PER_CYCLE: u64 = 16 << 20;
/// Size of one read.
const CHUNK_BYTES: usize = 64 << 10;
/// Most files one input follows; more matches are ignored (and logged).
const MAX_FILES: usize = 1000;
/// Starting at a file's end, how far back to look for the start of an unfinished
/// last line.
const LINE_START_SEARCH_BYTES: u64 = 64 << 10;
/// Version of the state file's layout.
const STATE_VERSION: u32 = 1;

fn default_max_line_bytes() -> usize {
    4096
}

/// `[[collector.inputs.logmatch]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A label for this input: the `name` tag of its points, and what its state file is
    /// named after (so editing `files` or `rules` keeps the saved offsets). Optional;
    /// two logmatch inputs must not share one.
    #[serde(default)]
    pub name: Option<String>,
    /// Absolute paths or glob patterns of the files to follow, e.g.
    /// `"/var/log/app/*.log"`; expanded again every cycle. Make them not match rotated
    /// or compressed copies (`*.log.1`, `*.gz`), which would be read as new files.
    pub files: Vec<String>,
    /// The rules: each counts the lines its regex matches (Rust `regex` syntax,
    /// unanchored: `ERROR` matches anywhere in the line).
    pub rules: Vec<Rule>,
    /// Read a file found at start, with no saved offset, from its beginning instead of
    /// its end. Default `false`, like `tail -F`.
    #[serde(default)]
    pub from_beginning: bool,
    /// Lines are cut to this many bytes for matching and for `last_line`; a longer line
    /// still counts once. Default 4096, at most 1048576.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

/// One rule of a logmatch input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The `rule` tag of its points; unique within the input.
    pub name: String,
    /// The regex a line must match (anywhere in the line).
    pub regex: String,
}

impl Config {
    /// Report every problem under `key` (e.g. `collector.inputs.logmatch[0]`).
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        for (suffix, message) in self.problems() {
            errors.push(format!("{key}{suffix}"), message);
        }
    }

    /// (key suffix, message) of every problem.
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(name) = &self.name {
            if let Some(why) = bad_tag_value(name) {
                out.push((".name".to_owned(), why));
            }
        }
        if self.files.is_empty() {
            out.push((
                ".files".to_owned(),
                "list at least one file or glob pattern".to_owned(),
            ));
        }
        for (i, pattern) in self.files.iter().enumerate() {
            let key = format!(".files[{i}]");
            if let Err(e) = glob::Pattern::new(pattern) {
                out.push((key, format!("invalid glob pattern {pattern:?}: {e}")));
            } else if !Path::new(pattern).is_absolute() {
                out.push((
                    key,
                    format!("{pattern:?} is relative; write an absolute path"),
                ));
            }
        }
        if self.rules.is_empty() {
            out.push((".rules".to_owned(), "list at least one rule".to_owned()));
        }
        let mut names = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(why) = bad_tag_value(&rule.name) {
                out.push((format!(".rules[{i}].name"), why));
            } else if !names.insert(rule.name.as_str()) {
                out.push((
                    format!(".rules[{i}].name"),
                    format!("rule name {:?} is used twice", rule.name),
                ));
            }
            if let Err(e) = Regex::new(&rule.regex) {
                out.push((format!(".rules[{i}].regex"), format!("invalid regex: {e}")));
            }
        }
        if out.is_empty() {
            if let Err(e) = self.regex_set() {
                out.push((".rules".to_owned(), format!("the regexes together: {e}")));
            }
        }
        if self.max_line_bytes == 0 || self.max_line_bytes > MAX_MAX_LINE_BYTES {
            out.push((
                ".max_line_bytes".to_owned(),
                format!("must be between 1 and {MAX_MAX_LINE_BYTES}"),
            ));
        }
        out
    }

    fn regex_set(&self) -> Result<RegexSet, regex::Error> {
        RegexSetBuilder::new(self.rules.iter().map(|r| r.regex.as_str())).build()
    }

    /// The state file's name: from `name` when set, else from `files` and `rules`.
    fn state_file_name(&self) -> String {
        let mut h = Fnv64::new();
        match &self.name {
            Some(name) => {
                h.write(b"name\0");
                h.write(name.as_bytes());
            }
            None => {
                h.write(b"files\0");
                for f in &self.files {
                    h.write(f.as_bytes());
                    h.write(b"\0");
                }
                h.write(b"rules\0");
                for r in &self.rules {
                    h.write(r.name.as_bytes());
                    h.write(b"\0");
                    h.write(r.regex.as_bytes());
                    h.write(b"\0");
                }
            }
        }
        format!("logmatch-{:016x}.json", h.finish())
    }
}

/// Why `value` cannot be a tag value, if it cannot.
fn bad_tag_value(value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return Some("must not be empty".to_owned());
    }
    Point::builder(MEASUREMENT)
        .tag("t", value)
        .field("f", 0i64)
        .build()
        .err()
        .map(|e| e.to_string())
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases, for file names.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A file's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The state file.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    version: u32,
    files: Vec<SavedFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedFile {
    /// The path it was last followed under (for reading only: identity is dev/ino).
    path: String,
    #[serde(flatten)]
    id: FileId,
    /// Start of the first line not yet counted.
    offset: u64,
    /// The line at `offset` started before we first saw the file and must not count.
    #[serde(default)]
    skip_line: bool,
}

/// A followed file.
#[derive(Debug)]
struct Tracked {
    /// The path it was found at, and its `file` tag.
    path: PathBuf,
    tag: String,
    file: File,
    id: FileId,
    /// Next byte to read.
    read_pos: u64,
    /// Start of the line being read (everything before it is counted).
    line_start: u64,
    /// The line being read so far, cut to `max_line_bytes`.
    line: Vec<u8>,
    /// The line being read began before we started reading the file: don't count it.
    skip_line: bool,
}

impl Tracked {
    fn open(path: &Path, tag: String) -> io::Result<(Tracked, std::fs::Metadata)> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let tracked = Tracked {
            path: path.to_owned(),
            tag,
            file,
            id: FileId::of(&meta),
            read_pos: 0,
            line_start: 0,
            line: Vec::new(),
            skip_line: false,
        };
        Ok((tracked, meta))
    }

    fn start_at(&mut self, offset: u64, skip_line: bool) {
        self.read_pos = offset;
        self.line_start = offset;
        self.line.clear();
        self.skip_line = skip_line;
    }

    /// Start at the file's end; if it ends inside a line, at that line's start (or past
    /// it, not counting it, when it is too far back).
    fn start_at_end(&mut self, size: u64) {
        let from = size.saturating_sub(LINE_START_SEARCH_BYTES);
        let mut tail = vec![0u8; usize::try_from(size - from).unwrap_or(0)];
        let read = read_full_at(&self.file, &mut tail, from);
        match read {
            Ok(n) if n == tail.len() => {
                let tail = tail.get(..n).unwrap_or_default();
                match tail.iter().rposition(|b| *b == b'\n') {
                    Some(i) => self.start_at(from + i as u64 + 1, false),
                    None if from == 0 => self.start_at(0, false),
                    None => self.start_at(size, true),
                }
            }
            _ => self.start_at(size, false),
        }
    }

    fn has_partial_line(&self) -> bool {
        self.read_pos > self.line_start
    }
}

/// Read until `buf` is full or the file ends.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match file.read_at(rest, offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Matches of one file path this cycle.
#[derive(Debug)]
struct Tally {
    counts: Vec<i64>,
    last: Vec<Vec<u8>>,
}

impl Tally {
    fn new(rules: usize) -> Self {
        Tally {
            counts: vec![0; rules],
            last: vec![Vec::new(); rules],
        }
    }
}

/// Match one complete line (already cut to `max_line_bytes`) against every rule.
fn count_line(set: &RegexSet, tally: &mut Tally, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    for rule in set.matches(line).iter() {
        if let (Some(count), Some(last)) = (tally.counts.get_mut(rule), tally.last.get_mut(rule)) {
            *count += 1;
            last.clear();
            last.extend_from_slice(line);
        }
    }
}

/// How a read ended.
#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    /// At the end of the file.
    Eof,
    /// At this cycle's limit; more is left.
    Capped,
}

/// Read `t` from its position to its end or `cap` bytes, counting complete lines.
/// Returns how it ended and how many bytes were read.
fn read_lines(
    t: &mut Tracked,
    buf: &mut [u8],
    cap: u64,
    max_line: usize,
    set: &RegexSet,
    tally: &mut Tally,
) -> io::Result<(ReadEnd, u64)> {
    let mut total = 0u64;
    loop {
        let budget = cap - total;
        if budget == 0 {
            return Ok((ReadEnd::Capped, total));
        }
        let want = usize::try_from(budget).map_or(buf.len(), |b| b.min(buf.len()));
        let Some(chunk) = buf.get_mut(..want) else {
            return Ok((ReadEnd::Capped, total));
        };
        let n = match t.file.read_at(chunk, t.read_pos) {
            Ok(0) => return Ok((ReadEnd::Eof, total)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut rest = chunk.get(..n).unwrap_or_default();
        let mut pos = t.read_pos;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            append_cut(&mut t.line, rest.get(..i).unwrap_or_default(), max_line);
            if !t.skip_line {
                count_line(set, tally, &t.line);
            }
            t.line.clear();
            t.skip_line = false;
            pos += i as u64 + 1;
            t.line_start = pos;
            rest = rest.get(i + 1..).unwrap_or_default();
        }
        append_cut(&mut t.line, rest, max_line);
        t.read_pos += n as u64;
        total += n as u64;
    }
}

/// Append to a line, keeping at most `max` bytes.
fn append_cut(line: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let room = max.saturating_sub(line.len());
    line.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
}

/// A line as a string field: invalid UTF-8 replaced, an incomplete character that the
/// cut left at the end dropped, and no longer than InfluxDB takes.
fn line_text(bytes: &[u8]) -> String {
    let mut end = bytes.len();
    for back in 1..=end.min(3) {
        let Some(&b) = bytes.get(end - back) else {
            break;
        };
        if b & 0xC0 != 0x80 {
            let needed = match b {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            if needed > back {
                end -= back;
            }
            break;
        }
    }
    let mut text = String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned();
    if text.len() > MAX_STRING_FIELD_LEN {
        let mut cut = MAX_STRING_FIELD_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The logmatch input: the files it follows and their offsets.
#[derive(Debug)]
pub struct Input {
    /// For messages: the name, else the first pattern.
    label: String,
    name: Option<String>,
    patterns: Vec<String>,
    rules: Vec<String>,
    set: RegexSet,
    max_line_bytes: usize,
    read_cap: u64,
    tracked: Vec<Tracked>,
    state_path: PathBuf,
    /// The state as last written, to skip writing it unchanged.
    last_saved: Option<Vec<u8>>,
    /// The problem last logged per path, so a lasting one is logged once.
    reported: HashMap<PathBuf, String>,
    /// Logged that more than `MAX_FILES` files matched.
    reported_too_many: bool,
    buf: Vec<u8>,
}

impl Input {
    /// Compile the rules, load the saved offsets from `state_dir` (created if missing)
    /// and open the files that exist now, positioned where reading must start.
    pub fn new(config: &Config, state_dir: &Path) -> Result<Self, InputError> {
        let label = config
            .name
            .clone()
            .or_else(|| config.files.first().cloned())
            .unwrap_or_default();
        let problems = config.problems();
        if !problems.is_empty() {
            let list: Vec<String> = problems
                .into_iter()
                .map(|(k, m)| format!("{}: {m}", k.trim_start_matches('.')))
                .collect();
            anyhow::bail!(
                "logmatch input `{label}`: invalid configuration: {}",
                list.join("; ")
            );
        }
        let set = config
            .regex_set()
            .with_context(|| format!("logmatch input `{label}`: compiling the rules"))?;
        std::fs::create_dir_all(state_dir).with_context(|| {
            format!(
                "logmatch input `{label}`: creating the state directory {}",
                state_dir.display()
            )
        })?;
        let mut input = Input {
            label,
            name: config.name.clone(),
            patterns: config.files.clone(),
            rules: config.rules.iter().map(|r| r.name.clone()).collect(),
            set,
            max_line_bytes: config.max_line_bytes,
            read_cap: READ_CAP_PER_CYCLE,
            tracked: Vec::new(),
            state_path: state_dir.join(config.state_file_name()),
            last_saved: None,
            reported: HashMap::new(),
            reported_too_many: false,
            buf: vec![0; CHUNK_BYTES],
        };
        let saved = input.load_state();
        let saved_paths: HashSet<&str> = saved.values().map(|f| f.path.as_str()).collect();
        for (path, tag) in input.scan() {
            let (mut t, meta) = match Tracked::open(&path, tag) {
                Ok(opened) => opened,
                Err(error) => {
                    input.report(&path, format!("cannot open: {error}"));
                    continue;
                }
            };
            if input.tracked.iter().any(|o| o.id == t.id) {
                continue;
            }
            let size = meta.len();
            match saved.get(&t.id) {
                Some(s) if s.offset <= size => t.start_at(s.offset, s.skip_line),
                Some(_) => t.start_at(0, false),
                None if config.from_beginning || saved_paths.contains(t.tag.as_str()) => {
                    t.start_at(0, false)
                }
                None => t.start_at_end(size),
            }
            input.tracked.push(t);
        }
        input.save_state();
        Ok(input)
    }

    /// Read what the files gained since the last cycle and add one point per file and
    /// rule.
    pub fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let matched = self.scan();
        let mut by_id: HashMap<FileId, (PathBuf, String)> = HashMap::new();
        let mut unknown: Vec<(PathBuf, String)> = Vec::new();
        for (path, tag) in matched {
            match std::fs::metadata(&path) {
                Ok(meta) => {
                    let id = FileId::of(&meta);
                    if self.tracked.iter().any(|t| t.id == id) {
                        by_id.entry(id).or_insert((path, tag));
                    } else {
                        unknown.push((path, tag));
                    }
                }
                // Vanished since the glob ran.
                Err(_) => continue,
            }
        }

        let Input {
            set,
            buf,
            tracked,
            max_line_bytes,
            read_cap,
            rules,
            ..
        } = self;
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        let mut problems: Vec<(PathBuf, String)> = Vec::new();
        let mut opened: Vec<PathBuf> = Vec::new();

        // Files already followed, in the order they were found: a rotated-away file
        // before the new file at its path.
        let mut keep = Vec::with_capacity(tracked.len());
        for mut t in std::mem::take(tracked) {
            let found = by_id.remove(&t.id);
            match t.file.metadata() {
                Ok(meta) if meta.len() < t.read_pos => {
                    tracing::info!(
                        message = "log file was truncated; reading it from its start",
                        path = %t.path.display()
                    );
                    t.start_at(0, false);
                }
                Ok(_) => {}
                Err(error) => problems.push((t.path.clone(), format!("cannot stat: {error}"))),
            }
            let tally = tallies
                .entry(t.tag.clone())
                .or_insert_with(|| Tally::new(rules.len()));
            let read = read_lines(&mut t, buf, *read_cap, *max_line_bytes, set, tally);
            let (end, bytes) = match read {
                Ok(r) => r,
                Err(error) => {
                    problems.push((t.path.clone(), format!("cannot read: {error}")));
                    (ReadEnd::Eof, 0)
                }
            };
            match found {
                Some((path, tag)) => {
                    t.path = path;
                    t.tag = tag;
                    keep.push(t);
                }
                // Rotated away or deleted: keep it while it grows, then drop it; its
                // unfinished last line is all there will be of that line.
                None if end == ReadEnd::Eof && bytes == 0 => {
                    if t.has_partial_line() && !t.skip_line {
                        count_line(set, tally, &t.line);
                    }
                }
                None => keep.push(t),
            }
        }

        // Files that appeared since the last cycle: from their beginning.
        for (path, tag) in unknown {
            if keep.len() >= MAX_FILES {
                break;
            }
            let mut t = match Tracked::open(&path, tag) {
                Ok((t, _)) => t,
                Err(error) => {
                    problems.push((path, format!("cannot open: {error}")));
                    continue;
                }
            };
            opened.push(path.clone());
            if keep.iter().any(|o| o.id == t.id) {
                continue;
            }
            let tally = tallies
                .entry(t.tag.clone())
                .or_insert_with(|| Tally::new(rules.len()));
            if let Err(error) = read_lines(&mut t, buf, *read_cap, *max_line_bytes, set, tally) {
                problems.push((path, format!("cannot read: {error}")));
            }
            keep.push(t);
        }
        *tracked = keep;

        for path in opened {
            self.reported.remove(&path);
        }
        for (path, message) in problems {
            self.report(&path, message);
        }
        let followed: BTreeSet<&str> = self.tracked.iter().map(|t| t.tag.as_str()).collect();
        for tag in followed {
            tallies
                .entry(tag.to_owned())
                .or_insert_with(|| Tally::new(self.rules.len()));
        }
        for (file, tally) in &tallies {
            for (i, rule) in self.rules.iter().enumerate() {
                let count = tally.counts.get(i).copied().unwrap_or(0);
                let mut point = Point::builder(MEASUREMENT)
                    .tag("file", file.as_str())
                    .tag("rule", rule.as_str())
                    .field("count", count);
                if let Some(name) = &self.name {
                    point = point.tag("name", name.as_str());
                }
                if count > 0 {
                    if let Some(last) = tally.last.get(i) {
                        point = point.field("last_line", line_text(last));
                    }
                }
                acc.add(point);
            }
        }
        self.save_state();
        Ok(())
    }

    /// The files the patterns match now, deduplicated, with their `file` tags; paths
    /// that cannot be a tag are logged and left out.
    fn scan(&mut self) -> Vec<(PathBuf, String)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut problems = Vec::new();
        let mut too_many = false;
        for pattern in &self.patterns {
            let paths = match glob::glob(pattern) {
                Ok(paths) => paths,
                Err(error) => {
                    problems.push((PathBuf::from(pattern), format!("invalid pattern: {error}")));
                    continue;
                }
            };
            for entry in paths {
                let path = match entry {
                    Ok(p) => p,
                    Err(error) => {
                        problems.push((
                            error.path().to_owned(),
                            format!("cannot list: {}", error.error()),
                        ));
                        continue;
                    }
                };
                if !path.is_file() || !seen.insert(path.clone()) {
                    continue;
                }
                if out.len() >= MAX_FILES {
                    too_many = true;
                    break;
                }
                let tag = path.to_string_lossy().into_owned();
                if let Some(why) = bad_tag_value(&tag) {
                    problems.push((path, format!("cannot report this path as a tag: {why}")));
                    continue;
                }
                out.push((path, tag));
            }
        }
        if too_many && !self.reported_too_many {
            tracing::warn!(
                message = "logmatch: too many files match; following only the first ones",
                input = %self.label,
                limit = MAX_FILES
            );
        }
        self.reported_too_many = too_many;
        for (path, message) in problems {
            self.report(&path, message);
        }
        out
    }

    /// Log a problem with a path, once while it lasts.
    fn report(&mut self, path: &Path, message: String) {
        if self.reported.get(path) != Some(&message) {
            tracing::warn!(
                message = "logmatch: skipping a file",
                input = %self.label,
                path = %path.display(),
                reason = %message
            );
            self.reported.insert(path.to_owned(), message);
        }
    }

    /// The saved offsets by file identity; none when there is no readable state.
    fn load_state(&self) -> HashMap<FileId, SavedFile> {
        let bytes = match std::fs::read(&self.state_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return HashMap::new(),
            Err(error) => {
                tracing::warn!(
                    message = "logmatch: cannot read the saved offsets; starting afresh",
                    input = %self.label,
                    path = %self.state_path.display(),
                    %error
                );
                return HashMap::new();
            }
        };
        match serde_json::from_slice::<SavedState>(&bytes) {
            Ok(state) if state.version == STATE_VERSION => {
                state.files.into_iter().map(|f| (f.id, f)).collect()
            }
            Ok(state) => {
                tracing::warn!(
                    message = "logmatch: saved offsets have an unknown version; starting afresh",
                    input = %self.label,
                    version = state.version
                );
                HashMap::new()
            }
            Err(error) => {
                tracing::warn!(
                    message = "logmatch: saved offsets are corrupt; starting afresh",
                    input = %self.label,
                    path = %self.state_path.display(),
                    %error
                );
                HashMap::new()
            }
        }
    }

    /// Write the offsets (when they changed): temporary file, fsync, rename, fsync of
    /// the directory. A failure is logged; the next cycle tries again.
    fn save_state(&mut self) {
        let state = SavedState {
            version: STATE_VERSION,
            files: self
                .tracked
                .iter()
                .map(|t| SavedFile {
                    path: t.tag.clone(),
                    id: t.id,
                    offset: t.line_start,
                    skip_line: t.skip_line,
                })
                .collect(),
        };
        let bytes = match serde_json::to_vec_pretty(&state) {
            Ok(b) => b,
            Err(error) => {
                tracing::warn!(message = "logmatch: cannot encode the offsets", input = %self.label, %error);
                return;
            }
        };
        if self.last_saved.as_ref() == Some(&bytes) {
            return;
        }
        match write_atomically(&self.state_path, &bytes) {
            Ok(()) => {
                self.last_saved = Some(bytes);
                self.reported.remove(&self.state_path);
            }
            Err(error) => {
                let path = self.state_path.clone();
                let message = format!("cannot save the offsets: {error}");
                if self.reported.get(&path) != Some(&message) {
                    tracing::warn!(
                        message = "logmatch: cannot save the offsets; a restart may count lines again",
                        input = %self.label,
                        path = %path.display(),
                        %error
                    );
                    self.reported.insert(path, message);
                }
            }
        }
    }
}

/// Replace `path` with `bytes` so a crash leaves the old or the new content, whole.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename durable; not every filesystem allows syncing a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use hostscope_core::FieldValue;
    use std::fs::OpenOptions;

    /// A log directory, a state directory and a config over `<logs>/*.log`.
    struct Fixture {
        _dir: tempfile::TempDir,
        logs: PathBuf,
        state: PathBuf,
        config: Config,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let state = dir.path().join("state");
        std::fs::create_dir(&logs).unwrap();
        let config = Config {
            name: None,
            files: vec![format!("{}/*.log", logs.display())],
            rules: vec![
                Rule {
                    name: "error".to_owned(),
                    regex: "ERROR|FATAL".to_owned(),
                },
                Rule {
                    name: "warn".to_owned(),
                    regex: "WARN".to_owned(),
                },
            ],
            from_beginning: false,
            max_line_bytes: 4096,
        };
        Fixture {
            _dir: dir,
            logs,
            state,
            config,
        }
    }

    impl Fixture {
        fn path(&self, name: &str) -> PathBuf {
            self.logs.join(name)
        }
        fn input(&self) -> Input {
            Input::new(&self.config, &self.state).unwrap()
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// (file name, rule) → (count, last_line) for every point of one cycle.
    type Rows = BTreeMap<(String, String), (i64, Option<String>)>;

    fn gather(input: &mut Input) -> Rows {
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let mut rows = Rows::new();
        for p in acc.points() {
            assert_eq!(p.measurement(), "logmatch");
            let file = Path::new(p.tag("file").unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let rule = p.tag("rule").unwrap().to_owned();
            let count = match p.field("count") {
                Some(FieldValue::Integer(n)) => *n,
                other => panic!("count is {other:?}"),
            };
            let last = match p.field("last_line") {
                None => None,
                Some(FieldValue::String(s)) => Some(s.clone()),
                other => panic!("last_line is {other:?}"),
            };
            assert_eq!(last.is_some(), count > 0, "{p}");
            assert_eq!(p.fields().len(), if count > 0 { 2 } else { 1 });
            assert!(rows.insert((file, rule), (count, last)).is_none());
        }
        rows
    }

    /// Expected rows: (file, rule, count, last_line).
    fn rows(expected: &[(&str, &str, i64, Option<&str>)]) -> Rows {
        expected
            .iter()
            .map(|(f, r, c, l)| {
                (
                    ((*f).to_owned(), (*r).to_owned()),
                    (*c, l.map(str::to_owned)),
                )
            })
            .collect()
    }

    /// Total of `count` for one rule.
    fn total(rows: &Rows, rule: &str) -> i64 {
        rows.iter()
            .filter(|((_, r), _)| r == rule)
            .map(|(_, (c, _))| c)
            .sum()
    }

    #[test]
    fn glob_several_files_several_rules_and_zeros() {
        let fx = fixture();
        append(&fx.path("a.log"), "ERROR before start\n");
        append(&fx.path("b.log"), "WARN before start\n");
        append(&fx.path("c.txt"), "ERROR not matched by the glob\n");
        let mut input = fx.input();
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("a.log", "error", 0, None),
                ("a.log", "warn", 0, None),
                ("b.log", "error", 0, None),
                ("b.log", "warn", 0, None),
            ])
        );
        append(&fx.path("a.log"), "ERROR one\nnothing\nERROR and WARN\n");
        append(&fx.path("b.log"), "FATAL x\n");
        append(&fx.path("c.txt"), "ERROR still not\n");
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("a.log", "error", 2, Some("ERROR and WARN")),
                ("a.log", "warn", 1, Some("ERROR and WARN")),
                ("b.log", "error", 1, Some("FATAL x")),
                ("b.log", "warn", 0, None),
            ])
        );
        assert_eq!(total(&gather(&mut input), "error"), 0);
    }

    #[test]
    fn name_tag_and_crlf() {
        let mut fx = fixture();
        fx.config.name = Some("app".to_owned());
        append(&fx.path("a.log"), "");
        let mut input = fx.input();
        append(&fx.path("a.log"), "WARN windows\r\n");
        let mut acc = test_accumulator();
        input.gather(&mut acc).unwrap();
        let warn = acc
            .points()
            .iter()
            .find(|p| p.tag("rule") == Some("warn"))
            .unwrap();
        assert_eq!(warn.tag("name"), Some("app"));
        assert_eq!(warn.tag("host"), Some("test"));
        assert_eq!(
            warn.field("last_line"),
            Some(&FieldValue::String("WARN windows".to_owned()))
        );
    }

    #[test]
    fn from_beginning_reads_existing_content() {
        let mut fx = fixture();
        fx.config.from_beginning = true;
        append(&fx.path("a.log"), "ERROR 1\nERROR 2\n");
        let mut input = fx.input();
        assert_eq!(total(&gather(&mut input), "error"), 2);
        assert_eq!(total(&gather(&mut input), "error"), 0);
    }

    #[test]
    fn start_from_end_inside_a_line() {
        let fx = fixture();
        append(&fx.path("a.log"), "ERROR old\nERROR half");
        let mut input = fx.input();
        append(&fx.path("a.log"), " done\nERROR new\n");
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("a.log", "error", 2, Some("ERROR new")),
                ("a.log", "warn", 0, None),
            ])
        );
    }

    #[test]
    fn start_from_end_inside_a_very_long_line() {
        let fx = fixture();
        let long = "x".repeat(LINE_START_SEARCH_BYTES as usize + 10);
        append(&fx.path("a.log"), &format!("ERROR {long}"));
        let mut input = fx.input();
        // The rest of a line that started before us is not counted.
        append(&fx.path("a.log"), " ERROR end\nERROR new\n");
        assert_eq!(total(&gather(&mut input), "error"), 1);
    }

    #[test]
    fn rotation_by_rename_and_create() {
        let fx = fixture();
        let app = fx.path("app.log");
        append(&app, "ERROR before start\n");
        let mut input = fx.input();
        append(&app, "ERROR 1\nERROR 2\n");
        assert_eq!(total(&gather(&mut input), "error"), 2);

        // The program writes, logrotate renames, the program writes on through its
        // descriptor, then reopens a new file.
        let mut old = OpenOptions::new().append(true).open(&app).unwrap();
        old.write_all(b"ERROR 3\n").unwrap();
        std::fs::rename(&app, fx.path("app.log.1")).unwrap();
        old.write_all(b"ERROR 4 after rename\n").unwrap();
        append(&app, "ERROR 5 new file\nWARN 6\n");
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("app.log", "error", 3, Some("ERROR 5 new file")),
                ("app.log", "warn", 1, Some("WARN 6")),
            ])
        );

        // A late write to the old file, then its unfinished last line: both count.
        old.write_all(b"ERROR 7 late\nERROR 8 unfinished").unwrap();
        append(&app, "ERROR 9\n");
        assert_eq!(total(&gather(&mut input), "error"), 2);
        assert_eq!(input.tracked.len(), 2);
        // No growth: the old file is dropped, its last line counted.
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("app.log", "error", 1, Some("ERROR 8 unfinished")),
                ("app.log", "warn", 0, None),
            ])
        );
        assert_eq!(input.tracked.len(), 1);
        old.write_all(b"ERROR lost: nobody reads the old file now\n")
            .unwrap();
        assert_eq!(total(&gather(&mut input), "error"), 0);
    }

    #[test]
    fn rotation_within_the_glob_follows_the_inode() {
        let mut fx = fixture();
        fx.config.files = vec![format!("{}/app.log*", fx.logs.display())];
        let app = fx.path("app.log");
        append(&app, "");
        let mut input = fx.input();
        let mut old = OpenOptions::new().append(true).open(&app).unwrap();
        old.write_all(b"ERROR 1\n").unwrap();
        std::fs::rename(&app, fx.path("app.log.1")).unwrap();
        old.write_all(b"ERROR 2\n").unwrap();
        append(&app, "ERROR 3\n");
        let r = gather(&mut input);
        assert_eq!(total(&r, "error"), 3);
        assert_eq!(r[&("app.log".to_owned(), "error".to_owned())].0, 3);
        assert_eq!(r[&("app.log.1".to_owned(), "error".to_owned())].0, 0);
        old.write_all(b"ERROR 4\n").unwrap();
        let r = gather(&mut input);
        assert_eq!(r[&("app.log.1".to_owned(), "error".to_owned())].0, 1);
        assert_eq!(r[&("app.log".to_owned(), "error".to_owned())].0, 0);
    }

    #[test]
    fn copytruncate_restarts_from_zero() {
        let fx = fixture();
        let app = fx.path("app.log");
        append(&app, "");
        let mut input = fx.input();
        append(&app, "ERROR 1\nERROR 2\nERROR 3\n");
        assert_eq!(total(&gather(&mut input), "error"), 3);
        OpenOptions::new()
            .write(true)
            .open(&app)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&app, "ERROR 4\n");
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("app.log", "error", 1, Some("ERROR 4")),
                ("app.log", "warn", 0, None),
            ])
        );
        assert_eq!(total(&gather(&mut input), "error"), 0);
    }

    #[test]
    fn file_created_after_start_is_read_from_its_beginning() {
        let fx = fixture();
        let mut input = fx.input();
        assert!(gather(&mut input).is_empty());
        append(&fx.path("new.log"), "ERROR 1\nWARN 2\n");
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("new.log", "error", 1, Some("ERROR 1")),
                ("new.log", "warn", 1, Some("WARN 2")),
            ])
        );
    }

    #[test]
    fn deleted_file_is_finished_then_dropped() {
        let fx = fixture();
        let app = fx.path("app.log");
        append(&app, "");
        let mut input = fx.input();
        let mut f = OpenOptions::new().append(true).open(&app).unwrap();
        f.write_all(b"ERROR 1\n").unwrap();
        std::fs::remove_file(&app).unwrap();
        f.write_all(b"ERROR 2\n").unwrap();
        assert_eq!(total(&gather(&mut input), "error"), 2);
        drop(f);
        assert_eq!(total(&gather(&mut input), "error"), 0);
        assert!(gather(&mut input).is_empty());
        assert!(input.tracked.is_empty());
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let fx = fixture();
        let app = fx.path("app.log");
        append(&app, "");
        let mut input = fx.input();
        append(&app, "ERROR 1\nERROR par");
        assert_eq!(total(&gather(&mut input), "error"), 1);
        assert_eq!(total(&gather(&mut input), "error"), 0);
        append(&app, "tial");
        assert_eq!(total(&gather(&mut input), "error"), 0);
        append(&app, "\n");
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("app.log", "error", 1, Some("ERROR partial")),
                ("app.log", "warn", 0, None),
            ])
        );
    }

    #[test]
    fn restart_resumes_exactly() {
        let fx = fixture();
        let app = fx.path("app.log");
        append(&app, "ERROR before\n");
        let mut first = fx.input();
        append(&app, "ERROR 1\nERROR 2\nERROR 3 par");
        assert_eq!(total(&gather(&mut first), "error"), 2);
        drop(first);
        append(&app, "tial\nERROR 4\n");
        let mut second = fx.input();
        assert_eq!(
            gather(&mut second),
            rows(&[
                ("app.log", "error", 2, Some("ERROR 4")),
                ("app.log", "warn", 0, None),
            ])
        );
        drop(second);
        // Rotated while stopped: the new file at the known path is read whole.
        std::fs::rename(&app, fx.path("app.log.1")).unwrap();
        append(&app, "ERROR 5\n");
        let mut third = fx.input();
        assert_eq!(total(&gather(&mut third), "error"), 1);
        drop(third);
        // Truncated while stopped.
        OpenOptions::new()
            .write(true)
            .open(&app)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&app, "E\n");
        let mut fourth = fx.input();
        append(&app, "ERROR 6\n");
        assert_eq!(total(&gather(&mut fourth), "error"), 1);
    }

    #[test]
    fn state_file_is_named_and_readable() {
        let mut fx = fixture();
        append(&fx.path("a.log"), "x\n");
        let unnamed = fx.config.state_file_name();
        fx.config.name = Some("app".to_owned());
        let named = fx.config.state_file_name();
        assert_ne!(unnamed, named);
        let mut input = fx.input();
        gather(&mut input);
        let state: SavedState =
            serde_json::from_slice(&std::fs::read(fx.state.join(&named)).unwrap()).unwrap();
        assert_eq!(state.files.len(), 1);
        assert_eq!(state.files[0].offset, 2);
        assert!(!fx.state.join(format!("{named}.tmp")).exists());
        // A corrupt state file is replaced, not fatal.
        std::fs::write(fx.state.join(&named), b"{not json").unwrap();
        let mut input = fx.input();
        gather(&mut input);
    }

    #[test]
    fn long_lines_count_once_and_are_cut() {
        let mut fx = fixture();
        fx.config.max_line_bytes = 16;
        let app = fx.path("app.log");
        append(&app, "");
        let mut input = fx.input();
        let long = "y".repeat(3 * CHUNK_BYTES + 7);
        append(
            &app,
            &format!("ERROR long {long}\n{long} ERROR past the cut\nWARN é{long}\n"),
        );
        assert_eq!(
            gather(&mut input),
            rows(&[
                ("app.log", "error", 1, Some("ERROR long yyyyy")),
                ("app.log", "warn", 1, Some("WARN éyyyyyyyyy")),
            ])
        );
        // The cut falling inside a character drops the partial character.
        fx.config.max_line_bytes = 6;
        let mut input = fx.input();
        append(&app, "WARN é\n");
        assert_eq!(
            gather(&mut input)[&("app.log".to_owned(), "warn".to_owned())],
            (1, Some("WARN ".to_owned()))
        );
    }

    #[test]
    fn reads_are_capped_per_cycle() {
        let fx = fixture();
        let app = fx.path("app.log");
        append(&app, "");
        let mut input = fx.input();
        input.read_cap = 10;
        let text: String = (0..10).map(|i| format!("ERROR {i}\n")).collect();
        append(&app, &text);
        let mut counted = 0;
        for _ in 0..text.len() / 10 + 1 {
            counted += total(&gather(&mut input), "error");
        }
        assert_eq!(counted, 10);
        assert_eq!(total(&gather(&mut input), "error"), 0);
    }

    #[test]
    fn validation_names_the_key() {
        let mut fx = fixture();
        fx.config.files.push("relative/*.log".to_owned());
        fx.config.files.push("/var/log/[".to_owned());
        fx.config.rules.push(Rule {
            name: "bad".to_owned(),
            regex: "(".to_owned(),
        });
        fx.config.rules.push(Rule {
            name: "error".to_owned(),
            regex: "x".to_owned(),
        });
        fx.config.max_line_bytes = 0;
        fx.config.name = Some(String::new());
        let mut errors = ConfigErrors::new("test");
        fx.config
            .validate("collector.inputs.logmatch[0]", &mut errors);
        let keys: Vec<_> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "collector.inputs.logmatch[0].name",
                "collector.inputs.logmatch[0].files[1]",
                "collector.inputs.logmatch[0].files[2]",
                "collector.inputs.logmatch[0].rules[2].regex",
                "collector.inputs.logmatch[0].rules[3].name",
                "collector.inputs.logmatch[0].max_line_bytes",
            ]
        );
        assert!(errors.issues[3].message.starts_with("invalid regex"));
        let err = Input::new(&fx.config, &fx.state).unwrap_err().to_string();
        assert!(err.contains("rules[2].regex: invalid regex"), "{err}");

        let mut empty = fixture().config;
        empty.files.clear();
        empty.rules.clear();
        let mut errors = ConfigErrors::new("test");
        empty.validate("k", &mut errors);
        let keys: Vec<_> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["k.files", "k.rules"]);
    }

    #[test]
    fn config_from_toml_like_json() {
        let c: Config = serde_json::from_str(
            r#"{"files": ["/var/log/*.log"], "rules": [{"name": "e", "regex": "E"}]}"#,
        )
        .unwrap();
        assert_eq!(c.max_line_bytes, 4096);
        assert!(!c.from_beginning);
        assert!(
            serde_json::from_str::<Config>(r#"{"files": [], "rules": [], "colour": 1}"#).is_err()
        );
    }

    #[test]
    fn unreportable_paths_are_skipped() {
        let fx = fixture();
        append(&fx.path("bad\\ name.log"), "");
        append(&fx.path("ok.log"), "");
        let mut input = fx.input();
        append(&fx.path("bad\\ name.log"), "ERROR\n");
        append(&fx.path("ok.log"), "ERROR\n");
        let r = gather(&mut input);
        assert_eq!(r.len(), 2);
        assert_eq!(total(&r, "error"), 1);
    }
}
