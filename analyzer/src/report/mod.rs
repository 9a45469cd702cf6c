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

use std::time::Duration;

use hostscope_core::influx::{Client, TimeRange};

pub use data::{gather, GatherError, ReportData};
pub use html::{render, RenderOptions, ReportContent};
pub use schedule::{missed, ReportConfig, ReportSettings, Schedule};
pub use store::{ReportMeta, ReportStore, StoreError};
pub use time::UtcOffset;

/// Making a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Gather(#[from] GatherError),
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
}

/// The period of `period` ending at `end_ms` rounded down to a whole minute (so the
/// windows of the queries line up with it); `None` for a period under a minute.
pub fn range_ending(end_ms: i64, period: Duration) -> Option<TimeRange> {
    let end = end_ms.div_euclid(60_000) * 60_000;
    let period = i64::try_from(period.as_millis()).ok()?;
    if period < 60_000 {
        return None;
    }
    TimeRange::new(end.checked_sub(period)?, end).ok()
}

/// Gathers and renders a report: what a scheduled report and `report --period` do
/// before sending (and storing) it.
pub async fn generate(
    client: &Client,
    range: TimeRange,
    hosts: Option<&[String]>,
    opts: &RenderOptions<'_>,
) -> Result<(ReportData, ReportContent), ReportError> {
    let data = gather(client, range, hosts).await?;
    let content = render(&data, opts)?;
    Ok((data, content))
}

/// The languages a report is written in: those of the notifications.
pub use crate::notify::config::Language;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_on_a_minute() {
        let r = range_ending(1_700_000_012_345, Duration::from_secs(3600)).unwrap();
        assert_eq!(
            (r.start_ms, r.end_ms),
            (1_699_996_380_000, 1_699_999_980_000)
        );
        assert_eq!(range_ending(120_000, Duration::from_secs(59)), None);
        assert_eq!("zh-CN".parse::<Language>(), Ok(Language::ZhCn));
        assert!("fr".parse::<Language>().is_err());
        assert_eq!(Language::ZhCn.to_string(), "zh-CN");
    }
}
