//! Detector throughput: points judged per second on one core.
//!
//! `cargo bench -p hostscope-core --bench detectors`
//!
//! Each iteration builds a fresh detector and feeds it a whole series of 100,000 points
//! through `Detector::update_at`, as the analyzer does (a 10 s step; a daily cycle,
//! noise, and a spike every 5,000 points, so a few verdicts carry a reason). The
//! windowed detectors keep 360 points (an hour at 10 s):
//!
//! - `detectors/ewma`: α = 2/361, the smoothing of a 360-point moving average (its cost
//!   does not depend on α: it keeps no window).
//! - `detectors/3sigma`: mean ± 3σ of the last 360 points.
//! - `detectors/quantile`: Tukey fences (k = 1.5) of the last 360 points.
//! - `detectors/threshold` and `detectors/novelty` (its defaults), for reference.
//!
//! Throughput is in points (elements) per second.

use std::f64::consts::TAU;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hostscope_core::detect::{
    DetectorConfig, EwmaConfig, NoveltyConfig, QuantileConfig, SigmaConfig, ThresholdConfig,
};

const POINTS: usize = 100_000;
const WINDOW: usize = 360;
const STEP_MS: i64 = 10_000;

/// A cpu-like series: 50 ± 10 over a day, ±2 of noise, a spike to 95 every 5,000 points.
fn series() -> Vec<f64> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..POINTS)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0;
            let day = 10.0 * (TAU * i as f64 / 8640.0).sin();
            if i % 5000 == 4999 {
                95.0
            } else {
                50.0 + day + noise
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let values = series();
    let start_ms: i64 = 1_763_700_000_000;
    let detectors = [
        (
            "ewma",
            DetectorConfig::Ewma(EwmaConfig::new(2.0 / (WINDOW as f64 + 1.0), 3.0)),
        ),
        (
            "3sigma",
            DetectorConfig::Sigma(SigmaConfig::new(WINDOW, 3.0)),
        ),
        (
            "quantile",
            DetectorConfig::Quantile(QuantileConfig::tukey(WINDOW, 1.5)),
        ),
        (
            "threshold",
            DetectorConfig::Threshold(ThresholdConfig {
                warning_above: Some(80.0),
                critical_above: Some(90.0),
                ..Default::default()
            }),
        ),
        ("novelty", DetectorConfig::Novelty(NoveltyConfig::default())),
    ];

    let mut g = c.benchmark_group("detectors");
    g.throughput(Throughput::Elements(POINTS as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));
    for (name, config) in &detectors {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut d = config.build();
                let mut fired = 0usize;
                for (i, v) in values.iter().enumerate() {
                    let t = start_ms + i as i64 * STEP_MS;
                    if let Some(v) = d.update_at(t, Some(black_box(*v))) {
                        fired += usize::from(v.is_anomaly());
                    }
                }
                black_box(fired)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
