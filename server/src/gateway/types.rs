//! What callers send to the gateway and what they get back.

use std::sync::Arc;

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
    /// What the offline provider answers when the chain falls through to it. Model providers
    /// ignore it.
    pub offline: Option<OfflineAnswer>,
    /// The caller parses the reply itself: a reply that is not JSON is returned, not retried.
    pub caller_parses: bool,
    /// The offline templates must not answer: the caller (a run) has been served by a model,
    /// and a template must never stand in for one. The chain's offline entries are skipped.
    pub no_templates: bool,
}

/// The reply the offline provider gives when a chain falls through to it, prepared by the
/// caller (the engine fills its teams' templates; see `engine::templates`) and computed only if
/// the offline provider is reached. Given the request's schema; an `Err` is a permanent
/// failure with that message.
#[derive(Clone)]
pub struct OfflineAnswer(Arc<RenderFn>);

/// Renders an answer for a request's schema.
type RenderFn = dyn Fn(&serde_json::Value) -> Result<String, String> + Send + Sync;

impl OfflineAnswer {
    pub fn new(
        render: impl Fn(&serde_json::Value) -> Result<String, String> + Send + Sync + 'static,
    ) -> OfflineAnswer {
        OfflineAnswer(Arc::new(render))
    }

    /// The answer for a request with this schema.
    pub fn render(&self, schema: &serde_json::Value) -> Result<String, String> {
        (self.0)(schema)
    }
}

impl std::fmt::Debug for OfflineAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OfflineAnswer")
    }
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
            offline: None,
            caller_parses: false,
            no_templates: false,
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
    /// Every prompt token of the call, its re-asks included.
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Prompt tokens read from the provider's cache (priced at the cached rate).
    pub cached_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u64,
    /// Microseconds spent waiting on the model server (the rest of the latency is the
    /// gateway's own overhead: routing, budgets, encoding, the ledger, retries' waits).
    pub upstream_us: u64,
    pub provider: String,
    pub model: String,
    /// The offline templates answered (no model).
    pub offline: bool,
    /// Every attempt in order; the last one is the one that answered.
    pub path: Vec<Attempt>,
}
