//! `[web]`: where to listen, who may log in, and the limits of the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hostscope_core::config::{ConfigErrors, HumanDuration};
use hostscope_core::secret::token_problem;
use ipnet::IpNet;
use reqwest::Url;
use secrecy::SecretString;
use serde::Deserialize;

/// `[web]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Who may log in: `[{ name = "admin", password_hash = "$argon2id$…" }]`; make a
    /// hash with `hostscope-web hash-password`.
    pub users: Vec<UserConfig>,
    /// Shorthand for a user `admin` with this argon2id hash, for deployments that
    /// configure through environment variables (`HOSTSCOPE_WEB__ADMIN_PASSWORD_HASH`).
    pub admin_password_hash: Option<SecretString>,
    /// Read-only API tokens for scripts (`Authorization: Bearer <token>`).
    pub api_tokens: Vec<TokenConfig>,
    /// PEM certificate chain; with `tls_key`, serve HTTPS (reloaded on SIGHUP).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Client addresses allowed to connect (CIDRs); empty allows all.
    pub allow: Vec<String>,
    /// Longest time range one API request may ask for. Default `400d`.
    pub max_range: Option<HumanDuration>,
    /// How long a login lasts. Default `12h`.
    pub session_ttl: Option<HumanDuration>,
    /// How long a client has to send a request's headers. Default 30s.
    pub header_read_timeout: Option<HumanDuration>,
    /// Session cookie for HTTPS only (`Secure`, named `__Host-hs_session`). Default:
    /// on with `tls_cert`; turn it on behind a proxy that terminates TLS.
    pub secure_cookies: Option<bool>,
    /// `en` or `zh-CN`, for visitors whose browser asks for neither. Default `en`.
    pub default_language: Option<String>,
    /// Failed logins allowed per client address per minute. Default 5.
    pub login_attempts_per_minute: Option<u32>,
    /// The analyzer's HTTP API, for the Alerts page. Default: none (empty state).
    pub analyzer_url: Option<String>,
    /// The analyzer's `analyzer.api_token`, sent as a bearer token. Default none.
    pub analyzer_token: Option<SecretString>,
    /// The collector's interval, to tell when a host went silent (no data for 3
    /// intervals). Default `10s`.
    pub collect_interval: Option<HumanDuration>,
}

/// One user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// An argon2id PHC string.
    pub password_hash: SecretString,
}

/// One API token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// What the token is for (shows in logs, never the token).
    pub name: String,
    pub token: SecretString,
}

/// The UI languages.
pub const LANGUAGES: &[&str] = &["en", "zh-CN"];

/// Validated `[web]`.
#[derive(Debug, Clone)]
pub struct WebSettings {
    pub listen: SocketAddr,
    pub users: Vec<UserConfig>,
    pub api_tokens: Vec<TokenConfig>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow: Vec<IpNet>,
    pub max_range: Duration,
    pub session_ttl: Duration,
    pub header_read_timeout: Duration,
    pub secure_cookies: bool,
    pub default_language: String,
    pub login_attempts_per_minute: u32,
    pub analyzer_url: Option<Url>,
    pub analyzer_token: Option<SecretString>,
    pub collect_interval: Duration,
}

impl WebConfig {
    pub fn validate(&self, errors: &mut ConfigErrors) -> Option<WebSettings> {
        let listen_text = self.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                errors.push(
                    "web.listen",
                    format!("{listen_text:?} is not an address like 127.0.0.1:8080: {e}"),
                );
                None
            }
        };
        let mut users = self.users.clone();
        if let Some(hash) = self.admin_password_hash.clone().filter(|h| {
            use secrecy::ExposeSecret;
            !h.expose_secret().trim().is_empty()
        }) {
            use secrecy::ExposeSecret;
            if !hash.expose_secret().starts_with("$argon2id$") {
                errors.push(
                    "web.admin_password_hash",
                    "is not an argon2id hash; make one with `hostscope-web hash-password`",
                );
            }
            if users.iter().any(|u| u.name == "admin") {
                errors.push(
                    "web.admin_password_hash",
                    "a user named admin is already in web.users",
                );
            }
            users.push(UserConfig {
                name: "admin".to_owned(),
                password_hash: hash,
            });
        }
        for (i, u) in self.users.iter().enumerate() {
            use secrecy::ExposeSecret;
            if u.name.trim().is_empty() {
                errors.push(format!("web.users[{i}].name"), "is empty");
            }
            if !u.password_hash.expose_secret().starts_with("$argon2id$") {
                errors.push(
                    format!("web.users[{i}].password_hash"),
                    "is not an argon2id hash; make one with `hostscope-web hash-password`",
                );
            }
        }
        for (i, t) in self.api_tokens.iter().enumerate() {
            use secrecy::ExposeSecret;
            if let Some(problem) = token_problem(t.token.expose_secret()) {
                errors.push(format!("web.api_tokens[{i}].token"), problem);
            }
        }
        if let Some(problem) = self.analyzer_token.as_ref().and_then(|t| {
            use secrecy::ExposeSecret;
            token_problem(t.expose_secret())
        }) {
            errors.push("web.analyzer_token", problem);
        }
        if self.analyzer_token.is_some() && self.analyzer_url.is_none() {
            errors.push("web.analyzer_token", "is set without web.analyzer_url");
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            (Some(_), None) => {
                errors.push("web.tls_key", "is required with web.tls_cert");
                None
            }
            (None, Some(_)) => {
                errors.push("web.tls_cert", "is required with web.tls_key");
                None
            }
        };
        let mut allow = Vec::new();
        for (i, a) in self.allow.iter().enumerate() {
            let parsed = a
                .parse::<IpNet>()
                .or_else(|_| a.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => allow.push(net),
                Err(_) => errors.push(
                    format!("web.allow[{i}]"),
                    format!("{a:?} is not a CIDR like 10.0.0.0/8 or an address"),
                ),
            }
        }
        let default_language = self
            .default_language
            .clone()
            .unwrap_or_else(|| "en".to_owned());
        if !LANGUAGES.contains(&default_language.as_str()) {
            errors.push(
                "web.default_language",
                format!(
                    "{default_language:?} is not one of {}",
                    LANGUAGES.join(", ")
                ),
            );
        }
        let analyzer_url = match self
            .analyzer_url
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            None => None,
            Some(u) => match Url::parse(u) {
                Ok(url) => Some(url),
                Err(e) => {
                    errors.push("web.analyzer_url", format!("{u:?} is not a URL: {e}"));
                    None
                }
            },
        };
        let max_range = self
            .max_range
            .unwrap_or(HumanDuration::from_secs(400 * 86400))
            .get();
        let session_ttl = self
            .session_ttl
            .unwrap_or(HumanDuration::from_secs(12 * 3600))
            .get();
        if session_ttl < Duration::from_secs(60) {
            errors.push("web.session_ttl", "must be at least 1m");
        }
        let header_read_timeout = self
            .header_read_timeout
            .unwrap_or(HumanDuration::from_secs(30))
            .get();
        if header_read_timeout < Duration::from_secs(1)
            || header_read_timeout > Duration::from_secs(600)
        {
            errors.push("web.header_read_timeout", "must be between 1s and 10m");
        }
        let secure_cookies = self.secure_cookies.unwrap_or(tls.is_some());
        Some(WebSettings {
            listen: listen?,
            users,
            api_tokens: self.api_tokens.clone(),
            tls,
            allow,
            max_range,
            session_ttl,
            header_read_timeout,
            secure_cookies,
            default_language,
            login_attempts_per_minute: self.login_attempts_per_minute.unwrap_or(5).max(1),
            analyzer_url,
            analyzer_token: self.analyzer_token.clone(),
            collect_interval: self
                .collect_interval
                .unwrap_or(HumanDuration::from_secs(10))
                .get(),
        })
    }
}
