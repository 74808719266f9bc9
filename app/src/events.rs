//! The event vocabulary: every fact Factory records, one variant each.
//!
//! Stored as `kind` (the variant's snake_case name) and `payload` (its fields as JSON) in the
//! append-only log; the same type travels to the dashboard over the WebSocket.

use serde::{Deserialize, Serialize};

use crate::ledger::{Attempt, Attribution, BudgetScope, BudgetTier, RoutingDecision};
use crate::model::RunStatus;
use crate::task::{TaskResult, TaskStatus};

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
        input_tokens: u32,
        output_tokens: u32,
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
}

impl EventData {
    /// The stored `kind` string of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::RunCreated { .. } => "run_created",
            EventData::AdminTokenCreated { .. } => "admin_token_created",
            EventData::SessionStarted { .. } => "session_started",
            EventData::ModelCallStarted { .. } => "model_call_started",
            EventData::ModelCallFinished { .. } => "model_call_finished",
            EventData::ModelCallFailed { .. } => "model_call_failed",
            EventData::RoutingDecided { .. } => "routing_decided",
            EventData::BudgetReached { .. } => "budget_reached",
            EventData::RunStarted { .. } => "run_started",
            EventData::StageStarted { .. } => "stage_started",
            EventData::StageAttemptFailed { .. } => "stage_attempt_failed",
            EventData::StageCompleted { .. } => "stage_completed",
            EventData::RunFinished { .. } => "run_finished",
            EventData::MemoryRetained { .. } => "memory_retained",
        }
    }

    /// The run this event belongs to, when it belongs to one.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            EventData::RunCreated { run_id, .. }
            | EventData::RunStarted { run_id, .. }
            | EventData::StageStarted { run_id, .. }
            | EventData::StageAttemptFailed { run_id, .. }
            | EventData::StageCompleted { run_id, .. }
            | EventData::RunFinished { run_id, .. } => Some(run_id),
            EventData::MemoryRetained { run_id, .. } => run_id.as_deref(),
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
mod tests {
    use super::*;

    #[test]
    fn kind_matches_the_serialized_tag() {
        let samples = [
            EventData::RunCreated {
                run_id: "r".into(),
                request_id: None,
                goal: "g".into(),
                project: None,
                pipeline: None,
            },
            EventData::AdminTokenCreated {
                token_id: "t".into(),
                label: "l".into(),
            },
            EventData::SessionStarted {
                token_id: "t".into(),
            },
        ];
        for data in samples {
            let json = serde_json::to_value(&data).unwrap();
            assert_eq!(json["kind"], data.kind());
        }
    }

    #[test]
    fn event_round_trips_with_flattened_data() {
        let event = Event {
            seq: 7,
            run_id: Some("r1".into()),
            ts: "2026-11-22T05:00:00.000Z".into(),
            actor: "api".into(),
            data: EventData::RunCreated {
                run_id: "r1".into(),
                request_id: Some("req".into()),
                goal: "Add login".into(),
                project: None,
                pipeline: None,
            },
            hash: "ab".into(),
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains(r#""kind":"run_created""#), "{text}");
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }
}
