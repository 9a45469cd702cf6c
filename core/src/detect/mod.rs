//! Anomaly detectors. Pure: no I/O, no clock, no InfluxDB types. Each reads one series
//! in time order, a point at a time, using only the past; NaN and gaps (`None`) are
//! skipped and change nothing. Every verdict says why: the value, the band it was
//! judged against, and a score.

mod ewma;
mod iforest;
mod lagged;
mod likelihood;
mod quantile;
mod sigma;
mod threshold;
mod window;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use ewma::{Ewma, EwmaConfig};
pub use iforest::{IsolationForest, IsolationForestConfig};
pub use lagged::{LaggedForest, LaggedForestConfig};
pub use likelihood::{Novelty, NoveltyConfig};
pub use quantile::{Quantile, QuantileConfig};
pub use sigma::{Sigma, SigmaConfig};
pub use threshold::{Threshold, ThresholdConfig};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Warning,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// The judgement on one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The point's value.
    pub value: f64,
    /// Whether it is anomalous, and how badly.
    pub severity: Option<Severity>,
    /// The band the value was judged against (either side may be open).
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// How anomalous, detector-specific: distance in band widths, or a probability-like
    /// score in [0, 1] for the isolation forest.
    pub score: f64,
    /// One line a person can read: what crossed what.
    pub reason: String,
}

impl Verdict {
    pub fn is_anomaly(&self) -> bool {
        self.severity.is_some()
    }

    fn normal(value: f64, lower: Option<f64>, upper: Option<f64>, score: f64) -> Self {
        Verdict {
            value,
            severity: None,
            lower,
            upper,
            score,
            reason: String::new(),
        }
    }
}

/// Formats a band for reasons: `[1.5, 9]`, `[-inf, 9]`.
pub(crate) fn band(lower: Option<f64>, upper: Option<f64>) -> String {
    let side =
        |v: Option<f64>, inf: &str| v.map_or_else(|| inf.to_owned(), |v| format!("{}", round(v)));
    format!("[{}, {}]", side(lower, "-inf"), side(upper, "inf"))
}

/// Four significant decimals, for messages.
pub(crate) fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// The single-series detectors a rule can name, as a closed set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DetectorConfig {
    Threshold(ThresholdConfig),
    Ewma(EwmaConfig),
    #[serde(rename = "3sigma", alias = "sigma")]
    Sigma(SigmaConfig),
    Quantile(QuantileConfig),
    /// The production detector: shape novelty, see [`Novelty`].
    Novelty(NoveltyConfig),
}

impl DetectorConfig {
    /// Problems with the parameters, each naming its key (relative to the detector).
    pub fn problems(&self) -> Vec<(String, String)> {
        match self {
            DetectorConfig::Threshold(c) => c.problems(),
            DetectorConfig::Ewma(c) => c.problems(),
            DetectorConfig::Sigma(c) => c.problems(),
            DetectorConfig::Quantile(c) => c.problems(),
            DetectorConfig::Novelty(c) => c.problems(),
        }
    }

    /// Points a detector takes in before it judges one (of an ordinary series; the
    /// novelty detector's records may come sooner): a rule's window must hold more.
    pub fn learning_points(&self) -> usize {
        match self {
            DetectorConfig::Threshold(_) => 0,
            DetectorConfig::Ewma(c) => c.warmup.max(1),
            DetectorConfig::Sigma(c) => 3.min(c.window),
            DetectorConfig::Quantile(c) => 4.min(c.window),
            DetectorConfig::Novelty(c) => {
                // The first shape is complete after `shape_len` blocks; judging starts
                // once `warmup` points' worth of shapes have been judged.
                let block = c.block.max(1);
                let shapes = c.warmup.max(1).div_ceil(block);
                (block * (c.shape_len.max(1) - 1) + block * shapes).saturating_sub(1)
            }
        }
    }

    pub fn build(&self) -> Detector {
        match self {
            DetectorConfig::Threshold(c) => Detector::Threshold(Threshold::new(c.clone())),
            DetectorConfig::Ewma(c) => Detector::Ewma(Ewma::new(c.clone())),
            DetectorConfig::Sigma(c) => Detector::Sigma(Sigma::new(c.clone())),
            DetectorConfig::Quantile(c) => Detector::Quantile(Quantile::new(c.clone())),
            DetectorConfig::Novelty(c) => Detector::Novelty(Novelty::new(c.clone())),
        }
    }
}

/// A running single-series detector.
#[derive(Debug, Clone)]
pub enum Detector {
    Threshold(Threshold),
    Ewma(Ewma),
    Sigma(Sigma),
    Quantile(Quantile),
    Novelty(Novelty),
}

impl Detector {
    /// Judge the next point. `None` for a gap, NaN, or while the detector is still
    /// learning (too few points to have a band).
    pub fn update(&mut self, value: Option<f64>) -> Option<Verdict> {
        let x = value.filter(|v| v.is_finite())?;
        match self {
            Detector::Threshold(d) => d.update(x),
            Detector::Ewma(d) => d.update(x),
            Detector::Sigma(d) => d.update(x),
            Detector::Quantile(d) => d.update(x),
            Detector::Novelty(d) => d.update(x),
        }
    }

    /// Judge the next point, taken at `t_ms` (milliseconds since the epoch, increasing).
    /// Detectors that use time (seasonality) get it; the others ignore it.
    pub fn update_at(&mut self, t_ms: i64, value: Option<f64>) -> Option<Verdict> {
        match self {
            Detector::Novelty(d) => d.update_at(t_ms, value.filter(|v| v.is_finite())?),
            _ => self.update(value),
        }
    }

    /// Run over a whole series; one entry per input point.
    pub fn run(&mut self, values: &[Option<f64>]) -> Vec<Option<Verdict>> {
        values.iter().map(|v| self.update(*v)).collect()
    }
}

#[cfg(test)]
mod table_tests;

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// Indices of the anomalous points.
    pub fn fired(d: &mut Detector, values: &[f64]) -> Vec<usize> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| d.update(Some(*v)).filter(Verdict::is_anomaly).map(|_| i))
            .collect()
    }

    /// A deterministic noisy level: `level ± amp`.
    pub fn noisy(n: usize, level: f64, amp: f64) -> Vec<f64> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                level + amp * ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
            })
            .collect()
    }
}
