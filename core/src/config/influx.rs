//! `[influx]`: where and how to reach InfluxDB. Shared by every program.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use super::{is_blank, ConfigErrors, HumanDuration};

/// Which InfluxDB API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionSetting {
    /// Ask `GET /ping` (header `X-Influxdb-Version`) on first use.
    #[default]
    Auto,
    /// 1.x: `/write` and `/query` (InfluxQL), database + user/password.
    V1,
    /// 2.x: `/api/v2/write` and `/api/v2/query` (Flux), org + bucket + token.
    V2,
    /// 3.x: `/api/v2/write` and `/query` (InfluxQL), bucket (database) + token.
    V3,
}

impl VersionSetting {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().trim_start_matches(['v', 'V']) {
            "auto" | "" => Some(VersionSetting::Auto),
            "1" => Some(VersionSetting::V1),
            "2" => Some(VersionSetting::V2),
            "3" => Some(VersionSetting::V3),
            _ => None,
        }
    }
}

impl fmt::Display for VersionSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VersionSetting::Auto => "auto",
            VersionSetting::V1 => "1",
            VersionSetting::V2 => "2",
            VersionSetting::V3 => "3",
        })
    }
}

impl<'de> Deserialize<'de> for VersionSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            Raw::Str(s) => s,
        };
        VersionSetting::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid version {text:?}; expected \"auto\", 1, 2 or 3"
            ))
        })
    }
}

/// The `[influx]` section as written. Every key is optional; [`InfluxConfig::validate`]
/// applies the defaults and checks the combination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InfluxConfig {
    /// Base URL of the InfluxDB server. Default `http://127.0.0.1:8086`.
    pub url: Option<String>,
    /// `auto` (ask the server), `1`, `2` or `3`. Default `auto`.
    pub version: VersionSetting,
    /// 2.x: the organization. Required for 2.x.
    pub org: Option<String>,
    /// 2.x/3.x: the bucket (3.x: the database). Default `hostscope`.
    pub bucket: Option<String>,
    /// 2.x/3.x: the API token. Never logged.
    pub token: Option<SecretString>,
    /// 1.x: the database; created on start when missing. Default `hostscope`.
    pub database: Option<String>,
    /// 1.x: the retention policy; empty means the database's default.
    pub retention_policy: Option<String>,
    /// 1.x: user name, when authentication is on.
    pub username: Option<String>,
    /// 1.x: password. Never logged.
    pub password: Option<SecretString>,
    /// Timeout of one HTTP request. Default `10s`.
    pub timeout: Option<HumanDuration>,
    /// Most points in one write request. Default 5000.
    pub batch_max_points: Option<usize>,
    /// Most bytes (uncompressed line protocol) in one write request. Default 1 MiB.
    pub batch_max_bytes: Option<usize>,
    /// Retries of a request that failed for a reason worth retrying (connection error,
    /// 5xx, 429). Default 4.
    pub max_retries: Option<u32>,
    /// First backoff between retries; doubled each time, with jitter, at most `30s`.
    /// Default `500ms`.
    pub retry_backoff: Option<HumanDuration>,
    /// Gzip request bodies. Default true.
    pub gzip: Option<bool>,
}

pub const DEFAULT_URL: &str = "http://127.0.0.1:8086";
pub const DEFAULT_BUCKET: &str = "hostscope";
pub const DEFAULT_DATABASE: &str = "hostscope";

/// Validated `[influx]` settings.
#[derive(Debug, Clone)]
pub struct InfluxSettings {
    pub url: Url,
    pub version: VersionSetting,
    pub org: Option<String>,
    pub bucket: String,
    pub token: Option<SecretString>,
    pub database: String,
    pub retention_policy: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub timeout: Duration,
    pub batch_max_points: usize,
    pub batch_max_bytes: usize,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub gzip: bool,
}

impl InfluxConfig {
    /// Apply defaults and check the section; every problem is reported under `influx.*`.
    pub fn validate(&self) -> Result<InfluxSettings, ConfigErrors> {
        let mut errors = ConfigErrors::new("[influx]");
        let url_text = self.url.clone().unwrap_or_else(|| DEFAULT_URL.to_owned());
        let url = match Url::parse(&url_text) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                errors.push(
                    "influx.url",
                    format!("{url_text:?} must start with http:// or https://"),
                );
                None
            }
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                errors.push(
                    "influx.url",
                    "must not contain credentials; use influx.username/password or influx.token",
                );
                None
            }
            Ok(u) => Some(u),
            Err(e) => {
                errors.push("influx.url", format!("{url_text:?} is not a URL: {e}"));
                None
            }
        };
        let v2_keys = [
            ("influx.org", !is_blank(&self.org)),
            ("influx.bucket", !is_blank(&self.bucket)),
            ("influx.token", secret_set(&self.token)),
        ];
        let v1_keys = [
            ("influx.database", !is_blank(&self.database)),
            ("influx.retention_policy", !is_blank(&self.retention_policy)),
            ("influx.username", !is_blank(&self.username)),
            ("influx.password", secret_set(&self.password)),
        ];
        let wrong: &[(&str, bool)] = match self.version {
            VersionSetting::V1 => &v2_keys,
            VersionSetting::V2 | VersionSetting::V3 => &v1_keys,
            VersionSetting::Auto => &[],
        };
        for (key, set) in wrong {
            if *set {
                errors.push(
                    *key,
                    format!(
                        "is not used by InfluxDB {}.x (influx.version = {}); remove it or change the version",
                        self.version, self.version
                    ),
                );
            }
        }
        if self.version == VersionSetting::V2 {
            if is_blank(&self.org) {
                errors.push("influx.org", "is required for InfluxDB 2.x");
            }
            if !secret_set(&self.token) {
                errors.push("influx.token", "is required for InfluxDB 2.x");
            }
        }
        if self.username.is_some() != self.password.is_some() && !is_blank(&self.username) {
            errors.push("influx.password", "is required when influx.username is set");
        }
        let batch_max_points = self.batch_max_points.unwrap_or(5000);
        if batch_max_points == 0 {
            errors.push("influx.batch_max_points", "must be at least 1");
        }
        let batch_max_bytes = self.batch_max_bytes.unwrap_or(1 << 20);
        if batch_max_bytes < 1024 {
            errors.push("influx.batch_max_bytes", "must be at least 1024");
        }
        let timeout = self.timeout.unwrap_or(HumanDuration::from_secs(10)).get();
        if timeout.is_zero() {
            errors.push("influx.timeout", "must be more than 0s");
        }
        let Some(url) = url else {
            return Err(errors);
        };
        errors.into_result(InfluxSettings {
            url,
            version: self.version,
            org: non_blank(&self.org),
            bucket: non_blank(&self.bucket).unwrap_or_else(|| DEFAULT_BUCKET.to_owned()),
            token: self.token.clone().filter(|t| secret_set(&Some(t.clone()))),
            database: non_blank(&self.database).unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
            retention_policy: non_blank(&self.retention_policy),
            username: non_blank(&self.username),
            password: self.password.clone(),
            timeout,
            batch_max_points,
            batch_max_bytes,
            max_retries: self.max_retries.unwrap_or(4),
            retry_backoff: self
                .retry_backoff
                .unwrap_or(HumanDuration::from_millis(500))
                .get(),
            gzip: self.gzip.unwrap_or(true),
        })
    }
}

impl InfluxSettings {
    /// Settings for a server at `url` speaking `version`, everything else default.
    pub fn new(url: Url, version: VersionSetting) -> Self {
        InfluxSettings {
            url,
            version,
            org: None,
            bucket: DEFAULT_BUCKET.to_owned(),
            token: None,
            database: DEFAULT_DATABASE.to_owned(),
            retention_policy: None,
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
            batch_max_points: 5000,
            batch_max_bytes: 1 << 20,
            max_retries: 4,
            retry_backoff: Duration::from_millis(500),
            gzip: true,
        }
    }

    /// Checks that need the server's version, for `version = "auto"`.
    pub fn check_for(&self, version: VersionSetting) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new("[influx]");
        if version == VersionSetting::V2 {
            if self.org.is_none() {
                errors.push("influx.org", "is required: the server is InfluxDB 2.x");
            }
            if self.token.is_none() {
                errors.push("influx.token", "is required: the server is InfluxDB 2.x");
            }
        }
        errors.into_result(())
    }
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn secret_set(s: &Option<SecretString>) -> bool {
    use secrecy::ExposeSecret;
    s.as_ref()
        .is_some_and(|s| !s.expose_secret().trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Sources};
    use std::io::Write;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Root {
        influx: InfluxConfig,
    }

    fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<InfluxSettings, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        let sources = Sources {
            file: Some(f.path().to_owned()),
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        };
        let root: Root = load(&sources).map_err(|e| issues(&e))?;
        root.influx.validate().map_err(|e| issues(&e))
    }

    fn issues(e: &ConfigErrors) -> String {
        e.issues
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check(toml: &str, env: &[(&str, &str)], expected_err: &str) {
        match load_str(toml, env) {
            Ok(_) => assert_eq!("", expected_err, "config was accepted"),
            Err(e) => assert_eq!(e, expected_err),
        }
    }

    #[test]
    fn defaults() {
        let s = load_str("", &[]).unwrap();
        assert_eq!(s.url.as_str(), "http://127.0.0.1:8086/");
        assert_eq!(s.version, VersionSetting::Auto);
        assert_eq!(s.database, "hostscope");
        assert_eq!(s.bucket, "hostscope");
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert!(s.gzip);
    }

    #[test]
    fn the_documented_example_loads() {
        let s = load_str(
            r#"
[influx]
url = "http://127.0.0.1:8086"
version = "auto"
org = "ops"
bucket = "hostscope"
token = ""
database = "hostscope"
retention_policy = ""
username = ""
password = ""
timeout = "10s"
"#,
            &[],
        )
        .unwrap();
        assert_eq!(s.org.as_deref(), Some("ops"));
        assert!(s.token.is_none());
        assert!(s.retention_policy.is_none());
    }

    #[test]
    fn errors_name_their_keys() {
        check("[influx]\nurll = \"x\"\n", &[], "influx.urll: unknown key");
        check(
            "[influx]\nurll = \"x\"\ntimeot = \"1s\"\n[nonsense]\na = 1\n",
            &[],
            "influx.timeot: unknown key\ninflux.urll: unknown key\nnonsense: unknown key",
        );
        check(
            "[influx]\ntimeout = \"ten seconds\"\n",
            &[],
            "influx.timeout: invalid duration \"ten seconds\" (expected number at 0); write a number and a unit, like \"10s\", \"5m\" or \"1h\"",
        );
        check(
            "[influx]\nversion = 4\n",
            &[],
            "influx.version: invalid version \"4\"; expected \"auto\", 1, 2 or 3",
        );
        check(
            "[influx]\nbatch_max_points = \"many\"\n",
            &[],
            "influx.batch_max_points: invalid type: string \"many\", expected an integer",
        );
        check(
            "[influx]\nurl = \"ftp://x\"\n",
            &[],
            "influx.url: \"ftp://x\" must start with http:// or https://",
        );
        check(
            "[influx]\nurl = \"http://u:p@host:8086\"\n",
            &[],
            "influx.url: must not contain credentials; use influx.username/password or influx.token",
        );
    }

    #[test]
    fn other_programs_sections_are_not_this_programs_business() {
        // `[web]` belongs to another program: skipped whole, even its unknown keys.
        check("[web]\nlisten = \"x\"\nwhatever = 1\n", &[], "");
    }

    #[test]
    fn keys_of_the_other_version_are_refused() {
        check(
            "[influx]\nversion = 1\norg = \"ops\"\ntoken = \"t\"\n",
            &[],
            "influx.org: is not used by InfluxDB 1.x (influx.version = 1); remove it or change the version\n\
             influx.token: is not used by InfluxDB 1.x (influx.version = 1); remove it or change the version",
        );
        check(
            "[influx]\nversion = \"2\"\norg = \"ops\"\ntoken = \"t\"\ndatabase = \"db\"\n",
            &[],
            "influx.database: is not used by InfluxDB 2.x (influx.version = 2); remove it or change the version",
        );
        check(
            "[influx]\nversion = 2\n",
            &[],
            "influx.org: is required for InfluxDB 2.x\ninflux.token: is required for InfluxDB 2.x",
        );
        // Empty strings, as in the documented template, count as unset.
        check("[influx]\nversion = 1\norg = \"\"\ntoken = \"\"\n", &[], "");
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = load_str(
            "[influx]\nurl = \"http://a:1\"\nversion = 2\norg = \"o\"\ntoken = \"t\"\n",
            &[
                ("HOSTSCOPE_INFLUX__URL", "http://b:2"),
                ("HOSTSCOPE_INFLUX__TIMEOUT", "3s"),
                ("HOSTSCOPE_INFLUX__VERSION", "2"),
                ("HOSTSCOPE_ADMIN_PASSWORD", "not a config key"),
            ],
        )
        .unwrap();
        assert_eq!(s.url.as_str(), "http://b:2/");
        assert_eq!(s.timeout, Duration::from_secs(3));
        check(
            "",
            &[("HOSTSCOPE_INFLUX__URLL", "x")],
            "influx.urll: unknown key",
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = load_str(
            "[influx]\nversion = 2\norg = \"o\"\ntoken = \"s3cr3t-token\"\n",
            &[],
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_named_file_must_exist() {
        let sources = Sources::file("/nonexistent/hostscope.toml");
        let e = load::<Root>(&sources).unwrap_err();
        assert_eq!(
            issues(&e),
            "cannot read /nonexistent/hostscope.toml: no such file"
        );
    }
}
