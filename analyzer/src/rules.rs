//! `[[analyzer.rules]]`: what to watch and how. Raw config (`RuleConfig`, all keys the
//! user may write) is validated into [`Rule`]s; every problem names the rule and key,
//! e.g. `analyzer.rules[2] (cpu-ewma).window`.
//!
//! Three kinds of rule, told apart by `detector.type`:
//! - a series rule (`threshold`, `ewma`, `3sigma`, `quantile`, `novelty`): one series
//!   per host (and per `group_by` tag), aggregated per `step` over `window`;
//! - `iforest`: one isolation forest per host over several `features`, trained on
//!   `history` and retrained every `retrain`;
//! - `nodata`: a host is silent when its newest point is older than `after`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hostscope_core::config::{ConfigErrors, HumanDuration};
use hostscope_core::detect::{
    DetectorConfig, EwmaConfig, IsolationForestConfig, NoveltyConfig, QuantileConfig, Severity,
    SigmaConfig, ThresholdConfig,
};
use hostscope_core::influx::query::check_name;
use hostscope_core::influx::{Aggregate, Every};
use serde::Deserialize;

use crate::lifecycle::Timing;

/// One `[[analyzer.rules]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name: shown in alerts and messages, the `rule` tag of `alerts`. Required.
    pub name: Option<String>,
    /// Measurement of the watched series (series and nodata rules). nodata default `cpu`.
    pub measurement: Option<String>,
    /// Field of the watched series (series and nodata rules). nodata default `usage_idle`.
    pub field: Option<String>,
    /// Tag equality filters. nodata default `{ cpu = "cpu-total" }` with its default
    /// measurement.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Only this host. Default: every host, one alert per host.
    pub host: Option<String>,
    /// Tags besides `host` that split the series into separate alerts (e.g. `["path"]`
    /// for `disk`). Default none: series of one host are merged.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Aggregate per step: mean, max, min, last, sum, count, rate, pNN. Default `mean`.
    pub aggregate: Option<String>,
    /// How much history each evaluation reads (series rules). Default `1h`.
    pub window: Option<HumanDuration>,
    /// Aggregation step. Default `1m`.
    pub step: Option<HumanDuration>,
    /// Steps newer than this are left for the next evaluation, as their data may still
    /// be arriving. Default `15s`.
    pub delay: Option<HumanDuration>,
    /// The detector and its parameters (`type = ...`). Required.
    pub detector: Option<RuleDetector>,
    /// A breach must hold this long before the alert fires. Default `0s`.
    #[serde(rename = "for")]
    pub for_: Option<HumanDuration>,
    /// A firing alert resolves only after it has been clear this long. Default `0s`.
    pub clear_for: Option<HumanDuration>,
    /// Remind about a firing alert this often; `0s` never. Default `4h`.
    pub repeat_interval: Option<HumanDuration>,
    /// Severity of the alert. Default: the detector's verdict (threshold levels), or
    /// `warning`.
    pub severity: Option<Severity>,
    /// Extra labels, carried into alerts and messages.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Channels to notify (names under `[analyzer.channels]`, or `email`). Default:
    /// every configured channel.
    pub channels: Option<Vec<String>>,
}

/// `detector = { type = ..., ... }` of a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleDetector {
    Threshold(ThresholdConfig),
    Ewma(EwmaConfig),
    #[serde(rename = "3sigma", alias = "sigma")]
    Sigma(SigmaConfig),
    Quantile(QuantileConfig),
    Novelty(NoveltyConfig),
    Iforest(ForestRuleConfig),
    Nodata(NoDataConfig),
}

/// `detector = { type = "iforest", ... }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestRuleConfig {
    /// Trees in the forest. Default 100.
    pub trees: Option<usize>,
    /// Subsample size per tree. Default 256.
    pub sample_size: Option<usize>,
    /// Random seed, so runs repeat. Default 42.
    pub seed: Option<u64>,
    /// Anomaly score (0..1) at or above which a point is anomalous. Default 0.7.
    pub threshold: Option<f64>,
    /// The history the forest is trained on. Default `7d`.
    pub history: Option<HumanDuration>,
    /// How often the forest is retrained. Default `6h`.
    pub retrain: Option<HumanDuration>,
    /// Fewest complete feature vectors to train on. Default 64.
    pub min_samples: Option<usize>,
    /// The feature vector. Default: cpu usage_user, usage_system, usage_iowait
    /// (cpu-total), mem used_percent, system load1.
    pub features: Option<Vec<FeatureConfig>>,
}

/// One feature of an isolation-forest rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    pub measurement: String,
    pub field: String,
    /// Tag equality filters, e.g. `{ interface = "eth0" }`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Aggregate per step; `rate` for counters. Default `mean`.
    pub aggregate: Option<String>,
}

/// `detector = { type = "nodata", ... }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoDataConfig {
    /// A host is silent when its newest point is older than this. Default `1m`.
    pub after: Option<HumanDuration>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    /// Tag filters, with `host` when the rule is for one host.
    pub tags: BTreeMap<String, String>,
    pub step: Duration,
    pub delay: Duration,
    pub timing: Timing,
    pub severity: Option<Severity>,
    pub labels: BTreeMap<String, String>,
    /// Resolved channel names (never empty unless no channel is configured).
    pub channels: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Series {
        measurement: String,
        field: String,
        aggregate: Aggregate,
        window: Duration,
        /// `host` first, then the rule's `group_by`.
        group_by: Vec<String>,
        detector: DetectorConfig,
    },
    Forest {
        features: Vec<Feature>,
        forest: IsolationForestConfig,
        threshold: f64,
        history: Duration,
        retrain: Duration,
        min_samples: usize,
    },
    NoData {
        measurement: String,
        field: String,
        after: Duration,
        /// Hosts seen in this much history are watched. The rule's `window`, default 24h.
        window: Duration,
    },
}

/// A validated feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub measurement: String,
    pub field: String,
    pub tags: BTreeMap<String, String>,
    pub aggregate: Aggregate,
}

impl Feature {
    /// `cpu.usage_user`, for messages.
    pub fn label(&self) -> String {
        format!("{}.{}", self.measurement, self.field)
    }
}

fn default_features() -> Vec<Feature> {
    let cpu = || BTreeMap::from([("cpu".to_owned(), "cpu-total".to_owned())]);
    let f = |m: &str, field: &str, tags: BTreeMap<String, String>| Feature {
        measurement: m.into(),
        field: field.into(),
        tags,
        aggregate: Aggregate::Mean,
    };
    vec![
        f("cpu", "usage_user", cpu()),
        f("cpu", "usage_system", cpu()),
        f("cpu", "usage_iowait", cpu()),
        f("mem", "used_percent", BTreeMap::new()),
        f("system", "load1", BTreeMap::new()),
    ]
}

/// Validate every rule. `channels` are the configured channel names; a rule naming
/// another is an error.
pub fn validate(configs: &[RuleConfig], channels: &[String]) -> Result<Vec<Rule>, ConfigErrors> {
    let mut errors = ConfigErrors::new("configuration");
    let mut rules = Vec::with_capacity(configs.len());
    let mut seen = BTreeSet::new();
    for (i, c) in configs.iter().enumerate() {
        let key = format!("analyzer.rules[{i}]");
        let mut errs = ConfigErrors::new("configuration");
        let name = c.name.as_deref().unwrap_or("");
        if name.trim().is_empty() {
            errs.push(format!("{key}.name"), "is required (a unique rule name)");
        } else if name.chars().any(char::is_control) {
            errs.push(format!("{key}.name"), "must not contain control characters");
        } else if !seen.insert(name.to_owned()) {
            errs.push(
                format!("{key}.name"),
                format!("{name:?} is used by another rule"),
            );
        }
        let rule = validate_one(c, &key, channels, &mut errs);
        if errs.is_empty() {
            rules.extend(rule);
        }
        // Name the rule in each message, so the user finds it.
        for issue in errs.issues {
            let message = if name.is_empty() {
                issue.message
            } else {
                format!("(rule {name:?}) {}", issue.message)
            };
            errors.push(issue.key, message);
        }
    }
    errors.into_result(rules)
}

fn validate_one(
    c: &RuleConfig,
    key: &str,
    channels: &[String],
    errors: &mut ConfigErrors,
) -> Option<Rule> {
    let k = |sub: &str| format!("{key}.{sub}");
    let mut tags = c.tags.clone();
    for (t, v) in &c.tags {
        if let Err(e) = check_name("tags", t) {
            errors.push(k(&format!("tags.{t}")), e.to_string());
        }
        if v.chars().any(char::is_control) {
            errors.push(
                k(&format!("tags.{t}")),
                "must not contain control characters",
            );
        }
    }
    if tags.contains_key("host") {
        errors.push(k("tags.host"), "use the rule's `host` key to pick one host");
    }
    if let Some(h) = &c.host {
        if h.is_empty() || h.chars().any(char::is_control) {
            errors.push(k("host"), "must be a host name");
        }
        tags.insert("host".into(), h.clone());
    }
    for g in &c.group_by {
        if g == "host" {
            errors.push(k("group_by"), "`host` is always grouped; list other tags");
        } else if let Err(e) = check_name("group_by", g) {
            errors.push(k("group_by"), e.to_string());
        }
    }
    let step = c.step.map_or(Duration::from_secs(60), |d| d.get());
    if step < Duration::from_secs(1) {
        errors.push(k("step"), "must be at least 1s");
    } else if Every::from_duration(step).is_err() {
        errors.push(k("step"), "must be a whole number of milliseconds");
    }
    let delay = c.delay.map_or(Duration::from_secs(15), |d| d.get());
    let timing = Timing {
        for_: c.for_.map_or(Duration::ZERO, |d| d.get()),
        clear_for: c.clear_for.map_or(Duration::ZERO, |d| d.get()),
        repeat_interval: c
            .repeat_interval
            .map_or(Duration::from_secs(4 * 3600), |d| d.get()),
        ..Timing::default()
    };
    for (l, v) in &c.labels {
        if l.is_empty() || l.chars().any(char::is_control) || v.chars().any(char::is_control) {
            errors.push(k(&format!("labels.{l}")), "labels must be printable text");
        }
    }
    let channels = match &c.channels {
        None => channels.to_vec(),
        Some(list) => {
            for name in list {
                if !channels.contains(name) {
                    let known = if channels.is_empty() {
                        "none is configured ([smtp] or [analyzer.channels.<name>])".to_owned()
                    } else {
                        format!("configured: {}", channels.join(", "))
                    };
                    errors.push(k("channels"), format!("unknown channel {name:?}; {known}"));
                }
            }
            list.clone()
        }
    };
    let aggregate = |s: &Option<String>, key: &str, errors: &mut ConfigErrors| match s
        .as_deref()
        .unwrap_or("mean")
        .parse::<Aggregate>()
    {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(key.to_owned(), e.to_string());
            None
        }
    };
    let name_of = |s: &Option<String>, key: &str, errors: &mut ConfigErrors| -> Option<String> {
        match s {
            None => {
                errors.push(key.to_owned(), "is required for this detector");
                None
            }
            Some(s) => match check_name("name", s) {
                Ok(()) => Some(s.clone()),
                Err(e) => {
                    errors.push(key.to_owned(), e.to_string());
                    None
                }
            },
        }
    };
    let single = |d: DetectorConfig, errors: &mut ConfigErrors| {
        for (p, msg) in d.problems() {
            errors.push(k(&format!("detector.{p}")), msg);
        }
        let measurement = name_of(&c.measurement, &k("measurement"), errors);
        let field = name_of(&c.field, &k("field"), errors);
        let aggregate = aggregate(&c.aggregate, &k("aggregate"), errors);
        let window = c.window.map_or(Duration::from_secs(3600), |d| d.get());
        let learning = d.learning_points();
        if window < step * 2 {
            errors.push(k("window"), "must hold at least two steps");
        } else if !step.is_zero() && window.as_nanos() / step.as_nanos() <= learning as u128 {
            errors.push(
                k("window"),
                format!(
                    "holds {} steps, but this detector learns for {learning} before it judges one; make it at least {} steps long",
                    window.as_nanos() / step.as_nanos(),
                    learning + 1
                ),
            );
        }
        Some(RuleKind::Series {
            measurement: measurement?,
            field: field?,
            aggregate: aggregate?,
            window,
            group_by: std::iter::once("host".to_owned())
                .chain(c.group_by.iter().cloned())
                .collect(),
            detector: d,
        })
    };
    let not_for = |what: &str, keys: &[(&str, bool)], errors: &mut ConfigErrors| {
        for (name, set) in keys {
            if *set {
                errors.push(k(name), format!("does not apply to {what} rules"));
            }
        }
    };
    let Some(detector) = &c.detector else {
        errors.push(
            k("detector"),
            "is required, e.g. detector = { type = \"threshold\", critical_above = 90.0 }",
        );
        return None;
    };
    let kind = match detector {
        RuleDetector::Threshold(d) => single(DetectorConfig::Threshold(d.clone()), errors),
        RuleDetector::Ewma(d) => single(DetectorConfig::Ewma(d.clone()), errors),
        RuleDetector::Sigma(d) => single(DetectorConfig::Sigma(d.clone()), errors),
        RuleDetector::Quantile(d) => single(DetectorConfig::Quantile(d.clone()), errors),
        RuleDetector::Novelty(d) => single(DetectorConfig::Novelty(d.clone()), errors),
        RuleDetector::Iforest(f) => {
            not_for(
                "iforest",
                &[
                    ("measurement", c.measurement.is_some()),
                    ("field", c.field.is_some()),
                    ("aggregate", c.aggregate.is_some()),
                    ("window", c.window.is_some()),
                    ("group_by", !c.group_by.is_empty()),
                    ("tags", !c.tags.is_empty()),
                ],
                errors,
            );
            let forest = IsolationForestConfig {
                trees: f.trees.unwrap_or(100),
                sample_size: f.sample_size.unwrap_or(256),
                seed: f.seed.unwrap_or(42),
            };
            for (p, msg) in forest.problems() {
                errors.push(k(&format!("detector.{p}")), msg);
            }
            let threshold = f.threshold.unwrap_or(0.7);
            if !(threshold > 0.0 && threshold < 1.0) {
                errors.push(k("detector.threshold"), "must be between 0 and 1");
            }
            let history = f
                .history
                .map_or(Duration::from_secs(7 * 86400), |d| d.get());
            if history < step * 16 {
                errors.push(k("detector.history"), "must hold at least 16 steps");
            }
            let retrain = f.retrain.map_or(Duration::from_secs(6 * 3600), |d| d.get());
            if retrain < step {
                errors.push(k("detector.retrain"), "must be at least one step");
            }
            let min_samples = f.min_samples.unwrap_or(64);
            if min_samples < 2 {
                errors.push(k("detector.min_samples"), "must be at least 2");
            }
            let features = match &f.features {
                None => default_features(),
                Some(list) => {
                    if list.is_empty() {
                        errors.push(k("detector.features"), "needs at least one feature");
                    }
                    list.iter()
                        .enumerate()
                        .filter_map(|(j, fc)| {
                            let fk = |s: &str| k(&format!("detector.features[{j}].{s}"));
                            let m =
                                name_of(&Some(fc.measurement.clone()), &fk("measurement"), errors);
                            let fi = name_of(&Some(fc.field.clone()), &fk("field"), errors);
                            let a = aggregate(&fc.aggregate, &fk("aggregate"), errors);
                            for t in fc.tags.keys() {
                                if t == "host" {
                                    errors.push(fk("tags.host"), "features are per host already");
                                } else if let Err(e) = check_name("tags", t) {
                                    errors.push(fk(&format!("tags.{t}")), e.to_string());
                                }
                            }
                            Some(Feature {
                                measurement: m?,
                                field: fi?,
                                tags: fc.tags.clone(),
                                aggregate: a?,
                            })
                        })
                        .collect()
                }
            };
            Some(RuleKind::Forest {
                features,
                forest,
                threshold,
                history,
                retrain,
                min_samples,
            })
        }
        RuleDetector::Nodata(n) => {
            not_for(
                "nodata",
                &[
                    ("aggregate", c.aggregate.is_some()),
                    ("group_by", !c.group_by.is_empty()),
                ],
                errors,
            );
            let defaults = c.measurement.is_none() && c.field.is_none();
            if defaults && c.tags.is_empty() {
                tags.insert("cpu".into(), "cpu-total".into());
            }
            let measurement = c.measurement.clone().unwrap_or_else(|| "cpu".into());
            let field = c.field.clone().unwrap_or_else(|| "usage_idle".into());
            for (key, v) in [("measurement", &measurement), ("field", &field)] {
                if let Err(e) = check_name("name", v) {
                    errors.push(k(key), e.to_string());
                }
            }
            let after = n.after.map_or(Duration::from_secs(60), |d| d.get());
            if after < Duration::from_secs(1) {
                errors.push(k("detector.after"), "must be at least 1s");
            }
            let window = c.window.map_or(Duration::from_secs(86400), |d| d.get());
            if window <= after {
                errors.push(k("window"), "must be longer than detector.after");
            }
            Some(RuleKind::NoData {
                measurement,
                field,
                after,
                window,
            })
        }
    }?;
    Some(Rule {
        name: c.name.clone().unwrap_or_default(),
        kind,
        tags,
        step,
        delay,
        timing,
        severity: c.severity,
        labels: c.labels.clone(),
        channels,
    })
}

impl Rule {
    /// One-line description for logs and the API.
    pub fn describe(&self) -> String {
        match &self.kind {
            RuleKind::Series {
                measurement,
                field,
                aggregate,
                ..
            } => format!("{aggregate}({measurement}.{field})"),
            RuleKind::Forest { features, .. } => format!(
                "iforest({})",
                features
                    .iter()
                    .map(Feature::label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RuleKind::NoData {
                measurement, field, ..
            } => format!("nodata({measurement}.{field})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Load `[[analyzer.rules]]` through the real config loader (unknown keys refused).
    fn parse(toml_text: &str) -> Vec<RuleConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostscope.toml");
        let text = toml_text.replace("[[rules]]", "[[analyzer.rules]]");
        std::fs::write(&path, text).unwrap();
        let cfg: crate::FileConfig =
            hostscope_core::config::load(&hostscope_core::config::Sources::file(&path)).unwrap();
        cfg.analyzer.rules
    }

    fn errors_of(toml_text: &str, channels: &[&str]) -> Vec<String> {
        let channels: Vec<String> = channels.iter().map(|s| (*s).to_owned()).collect();
        match validate(&parse(toml_text), &channels) {
            Ok(_) => vec![],
            Err(e) => e.issues.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_issue_example_validates() {
        let rules = validate(
            &parse(
                r#"
                [[rules]]
                name = "cpu-ewma"
                measurement = "cpu"
                field = "usage_user"
                tags = { cpu = "cpu-total" }
                window = "2h"
                step = "1m"
                detector = { type = "ewma", alpha = 0.3, k = 4.0 }
                for = "2m"
                severity = "critical"
                channels = ["email"]
                "#,
            ),
            &["email".to_owned()],
        )
        .unwrap();
        assert_eq!(rules.len(), 1);
        let r = &rules[0];
        assert_eq!(r.timing.for_, Duration::from_secs(120));
        assert_eq!(r.severity, Some(Severity::Critical));
        match &r.kind {
            RuleKind::Series {
                window, group_by, ..
            } => {
                assert_eq!(*window, Duration::from_secs(7200));
                assert_eq!(group_by, &["host".to_owned()]);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn every_problem_names_its_rule_and_key() {
        let errs = errors_of(
            r#"
            [[rules]]
            name = "a"
            measurement = "cpu"
            detector = { type = "ewma", alpha = 1.5 }
            channels = ["pager"]
            step = "0s"

            [[rules]]
            name = "a"
            detector = { type = "iforest", threshold = 2.0, features = [{ measurement = "net", field = "bytes_recv", aggregate = "median" }] }
            "#,
            &["email"],
        );
        let joined = errs.join("\n");
        for want in [
            "analyzer.rules[0].field: (rule \"a\") is required",
            "analyzer.rules[0].detector.alpha: (rule \"a\")",
            "analyzer.rules[0].channels: (rule \"a\") unknown channel \"pager\"; configured: email",
            "analyzer.rules[0].step: (rule \"a\") must be at least 1s",
            "analyzer.rules[1].name: (rule \"a\") \"a\" is used by another rule",
            "analyzer.rules[1].detector.threshold: (rule \"a\") must be between 0 and 1",
            "analyzer.rules[1].detector.features[0].aggregate: (rule \"a\") invalid agg: unknown aggregate \"median\"",
        ] {
            assert!(joined.contains(want), "missing {want:?} in\n{joined}");
        }
    }

    #[test]
    fn nodata_and_forest_defaults() {
        let rules = validate(
            &parse(
                r#"
                [[rules]]
                name = "silent"
                detector = { type = "nodata", after = "2m" }
                [[rules]]
                name = "forest"
                host = "db-1"
                detector = { type = "iforest" }
                "#,
            ),
            &[],
        )
        .unwrap();
        match &rules[0].kind {
            RuleKind::NoData {
                measurement,
                field,
                after,
                window,
            } => {
                assert_eq!(
                    (measurement.as_str(), field.as_str()),
                    ("cpu", "usage_idle")
                );
                assert_eq!(*after, Duration::from_secs(120));
                assert_eq!(*window, Duration::from_secs(86400));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(
            rules[0].tags.get("cpu").map(String::as_str),
            Some("cpu-total")
        );
        match &rules[1].kind {
            RuleKind::Forest {
                features,
                threshold,
                ..
            } => {
                assert_eq!(features.len(), 5);
                assert_eq!(*threshold, 0.7);
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(rules[1].tags.get("host").map(String::as_str), Some("db-1"));
        assert!(rules[1].channels.is_empty());
    }

    #[test]
    fn a_window_too_short_for_its_detector_is_refused() {
        let rule = |window: &str| {
            format!(
                r#"
                [[rules]]
                name = "n"
                measurement = "cpu"
                field = "usage_user"
                step = "5m"
                window = "{window}"
                detector = {{ type = "novelty" }}
                "#
            )
        };
        let errs = errors_of(&rule("1d"), &[]).join("\n");
        assert!(
            errs.contains(
                "rules[0].window: (rule \"n\") holds 288 steps, but this detector learns for 305 before it judges one; make it at least 306 steps long"
            ),
            "{errs}"
        );
        assert_eq!(errors_of(&rule("3d"), &[]), Vec::<String>::new());
    }

    #[test]
    fn keys_that_do_not_apply_are_refused() {
        let errs = errors_of(
            r#"
            [[rules]]
            name = "f"
            measurement = "cpu"
            group_by = ["cpu"]
            detector = { type = "iforest" }
            [[rules]]
            name = "h"
            measurement = "cpu"
            field = "usage_idle"
            tags = { host = "x" }
            group_by = ["host"]
            detector = { type = "threshold", critical_above = 90.0 }
            "#,
            &[],
        )
        .join("\n");
        assert!(
            errs.contains("rules[0].measurement: (rule \"f\") does not apply to iforest rules"),
            "{errs}"
        );
        assert!(
            errs.contains("rules[0].group_by: (rule \"f\") does not apply"),
            "{errs}"
        );
        assert!(
            errs.contains("rules[1].tags.host: (rule \"h\") use the rule's `host` key"),
            "{errs}"
        );
        assert!(
            errs.contains("rules[1].group_by: (rule \"h\") `host` is always grouped"),
            "{errs}"
        );
    }
}
