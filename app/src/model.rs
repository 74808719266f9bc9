//! Data transfer objects shared by the server, the CLI and the browser.

use serde::{Deserialize, Serialize};

/// Where a run is in its life. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    WaitingForHuman,
    Succeeded,
    Failed,
    Canceled,
}

impl RunStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::WaitingForHuman,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
    ];

    /// The name used in the database, the API and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::WaitingForHuman => "waiting_for_human",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
        }
    }

    /// Parses the stored name back; `None` for anything else.
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True once the run can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run as listed on the Runs page and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    /// Caller-chosen idempotency key: the same key always maps to this run.
    pub request_id: Option<String>,
    pub goal: String,
    pub project: Option<String>,
    pub status: RunStatus,
    /// RFC 3339, UTC, millisecond precision.
    pub created_at: String,
    /// The same instant as milliseconds since the Unix epoch, so the browser can show an age
    /// without parsing dates.
    pub created_ms: i64,
}

/// Body of `POST /supervisor/start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRunRequest {
    pub goal: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Reply of `POST /supervisor/start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartRunResponse {
    pub run_id: String,
    /// False when `request_id` matched an existing run and nothing new was created.
    pub created: bool,
}
