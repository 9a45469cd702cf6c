//! What the engine hands to the notifiers: alert events grouped into notifications.
//! (The shape the notification subsystem renders and delivers.)

use std::collections::BTreeMap;

use hostscope_core::detect::Severity;
use serde::{Deserialize, Serialize};

/// Which transition an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Firing,
    Resolved,
    Reminder,
}

/// One alert's transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable alert id (rule + series).
    pub id: String,
    pub rule: String,
    pub host: Option<String>,
    /// Rule labels and series tags.
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    pub kind: EventKind,
    pub value: Option<f64>,
    /// The band that was crossed; either side may be open.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub score: Option<f64>,
    /// The detector's one-line reason.
    pub reason: String,
    /// When this transition happened (unix ms).
    pub at_ms: i64,
    /// When the alert started (its breach began).
    pub since_ms: i64,
    pub flapping: bool,
}

/// One message: a group of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// e.g. `host=web-1` or `rule=cpu-ewma`.
    pub group: String,
    pub events: Vec<AlertEvent>,
}
