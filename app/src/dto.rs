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
    /// The stage running or waiting now.
    #[serde(default)]
    pub current_stage: Option<String>,
    /// Every model call attributed to the run so far, in USD.
    #[serde(default)]
    pub cost_usd: f64,
}

/// `id` reduced to the characters run ids are made of (UUIDs: letters, digits and `-`), so
/// a run id taken from an address is safe to put in a link or a query string.
pub fn safe_run_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
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
    /// Pipeline name (`default` when omitted; `full` runs all 17 teams).
    #[serde(default)]
    pub pipeline: Option<String>,
}

/// Reply of `POST /supervisor/start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartRunResponse {
    pub run_id: String,
    /// False when `request_id` matched an existing run and nothing new was created.
    pub created: bool,
}

/// Where a stage of a run's plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Complete,
    NeedsClarification,
    Blocked,
    Skipped,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Complete => "complete",
            StepState::NeedsClarification => "needs_clarification",
            StepState::Blocked => "blocked",
            StepState::Skipped => "skipped",
        }
    }
}

impl From<crate::task::TaskStatus> for StepState {
    /// Where a stage stands after its team answered.
    fn from(status: crate::task::TaskStatus) -> StepState {
        match status {
            crate::task::TaskStatus::Complete => StepState::Complete,
            crate::task::TaskStatus::NeedsClarification => StepState::NeedsClarification,
            crate::task::TaskStatus::Blocked => StepState::Blocked,
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage of a run: planned (`pending`) or executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    pub name: String,
    pub team: String,
    pub status: StepState,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub cost_usd: f64,
}

/// An artifact a stage delivered, stored under the data directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub stage: String,
    pub team: String,
    pub name: String,
    /// Relative to the data directory.
    pub path: String,
    pub bytes: u64,
}

/// `GET /supervisor/status/{id}`: a run with its plan, progress, artifacts and cost so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub pipeline: Option<String>,
    pub current_stage: Option<String>,
    /// Why the run ended, when it has.
    pub reason: Option<String>,
    pub steps: Vec<StepStatus>,
    pub artifacts: Vec<ArtifactRef>,
    /// From the cost ledger: every model call attributed to the run.
    pub cost_usd: f64,
    /// Work orders planned for the run, and what was delivered for each.
    #[serde(default)]
    pub work_orders: Vec<WorkOrderStatus>,
}

/// Where a work order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderState {
    /// In the plan, not delivered yet.
    Planned,
    /// Committed on its branch after its gates passed.
    Delivered,
}

impl WorkOrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkOrderState::Planned => "planned",
            WorkOrderState::Delivered => "delivered",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(s: &str) -> Option<WorkOrderState> {
        match s {
            "planned" => Some(WorkOrderState::Planned),
            "delivered" => Some(WorkOrderState::Delivered),
            _ => None,
        }
    }
}

impl std::fmt::Display for WorkOrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A work order of a run: planned, then delivered on its branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrderStatus {
    pub id: String,
    pub title: String,
    pub status: WorkOrderState,
    pub spec: Option<crate::task::WorkOrderSpec>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub files: Vec<String>,
    pub gates: Vec<GateSummary>,
    pub model: Option<String>,
    pub cost_usd: f64,
    pub pushed: bool,
    pub pull_request: Option<String>,
}

/// A registered project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    /// Absolute, canonical path of the repository.
    pub path: String,
    pub remote: Option<String>,
    /// `owner/repo` for pull requests.
    pub github: Option<String>,
    /// Gates given at registration (the repository's `.factory/project.toml` adds its own).
    pub gates: Vec<String>,
    pub require_clean: bool,
    pub active: bool,
    pub created_at: String,
    /// What the operator allowed when registering it; never read from the repository.
    #[serde(default)]
    pub policy: ProjectPolicy,
}

/// Which sandbox runs a project's gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxKind {
    Docker,
    Bubblewrap,
    /// No isolation: only when the operator opts in explicitly; labelled unsafe everywhere.
    Process,
}

/// When a delivered work order's branch is pushed and its pull request opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishPolicy {
    /// Only once a person approved the run's final review (or the run had no review).
    #[default]
    AfterReview,
    /// As soon as the work order's gates pass (before anyone reviewed it).
    OnDelivery,
}

impl PublishPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishPolicy::AfterReview => "after_review",
            PublishPolicy::OnDelivery => "on_delivery",
        }
    }
}

/// The operator's decisions about a project (`factory project add` flags or the API), kept
/// with its registration: a repository's own files cannot widen them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectPolicy {
    /// The sandbox for the gates; `None`: docker when the repository names an image and an
    /// engine answers, else bubblewrap.
    pub sandbox: Option<SandboxKind>,
    /// Must be true for `sandbox = process` (no isolation at all).
    pub allow_unsafe_process: bool,
    /// Host directories mounted read-only in the gate's sandbox (toolchains).
    pub toolchain_mounts: Vec<String>,
    /// Model edits may change CI and Factory's own files (`.factory/**`, `.git*`,
    /// `.github/**`, `.gitlab-ci.yml`, …).
    pub allow_ci_edits: bool,
    /// Commit a work order's change even when no gate is configured or detected (recorded as
    /// unverified on the commit and the pull request); otherwise a person is asked first.
    pub allow_unverified: bool,
    /// When branches are pushed and pull requests opened.
    pub publish: PublishPolicy,
}

/// A gate's outcome as recorded on a work order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateSummary {
    pub command: String,
    /// `bubblewrap`, `docker` or `process (unsafe: no isolation)`.
    pub sandbox: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The resource limits in force and how each was applied (cgroup, prlimit, docker).
    #[serde(default)]
    pub limits: String,
}
