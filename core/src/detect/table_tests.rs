//! The same table for every single-series detector: a spike fires, a step change
//! fires, a constant series is quiet, gaps and NaN are skipped (the verdicts are those
//! of the series without them), and a window too small to judge yields no verdict
//! rather than a panic.

use super::testutil::{fired, noisy};
use super::*;

fn detectors() -> Vec<(&'static str, DetectorConfig)> {
    vec![
        (
            "threshold",
            DetectorConfig::Threshold(ThresholdConfig {
                warning_above: Some(20.0),
                critical_above: None,
                warning_below: Some(0.0),
                critical_below: None,
            }),
        ),
        ("ewma", DetectorConfig::Ewma(EwmaConfig::new(0.1, 4.0))),
        ("3sigma", DetectorConfig::Sigma(SigmaConfig::new(30, 3.0))),
        (
            "quantile",
            DetectorConfig::Quantile(QuantileConfig::tukey(30, 3.0)),
        ),
    ]
}

#[test]
fn every_detector_on_the_same_table() {
    let base = noisy(200, 10.0, 1.0);
    let mut spike = base.clone();
    spike[150] = 40.0;
    let mut step = base.clone();
    for v in &mut step[150..] {
        *v += 25.0;
    }
    for (name, config) in detectors() {
        assert!(config.problems().is_empty(), "{name}");
        assert_eq!(
            fired(&mut config.build(), &base),
            Vec::<usize>::new(),
            "{name}: noise"
        );
        assert_eq!(
            fired(&mut config.build(), &[7.0; 200]),
            Vec::<usize>::new(),
            "{name}: constant"
        );
        let got = fired(&mut config.build(), &spike);
        assert!(
            got.contains(&150) && got.len() <= 2,
            "{name}: spike {got:?}"
        );
        let got = fired(&mut config.build(), &step);
        assert_eq!(got.first(), Some(&150), "{name}: step {got:?}");
    }
}

#[test]
fn gaps_and_nan_change_nothing() {
    let mut spike = noisy(120, 10.0, 1.0);
    spike[100] = 40.0;
    for (name, config) in detectors() {
        let clean: Vec<Option<Verdict>> = config
            .build()
            .run(&spike.iter().map(|v| Some(*v)).collect::<Vec<_>>());
        // The same series with a gap or a NaN after every 7th point.
        let mut holey = Vec::new();
        let mut where_ = Vec::new();
        for (i, v) in spike.iter().enumerate() {
            where_.push(holey.len());
            holey.push(Some(*v));
            if i % 7 == 3 {
                holey.push(if i % 2 == 0 { None } else { Some(f64::NAN) });
            }
        }
        let got = config.build().run(&holey);
        for (i, at) in where_.iter().enumerate() {
            assert_eq!(got[*at], clean[i], "{name}: point {i}");
        }
        assert!(
            got.iter()
                .enumerate()
                .all(|(j, v)| where_.contains(&j) || v.is_none()),
            "{name}: a gap got a verdict"
        );
    }
}

#[test]
fn tiny_series_never_panic() {
    for (name, config) in detectors() {
        for n in 0..4 {
            let series = vec![1.0; n];
            let _ = fired(&mut config.build(), &series);
        }
        let mut d = config.build();
        assert!(d.update(None).is_none(), "{name}");
        assert!(d.update(Some(f64::INFINITY)).is_none(), "{name}");
    }
}

/// `learning_points` is exactly how many points pass before the first verdict (a rule
/// refuses a window that holds no more).
#[test]
fn learning_points_is_when_judging_starts() {
    let mut configs = detectors();
    for (block, shape_len, warmup) in [(1, 1, 1), (3, 5, 100), (2, 4, 7), (4, 2, 0)] {
        configs.push((
            "novelty variant",
            DetectorConfig::Novelty(NoveltyConfig {
                block,
                shape_len,
                warmup,
                ..Default::default()
            }),
        ));
    }
    for (name, c) in configs {
        let mut d = c.build();
        // A steady series: nothing is a record, every detector judges it once ready.
        let first = (0..5000)
            .position(|i| d.update_at(i as i64 * 60_000, Some(50.0)).is_some())
            .unwrap();
        assert_eq!(first, c.learning_points(), "{name}: {c:?}");
    }
}
