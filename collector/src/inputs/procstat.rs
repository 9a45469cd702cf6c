//! `[[collector.inputs.procstat]]`: the resource use of the processes one entry selects.
//!
//! Each entry selects processes by exactly one matcher and adds one aggregated point per
//! cycle to measurement `procstat`, tagged with the matcher's key and value
//! (`pattern=…`, `process_name=…`, `pidfile=…` or `systemd_unit=…`, as Telegraf tags
//! its `procstat` points). Fields: `cpu_usage` (float, sum over the matched processes,
//! percent of one core; processes first seen this cycle count 0), `memory_rss`
//! (integer, sum, bytes), `num_threads` (sum), `pid_count` and `running` (1 when at
//! least one process matched, else 0; the point is written either way, so a process
//! that died raises an alert instead of falling silent). Zombies are not counted.
//!
//! Unlike Telegraf (one `procstat` point per process plus a `procstat_lookup` point
//! with `pid_count` and `running`), one point per entry carries everything: the series
//! count does not grow with the number of worker processes.

use std::path::PathBuf;

use anyhow::anyhow;
use hostscope_core::config::ConfigErrors;
use hostscope_core::Point;
use regex::Regex;
use serde::Deserialize;

use super::procscan::{cgroup_in_unit, ProcessInfo, ProcessTable, Scanner};
use super::{Accumulator, HostPaths, InputError};

/// The kernel keeps at most this many bytes of a process name (`TASK_COMM_LEN - 1`).
const COMM_MAX: usize = 15;

/// One `[[collector.inputs.procstat]]` entry. Set exactly one matcher.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Regular expression searched in each process's command line (arguments joined by
    /// spaces; the process name when the command line is empty), like `pgrep -f`.
    pub pattern: Option<String>,
    /// Exact process name, as `ps -o comm` shows it. The kernel keeps 15 bytes of a
    /// name; a longer name matches processes whose first 15 bytes agree and whose
    /// program (`argv[0]`'s file name) is the whole name. Telegraf's `exe` is accepted
    /// as another name for this key.
    #[serde(alias = "exe")]
    pub process_name: Option<String>,
    /// Absolute path of a file holding the process's pid (read every cycle; a missing
    /// file or a pid that no longer runs means not running). Telegraf's `pid_file` is
    /// accepted as another name for this key.
    #[serde(alias = "pid_file")]
    pub pidfile: Option<String>,
    /// systemd unit, e.g. `nginx.service` (`nginx` means `nginx.service`): every
    /// process whose cgroup lies in that unit's subtree.
    pub systemd_unit: Option<String>,
}

impl Config {
    /// The matchers that are set, as (key, value).
    fn matchers(&self) -> Vec<(&'static str, &str)> {
        [
            ("pattern", &self.pattern),
            ("process_name", &self.process_name),
            ("pidfile", &self.pidfile),
            ("systemd_unit", &self.systemd_unit),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    /// Check the entry; `key` is its dotted path, e.g. `collector.inputs.procstat[0]`.
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        let matchers = self.matchers();
        match matchers.as_slice() {
            [] => errors.push(
                key,
                "set one of pattern, process_name (or exe), pidfile or systemd_unit",
            ),
            [(name, value)] => validate_matcher(key, name, value, errors),
            several => {
                let names: Vec<&str> = several.iter().map(|(k, _)| *k).collect();
                errors.push(
                    key,
                    format!(
                        "set only one of pattern, process_name (or exe), pidfile or systemd_unit; found {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }
}

fn validate_matcher(key: &str, name: &str, value: &str, errors: &mut ConfigErrors) {
    let field_key = format!("{key}.{name}");
    if value.trim().is_empty() {
        errors.push(field_key, "must not be empty");
        return;
    }
    if let Err(e) = Point::builder("procstat")
        .tag(name, value)
        .field("running", 0i64)
        .build()
    {
        errors.push(
            &field_key,
            format!("cannot be written as the `{name}` tag: {e}"),
        );
    }
    match name {
        "pattern" => {
            if let Err(e) = Regex::new(value) {
                errors.push(field_key, format!("invalid regular expression: {e}"));
            }
        }
        "pidfile" if !value.starts_with('/') => {
            errors.push(field_key, "must be an absolute path");
        }
        "systemd_unit" if value.contains('/') => {
            errors.push(
                field_key,
                "must be a unit name like nginx.service, not a path",
            );
        }
        _ => {}
    }
}

/// How an entry selects processes.
#[derive(Debug)]
enum Matcher {
    Pattern(Regex),
    Name(String),
    Pidfile(PathBuf),
    Unit(String),
    /// A configuration that did not pass validation: every cycle fails with this.
    Invalid(String),
}

/// Sums over the matched processes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sums {
    cpu_usage: f64,
    memory_rss: i64,
    num_threads: i64,
    pid_count: i64,
}

impl Sums {
    fn add(&mut self, p: &ProcessInfo) {
        self.cpu_usage += p.cpu_usage.unwrap_or(0.0);
        self.memory_rss = self.memory_rss.saturating_add(p.rss_bytes);
        self.num_threads = self.num_threads.saturating_add(p.num_threads);
        self.pid_count += 1;
    }
}

/// One `procstat` entry.
#[derive(Debug)]
pub struct Input {
    tag_key: &'static str,
    tag_value: String,
    matcher: Matcher,
    /// The last pidfile problem logged, so it is logged once, not every cycle.
    last_problem: Option<String>,
}

impl Input {
    /// Build the entry. A configuration that fails [`Config::validate`] yields an input
    /// whose every `gather` fails with the reason.
    pub fn new(config: &Config, paths: &HostPaths) -> Self {
        let matchers = config.matchers();
        let (tag_key, tag_value, matcher) = match matchers.as_slice() {
            [(key, value)] => {
                let matcher = match *key {
                    "pattern" => match Regex::new(value) {
                        Ok(re) => Matcher::Pattern(re),
                        Err(e) => Matcher::Invalid(format!("invalid pattern: {e}")),
                    },
                    "process_name" => Matcher::Name((*value).to_owned()),
                    "pidfile" => Matcher::Pidfile(host_path(paths, value)),
                    _ => Matcher::Unit(if value.contains('.') {
                        (*value).to_owned()
                    } else {
                        format!("{value}.service")
                    }),
                };
                (*key, (*value).to_owned(), matcher)
            }
            _ => (
                "pattern",
                String::new(),
                Matcher::Invalid(
                    "set exactly one of pattern, process_name, pidfile or systemd_unit".into(),
                ),
            ),
        };
        Input {
            tag_key,
            tag_value,
            matcher,
            last_problem: None,
        }
    }

    /// Add this entry's point for the cycle.
    pub fn gather(
        &mut self,
        scanner: &mut Scanner,
        table: &ProcessTable,
        acc: &mut Accumulator,
    ) -> Result<(), InputError> {
        let mut sums = Sums::default();
        let live = table.iter().filter(|p| !matches!(p.state, 'Z' | 'X' | 'x'));
        match &self.matcher {
            Matcher::Pattern(re) => {
                for p in live {
                    let cmdline = scanner.cmdline(p);
                    let haystack = if cmdline.is_empty() {
                        &*p.comm
                    } else {
                        cmdline.as_str()
                    };
                    if re.is_match(haystack) {
                        sums.add(p);
                    }
                }
            }
            Matcher::Name(name) => {
                for p in live {
                    if name_matches(scanner, p, name) {
                        sums.add(p);
                    }
                }
            }
            Matcher::Unit(unit) => {
                for p in live.filter(|p| !p.kernel_thread) {
                    if scanner
                        .cgroup(p)
                        .is_some_and(|cg| cgroup_in_unit(&cg, unit))
                    {
                        sums.add(p);
                    }
                }
            }
            Matcher::Pidfile(path) => match read_pidfile(path) {
                Ok(Some(pid)) => {
                    self.last_problem = None;
                    if let Some(p) = table
                        .get(pid)
                        .filter(|p| !matches!(p.state, 'Z' | 'X' | 'x'))
                    {
                        sums.add(p);
                    }
                }
                // No file: the daemon is not running (most remove it on exit).
                Ok(None) => self.last_problem = None,
                Err(problem) => {
                    if self.last_problem.as_deref() != Some(problem.as_str()) {
                        tracing::warn!(message = "procstat: cannot use pidfile", pidfile = %path.display(), %problem);
                        self.last_problem = Some(problem);
                    }
                }
            },
            Matcher::Invalid(reason) => {
                return Err(anyhow!(
                    "procstat {}={:?}: {reason}",
                    self.tag_key,
                    self.tag_value
                ))
            }
        }
        acc.add(
            Point::builder("procstat")
                .tag(self.tag_key, &self.tag_value)
                .field("cpu_usage", sums.cpu_usage)
                .field("memory_rss", sums.memory_rss)
                .field("num_threads", sums.num_threads)
                .field("pid_count", sums.pid_count)
                .field("running", i64::from(sums.pid_count > 0)),
        );
        Ok(())
    }
}

/// A host path as this process sees it (under `mount_prefix` in a container).
fn host_path(paths: &HostPaths, path: &str) -> PathBuf {
    if paths.mount_prefix.as_os_str().is_empty() {
        PathBuf::from(path)
    } else {
        paths.mount_prefix.join(path.trim_start_matches('/'))
    }
}

/// `Ok(None)` when the file does not exist; an error text for anything else wrong.
fn read_pidfile(path: &std::path::Path) -> Result<Option<i32>, String> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let first = text
        .split(|b| b.is_ascii_whitespace())
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    std::str::from_utf8(first)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .map(Some)
        .ok_or_else(|| "the file does not start with a pid".to_owned())
}

/// `comm` equals `name`; for names the kernel cut at 15 bytes, the program file name
/// (basename of `argv[0]`) must equal the whole name.
fn name_matches(scanner: &mut Scanner, p: &ProcessInfo, name: &str) -> bool {
    if name.len() <= COMM_MAX {
        return *p.comm == *name;
    }
    if Some(p.comm.as_bytes()) != name.as_bytes().get(..COMM_MAX) {
        return false;
    }
    let cmdline = scanner.cmdline(p);
    let argv0 = cmdline.argv0();
    argv0.rsplit('/').next() == Some(name)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hostscope_core::point::FieldValue;

    use super::super::procscan::testing::{Fake, FakeProc};
    use super::super::test_accumulator;
    use super::*;

    /// Three nginx processes (master + 2 workers), a zombie nginx, sshd, a kernel
    /// thread, and a long-named daemon; two scans 10 s apart.
    fn world() -> (FakeProc, Scanner, ProcessTable) {
        let fake = FakeProc::new();
        let procs = [
            (
                100,
                "nginx",
                'S',
                ["/usr/sbin/nginx", "-g", "daemon off;"].as_slice(),
                "/system.slice/nginx.service",
            ),
            (
                101,
                "nginx",
                'S',
                &["nginx: worker process"],
                "/system.slice/nginx.service",
            ),
            (
                102,
                "nginx",
                'R',
                &["nginx: worker process"],
                "/system.slice/nginx.service/sub",
            ),
            (103, "nginx", 'Z', &[], "/system.slice/nginx.service"),
            (
                200,
                "sshd",
                'S',
                &["sshd: /usr/sbin/sshd -D"],
                "/system.slice/ssh.service",
            ),
            (
                300,
                "systemd-resolve",
                'S',
                &["/lib/systemd/systemd-resolved"],
                "/system.slice/systemd-resolved.service",
            ),
        ];
        for (pid, comm, state, args, cgroup) in procs {
            fake.put(&Fake::new(pid, comm).state(state).threads(2).rss_pages(100));
            fake.put_cmdline(pid, args);
            fake.put_cgroup(pid, cgroup);
        }
        fake.put(&Fake::new(5, "kworker/nginx").kernel_thread());
        let mut scanner = Scanner::with_units(&fake.paths(), 100, 4096);
        let t0 = Instant::now();
        scanner.scan_at(t0).unwrap();
        fake.put(
            &Fake::new(101, "nginx")
                .threads(2)
                .rss_pages(100)
                .ticks(100, 0),
        );
        fake.put(
            &Fake::new(102, "nginx")
                .state('R')
                .threads(2)
                .rss_pages(100)
                .ticks(250, 50),
        );
        let table = scanner.scan_at(t0 + Duration::from_secs(10)).unwrap();
        (fake, scanner, table)
    }

    fn gather(
        config: Config,
        fake: &FakeProc,
        scanner: &mut Scanner,
        table: &ProcessTable,
    ) -> Point {
        let mut errors = ConfigErrors::new("test");
        config.validate("collector.inputs.procstat[0]", &mut errors);
        assert!(errors.is_empty(), "{errors}");
        let mut input = Input::new(&config, &fake.paths());
        let mut acc = test_accumulator();
        input.gather(scanner, table, &mut acc).unwrap();
        let mut points = acc.into_points();
        assert_eq!(points.len(), 1);
        points.remove(0)
    }

    /// (tag, cpu_usage, memory_rss, num_threads, pid_count, running)
    fn summary(p: &Point) -> (String, f64, i64, i64, i64, i64) {
        assert_eq!(p.measurement(), "procstat");
        let int = |k: &str| match p.field(k) {
            Some(FieldValue::Integer(i)) => *i,
            other => panic!("{k}: {other:?}"),
        };
        let Some(FieldValue::Float(cpu)) = p.field("cpu_usage") else {
            panic!("cpu_usage")
        };
        let tags: Vec<String> = p
            .tags()
            .iter()
            .filter(|(k, _)| *k != "host")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        (
            tags.join(","),
            *cpu,
            int("memory_rss"),
            int("num_threads"),
            int("pid_count"),
            int("running"),
        )
    }

    fn parse(toml_like_json: &str) -> Config {
        serde_json::from_str(toml_like_json).unwrap()
    }

    #[test]
    fn matches_by_pattern() {
        let (fake, mut scanner, table) = world();
        let p = gather(
            parse(r#"{"pattern": "nginx"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        // 100, 101, 102 (not the zombie); the kernel thread's name contains nginx too
        // (pgrep -f falls back to the name when there is no command line).
        assert_eq!(
            summary(&p),
            ("pattern=nginx".into(), 40.0, 4 * 100 * 4096, 7, 4, 1)
        );
        let p = gather(
            parse(r#"{"pattern": "^nginx: worker"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(
            summary(&p),
            ("pattern=^nginx: worker".into(), 40.0, 2 * 409_600, 4, 2, 1)
        );
    }

    #[test]
    fn matches_by_process_name_and_exe() {
        let (fake, mut scanner, table) = world();
        let p = gather(
            parse(r#"{"process_name": "nginx"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(
            summary(&p),
            ("process_name=nginx".into(), 40.0, 3 * 409_600, 6, 3, 1)
        );
        let p = gather(parse(r#"{"exe": "sshd"}"#), &fake, &mut scanner, &table);
        assert_eq!(
            summary(&p),
            ("process_name=sshd".into(), 0.0, 409_600, 2, 1, 1)
        );
        // Longer than the kernel keeps: argv[0] decides.
        let p = gather(
            parse(r#"{"exe": "systemd-resolved"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(summary(&p).4, 1);
        let p = gather(
            parse(r#"{"exe": "systemd-resolvedX"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(summary(&p).4, 0);
        let p = gather(
            parse(r#"{"process_name": "ngin"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(summary(&p).4, 0);
    }

    #[test]
    fn matches_by_systemd_unit() {
        let (fake, mut scanner, table) = world();
        let p = gather(
            parse(r#"{"systemd_unit": "nginx.service"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(
            summary(&p),
            (
                "systemd_unit=nginx.service".into(),
                40.0,
                3 * 409_600,
                6,
                3,
                1
            )
        );
        let p = gather(
            parse(r#"{"systemd_unit": "ssh"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(
            summary(&p),
            ("systemd_unit=ssh".into(), 0.0, 409_600, 2, 1, 1)
        );
        let reads = scanner.detail_reads();
        gather(
            parse(r#"{"systemd_unit": "ssh"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(scanner.detail_reads(), reads, "cgroups are cached");
    }

    #[test]
    fn matches_by_pidfile() {
        let (fake, mut scanner, table) = world();
        let dir = fake.dir.path().join("host/run");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("nginx.pid"), "102\n").unwrap();
        std::fs::write(dir.join("stale.pid"), "4000\n").unwrap();
        std::fs::write(dir.join("zombie.pid"), "103").unwrap();
        std::fs::write(dir.join("garbage.pid"), "pid: twelve").unwrap();
        let p = gather(
            parse(r#"{"pidfile": "/run/nginx.pid"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(
            summary(&p),
            ("pidfile=/run/nginx.pid".into(), 30.0, 409_600, 2, 1, 1)
        );
        for (file, tag) in [
            (r#"{"pidfile": "/run/stale.pid"}"#, "pidfile=/run/stale.pid"),
            (
                r#"{"pid_file": "/run/zombie.pid"}"#,
                "pidfile=/run/zombie.pid",
            ),
            (
                r#"{"pidfile": "/run/garbage.pid"}"#,
                "pidfile=/run/garbage.pid",
            ),
            (
                r#"{"pidfile": "/run/missing.pid"}"#,
                "pidfile=/run/missing.pid",
            ),
        ] {
            let p = gather(parse(file), &fake, &mut scanner, &table);
            assert_eq!(summary(&p), (tag.into(), 0.0, 0, 0, 0, 0), "{file}");
        }
    }

    #[test]
    fn no_match_still_reports() {
        let (fake, mut scanner, table) = world();
        let p = gather(
            parse(r#"{"pattern": "postgres"}"#),
            &fake,
            &mut scanner,
            &table,
        );
        assert_eq!(summary(&p), ("pattern=postgres".into(), 0.0, 0, 0, 0, 0));
    }

    #[test]
    fn config_errors_name_the_key() {
        let check = |json: &str, expected: &[(&str, &str)]| {
            let config: Config = serde_json::from_str(json).unwrap();
            let mut errors = ConfigErrors::new("test");
            config.validate("collector.inputs.procstat[2]", &mut errors);
            let got: Vec<(String, String)> = errors
                .issues
                .iter()
                .map(|i| (i.key.clone(), i.message.clone()))
                .collect();
            assert_eq!(got.len(), expected.len(), "{json}: {got:?}");
            for ((key, msg), (want_key, want_msg)) in got.iter().zip(expected) {
                assert_eq!(key, want_key, "{json}");
                assert!(msg.contains(want_msg), "{json}: {msg}");
            }
        };
        check(
            "{}",
            &[(
                "collector.inputs.procstat[2]",
                "set one of pattern, process_name",
            )],
        );
        check(
            r#"{"pattern": "x", "pidfile": "/run/x.pid"}"#,
            &[("collector.inputs.procstat[2]", "found pattern, pidfile")],
        );
        check(
            r#"{"pattern": "nginx("}"#,
            &[(
                "collector.inputs.procstat[2].pattern",
                "invalid regular expression",
            )],
        );
        check(
            r#"{"pidfile": "run/x.pid"}"#,
            &[("collector.inputs.procstat[2].pidfile", "absolute path")],
        );
        check(
            r#"{"process_name": " "}"#,
            &[(
                "collector.inputs.procstat[2].process_name",
                "must not be empty",
            )],
        );
        check(
            r#"{"pattern": "a\\ b"}"#,
            &[(
                "collector.inputs.procstat[2].pattern",
                "cannot be written as the `pattern` tag",
            )],
        );
        check(
            r#"{"systemd_unit": "/system.slice/x"}"#,
            &[("collector.inputs.procstat[2].systemd_unit", "unit name")],
        );
        check(r#"{"exe": "nginx"}"#, &[]);
        assert!(serde_json::from_str::<Config>(r#"{"user": "x"}"#).is_err());
    }

    #[test]
    fn invalid_config_fails_every_cycle() {
        let (fake, mut scanner, table) = world();
        let mut input = Input::new(&parse(r#"{"pattern": "("}"#), &fake.paths());
        let mut acc = test_accumulator();
        let err = input.gather(&mut scanner, &table, &mut acc).unwrap_err();
        assert!(err.to_string().contains("invalid pattern"), "{err}");
        assert!(acc.points().is_empty());
    }
}
