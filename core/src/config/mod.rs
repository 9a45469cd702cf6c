//! Layered configuration: built-in defaults, then one TOML file, then environment
//! variables `HOSTSCOPE_<SECTION>__<KEY>` (e.g. `HOSTSCOPE_INFLUX__URL`).
//!
//! One file can hold every program's sections; each program deserializes the sections
//! it needs into its own struct through [`load`]. Keys no program knows are errors, and
//! so is every key of a section this program reads that its struct does not know: all
//! of them are reported at once, each with its full dotted path.

mod duration;
pub mod influx;
pub mod introspect;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use duration::HumanDuration;
pub use influx::{InfluxConfig, InfluxSettings, VersionSetting};

/// Where the programs look for their file when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/hostscope/hostscope.toml";

/// Prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "HOSTSCOPE";

/// Every top-level section any hostscope program reads. A program ignores the
/// sections of the others, and refuses any section not in this list.
pub const KNOWN_SECTIONS: &[&str] = &["influx", "collector", "analyzer", "web", "smtp", "log"];

/// One problem in the configuration, with the dotted key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found, so a user fixes them all in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors {
    pub source: String,
    pub issues: Vec<ConfigIssue>,
}

impl ConfigErrors {
    pub fn new(source: impl Into<String>) -> Self {
        ConfigErrors {
            source: source.into(),
            issues: Vec::new(),
        }
    }

    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Keep the issues of a section's own validation; its value when it had none.
    pub fn absorb<T>(&mut self, result: Result<T, ConfigErrors>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.issues.extend(e.issues);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// `Ok(value)` when nothing was reported.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.issues.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "{} error{} in the configuration ({}):",
            n,
            if n == 1 { "" } else { "s" },
            self.source
        )?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The TOML file. `None` means [`DEFAULT_PATH`], which may be absent; a path given
    /// explicitly must exist.
    pub file: Option<PathBuf>,
    /// Environment variables to apply; `None` reads the process environment.
    pub env: Option<Vec<(String, String)>>,
}

impl Sources {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Sources {
            file: Some(path.into()),
            env: None,
        }
    }

    fn describe(&self) -> String {
        match &self.file {
            Some(p) => p.display().to_string(),
            None => format!("{DEFAULT_PATH} (default)"),
        }
    }
}

/// Load `T` from the layered sources. `T` lists the sections this program reads
/// (each `#[serde(default)]`); sections of other programs are skipped, anything else
/// unknown is reported with its full key.
pub fn load<T: DeserializeOwned>(sources: &Sources) -> Result<T, ConfigErrors> {
    match load_partial(sources) {
        (Some(value), errors) => errors.into_result(value),
        (None, errors) => Err(errors),
    }
}

/// Like [`load`], but also returns the value deserialized with every wrongly typed key
/// taken out (as if unset), so a caller can validate it and report those errors too.
pub fn load_partial<T: DeserializeOwned>(sources: &Sources) -> (Option<T>, ConfigErrors) {
    let mut errors = ConfigErrors::new(sources.describe());
    let mut builder = config::Config::builder();
    match &sources.file {
        Some(path) => {
            if !path.is_file() {
                errors.push("", format!("cannot read {}: no such file", path.display()));
                return (None, errors);
            }
            builder = builder
                .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        None => {
            builder = builder.add_source(
                config::File::from(Path::new(DEFAULT_PATH))
                    .format(config::FileFormat::Toml)
                    .required(false),
            );
        }
    }
    let env: Vec<(String, String)> = match &sources.env {
        Some(v) => v.clone(),
        None => std::env::vars().collect(),
    };
    // Only `HOSTSCOPE_<SECTION>__<KEY>` overrides keys; other HOSTSCOPE_* variables
    // (HOSTSCOPE_ADMIN_PASSWORD for the quickstart, say) are not config keys.
    let overrides: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| {
            k.strip_prefix(ENV_PREFIX)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(overrides)),
    );
    let merged = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            errors.push("", e.to_string());
            return (None, errors);
        }
    };
    let mut root: config::Value = match merged.try_deserialize() {
        Ok(v) => v,
        Err(e) => {
            errors.push("", e.to_string());
            return (None, errors);
        }
    };
    // serde stops at the first wrongly typed value. To report every error, take that
    // key out of the tree (as if unset) and deserialize again, collecting unknown
    // keys on each pass.
    let mut unknown = std::collections::BTreeSet::new();
    let mut type_errors: Vec<(String, String)> = Vec::new();
    let mut tried: Vec<String> = Vec::new();
    let value = loop {
        let mut on_unknown = |path: serde_ignored::Path<'_>| {
            unknown.insert(path.to_string());
        };
        let ignored = serde_ignored::Deserializer::new(root.clone(), &mut on_unknown);
        match serde_path_to_error::deserialize::<_, T>(ignored) {
            Ok(value) => break Some(value),
            Err(e) => {
                let path = e.path().to_string();
                let key = if path == "." { String::new() } else { path };
                // The same key failing again: taking things out makes no progress.
                if tried.contains(&key) {
                    break None;
                }
                tried.push(key.clone());
                // A table whose member was just taken out now misses it: the member's
                // own error already says what is wrong.
                let parent_of_earlier = !key.is_empty()
                    && type_errors
                        .iter()
                        .any(|(k, _)| k.starts_with(&format!("{key}.")));
                if !parent_of_earlier {
                    type_errors.push((
                        key.clone(),
                        clean_serde_message(&e.into_inner().to_string()),
                    ));
                }
                if key.is_empty() || tried.len() >= 64 || !remove_path(&mut root, &key) {
                    break None;
                }
            }
        }
    };
    // serde_ignored names a whole section this program does not read by the section's
    // name alone (`web`); a dotted path is a key inside a section it does read.
    for key in unknown {
        if key.contains('.') || !KNOWN_SECTIONS.contains(&key.as_str()) {
            errors.push(key, "unknown key");
        }
    }
    for (key, message) in type_errors {
        errors.push(key, message);
    }
    (value, errors)
}

/// Remove `a.b[0].c` from a configuration tree; false when it is not there.
fn remove_path(root: &mut config::Value, path: &str) -> bool {
    enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.find('[').map_or((part, ""), |i| part.split_at(i));
        if !name.is_empty() {
            segs.push(Seg::Key(name));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            match idx.trim_end_matches(']').parse() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => return false,
            }
        }
    }
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut node = root;
    for seg in parents {
        let next = match (seg, &mut node.kind) {
            (Seg::Key(k), config::ValueKind::Table(t)) => t.get_mut(*k),
            (Seg::Index(i), config::ValueKind::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, &mut node.kind) {
        (Seg::Key(k), config::ValueKind::Table(t)) => t.remove(*k).is_some(),
        // Keep indices stable for later errors: blank the element instead.
        (Seg::Index(i), config::ValueKind::Array(a)) => match a.get_mut(*i) {
            Some(v) => {
                *v = config::Value::from(config::ValueKind::Table(config::Map::new()));
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// `config`'s messages repeat the key and origin we already print; keep the reason.
fn clean_serde_message(msg: &str) -> String {
    let msg = msg.split(" for key `").next().unwrap_or(msg);
    msg.split(" in ").next().unwrap_or(msg).trim().to_owned()
}

/// The default for string keys whose default is "unset".
pub(crate) fn is_blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}
