//! Decisions waiting for a person (approvals), clarifications between teams and escalation
//! records: shared by server, CLI and dashboard.

use serde::{Deserialize, Serialize};

/// What an approval asks a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Answer a question no team could settle.
    Clarification,
    /// A stage is blocked: retry, retry with another alias, give guidance, skip, or fail.
    Blocked,
    /// The work orders planned by solution architecture (the director policy).
    Plan,
    /// A hard budget limit was reached.
    Budget,
    /// The final review of the run's artifacts.
    Review,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Clarification => "clarification",
            ApprovalKind::Blocked => "blocked",
            ApprovalKind::Plan => "plan",
            ApprovalKind::Budget => "budget",
            ApprovalKind::Review => "review",
        }
    }

    /// The options a person is offered for this kind.
    pub fn options(self) -> Vec<ApprovalOption> {
        let o = |id: &str, label: &str, needs_text: bool| ApprovalOption {
            id: id.into(),
            label: label.into(),
            needs_text,
        };
        match self {
            ApprovalKind::Clarification => vec![o("answer", "Answer the question", true)],
            ApprovalKind::Blocked => vec![
                o("retry", "Retry with the same model", false),
                o("retry_strong", "Retry with the strongest alias", false),
                o("guidance", "Give guidance and retry", true),
                o("skip", "Skip this stage", false),
                o("fail", "Fail the run", false),
            ],
            ApprovalKind::Plan => vec![
                o("approve", "Approve the plan", false),
                o("revise", "Revise the plan with feedback", true),
                o("reject", "Reject (fail the run)", false),
            ],
            ApprovalKind::Budget => vec![
                o("raise_once", "Raise the limit for this call", false),
                o(
                    "raise_run",
                    "Raise the limit for this run (optional amount in USD)",
                    false,
                ),
                o("stop", "Stop (fail the run)", false),
            ],
            ApprovalKind::Review => vec![
                o("approve", "Approve: the run succeeded", false),
                o(
                    "revise",
                    "Revise with feedback (start again at business analysis)",
                    true,
                ),
            ],
        }
    }
}

/// One button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalOption {
    pub id: String,
    pub label: String,
    /// The option needs words from the person (an answer, guidance, feedback).
    pub needs_text: bool,
}

/// Whether an approval still waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Decided,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Decided => "decided",
        }
    }

    /// The status a stored or requested name stands for.
    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        match s {
            "pending" => Some(ApprovalStatus::Pending),
            "decided" => Some(ApprovalStatus::Decided),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an approval was decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub option: String,
    pub text: Option<String>,
    /// `api` / `cli` for a person, or `policy` for an automatic decision.
    pub decided_by: String,
    pub decided_at: String,
    pub automatic: bool,
    /// The policy that decided automatically.
    pub policy: Option<String>,
}

/// A durable wait for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub run_id: String,
    pub kind: ApprovalKind,
    pub question: String,
    pub context: String,
    pub options: Vec<ApprovalOption>,
    pub created_at: String,
    pub deadline: Option<String>,
    pub status: ApprovalStatus,
    pub decision: Option<Decision>,
}

/// How bad an escalation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// What kind of failure escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    Validation,
    Execution,
    Api,
    Budget,
    Gate,
}

/// The escalation record attached to a blocked or budget approval: how bad, what kind of
/// failure, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationInfo {
    pub severity: Severity,
    pub error_type: ErrorType,
    pub message: String,
}

/// Body of `POST /api/approvals/{id}/decide`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub option: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// Longest answer, guidance or feedback accepted, in characters.
pub const MAX_DECISION_TEXT: usize = 4_000;
