//! Notifications: alert events rendered for people and delivered to channels (e-mail,
//! generic webhooks, Slack, DingTalk, WeCom, Feishu) through a durable outbox.
//!
//! - [`render`]: a [`Notification`] as subject, text, HTML and Markdown, in English or
//!   Simplified Chinese, with a link to the host's page in the web UI.
//! - [`Notifier::send`]: one delivery to one channel, now.
//! - [`Outbox`]: what must be delivered, on disk before [`Outbox::enqueue`] returns;
//!   [`Outbox::deliver_due`] sends, retries with backoff, and gives up only after
//!   `analyzer.outbox_max_age`, with an error log and a counter.
//! - [`email::send_email`]: one e-mail (multipart text + HTML, inline images,
//!   attachments), shared with the reports.
//!
//! # The generic webhook
//!
//! `type = "webhook"` POSTs `Content-Type: application/json` with the configured
//! headers:
//!
//! ```json
//! {
//!   "version": 1,
//!   "group": "host=web-1",
//!   "subject": "[CRITICAL] web-1: cpu-ewma firing",
//!   "text": "…the plain-text body…",
//!   "events": [{
//!     "id": "cpu-ewma/host=web-1",    // stable per alert (rule + series)
//!     "rule": "cpu-ewma",
//!     "host": "web-1",                // or null
//!     "labels": {"team": "ops"},      // rule labels and series tags
//!     "severity": "critical",         // "warning" | "critical"
//!     "kind": "firing",               // "firing" | "resolved" | "reminder"
//!     "value": 97.5,                  // or null
//!     "lower": 10.0, "upper": 80.0,   // the band crossed; either side may be null (open)
//!     "score": 3.2,                   // or null
//!     "reason": "…",                  // the detector's one-line reason
//!     "at_ms": 1714565100000,         // this transition, unix ms
//!     "since_ms": 1714564800000,      // when the breach began, unix ms
//!     "flapping": false
//!   }]
//! }
//! ```
//! Any 2xx answer is a delivery; anything else (or no answer within `timeout`) is
//! retried. New fields may be added; `version` changes when one is removed or changes
//! meaning.
//!
//! # Chat robots
//!
//! The payloads follow each vendor's documentation for incoming webhooks / custom
//! robots; all of them answer HTTP 200 even when they refuse a message, so the body's
//! own code is checked and a non-zero code is a failed delivery with the vendor's
//! message (retried like any failure).
//!
//! - Slack: `{"text": subject, "attachments": [{"color", "fallback", "title",
//!   "text" (mrkdwn), "mrkdwn_in": ["text"]}]}`; the colour bar is red (critical),
//!   orange (warning) or green (all resolved). Slack answers `ok`, or a 4xx.
//! - DingTalk: `{"msgtype": "markdown", "markdown": {"title", "text"}, "at":
//!   {"atMobiles", "isAtAll"}}`; each mentioned number is also written as `@138…` at
//!   the end of the text, which DingTalk needs to notify. Signed robots get
//!   `timestamp` (ms) and `sign` = base64(HMAC-SHA256(key = secret,
//!   msg = timestamp + "\n" + secret)) as query parameters. Answer `errcode`/`errmsg`.
//! - WeCom: `{"msgtype": "markdown", "markdown": {"content"}}` (at most 4096 bytes).
//!   Markdown messages cannot mention anyone, so with `mentioned_mobile_list` the
//!   message is sent as one `text` message instead (`{"msgtype": "text", "text":
//!   {"content", "mentioned_mobile_list"}}`, at most 2048 bytes): one request per
//!   delivery keeps a retry from repeating half a delivery. Answer `errcode`/`errmsg`.
//! - Feishu / Lark: an interactive card, `{"msg_type": "interactive", "card":
//!   {"config", "header": {"title": {"tag": "plain_text", "content"}, "template":
//!   "red" | "orange" | "green"}, "elements": [{"tag": "div", "text": {"tag":
//!   "lark_md", "content"}}, {"tag": "hr"}, …]}}`; signed bots add `"timestamp"`
//!   (seconds, a string) and `"sign"` = base64(HMAC-SHA256(key = timestamp + "\n" +
//!   secret, msg = "")). Answer `code`/`msg` (older: `StatusCode`/`StatusMessage`).
//!
//! Webhook URLs hold their access token, so they never appear in logs or errors: only
//! `scheme://host` does ([`config::SecretUrl`]).

pub mod config;
pub mod email;
pub mod outbox;
pub mod render;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hostscope_core::detect::Severity;
use serde::{Deserialize, Serialize};

pub use config::{
    ChannelConfig, ChannelSettings, Language, NotifyConfig, NotifySettings, RetryPolicy,
    SmtpConfig, SmtpSettings, SmtpTls, SmtpTransport, BUILTIN_EMAIL_CHANNEL,
};
pub use email::{send_email, Attachment, EmailContent, InlineImage};
pub use lettre::message::Mailbox;
pub use outbox::{DeliveryReport, Outbox, OutboxStats};
pub use render::{render, RenderOptions, Rendered};

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// It started firing.
    Firing,
    /// It stopped.
    Resolved,
    /// It is still firing (sent every `repeat_interval`).
    Reminder,
}

/// One alert transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable alert id (rule + series).
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub host: Option<String>,
    /// Rule labels and series tags.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    pub kind: EventKind,
    #[serde(default)]
    pub value: Option<f64>,
    /// The band that was crossed (either side may be open).
    #[serde(default)]
    pub lower: Option<f64>,
    #[serde(default)]
    pub upper: Option<f64>,
    #[serde(default)]
    pub score: Option<f64>,
    /// The detector's one-line reason.
    #[serde(default)]
    pub reason: String,
    /// When this transition happened (unix ms).
    pub at_ms: i64,
    /// When the alert started: the breach began (unix ms).
    pub since_ms: i64,
    /// The data time the transition is about, where `at_ms` is wall-clock time (a
    /// nodata alert's last point): what makes it the same event when judged again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_ms: Option<i64>,
    #[serde(default)]
    pub flapping: bool,
}

/// One message: a group of events (e.g. everything about one host in one evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What the events have in common, e.g. `host=web-1` or `rule=cpu-ewma`.
    pub group: String,
    pub events: Vec<AlertEvent>,
}

/// Why a delivery failed. Never contains a secret or a webhook URL's path or query.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("channel `{0}` is not configured")]
    UnknownChannel(String),
    #[error("e-mail is not configured (no [smtp] section)")]
    NoSmtp,
    #[error("e-mail: {0}")]
    Email(String),
    #[error("cannot reach {endpoint}: {message}")]
    Http { endpoint: String, message: String },
    #[error("{endpoint} answered HTTP {status}: {body}")]
    Status {
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error("{endpoint} refused the message: {message}")]
    Vendor { endpoint: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// An error and its sources, `a: b: c`.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        source = s.source();
    }
    out
}

/// Sends one notification to one channel. Holds the settings and one HTTP client.
#[derive(Debug, Clone)]
pub struct Notifier {
    settings: NotifySettings,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(settings: NotifySettings) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hostscope/", env!("CARGO_PKG_VERSION")))
            // A redirect would resend a signed body somewhere else; refuse it (a 3xx is
            // a failed delivery that names the status).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Http {
                endpoint: "(client)".into(),
                message: error_chain(&e),
            })?;
        Ok(Notifier { settings, http })
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// Render and deliver `n` to `channel` now. `now_ms` is the wall clock, used for
    /// the robots' signatures.
    pub async fn send(
        &self,
        channel: &str,
        n: &Notification,
        now_ms: i64,
    ) -> Result<(), NotifyError> {
        let target = self
            .settings
            .channel(channel)
            .ok_or_else(|| NotifyError::UnknownChannel(channel.to_owned()))?;
        let opts = &self.settings.render;
        match target {
            ChannelSettings::Email { to } => {
                let smtp = self.settings.smtp.as_ref().ok_or(NotifyError::NoSmtp)?;
                let r = render(n, opts);
                send_email(
                    smtp,
                    to,
                    EmailContent {
                        subject: r.subject,
                        text: r.text,
                        html: r.html,
                        inline_images: Vec::new(),
                        attachments: Vec::new(),
                    },
                )
                .await
            }
            other => webhook::send(&self.http, other, n, opts, now_ms).await,
        }
    }
}
