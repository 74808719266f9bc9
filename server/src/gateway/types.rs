//! What callers send to the gateway and what they get back.

use serde::{Deserialize, Serialize};

pub use app::ledger::{Attempt, Attribution};

/// Who is speaking in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// A model call.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// An alias (`factory/coder`) or an explicit `provider:model`.
    pub target: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    /// A JSON Schema the reply must follow; the reply is then parsed into `ModelResponse::json`.
    pub schema: Option<serde_json::Value>,
    pub attribution: Attribution,
    /// Idempotency key of the call: the engine derives it from the run, stage and attempt, so
    /// a call issued again after a restart is counted once. A fresh one when `None`.
    pub call_id: Option<String>,
    /// What the offline provider renders when the chain falls through to it (the team's
    /// template and the requirement's facts). Model providers ignore it.
    pub offline_brief: Option<OfflineBrief>,
    /// The caller parses the reply itself: a reply that is not JSON is returned, not retried.
    pub caller_parses: bool,
}

/// The material the offline provider turns into a team's deliverable without a model.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineBrief {
    pub team: String,
    /// File name of the artifact, e.g. `requirements.md`.
    pub deliverable: String,
    /// The team's `offline.md.j2` (minijinja).
    pub template: String,
    /// The template's variables.
    pub vars: serde_json::Value,
}

impl ModelRequest {
    /// A request to `target` with these messages, `max_tokens` and nothing else set.
    pub fn new(target: impl Into<String>, messages: Vec<Message>, max_tokens: u32) -> ModelRequest {
        ModelRequest {
            target: target.into(),
            messages,
            temperature: None,
            max_tokens,
            schema: None,
            attribution: Attribution::default(),
            call_id: None,
            offline_brief: None,
            caller_parses: false,
        }
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The call's idempotency key, as recorded in the ledger.
    pub call_id: String,
    pub text: String,
    /// The reply parsed as JSON, when a schema was given.
    pub json: Option<serde_json::Value>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u64,
    /// Microseconds spent waiting on the model server (the rest of the latency is the
    /// gateway's own overhead: routing, budgets, encoding, the ledger, retries' waits).
    pub upstream_us: u64,
    pub provider: String,
    pub model: String,
    /// Every attempt in order; the last one is the one that answered.
    pub path: Vec<Attempt>,
}
