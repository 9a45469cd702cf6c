//! `[[collector.inputs.http]]`: GET a URL every cycle, record how the request went
//! (like Telegraf's `http_response`), and turn a JSON or Prometheus body into metrics
//! (business metrics an application exposes).
//!
//! ```toml
//! [[collector.inputs.http]]
//! name = "shop"                              # measurement of the body's metrics
//! url = "https://shop.internal/stats"
//! timeout = "5s"
//! headers = { "X-Api-Key" = "…" }            # values are kept secret
//! username = "monitor"                       # basic auth, or:
//! password = "…"
//! # bearer_token = "…"
//! format = "auto"                            # auto | json | prometheus
//! fields = { pending = "orders.pending" }    # JSON only; default: every number
//! tags = { team = "shop" }
//! ```
//!
//! # `http_response`, one point per cycle
//! Tags `server` (the URL as configured), `method` (`GET`), `name`, `status_code` (when
//! a response came), `result`, plus the configured `tags`. Fields:
//! - `response_time`: float seconds until the response's headers (only when there was a
//!   response, as in Telegraf);
//! - `http_response_code`: integer status (when there was a response);
//! - `content_length`: integer, bytes of body read (when the body was read whole);
//! - `result_type` (string, same as the `result` tag) and `result_code` (integer).
//!
//! | result | code | when |
//! |---|---|---|
//! | `success` | 0 | a response came and its body was read (and, on 2xx, parsed); whatever its status, as Telegraf does without expectations |
//! | `body_read_error` | 2 | reading the body failed, or it exceeded 10 MiB |
//! | `connection_failed` | 3 | no response: refused, reset, TLS failure, too many redirects |
//! | `timeout` | 4 | no complete response within `timeout` (headers or body) |
//! | `dns_error` | 5 | the host name did not resolve |
//! | `body_parse_error` | 7 | a 2xx body that is not valid JSON / exposition text, or a configured field missing or not numeric (hostscope's own; Telegraf has no code 7) |
//!
//! # The body's metrics (2xx only)
//! The format is `format`, or with `auto`: JSON when the Content-Type is
//! `application/json` or `*+json`; Prometheus text when it is
//! `application/openmetrics-text` or `text/plain; version=0.0.4`; otherwise JSON when
//! the body starts with `{` or `[` (which no exposition can) and Prometheus text if not.
//!
//! Every body point is in measurement `name`, with tag `url` (the URL) and the
//! configured `tags`; the cycle's timestamp.
//! - **JSON**: one point. With `fields` set, each field takes the value at its dotted
//!   path (`a.b[0].c`; `[0].x` when the body is an array): a number, or a boolean as
//!   1.0/0.0; a path that is missing or holds something else is an error naming it,
//!   and the other fields are still written. Without `fields`, every number and
//!   boolean leaf becomes a field named by its path joined with `_` (`{"orders":
//!   {"pending": 3}}` → `orders_pending`, arrays by index: `list_0`), like Telegraf's
//!   JSON parser; a bare number body is the field `value`; strings and nulls are
//!   ignored; more than 1000 such values is an error (pick them with `fields`). All
//!   values are floats, so a value that is `3` one cycle and `3.5` the next never
//!   changes the field's type in InfluxDB.
//! - **Prometheus text** (format 0.0.4, see [`super::promtext`]), as Telegraf's
//!   `metric_version = 2`: each sample becomes the field named after the sample
//!   (`http_requests_total`; histograms `x_bucket` with tag `le`, `x_sum`, `x_count`;
//!   summaries `x` with tag `quantile`, `x_sum`, `x_count`), its labels become tags;
//!   samples with the same labels share a point. A configured tag replaces a label of
//!   the same name; a label named `url` replaces the `url` tag. Timestamps in the
//!   exposition are ignored: every point gets the cycle's timestamp, so the body's
//!   metrics line up with everything else the cycle wrote. NaN and ±Inf samples are
//!   skipped (InfluxDB cannot store them), as are samples whose names or labels line
//!   protocol cannot carry; both are logged.
//!
//! # Errors
//! `gather` returns an error when the body's metrics are missing or incomplete: no
//! response, a non-2xx status, an unreadable or unparsable body. The `http_response`
//! point (and whatever body fields could be read) is already in the accumulator then:
//! keep it, it is the record of the failure.
//!
//! # Requests
//! One client per input, built in [`Input::new`] with `timeout` for the whole exchange
//! (connect, headers, body). Redirects are followed (up to 10) only within the same
//! scheme, host and port, so the configured headers and credentials never go to
//! another server; a redirect elsewhere is reported as its 3xx status. Proxies come
//! from the usual environment variables (`HTTPS_PROXY`, `NO_PROXY`, …), as reqwest does.
//! Secrets (password, token, header values) never appear in logs or errors; put none
//! in the URL, which is the `server` tag (credentials in it are refused).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hostscope_core::config::{ConfigErrors, HumanDuration};
use hostscope_core::secret::{ExposeSecret, SecretString};
use hostscope_core::{Point, PointBuilder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::{promtext, Accumulator, InputError};

/// The measurement recording each request.
pub const RESPONSE_MEASUREMENT: &str = "http_response";
/// Largest body read; a larger one is a `body_read_error`.
pub const MAX_BODY_BYTES: usize = 10 << 20;
/// Most fields taken from a JSON body without `fields`.
const MAX_JSON_FIELDS: usize = 1000;
/// Most redirects followed.
const MAX_REDIRECTS: usize = 10;
/// Tags this input sets itself; `tags` may not use them.
const OWN_TAGS: [&str; 6] = ["server", "method", "name", "status_code", "result", "url"];

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

/// How to read the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// From the Content-Type, else from the body's first character.
    #[default]
    Auto,
    /// JSON.
    Json,
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
}

/// `[[collector.inputs.http]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The measurement of the body's metrics, and the `name` tag of `http_response`.
    /// Required.
    pub name: String,
    /// The URL to GET, `http://` or `https://`. Required. It is the `server` tag, so
    /// put no secret in it (user and password in it are refused).
    pub url: String,
    /// Time allowed for the whole request: connecting, headers and body. Default `5s`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Extra request headers. The values are secret: never logged or shown.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password; needs `username`.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Sent as `Authorization: Bearer <token>`; not with `username`.
    #[serde(default)]
    pub bearer_token: Option<SecretString>,
    /// `auto` (default), `json` or `prometheus`.
    #[serde(default)]
    pub format: Format,
    /// JSON only: field name → dotted path (`orders.pending`, `a.b[0].c`). Default:
    /// every number and boolean, named by its path joined with `_`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Tags added to every point of this input (`http_response` and the body's).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What [`Config::check`] makes of a valid config.
struct Checked {
    url: Url,
    headers: HeaderMap,
    fields: Vec<(String, String, Vec<Step>)>,
}

impl Config {
    /// Report every problem under `key` (e.g. `collector.inputs.http[0]`).
    pub fn validate(&self, key: &str, errors: &mut ConfigErrors) {
        if let Err(problems) = self.check() {
            for (suffix, message) in problems {
                errors.push(format!("{key}{suffix}"), message);
            }
        }
    }

    /// The parsed URL, headers and paths, or (key suffix, message) of every problem.
    /// No message quotes a secret.
    fn check(&self) -> Result<Checked, Vec<(String, String)>> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut problem = |k: String, m: String| problems.push((k, m));

        if self.name.trim().is_empty() {
            problem(".name".into(), "must not be empty".into());
        } else if self.name == RESPONSE_MEASUREMENT {
            problem(
                ".name".into(),
                format!(
                    "`{RESPONSE_MEASUREMENT}` is this input's own measurement; pick another name"
                ),
            );
        } else if let Err(e) = Point::builder(self.name.as_str()).field("f", 0.0).build() {
            problem(".name".into(), format!("cannot be a measurement: {e}"));
        } else if let Some(why) = bad_tag_value(&self.name) {
            problem(".name".into(), why);
        }

        let url = match Url::parse(&self.url) {
            Err(e) => {
                problem(".url".into(), format!("invalid URL: {e}"));
                None
            }
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                problem(
                    ".url".into(),
                    format!(
                        "scheme `{}` is not supported; use http or https",
                        u.scheme()
                    ),
                );
                None
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                problem(".url".into(), "has no host".into());
                None
            }
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                problem(
                    ".url".into(),
                    "must not carry credentials (they would end up in the `server` tag); use `username` and `password`"
                        .into(),
                );
                None
            }
            Ok(u) => match bad_tag_value(&self.url) {
                Some(why) => {
                    problem(".url".into(), format!("cannot be the `server` tag: {why}"));
                    None
                }
                None => Some(u),
            },
        };

        if self.timeout.get().is_zero() {
            problem(".timeout".into(), "must be more than 0s".into());
        }

        let mut headers = HeaderMap::new();
        let auth_set = self.username.is_some() || self.bearer_token.is_some();
        for (name, value) in &self.headers {
            let key = format!(".headers.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                problem(key, "invalid header name".into());
                continue;
            };
            if header == AUTHORIZATION && auth_set {
                problem(
                    key,
                    "conflicts with `username` / `bearer_token`; set one of them".into(),
                );
                continue;
            }
            match HeaderValue::from_str(value.expose_secret()) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    headers.insert(header, v);
                }
                Err(_) => problem(
                    key,
                    "invalid header value (not shown: it may be secret); use visible ASCII".into(),
                ),
            }
        }

        match (&self.username, &self.password, &self.bearer_token) {
            (None, Some(_), _) => problem(".password".into(), "needs `username`".into()),
            (Some(_), _, Some(_)) => problem(
                ".bearer_token".into(),
                "set either `username`/`password` or `bearer_token`, not both".into(),
            ),
            _ => {}
        }
        if let Some(user) = &self.username {
            if user.contains(':') || user.contains(['\r', '\n']) {
                problem(
                    ".username".into(),
                    "must not contain `:` or line breaks (basic auth cannot carry them)".into(),
                );
            }
        }
        if let Some(token) = &self.bearer_token {
            let t = token.expose_secret();
            if t.is_empty() || HeaderValue::from_str(t).is_err() {
                problem(
                    ".bearer_token".into(),
                    "must be non-empty visible ASCII (not shown: it is secret)".into(),
                );
            }
        }

        if self.format == Format::Prometheus && !self.fields.is_empty() {
            problem(
                ".fields".into(),
                "only applies to JSON bodies; remove it or set format = \"json\"".into(),
            );
        }
        let mut fields = Vec::new();
        for (field, path) in &self.fields {
            let key = format!(".fields.{field}");
            if let Err(e) = Point::builder("m").field(field.as_str(), 0.0).build() {
                problem(key, format!("cannot be a field name: {e}"));
                continue;
            }
            match parse_path(path) {
                Ok(steps) => fields.push((field.clone(), path.clone(), steps)),
                Err(e) => problem(key, e),
            }
        }

        for (k, v) in &self.tags {
            let key = format!(".tags.{k}");
            if OWN_TAGS.contains(&k.as_str()) {
                problem(key, format!("`{k}` is set by the input itself"));
            } else if let Err(e) = Point::builder("m")
                .tag(k.as_str(), v.as_str())
                .field("f", 0.0)
                .build()
            {
                problem(key, e.to_string());
            } else if v.is_empty() {
                problem(key, "must not be empty".into());
            }
        }

        match url {
            Some(url) if problems.is_empty() => Ok(Checked {
                url,
                headers,
                fields,
            }),
            _ => Err(problems),
        }
    }
}

/// Why `value` cannot be a tag value, if it cannot.
fn bad_tag_value(value: &str) -> Option<String> {
    Point::builder("m")
        .tag("t", value)
        .field("f", 0.0)
        .build()
        .err()
        .map(|e| e.to_string())
}

/// `a.b[0].c` → `[Key a, Key b, Index 0, Key c]`; `[1].x` for a top-level array. Keys
/// cannot contain `.`, `[` or `]`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    if path.is_empty() {
        return Err("the path is empty".to_owned());
    }
    let mut steps = Vec::new();
    for (i, segment) in path.split('.').enumerate() {
        let (key, mut rest) = match segment.find('[') {
            Some(p) => segment.split_at(p),
            None => (segment, ""),
        };
        if key.contains(']') {
            return Err(format!("unexpected `]` in the path {path:?}"));
        }
        if key.is_empty() {
            if i > 0 || rest.is_empty() {
                return Err(format!("empty key in the path {path:?}"));
            }
        } else {
            steps.push(Step::Key(key.to_owned()));
        }
        while !rest.is_empty() {
            let Some(inner) = rest.strip_prefix('[') else {
                return Err(format!(
                    "expected `[` or `.` after `]` in the path {path:?}"
                ));
            };
            let Some((index, after)) = inner.split_once(']') else {
                return Err(format!("unclosed `[` in the path {path:?}"));
            };
            let index: usize = index.parse().map_err(|_| {
                format!("array index {index:?} in the path {path:?} is not a number")
            })?;
            steps.push(Step::Index(index));
            rest = after;
        }
    }
    Ok(steps)
}

/// The value at `steps`, if there is one.
fn lookup<'a>(mut value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for step in steps {
        value = match (step, value) {
            (Step::Key(k), Value::Object(map)) => map.get(k)?,
            (Step::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Numbers as they are, booleans as 1/0.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every number and boolean leaf, named by its path joined with `_`. Err when there
/// are more than [`MAX_JSON_FIELDS`].
fn flatten(value: &Value, name: &mut String, out: &mut Vec<(String, f64)>) -> Result<(), ()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let len = name.len();
                if len > 0 {
                    name.push('_');
                }
                name.push_str(k);
                let r = flatten(v, name, out);
                name.truncate(len);
                r?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = name.len();
                if len > 0 {
                    name.push('_');
                }
                let _ = write!(name, "{i}");
                let r = flatten(v, name, out);
                name.truncate(len);
                r?;
            }
        }
        leaf => {
            if let Some(x) = number(leaf) {
                if out.len() >= MAX_JSON_FIELDS {
                    return Err(());
                }
                let field = if name.is_empty() {
                    "value"
                } else {
                    name.as_str()
                };
                out.push((field.to_owned(), x));
            }
        }
    }
    Ok(())
}

/// How one request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response came and its body was read (and, on 2xx, parsed).
    Success,
    /// Reading the body failed, or it was over [`MAX_BODY_BYTES`].
    BodyReadError,
    /// No response: refused, reset, TLS failure, too many redirects.
    ConnectionFailed,
    /// No complete response within the timeout.
    Timeout,
    /// The host name did not resolve.
    DnsError,
    /// A 2xx body that could not be parsed, or a configured field missing or not a number.
    BodyParseError,
}

impl Outcome {
    /// The `result` tag and `result_type` field.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::BodyReadError => "body_read_error",
            Outcome::ConnectionFailed => "connection_failed",
            Outcome::Timeout => "timeout",
            Outcome::DnsError => "dns_error",
            Outcome::BodyParseError => "body_parse_error",
        }
    }

    /// The `result_code` field; Telegraf's numbers, and 7 for `body_parse_error`.
    pub fn code(self) -> i64 {
        match self {
            Outcome::Success => 0,
            Outcome::BodyReadError => 2,
            Outcome::ConnectionFailed => 3,
            Outcome::Timeout => 4,
            Outcome::DnsError => 5,
            Outcome::BodyParseError => 7,
        }
    }
}

/// Basic or bearer credentials.
#[derive(Debug)]
enum Auth {
    None,
    Basic(String, Option<SecretString>),
    Bearer(SecretString),
}

/// Why a body could not be read.
enum BodyError {
    TooLarge(u64),
    Timeout,
    Read(String),
}

/// The http input: one URL, one client.
#[derive(Debug)]
pub struct Input {
    name: String,
    server: String,
    url: Url,
    format: Format,
    timeout: Duration,
    client: reqwest::Client,
    auth: Auth,
    fields: Vec<(String, String, Vec<Step>)>,
    tags: BTreeMap<String, String>,
    /// The last note logged about skipped samples or fields, to log a lasting one once.
    last_note: Option<String>,
}

impl Input {
    /// Check the config and build the client.
    pub fn new(config: &Config) -> Result<Self, InputError> {
        let checked = config.check().map_err(|problems| {
            let list: Vec<String> = problems
                .into_iter()
                .map(|(k, m)| format!("{}: {m}", k.trim_start_matches('.')))
                .collect();
            anyhow::anyhow!(
                "http input `{}`: invalid configuration: {}",
                config.name,
                list.join("; ")
            )
        })?;
        let mut headers = checked.headers;
        if !headers.contains_key(ACCEPT) {
            let accept = match config.format {
                Format::Json => "application/json",
                Format::Prometheus => "text/plain;version=0.0.4;q=1,*/*;q=0.1",
                Format::Auto => "application/json,text/plain;version=0.0.4;q=0.9,*/*;q=0.1",
            };
            headers.insert(ACCEPT, HeaderValue::from_static(accept));
        }
        let timeout = config.timeout.get();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .default_headers(headers)
            .user_agent(concat!("hostscope-collector/", env!("CARGO_PKG_VERSION")))
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| {
                anyhow::anyhow!(
                    "http input `{}`: cannot build the HTTP client: {}",
                    config.name,
                    error_chain(&e)
                )
            })?;
        let auth = match (&config.username, &config.bearer_token) {
            (Some(user), _) => Auth::Basic(user.clone(), config.password.clone()),
            (None, Some(token)) => Auth::Bearer(token.clone()),
            (None, None) => Auth::None,
        };
        Ok(Input {
            name: config.name.clone(),
            server: config.url.clone(),
            url: checked.url,
            format: config.format,
            timeout,
            client,
            auth,
            fields: checked.fields,
            tags: config.tags.clone(),
            last_note: None,
        })
    }

    /// GET the URL; add the `http_response` point and the body's metrics.
    pub async fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let mut request = self.client.get(self.url.clone());
        match &self.auth {
            Auth::None => {}
            Auth::Basic(user, password) => {
                request = request.basic_auth(user, password.as_ref().map(|p| p.expose_secret()));
            }
            Auth::Bearer(token) => request = request.bearer_auth(token.expose_secret()),
        }
        let mut point = Point::builder(RESPONSE_MEASUREMENT)
            .tag("server", self.server.as_str())
            .tag("method", "GET")
            .tag("name", self.name.as_str());
        for (k, v) in &self.tags {
            point = point.tag(k.as_str(), v.as_str());
        }

        let started = Instant::now();
        let sent = request.send().await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                let (outcome, what) = if e.is_timeout() {
                    (
                        Outcome::Timeout,
                        format!("no response within {}", HumanDuration(self.timeout)),
                    )
                } else {
                    let chain = error_chain(&e);
                    let outcome = if chain.contains("dns error") {
                        Outcome::DnsError
                    } else {
                        Outcome::ConnectionFailed
                    };
                    (outcome, chain)
                };
                acc.add(with_result(point, outcome));
                return Err(self.error(&what));
            }
        };
        let status = response.status();
        point = point
            .tag("status_code", status.as_u16().to_string())
            .field("response_time", started.elapsed().as_secs_f64())
            .field("http_response_code", i64::from(status.as_u16()));
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        let body = match read_body(&mut response).await {
            Ok(body) => body,
            Err(e) => {
                let (outcome, what) = match e {
                    BodyError::TooLarge(n) => (
                        Outcome::BodyReadError,
                        format!("the body is larger than the limit of {MAX_BODY_BYTES} bytes (at least {n})"),
                    ),
                    BodyError::Timeout => (
                        Outcome::Timeout,
                        format!("the body was not read whole within {}", HumanDuration(self.timeout)),
                    ),
                    BodyError::Read(why) => {
                        (Outcome::BodyReadError, format!("reading the body: {why}"))
                    }
                };
                acc.add(with_result(point, outcome));
                return Err(self.error(&what));
            }
        };
        point = point.field(
            "content_length",
            i64::try_from(body.len()).unwrap_or(i64::MAX),
        );

        if !status.is_success() {
            acc.add(with_result(point, Outcome::Success));
            let hint = if status.is_redirection() {
                "; redirects are followed only within the same scheme, host and port"
            } else {
                ""
            };
            return Err(self.error(&format!(
                "answered {status}, so the body was not read for metrics{hint}"
            )));
        }

        let format = detect_format(self.format, content_type.as_deref(), &body);
        let parsed = match format {
            Format::Prometheus => self.prometheus_points(&body),
            _ => self.json_points(&body),
        };
        match parsed {
            Ok(Parsed {
                points,
                notes,
                errors,
            }) => {
                let outcome = if errors.is_empty() {
                    Outcome::Success
                } else {
                    Outcome::BodyParseError
                };
                acc.add(with_result(point, outcome));
                for p in points {
                    acc.add(p);
                }
                self.note(notes);
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(self.error(&errors.join("; ")))
                }
            }
            Err(message) => {
                acc.add(with_result(point, Outcome::BodyParseError));
                Err(self.error(&message))
            }
        }
    }

    fn error(&self, what: &str) -> InputError {
        anyhow::anyhow!("http input `{}`: GET {}: {what}", self.name, self.server)
    }

    /// Log skipped samples or fields, once while the same ones are skipped.
    fn note(&mut self, notes: Vec<String>) {
        if notes.is_empty() {
            self.last_note = None;
            return;
        }
        let text = notes.join("; ");
        if self.last_note.as_deref() != Some(text.as_str()) {
            tracing::info!(
                message = "http: some values of the body were skipped",
                input = %self.name,
                server = %self.server,
                skipped = %text
            );
            self.last_note = Some(text);
        }
    }

    /// A body point in measurement `name`, with the `url` tag and configured tags.
    fn body_point(&self, labels: &BTreeMap<String, String>) -> PointBuilder {
        let mut p = Point::builder(self.name.as_str());
        for (k, v) in labels {
            p = p.tag(k.as_str(), v.as_str());
        }
        p = p.tag_if_absent("url", &self.server);
        for (k, v) in &self.tags {
            p = p.tag(k.as_str(), v.as_str());
        }
        p
    }

    fn json_points(&self, body: &[u8]) -> Result<Parsed, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
        let mut out = Parsed::default();
        let mut fields: Vec<(String, f64)> = Vec::new();
        if self.fields.is_empty() {
            let mut name = String::new();
            if flatten(&value, &mut name, &mut fields).is_err() {
                return Err(format!(
                    "the JSON body has more than {MAX_JSON_FIELDS} numbers; pick the ones to keep with `fields`"
                ));
            }
        } else {
            for (field, path, steps) in &self.fields {
                match lookup(&value, steps) {
                    None => out
                        .errors
                        .push(format!("field `{field}`: nothing at the path `{path}`")),
                    Some(v) => match number(v) {
                        Some(x) => fields.push((field.clone(), x)),
                        None => out.errors.push(format!(
                            "field `{field}`: the value at `{path}` is {}, not a number",
                            json_kind(v)
                        )),
                    },
                }
            }
        }
        let base = self.body_point(&BTreeMap::new());
        let mut point = base.clone();
        let mut bad = Vec::new();
        let mut any = false;
        for (field, x) in fields {
            if base.clone().field(field.as_str(), x).build().is_err() {
                bad.push(field);
                continue;
            }
            point = point.field(field, x);
            any = true;
        }
        if !bad.is_empty() {
            out.notes.push(skipped_list(
                "JSON values whose names line protocol cannot carry",
                &bad,
            ));
        }
        if any {
            out.points.push(point);
        } else if out.errors.is_empty() {
            out.notes.push("the JSON body has no numbers".to_owned());
        }
        Ok(out)
    }

    fn prometheus_points(&self, body: &[u8]) -> Result<Parsed, String> {
        let exposition = promtext::parse_bytes(body)
            .map_err(|e| format!("the body is not valid Prometheus text: {e}"))?;
        let mut out = Parsed::default();
        let mut groups: BTreeMap<BTreeMap<String, String>, PointBuilder> = BTreeMap::new();
        let mut bad = Vec::new();
        for sample in exposition.samples {
            let trial = self
                .body_point(&sample.labels)
                .field(sample.name.as_str(), sample.value);
            if let Err(e) = trial.build() {
                bad.push(format!("line {} ({e})", sample.line));
                continue;
            }
            let point = match groups.remove(&sample.labels) {
                Some(p) => p,
                None => self.body_point(&sample.labels),
            };
            groups.insert(sample.labels, point.field(sample.name, sample.value));
        }
        if !exposition.skipped.is_empty() {
            let lines: Vec<String> = exposition
                .skipped
                .iter()
                .map(|s| format!("{} (line {})", s.name, s.line))
                .collect();
            out.notes
                .push(skipped_list("samples that are NaN or infinite", &lines));
        }
        if !bad.is_empty() {
            out.notes.push(skipped_list(
                "samples whose names or labels line protocol cannot carry",
                &bad,
            ));
        }
        out.points = groups.into_values().collect();
        Ok(out)
    }
}

/// Points from a body, what was skipped, and what is wrong with it.
#[derive(Default)]
struct Parsed {
    points: Vec<PointBuilder>,
    /// Values left out for reasons that are not errors (logged).
    notes: Vec<String>,
    /// Problems that make the result `body_parse_error`.
    errors: Vec<String>,
}

/// "N <what>: a, b, c, …" with at most five examples.
fn skipped_list(what: &str, items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    let more = if items.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    format!("{} {what}: {}{more}", items.len(), shown.join(", "))
}

fn with_result(point: PointBuilder, outcome: Outcome) -> PointBuilder {
    point
        .tag("result", outcome.name())
        .field("result_type", outcome.name())
        .field("result_code", outcome.code())
}

/// Read the body, at most [`MAX_BODY_BYTES`].
async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let limit = MAX_BODY_BYTES as u64;
    if let Some(n) = response.content_length() {
        if n > limit {
            return Err(BodyError::TooLarge(n));
        }
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(BodyError::TooLarge((body.len() + chunk.len()) as u64));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            Err(e) => return Err(BodyError::Read(error_chain(&e))),
        }
    }
}

/// The format to parse the body as.
fn detect_format(configured: Format, content_type: Option<&str>, body: &[u8]) -> Format {
    if configured != Format::Auto {
        return configured;
    }
    if let Some(ct) = content_type {
        let ct = ct.to_ascii_lowercase();
        let mut parts = ct.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        if essence == "application/json" || essence.ends_with("+json") {
            return Format::Json;
        }
        if essence == "application/openmetrics-text"
            || (essence == "text/plain" && parts.any(|p| p.replace(' ', "") == "version=0.0.4"))
        {
            return Format::Prometheus;
        }
    }
    let start = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match start.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Format::Json,
        _ => Format::Prometheus,
    }
}

/// Follow redirects within the original scheme, host and port only.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The causes of a reqwest error, without its URL (reqwest's own message repeats it):
/// "tcp connect error: Connection refused (os error 111)".
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        // No cause: describe the kind, never the URL.
        return if e.is_redirect() {
            "redirect error".to_owned()
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        };
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::test_accumulator;
    use hostscope_core::FieldValue;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Paths the test server was asked for.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

    const PROM: &str = "\
# HELP orders_total Orders placed.
# TYPE orders_total counter
orders_total{shop=\"eu\"} 10 1700000000000
orders_total{shop=\"us\"} 7
# TYPE queue_depth gauge
queue_depth 3
# TYPE latency histogram
latency_bucket{le=\"0.5\"} 2
latency_bucket{le=\"+Inf\"} 5
latency_sum 1.5
latency_count 5
# TYPE rpc summary
rpc{quantile=\"0.5\"} 0.2
rpc{quantile=\"0.99\"} NaN
rpc_sum 4
rpc_count 20
bad_label{path=\"C:\\\\\"} 1
";

    /// The response for a request: status line + headers + body, or no answer.
    enum Reply {
        Fixed(Vec<u8>),
        Never,
    }

    fn reply(status: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        Reply::Fixed(out)
    }

    fn route(path: &str, headers: &BTreeMap<String, String>, port: u16) -> Reply {
        let json = Some("application/json");
        match path {
            "/json" => reply(
                "200 OK",
                json,
                br#"{"orders":{"pending":3,"done":10.5,"open":true,"label":"x","none":null},"list":[1,{"a":2}]}"#,
            ),
            "/json-as-text" => reply("200 OK", Some("text/plain"), b" [4, false]"),
            "/metrics" => reply("200 OK", Some("text/plain; version=0.0.4; charset=utf-8"), PROM.as_bytes()),
            "/sniff" => reply("200 OK", None, b"up 1\n"),
            "/bad-prom" => reply("200 OK", Some("text/plain; version=0.0.4"), b"up 1\n# TYPE x gauge\nx{a=\"1\" 2\n"),
            "/bad-json" => reply("200 OK", json, br#"{"a": 1,"#),
            "/error" => reply("500 Internal Server Error", Some("text/plain"), b"oops"),
            "/slow" => Reply::Never,
            "/huge" => {
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\nConnection: close\r\n\r\n";
                Reply::Fixed(head.as_bytes().to_vec())
            }
            "/huge-stream" => {
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n".to_vec();
                out.resize(out.len() + MAX_BODY_BYTES + 1, b' ');
                Reply::Fixed(out)
            }
            "/redirect-same" => Reply::Fixed(b"HTTP/1.1 302 Found\r\nLocation: /json\r\nContent-Length: 0\r\n\r\n".to_vec()),
            "/redirect-other" => Reply::Fixed(
                format!("HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/json\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            ),
            "/auth" => {
                let got = headers.get("authorization").map(String::as_str);
                // user:s3cret and the token t0ken
                if matches!(got, Some("Basic dXNlcjpzM2NyZXQ=") | Some("Bearer t0ken"))
                    && headers.get("x-api-key").map(String::as_str) == Some("k3y")
                {
                    reply("200 OK", json, br#"{"ok": 1}"#)
                } else {
                    reply("401 Unauthorized", None, b"")
                }
            }
            _ => reply("404 Not Found", None, b""),
        }
    }

    /// A local HTTP/1.1 server answering [`route`]; returns its base URL.
    async fn serve(seen: Seen) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let mut lines = text.split("\r\n");
                    let path = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or("/")
                        .to_owned();
                    let headers: BTreeMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    seen.lock().unwrap().push(path.clone());
                    match route(&path, &headers, port) {
                        Reply::Fixed(bytes) => {
                            let _ = conn.write_all(&bytes).await;
                            let _ = conn.shutdown().await;
                        }
                        Reply::Never => std::future::pending::<()>().await,
                    }
                });
            }
        });
        format!("http://127.0.0.1:{port}")
    }

    fn config(name: &str, url: &str) -> Config {
        Config {
            name: name.to_owned(),
            url: url.to_owned(),
            timeout: HumanDuration::from_secs(5),
            headers: BTreeMap::new(),
            username: None,
            password: None,
            bearer_token: None,
            format: Format::Auto,
            fields: BTreeMap::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Gather once: (points as line protocol with `response_time` removed, error).
    async fn run(config: &Config) -> (Vec<String>, Option<String>) {
        let mut input = Input::new(config).unwrap();
        let mut acc = test_accumulator();
        let result = input.gather(&mut acc).await;
        let lines = acc
            .into_points()
            .into_iter()
            .map(|p| {
                let has_time = p.field("response_time").is_some();
                if let Some(FieldValue::Float(t)) = p.field("response_time") {
                    assert!(*t >= 0.0 && *t < 5.0);
                }
                let mut b = Point::builder(p.measurement());
                for (k, v) in p.tags() {
                    b = b.tag(k.as_str(), v.as_str());
                }
                for (k, v) in p.fields() {
                    if k != "response_time" {
                        b = b.field(k.as_str(), v.clone());
                    }
                }
                let line = b
                    .timestamp(p.timestamp().unwrap())
                    .build()
                    .unwrap()
                    .to_string();
                let line = line.trim_end();
                if has_time {
                    format!("{line} +rt")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        (lines, result.err().map(|e| format!("{e:#}")))
    }

    fn response(
        url: &str,
        name: &str,
        code: Option<u16>,
        result: &str,
        result_code: i64,
        len: Option<usize>,
    ) -> String {
        let mut tags = format!("http_response,host=test,method=GET,name={name}");
        if let Some(code) = code {
            tags.push_str(&format!(",result={result},server={url},status_code={code}"));
        } else {
            tags.push_str(&format!(",result={result},server={url}"));
        }
        let mut fields = Vec::new();
        if let Some(len) = len {
            fields.push(format!("content_length={len}i"));
        }
        if let Some(code) = code {
            fields.push(format!("http_response_code={code}i"));
        }
        fields.push(format!("result_code={result_code}i"));
        fields.push(format!("result_type=\"{result}\""));
        let rt = if code.is_some() { " +rt" } else { "" };
        format!("{tags} {} 1000000000{rt}", fields.join(","))
    }

    fn seen() -> Seen {
        Seen::default()
    }

    #[tokio::test]
    async fn json_every_number() {
        let base = serve(seen()).await;
        let url = format!("{base}/json");
        let (lines, err) = run(&config("shop", &url)).await;
        assert_eq!(err, None);
        assert_eq!(
            lines,
            [
                response(&url, "shop", Some(200), "success", 0, Some(91)),
                format!("shop,host=test,url={url} list_0=1.0,list_1_a=2.0,orders_done=10.5,orders_open=1.0,orders_pending=3.0 1000000000"),
            ]
        );
    }

    #[tokio::test]
    async fn json_configured_fields_with_a_bad_path() {
        let base = serve(seen()).await;
        let url = format!("{base}/json");
        let mut c = config("shop", &url);
        c.fields = BTreeMap::from([
            ("pending".to_owned(), "orders.pending".to_owned()),
            ("a".to_owned(), "list[1].a".to_owned()),
            ("label".to_owned(), "orders.label".to_owned()),
            ("gone".to_owned(), "orders.gone[2]".to_owned()),
        ]);
        c.tags = BTreeMap::from([("team".to_owned(), "web".to_owned())]);
        let (lines, err) = run(&c).await;
        assert_eq!(
            err.unwrap(),
            format!("http input `shop`: GET {url}: field `gone`: nothing at the path `orders.gone[2]`; field `label`: the value at `orders.label` is a string, not a number")
        );
        assert_eq!(
            lines,
            [
                format!("http_response,host=test,method=GET,name=shop,result=body_parse_error,server={url},status_code=200,team=web content_length=91i,http_response_code=200i,result_code=7i,result_type=\"body_parse_error\" 1000000000 +rt"),
                format!("shop,host=test,team=web,url={url} a=2.0,pending=3.0 1000000000"),
            ]
        );
    }

    #[tokio::test]
    async fn json_sniffed_from_text_plain() {
        let base = serve(seen()).await;
        let url = format!("{base}/json-as-text");
        let (lines, err) = run(&config("s", &url)).await;
        assert_eq!(err, None);
        assert_eq!(
            lines[1],
            format!("s,host=test,url={url} 0=4.0,1=0.0 1000000000")
        );
    }

    #[tokio::test]
    async fn prometheus_text() {
        let base = serve(seen()).await;
        let url = format!("{base}/metrics");
        let (lines, err) = run(&config("app", &url)).await;
        assert_eq!(err, None);
        let t = format!("host=test,url={url}");
        assert_eq!(
            lines,
            [
                response(&url, "app", Some(200), "success", 0, Some(PROM.len())),
                format!("app,{t} latency_count=5.0,latency_sum=1.5,queue_depth=3.0,rpc_count=20.0,rpc_sum=4.0 1000000000"),
                format!("app,host=test,le=+Inf,url={url} latency_bucket=5.0 1000000000"),
                format!("app,host=test,le=0.5,url={url} latency_bucket=2.0 1000000000"),
                format!("app,host=test,quantile=0.5,url={url} rpc=0.2 1000000000"),
                format!("app,host=test,shop=eu,url={url} orders_total=10.0 1000000000"),
                format!("app,host=test,shop=us,url={url} orders_total=7.0 1000000000"),
            ]
        );
    }

    #[tokio::test]
    async fn prometheus_sniffed_without_content_type() {
        let base = serve(seen()).await;
        let url = format!("{base}/sniff");
        let (lines, err) = run(&config("app", &url)).await;
        assert_eq!(err, None);
        assert_eq!(
            lines[1],
            format!("app,host=test,url={url} up=1.0 1000000000")
        );
    }

    #[tokio::test]
    async fn bad_prometheus_names_the_line() {
        let base = serve(seen()).await;
        let url = format!("{base}/bad-prom");
        let (lines, err) = run(&config("app", &url)).await;
        assert_eq!(
            err.unwrap(),
            format!("http input `app`: GET {url}: the body is not valid Prometheus text: line 3: expected `,` or `}}` after the label \"a\", found '2'")
        );
        assert_eq!(
            lines,
            [response(
                &url,
                "app",
                Some(200),
                "body_parse_error",
                7,
                Some(30)
            )]
        );
    }

    #[tokio::test]
    async fn invalid_json() {
        let base = serve(seen()).await;
        let url = format!("{base}/bad-json");
        let (lines, err) = run(&config("shop", &url)).await;
        let err = err.unwrap();
        assert!(
            err.contains("the body is not valid JSON: EOF while parsing"),
            "{err}"
        );
        assert_eq!(
            lines,
            [response(
                &url,
                "shop",
                Some(200),
                "body_parse_error",
                7,
                Some(8)
            )]
        );
        // Forcing prometheus on a JSON body fails the same way, naming line 1.
        let mut c = config("shop", &url);
        c.format = Format::Prometheus;
        let (_, err) = run(&c).await;
        assert!(err.unwrap().contains("Prometheus text: line 1:"));
    }

    #[tokio::test]
    async fn server_error() {
        let base = serve(seen()).await;
        let url = format!("{base}/error");
        let (lines, err) = run(&config("shop", &url)).await;
        assert_eq!(
            err.unwrap(),
            format!("http input `shop`: GET {url}: answered 500 Internal Server Error, so the body was not read for metrics")
        );
        assert_eq!(
            lines,
            [response(&url, "shop", Some(500), "success", 0, Some(4))]
        );
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let base = serve(seen()).await;
        let url = format!("{base}/slow");
        let mut c = config("shop", &url);
        c.timeout = HumanDuration::from_millis(200);
        let started = Instant::now();
        let (lines, err) = run(&c).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            err.unwrap(),
            format!("http input `shop`: GET {url}: no response within 200ms")
        );
        assert_eq!(lines, [response(&url, "shop", None, "timeout", 4, None)]);
    }

    #[tokio::test]
    async fn connection_refused() {
        // Bind, learn the port, close: nothing listens there any more.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/x");
        let (lines, err) = run(&config("shop", &url)).await;
        let err = err.unwrap();
        assert!(
            err.starts_with(&format!("http input `shop`: GET {url}: ")),
            "{err}"
        );
        assert!(!err.contains("error sending request for url"), "{err}");
        assert_eq!(
            lines,
            [response(&url, "shop", None, "connection_failed", 3, None)]
        );
    }

    #[tokio::test]
    async fn huge_bodies_are_refused() {
        let base = serve(seen()).await;
        for path in ["/huge", "/huge-stream"] {
            let url = format!("{base}{path}");
            let (lines, err) = run(&config("shop", &url)).await;
            let err = err.unwrap();
            assert!(
                err.contains("larger than the limit of 10485760 bytes"),
                "{err}"
            );
            let status_only = response(&url, "shop", Some(200), "body_read_error", 2, None);
            assert_eq!(lines, [status_only]);
        }
    }

    #[tokio::test]
    async fn basic_auth_bearer_and_headers() {
        let base = serve(seen()).await;
        let url = format!("{base}/auth");
        let mut c = config("shop", &url);
        c.headers = BTreeMap::from([("X-Api-Key".to_owned(), SecretString::from("k3y"))]);
        c.username = Some("user".to_owned());
        c.password = Some(SecretString::from("s3cret"));
        let (lines, err) = run(&c).await;
        assert_eq!(err, None);
        assert_eq!(
            lines[1],
            format!("shop,host=test,url={url} ok=1.0 1000000000")
        );

        c.username = None;
        c.password = None;
        c.bearer_token = Some(SecretString::from("t0ken"));
        let (lines, err) = run(&c).await;
        assert_eq!(err, None);
        assert_eq!(
            lines[1],
            format!("shop,host=test,url={url} ok=1.0 1000000000")
        );

        c.bearer_token = Some(SecretString::from("wrong"));
        let (lines, err) = run(&c).await;
        let err = err.unwrap();
        assert!(err.contains("401 Unauthorized"));
        assert!(!err.contains("wrong") && !err.contains("k3y"));
        assert_eq!(
            lines,
            [response(&url, "shop", Some(401), "success", 0, Some(0))]
        );
        // Secrets do not show in Debug output either.
        let debug = format!("{c:?} {:?}", Input::new(&c).unwrap());
        assert!(
            !debug.contains("wrong") && !debug.contains("k3y"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn redirects_stay_on_the_same_origin() {
        let seen_paths = seen();
        let base = serve(seen_paths.clone()).await;
        let url = format!("{base}/redirect-same");
        let (lines, err) = run(&config("shop", &url)).await;
        assert_eq!(err, None);
        assert!(lines[1].contains("orders_pending=3"));

        let url = format!("{base}/redirect-other");
        let (lines, err) = run(&config("shop", &url)).await;
        assert!(err.unwrap().contains("answered 302 Found"));
        assert_eq!(
            lines,
            [response(&url, "shop", Some(302), "success", 0, Some(0))]
        );
        let paths = seen_paths.lock().unwrap().clone();
        assert_eq!(paths, ["/redirect-same", "/json", "/redirect-other"]);
    }

    #[test]
    fn gather_is_send() {
        fn is_send<T: Send>(_: &T) {}
        let mut input = Input::new(&config("s", "http://127.0.0.1:9/")).unwrap();
        let mut acc = test_accumulator();
        let fut = input.gather(&mut acc);
        is_send(&fut);
    }

    #[test]
    fn paths() {
        use Step::*;
        let k = |s: &str| Key(s.to_owned());
        assert_eq!(parse_path("a").unwrap(), [k("a")]);
        assert_eq!(
            parse_path("a.b[0].c").unwrap(),
            [k("a"), k("b"), Index(0), k("c")]
        );
        assert_eq!(
            parse_path("[2][0].x").unwrap(),
            [Index(2), Index(0), k("x")]
        );
        assert_eq!(parse_path("a b.c-d").unwrap(), [k("a b"), k("c-d")]);
        for (bad, why) in [
            ("", "empty"),
            ("a..b", "empty key"),
            (".a", "empty key"),
            ("a.", "empty key"),
            ("a[x]", "not a number"),
            ("a[1", "unclosed"),
            ("a[1]b", "expected `[` or `.`"),
            ("a]", "unexpected `]`"),
            ("a.[0]", "empty key"),
        ] {
            let e = parse_path(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let v: Value = serde_json::from_str(r#"{"a":{"b":[{"c":1}]}}"#).unwrap();
        assert_eq!(
            lookup(&v, &parse_path("a.b[0].c").unwrap()),
            Some(&Value::from(1))
        );
        assert_eq!(lookup(&v, &parse_path("a.b[1].c").unwrap()), None);
        assert_eq!(lookup(&v, &parse_path("a[0]").unwrap()), None);
    }

    #[test]
    fn flatten_caps_the_field_count() {
        let v = Value::Array((0..=MAX_JSON_FIELDS).map(Value::from).collect());
        assert!(flatten(&v, &mut String::new(), &mut Vec::new()).is_err());
        let mut out = Vec::new();
        flatten(&Value::from(2.5), &mut String::new(), &mut out).unwrap();
        assert_eq!(out, [("value".to_owned(), 2.5)]);
    }

    #[test]
    fn format_detection() {
        use Format::*;
        for (ct, body, want) in [
            (Some("application/json; charset=utf-8"), "x", Json),
            (Some("application/problem+json"), "x", Json),
            (Some("text/plain; version=0.0.4"), "{", Prometheus),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                "{",
                Prometheus,
            ),
            (Some("text/plain"), "\n {\"a\":1}", Json),
            (None, "\u{feff}[1]", Json),
            (None, "up 1", Prometheus),
            (None, "", Prometheus),
        ] {
            assert_eq!(
                detect_format(Auto, ct, body.as_bytes()),
                want,
                "{ct:?} {body:?}"
            );
        }
        assert_eq!(
            detect_format(Json, Some("text/plain; version=0.0.4"), b"up 1"),
            Json
        );
    }

    #[test]
    fn validation_names_the_key_and_hides_secrets() {
        let mut c = config("", "ftp://x/");
        c.timeout = HumanDuration::from_secs(0);
        c.headers = BTreeMap::from([
            ("Bad Name".to_owned(), SecretString::from("v")),
            ("X-Key".to_owned(), SecretString::from("sekr1t\nX")),
            ("Authorization".to_owned(), SecretString::from("x")),
        ]);
        c.username = Some("a:b".to_owned());
        c.bearer_token = Some(SecretString::from("t0kQ\u{1}"));
        c.format = Format::Prometheus;
        c.fields = BTreeMap::from([
            ("time".to_owned(), "a".to_owned()),
            ("f".to_owned(), "a..b".to_owned()),
        ]);
        c.tags = BTreeMap::from([
            ("server".to_owned(), "x".to_owned()),
            ("t".to_owned(), "bad\\".to_owned()),
        ]);
        let mut errors = ConfigErrors::new("test");
        c.validate("collector.inputs.http[0]", &mut errors);
        let keys: Vec<_> = errors
            .issues
            .iter()
            .map(|i| i.key.trim_start_matches("collector.inputs.http[0]"))
            .collect();
        assert_eq!(
            keys,
            [
                ".name",
                ".url",
                ".timeout",
                ".headers.Authorization",
                ".headers.Bad Name",
                ".headers.X-Key",
                ".bearer_token",
                ".username",
                ".bearer_token",
                ".fields",
                ".fields.f",
                ".fields.time",
                ".tags.server",
                ".tags.t",
            ]
        );
        let all = errors.to_string();
        assert!(!all.contains("sekr1t") && !all.contains("t0kQ"), "{all}");

        let mut errors = ConfigErrors::new("test");
        config("ok", "http://u:p@host/").validate("k", &mut errors);
        config("ok", "not a url").validate("k", &mut errors);
        config("http_response", "http://h/").validate("k", &mut errors);
        let mut c = config("ok", "http://h/");
        c.password = Some(SecretString::from("p"));
        c.validate("k", &mut errors);
        let msgs: Vec<_> = errors.issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "k.url: must not carry credentials (they would end up in the `server` tag); use `username` and `password`",
                "k.url: invalid URL: relative URL without a base",
                "k.name: `http_response` is this input's own measurement; pick another name",
                "k.password: needs `username`",
            ]
        );
        assert!(Input::new(&config("", "http://h/"))
            .unwrap_err()
            .to_string()
            .contains("name: must not be empty"));
    }

    #[test]
    fn config_defaults() {
        let c: Config = serde_json::from_str(r#"{"name": "n", "url": "http://h/"}"#).unwrap();
        assert_eq!(c.timeout, HumanDuration::from_secs(5));
        assert_eq!(c.format, Format::Auto);
        let c: Config = serde_json::from_str(
            r#"{"name": "n", "url": "http://h/", "format": "prometheus", "password": "p"}"#,
        )
        .unwrap();
        assert_eq!(c.format, Format::Prometheus);
        assert!(
            serde_json::from_str::<Config>(r#"{"name": "n", "url": "u", "format": "xml"}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Config>(r#"{"name": "n", "url": "u", "extra": 1}"#).is_err()
        );
    }
}
