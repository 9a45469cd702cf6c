//! A streaming isolation forest over lagged features: each point becomes the vector of
//! its last `lags` values, and the forest is retrained every `retrain_every` points on
//! the last `train_window` vectors, strictly from the past. Until the first training a
//! point gets no score.

use serde::Deserialize;

use super::iforest::{IsolationForest, IsolationForestConfig};
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaggedForestConfig {
    /// Values per feature vector (the point and the ones before it). Default 6.
    #[serde(default = "default_lags")]
    pub lags: usize,
    /// Vectors the forest is trained on (the most recent ones). Default 1000.
    #[serde(default = "default_train_window")]
    pub train_window: usize,
    /// Points between retrainings. Default 250.
    #[serde(default = "default_retrain_every")]
    pub retrain_every: usize,
    /// Vectors needed before the first training. Default 200.
    #[serde(default = "default_min_train")]
    pub min_train: usize,
    /// The forest itself.
    #[serde(default)]
    pub forest: IsolationForestConfig,
}

fn default_lags() -> usize {
    6
}
fn default_train_window() -> usize {
    1000
}
fn default_retrain_every() -> usize {
    250
}
fn default_min_train() -> usize {
    200
}

impl Default for LaggedForestConfig {
    fn default() -> Self {
        LaggedForestConfig {
            lags: default_lags(),
            train_window: default_train_window(),
            retrain_every: default_retrain_every(),
            min_train: default_min_train(),
            forest: IsolationForestConfig::default(),
        }
    }
}

impl LaggedForestConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.lags == 0 {
            p.push(("lags".into(), "must be at least 1".into()));
        }
        if self.retrain_every == 0 {
            p.push(("retrain_every".into(), "must be at least 1".into()));
        }
        if self.min_train < 2 || self.min_train > self.train_window {
            p.push((
                "min_train".into(),
                format!(
                    "{} is not in [2, train_window = {}]",
                    self.min_train, self.train_window
                ),
            ));
        }
        for (k, v) in self.forest.problems() {
            p.push((format!("forest.{k}"), v));
        }
        p
    }
}

/// The running detector.
#[derive(Debug, Clone)]
pub struct LaggedForest {
    c: LaggedForestConfig,
    recent: VecDeque<f64>,
    rows: VecDeque<Vec<f64>>,
    forest: Option<IsolationForest>,
    since_training: usize,
}

impl LaggedForest {
    pub fn new(c: LaggedForestConfig) -> Self {
        LaggedForest {
            recent: VecDeque::with_capacity(c.lags + 1),
            rows: VecDeque::with_capacity(c.train_window + 1),
            forest: None,
            since_training: 0,
            c,
        }
    }

    /// Score the next value in (0, 1]; `None` while learning or for a non-finite value.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        self.recent.push_back(x);
        if self.recent.len() > self.c.lags.max(1) {
            self.recent.pop_front();
        }
        if self.recent.len() < self.c.lags.max(1) {
            return None;
        }
        let row: Vec<f64> = self.recent.iter().copied().collect();
        let due = self.forest.is_none() || self.since_training >= self.c.retrain_every.max(1);
        if due && self.rows.len() >= self.c.min_train.max(2) {
            let rows: Vec<Vec<f64>> = self.rows.iter().cloned().collect();
            if let Ok(f) = IsolationForest::fit(&rows, &self.c.forest) {
                self.forest = Some(f);
                self.since_training = 0;
            }
        }
        let score = self.forest.as_ref().map(|f| f.score(&row));
        self.since_training += 1;
        self.rows.push_back(row);
        if self.rows.len() > self.c.train_window.max(2) {
            self.rows.pop_front();
        }
        score.filter(|s| s.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::noisy;

    #[test]
    fn learns_from_the_past_then_scores_an_outlier_high() {
        let mut d = LaggedForest::new(LaggedForestConfig {
            min_train: 100,
            ..Default::default()
        });
        let series = noisy(400, 10.0, 1.0);
        let scores: Vec<Option<f64>> = series.iter().map(|x| d.update(*x)).collect();
        assert!(scores[..105].iter().all(Option::is_none));
        assert!(scores[300].is_some());
        let typical = scores[300..]
            .iter()
            .flatten()
            .fold(0.0, |a: f64, b| a.max(*b));
        // Three points far off fill half of the lagged vector.
        d.update(40.0);
        d.update(40.0);
        let outlier = d.update(40.0).unwrap_or(0.0);
        assert!(outlier > typical && outlier > 0.6, "{outlier} vs {typical}");
        assert_eq!(d.update(f64::NAN), None);
    }
}
