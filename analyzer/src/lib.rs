//! hostscope-analyzer: watches the stored metrics, raises alerts and sends reports.
//!
//! `run` evaluates the rules every `interval` ([`engine`]), keeps alert state in the
//! state directory ([`state`]), serves the alerts API ([`api`]) and hands due
//! notifications to the channels.

pub mod api;
pub mod engine;
pub mod eval;
pub mod lifecycle;
pub mod notify;
pub mod report;
pub mod rules;
pub mod service;
pub mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{ConfigErrors, HumanDuration, InfluxConfig, InfluxSettings};
use hostscope_core::influx::Client;
use hostscope_core::secret::{token_problem, ExposeSecret, SecretString};
use serde::Deserialize;

use crate::engine::{Engine, EngineSettings, GroupBy, Sink};
use crate::notify::{Notifier, Outbox};
use crate::report::ReportStore;
use crate::rules::{Rule, RuleConfig};
use crate::service::now_ms;
use notify::{ChannelConfig, Language, NotifyConfig, NotifySettings, SmtpConfig};

/// The sections of the configuration file this program reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub influx: InfluxConfig,
    pub analyzer: AnalyzerConfig,
    pub smtp: Option<SmtpConfig>,
}

/// `[analyzer]`
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnalyzerConfig {
    /// How often rules are evaluated. Default `30s`.
    pub interval: Option<HumanDuration>,
    /// Where alert state, silences and the outbox are kept. Default `/var/lib/hostscope`.
    pub state_dir: Option<PathBuf>,
    /// Address of the alerts API (for the web's Alerts page). Default `127.0.0.1:9094`.
    pub listen: Option<String>,
    /// Bearer token the API requires (all but `/healthz`); at least 16 characters.
    /// Default none: no authentication, so keep `listen` on loopback or a private
    /// network.
    pub api_token: Option<SecretString>,
    /// Rules evaluated at once, at most. Default 4.
    pub concurrency: Option<usize>,
    /// Longest one rule's evaluation may take. Default: the interval.
    pub timeout: Option<HumanDuration>,
    /// Group events into one message per `host` or per `rule`. Default `host`.
    pub group_by: Option<GroupBy>,
    /// How long to wait for more events of a group before sending it. Default `30s`.
    pub group_wait: Option<HumanDuration>,
    /// The alert rules, `[[analyzer.rules]]`.
    pub rules: Vec<RuleConfig>,
    /// Scheduled reports (`[[analyzer.reports]]`). Default: none.
    pub reports: Vec<report::ReportConfig>,
    /// Language of notifications and reports: `en` or `zh-CN`. Default `en`.
    pub language: Option<Language>,
    /// The web UI's base URL, e.g. `https://mon.example.com`; notifications link to
    /// the host's page there. Default none (no links).
    pub web_url: Option<String>,
    /// Where notifications go: `[analyzer.channels.<name>]` with a `type`.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// How long a notification is retried before it is given up (logged as an error
    /// and counted). Default `24h`.
    pub outbox_max_age: Option<HumanDuration>,
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub influx: InfluxSettings,
    pub interval: Duration,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    pub api_token: Option<SecretString>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub rules: Vec<Rule>,
    pub reports: Vec<report::ReportSettings>,
    /// Channels, `[smtp]`, language and links.
    pub notify: NotifySettings,
}

impl ProgramConfig for FileConfig {
    type Settings = Settings;

    fn validate(&self) -> Result<Settings, ConfigErrors> {
        let mut errors = ConfigErrors::new("configuration");
        let influx = errors.absorb(self.influx.validate());
        let interval = self
            .analyzer
            .interval
            .unwrap_or(HumanDuration::from_secs(30))
            .get();
        if interval < Duration::from_secs(1) {
            errors.push("analyzer.interval", "must be at least 1s");
        }
        let a = &self.analyzer;
        let listen_text = a.listen.as_deref().unwrap_or("127.0.0.1:9094");
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(l) => Some(l),
            Err(_) => {
                errors.push(
                    "analyzer.listen",
                    format!("{listen_text:?} is not an address like 127.0.0.1:9094"),
                );
                None
            }
        };
        if let Some(problem) = a
            .api_token
            .as_ref()
            .and_then(|t| token_problem(t.expose_secret()))
        {
            errors.push("analyzer.api_token", problem);
        }
        let concurrency = a.concurrency.unwrap_or(4);
        if concurrency == 0 {
            errors.push("analyzer.concurrency", "must be at least 1");
        }
        let timeout = a.timeout.map_or(interval, |t| t.get());
        if timeout < Duration::from_secs(1) {
            errors.push("analyzer.timeout", "must be at least 1s");
        }
        let notify = errors.absorb(
            NotifyConfig {
                smtp: self.smtp.as_ref(),
                channels: &a.channels,
                language: a.language,
                web_url: a.web_url.as_deref(),
                outbox_max_age: a.outbox_max_age,
            }
            .validate(),
        );
        // Channel names for the rules: the valid ones, or (when a channel is itself
        // invalid) the configured names, so a rule is not blamed for a bad channel.
        let channels: Vec<String> = match &notify {
            Some(n) => n.channel_names().into_iter().map(str::to_owned).collect(),
            None => {
                let mut names: Vec<String> = a.channels.keys().cloned().collect();
                if self.smtp.is_some() && !names.iter().any(|n| n == "email") {
                    names.push("email".into());
                }
                names
            }
        };
        let rules = errors.absorb(rules::validate(&a.rules, &channels));
        let reports = report::schedule::validate(&a.reports, &mut errors);
        match (influx, listen, rules, notify) {
            (Some(influx), Some(listen), Some(rules), Some(notify)) if errors.is_empty() => {
                Ok(Settings {
                    influx,
                    interval,
                    state_dir: a
                        .state_dir
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("/var/lib/hostscope")),
                    listen,
                    api_token: a.api_token.clone(),
                    concurrency,
                    timeout,
                    group_by: a.group_by.unwrap_or_default(),
                    group_wait: a.group_wait.map_or(Duration::from_secs(30), |d| d.get()),
                    rules,
                    reports,
                    notify,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Run until `shutdown` resolves: evaluate the rules every `interval`, deliver
/// notifications from the outbox, make scheduled reports, serve the API.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let client = Client::new(settings.influx.clone())?;
    let notifier = Arc::new(Notifier::new(settings.notify.clone())?);
    let outbox = Arc::new(Outbox::open(&settings.state_dir)?);
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut engine = Engine::new(
        client.clone(),
        settings.rules,
        EngineSettings {
            state_dir: settings.state_dir.clone(),
            concurrency: settings.concurrency,
            timeout: settings.timeout,
            group_by: settings.group_by,
            group_wait: settings.group_wait,
        },
    )?;
    engine.set_sink(Sink {
        outbox: outbox.clone(),
        wake: wake.clone(),
    });
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut api_stop = stop_rx.clone();
    let app = api::with_token(
        api::router(engine.shared(), api::system_clock()),
        settings.api_token.clone(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        let stopped = async move {
            let _ = api_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = api::serve(listener, app, api::HEADER_READ_TIMEOUT, stopped).await {
            tracing::warn!(message = "API server error", error = %e);
        }
    });
    tasks.spawn(service::deliver(
        outbox.clone(),
        notifier,
        wake,
        stop_rx.clone(),
    ));
    let ctx = service::ReportContext {
        client,
        notify: settings.notify,
        store: Arc::new(ReportStore::new(&settings.state_dir)),
    };
    tasks.spawn(service::schedule_reports(
        settings.reports,
        ctx,
        stop_rx.clone(),
    ));
    tracing::info!(
        message = "hostscope-analyzer started",
        interval = ?settings.interval,
        rules = engine.shared().rules.len(),
        listen = %settings.listen
    );
    let interval_ms = i64::try_from(settings.interval.as_millis()).unwrap_or(i64::MAX);
    tokio::pin!(shutdown);
    loop {
        let now = now_ms();
        let o = outbox.stats();
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        engine.set_extra_metrics(vec![
            ("notifications_pending", gauge(o.pending)),
            ("notifications_enqueued", gauge(o.enqueued)),
            ("notifications_sent", gauge(o.sent)),
            ("notification_failures", gauge(o.failed_attempts)),
            ("notifications_dropped", gauge(o.dropped)),
        ]);
        let cycle = engine.evaluate(now).await;
        for (notification, channels) in &cycle.notifications {
            tracing::info!(message = "notification due", group = %notification.group, events = notification.events.len(), channels = ?channels);
        }
        // Sleep to the next multiple of the interval (cycles line up across restarts).
        let next = (now / interval_ms + 1) * interval_ms;
        let wait = Duration::from_millis(u64::try_from((next - now_ms()).max(0)).unwrap_or(0));
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::warn!(message = "a task failed", error = %e);
        }
    }
    tracing::info!(message = "hostscope-analyzer stopped");
    Ok(())
}
