//! Anomaly reports: per host, the period's availability, CPU and memory, disk growth
//! and days-to-full, and every anomaly the rules found, with charts.
//!
//! - [`data`]: [`data::gather`] reads the figures through the typed query layer.
//! - [`chart`]: line charts drawn to PNG in plain Rust (no fonts, no browser).
//! - [`html`]: [`html::render`] makes the e-mail: subject, text, HTML with `cid:`
//!   images, in English or Simplified Chinese.
//! - [`schedule`]: `[[analyzer.reports]]` and when each report is due.
//! - [`store`]: the last reports on disk, for the web's list.
//!
//! Sending is the notifier's job; this module only produces the content.

pub mod chart;
pub mod data;
pub mod html;
pub mod schedule;
pub mod store;
pub mod time;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use data::{gather, GatherError, ReportData};
pub use html::{render, RenderOptions, ReportContent};
pub use schedule::{ReportConfig, ReportSettings, Schedule};
pub use store::{ReportMeta, ReportStore, StoreError};
pub use time::UtcOffset;

/// The languages a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "en" => Ok(Language::En),
            "zh-CN" => Ok(Language::ZhCn),
            _ => Err(format!(
                "{s:?} is not a language; write \"en\" or \"zh-CN\""
            )),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::En => "en",
            Language::ZhCn => "zh-CN",
        })
    }
}
