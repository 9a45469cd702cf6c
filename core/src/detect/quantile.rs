//! Rolling-window quantiles: Tukey fences Q1 − k·IQR, Q3 + k·IQR, or plain quantile
//! bounds.

use serde::Deserialize;

use super::window::Window;
use super::{band, round, Severity, Verdict};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantileConfig {
    /// Points in the rolling window. Default 60.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Tukey's k: fences at Q1 − k·IQR and Q3 + k·IQR. Default 1.5. Ignored when
    /// `upper`/`lower` are set.
    #[serde(default = "default_k")]
    pub k: f64,
    /// Plain bounds instead of fences: fire above this quantile (e.g. 0.99) …
    pub upper: Option<f64>,
    /// … or below this one (e.g. 0.01).
    pub lower: Option<f64>,
    #[serde(default)]
    pub severity: Severity,
}

fn default_window() -> usize {
    60
}
fn default_k() -> f64 {
    1.5
}

impl QuantileConfig {
    pub fn tukey(window: usize, k: f64) -> Self {
        QuantileConfig {
            window,
            k,
            upper: None,
            lower: None,
            severity: Severity::Warning,
        }
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.window < 4 {
            p.push((
                "window".into(),
                format!("{} points are too few; at least 4", self.window),
            ));
        }
        if !(self.k > 0.0 && self.k.is_finite()) {
            p.push(("k".into(), format!("{} must be a positive number", self.k)));
        }
        for (key, q) in [("upper", self.upper), ("lower", self.lower)] {
            if let Some(q) = q {
                if !(0.0..=1.0).contains(&q) {
                    p.push((key.into(), format!("{q} is not a quantile in [0, 1]")));
                }
            }
        }
        p
    }
}

#[derive(Debug, Clone)]
pub struct Quantile {
    c: QuantileConfig,
    w: Window,
}

impl Quantile {
    pub fn new(c: QuantileConfig) -> Self {
        let w = Window::new(c.window);
        Quantile { c, w }
    }

    pub fn update(&mut self, x: f64) -> Option<Verdict> {
        let ready = self.w.len() >= 4.min(self.c.window);
        let verdict = ready.then(|| {
            let (lo, hi, what) = if self.c.upper.is_some() || self.c.lower.is_some() {
                (
                    self.c.lower.map(|q| self.w.quantile(q)),
                    self.c.upper.map(|q| self.w.quantile(q)),
                    "quantile bounds",
                )
            } else {
                let q1 = self.w.quantile(0.25);
                let q3 = self.w.quantile(0.75);
                // A zero IQR (a flat window) gets a small floor, as σ does in 3-sigma.
                let iqr = (q3 - q1).max((q3.abs() * 1e-3).max(1e-9));
                (
                    Some(q1 - self.c.k * iqr),
                    Some(q3 + self.c.k * iqr),
                    "Tukey fences",
                )
            };
            let width = match (lo, hi) {
                (Some(l), Some(h)) => (h - l).max(1e-9),
                _ => (self.w.quantile(0.75) - self.w.quantile(0.25)).max(1e-9),
            };
            let out_hi = hi.filter(|h| x > *h).map(|h| (x - h) / width);
            let out_lo = lo.filter(|l| x < *l).map(|l| (l - x) / width);
            match out_hi.or(out_lo) {
                Some(score) => Verdict {
                    value: x,
                    severity: Some(self.c.severity),
                    lower: lo,
                    upper: hi,
                    score,
                    reason: format!(
                        "{} is outside the {what} {} of the last {} points",
                        round(x),
                        band(lo, hi),
                        self.w.len()
                    ),
                },
                None => Verdict::normal(x, lo, hi, 0.0),
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

    #[test]
    fn check() {
        let mut spike = noisy(120, 40.0, 5.0);
        spike[90] = 95.0;
        type Case = (&'static str, Vec<f64>, QuantileConfig, Vec<usize>);
        let cases: Vec<Case> = vec![
            (
                "spike, tukey",
                spike.clone(),
                QuantileConfig::tukey(60, 3.0),
                vec![90],
            ),
            (
                "constant",
                vec![3.0; 80],
                QuantileConfig::tukey(20, 1.5),
                vec![],
            ),
            (
                "tiny window",
                vec![1.0, 2.0, 3.0, 2.0, 50.0],
                QuantileConfig::tukey(4, 1.5),
                vec![4],
            ),
        ];
        for (name, series, c, want) in cases {
            assert_eq!(
                fired(&mut DetectorConfig::Quantile(c).build(), &series),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn plain_upper_quantile() {
        let c = QuantileConfig {
            upper: Some(1.0),
            ..QuantileConfig::tukey(10, 1.5)
        };
        let mut d = DetectorConfig::Quantile(c).build();
        let series: Vec<f64> = (0..30).map(|i| (i % 10) as f64).chain([10.0]).collect();
        // Once the window holds a whole cycle, only a value above its maximum fires.
        let after_warmup: Vec<usize> = fired(&mut d, &series)
            .into_iter()
            .filter(|i| *i >= 10)
            .collect();
        assert_eq!(after_warmup, vec![30]);
    }
}
