//! Fixed bounds, with warning and critical levels on either side.

use serde::Deserialize;

use super::{band, Severity, Verdict};

/// Above `critical_above` is critical, above `warning_above` a warning; likewise below.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    pub warning_above: Option<f64>,
    pub critical_above: Option<f64>,
    pub warning_below: Option<f64>,
    pub critical_below: Option<f64>,
}

impl ThresholdConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let all = [
            self.warning_above,
            self.critical_above,
            self.warning_below,
            self.critical_below,
        ];
        if all.iter().all(Option::is_none) {
            p.push((
                "warning_above".into(),
                "set at least one of warning_above, critical_above, warning_below, critical_below"
                    .into(),
            ));
        }
        if all.iter().flatten().any(|v| !v.is_finite()) {
            p.push((
                "warning_above".into(),
                "bounds must be finite numbers".into(),
            ));
        }
        if let (Some(w), Some(c)) = (self.warning_above, self.critical_above) {
            if c < w {
                p.push((
                    "critical_above".into(),
                    format!("{c} is below warning_above {w}"),
                ));
            }
        }
        if let (Some(w), Some(c)) = (self.warning_below, self.critical_below) {
            if c > w {
                p.push((
                    "critical_below".into(),
                    format!("{c} is above warning_below {w}"),
                ));
            }
        }
        p
    }
}

#[derive(Debug, Clone)]
pub struct Threshold {
    c: ThresholdConfig,
}

impl Threshold {
    pub fn new(c: ThresholdConfig) -> Self {
        Threshold { c }
    }

    pub fn update(&mut self, x: f64) -> Option<Verdict> {
        let c = &self.c;
        let upper = c.warning_above.or(c.critical_above);
        let lower = c.warning_below.or(c.critical_below);
        let found = if c.critical_above.is_some_and(|b| x > b) {
            Some((Severity::Critical, "above", c.critical_above))
        } else if c.critical_below.is_some_and(|b| x < b) {
            Some((Severity::Critical, "below", c.critical_below))
        } else if c.warning_above.is_some_and(|b| x > b) {
            Some((Severity::Warning, "above", c.warning_above))
        } else if c.warning_below.is_some_and(|b| x < b) {
            Some((Severity::Warning, "below", c.warning_below))
        } else {
            None
        };
        let score = match (upper, lower) {
            (Some(u), _) if x > u => x - u,
            (_, Some(l)) if x < l => l - x,
            _ => 0.0,
        };
        Some(match found {
            None => Verdict::normal(x, lower, upper, 0.0),
            Some((severity, side, bound)) => Verdict {
                value: x,
                severity: Some(severity),
                lower,
                upper,
                score,
                reason: format!(
                    "{x} is {side} the {severity} bound {} (band {})",
                    bound.unwrap_or(f64::NAN),
                    band(lower, upper)
                ),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detector, DetectorConfig};

    #[test]
    fn levels() {
        let c = ThresholdConfig {
            warning_above: Some(80.0),
            critical_above: Some(95.0),
            warning_below: Some(5.0),
            ..Default::default()
        };
        let mut d = DetectorConfig::Threshold(c).build();
        let sev = |d: &mut Detector, x: f64| d.update(Some(x)).and_then(|v| v.severity);
        assert_eq!(sev(&mut d, 50.0), None);
        assert_eq!(sev(&mut d, 80.0), None, "on the bound is not over it");
        assert_eq!(sev(&mut d, 81.0), Some(Severity::Warning));
        assert_eq!(sev(&mut d, 99.0), Some(Severity::Critical));
        assert_eq!(sev(&mut d, 1.0), Some(Severity::Warning));
        assert_eq!(d.update(Some(f64::NAN)), None);
        assert_eq!(d.update(None), None);
        let v = d.update(Some(99.0)).unwrap();
        assert_eq!(v.reason, "99 is above the critical bound 95 (band [5, 80])");
    }

    #[test]
    fn problems_name_keys() {
        assert_eq!(ThresholdConfig::default().problems().len(), 1);
        let c = ThresholdConfig {
            warning_above: Some(90.0),
            critical_above: Some(80.0),
            ..Default::default()
        };
        assert_eq!(c.problems()[0].0, "critical_above");
    }
}
