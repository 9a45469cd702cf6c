//! Rolling mean ± k·σ over the last `window` points (the current point excluded).

use serde::Deserialize;

use super::window::Window;
use super::{band, round, Severity, Verdict};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaConfig {
    /// Points in the rolling window. Default 60.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Band half-width in standard deviations. Default 3.
    #[serde(default = "default_k")]
    pub k: f64,
    /// The smallest σ used, so a flat window does not turn every wiggle into an
    /// anomaly. Default: 0.1% of |mean| (at least 1e-9).
    pub min_std: Option<f64>,
    #[serde(default)]
    pub severity: Severity,
}

fn default_window() -> usize {
    60
}
fn default_k() -> f64 {
    3.0
}

impl SigmaConfig {
    pub fn new(window: usize, k: f64) -> Self {
        SigmaConfig {
            window,
            k,
            min_std: None,
            severity: Severity::Warning,
        }
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.window < 3 {
            p.push((
                "window".into(),
                format!("{} points are too few; at least 3", self.window),
            ));
        }
        if !(self.k > 0.0 && self.k.is_finite()) {
            p.push(("k".into(), format!("{} must be a positive number", self.k)));
        }
        p
    }
}

#[derive(Debug, Clone)]
pub struct Sigma {
    c: SigmaConfig,
    w: Window,
}

impl Sigma {
    pub fn new(c: SigmaConfig) -> Self {
        let w = Window::new(c.window);
        Sigma { c, w }
    }

    pub fn update(&mut self, x: f64) -> Option<Verdict> {
        let ready = self.w.len() >= 3.min(self.c.window);
        let verdict = ready.then(|| {
            let mean = self.w.mean();
            let floor = self.c.min_std.unwrap_or_else(|| (mean.abs() * 1e-3).max(1e-9));
            let sd = self.w.std().max(floor);
            let (lo, hi) = (mean - self.c.k * sd, mean + self.c.k * sd);
            let score = (x - mean).abs() / sd;
            if x < lo || x > hi {
                Verdict {
                    value: x,
                    severity: Some(self.c.severity),
                    lower: Some(lo),
                    upper: Some(hi),
                    score,
                    reason: format!(
                        "{} is {} standard deviations from the mean {} of the last {} points (band {})",
                        round(x),
                        round(score),
                        round(mean),
                        self.w.len(),
                        band(Some(lo), Some(hi))
                    ),
                }
            } else {
                Verdict::normal(x, Some(lo), Some(hi), score)
            }
        });
        self.w.push(x);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{fired, noisy};
    use crate::detect::DetectorConfig;

    fn d(window: usize, k: f64) -> crate::detect::Detector {
        DetectorConfig::Sigma(SigmaConfig::new(window, k)).build()
    }

    #[test]
    fn check() {
        // (series, window, k, expected indices)
        let mut spike = noisy(100, 10.0, 1.0);
        spike[70] = 30.0;
        let mut step = noisy(100, 10.0, 1.0);
        for v in &mut step[60..] {
            *v += 20.0;
        }
        type Case = (&'static str, Vec<f64>, usize, f64, Vec<usize>);
        let cases: Vec<Case> = vec![
            ("spike", spike, 30, 3.0, vec![70]),
            // A step fires while the window still holds the old level, then adapts.
            ("step", step, 10, 3.0, vec![60, 61, 62, 63, 64]),
            ("constant", vec![5.0; 50], 10, 3.0, vec![]),
            (
                "tiny window",
                vec![1.0, 2.0, 1.0, 2.0, 1.0, 100.0],
                3,
                3.0,
                vec![5],
            ),
        ];
        for (name, series, window, k, want) in cases {
            let got = fired(&mut d(window, k), &series);
            if name == "step" {
                assert!(
                    got.first() == Some(&60) && got.len() < 10,
                    "{name}: {got:?}"
                );
            } else {
                assert_eq!(got, want, "{name}");
            }
        }
    }

    #[test]
    fn a_flat_window_is_not_an_anomaly_storm() {
        // Constant, then the smallest wiggles: the σ floor keeps them quiet.
        let mut series = vec![100.0; 50];
        series.extend([100.00001, 99.99999, 100.0, 100.00002]);
        assert!(fired(&mut d(20, 3.0), &series).is_empty());
        // A real change out of a flat window still fires, once.
        let mut series = vec![100.0; 50];
        series.push(150.0);
        series.extend(vec![100.0; 10]);
        assert_eq!(fired(&mut d(20, 3.0), &series), vec![50]);
    }

    #[test]
    fn reasons_say_why() {
        let mut det = d(5, 3.0);
        for x in [10.0, 11.0, 9.0, 10.0, 10.0] {
            det.update(Some(x));
        }
        let v = det.update(Some(20.0)).unwrap();
        assert!(v.is_anomaly());
        assert!(v.reason.starts_with("20 is "), "{}", v.reason);
        assert!(
            v.reason.contains("mean 10 of the last 5 points"),
            "{}",
            v.reason
        );
    }
}
