//! The core client and InfluxQL query layer against a real `influxd` (1.x).
//! The Flux path cannot run here (no InfluxDB 2 server on these machines); it is
//! covered by golden-text and annotated-CSV tests in `core/src/influx/flux.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use hostscope_core::config::VersionSetting;
use hostscope_core::influx::{
    Aggregate, Client, Every, InfluxError, LastQuery, Series, SeriesQuery, ServerVersion,
    TagValuesQuery, TimeRange,
};
use hostscope_core::lineproto::Precision;
use hostscope_core::Point;
use hostscope_tests::influxd::TestInflux;
use secrecy::SecretString;

/// 2024-01-01T00:00:00Z
const T0_MS: i64 = 1_704_067_200_000;
const STEP_MS: i64 = 10_000;
const SERIES: usize = 10;
const PER_SERIES: usize = 1000;

/// Deterministic values with full f64 precision (no rounding in the test data).
fn value(series: usize, i: usize) -> f64 {
    let x = (series as u64 * 1_000_003 + i as u64).wrapping_mul(6_364_136_223_846_793_005) >> 11;
    (x as f64) / ((1u64 << 53) as f64) * 100.0
}

fn range_all() -> TimeRange {
    TimeRange::new(T0_MS, T0_MS + PER_SERIES as i64 * STEP_MS).unwrap()
}

fn series_query(measurement: &str, field: &str, tags: &[(&str, &str)]) -> SeriesQuery {
    SeriesQuery {
        measurement: measurement.into(),
        field: field.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        range: range_all(),
        every: None,
        aggregate: None,
        group_by: vec![],
    }
}

fn seed_points() -> Vec<Point> {
    let mut points = Vec::with_capacity(SERIES * PER_SERIES);
    for s in 0..SERIES {
        for i in 0..PER_SERIES {
            points.push(
                Point::builder("cpu")
                    .tag("host", format!("host-{s}"))
                    .tag("cpu", "cpu-total")
                    .field("usage_user", value(s, i))
                    .field("ticks", (i as i64) * 7 + s as i64)
                    .timestamp((T0_MS + i as i64 * STEP_MS) * 1_000_000)
                    .build()
                    .unwrap(),
            );
        }
    }
    points
}

#[tokio::test]
async fn ten_thousand_points_round_trip_exactly() {
    let server = TestInflux::start();
    let mut settings = server.settings("roundtrip");
    settings.batch_max_points = 1000;
    let client = Client::new(settings).unwrap();
    client.ensure_database().await.unwrap();
    assert_eq!(client.version().await.unwrap(), ServerVersion::V1);

    let report = client.write_points(&seed_points()).await.unwrap();
    assert_eq!(report.written, SERIES * PER_SERIES);
    assert!(report.rejected.is_empty());
    assert_eq!(report.requests, 10, "1000-point batches");

    // Every series, raw, value for value.
    let mut total = 0;
    for s in 0..SERIES {
        let host = format!("host-{s}");
        let got = client
            .query_series(&series_query("cpu", "usage_user", &[("host", &host)]))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        let points = &got[0].points;
        assert_eq!(points.len(), PER_SERIES, "{host}");
        for (i, (t, v)) in points.iter().enumerate() {
            assert_eq!(*t, T0_MS + i as i64 * STEP_MS);
            assert_eq!(*v, Some(value(s, i)), "{host} point {i}");
        }
        total += points.len();
    }
    assert_eq!(total, SERIES * PER_SERIES);

    // count over everything, grouped by host.
    let mut q = series_query("cpu", "usage_user", &[]);
    q.aggregate = Some(Aggregate::Count);
    q.group_by = vec!["host".into()];
    let got = client.query_series(&q).await.unwrap();
    assert_eq!(got.len(), SERIES);
    for series in &got {
        assert_eq!(series.points.len(), 1);
        assert_eq!(
            series.points[0].1,
            Some(PER_SERIES as f64),
            "{:?}",
            series.tags
        );
    }

    // Hosts that reported.
    let hosts = client
        .query_tag_values(&TagValuesQuery {
            measurement: "cpu".into(),
            key: "host".into(),
            tags: BTreeMap::new(),
            range: range_all(),
        })
        .await
        .unwrap();
    let want: Vec<String> = (0..SERIES).map(|s| format!("host-{s}")).collect();
    assert_eq!(hosts, want);

    // Last value per series.
    let last = client
        .query_last(&LastQuery {
            measurement: "cpu".into(),
            field: "usage_user".into(),
            tags: BTreeMap::new(),
            range: range_all(),
        })
        .await
        .unwrap();
    assert_eq!(last.len(), SERIES);
    for series in &last {
        let s: usize = series.tags["host"]
            .trim_start_matches("host-")
            .parse()
            .unwrap();
        assert_eq!(series.tags["cpu"], "cpu-total");
        assert_eq!(
            series.points,
            vec![(
                T0_MS + (PER_SERIES as i64 - 1) * STEP_MS,
                Some(value(s, PER_SERIES - 1))
            )]
        );
    }
}

/// Windowed aggregates, checked against values computed here.
#[tokio::test]
async fn aggregates_match_values_computed_in_the_test() {
    let server = TestInflux::start();
    let client = server.client("aggregates").await;
    client.write_points(&seed_points()).await.unwrap();

    const WINDOW: usize = 10; // points per window
    let every = Every::from_millis(WINDOW as u64 * STEP_MS as u64).unwrap();
    let run = |agg: Aggregate, field: &'static str| {
        let client = client.clone();
        async move {
            let mut q = series_query("cpu", field, &[("host", "host-3")]);
            q.every = Some(every);
            q.aggregate = Some(agg);
            let got = client.query_series(&q).await.unwrap();
            assert_eq!(got.len(), 1, "{agg}");
            got.into_iter().next().unwrap().points
        }
    };
    let windows: Vec<Vec<f64>> = (0..PER_SERIES / WINDOW)
        .map(|w| (0..WINDOW).map(|j| value(3, w * WINDOW + j)).collect())
        .collect();
    let window_t = |w: usize| T0_MS + (w * WINDOW) as i64 * STEP_MS;

    let mean = run(Aggregate::Mean, "usage_user").await;
    assert_eq!(mean.len(), windows.len());
    for (w, (t, v)) in mean.iter().enumerate() {
        assert_eq!(*t, window_t(w));
        let want = windows[w].iter().sum::<f64>() / WINDOW as f64;
        let got = v.unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "mean window {w}: {got} vs {want}"
        );
    }

    let max = run(Aggregate::Max, "usage_user").await;
    for (w, (_, v)) in max.iter().enumerate() {
        let want = windows[w].iter().cloned().fold(f64::MIN, f64::max);
        assert_eq!(*v, Some(want), "max window {w}");
    }

    // Nearest rank: the ceil(p/100 · n)-th smallest.
    for p in [50.0, 90.0] {
        let got = run(Aggregate::Percentile(p), "usage_user").await;
        for (w, (_, v)) in got.iter().enumerate() {
            let mut sorted = windows[w].clone();
            sorted.sort_by(f64::total_cmp);
            let rank = (p / 100.0 * WINDOW as f64).ceil() as usize;
            assert_eq!(*v, Some(sorted[rank - 1]), "p{p} window {w}");
        }
    }

    // ticks grows by 7 per 10 s point: 70 per 100 s window, 0.7/s.
    let rate = run(Aggregate::Rate, "ticks").await;
    assert_eq!(
        rate.len(),
        windows.len() - 1,
        "the first window has no predecessor"
    );
    for (t, v) in &rate {
        assert!((v.unwrap() - 0.7).abs() < 1e-12, "rate at {t}: {v:?}");
    }
}

/// A counter reset gives no negative rate.
#[tokio::test]
async fn rate_is_never_negative() {
    let server = TestInflux::start();
    let client = server.client("rates").await;
    let values = [100i64, 110, 120, 5, 15, 25];
    let points: Vec<Point> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Point::builder("net")
                .tag("host", "a")
                .tag("interface", "eth0")
                .field("bytes_recv", *v)
                .timestamp((T0_MS + i as i64 * STEP_MS) * 1_000_000)
                .build()
                .unwrap()
        })
        .collect();
    client.write_points(&points).await.unwrap();
    let mut q = series_query("net", "bytes_recv", &[("interface", "eth0")]);
    q.aggregate = Some(Aggregate::Rate);
    let got = client.query_series(&q).await.unwrap();
    let rates: Vec<f64> = got[0].points.iter().filter_map(|p| p.1).collect();
    assert_eq!(
        rates,
        vec![1.0, 1.0, 1.0, 1.0],
        "the reset between 120 and 5 is skipped"
    );
}

const HOSTILE: &[&str] = &[
    "it's",
    "say \"hi\"",
    r"back\slash",
    r"\'",
    "${x}",
    ") |> drop()",
    "\") |> drop(columns: [\"_value\"]) |> yield(name: \"x",
    "'; DROP DATABASE hostile; '",
    "; DROP DATABASE x",
    "x' OR '1'='1",
    "a,b=c d",
    "主机-北京-01",
    "🔥 emoji",
];

#[tokio::test]
async fn hostile_strings_are_stored_and_queried_as_data() {
    let server = TestInflux::start();
    let client = server.client("hostile").await;
    let mut points = Vec::new();
    for (i, h) in HOSTILE.iter().enumerate() {
        points.push(
            Point::builder("cpu")
                .tag("host", *h)
                .field("usage_user", i as f64)
                .timestamp((T0_MS + i as i64 * STEP_MS) * 1_000_000)
                .build()
                .unwrap(),
        );
        // Hostile measurement, field and tag key names too.
        points.push(
            Point::builder(format!("m {h}"))
                .tag(format!("k {h}"), *h)
                .field(format!("f {h}"), i as i64)
                .timestamp(T0_MS * 1_000_000)
                .build()
                .unwrap(),
        );
    }
    let report = client.write_points(&points).await.unwrap();
    assert_eq!(report.written, points.len(), "{:?}", report.rejected);

    let mut hosts = client
        .query_tag_values(&TagValuesQuery {
            measurement: "cpu".into(),
            key: "host".into(),
            tags: BTreeMap::new(),
            range: range_all(),
        })
        .await
        .unwrap();
    hosts.sort();
    let mut want: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(hosts, want);

    for (i, h) in HOSTILE.iter().enumerate() {
        let got = client
            .query_series(&series_query("cpu", "usage_user", &[("host", h)]))
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![Series {
                tags: BTreeMap::new(),
                points: vec![(T0_MS + i as i64 * STEP_MS, Some(i as f64))]
            }],
            "host {h:?}"
        );
        let key = format!("k {h}");
        let got = client
            .query_series(&series_query(
                &format!("m {h}"),
                &format!("f {h}"),
                &[(&key, h)],
            ))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "measurement for {h:?}");
        assert_eq!(got[0].points, vec![(T0_MS, Some(i as f64))], "{h:?}");
    }

    // The database the hostile strings name still exists, with all its data.
    let dbs = server.influxql("", "SHOW DATABASES").await.to_string();
    assert!(dbs.contains("\"hostile\""), "{dbs}");
    let mut q = series_query("cpu", "usage_user", &[]);
    q.aggregate = Some(Aggregate::Count);
    let got = client.query_series(&q).await.unwrap();
    assert_eq!(got[0].points[0].1, Some(HOSTILE.len() as f64));
}

/// What line protocol cannot carry is refused when the point is built, with a reason,
/// rather than stored as something else.
#[test]
fn unencodable_names_are_refused_before_any_write() {
    for bad in [r"trailing\", r"a\ b", r"a\,b"] {
        let err = Point::builder("cpu")
            .tag("host", bad)
            .field("f", 1.0)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("backslash"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn newlines_in_query_parameters_are_refused_not_spliced() {
    let server = TestInflux::start();
    let client = server.client("newline").await;
    for q in [
        series_query("cpu", "usage_user", &[("host", "a\nb")]),
        series_query("cpu\nDROP DATABASE newline", "usage_user", &[]),
        series_query("cpu", "usage_user\r", &[]),
    ] {
        match client.query_series(&q).await {
            Err(InfluxError::Query(e)) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("invalid ") && text.contains("control character"),
                    "{text}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_bad_line_costs_no_good_line() {
    let server = TestInflux::start();
    let client = server.client("partial").await;
    client
        .write_lines("disk,host=a used=1.5 1000000000\n", Precision::Nanoseconds)
        .await
        .unwrap();
    let batch = "\
disk,host=a used=2.5 2000000000
disk,host=a used= 3000000000
disk,host=a used=4.5 4000000000
disk,host=a used=5i 5000000000
disk,host=a used=6.5 6000000000
";
    let report = client
        .write_lines(batch, Precision::Nanoseconds)
        .await
        .unwrap();
    assert_eq!(report.written, 3, "{report:?}");
    let rejected: Vec<usize> = report.rejected.iter().map(|r| r.index).collect();
    assert_eq!(rejected, vec![1, 3]);
    assert_eq!(report.rejected[0].line, "disk,host=a used= 3000000000");
    assert!(
        report.rejected[0].reason.contains("unable to parse"),
        "{:?}",
        report.rejected[0]
    );
    assert!(
        report.rejected[1].reason.contains("field type conflict"),
        "{:?}",
        report.rejected[1]
    );

    let got = client
        .query_series(&SeriesQuery {
            range: TimeRange::new(0, 10_000).unwrap(),
            ..series_query("disk", "used", &[])
        })
        .await
        .unwrap();
    let values: Vec<f64> = got[0].points.iter().filter_map(|p| p.1).collect();
    assert_eq!(values, vec![1.5, 2.5, 4.5, 6.5]);
}

#[tokio::test]
async fn a_missing_database_is_created_or_the_error_says_why() {
    let server = TestInflux::start_with(true);
    // With auth on and no user yet, InfluxDB 1.x lets anyone create the first admin.
    server
        .influxql(
            "",
            "CREATE USER admin WITH PASSWORD 'adm1n' WITH ALL PRIVILEGES",
        )
        .await;
    let admin_q = |q: &'static str| {
        let url = server.url();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/query"))
                .basic_auth("admin", Some("adm1n"))
                .form(&[("q", q)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    admin_q("CREATE USER reader WITH PASSWORD 'r3ad'").await;

    let mut s = server.settings("fresh_db");
    s.username = Some("reader".into());
    s.password = Some(SecretString::from("r3ad"));
    let err = Client::new(s).unwrap().ensure_database().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"fresh_db\"") && text.contains("admin"),
        "{text}"
    );
    assert!(
        !text.contains("r3ad"),
        "the password must not appear: {text}"
    );

    let mut s = server.settings("fresh_db");
    s.username = Some("admin".into());
    s.password = Some(SecretString::from("adm1n"));
    Client::new(s).unwrap().ensure_database().await.unwrap();
    let dbs = admin_q("SHOW DATABASES").await;
    assert!(dbs.contains("fresh_db"), "{dbs}");
}

#[tokio::test]
async fn a_write_rides_out_a_short_outage() {
    let mut server = TestInflux::start();
    let mut settings = server.settings("outage");
    settings.max_retries = 8;
    settings.retry_backoff = Duration::from_millis(200);
    settings.version = VersionSetting::V1;
    let client = Client::new(settings).unwrap();
    client.ensure_database().await.unwrap();
    server.stop();
    let points = seed_points()[..100].to_vec();
    let writer = tokio::spawn({
        let client = client.clone();
        async move { client.write_points(&points).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.start_again();
    let report = writer.await.unwrap().unwrap();
    assert_eq!(report.written, 100);
    assert!(report.requests > 1, "it had to retry: {report:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_failure() {
    let mut server = TestInflux::start();
    let mut settings = server.settings("gone");
    settings.max_retries = 1;
    settings.version = VersionSetting::V1;
    let client = Client::new(settings).unwrap();
    server.stop();
    let failure = client.write_points(&seed_points()[..10]).await.unwrap_err();
    assert_eq!(failure.first_unwritten, 0);
    assert!(failure.error.is_transient(), "{}", failure.error);
    assert_eq!(failure.report.requests, 2);
}

/// InfluxDB 1.x reads `precision=us` as nanoseconds; the client must say `u`.
#[tokio::test]
async fn every_precision_lands_at_the_right_time() {
    let server = TestInflux::start();
    let client = server.client("precision").await;
    let t_s = T0_MS / 1000;
    for (i, (precision, ts)) in [
        (Precision::Seconds, t_s),
        (Precision::Milliseconds, t_s * 1000),
        (Precision::Microseconds, t_s * 1_000_000),
        (Precision::Nanoseconds, t_s * 1_000_000_000),
    ]
    .into_iter()
    .enumerate()
    {
        let line = format!("p,precision={precision} v={i} {ts}\n");
        client.write_lines(&line, precision).await.unwrap();
        let got = client
            .query_series(&series_query(
                "p",
                "v",
                &[("precision", &precision.to_string())],
            ))
            .await
            .unwrap();
        assert_eq!(got[0].points, vec![(T0_MS, Some(i as f64))], "{precision}");
    }
}
