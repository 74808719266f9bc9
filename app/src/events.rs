//! The event vocabulary: every fact Factory records, one variant each.
//!
//! Stored as `kind` (the variant's snake_case name) and `payload` (its fields as JSON) in the
//! append-only log; the same type travels to the dashboard over the WebSocket.

use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalKind, ApprovalOption, EscalationInfo};
use crate::dto::{Project, RunStatus};
use crate::ledger::{Attempt, Attribution, BudgetScope, BudgetTier, RoutingDecision};
use crate::task::{TaskResult, TaskStatus};

mod scope;
mod webhook;
pub use scope::{TokenScope, UnknownScope};
pub use webhook::WebhookDrop;

/// What happened. Adding a variant is backwards compatible; renaming one is not (the stored
/// `kind` strings are part of the log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum EventData {
    /// A requirement was accepted and a run created for it (status `queued`).
    RunCreated {
        run_id: String,
        request_id: Option<String>,
        goal: String,
        project: Option<String>,
        /// The pipeline asked for (`default` when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pipeline: Option<String>,
    },
    /// The engine took the run: its plan (the pipeline's stages, resolved), status `running`.
    RunStarted {
        run_id: String,
        pipeline: String,
        stages: Vec<PlannedStage>,
        /// The project's `HEAD` when the run started: every work order branches from it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_commit: Option<String>,
    },
    /// A work order's change passed its gates and was committed on its own branch.
    WorkOrderDelivered {
        run_id: String,
        work_order_id: String,
        title: String,
        branch: String,
        commit: String,
        files: Vec<String>,
        gates: Vec<crate::dto::GateSummary>,
        model: String,
        cost_usd: f64,
        /// The branch was pushed to the project's `origin`.
        #[serde(default)]
        pushed: bool,
        /// The pull request opened for it.
        #[serde(default)]
        pull_request: Option<String>,
        /// Why it was published at delivery already (the project's policy), when it was.
        #[serde(default)]
        published_by_policy: Option<String>,
        /// The work orders it is stacked on: its branch starts from their delivered change
        /// (and its pull request targets the branch of the one, when there is one).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stacked_on: Vec<String>,
        /// Set when no gate verified the change (none configured or detected): who allowed
        /// committing it anyway (the project's policy or a person).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unverified: Option<String>,
    },
    /// A delivered work order's branch was pushed (and its pull request opened) once the
    /// run's review approved it — or it could not be, with why.
    WorkOrderPublished {
        run_id: String,
        work_order_id: String,
        branch: String,
        commit: String,
        pushed: bool,
        pull_request: Option<String>,
        /// `after_review`: published because the final review was approved (or the run had
        /// none, by configuration).
        policy: String,
        /// Why publishing failed, when it did (the branch stays local).
        #[serde(default)]
        error: Option<String>,
    },
    /// A work order's branch reached the project's remote. Recorded the moment the push
    /// happened (a side effect of its own), so a restart knows what the remote holds.
    BranchPushed {
        run_id: String,
        work_order_id: String,
        branch: String,
        commit: String,
        /// The commit the remote branch held before, when a re-delivery replaced Factory's own
        /// earlier push (force-with-lease); absent when the branch was new.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
    },
    /// A work order's pull request was opened — or, when its branch already had one (a
    /// re-delivery, a resume after a crash), updated. Recorded the moment it happened.
    PullRequestOpened {
        run_id: String,
        work_order_id: String,
        branch: String,
        base: String,
        number: u64,
        url: String,
        updated: bool,
    },
    /// A project's dependencies were fetched before the sandbox (the prepare step: network,
    /// but no model-written code and no install scripts), or found already fetched for the
    /// same lock file.
    DependenciesPrepared {
        run_id: String,
        /// `cargo`, `npm` or `pip`.
        tool: String,
        command: String,
        /// The lock file's hash the result is cached under.
        key: String,
        cached: bool,
        exit_code: Option<i32>,
        duration_ms: u64,
        /// The end of its output.
        tail: String,
    },
    /// A shell command a team ran in its sandbox between model turns (the agent loop): what
    /// ran, how it ended, and the tail of its output (the SHA-256 of the whole output stands
    /// for the rest).
    CommandRun {
        run_id: String,
        team: String,
        /// The work order it ran for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_order_id: Option<String>,
        /// The model turn (1-based) that asked for it.
        turn: u32,
        command: String,
        /// `bubblewrap`, `docker`, …
        sandbox: String,
        exit_code: Option<i32>,
        timed_out: bool,
        duration_ms: u64,
        /// Bytes of output kept (at most the command's output cap).
        output_bytes: u64,
        output_sha256: String,
        /// The output's last lines, as the model saw them end.
        output_tail: String,
    },
    /// A stage began (committed together with whatever ended before it).
    StageStarted {
        run_id: String,
        index: u32,
        stage: String,
        team: String,
    },
    /// An attempt at a stage failed and will be retried (or the run fails when limits are
    /// reached): a model that did not answer, a result that stayed malformed, a budget.
    StageAttemptFailed {
        run_id: String,
        index: u32,
        stage: String,
        attempt: u32,
        error: String,
    },
    /// A stage's team answered through the gate. Artifacts are in `result`.
    StageCompleted {
        run_id: String,
        index: u32,
        stage: String,
        team: String,
        status: TaskStatus,
        result: TaskResult,
        /// Where the artifacts were written, relative to the data directory.
        artifact_dir: String,
        cost_usd: f64,
    },
    /// The run ended: succeeded, failed or canceled, with the reason.
    RunFinished {
        run_id: String,
        status: RunStatus,
        reason: String,
    },
    /// A stage asked a person (or the policy) to decide; the run waits (`waiting_for_human`)
    /// until it is decided. `index` is the stage it concerns; `detail` holds what the decision
    /// needs (the budget scope and amounts, the clarification id, …).
    ApprovalRequested {
        approval_id: String,
        run_id: String,
        index: u32,
        kind: ApprovalKind,
        question: String,
        context: String,
        options: Vec<ApprovalOption>,
        deadline: Option<String>,
        escalation: Option<EscalationInfo>,
        #[serde(default)]
        detail: serde_json::Value,
    },
    /// An approval was decided, by a person or automatically by a policy.
    ApprovalDecided {
        approval_id: String,
        run_id: String,
        kind: ApprovalKind,
        option: String,
        text: Option<String>,
        decided_by: String,
        automatic: bool,
        policy: Option<String>,
    },
    /// A team asked another team a question (the clarification broker).
    ClarificationRequested {
        clarification_id: String,
        run_id: String,
        index: u32,
        asking_team: String,
        target_team: String,
        question: String,
        /// 1 for a stage's own question, 2 when the answering team asks in turn, …
        depth: u32,
        parent: Option<String>,
    },
    /// A clarification was answered, by a team or by a person.
    ClarificationAnswered {
        clarification_id: String,
        run_id: String,
        index: u32,
        question: String,
        answer: String,
        answered_by: String,
    },
    /// A clarification was refused by a safety limit or expired; a person is asked instead.
    ClarificationRefused {
        clarification_id: String,
        run_id: String,
        index: u32,
        reason: String,
    },
    /// A person raised a scope's hard budget limit.
    BudgetRaised {
        run_id: Option<String>,
        budget: BudgetScope,
        hard_usd: f64,
    },
    /// A stage was skipped by a person's decision.
    StageSkipped {
        run_id: String,
        index: u32,
        stage: String,
        reason: String,
    },
    /// The final review asked for a revision: the pipeline starts again at its first stage with
    /// the feedback added to the objective anchor.
    RunRevised {
        run_id: String,
        revision: u32,
        feedback: String,
    },
    /// A project was registered (after its checks passed).
    ProjectAdded { project: Project },
    /// A fact or summary stored in a memory bank.
    MemoryRetained {
        item_id: String,
        bank: String,
        project: Option<String>,
        run_id: Option<String>,
        kind: String,
        text: String,
    },
    /// An admin token was issued (its secret is never recorded, only its id and label).
    AdminTokenCreated { token_id: String, label: String },
    /// A browser session was opened with an admin token.
    SessionStarted { token_id: String },
    /// What a token just issued may do; committed with its `admin_token_created`. A token
    /// without one (issued before scopes existed) is an admin token for every project.
    TokenScoped {
        token_id: String,
        #[serde(default)]
        scope: TokenScope,
        /// The projects (paths) it is limited to; empty means every project.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        projects: Vec<String>,
    },
    /// A token was revoked (`factory token revoke`, or a replaced `FACTORY_ADMIN_TOKEN`): it
    /// and every session opened with it stop working.
    TokenRevoked {
        token_id: String,
        #[serde(default)]
        reason: String,
    },
    /// A model call began. `call_id` is its idempotency key: a call issued again after a
    /// restart reuses it, and the ledger counts it once.
    ModelCallStarted {
        call_id: String,
        attribution: Attribution,
        /// The alias or `provider:model` asked for.
        target: String,
        /// Worst-case cost held against the budgets while the call runs.
        reserved_usd: f64,
    },
    /// A model answered.
    ModelCallFinished {
        call_id: String,
        attribution: Attribution,
        target: String,
        provider: String,
        model: String,
        /// Every prompt token, cached ones included.
        input_tokens: u32,
        output_tokens: u32,
        /// Prompt tokens read from the provider's cache (priced at the cached rate).
        #[serde(default)]
        cached_tokens: u32,
        /// The offline templates answered: no model was involved.
        #[serde(default)]
        offline: bool,
        cost_usd: f64,
        latency_ms: u64,
        /// Microseconds of the latency spent waiting on the model server.
        #[serde(default)]
        upstream_us: u64,
        path: Vec<Attempt>,
    },
    /// No model in the chain answered, or a budget refused the call.
    ModelCallFailed {
        call_id: String,
        attribution: Attribution,
        target: String,
        error: String,
        path: Vec<Attempt>,
    },
    /// The complexity router chose an alias for a work order (the decision log).
    RoutingDecided {
        attribution: Attribution,
        decision: RoutingDecision,
    },
    /// Spending in a scope reached a budget tier.
    BudgetReached {
        budget: BudgetScope,
        tier: BudgetTier,
        spent_usd: f64,
        limit_usd: f64,
    },
    /// A person changed a live setting (budgets or routing) from the dashboard or the API. The
    /// newest one of each section is applied over `factory.toml` at start-up.
    SettingsChanged {
        /// `budgets` or `routing`.
        section: String,
        before: serde_json::Value,
        after: serde_json::Value,
        changed_by: String,
    },
    /// One attempt of a gym scenario came out (see `factory gym run`).
    GymScenarioFinished { record: crate::gym::GymRecord },
    /// A webhook accepted an event (answered 2xx). Never itself delivered to a webhook.
    WebhookDelivered {
        /// The webhook's `name` in factory.toml (its URL's origin when unnamed).
        webhook: String,
        /// The `X-Factory-Delivery` id, the same on every attempt.
        delivery_id: String,
        /// The event delivered, and its run when it belongs to one.
        event_seq: i64,
        event_kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        /// Attempts made, this one included (1 when the first succeeded).
        attempts: u32,
        status: u16,
        /// From the first attempt to the accepting answer, backoff included.
        duration_ms: u64,
    },
    /// A webhook did not accept an event: its attempts ran out, it answered with a status that
    /// retrying cannot fix (3xx, 4xx other than 408, 425 and 429), or the process stopped.
    WebhookFailed {
        webhook: String,
        delivery_id: String,
        event_seq: i64,
        event_kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        attempts: u32,
        /// The last answer's status; absent when the last attempt got no answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// What went wrong on the last attempt.
        error: String,
    },
    /// Events meant for a webhook that were never attempted (see [`WebhookDrop`]).
    WebhookDropped {
        webhook: String,
        reason: WebhookDrop,
        /// How many, and the range of their sequence numbers when known.
        count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_seq: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<i64>,
    },
}

impl EventData {
    /// Every stored `kind`, one per variant (a test holds it to the enum).
    pub const KINDS: &'static [&'static str] = &[
        "run_created",
        "run_started",
        "work_order_delivered",
        "work_order_published",
        "branch_pushed",
        "pull_request_opened",
        "dependencies_prepared",
        "command_run",
        "stage_started",
        "stage_attempt_failed",
        "stage_completed",
        "run_finished",
        "approval_requested",
        "approval_decided",
        "clarification_requested",
        "clarification_answered",
        "clarification_refused",
        "budget_raised",
        "stage_skipped",
        "run_revised",
        "project_added",
        "memory_retained",
        "admin_token_created",
        "session_started",
        "token_scoped",
        "token_revoked",
        "model_call_started",
        "model_call_finished",
        "model_call_failed",
        "routing_decided",
        "budget_reached",
        "settings_changed",
        "gym_scenario_finished",
        "webhook_delivered",
        "webhook_failed",
        "webhook_dropped",
    ];

    /// True for the records of webhook deliveries: they are never delivered themselves, so a
    /// webhook cannot feed on its own outcomes.
    pub fn is_webhook_outcome(kind: &str) -> bool {
        kind.starts_with("webhook_")
    }

    /// The stored `kind` string of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::RunCreated { .. } => "run_created",
            EventData::AdminTokenCreated { .. } => "admin_token_created",
            EventData::SessionStarted { .. } => "session_started",
            EventData::TokenScoped { .. } => "token_scoped",
            EventData::TokenRevoked { .. } => "token_revoked",
            EventData::ModelCallStarted { .. } => "model_call_started",
            EventData::ModelCallFinished { .. } => "model_call_finished",
            EventData::ModelCallFailed { .. } => "model_call_failed",
            EventData::RoutingDecided { .. } => "routing_decided",
            EventData::BudgetReached { .. } => "budget_reached",
            EventData::RunStarted { .. } => "run_started",
            EventData::WorkOrderDelivered { .. } => "work_order_delivered",
            EventData::WorkOrderPublished { .. } => "work_order_published",
            EventData::CommandRun { .. } => "command_run",
            EventData::BranchPushed { .. } => "branch_pushed",
            EventData::DependenciesPrepared { .. } => "dependencies_prepared",
            EventData::PullRequestOpened { .. } => "pull_request_opened",
            EventData::StageStarted { .. } => "stage_started",
            EventData::StageAttemptFailed { .. } => "stage_attempt_failed",
            EventData::StageCompleted { .. } => "stage_completed",
            EventData::RunFinished { .. } => "run_finished",
            EventData::MemoryRetained { .. } => "memory_retained",
            EventData::ApprovalRequested { .. } => "approval_requested",
            EventData::ApprovalDecided { .. } => "approval_decided",
            EventData::ClarificationRequested { .. } => "clarification_requested",
            EventData::ClarificationAnswered { .. } => "clarification_answered",
            EventData::ClarificationRefused { .. } => "clarification_refused",
            EventData::BudgetRaised { .. } => "budget_raised",
            EventData::StageSkipped { .. } => "stage_skipped",
            EventData::RunRevised { .. } => "run_revised",
            EventData::ProjectAdded { .. } => "project_added",
            EventData::SettingsChanged { .. } => "settings_changed",
            EventData::GymScenarioFinished { .. } => "gym_scenario_finished",
            EventData::WebhookDelivered { .. } => "webhook_delivered",
            EventData::WebhookFailed { .. } => "webhook_failed",
            EventData::WebhookDropped { .. } => "webhook_dropped",
        }
    }

    /// The run this event belongs to, when it belongs to one.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            EventData::RunCreated { run_id, .. }
            | EventData::RunStarted { run_id, .. }
            | EventData::WorkOrderDelivered { run_id, .. }
            | EventData::WorkOrderPublished { run_id, .. }
            | EventData::CommandRun { run_id, .. }
            | EventData::BranchPushed { run_id, .. }
            | EventData::DependenciesPrepared { run_id, .. }
            | EventData::PullRequestOpened { run_id, .. }
            | EventData::StageStarted { run_id, .. }
            | EventData::StageAttemptFailed { run_id, .. }
            | EventData::StageCompleted { run_id, .. }
            | EventData::RunFinished { run_id, .. }
            | EventData::ApprovalRequested { run_id, .. }
            | EventData::ApprovalDecided { run_id, .. }
            | EventData::ClarificationRequested { run_id, .. }
            | EventData::ClarificationAnswered { run_id, .. }
            | EventData::ClarificationRefused { run_id, .. }
            | EventData::StageSkipped { run_id, .. }
            | EventData::RunRevised { run_id, .. } => Some(run_id),
            EventData::BudgetRaised { run_id, .. } => run_id.as_deref(),
            EventData::MemoryRetained { run_id, .. }
            | EventData::WebhookDelivered { run_id, .. }
            | EventData::WebhookFailed { run_id, .. } => run_id.as_deref(),
            EventData::ModelCallStarted { attribution, .. }
            | EventData::ModelCallFinished { attribution, .. }
            | EventData::ModelCallFailed { attribution, .. }
            | EventData::RoutingDecided { attribution, .. } => attribution.run_id.as_deref(),
            EventData::BudgetReached {
                budget: BudgetScope::Run { run_id },
                ..
            } => Some(run_id),
            EventData::AdminTokenCreated { .. }
            | EventData::SessionStarted { .. }
            | EventData::TokenScoped { .. }
            | EventData::TokenRevoked { .. }
            | EventData::ProjectAdded { .. }
            | EventData::SettingsChanged { .. }
            | EventData::GymScenarioFinished { .. }
            | EventData::WebhookDropped { .. }
            | EventData::BudgetReached { .. } => None,
        }
    }
}

/// A stage of a run's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    pub name: String,
    pub team: String,
}

/// One committed event as read back from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Global, gap-free sequence number (1, 2, 3, …).
    pub seq: i64,
    pub run_id: Option<String>,
    /// RFC 3339, UTC, millisecond precision.
    pub ts: String,
    /// Who caused it: `api`, `cli`, `system`, later a team name.
    pub actor: String,
    #[serde(flatten)]
    pub data: EventData,
    /// Hex SHA-256 linking this event to the one before it.
    pub hash: String,
}

#[cfg(test)]
mod tests;
