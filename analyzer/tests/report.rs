//! The report over seeded data in a real InfluxDB 1.x: figures checked against values
//! computed here, then rendered (every image referenced by `cid:` and a valid PNG)
//! and stored.
//!
//! Seed: a day of 1-minute cycles for `alpha` (disk `/` growing 1 MB a minute) and
//! `beta` (silent for an hour; its `/` shrinking), alert transitions in the
//! `alerts` measurement (one that fired before the day, one still firing at its end,
//! one for a host with no metrics, one long before the day), and an hour of data
//! after the day that must not count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hostscope_analyzer::report::{
    self, chart, gather, html::RenderOptions, store::ReportStore, Language, UtcOffset,
};
use hostscope_core::influx::TimeRange;
use hostscope_core::Point;
use hostscope_tests::influxd::TestInflux;

const MIN: i64 = 60_000;
const CYCLES: i64 = 1440;
const SILENT: std::ops::Range<i64> = 600..660;
const GB: f64 = 1e9;

fn alpha_cpu(i: i64) -> f64 {
    10.0 + (i % 50) as f64
}
fn alpha_mem(i: i64) -> f64 {
    40.0 + (i % 20) as f64 * 0.5
}
fn alpha_root_used(i: i64) -> f64 {
    50.0 * GB + i as f64 * 1e6
}
const ROOT_TOTAL: f64 = 100.0 * GB;
const RESERVED: f64 = 5.0 * GB;
fn beta_cpu(i: i64) -> f64 {
    5.0 + (i % 7) as f64
}
fn beta_root_used(i: i64) -> f64 {
    30.0 * GB - i as f64 * 1e5
}
fn beta_up(i: i64) -> bool {
    !SILENT.contains(&i)
}

fn ns(ms: i64) -> i64 {
    ms * 1_000_000
}

fn cycle(
    points: &mut Vec<Point>,
    host: &str,
    t: i64,
    cpu: f64,
    mem: f64,
    disks: &[(&str, f64, f64, f64)],
) {
    points.push(
        Point::builder("cpu")
            .tag("host", host)
            .tag("cpu", "cpu-total")
            .field("usage_idle", 100.0 - cpu)
            .field("usage_user", cpu)
            .timestamp(ns(t))
            .build()
            .unwrap(),
    );
    // A per-core series that must not count as the total.
    points.push(
        Point::builder("cpu")
            .tag("host", host)
            .tag("cpu", "cpu0")
            .field("usage_idle", 0.0)
            .timestamp(ns(t))
            .build()
            .unwrap(),
    );
    points.push(
        Point::builder("mem")
            .tag("host", host)
            .field("used_percent", mem)
            .timestamp(ns(t))
            .build()
            .unwrap(),
    );
    for (path, used, total, free) in disks {
        points.push(
            Point::builder("disk")
                .tag("host", host)
                .tag("path", *path)
                .tag("device", "sda1")
                .tag("fstype", "ext4")
                .field("used", *used as i64)
                .field("total", *total as i64)
                .field("free", *free as i64)
                .field("used_percent", used / (used + free) * 100.0)
                .timestamp(ns(t))
                .build()
                .unwrap(),
        );
    }
}

fn alert(
    rule: &str,
    host: &str,
    severity: &str,
    t: i64,
    state: &str,
    value: f64,
    reason: &str,
) -> Point {
    Point::builder("alerts")
        .tag("rule", rule)
        .tag("host", host)
        .tag("severity", severity)
        .field("state", state)
        .field("value", value)
        .field("reason", reason)
        .timestamp(ns(t))
        .build()
        .unwrap()
}

fn seed(start: i64) -> Vec<Point> {
    let mut points = Vec::new();
    // The day, and an hour after it (which the report must not read).
    for i in 0..CYCLES + 60 {
        let t = start + i * MIN;
        let root = alpha_root_used(i);
        cycle(
            &mut points,
            "alpha",
            t,
            alpha_cpu(i),
            alpha_mem(i),
            &[
                ("/", root, ROOT_TOTAL, ROOT_TOTAL - root - RESERVED),
                ("/data", 20.0 * GB, 40.0 * GB, 20.0 * GB),
            ],
        );
        if beta_up(i) {
            let root = beta_root_used(i);
            cycle(
                &mut points,
                "beta",
                t,
                beta_cpu(i),
                70.0,
                &[("/", root, 60.0 * GB, 60.0 * GB - root)],
            );
        }
    }
    points.extend([
        alert(
            "cpu_high",
            "alpha",
            "critical",
            start - 3 * 86_400_000,
            "firing",
            91.0,
            "old",
        ),
        alert(
            "cpu_high",
            "alpha",
            "critical",
            start - 3 * 86_400_000 + 10 * MIN,
            "resolved",
            50.0,
            "",
        ),
        alert(
            "disk_growth",
            "alpha",
            "warning",
            start - 120 * MIN,
            "firing",
            1.5,
            "disk / grows 1.4 GB/day",
        ),
        alert(
            "disk_growth",
            "alpha",
            "warning",
            start + 30 * MIN,
            "resolved",
            0.1,
            "",
        ),
        alert(
            "cpu_high",
            "alpha",
            "critical",
            start + 100 * MIN,
            "firing",
            95.5,
            "cpu <b>95.5%</b> > 90% & rising",
        ),
        alert(
            "cpu_high",
            "alpha",
            "critical",
            start + 130 * MIN,
            "resolved",
            40.0,
            "",
        ),
        alert(
            "host_silent",
            "beta",
            "critical",
            start + 600 * MIN,
            "firing",
            0.0,
            "no data for 1m",
        ),
        alert(
            "host_silent",
            "beta",
            "critical",
            start + 660 * MIN,
            "resolved",
            1.0,
            "",
        ),
        alert(
            "mem_high",
            "beta",
            "warning",
            start + 1400 * MIN,
            "firing",
            70.0,
            "mem above 65% for 10m",
        ),
        alert(
            "ping",
            "gamma",
            "critical",
            start + 10 * MIN,
            "firing",
            1.0,
            "unreachable",
        ),
        alert(
            "ping",
            "gamma",
            "critical",
            start + 20 * MIN,
            "resolved",
            0.0,
            "",
        ),
    ]);
    points
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn close(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!(
        (a - b).abs() <= tolerance * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

#[tokio::test]
async fn report_over_seeded_data() {
    let influx = TestInflux::start();
    let client = influx.client("reports").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Whole hours, the day ending two hours ago (the seed runs an hour past it).
    let end = now / 3_600_000 * 3_600_000 - 2 * 3_600_000;
    let start = end - CYCLES * MIN;
    let report = client.write_points(&seed(start)).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);

    let range = TimeRange::new(start, end).unwrap();
    let data = gather(&client, range, None).await.unwrap();
    let names: Vec<&str> = data.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let (alpha, beta, gamma) = (&data.hosts[0], &data.hosts[1], &data.hosts[2]);

    // Availability.
    assert_eq!(alpha.availability, 1.0);
    let beta_up_cycles = (0..CYCLES).filter(|i| beta_up(*i)).count();
    assert_eq!(beta.availability, beta_up_cycles as f64 / CYCLES as f64);
    assert_eq!(gamma.availability, 0.0);

    // CPU and memory.
    let tol = 1e-9;
    close(alpha.cpu.peak.unwrap(), 59.0, tol, "alpha cpu peak");
    close(
        alpha.cpu.mean.unwrap(),
        mean((0..CYCLES).map(alpha_cpu)),
        tol,
        "alpha cpu mean",
    );
    close(alpha.mem.peak.unwrap(), 49.5, tol, "alpha mem peak");
    close(
        alpha.mem.mean.unwrap(),
        mean((0..CYCLES).map(alpha_mem)),
        tol,
        "alpha mem mean",
    );
    let beta_cycles = || (0..CYCLES).filter(|i| beta_up(*i));
    close(beta.cpu.peak.unwrap(), 11.0, tol, "beta cpu peak");
    close(
        beta.cpu.mean.unwrap(),
        mean(beta_cycles().map(beta_cpu)),
        tol,
        "beta cpu mean",
    );
    assert_eq!((beta.mem.mean, beta.mem.peak), (Some(70.0), Some(70.0)));
    assert_eq!((gamma.cpu.mean, gamma.mem.peak), (None, None));

    // Disks: alpha's `/` grows 1 MB a minute, 1.44 GB a day.
    let paths: Vec<&str> = alpha.disks.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/", "/data"]);
    let root = &alpha.disks[0];
    let last = CYCLES - 1;
    assert_eq!(root.used_start, alpha_root_used(0));
    assert_eq!(root.used_end, alpha_root_used(last));
    assert_eq!(root.growth, alpha_root_used(last) - alpha_root_used(0));
    assert_eq!(root.total, ROOT_TOTAL);
    let free_end = ROOT_TOTAL - alpha_root_used(last) - RESERVED;
    assert_eq!(root.free, free_end);
    close(
        root.growth_per_day.unwrap(),
        1.44e9,
        1e-9,
        "alpha / growth per day",
    );
    close(
        root.days_to_full.unwrap(),
        free_end / 1.44e9,
        1e-9,
        "alpha / days to full",
    );
    let data_disk = &alpha.disks[1];
    assert_eq!(data_disk.growth, 0.0);
    assert_eq!(data_disk.days_to_full, None);
    assert_eq!(beta.disks.len(), 1);
    assert!(beta.disks[0].growth < 0.0);
    close(
        beta.disks[0].growth_per_day.unwrap(),
        -1e5 * 1440.0,
        1e-6,
        "beta / shrinking",
    );
    assert_eq!(beta.disks[0].days_to_full, None);

    // Anomalies: periods overlapping the day, the one from before with its real start.
    let periods = |h: &report::data::HostReport| -> Vec<(String, i64, Option<i64>)> {
        h.anomalies
            .iter()
            .map(|a| {
                (
                    a.rule.clone(),
                    a.start_ms - start,
                    a.end_ms.map(|e| e - start),
                )
            })
            .collect()
    };
    assert_eq!(
        periods(alpha),
        [
            ("disk_growth".to_owned(), -120 * MIN, Some(30 * MIN)),
            ("cpu_high".to_owned(), 100 * MIN, Some(130 * MIN)),
        ]
    );
    let cpu_high = &alpha.anomalies[1];
    assert_eq!(cpu_high.severity, "critical");
    assert_eq!(cpu_high.value, Some(95.5));
    assert_eq!(
        cpu_high.reason.as_deref(),
        Some("cpu <b>95.5%</b> > 90% & rising")
    );
    assert_eq!(
        periods(beta),
        [
            ("host_silent".to_owned(), 600 * MIN, Some(660 * MIN)),
            ("mem_high".to_owned(), 1400 * MIN, None),
        ]
    );
    assert_eq!(
        periods(gamma),
        [("ping".to_owned(), 10 * MIN, Some(20 * MIN))]
    );
    assert_eq!(data.anomaly_count(), 5);

    // Chart series: a 5-minute step, beta's silent hour empty.
    assert_eq!(data.step_ms, 5 * MIN);
    assert_eq!(alpha.cpu_series.len(), 288);
    assert!(alpha.cpu_series.iter().all(|(_, v)| v.is_some()));
    let (t0, v0) = alpha.cpu_series[0];
    assert_eq!(t0, start);
    close(
        v0.unwrap(),
        mean((0..5).map(alpha_cpu)),
        1e-9,
        "first cpu window",
    );
    let empty: Vec<i64> = beta
        .cpu_series
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(t, _)| (t - start) / MIN)
        .collect();
    assert_eq!(empty, (600..660).step_by(5).collect::<Vec<_>>());
    assert!(gamma.cpu_series.is_empty());

    // A host filter: exactly those hosts, known or not.
    let only = ["beta".to_owned(), "delta".to_owned()];
    let filtered = gather(&client, range, Some(&only)).await.unwrap();
    let names: Vec<&str> = filtered.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(names, ["beta", "delta"]);
    assert_eq!(filtered.hosts[0], data.hosts[1]);
    assert_eq!(filtered.hosts[1].availability, 0.0);

    // Rendered: every image referenced by cid, every image a valid PNG of the
    // chart's size, data escaped.
    let web: reqwest::Url = "https://hostscope.example.com/".parse().unwrap();
    for language in [Language::En, Language::ZhCn] {
        let content = report::render(
            &data,
            &RenderOptions {
                language,
                web_url: Some(&web),
                offset: "+08:00".parse::<UtcOffset>().unwrap(),
                name: Some("daily"),
            },
        )
        .unwrap();
        assert_eq!(content.images.len(), 3);
        for (cid, png_bytes) in &content.images {
            assert_eq!(
                content.html.matches(&format!("src=\"cid:{cid}\"")).count(),
                1,
                "{cid}"
            );
            let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes.as_slice()));
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (chart::WIDTH, chart::HEIGHT));
        }
        assert_eq!(content.html.matches("src=\"cid:").count(), 3);
        assert!(content
            .html
            .contains("cpu &lt;b&gt;95.5%&lt;/b&gt; &gt; 90% &amp; rising"));
        assert!(!content.html.contains("<b>95.5%</b>"));
        assert!(content.html.contains(&format!(
            "https://hostscope.example.com/hosts/alpha?start={start}&amp;end={end}"
        )));
        let subject_tail = match language {
            Language::En => "(24h): 3 hosts, 5 anomalies",
            Language::ZhCn => "（24h）：3 台主机，5 个异常",
        };
        assert!(
            content.subject.ends_with(subject_tail),
            "{}",
            content.subject
        );
        assert!(content.text.contains("== beta =="));

        // Stored for the web, images inlined.
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::new(dir.path());
        let meta = store
            .save(now, Some("daily"), language, &data, &content)
            .unwrap();
        assert_eq!((meta.hosts, meta.anomalies), (3, 5));
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0], meta);
        let stored = store.load(&meta.id).unwrap().unwrap();
        assert_eq!(
            stored.html.matches("src=\"data:image/png;base64,").count(),
            3
        );
        assert!(!stored.html.contains("cid:"));
    }
}
