//! A deterministic week of collector data, for tests of the web API.
//!
//! [`seed_week`] writes, for three hosts ([`HOSTS`]), one cycle every 10 s in the
//! collector's Telegraf schema:
//! - for the whole week: `cpu` `cpu-total` and `net` `eth0` (a gauge and a counter,
//!   enough for week-long charts, the point cap and the host list);
//! - for the last [`RECENT_POINTS`] cycles (6 h): `cpu` per core (cpu0, cpu1),
//!   `mem`, `swap`, `disk` (`/`, `/data`), `diskio` (sda, sdb; counters), `net` `lo`,
//!   `system` and `processes`.
//!
//! [`SILENT_HOST`] stops reporting an hour before the end. [`DETAIL_HOST`] also has a
//! last cycle of `procstat_top` and `listen` (and an older cycle with a rank and a
//! socket the last cycle no longer has), `logmatch` counts and lines over the last
//! half hour and a business measurement [`BUSINESS`]; the `alerts` measurement holds a
//! few alert transitions ([`ALERTS`]).
//!
//! Every value is a function of the host index and the cycle index exported here, so
//! tests compute what the API must answer rather than copy numbers. Counters grow by a
//! fixed amount per cycle, so their rates per second are exact; [`RESET_HOST`]'s
//! `eth0` `bytes_recv` drops to 0 at [`Seed::reset_ms`] (a reboot), to test that rates
//! stay non-negative.
//!
//! Speed: the bulk (~430,000 lines) is formatted as line protocol text and sent with
//! [`Client::write_lines`] by one writer per host, in 50,000-line requests; building
//! and encoding as many [`Point`]s costs several times more in a debug build. The few
//! detail points, whose strings need escaping, go through [`Client::write_points`].

use std::time::{Duration, Instant};

use hostscope_core::config::InfluxSettings;
use hostscope_core::influx::Client;
use hostscope_core::lineproto::Precision;
use hostscope_core::{Point, PointBuilder};

/// Seconds between points, as the collector's default interval.
pub const STEP_MS: i64 = 10_000;
/// Cycles over the week.
pub const WEEK_POINTS: i64 = 7 * 86_400_000 / STEP_MS;
/// Cycles at the end that have every measurement (6 h).
pub const RECENT_POINTS: i64 = 6 * 3_600_000 / STEP_MS;
/// The hosts, by index.
pub const HOSTS: [&str; 3] = ["web-1", "web-2", "db-1"];
/// The host that stops reporting an hour before the end.
pub const SILENT_HOST: usize = 2;
/// How long before the end the silent host stopped.
pub const SILENT_FOR_MS: i64 = 3_600_000;
/// The host with process, socket, log and business data.
pub const DETAIL_HOST: usize = 0;
/// The host whose `eth0` `bytes_recv` counter resets.
pub const RESET_HOST: usize = 1;
/// How long before the end the reset happens.
pub const RESET_BEFORE_MS: i64 = 3 * 3_600_000;
/// The business measurement of [`DETAIL_HOST`].
pub const BUSINESS: &str = "shop";
/// CPU tags, with the total.
pub const CPUS: [&str; 3] = ["cpu0", "cpu1", "cpu-total"];
/// Mount points.
pub const MOUNTS: [&str; 2] = ["/", "/data"];
/// Disk devices.
pub const DEVICES: [&str; 2] = ["sda", "sdb"];
/// Network interfaces.
pub const INTERFACES: [&str; 2] = ["eth0", "lo"];

/// What was written.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Time of the first point (ms).
    pub first_ms: i64,
    /// Time of the last point of the hosts that still report (ms, a multiple of 10 s).
    pub last_ms: i64,
    /// Time of the silent host's last point.
    pub silent_last_ms: i64,
    /// Time of the counter reset of [`RESET_HOST`]'s `eth0`.
    pub reset_ms: i64,
    /// Points written.
    pub points: usize,
    /// How long building and writing took.
    pub elapsed: Duration,
}

impl Seed {
    /// The time of point `i`.
    pub fn time(&self, i: i64) -> i64 {
        self.first_ms + i * STEP_MS
    }
    /// The index of the last point of `host`.
    pub fn last_index(&self, host: usize) -> i64 {
        let last = if host == SILENT_HOST {
            self.silent_last_ms
        } else {
            self.last_ms
        };
        (last - self.first_ms) / STEP_MS
    }
    /// The index of the first cycle with every measurement.
    pub fn recent_index(&self) -> i64 {
        WEEK_POINTS - RECENT_POINTS
    }
    /// The index of the first point after the reset.
    pub fn reset_index(&self) -> i64 {
        (self.reset_ms - self.first_ms) / STEP_MS
    }
}

// -- values -----------------------------------------------------------------------

/// `cpu` `usage_idle` of a CPU (index into [`CPUS`]) at point `i`: the used share is
/// `10·(host+1) + i mod 5` for the total, 5 more for cpu0 and 5 less for cpu1.
pub fn cpu_idle(host: usize, cpu: usize, i: i64) -> f64 {
    let used = 10.0 * (host as f64 + 1.0) + (i % 5) as f64;
    let used = match cpu {
        0 => used + 5.0,
        1 => used - 5.0,
        _ => used,
    };
    100.0 - used
}

/// `cpu` `usage_user` of the same: half the used share.
pub fn cpu_user(host: usize, cpu: usize, i: i64) -> f64 {
    (100.0 - cpu_idle(host, cpu, i)) / 2.0
}

/// `mem` `used_percent`.
pub fn mem_used_percent(host: usize, i: i64) -> f64 {
    40.0 + 10.0 * host as f64 + (i % 3) as f64
}

/// `disk` `used_percent` of a mount (index into [`MOUNTS`]); constant.
pub fn disk_used_percent(host: usize, mount: usize) -> f64 {
    [[81.5, 40.0], [30.0, 90.25], [55.0, 55.5]][host][mount]
}

/// `system` `load1`.
pub fn load1(host: usize, i: i64) -> f64 {
    0.5 * (host as f64 + 1.0) + 0.25 * (i % 4) as f64
}

/// `processes` `total`.
pub fn processes_total(host: usize) -> i64 {
    100 + host as i64
}

/// Bytes received per point on an interface: eth0 `1000·(host+1)`, lo 200.
pub fn net_recv_step(host: usize, iface: usize) -> i64 {
    if iface == 0 {
        1000 * (host as i64 + 1)
    } else {
        200
    }
}

/// Bytes sent per point: eth0 500, lo 200.
pub fn net_sent_step(_host: usize, iface: usize) -> i64 {
    if iface == 0 {
        500
    } else {
        200
    }
}

/// All interfaces' bytes received plus sent, per second.
pub fn net_bytes_per_s(host: usize) -> f64 {
    (0..INTERFACES.len())
        .map(|n| (net_recv_step(host, n) + net_sent_step(host, n)) as f64)
        .sum::<f64>()
        / (STEP_MS as f64 / 1000.0)
}

/// `diskio` `reads` per point: sda `5·(host+1)`, sdb 2.
pub fn diskio_reads_step(host: usize, dev: usize) -> i64 {
    if dev == 0 {
        5 * (host as i64 + 1)
    } else {
        2
    }
}

/// `diskio` `write_bytes` per point: sda 40960, sdb 8192.
pub fn diskio_write_bytes_step(_host: usize, dev: usize) -> i64 {
    if dev == 0 {
        40_960
    } else {
        8192
    }
}

/// `swap` `out` per point (bytes).
pub const SWAP_OUT_STEP: i64 = 1024;

/// Where every counter starts: far from zero, as on a host up for a while.
const COUNTER_BASE: i64 = 1_000_000_000;

/// The counter value at point `i` of a counter growing by `step`.
fn counter(i: i64, step: i64) -> i64 {
    COUNTER_BASE + i * step
}

// -- the last cycle of the detail host ------------------------------------------------

/// One `procstat_top` point of the last cycle.
#[derive(Debug, Clone, Copy)]
pub struct Top {
    /// Tag `by`: `cpu` or `memory`.
    pub by: &'static str,
    /// Tag `rank`, from 1.
    pub rank: i64,
    /// Fields, as the collector writes them.
    pub pid: i64,
    /// `comm`.
    pub name: &'static str,
    /// User name (or uid).
    pub user: &'static str,
    /// Arguments joined by spaces.
    pub cmdline: &'static str,
    /// Percent of one core.
    pub cpu_usage: f64,
    /// Bytes.
    pub memory_rss: i64,
}

/// `procstat_top` of the last cycle (quotes, backslashes and Unicode included).
pub const TOP: [Top; 6] = [
    Top {
        by: "cpu",
        rank: 1,
        pid: 4242,
        name: "nginx",
        user: "www-data",
        cmdline: "nginx: worker process \"main\", ünïcode ✓",
        cpu_usage: 87.5,
        memory_rss: 52_428_800,
    },
    Top {
        by: "cpu",
        rank: 2,
        pid: 1001,
        name: "postgres",
        user: "postgres",
        cmdline: "postgres -D /var/lib/postgresql",
        cpu_usage: 12.25,
        memory_rss: 209_715_200,
    },
    Top {
        by: "cpu",
        rank: 3,
        pid: 77,
        name: "back\\slash",
        user: "root",
        cmdline: "C:\\path with spaces\\x.exe --flag='quoted'",
        cpu_usage: 1.0,
        memory_rss: 4096,
    },
    Top {
        by: "memory",
        rank: 1,
        pid: 1001,
        name: "postgres",
        user: "postgres",
        cmdline: "postgres -D /var/lib/postgresql",
        cpu_usage: 12.25,
        memory_rss: 209_715_200,
    },
    Top {
        by: "memory",
        rank: 2,
        pid: 4242,
        name: "nginx",
        user: "www-data",
        cmdline: "nginx: worker process \"main\", ünïcode ✓",
        cpu_usage: 87.5,
        memory_rss: 52_428_800,
    },
    Top {
        by: "memory",
        rank: 3,
        pid: 9,
        name: "java",
        user: "1000",
        cmdline: "java -Xmx4g -jar app.jar",
        cpu_usage: 0.5,
        memory_rss: 10_485_760,
    },
];

/// `listen` of the last cycle: `(proto, address, port, pid, process)`.
pub const LISTEN: [(&str, &str, i64, i64, &str); 3] = [
    ("tcp", "0.0.0.0", 22, 812, "sshd"),
    ("tcp6", "::", 80, 4242, "nginx"),
    ("udp", "127.0.0.53", 53, 0, ""),
];

/// The log file of the detail host.
pub const LOG_FILE: &str = "/var/log/app/app.log";
/// `logmatch` points per rule: one per cycle over the last half hour.
pub const LOG_CYCLES: i64 = 180;
/// The `error` rule matches one line every 6th cycle: 30 lines in the half hour.
pub const LOG_ERRORS: i64 = LOG_CYCLES / 6;
/// The last matching line of the `error` rule.
pub fn log_line(n: i64) -> String {
    format!("2024-01-01 ERROR request {n} failed: \"timeout\" (ü)")
}

/// `shop` fields: `pending` (integer), `revenue` (float), `status` (text).
pub fn shop_pending(i: i64) -> i64 {
    i % 7
}

/// Alert transitions in the `alerts` measurement, relative to the end:
/// `(rule, host, severity, ms before last_ms, state)`.
pub const ALERTS: [(&str, &str, &str, i64, &str); 5] = [
    ("disk_full", "web-2", "warning", 3 * 3_600_000, "firing"),
    ("disk_full", "web-2", "warning", 30 * 60_000, "resolved"),
    ("cpu_high", "web-1", "critical", 50 * 60_000, "firing"),
    ("cpu_high", "web-1", "critical", 40 * 60_000, "resolved"),
    ("cpu_high", "web-1", "critical", 10 * 60_000, "firing"),
];

// -- writing ------------------------------------------------------------------------

fn ns(ms: i64) -> i64 {
    ms * 1_000_000
}

/// Appends the line protocol of `host`'s cycle `i` (ms timestamps). Tag values here
/// need no escaping.
fn cycle(seed: &Seed, host: usize, i: i64, out: &mut String) {
    use std::fmt::Write as _;
    let name = HOSTS[host];
    let t = seed.time(i);
    let cpu = CPUS.len() - 1;
    let _ = writeln!(
        out,
        "cpu,cpu=cpu-total,host={name} usage_idle={},usage_user={} {t}",
        cpu_idle(host, cpu, i),
        cpu_user(host, cpu, i)
    );
    let eth0_recv = if host == RESET_HOST && i >= seed.reset_index() {
        (i - seed.reset_index()) * net_recv_step(host, 0)
    } else {
        counter(i, net_recv_step(host, 0))
    };
    let _ = writeln!(
        out,
        "net,host={name},interface=eth0 bytes_recv={eth0_recv}i,bytes_sent={}i {t}",
        counter(i, net_sent_step(host, 0))
    );
    if i < seed.recent_index() {
        return;
    }
    for (c, cpu) in CPUS.iter().enumerate().take(2) {
        let _ = writeln!(
            out,
            "cpu,cpu={cpu},host={name} usage_idle={},usage_user={} {t}",
            cpu_idle(host, c, i),
            cpu_user(host, c, i)
        );
    }
    let _ = writeln!(
        out,
        "net,host={name},interface=lo bytes_recv={}i,bytes_sent={}i {t}",
        counter(i, net_recv_step(host, 1)),
        counter(i, net_sent_step(host, 1))
    );
    let _ = writeln!(
        out,
        "mem,host={name} used_percent={} {t}",
        mem_used_percent(host, i)
    );
    let _ = writeln!(
        out,
        "swap,host={name} used_percent=1.5,in={}i,out={}i {t}",
        counter(i, 0),
        counter(i, SWAP_OUT_STEP)
    );
    for (m, mount) in MOUNTS.iter().enumerate() {
        let _ = writeln!(
            out,
            "disk,device={},host={name},path={mount} used_percent={} {t}",
            DEVICES[m],
            disk_used_percent(host, m)
        );
    }
    for (d, dev) in DEVICES.iter().enumerate() {
        let _ = writeln!(
            out,
            "diskio,host={name},name={dev} reads={}i,write_bytes={}i {t}",
            counter(i, diskio_reads_step(host, d)),
            counter(i, diskio_write_bytes_step(host, d))
        );
    }
    let _ = writeln!(out, "system,host={name} load1={} {t}", load1(host, i));
    let _ = writeln!(
        out,
        "processes,host={name} total={}i {t}",
        processes_total(host)
    );
}

/// The detail host's process, socket, log, business and alert points.
fn details(seed: &Seed, out: &mut Vec<Point>) {
    let host = HOSTS[DETAIL_HOST];
    let last = seed.last_ms;
    let build = |b: PointBuilder, ms: i64| {
        b.tag("host", host)
            .timestamp(ns(ms))
            .build()
            .expect("valid point")
    };
    // An older cycle with a fourth rank and a socket that are gone since.
    let old = last - 300_000;
    for (by, rank) in [("cpu", 4), ("memory", 4)] {
        out.push(build(
            Point::builder("procstat_top")
                .tag("by", by)
                .tag("rank", rank.to_string())
                .field("pid", 5i64)
                .field("name", "gone")
                .field("user", "root")
                .field("cmdline", "gone --old")
                .field("cpu_usage", 0.0)
                .field("memory_rss", 1i64),
            old,
        ));
    }
    out.push(build(
        Point::builder("listen")
            .tag("proto", "tcp")
            .tag("address", "0.0.0.0")
            .tag("port", "8080")
            .field("pid", 5i64)
            .field("process", "gone"),
        old,
    ));
    for t in TOP {
        out.push(build(
            Point::builder("procstat_top")
                .tag("by", t.by)
                .tag("rank", t.rank.to_string())
                .field("pid", t.pid)
                .field("name", t.name)
                .field("user", t.user)
                .field("cmdline", t.cmdline)
                .field("cpu_usage", t.cpu_usage)
                .field("memory_rss", t.memory_rss),
            last,
        ));
    }
    for (proto, address, port, pid, process) in LISTEN {
        out.push(build(
            Point::builder("listen")
                .tag("proto", proto)
                .tag("address", address)
                .tag("port", port.to_string())
                .field("pid", pid)
                .field("process", process),
            last,
        ));
    }
    for c in 0..LOG_CYCLES {
        let ms = last - (LOG_CYCLES - 1 - c) * STEP_MS;
        let matched = c % 6 == 5;
        let mut error = Point::builder("logmatch")
            .tag("file", LOG_FILE)
            .tag("rule", "error")
            .field("count", i64::from(matched));
        if matched {
            error = error.field("last_line", log_line(c));
        }
        out.push(build(error, ms));
        out.push(build(
            Point::builder("logmatch")
                .tag("file", LOG_FILE)
                .tag("rule", "warn")
                .field("count", 0i64),
            ms,
        ));
        out.push(build(
            Point::builder(BUSINESS)
                .tag("url", "http://127.0.0.1/metrics")
                .field("pending", shop_pending(c))
                .field("revenue", c as f64 * 1.5)
                .field("status", "open"),
            ms,
        ));
    }
    for (rule, host, severity, before, state) in ALERTS {
        out.push(
            Point::builder("alerts")
                .tag("rule", rule)
                .tag("host", host)
                .tag("severity", severity)
                .field("state", state)
                .timestamp(ns(last - before))
                .build()
                .expect("valid point"),
        );
    }
}

/// Lines per write request.
const CHUNK_CYCLES: i64 = 20_000;

/// Writes the week ending at `end_ms` (rounded down to 10 s) to the database of
/// `settings` (created if missing), through a client with big batches and no gzip.
/// Panics if anything is refused.
pub async fn seed_week(settings: &InfluxSettings, end_ms: i64) -> Seed {
    let started = Instant::now();
    let mut settings = settings.clone();
    settings.gzip = false;
    settings.batch_max_points = 50_000;
    settings.batch_max_bytes = 8 << 20;
    let client = &Client::new(settings).expect("seed client");
    client.ensure_database().await.expect("seed database");
    let last_ms = end_ms - end_ms.rem_euclid(STEP_MS);
    let mut seed = Seed {
        first_ms: last_ms - (WEEK_POINTS - 1) * STEP_MS,
        last_ms,
        silent_last_ms: last_ms - SILENT_FOR_MS,
        reset_ms: last_ms - RESET_BEFORE_MS,
        points: 0,
        elapsed: Duration::ZERO,
    };
    let mut tasks = Vec::new();
    for host in 0..HOSTS.len() {
        let (client, s) = (client.clone(), seed.clone());
        tasks.push(tokio::spawn(async move {
            let end = s.last_index(host) + 1;
            let mut written = 0;
            let mut from = 0;
            while from < end {
                let to = (from + CHUNK_CYCLES).min(end);
                let mut text = String::with_capacity(((to - from) * 200) as usize);
                for i in from..to {
                    cycle(&s, host, i, &mut text);
                }
                let report = client
                    .write_lines(&text, Precision::Milliseconds)
                    .await
                    .expect("seed write");
                assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
                written += report.written;
                from = to;
            }
            written
        }));
    }
    let mut extra = Vec::new();
    details(&seed, &mut extra);
    let report = client.write_points(&extra).await.expect("seed write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    seed.points = report.written;
    for t in tasks {
        seed.points += t.await.expect("seed task");
    }
    seed.elapsed = started.elapsed();
    seed
}
