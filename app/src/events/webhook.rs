//! What the records of webhook deliveries share beyond their variants: why events were dropped.

use serde::{Deserialize, Serialize};

/// Why events meant for a webhook were never attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDrop {
    /// Its queue was full: the oldest waiting events made room for new ones.
    QueueFull,
    /// The process fell further behind the log than its live stream holds.
    Lagged,
    /// The process stopped before they were attempted.
    Shutdown,
}

impl WebhookDrop {
    /// `queue_full`, `lagged` or `shutdown`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDrop::QueueFull => "queue_full",
            WebhookDrop::Lagged => "lagged",
            WebhookDrop::Shutdown => "shutdown",
        }
    }
}
