//! The one InfluxDB client: a thin layer over `reqwest` for 1.x, 2.x and 3.x.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use super::error::{describe, InfluxError};
use super::query::{
    FieldKey, FieldKeysQuery, LastQuery, QueryError, Row, RowsQuery, Series, SeriesQuery,
    TagValuesQuery,
};
use super::{flux, influxql};
use crate::config::{InfluxSettings, VersionSetting};
use crate::lineproto::{self, Precision};
use crate::point::Point;

/// The API generation the server speaks, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerVersion {
    V1,
    V2,
    V3,
}

impl ServerVersion {
    /// From the `X-Influxdb-Version` header: `1.6.7~rc0`, `v2.7.4`, `3.0.1`.
    pub fn from_header(v: &str) -> Option<Self> {
        let v = v.trim().trim_start_matches(['v', 'V']);
        match v.split(['.', '-', '~', ' ']).next()? {
            "1" => Some(ServerVersion::V1),
            "2" => Some(ServerVersion::V2),
            "3" => Some(ServerVersion::V3),
            _ => None,
        }
    }

    fn setting(self) -> VersionSetting {
        match self {
            ServerVersion::V1 => VersionSetting::V1,
            ServerVersion::V2 => VersionSetting::V2,
            ServerVersion::V3 => VersionSetting::V3,
        }
    }
}

/// One line the server refused, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    /// Index of the line in what was handed to the write call.
    pub index: usize,
    pub line: String,
    pub reason: String,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Lines the server accepted.
    pub written: usize,
    /// Lines the server refused; they will never be accepted as they are.
    pub rejected: Vec<RejectedLine>,
    /// HTTP requests made, retries and bisections included.
    pub requests: usize,
}

/// A write that stopped early: every line before `first_unwritten` was written or
/// rejected (see `report`); the rest were not sent successfully and may be retried.
#[derive(Debug, thiserror::Error)]
#[error("write stopped at line {first_unwritten}: {error}")]
pub struct WriteFailure {
    pub error: InfluxError,
    pub first_unwritten: usize,
    pub report: WriteReport,
}

/// What a server answered.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

/// The InfluxDB client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: InfluxSettings,
    /// The base URL with a trailing slash, so `join` keeps any path prefix.
    base: Url,
    version: OnceCell<ServerVersion>,
}

impl Client {
    /// A client for these settings. Does no I/O: the version is asked on first use.
    pub fn new(settings: InfluxSettings) -> Result<Self, InfluxError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("hostscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InfluxError::Request {
                method: "INIT",
                url: settings.url.to_string(),
                reason: describe(&e),
            })?;
        let mut base = settings.url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let version = OnceCell::new();
        let fixed = match settings.version {
            VersionSetting::V1 => Some(ServerVersion::V1),
            VersionSetting::V2 => Some(ServerVersion::V2),
            VersionSetting::V3 => Some(ServerVersion::V3),
            VersionSetting::Auto => None,
        };
        if let Some(v) = fixed {
            let _ = version.set(v);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                settings,
                base,
                version,
            }),
        })
    }

    pub fn settings(&self) -> &InfluxSettings {
        &self.inner.settings
    }

    fn url(&self, path: &str) -> Result<Url, InfluxError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| InfluxError::Request {
                method: "URL",
                url: format!("{}{}", self.inner.base, path),
                reason: e.to_string(),
            })
    }

    /// The server's API version: configured, or asked once with `GET /ping`.
    pub async fn version(&self) -> Result<ServerVersion, InfluxError> {
        let v = *self
            .inner
            .version
            .get_or_try_init(|| async { self.ping().await })
            .await?;
        self.inner
            .settings
            .check_for(v.setting())
            .map_err(InfluxError::Config)?;
        Ok(v)
    }

    /// `GET /ping`: whether the server answers, and which version it says it is.
    pub async fn ping(&self) -> Result<ServerVersion, InfluxError> {
        let url = self.url("ping")?;
        let resp = self
            .authorize(self.inner.http.get(url.clone()), None)
            .send()
            .await
            .map_err(|e| InfluxError::Request {
                method: "GET",
                url: url.to_string(),
                reason: describe(&e),
            })?;
        let status = resp.status();
        let header = resp
            .headers()
            .get("x-influxdb-version")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(InfluxError::Api {
                method: "GET",
                url: url.to_string(),
                status: status.as_u16(),
                message: influxql::parse_error_body(status.as_u16(), &body),
            });
        }
        // 3.x also answers with a JSON body `{"version": "3.x.y", ..}`.
        let from_body = || {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
        };
        let text = header
            .or_else(from_body)
            .ok_or_else(|| InfluxError::Version {
                url: url.to_string(),
                reason: "the /ping answer has no X-Influxdb-Version header".into(),
            })?;
        ServerVersion::from_header(&text).ok_or_else(|| InfluxError::Version {
            url: url.to_string(),
            reason: format!("unknown version {text:?}; set influx.version"),
        })
    }

    fn authorize(&self, req: RequestBuilder, version: Option<ServerVersion>) -> RequestBuilder {
        let s = &self.inner.settings;
        match version {
            Some(ServerVersion::V1) => match (&s.username, &s.password) {
                (Some(u), Some(p)) => req.basic_auth(u, Some(p.expose_secret())),
                (Some(u), None) => req.basic_auth(u, None::<&str>),
                _ => req,
            },
            _ => match &s.token {
                Some(t) => req.header(AUTHORIZATION, format!("Token {}", t.expose_secret())),
                None => req,
            },
        }
    }

    /// Send a request, retrying connection errors, 5xx and 429 with exponential
    /// backoff and jitter (honouring `Retry-After`). Any answer that is not retried is
    /// returned for the caller to interpret.
    async fn execute(
        &self,
        method: &'static str,
        url: &Url,
        version: ServerVersion,
        make: impl Fn() -> RequestBuilder,
        requests: &mut usize,
    ) -> Result<Reply, InfluxError> {
        let max_retries = self.inner.settings.max_retries;
        let mut attempt = 0u32;
        loop {
            *requests += 1;
            let outcome = match self.authorize(make(), Some(version)).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    match resp.bytes().await {
                        Ok(body) => Ok((status, retry_after, body.to_vec())),
                        Err(e) => Err(describe(&e)),
                    }
                }
                Err(e) => Err(describe(&e)),
            };
            let (retry, wait_hint, failure) = match outcome {
                Ok((status, hint, body)) => {
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        let message = influxql::parse_error_body(status.as_u16(), &body);
                        (
                            true,
                            hint,
                            InfluxError::Api {
                                method,
                                url: url.to_string(),
                                status: status.as_u16(),
                                message,
                            },
                        )
                    } else {
                        return Ok(Reply { status, body });
                    }
                }
                Err(reason) => (
                    true,
                    None,
                    InfluxError::Request {
                        method,
                        url: url.to_string(),
                        reason,
                    },
                ),
            };
            if !retry || attempt >= max_retries {
                return Err(failure);
            }
            let wait = wait_hint.unwrap_or_else(|| self.backoff(attempt));
            warn!(message = "InfluxDB request failed; retrying", error = %failure, attempt = attempt + 1, wait_ms = wait.as_millis() as u64);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `retry_backoff · 2^attempt`, at most 30 s, with "equal jitter": half fixed,
    /// half random, so a fleet of collectors does not retry in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.settings.retry_backoff;
        let full = base
            .saturating_mul(1u32 << attempt.min(16))
            .min(Duration::from_secs(30));
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// 1.x: create the configured database when it is missing.
    pub async fn ensure_database(&self) -> Result<(), InfluxError> {
        if self.version().await? != ServerVersion::V1 {
            return Ok(());
        }
        let name = self.inner.settings.database.clone();
        let body = self.influxql_raw("SHOW DATABASES", None).await?;
        if influxql::database_exists(&body, &name)? {
            return Ok(());
        }
        match self.influxql_raw(&influxql::create_database(&name), None).await {
            Ok(body) => {
                // A statement error comes back inside a 200.
                influxql::parse_series(&body).map_err(|e| InfluxError::Database {
                    database: name.clone(),
                    message: e.to_string(),
                })?;
                debug!(message = "created database", database = %name);
                Ok(())
            }
            Err(InfluxError::Api { status, message, .. }) => Err(InfluxError::Database {
                database: name,
                message: format!(
                    "InfluxDB answered {status}: {message}; create it as an admin (CREATE DATABASE) or give this user the right"
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// POST an InfluxQL statement to `/query` (1.x, 3.x) and return the raw body.
    async fn influxql_raw(&self, q: &str, db: Option<&str>) -> Result<Vec<u8>, InfluxError> {
        let version = self.version().await?;
        let url = self.url("query")?;
        let mut form: Vec<(&str, &str)> = vec![("q", q), ("epoch", "ms")];
        if let Some(db) = db {
            form.push(("db", db));
        }
        let mut requests = 0;
        let reply = self
            .execute(
                "POST",
                &url,
                version,
                || self.inner.http.post(url.clone()).form(&form),
                &mut requests,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(InfluxError::Api {
                method: "POST",
                url: url.to_string(),
                status: reply.status.as_u16(),
                message: influxql::parse_error_body(reply.status.as_u16(), &reply.body),
            });
        }
        Ok(reply.body)
    }

    /// POST a Flux query to `/api/v2/query` (2.x) and return the annotated CSV.
    async fn flux_raw(&self, q: &str) -> Result<String, InfluxError> {
        let version = self.version().await?;
        let mut url = self.url("api/v2/query")?;
        if let Some(org) = &self.inner.settings.org {
            url.query_pairs_mut().append_pair("org", org);
        }
        let body = serde_json::json!({
            "query": q,
            "type": "flux",
            "dialect": {
                "header": true,
                "delimiter": ",",
                "annotations": ["datatype", "group", "default"],
                "dateTimeFormat": "RFC3339",
            },
        })
        .to_string();
        let mut requests = 0;
        let reply = self
            .execute(
                "POST",
                &url,
                version,
                || {
                    self.inner
                        .http
                        .post(url.clone())
                        .header(CONTENT_TYPE, "application/json")
                        .header("Accept", "application/csv")
                        .body(body.clone())
                },
                &mut requests,
            )
            .await?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        if !reply.status.is_success() {
            return Err(InfluxError::Api {
                method: "POST",
                url: url.to_string(),
                status: reply.status.as_u16(),
                message: flux::parse_error_body(reply.status.as_u16(), &text),
            });
        }
        Ok(text)
    }

    /// The database an InfluxQL query runs against: 1.x `database`, 3.x `bucket`.
    fn influxql_db(&self, version: ServerVersion) -> &str {
        match version {
            ServerVersion::V1 => &self.inner.settings.database,
            _ => &self.inner.settings.bucket,
        }
    }

    fn rp(&self, version: ServerVersion) -> Option<&str> {
        match version {
            ServerVersion::V1 => self.inner.settings.retention_policy.as_deref(),
            _ => None,
        }
    }

    /// Validate, render for the server's dialect, send, parse: what every typed
    /// query does. `flux` gets the bucket, `influxql` the retention policy.
    async fn dispatch<T>(
        &self,
        flux_text: impl FnOnce(&str) -> Result<String, QueryError>,
        flux_parse: impl FnOnce(&str) -> Result<T, QueryError>,
        influxql_text: impl FnOnce(Option<&str>) -> Result<String, QueryError>,
        influxql_parse: impl FnOnce(&[u8]) -> Result<T, QueryError>,
    ) -> Result<T, InfluxError> {
        match self.version().await? {
            ServerVersion::V2 => {
                let text = flux_text(&self.inner.settings.bucket)?;
                Ok(flux_parse(&self.flux_raw(&text).await?)?)
            }
            v => {
                let text = influxql_text(self.rp(v))?;
                let body = self.influxql_raw(&text, Some(self.influxql_db(v))).await?;
                Ok(influxql_parse(&body)?)
            }
        }
    }

    /// One numeric series (or one per group) over a range.
    pub async fn query_series(&self, q: &SeriesQuery) -> Result<Vec<Series>, InfluxError> {
        q.validate()?;
        self.dispatch(
            |b| flux::series(b, q),
            flux::parse_series,
            |rp| influxql::series(rp, q),
            influxql::parse_series,
        )
        .await
    }

    /// The distinct values of a tag in a range (e.g. every host that reported).
    pub async fn query_tag_values(&self, q: &TagValuesQuery) -> Result<Vec<String>, InfluxError> {
        q.validate()?;
        self.dispatch(
            |b| flux::tag_values(b, q),
            flux::parse_tag_values,
            |rp| influxql::tag_values(rp, q),
            influxql::parse_tag_values,
        )
        .await
    }

    /// The last value of a field for every series in a range.
    pub async fn query_last(&self, q: &LastQuery) -> Result<Vec<Series>, InfluxError> {
        q.validate()?;
        self.dispatch(
            |b| flux::last(b, q),
            flux::parse_series,
            |rp| influxql::last(rp, q),
            influxql::parse_series,
        )
        .await
    }

    /// Rows of several fields (numbers or text) per series: the last row of each, or
    /// every row. See [`RowsQuery`].
    pub async fn query_rows(&self, q: &RowsQuery) -> Result<Vec<Row>, InfluxError> {
        q.validate()?;
        self.dispatch(
            |b| flux::rows(b, q),
            |body| flux::parse_rows(body, &q.fields),
            |rp| influxql::rows(rp, q),
            |body| influxql::parse_rows(body, &q.fields),
        )
        .await
    }

    /// The fields, with their types, of one measurement or of every measurement
    /// (optionally of those with series matching tags). See [`FieldKeysQuery`] for
    /// what the range means in each dialect.
    pub async fn query_field_keys(&self, q: &FieldKeysQuery) -> Result<Vec<FieldKey>, InfluxError> {
        q.validate()?;
        self.dispatch(
            |b| flux::field_keys(b, q),
            flux::parse_field_keys,
            |rp| influxql::field_keys(rp, q),
            |body| influxql::parse_field_keys(body, q),
        )
        .await
    }

    /// Write points (nanosecond precision). See [`Client::write_lines`].
    pub async fn write_points(&self, points: &[Point]) -> Result<WriteReport, WriteFailure> {
        let mut buf = Vec::with_capacity(points.len() * 128);
        let mut ends = Vec::with_capacity(points.len());
        for p in points {
            lineproto::encode(p, Precision::Nanoseconds, &mut buf);
            ends.push(buf.len());
        }
        self.write_encoded(&buf, &ends, Precision::Nanoseconds)
            .await
    }

    /// Write line protocol as given, one point per line (blank lines are skipped).
    /// A string field holding a raw newline spans lines and would be split here: send
    /// such points through [`Client::write_points`].
    ///
    /// Lines go out in batches bounded by `batch_max_points` and `batch_max_bytes`.
    /// A batch the server refuses as a whole for its content (400, 413, 422) is split
    /// in halves until every good line is written and every bad line stands alone; a
    /// bad line is logged with the server's reason and reported, and costs no other
    /// line. (1.x writes the good lines of a batch itself and answers `partial write`;
    /// re-sending them is harmless, as a point with the same series and time replaces
    /// itself.)
    pub async fn write_lines(
        &self,
        text: &str,
        precision: Precision,
    ) -> Result<WriteReport, WriteFailure> {
        let mut buf = Vec::with_capacity(text.len() + 1);
        let mut ends = Vec::new();
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            ends.push(buf.len());
        }
        self.write_encoded(&buf, &ends, precision).await
    }

    /// `buf` holds lines ending in `\n`; `ends[i]` is the end offset of line `i`.
    async fn write_encoded(
        &self,
        buf: &[u8],
        ends: &[usize],
        precision: Precision,
    ) -> Result<WriteReport, WriteFailure> {
        let mut report = WriteReport::default();
        let version = match self.version().await {
            Ok(v) => v,
            Err(error) => {
                return Err(WriteFailure {
                    error,
                    first_unwritten: 0,
                    report,
                })
            }
        };
        let url = match self.write_url(version, precision) {
            Ok(u) => u,
            Err(error) => {
                return Err(WriteFailure {
                    error,
                    first_unwritten: 0,
                    report,
                })
            }
        };
        let start_of = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
        let s = &self.inner.settings;
        // Cut into batches: lines [a, b).
        let mut batches = Vec::new();
        let mut a = 0;
        while a < ends.len() {
            let mut b = a + 1;
            while b < ends.len()
                && b - a < s.batch_max_points
                && ends[b] - start_of(a) <= s.batch_max_bytes
            {
                b += 1;
            }
            batches.push((a, b));
            a = b;
        }
        // Depth-first, left to right, so everything before a failure is settled.
        batches.reverse();
        let mut stack = batches;
        while let Some((a, b)) = stack.pop() {
            let body = &buf[start_of(a)..ends[b - 1]];
            let reply = match self
                .send_write(&url, version, body, &mut report.requests)
                .await
            {
                Ok(r) => r,
                Err(error) => {
                    return Err(WriteFailure {
                        error,
                        first_unwritten: a,
                        report,
                    })
                }
            };
            if reply.status.is_success() {
                report.written += b - a;
                continue;
            }
            let status = reply.status.as_u16();
            let reason = match version {
                ServerVersion::V2 => {
                    flux::parse_error_body(status, &String::from_utf8_lossy(&reply.body))
                }
                _ => influxql::parse_error_body(status, &reply.body),
            };
            let content_refused = matches!(status, 400 | 413 | 422);
            if content_refused && b - a > 1 {
                let mid = a + (b - a) / 2;
                debug!(message = "write refused; splitting the batch", lines = b - a, status, %reason);
                stack.push((mid, b));
                stack.push((a, mid));
            } else if content_refused {
                let line =
                    String::from_utf8_lossy(&body[..body.len().saturating_sub(1)]).into_owned();
                warn!(message = "InfluxDB refused a line", line = %truncate(&line, 300), %reason);
                report.rejected.push(RejectedLine {
                    index: a,
                    line,
                    reason,
                });
            } else {
                let error = InfluxError::Api {
                    method: "POST",
                    url: url.to_string(),
                    status,
                    message: reason,
                };
                return Err(WriteFailure {
                    error,
                    first_unwritten: a,
                    report,
                });
            }
        }
        Ok(report)
    }

    fn write_url(&self, version: ServerVersion, precision: Precision) -> Result<Url, InfluxError> {
        let s = &self.inner.settings;
        let mut url;
        match version {
            ServerVersion::V1 => {
                url = self.url("write")?;
                let mut q = url.query_pairs_mut();
                q.append_pair("db", &s.database);
                if let Some(rp) = &s.retention_policy {
                    q.append_pair("rp", rp);
                }
                // 1.x spells microseconds `u` and silently reads `us` as nanoseconds.
                q.append_pair("precision", precision.as_v1_str());
            }
            ServerVersion::V2 | ServerVersion::V3 => {
                url = self.url("api/v2/write")?;
                let mut q = url.query_pairs_mut();
                if let Some(org) = &s.org {
                    q.append_pair("org", org);
                }
                q.append_pair("bucket", &s.bucket);
                q.append_pair("precision", precision.as_str());
            }
        }
        Ok(url)
    }

    async fn send_write(
        &self,
        url: &Url,
        version: ServerVersion,
        body: &[u8],
        requests: &mut usize,
    ) -> Result<Reply, InfluxError> {
        let gzip = self.inner.settings.gzip;
        let payload = if gzip {
            gzip_bytes(body)
        } else {
            body.to_vec()
        };
        self.execute(
            "POST",
            url,
            version,
            || {
                let req = self
                    .inner
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(payload.clone());
                if gzip {
                    req.header(CONTENT_ENCODING, "gzip")
                } else {
                    req
                }
            },
            requests,
        )
        .await
    }
}

fn gzip_bytes(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// `Retry-After` as seconds or an HTTP date; at most 5 minutes.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(d.min(Duration::from_secs(300)))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_headers() {
        for (h, want) in [
            ("1.6.7~rc0", Some(ServerVersion::V1)),
            ("v2.7.4", Some(ServerVersion::V2)),
            ("2.7.10", Some(ServerVersion::V2)),
            ("3.0.1", Some(ServerVersion::V3)),
            ("v3.1.0-nightly", Some(ServerVersion::V3)),
            ("OSS", None),
            ("", None),
        ] {
            assert_eq!(ServerVersion::from_header(h), want, "{h}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "100000".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(300)));
        let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
        h.insert(RETRY_AFTER, past.parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let mut s = InfluxSettings::new("http://127.0.0.1:1".parse().unwrap(), VersionSetting::V1);
        s.retry_backoff = Duration::from_millis(100);
        let c = Client::new(s).unwrap();
        for attempt in 0..8 {
            let full = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(30));
            let d = c.backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"cpu,host=a usage=1 1\n".repeat(100);
        let z = gzip_bytes(&body);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }

    /// A loopback responder answering each connection with the next canned reply
    /// (and `Connection: close`). A real `influxd` cannot be made to answer 429 or
    /// 503 on demand, so the retry policy is checked against this stand-in; every
    /// other client path is tested against a real server (tests/integration).
    async fn canned(replies: Vec<&'static str>) -> (String, tokio::task::JoinHandle<usize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut served = 0;
            for reply in replies {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                // Read the head and body (small in these tests) before answering.
                let _ = tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await;
                sock.write_all(reply.as_bytes()).await.unwrap();
                let _ = sock.shutdown().await;
                served += 1;
            }
            served
        });
        (url, task)
    }

    fn client_for(url: &str, max_retries: u32) -> Client {
        let mut s = InfluxSettings::new(url.parse().unwrap(), VersionSetting::V1);
        s.retry_backoff = Duration::from_millis(10);
        s.max_retries = max_retries;
        s.gzip = false;
        Client::new(s).unwrap()
    }

    const NO_CONTENT: &str = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn retries_5xx_and_429_honouring_retry_after() {
        let (url, server) = canned(vec![
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            NO_CONTENT,
        ])
        .await;
        let client = client_for(&url, 4);
        let started = std::time::Instant::now();
        let report = client
            .write_lines("m f=1 1\n", Precision::Nanoseconds)
            .await
            .unwrap();
        assert_eq!(report.written, 1);
        assert_eq!(report.requests, 3);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After: 1 was honoured"
        );
        assert_eq!(server.await.unwrap(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_and_says_where() {
        let reply = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"error\":\"boom!\"}";
        let (url, server) = canned(vec![reply, reply, reply]).await;
        let client = client_for(&url, 2);
        let failure = client
            .write_lines("m f=1 1\nm f=2 2\n", Precision::Nanoseconds)
            .await
            .unwrap_err();
        assert_eq!(failure.first_unwritten, 0);
        assert_eq!(failure.report.requests, 3);
        assert!(failure.error.is_transient());
        let text = failure.error.to_string();
        assert!(text.contains("500") && text.contains("boom!"), "{text}");
        assert_eq!(server.await.unwrap(), 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let reply = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"authorization failed\"}";
        let (url, server) = canned(vec![reply]).await;
        let client = client_for(&url, 5);
        let failure = client
            .write_lines("m f=1 1\n", Precision::Nanoseconds)
            .await
            .unwrap_err();
        assert_eq!(failure.report.requests, 1);
        assert!(!failure.error.is_transient());
        assert!(failure.error.to_string().contains("authorization failed"));
        assert_eq!(server.await.unwrap(), 1);
    }
}
