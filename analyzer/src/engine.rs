//! The evaluation engine: every `interval`, each rule queries its window (aggregation
//! pushed down to InfluxDB), runs its detector, and the verdicts drive the alert
//! lifecycles; transitions become events, grouped into notifications, and `alerts`
//! history points.
//!
//! Steps are judged in data time: each series continues after the newest step it has
//! already observed, so an analyzer that was down catches up on the data that arrived
//! meanwhile (a condition that held while it was away still fires, then resolves), and
//! a restart observes no step twice. A series seen for the first time is judged over
//! its last `for` + one step, so a condition already holding long enough fires at once.
//!
//! Rules are evaluated concurrently (at most `concurrency` at a time), each within
//! `timeout`; one that fails is logged and counted and never stops the others. The
//! detectors are pure and the clock is passed in, so tests drive cycles directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hostscope_core::detect::{IsolationForest, Severity, Verdict};
use hostscope_core::influx::{Client, Every, LastQuery, Series, SeriesQuery, TimeRange};
use hostscope_core::lineproto::{encode, Precision};
use hostscope_core::point::Point;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::lifecycle::{Action, State};
use crate::notify::outbox::Outbox;
use crate::notify::{AlertEvent, EventKind, Notification};
use crate::rules::{Feature, Rule, RuleKind};
use crate::state::{alert_id, AlertRecord, Observation, PendingGroup, StateError, Store};

/// How events are grouped into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One message per host.
    #[default]
    Host,
    /// One message per rule.
    Rule,
}

/// The engine's settings, from `[analyzer]`.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub state_dir: std::path::PathBuf,
    pub concurrency: usize,
    pub timeout: Duration,
    pub group_by: GroupBy,
    pub group_wait: Duration,
}

/// Counters for `hostscope_internal` and `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub cycles: AtomicU64,
    pub evaluations: AtomicU64,
    pub evaluation_failures: AtomicU64,
    pub events: AtomicU64,
    pub silenced_events: AtomicU64,
    pub history_write_failures: AtomicU64,
}

/// State shared with the HTTP API.
#[derive(Debug)]
pub struct Shared {
    pub store: Mutex<Store>,
    pub stats: EngineStats,
    pub state_dir: std::path::PathBuf,
    pub rules: Vec<Arc<Rule>>,
}

impl Shared {
    /// Persist the store (called with the lock held, so writes never interleave).
    pub fn save(&self, store: &Store) -> Result<(), StateError> {
        store.save(&self.state_dir)
    }
}

/// A trained forest for one (rule, host).
#[derive(Debug, Clone)]
struct Trained {
    forest: IsolationForest,
    trained_at_ms: i64,
}

type Models = HashMap<String, Trained>;

/// One step's judgement.
#[derive(Debug, Clone)]
struct Step {
    t_ms: i64,
    obs: Option<Observation>,
}

/// The judged steps of one series.
#[derive(Debug, Clone)]
struct SeriesResult {
    tags: BTreeMap<String, String>,
    steps: Vec<Step>,
}

/// What one cycle produced.
#[derive(Debug, Default)]
pub struct Cycle {
    /// Notifications due now, with the channels each goes to.
    pub notifications: Vec<(Notification, Vec<String>)>,
    pub evaluated: usize,
    pub failed: usize,
}

/// Where due notifications go: the durable outbox, and a wake-up for its sender.
#[derive(Debug, Clone)]
pub struct Sink {
    pub outbox: Arc<Outbox>,
    pub wake: Arc<tokio::sync::Notify>,
}

pub struct Engine {
    client: Client,
    sink: Option<Sink>,
    settings: EngineSettings,
    shared: Arc<Shared>,
    /// Per rule index: trained forests by host.
    models: Vec<Models>,
    extra_metrics: std::sync::Mutex<Vec<(&'static str, i64)>>,
    /// Per rule index: the end of the range it last evaluated.
    last_end: Vec<Option<i64>>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

impl Engine {
    /// An engine over `rules`, with the state loaded from `settings.state_dir`.
    pub fn new(
        client: Client,
        rules: Vec<Rule>,
        settings: EngineSettings,
    ) -> Result<Self, StateError> {
        let mut store = Store::load(&settings.state_dir)?;
        // Alerts of rules that are gone: close their history and forget them.
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        let gone: Vec<String> = store
            .alerts
            .values()
            .filter(|a| !names.contains(&a.rule.as_str()))
            .map(|a| a.id.clone())
            .collect();
        for id in gone {
            if let Some(a) = store.alerts.remove(&id) {
                if a.lifecycle.state == State::Firing {
                    let now = a.last_step_ms.unwrap_or(a.last_seen_ms);
                    store.points.extend(history_line(&a, "resolved", now));
                }
                tracing::info!(message = "forgetting the alert of a removed rule", rule = %a.rule, id = %a.id);
            }
        }
        let models = vec![Models::new(); rules.len()];
        let n_rules = rules.len();
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            stats: EngineStats::default(),
            state_dir: settings.state_dir.clone(),
            rules: rules.into_iter().map(Arc::new).collect(),
        });
        Ok(Engine {
            client,
            sink: None,
            settings,
            shared,
            models,
            extra_metrics: std::sync::Mutex::new(Vec::new()),
            last_end: vec![None; n_rules],
        })
    }

    /// Queue due notifications in this outbox (without one, they are only returned).
    pub fn set_sink(&mut self, sink: Sink) {
        self.sink = Some(sink);
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// One evaluation cycle at `now_ms`: evaluate every rule, apply the verdicts, write
    /// history, and return the notifications that are due.
    pub async fn evaluate(&mut self, now_ms: i64) -> Cycle {
        self.shared.stats.cycles.fetch_add(1, Ordering::Relaxed);
        let rules = self.shared.rules.clone();
        let results = self.run_rules(&rules, now_ms).await;
        let stats = &self.shared.stats;
        let mut cycle = Cycle::default();
        let mut store = self.shared.store.lock().await;
        for (i, result) in results.into_iter().enumerate() {
            let rule = &rules[i];
            match result {
                Ok(series) => {
                    cycle.evaluated += 1;
                    stats.evaluations.fetch_add(1, Ordering::Relaxed);
                    apply(
                        &mut store,
                        rule,
                        series,
                        now_ms,
                        stats,
                        self.settings.group_by,
                    );
                }
                Err(error) => {
                    cycle.failed += 1;
                    stats.evaluation_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(message = "rule evaluation failed", rule = %rule.name, %error);
                }
            }
        }
        let due = take_due_groups(&mut store, now_ms, self.settings.group_wait);
        // Into the outbox (on disk) before the state forgets them; a group that cannot
        // be queued stays for the next cycle.
        for group in due {
            let notification = Notification {
                group: group.group.clone(),
                events: group.events.clone(),
            };
            if let Some(sink) = &self.sink {
                match sink.outbox.enqueue(&notification, &group.channels, now_ms) {
                    Err(error) => {
                        tracing::error!(message = "cannot queue a notification; will retry", group = %group.group, %error);
                        store.groups.push(group);
                        continue;
                    }
                    // Already queued before a restart: nothing new to deliver.
                    Ok(ids) if ids.is_empty() => {}
                    Ok(_) => sink.wake.notify_one(),
                }
            }
            cycle.notifications.push((notification, group.channels));
        }
        store.prune_silences(now_ms);
        forget_stale(&mut store, &rules, now_ms);
        if let Err(error) = self.shared.save(&store) {
            tracing::error!(message = "cannot save the alert state", %error);
        }
        let lines = store.points.clone();
        let internal = self.internal_line(&store, now_ms);
        drop(store);
        self.write_history(lines, internal).await;
        cycle
    }

    /// This cycle's `hostscope_internal` point (component `analyzer`): cumulative
    /// counters and the alerts pending and firing now.
    fn internal_line(&self, store: &Store, now_ms: i64) -> Option<String> {
        let s = &self.shared.stats;
        let load = |c: &AtomicU64| i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let count = |st: State| {
            store
                .alerts
                .values()
                .filter(|a| a.lifecycle.state == st)
                .count() as i64
        };
        let mut b = Point::builder("hostscope_internal")
            .tag("component", "analyzer")
            .field("cycles", load(&s.cycles))
            .field("evaluations", load(&s.evaluations))
            .field("evaluation_failures", load(&s.evaluation_failures))
            .field("events", load(&s.events))
            .field("silenced_events", load(&s.silenced_events))
            .field("history_write_failures", load(&s.history_write_failures))
            .field("alerts_firing", count(State::Firing))
            .field("alerts_pending", count(State::Pending))
            .field("history_backlog", store.points.len() as i64)
            .timestamp(now_ms.saturating_mul(1_000_000));
        for (name, value) in self
            .extra_metrics
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
        {
            b = b.field(name, value);
        }
        let p = b.build().ok()?;
        let mut buf = Vec::new();
        encode(&p, Precision::Nanoseconds, &mut buf);
        String::from_utf8(buf).ok().map(|l| l.trim_end().to_owned())
    }

    /// Counters of other parts (the outbox) to add to the analyzer's self-metrics.
    pub fn set_extra_metrics(&self, metrics: Vec<(&'static str, i64)>) {
        if let Ok(mut m) = self.extra_metrics.lock() {
            *m = metrics;
        }
    }

    /// Write pending `alerts` points (and the self-metrics point, which is not kept
    /// when it cannot be written); the ones written leave the store, the others stay
    /// for the next cycle.
    async fn write_history(&self, lines: Vec<String>, internal: Option<String>) {
        if lines.is_empty() && internal.is_none() {
            return;
        }
        let text = lines
            .iter()
            .chain(internal.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        match self.client.write_lines(&text, Precision::Nanoseconds).await {
            Ok(report) => {
                for r in &report.rejected {
                    tracing::error!(message = "alert history point refused", reason = %r.reason);
                }
                let mut store = self.shared.store.lock().await;
                store.points.retain(|l| !lines.contains(l));
                if let Err(error) = self.shared.save(&store) {
                    tracing::error!(message = "cannot save the alert state", %error);
                }
            }
            Err(error) => {
                self.shared
                    .stats
                    .history_write_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(message = "cannot write alert history; will retry", error = %error);
            }
        }
    }

    /// Evaluate every rule, at most `concurrency` at once, each within `timeout`.
    async fn run_rules(
        &mut self,
        rules: &[Arc<Rule>],
        now_ms: i64,
    ) -> Vec<Result<Vec<SeriesResult>, String>> {
        let mut out: Vec<Result<Vec<SeriesResult>, String>> = (0..rules.len())
            .map(|_| Err("not evaluated".to_owned()))
            .collect();
        let mut set = JoinSet::new();
        let mut next = 0;
        let limit = self.settings.concurrency.max(1);
        let timeout = self.settings.timeout;
        let mut running = 0;
        loop {
            while running < limit && next < rules.len() {
                let rule = rules[next].clone();
                // No step has completed since the last evaluation: nothing new to judge.
                let end = floor_to(now_ms - ms(rule.delay), ms(rule.step).max(1));
                let unchanged = self.last_end[next] == Some(end)
                    && !matches!(rule.kind, RuleKind::NoData { .. });
                if unchanged {
                    out[next] = Ok(Vec::new());
                    next += 1;
                    continue;
                }
                self.last_end[next] = Some(end);
                let client = self.client.clone();
                let mut models = std::mem::take(&mut self.models[next]);
                let i = next;
                set.spawn(async move {
                    let result = tokio::time::timeout(
                        timeout,
                        evaluate_rule(&client, &rule, now_ms, &mut models),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "timed out after {}",
                            humantime::format_duration(timeout)
                        ))
                    });
                    (i, models, result)
                });
                next += 1;
                running += 1;
            }
            match set.join_next().await {
                Some(Ok((i, models, result))) => {
                    running -= 1;
                    self.models[i] = models;
                    out[i] = result;
                }
                Some(Err(e)) => {
                    running -= 1;
                    tracing::error!(message = "rule evaluation task failed", error = %e);
                }
                None => break,
            }
        }
        out
    }
}

/// Query and judge one rule's series.
async fn evaluate_rule(
    client: &Client,
    rule: &Rule,
    now_ms: i64,
    models: &mut Models,
) -> Result<Vec<SeriesResult>, String> {
    let step = ms(rule.step).max(1);
    let end = floor_to(now_ms - ms(rule.delay), step);
    let every = Every::from_duration(rule.step).map_err(|e| e.to_string())?;
    match &rule.kind {
        RuleKind::Series {
            measurement,
            field,
            aggregate,
            window,
            group_by,
            detector,
        } => {
            let start = floor_to(end - ms(*window), step);
            let q = SeriesQuery {
                measurement: measurement.clone(),
                field: field.clone(),
                tags: rule.tags.clone(),
                range: TimeRange::new(start, end).map_err(|e| e.to_string())?,
                every: Some(every),
                aggregate: Some(*aggregate),
                group_by: group_by.clone(),
            };
            let series = client.query_series(&q).await.map_err(|e| e.to_string())?;
            Ok(series
                .into_iter()
                .map(|s| {
                    let mut d = detector.build();
                    let steps = s
                        .points
                        .iter()
                        .filter(|(t, _)| t + step <= end)
                        .map(|&(t, v)| Step {
                            t_ms: t,
                            obs: d.update_at(t, v).map(observation),
                        })
                        .collect();
                    SeriesResult {
                        tags: s.tags,
                        steps,
                    }
                })
                .collect())
        }
        RuleKind::Forest {
            features,
            forest,
            threshold,
            history,
            retrain,
            min_samples,
        } => {
            let start = floor_to(end - ms(*history), step);
            let range = TimeRange::new(start, end).map_err(|e| e.to_string())?;
            let mut per_feature = Vec::with_capacity(features.len());
            for f in features {
                let mut tags = f.tags.clone();
                tags.extend(rule.tags.clone());
                let q = SeriesQuery {
                    measurement: f.measurement.clone(),
                    field: f.field.clone(),
                    tags,
                    range,
                    every: Some(every),
                    aggregate: Some(f.aggregate),
                    group_by: vec!["host".into()],
                };
                let series = client
                    .query_series(&q)
                    .await
                    .map_err(|e| format!("feature {}: {e}", f.label()))?;
                per_feature.push(series);
            }
            let rows = join_features(&per_feature, end, step);
            let mut out = Vec::new();
            for (host, rows) in rows {
                let stale = models
                    .get(&host)
                    .is_none_or(|m| now_ms - m.trained_at_ms >= ms(*retrain));
                if stale {
                    if rows.len() < *min_samples {
                        tracing::debug!(message = "too little history to train", rule = %rule.name, %host, rows = rows.len());
                        models.remove(&host);
                        continue;
                    }
                    let training: Vec<Vec<f64>> = rows.iter().map(|(_, r)| r.clone()).collect();
                    match IsolationForest::fit(&training, forest) {
                        Ok(f) => {
                            models.insert(
                                host.clone(),
                                Trained {
                                    forest: f,
                                    trained_at_ms: now_ms,
                                },
                            );
                        }
                        Err(error) => {
                            tracing::warn!(message = "cannot train the forest", rule = %rule.name, %host, %error);
                            continue;
                        }
                    }
                }
                let Some(model) = models.get(&host) else {
                    continue;
                };
                let steps = rows
                    .iter()
                    .map(|(t, x)| Step {
                        t_ms: *t,
                        obs: forest_observation(&model.forest, x, features, *threshold),
                    })
                    .collect();
                let tags = BTreeMap::from([("host".to_owned(), host)]);
                out.push(SeriesResult { tags, steps });
            }
            Ok(out)
        }
        RuleKind::NoData {
            measurement,
            field,
            after,
            window,
        } => {
            let q = LastQuery {
                measurement: measurement.clone(),
                field: field.clone(),
                tags: rule.tags.clone(),
                range: TimeRange::new(now_ms - ms(*window), now_ms + 1)
                    .map_err(|e| e.to_string())?,
            };
            let series = client.query_last(&q).await.map_err(|e| e.to_string())?;
            let mut newest: BTreeMap<String, i64> = BTreeMap::new();
            for s in &series {
                let Some(host) = s.tags.get("host") else {
                    continue;
                };
                if let Some(t) = s.points.iter().map(|(t, _)| *t).max() {
                    let e = newest.entry(host.clone()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
            Ok(newest
                .into_iter()
                .map(|(host, last)| SeriesResult {
                    tags: BTreeMap::from([("host".to_owned(), host)]),
                    steps: vec![Step {
                        t_ms: now_ms,
                        obs: Some(silence_observation(now_ms - last, *after, Some(last))),
                    }],
                })
                .collect())
        }
    }
}

fn observation(v: Verdict) -> Observation {
    Observation {
        breached: v.is_anomaly(),
        value: v.value,
        lower: v.lower,
        upper: v.upper,
        score: v.score,
        reason: v.reason,
        severity: v.severity,
        anchor_ms: None,
    }
}

fn forest_observation(
    forest: &IsolationForest,
    x: &[f64],
    features: &[Feature],
    threshold: f64,
) -> Option<Observation> {
    let score = forest.score(x);
    if !score.is_finite() {
        return None;
    }
    let breached = score >= threshold;
    let reason = if breached {
        let values: Vec<String> = features
            .iter()
            .zip(x)
            .map(|(f, v)| format!("{}={}", f.label(), (v * 100.0).round() / 100.0))
            .collect();
        format!(
            "isolation score {:.3} >= {threshold}: {}",
            score,
            values.join(", ")
        )
    } else {
        String::new()
    };
    Some(Observation {
        value: score,
        lower: None,
        upper: Some(threshold),
        score,
        reason,
        breached,
        severity: None,
        anchor_ms: None,
    })
}

/// The "host silent" judgement: `age_ms` since the newest point.
fn silence_observation(age_ms: i64, after: Duration, last_ms: Option<i64>) -> Observation {
    let breached = age_ms > ms(after);
    let age = Duration::from_secs(u64::try_from(age_ms.max(0) / 1000).unwrap_or(0));
    let reason = match (breached, last_ms) {
        (false, _) => String::new(),
        (true, Some(_)) => format!(
            "no data for {} (more than {})",
            humantime::format_duration(age),
            humantime::format_duration(after)
        ),
        (true, None) => format!(
            "no data for more than {} (the rule's window)",
            humantime::format_duration(age)
        ),
    };
    Observation {
        value: age_ms as f64 / 1000.0,
        lower: None,
        upper: Some(after.as_secs_f64()),
        score: age_ms as f64 / ms(after).max(1) as f64,
        reason,
        breached,
        severity: None,
        anchor_ms: last_ms,
    }
}

/// Per host, the complete feature vectors in time order.
fn join_features(
    per_feature: &[Vec<Series>],
    end: i64,
    step: i64,
) -> BTreeMap<String, Vec<(i64, Vec<f64>)>> {
    let n = per_feature.len();
    let mut by_host: BTreeMap<String, BTreeMap<i64, Vec<Option<f64>>>> = BTreeMap::new();
    for (i, series) in per_feature.iter().enumerate() {
        for s in series {
            let Some(host) = s.tags.get("host") else {
                continue;
            };
            let rows = by_host.entry(host.clone()).or_default();
            for &(t, v) in &s.points {
                if t + step > end {
                    continue;
                }
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    rows.entry(t).or_insert_with(|| vec![None; n])[i] = Some(v);
                }
            }
        }
    }
    by_host
        .into_iter()
        .map(|(host, rows)| {
            let complete = rows
                .into_iter()
                .filter_map(|(t, r)| r.into_iter().collect::<Option<Vec<f64>>>().map(|r| (t, r)))
                .collect();
            (host, complete)
        })
        .collect()
}

/// Feed a rule's results into the lifecycles of its alerts.
fn apply(
    store: &mut Store,
    rule: &Rule,
    series: Vec<SeriesResult>,
    now_ms: i64,
    stats: &EngineStats,
    group_by: GroupBy,
) {
    let step = ms(rule.step).max(1);
    let mut seen = Vec::with_capacity(series.len());
    for s in series {
        let id = alert_id(&rule.name, &s.tags);
        seen.push(id.clone());
        let record = store
            .alerts
            .entry(id.clone())
            .or_insert_with(|| AlertRecord::new(id.clone(), &rule.name, s.tags.clone(), now_ms));
        record.last_seen_ms = now_ms;
        let newest = s.steps.last().map(|st| st.t_ms);
        let after = match (record.last_step_ms, newest) {
            (Some(last), _) => last,
            // First seen: start at the breach that is going on now, if any, so it
            // fires at once when it has held for `for` and its start time is right;
            // breaches that are over are history, not news.
            (None, Some(newest)) => s
                .steps
                .iter()
                .rev()
                .filter_map(|st| st.obs.as_ref().map(|o| (st.t_ms, o.breached)))
                .find(|(_, breached)| !breached)
                .map_or(s.steps[0].t_ms - step, |(t, _)| t.min(newest - step)),
            (None, None) => continue,
        };
        let mut events = Vec::new();
        for st in s.steps.iter().filter(|st| st.t_ms > after) {
            // Only finite figures reach the state (JSON has no NaN or infinity).
            let Some(obs) = st
                .obs
                .as_ref()
                .filter(|o| o.value.is_finite() && o.score.is_finite())
            else {
                continue;
            };
            observe(store, rule, &id, st.t_ms, obs.clone(), &mut events);
        }
        if let (Some(n), Some(r)) = (newest, store.alerts.get_mut(&id)) {
            r.last_step_ms = Some(r.last_step_ms.map_or(n, |l| l.max(n)));
        }
        queue_events(store, rule, events, now_ms, stats, group_by);
    }
    // nodata: a host that was watched and is now absent from the whole window.
    if let RuleKind::NoData { after, window, .. } = &rule.kind {
        let missing: Vec<String> = store
            .alerts
            .values()
            .filter(|a| a.rule == rule.name && !seen.contains(&a.id))
            .map(|a| a.id.clone())
            .collect();
        for id in missing {
            let mut events = Vec::new();
            let obs = silence_observation(ms(*window), *after, None);
            observe(store, rule, &id, now_ms, obs, &mut events);
            if let Some(r) = store.alerts.get_mut(&id) {
                r.last_seen_ms = now_ms;
                r.last_step_ms = Some(now_ms);
            }
            queue_events(store, rule, events, now_ms, stats, group_by);
        }
    }
}

/// One observation of one alert: drive its lifecycle, record history, emit events.
fn observe(
    store: &mut Store,
    rule: &Rule,
    id: &str,
    t_ms: i64,
    obs: Observation,
    events: &mut Vec<AlertEvent>,
) {
    let Some(record) = store.alerts.get_mut(id) else {
        return;
    };
    let before = record.lifecycle.state;
    let action = record.lifecycle.observe(obs.breached, t_ms, &rule.timing);
    let after = record.lifecycle.state;
    if obs.breached && before != State::Firing {
        record.severity = rule.severity.or(obs.severity).unwrap_or(Severity::Warning);
    }
    if after == State::Firing && before != State::Firing {
        record.fired_with = Some(obs.clone());
    }
    record.last = Some(obs);
    let mut lines = Vec::new();
    if after == State::Firing && before != State::Firing {
        lines.extend(history_line(record, "firing", t_ms));
    } else if before == State::Firing && after != State::Firing {
        lines.extend(history_line(record, "resolved", t_ms));
        record.acknowledged = false;
    }
    // Escalation while firing (a warning crossing the critical level): the warning
    // period ends and a critical one starts, in the history and in a new message, and
    // an acknowledgement of the warning does not cover it.
    let escalated_to = record
        .last
        .as_ref()
        .filter(|o| o.breached && before == State::Firing && after == State::Firing)
        .map(|o| rule.severity.or(o.severity).unwrap_or(Severity::Warning))
        .filter(|severity| *severity > record.severity);
    if let Some(severity) = escalated_to {
        lines.extend(history_line(record, "resolved", t_ms));
        record.severity = severity;
        record.fired_with = record.last.clone();
        record.acknowledged = false;
        lines.extend(history_line(record, "firing", t_ms));
    }
    let escalated = escalated_to.is_some();
    let kind = match action {
        _ if escalated && !record.lifecycle.flapping => Some(EventKind::Firing),
        Action::Nothing => None,
        Action::Fire => Some(EventKind::Firing),
        Action::Resolve => Some(EventKind::Resolved),
        Action::Remind if record.acknowledged => None,
        Action::Remind => Some(EventKind::Reminder),
    };
    if let Some(kind) = kind {
        events.push(event_of(record, rule, kind, t_ms));
    }
    if after == State::Ok && before != State::Ok {
        record.fired_with = None;
    }
    store.points.extend(lines);
}

/// The labels of an alert: rule labels, then series tags.
pub fn labels_of(
    record: &AlertRecord,
    rule_labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = rule_labels.clone();
    labels.extend(record.tags.clone());
    labels
}

fn event_of(record: &AlertRecord, rule: &Rule, kind: EventKind, at_ms: i64) -> AlertEvent {
    let band = record.fired_with.as_ref().or(record.last.as_ref());
    let last = record.last.as_ref();
    AlertEvent {
        id: record.id.clone(),
        rule: rule.name.clone(),
        host: record.host().map(str::to_owned),
        labels: labels_of(record, &rule.labels),
        severity: record.severity,
        kind,
        value: last.map(|o| o.value).filter(|v| v.is_finite()),
        lower: band.and_then(|o| o.lower),
        upper: band.and_then(|o| o.upper),
        score: band.map(|o| o.score).filter(|v| v.is_finite()),
        reason: band.map(|o| o.reason.clone()).unwrap_or_default(),
        at_ms,
        since_ms: record.lifecycle.breach_since_ms.unwrap_or(at_ms),
        anchor_ms: last.and_then(|o| o.anchor_ms),
        flapping: record.lifecycle.flapping,
    }
}

/// The `alerts` history point of a transition, as line protocol.
fn history_line(record: &AlertRecord, state: &str, t_ms: i64) -> Option<String> {
    let mut b = Point::builder("alerts")
        .tag("rule", record.rule.clone())
        .tag("severity", record.severity.to_string())
        .field("state", state)
        .field("id", record.id.clone())
        .timestamp(t_ms.saturating_mul(1_000_000));
    if let Some(h) = record.host() {
        b = b.tag("host", h);
    }
    for (k, v) in &record.tags {
        if k != "host" && k != "rule" && k != "severity" {
            b = b.tag(k.clone(), v.clone());
        }
    }
    if let Some(o) = record.fired_with.as_ref().or(record.last.as_ref()) {
        if o.value.is_finite() {
            b = b.field("value", o.value);
        }
        if !o.reason.is_empty() {
            b = b.field("reason", truncate(&o.reason, 1024));
        }
    }
    match b.build() {
        Ok(p) => {
            let mut buf = Vec::new();
            encode(&p, Precision::Nanoseconds, &mut buf);
            String::from_utf8(buf).ok().map(|s| s.trim_end().to_owned())
        }
        Err(error) => {
            tracing::error!(message = "cannot build the alert history point", rule = %record.rule, %error);
            None
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Put events into their groups, unless silenced.
fn queue_events(
    store: &mut Store,
    rule: &Rule,
    events: Vec<AlertEvent>,
    now_ms: i64,
    stats: &EngineStats,
    group_by: GroupBy,
) {
    for e in events {
        stats.events.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = store.silenced_by(&e.rule, &e.labels, now_ms) {
            stats.silenced_events.fetch_add(1, Ordering::Relaxed);
            tracing::info!(message = "event silenced", rule = %e.rule, id = %e.id, silence = %s.id);
            continue;
        }
        if rule.channels.is_empty() {
            tracing::info!(message = "alert event (no channel configured)", rule = %e.rule, id = %e.id, kind = ?e.kind);
            continue;
        }
        let group = group_key(&e, group_by);
        match store
            .groups
            .iter_mut()
            .find(|g| g.group == group && g.channels == rule.channels)
        {
            Some(g) => g.events.push(e),
            None => store.groups.push(PendingGroup {
                group,
                channels: rule.channels.clone(),
                first_at_ms: now_ms,
                events: vec![e],
            }),
        }
    }
}

fn group_key(e: &AlertEvent, by: GroupBy) -> String {
    match by {
        GroupBy::Host => format!("host={}", e.host.as_deref().unwrap_or("")),
        GroupBy::Rule => format!("rule={}", e.rule),
    }
}

/// Groups whose first event is `group_wait` old leave the store.
fn take_due_groups(store: &mut Store, now_ms: i64, group_wait: Duration) -> Vec<PendingGroup> {
    let (due, keep): (Vec<PendingGroup>, Vec<PendingGroup>) = std::mem::take(&mut store.groups)
        .into_iter()
        .partition(|g| now_ms - g.first_at_ms >= ms(group_wait));
    store.groups = keep;
    due
}

/// Drop alerts that are ok and have not been seen for a day (hosts that are gone).
fn forget_stale(store: &mut Store, rules: &[Arc<Rule>], now_ms: i64) {
    store.alerts.retain(|_, a| {
        let keep = a.lifecycle.state != State::Ok || now_ms - a.last_seen_ms < 86_400_000;
        keep && rules.iter().any(|r| r.name == a.rule)
    });
}
