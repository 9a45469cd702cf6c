//! Exponentially weighted moving average, as the design defines it:
//! S1 = x1, St = α·xt + (1−α)·St−1. A point is anomalous when it leaves the band
//! S ± k·σ, with σ the exponentially weighted standard deviation, or when the smoothed
//! value crosses a fixed bound.

use serde::Deserialize;

use super::{band, round, Severity, Verdict};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwmaConfig {
    /// Smoothing factor in (0, 1].
    pub alpha: f64,
    /// Band half-width in standard deviations. Default 3.
    #[serde(default = "default_k")]
    pub k: f64,
    /// Points to learn from before judging. Default 10.
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// Also fire when the smoothed value rises above this.
    pub smoothed_above: Option<f64>,
    /// Also fire when the smoothed value falls below this.
    pub smoothed_below: Option<f64>,
    /// Severity of a finding. Default warning.
    #[serde(default)]
    pub severity: Severity,
}

fn default_k() -> f64 {
    3.0
}
fn default_warmup() -> usize {
    10
}

impl EwmaConfig {
    pub fn new(alpha: f64, k: f64) -> Self {
        EwmaConfig {
            alpha,
            k,
            warmup: default_warmup(),
            smoothed_above: None,
            smoothed_below: None,
            severity: Severity::Warning,
        }
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            p.push(("alpha".into(), format!("{} is not in (0, 1]", self.alpha)));
        }
        if !(self.k > 0.0 && self.k.is_finite()) {
            p.push(("k".into(), format!("{} must be a positive number", self.k)));
        }
        p
    }
}

#[derive(Debug, Clone)]
pub struct Ewma {
    c: EwmaConfig,
    mean: Option<f64>,
    var: f64,
    seen: usize,
}

impl Ewma {
    pub fn new(c: EwmaConfig) -> Self {
        Ewma {
            c,
            mean: None,
            var: 0.0,
            seen: 0,
        }
    }

    /// The smoothed value after the points so far.
    pub fn smoothed(&self) -> Option<f64> {
        self.mean
    }

    /// Smooth a whole series (gaps and NaN skipped): the design's definition.
    pub fn smooth(alpha: f64, values: &[f64]) -> Vec<f64> {
        let mut e = Ewma::new(EwmaConfig::new(alpha, 3.0));
        values
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| {
                e.step(*v);
                e.mean.unwrap_or(*v)
            })
            .collect()
    }

    fn step(&mut self, x: f64) {
        let a = self.c.alpha;
        match self.mean {
            None => self.mean = Some(x),
            Some(m) => {
                let d = x - m;
                self.mean = Some(m + a * d);
                // Exponentially weighted variance (West 1979 / Finch 2009 form).
                self.var = (1.0 - a) * (self.var + a * d * d);
            }
        }
        self.seen += 1;
    }

    pub fn update(&mut self, x: f64) -> Option<Verdict> {
        let before = self.mean;
        let sd = self.var.sqrt();
        let judged = self.seen >= self.c.warmup.max(1);
        self.step(x);
        let m = before?;
        if !judged {
            return None;
        }
        let (lo, hi) = (m - self.c.k * sd, m + self.c.k * sd);
        let score = if sd > 0.0 {
            (x - m).abs() / sd
        } else if x == m {
            0.0
        } else {
            f64::INFINITY
        };
        let smoothed = self.mean.unwrap_or(x);
        let mut reason = None;
        if sd > 0.0 && (x < lo || x > hi) {
            reason = Some(format!(
                "{} is outside the EWMA band {} ({} standard deviations from {})",
                round(x),
                band(Some(lo), Some(hi)),
                round(score),
                round(m)
            ));
        } else if let Some(b) = self.c.smoothed_above.filter(|b| smoothed > *b) {
            reason = Some(format!(
                "the smoothed value {} is above {b}",
                round(smoothed)
            ));
        } else if let Some(b) = self.c.smoothed_below.filter(|b| smoothed < *b) {
            reason = Some(format!(
                "the smoothed value {} is below {b}",
                round(smoothed)
            ));
        }
        Some(match reason {
            None => Verdict::normal(x, Some(lo), Some(hi), score.min(f64::MAX)),
            Some(reason) => Verdict {
                value: x,
                severity: Some(self.c.severity),
                lower: Some(lo),
                upper: Some(hi),
                score: score.min(f64::MAX),
                reason,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{fired, noisy};
    use crate::detect::DetectorConfig;

    #[test]
    fn the_designs_example() {
        let got = Ewma::smooth(0.5, &[5.0, 3.0, 9.0, 2.0, 7.0, 2.0, 8.0, 6.0, 5.0, 4.0]);
        assert_eq!(
            got,
            vec![5.0, 4.0, 6.5, 4.25, 5.625, 3.8125, 5.90625, 5.953125, 5.4765625, 4.73828125]
        );
    }

    #[test]
    fn gaps_are_skipped_not_propagated() {
        let mut d = DetectorConfig::Ewma(EwmaConfig::new(0.5, 3.0)).build();
        d.update(Some(5.0));
        assert_eq!(d.update(None), None);
        assert_eq!(d.update(Some(f64::NAN)), None);
        d.update(Some(3.0));
        let crate::detect::Detector::Ewma(e) = &d else {
            unreachable!()
        };
        assert_eq!(e.smoothed(), Some(4.0));
    }

    #[test]
    fn a_spike_fires_and_noise_does_not() {
        // A small alpha keeps the variance estimate steady on noisy data.
        let mut d = DetectorConfig::Ewma(EwmaConfig::new(0.1, 4.0)).build();
        let mut series = noisy(200, 50.0, 2.0);
        series[150] = 90.0;
        assert_eq!(fired(&mut d, &series), vec![150]);
    }

    #[test]
    fn a_constant_series_is_quiet() {
        let mut d = DetectorConfig::Ewma(EwmaConfig::new(0.3, 3.0)).build();
        assert!(fired(&mut d, &[7.0; 100]).is_empty());
    }

    #[test]
    fn smoothed_threshold() {
        let mut c = EwmaConfig::new(0.5, 100.0);
        c.smoothed_above = Some(80.0);
        c.warmup = 1;
        let mut d = DetectorConfig::Ewma(c).build();
        let got = fired(&mut d, &[70.0, 75.0, 85.0, 90.0, 95.0]);
        assert_eq!(got, vec![3, 4]);
    }

    #[test]
    fn bad_parameters() {
        assert_eq!(EwmaConfig::new(0.0, 3.0).problems()[0].0, "alpha");
        assert_eq!(EwmaConfig::new(0.5, -1.0).problems()[0].0, "k");
    }
}
