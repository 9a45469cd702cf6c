//! `[smtp]`, `[analyzer.channels.<name>]` and the notification keys of `[analyzer]`:
//! raw config as written (every key optional where it has a default) and the validated
//! [`NotifySettings`]. Every problem names its dotted key; no message quotes a secret
//! or a channel URL (webhook URLs carry their access token).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostscope_core::config::{ConfigErrors, HumanDuration};
use hostscope_core::secret::{ExposeSecret, SecretString};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use serde::{Deserialize, Deserializer, Serialize};

use super::render::RenderOptions;

/// The name of the channel that exists when `[smtp]` has recipients and no channel of
/// this name is configured.
pub const BUILTIN_EMAIL_CHANNEL: &str = "email";

fn default_http_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// The language of notifications and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl std::str::FromStr for Language {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "en" | "en-us" | "en-gb" => Ok(Language::En),
            "zh-cn" | "zh" | "zh-hans" => Ok(Language::ZhCn),
            _ => Err(format!(
                "unknown language {text:?}; expected \"en\" or \"zh-CN\""
            )),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Language {
    /// The BCP 47 tag (`en`, `zh-CN`).
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::ZhCn => "zh-CN",
        }
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Tls,
    /// No encryption (port 25): only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// Where e-mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTransportKind {
    /// An SMTP server.
    #[default]
    Smtp,
    /// `.eml` files in a directory, for trying hostscope without a mail server.
    File,
}

/// `[smtp]` as written. Read by the analyzer (alerts, reports).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp` (send through a server) or `file` (write each message as an `.eml` file
    /// into `dir`). Default `smtp`.
    pub transport: Option<SmtpTransportKind>,
    /// `transport = "file"`: the directory the `.eml` files go to; created when missing.
    pub dir: Option<PathBuf>,
    /// The SMTP server's host name (also the name its certificate must carry). Required
    /// for `transport = "smtp"`.
    pub host: Option<String>,
    /// The server's port. Default 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    /// `starttls` (required, not opportunistic), `tls` (implicit TLS) or `none`.
    /// Default `starttls`.
    pub tls: Option<SmtpTls>,
    /// User name for SMTP authentication; with `password`.
    pub username: Option<String>,
    /// Password for SMTP authentication. Never logged.
    pub password: Option<SecretString>,
    /// PEM file with CA certificates to trust besides the system's roots, for a relay
    /// whose certificate comes from a private CA. Read when the config is loaded.
    pub ca_file: Option<PathBuf>,
    /// The sender, `alerts@example.com` or `hostscope <alerts@example.com>`. Required.
    pub from: Option<String>,
    /// Default recipients: of the built-in `email` channel and of e-mail channels that
    /// name none. A list, or one string with addresses separated by commas.
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// Time allowed for connecting and for each SMTP command. Default `10s`.
    pub timeout: Option<HumanDuration>,
}

/// Accept `["a", "b"]` or `"a, b"` (handy in environment variables).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Raw::Many(v) => v,
    })
}

/// `type = "email"`: a mail to `to` (default `smtp.to`) through `[smtp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannelConfig {
    /// Recipients of this channel. Default `smtp.to`.
    #[serde(default)]
    pub to: Option<Vec<String>>,
}

/// `type = "webhook"`: a JSON POST of the notification (schema in [`super`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannelConfig {
    /// Where to POST, `http://` or `https://`. Required.
    pub url: String,
    /// Extra request headers, e.g. `Authorization`. The values are secret: never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Time allowed for the whole request. Default `10s`.
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
}

/// `type = "slack"`: a Slack incoming webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannelConfig {
    /// The incoming webhook URL (`https://hooks.slack.com/services/...`). Required; it is
    /// a secret and never logged.
    pub url: String,
    /// Time allowed for the whole request. Default `10s`.
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
}

/// `type = "dingtalk"`: a DingTalk (钉钉) custom group robot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingtalkChannelConfig {
    /// The robot's webhook URL with its `access_token`. Required; never logged.
    pub url: String,
    /// The robot's signing secret (`SEC...`), when its security setting is "加签".
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Mobile numbers to @-mention in each message.
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    /// @-mention everyone in the group. Default false.
    #[serde(default)]
    pub at_all: bool,
    /// Time allowed for the whole request. Default `10s`.
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
}

/// `type = "wecom"`: a WeCom (企业微信) group robot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomChannelConfig {
    /// The robot's webhook URL with its `key`. Required; never logged.
    pub url: String,
    /// Mobile numbers to @-mention (`@all` for everyone). WeCom's markdown messages
    /// cannot mention anyone, so when this is set the message is sent as text.
    #[serde(default)]
    pub mentioned_mobile_list: Vec<String>,
    /// Time allowed for the whole request. Default `10s`.
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
}

/// `type = "feishu"`: a Feishu / Lark custom bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeishuChannelConfig {
    /// The bot's webhook URL (`https://open.feishu.cn/open-apis/bot/v2/hook/...`).
    /// Required; never logged.
    pub url: String,
    /// The bot's signing secret, when "signature verification" (签名校验) is on.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Time allowed for the whole request. Default `10s`.
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
}

/// `[analyzer.channels.<name>]`: one place notifications go, chosen by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelConfig {
    Email(EmailChannelConfig),
    Webhook(WebhookChannelConfig),
    Slack(SlackChannelConfig),
    Dingtalk(DingtalkChannelConfig),
    Wecom(WecomChannelConfig),
    Feishu(FeishuChannelConfig),
}

/// A URL that carries a secret (an access token in its path or query). `Debug` and
/// `Display` show only the scheme, host and port.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn new(url: Url) -> Self {
        SecretUrl(url)
    }
    /// The full URL, for building the request only.
    pub fn expose(&self) -> &Url {
        &self.0
    }
    /// `https://host:port`, safe to log.
    pub fn endpoint(&self) -> String {
        let host = self.0.host_str().unwrap_or("");
        match self.0.port() {
            Some(p) => format!("{}://{host}:{p}", self.0.scheme()),
            None => format!("{}://{host}", self.0.scheme()),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/[REDACTED]", self.endpoint())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/…", self.endpoint())
    }
}

/// Validated `[smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub transport: SmtpTransport,
    pub from: Mailbox,
    /// Default recipients (may be empty).
    pub to: Vec<Mailbox>,
    pub timeout: Duration,
}

/// How e-mail leaves.
#[derive(Debug, Clone)]
pub enum SmtpTransport {
    Smtp {
        host: String,
        port: u16,
        tls: SmtpTls,
        /// User name and password, when the server wants authentication.
        credentials: Option<(String, SecretString)>,
        /// `smtp.ca_file`: trusted in addition to the system's roots.
        ca: Option<CaFile>,
    },
    /// `.eml` files written atomically into `dir`.
    File { dir: PathBuf },
}

/// The certificates of `smtp.ca_file`, read and checked when the config is validated.
#[derive(Debug, Clone)]
pub struct CaFile {
    /// The file they came from, for messages.
    pub path: PathBuf,
    /// How many certificates it holds (at least one).
    pub count: usize,
    /// All of them, to add to the TLS roots.
    pub certificates: Certificate,
}

impl CaFile {
    /// Read PEM certificates from `path`. The error says why the file is not usable.
    pub fn read(path: &Path) -> Result<CaFile, String> {
        let shown = path.display();
        if path.as_os_str().is_empty() {
            return Err("is empty: name a PEM file or remove the key".to_owned());
        }
        let pem = match std::fs::read(path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("{shown} does not exist"));
            }
            Err(e) => return Err(format!("cannot read {shown}: {e}")),
        };
        // The blocks lettre's PEM reader (rustls-pki-types) takes as certificates: the
        // marker at the start of a line, trailing white space allowed.
        let count = pem
            .split(|&b| b == b'\n')
            .filter(|line| line.trim_ascii_end() == b"-----BEGIN CERTIFICATE-----")
            .count();
        if count == 0 {
            return Err(format!(
                "{shown} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" line)"
            ));
        }
        let certificates = Certificate::from_pem(&pem)
            .map_err(|e| format!("{shown} is not valid PEM: {}", super::error_chain(&e)))?;
        // Building TLS parameters with only these roots parses each certificate, so a
        // damaged one is reported now rather than at the first e-mail.
        TlsParameters::builder("localhost".to_owned())
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificates.clone())
            .build()
            .map_err(|e| {
                format!(
                    "{shown}: a certificate in it cannot be used as a CA: {}",
                    super::error_chain(&e)
                )
            })?;
        Ok(CaFile {
            path: path.to_owned(),
            count,
            certificates,
        })
    }
}

/// One validated channel.
#[derive(Debug, Clone)]
pub enum ChannelSettings {
    Email {
        to: Vec<Mailbox>,
    },
    Webhook {
        url: SecretUrl,
        /// Marked sensitive: their `Debug` is redacted.
        headers: HeaderMap,
        timeout: Duration,
    },
    Slack {
        url: SecretUrl,
        timeout: Duration,
    },
    Dingtalk {
        url: SecretUrl,
        secret: Option<SecretString>,
        at_mobiles: Vec<String>,
        at_all: bool,
        timeout: Duration,
    },
    Wecom {
        url: SecretUrl,
        mentioned_mobile_list: Vec<String>,
        timeout: Duration,
    },
    Feishu {
        url: SecretUrl,
        secret: Option<SecretString>,
        timeout: Duration,
    },
}

impl ChannelSettings {
    /// The `type` as configured: `email`, `webhook`, `slack`, `dingtalk`, `wecom`, `feishu`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelSettings::Email { .. } => "email",
            ChannelSettings::Webhook { .. } => "webhook",
            ChannelSettings::Slack { .. } => "slack",
            ChannelSettings::Dingtalk { .. } => "dingtalk",
            ChannelSettings::Wecom { .. } => "wecom",
            ChannelSettings::Feishu { .. } => "feishu",
        }
    }
}

/// Retry policy of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// A delivery still failing this long after it was queued is given up (logged as
    /// an error and counted).
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Everything the notifier needs: validated channels, `[smtp]`, rendering and retries.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    pub smtp: Option<SmtpSettings>,
    pub channels: BTreeMap<String, ChannelSettings>,
    pub render: RenderOptions,
    pub retry: RetryPolicy,
}

impl NotifySettings {
    /// The names rules may list in `channels = [...]`, sorted.
    pub fn channel_names(&self) -> Vec<&str> {
        self.channels.keys().map(String::as_str).collect()
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelSettings> {
        self.channels.get(name)
    }
}

/// The raw keys [`NotifyConfig::validate`] reads, borrowed from the program's config.
#[derive(Debug, Clone, Copy)]
pub struct NotifyConfig<'a> {
    /// `[smtp]`
    pub smtp: Option<&'a SmtpConfig>,
    /// `[analyzer.channels]`
    pub channels: &'a BTreeMap<String, ChannelConfig>,
    /// `analyzer.language`
    pub language: Option<Language>,
    /// `analyzer.web_url`
    pub web_url: Option<&'a str>,
    /// `analyzer.outbox_max_age`
    pub outbox_max_age: Option<HumanDuration>,
}

impl NotifyConfig<'_> {
    /// Apply defaults and check everything; each problem names its key.
    pub fn validate(&self) -> Result<NotifySettings, ConfigErrors> {
        let mut errors = ConfigErrors::new("notifications");
        let smtp = self.smtp.and_then(|s| s.validate(&mut errors));
        let web_url = self.web_url.and_then(|u| {
            let u = u.trim();
            if u.is_empty() {
                return None;
            }
            match Url::parse(u) {
                Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                    errors.push(
                        "analyzer.web_url",
                        format!("{u:?} must start with http:// or https://"),
                    );
                    None
                }
                Ok(url) if url.cannot_be_a_base() || url.host_str().is_none() => {
                    errors.push("analyzer.web_url", format!("{u:?} has no host"));
                    None
                }
                Ok(url) => Some(url),
                Err(e) => {
                    errors.push("analyzer.web_url", format!("{u:?} is not a URL: {e}"));
                    None
                }
            }
        });
        let mut channels = BTreeMap::new();
        for (name, channel) in self.channels {
            let key = format!("analyzer.channels.{name}");
            if !valid_channel_name(name) {
                errors.push(
                    &key,
                    "a channel name is 1 to 64 letters, digits, `-`, `_` or `.`",
                );
                continue;
            }
            if let Some(settings) = validate_channel(
                &key,
                channel,
                self.smtp.is_some(),
                smtp.as_ref(),
                &mut errors,
            ) {
                channels.insert(name.clone(), settings);
            }
        }
        if let Some(s) = &smtp {
            if !s.to.is_empty() && !self.channels.contains_key(BUILTIN_EMAIL_CHANNEL) {
                channels.insert(
                    BUILTIN_EMAIL_CHANNEL.to_owned(),
                    ChannelSettings::Email { to: s.to.clone() },
                );
            }
        }
        let mut retry = RetryPolicy::default();
        if let Some(age) = self.outbox_max_age {
            if age.get() < Duration::from_secs(60) {
                errors.push("analyzer.outbox_max_age", "must be at least 1m");
            }
            retry.max_age = age.get();
        }
        errors.into_result(NotifySettings {
            smtp,
            channels,
            render: RenderOptions {
                language: self.language.unwrap_or_default(),
                web_url,
            },
            retry,
        })
    }
}

fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parse addresses, reporting each bad one under `key[i]`.
pub fn parse_mailboxes(key: &str, list: &[String], errors: &mut ConfigErrors) -> Vec<Mailbox> {
    let mut out = Vec::with_capacity(list.len());
    for (i, text) in list.iter().enumerate() {
        match text.trim().parse::<Mailbox>() {
            Ok(m) => out.push(m),
            Err(e) => errors.push(
                format!("{key}[{i}]"),
                format!("{text:?} is not an e-mail address: {e}"),
            ),
        }
    }
    out
}

impl SmtpConfig {
    /// Check `[smtp]`; `None` (with the problems in `errors`) when it is not usable.
    pub fn validate(&self, errors: &mut ConfigErrors) -> Option<SmtpSettings> {
        let before = errors.issues.len();
        let from = match self.from.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push("smtp.from", "is required: the sender address");
                None
            }
            Some(text) => match text.parse::<Mailbox>() {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(
                        "smtp.from",
                        format!("{text:?} is not an e-mail address: {e}"),
                    );
                    None
                }
            },
        };
        let to = parse_mailboxes("smtp.to", &self.to, errors);
        let timeout = self.timeout.unwrap_or(HumanDuration::from_secs(10)).get();
        if timeout.is_zero() {
            errors.push("smtp.timeout", "must be more than 0s");
        }
        let transport = match self.transport.unwrap_or_default() {
            SmtpTransportKind::File => {
                let unused = [
                    ("smtp.host", self.host.is_some()),
                    ("smtp.port", self.port.is_some()),
                    ("smtp.tls", self.tls.is_some()),
                    ("smtp.username", self.username.is_some()),
                    ("smtp.password", self.password.is_some()),
                    ("smtp.ca_file", self.ca_file.is_some()),
                ];
                for (key, set) in unused {
                    if set {
                        errors.push(key, "is not used by transport = \"file\"; remove it");
                    }
                }
                match &self.dir {
                    Some(dir) if !dir.as_os_str().is_empty() => {
                        Some(SmtpTransport::File { dir: dir.clone() })
                    }
                    _ => {
                        errors.push(
                            "smtp.dir",
                            "is required with transport = \"file\": where the .eml files go",
                        );
                        None
                    }
                }
            }
            SmtpTransportKind::Smtp => {
                if self.dir.is_some() {
                    errors.push("smtp.dir", "is only used with transport = \"file\"");
                }
                let host = self.host.as_deref().map(str::trim).unwrap_or("");
                if host.is_empty() {
                    errors.push("smtp.host", "is required: the SMTP server's host name");
                } else if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
                    errors.push(
                        "smtp.host",
                        format!("{host:?} is not a host name (put the port in smtp.port)"),
                    );
                }
                let tls = self.tls.unwrap_or_default();
                let port = self.port.unwrap_or(tls.default_port());
                if port == 0 {
                    errors.push("smtp.port", "must be 1 to 65535");
                }
                let username = self.username.as_deref().map(str::trim).unwrap_or("");
                let has_password = self
                    .password
                    .as_ref()
                    .is_some_and(|p| !p.expose_secret().is_empty());
                let credentials = match (username.is_empty(), &self.password) {
                    (false, Some(p)) if has_password => Some((username.to_owned(), p.clone())),
                    (false, _) => {
                        errors.push("smtp.password", "is required when smtp.username is set");
                        None
                    }
                    (true, _) if has_password => {
                        errors.push("smtp.username", "is required when smtp.password is set");
                        None
                    }
                    (true, _) => None,
                };
                let ca = match &self.ca_file {
                    None => None,
                    Some(_) if tls == SmtpTls::None => {
                        errors.push("smtp.ca_file", "is not used with tls = \"none\"; remove it");
                        None
                    }
                    Some(path) => match CaFile::read(path) {
                        Ok(ca) => Some(ca),
                        Err(message) => {
                            errors.push("smtp.ca_file", message);
                            None
                        }
                    },
                };
                Some(SmtpTransport::Smtp {
                    host: host.to_owned(),
                    port,
                    tls,
                    credentials,
                    ca,
                })
            }
        };
        if errors.issues.len() > before {
            return None;
        }
        Some(SmtpSettings {
            transport: transport?,
            from: from?,
            to,
            timeout,
        })
    }
}

fn validate_channel(
    key: &str,
    channel: &ChannelConfig,
    smtp_configured: bool,
    smtp: Option<&SmtpSettings>,
    errors: &mut ConfigErrors,
) -> Option<ChannelSettings> {
    let before = errors.issues.len();
    let url = |raw: &str, errors: &mut ConfigErrors| -> Option<SecretUrl> {
        match check_url(raw) {
            Ok(u) => Some(SecretUrl::new(u)),
            Err(message) => {
                errors.push(format!("{key}.url"), message);
                None
            }
        }
    };
    let timeout = |t: HumanDuration, errors: &mut ConfigErrors| -> Duration {
        if t.get().is_zero() {
            errors.push(format!("{key}.timeout"), "must be more than 0s");
        }
        t.get()
    };
    let settings = match channel {
        ChannelConfig::Email(c) => {
            if !smtp_configured {
                errors.push(
                    format!("{key}.type"),
                    "an e-mail channel needs the [smtp] section",
                );
                return None;
            }
            let to = match &c.to {
                Some(list) => parse_mailboxes(&format!("{key}.to"), list, errors),
                None => smtp.map(|s| s.to.clone()).unwrap_or_default(),
            };
            // With [smtp] invalid its own errors say why; only report what is ours.
            if to.is_empty() && (c.to.is_some() || smtp.is_some()) {
                errors.push(
                    format!("{key}.to"),
                    "no recipients: set them here or in smtp.to",
                );
            }
            ChannelSettings::Email { to }
        }
        ChannelConfig::Webhook(c) => {
            let url = url(&c.url, errors);
            let mut headers = HeaderMap::new();
            for (name, value) in &c.headers {
                let hkey = format!("{key}.headers.{name}");
                let Ok(hname) = HeaderName::from_bytes(name.as_bytes()) else {
                    errors.push(hkey, "is not a valid header name");
                    continue;
                };
                if hname == reqwest::header::CONTENT_TYPE || hname == reqwest::header::HOST {
                    errors.push(hkey, "is set by hostscope; remove it");
                    continue;
                }
                match HeaderValue::from_str(value.expose_secret()) {
                    Ok(mut v) => {
                        v.set_sensitive(true);
                        headers.insert(hname, v);
                    }
                    // The value is secret: say what is wrong, not what it is.
                    Err(_) => errors.push(
                        hkey,
                        "the value has characters a header cannot carry (control characters or non-ASCII)",
                    ),
                }
            }
            let timeout = timeout(c.timeout, errors);
            ChannelSettings::Webhook {
                url: url?,
                headers,
                timeout,
            }
        }
        ChannelConfig::Slack(c) => {
            let url = url(&c.url, errors);
            let timeout = timeout(c.timeout, errors);
            ChannelSettings::Slack { url: url?, timeout }
        }
        ChannelConfig::Dingtalk(c) => {
            let url = url(&c.url, errors);
            if let Some(u) = &url {
                if !u.expose().query_pairs().any(|(k, _)| k == "access_token") {
                    errors.push(
                        format!("{key}.url"),
                        "has no access_token parameter; copy the robot's whole webhook URL",
                    );
                }
            }
            check_secret(key, &c.secret, errors);
            check_mobiles(&format!("{key}.at_mobiles"), &c.at_mobiles, false, errors);
            let timeout = timeout(c.timeout, errors);
            ChannelSettings::Dingtalk {
                url: url?,
                secret: c.secret.clone(),
                at_mobiles: c.at_mobiles.iter().map(|m| m.trim().to_owned()).collect(),
                at_all: c.at_all,
                timeout,
            }
        }
        ChannelConfig::Wecom(c) => {
            let url = url(&c.url, errors);
            if let Some(u) = &url {
                if !u.expose().query_pairs().any(|(k, _)| k == "key") {
                    errors.push(
                        format!("{key}.url"),
                        "has no key parameter; copy the robot's whole webhook URL",
                    );
                }
            }
            check_mobiles(
                &format!("{key}.mentioned_mobile_list"),
                &c.mentioned_mobile_list,
                true,
                errors,
            );
            let timeout = timeout(c.timeout, errors);
            ChannelSettings::Wecom {
                url: url?,
                mentioned_mobile_list: c
                    .mentioned_mobile_list
                    .iter()
                    .map(|m| m.trim().to_owned())
                    .collect(),
                timeout,
            }
        }
        ChannelConfig::Feishu(c) => {
            let url = url(&c.url, errors);
            check_secret(key, &c.secret, errors);
            let timeout = timeout(c.timeout, errors);
            ChannelSettings::Feishu {
                url: url?,
                secret: c.secret.clone(),
                timeout,
            }
        }
    };
    (errors.issues.len() == before).then_some(settings)
}

/// An `http(s)` URL with a host and no credentials. The message never quotes the URL:
/// chat webhooks carry their token in it.
fn check_url(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is required".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    Ok(url)
}

fn check_secret(key: &str, secret: &Option<SecretString>, errors: &mut ConfigErrors) {
    if secret
        .as_ref()
        .is_some_and(|s| s.expose_secret().trim().is_empty())
    {
        errors.push(
            format!("{key}.secret"),
            "is empty; remove it or paste the signing secret",
        );
    }
}

fn check_mobiles(key: &str, list: &[String], allow_all: bool, errors: &mut ConfigErrors) {
    for (i, m) in list.iter().enumerate() {
        let m = m.trim();
        let ok = (allow_all && m == "@all")
            || (!m.is_empty()
                && m.len() <= 20
                && m.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-')));
        if !ok {
            errors.push(
                format!("{key}[{i}]"),
                format!("{m:?} is not a mobile number"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels(toml_text: &str) -> BTreeMap<String, ChannelConfig> {
        #[derive(Deserialize)]
        struct Doc {
            channels: BTreeMap<String, ChannelConfig>,
        }
        let doc: Doc = toml_from_str(toml_text);
        doc.channels
    }

    /// TOML through the same `config` crate the loader uses.
    fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> T {
        let c = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .unwrap();
        c.try_deserialize().unwrap()
    }

    fn smtp(text: &str) -> SmtpConfig {
        toml_from_str(text)
    }

    fn keys(e: &ConfigErrors) -> Vec<&str> {
        e.issues.iter().map(|i| i.key.as_str()).collect()
    }

    fn validate(
        smtp: Option<&SmtpConfig>,
        channels: &BTreeMap<String, ChannelConfig>,
    ) -> Result<NotifySettings, ConfigErrors> {
        NotifyConfig {
            smtp,
            channels,
            language: None,
            web_url: None,
            outbox_max_age: None,
        }
        .validate()
    }

    #[test]
    fn smtp_defaults_by_tls_mode() {
        let mut errors = ConfigErrors::new("t");
        let s = smtp(
            r#"host = "mail.example.com"
from = "hostscope <alerts@example.com>"
to = "a@example.com, b@example.com""#,
        )
        .validate(&mut errors)
        .unwrap();
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(s.to.len(), 2);
        assert_eq!(s.timeout, Duration::from_secs(10));
        match s.transport {
            SmtpTransport::Smtp {
                port,
                tls,
                credentials,
                ..
            } => {
                assert_eq!((port, tls), (587, SmtpTls::Starttls));
                assert!(credentials.is_none());
            }
            other => panic!("{other:?}"),
        }
        for (tls, port) in [("tls", 465), ("none", 25)] {
            let s = smtp(&format!("host = \"h\"\nfrom = \"a@b.c\"\ntls = \"{tls}\""))
                .validate(&mut errors)
                .unwrap();
            assert!(matches!(s.transport, SmtpTransport::Smtp { port: p, .. } if p == port));
        }
    }

    #[test]
    fn smtp_errors_name_their_keys_and_hide_the_password() {
        let mut errors = ConfigErrors::new("t");
        let r = smtp(
            r#"from = "not an address"
password = "hunter2"
to = ["ok@example.com", "bad"]
timeout = "0s""#,
        )
        .validate(&mut errors);
        assert!(r.is_none());
        assert_eq!(
            keys(&errors),
            [
                "smtp.from",
                "smtp.to[1]",
                "smtp.timeout",
                "smtp.host",
                "smtp.username"
            ]
        );
        assert!(!errors.to_string().contains("hunter2"));

        let mut errors = ConfigErrors::new("t");
        let r = smtp("transport = \"file\"\nfrom = \"a@b.c\"\nhost = \"h\"").validate(&mut errors);
        assert!(r.is_none());
        assert_eq!(keys(&errors), ["smtp.host", "smtp.dir"]);
    }

    #[test]
    fn smtp_ca_file_is_read_and_checked_at_validation() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let check = |path: &Path, tls: &str, expected: &str| {
            let mut errors = ConfigErrors::new("t");
            let config = smtp(&format!(
                "host = \"h\"\nfrom = \"a@b.c\"\ntls = \"{tls}\"\nca_file = {:?}",
                path.display().to_string()
            ));
            assert!(config.validate(&mut errors).is_none(), "{path:?}");
            assert_eq!(keys(&errors), ["smtp.ca_file"], "{errors}");
            let text = errors.to_string();
            assert!(text.contains(expected), "{expected:?} not in {text}");
        };
        check(
            &dir.path().join("nope.pem"),
            "starttls",
            "nope.pem does not exist",
        );
        check(dir.path(), "starttls", "cannot read");
        let key_only = file(
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        );
        check(&key_only, "tls", "holds no PEM certificate");
        let der = file("ca.der", &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82]);
        check(&der, "tls", "holds no PEM certificate");
        let bad_base64 = file(
            "b64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        check(&bad_base64, "starttls", "is not valid PEM");
        let unterminated = file("cut.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n");
        check(&unterminated, "starttls", "is not valid PEM");
        let not_x509 = file(
            "junk.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        check(&not_x509, "starttls", "cannot be used as a CA");
        // Set where it cannot matter.
        check(&not_x509, "none", "is not used with tls = \"none\"");
        let mut errors = ConfigErrors::new("t");
        let r = smtp("transport = \"file\"\ndir = \"d\"\nfrom = \"a@b.c\"\nca_file = \"x\"")
            .validate(&mut errors);
        assert!(r.is_none());
        assert_eq!(keys(&errors), ["smtp.ca_file"]);
    }

    #[test]
    fn channels_validate_with_keys_and_never_quote_urls() {
        let ch = channels(
            r#"
[channels.ops]
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?token_typo=SECRETTOKEN"
at_mobiles = ["13800000000", "x"]
[channels.hook]
type = "webhook"
url = "ftp://example.com/SECRETTOKEN"
headers = { "bad header" = "v", Authorization = "Bearer abc" }
[channels.mail]
type = "email"
[channels."bad name"]
type = "slack"
url = "https://hooks.slack.com/services/x"
"#,
        );
        let e = validate(None, &ch).unwrap_err();
        assert_eq!(
            keys(&e),
            [
                "analyzer.channels.bad name",
                "analyzer.channels.hook.url",
                "analyzer.channels.hook.headers.bad header",
                "analyzer.channels.mail.type",
                "analyzer.channels.ops.url",
                "analyzer.channels.ops.at_mobiles[1]",
            ]
        );
        let text = e.to_string();
        assert!(!text.contains("SECRETTOKEN"), "{text}");
        assert!(!text.contains("Bearer"), "{text}");
    }

    #[test]
    fn unknown_channel_keys_and_types_are_refused() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            channels: BTreeMap<String, ChannelConfig>,
        }
        let c = config::Config::builder()
            .add_source(config::File::from_str(
                "[channels.a]\ntype = \"slack\"\nurl = \"https://x\"\ncolour = \"red\"",
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        let e = c.try_deserialize::<Doc>().unwrap_err().to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let c = config::Config::builder()
            .add_source(config::File::from_str(
                "[channels.a]\ntype = \"pager\"",
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        let e = c.try_deserialize::<Doc>().unwrap_err().to_string();
        assert!(e.contains("unknown variant `pager`"), "{e}");
    }

    #[test]
    fn builtin_email_channel_and_names() {
        let s = smtp("host = \"h\"\nfrom = \"a@b.c\"\nto = [\"ops@example.com\"]");
        let ch = channels(
            r#"
[channels.chat]
type = "feishu"
url = "https://open.feishu.cn/open-apis/bot/v2/hook/abc"
secret = "s"
[channels.team]
type = "email"
to = ["team@example.com"]
"#,
        );
        let settings = validate(Some(&s), &ch).unwrap();
        assert_eq!(settings.channel_names(), ["chat", "email", "team"]);
        assert!(matches!(
            settings.channel("email"),
            Some(ChannelSettings::Email { to }) if to.len() == 1
        ));
        // No default recipients: no built-in channel.
        let s = smtp("host = \"h\"\nfrom = \"a@b.c\"");
        let settings = validate(Some(&s), &BTreeMap::new()).unwrap();
        assert!(settings.channel_names().is_empty());
        // An e-mail channel with nobody to write to.
        let ch = channels("[channels.mail]\ntype = \"email\"");
        let e = validate(Some(&s), &ch).unwrap_err();
        assert_eq!(keys(&e), ["analyzer.channels.mail.to"]);
    }

    #[test]
    fn debug_redacts_urls_and_secrets() {
        let ch = channels(
            r#"
[channels.d]
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=TOKEN123"
secret = "SECabc"
[channels.w]
type = "webhook"
url = "https://example.com/hook/TOKEN456"
headers = { Authorization = "Bearer TOKEN789" }
"#,
        );
        let s = validate(None, &ch).unwrap();
        let dbg = format!("{s:?}");
        for secret in ["TOKEN123", "SECabc", "TOKEN456", "TOKEN789"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
        assert!(
            dbg.contains("https://oapi.dingtalk.com/[REDACTED]"),
            "{dbg}"
        );
    }

    #[test]
    fn web_url_and_language() {
        let e = NotifyConfig {
            smtp: None,
            channels: &BTreeMap::new(),
            language: Some(Language::ZhCn),
            web_url: Some("ftp://x"),
            outbox_max_age: Some(HumanDuration::from_secs(1)),
        }
        .validate()
        .unwrap_err();
        assert_eq!(keys(&e), ["analyzer.web_url", "analyzer.outbox_max_age"]);
        let s = NotifyConfig {
            smtp: None,
            channels: &BTreeMap::new(),
            language: Some(Language::ZhCn),
            web_url: Some("https://mon.example.com/hs/"),
            outbox_max_age: None,
        }
        .validate()
        .unwrap();
        assert_eq!(s.render.language, Language::ZhCn);
        assert_eq!(
            s.render.web_url.unwrap().as_str(),
            "https://mon.example.com/hs/"
        );
        let lang: Language = serde_json::from_str("\"zh-CN\"").unwrap();
        assert_eq!(lang, Language::ZhCn);
        assert_eq!(serde_json::to_string(&lang).unwrap(), "\"zh-CN\"");
        let e = serde_json::from_str::<Language>("\"fr\"").unwrap_err();
        assert!(e.to_string().contains("unknown language \"fr\""), "{e}");
    }
}
