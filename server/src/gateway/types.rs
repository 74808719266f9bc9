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
    /// The result of a tool call, answering the assistant message that asked for it.
    Tool,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The tools an assistant message called, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a `Tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCallRef>,
}

/// Which call a tool result answers: the provider's id and the tool's name (Ollama matches
/// results by name, the others by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRef {
    pub id: String,
    pub name: String,
}

impl Message {
    fn plain(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Message {
        Message::plain(Role::System, content)
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message::plain(Role::Assistant, content)
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::plain(Role::User, content)
    }

    /// The assistant's turn that called `calls` (with whatever text came with them).
    pub fn assistant_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Message {
        Message {
            tool_calls: calls,
            ..Message::plain(Role::Assistant, content)
        }
    }

    /// The result of `call`.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Message {
        Message {
            tool_call: Some(ToolCallRef {
                id: call.id.clone(),
                name: call.name.clone(),
            }),
            ..Message::plain(Role::Tool, content)
        }
    }
}

/// A tool the model may call: a name (letters, digits, `_` and `-`, at most 64), what it does,
/// and a JSON Schema object for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A tool call the model asked for. `id` is the provider's (generated when the wire format
/// has none, as with Ollama and the plain-text fallback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model sent them, parsed (an object for a well-behaved model).
    pub arguments: serde_json::Value,
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
    /// Tools the model may call. A model with native tool calling gets them in the wire
    /// format's own fields; another gets them described in the prompt and its calls are read
    /// from its reply (see [`super::tools`]). Either way they come back as
    /// [`ModelResponse::tool_calls`].
    pub tools: Vec<ToolSpec>,
    /// Stream the reply and report its progress here (output tokens so far, per model
    /// tried). A streamed reply that stalls for `retry.stall_secs` fails like a timeout; one
    /// that keeps sending may take `retry.stream_timeout_secs`. `None`: one whole reply,
    /// bounded by `retry.timeout_secs`.
    pub progress: Option<Progress>,
}

/// Where a streamed call reports its progress.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(StreamProgress) + Send + Sync>);

impl Progress {
    pub fn new(report: impl Fn(StreamProgress) + Send + Sync + 'static) -> Progress {
        Progress(Arc::new(report))
    }

    pub fn report(&self, progress: StreamProgress) {
        (self.0)(progress)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// How far a streamed reply has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamProgress {
    /// The `provider:model` answering.
    pub model: String,
    /// Output tokens received so far (estimated from the pieces streamed).
    pub output_tokens: u32,
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
            tools: Vec::new(),
            progress: None,
        }
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The call's idempotency key, as recorded in the ledger.
    pub call_id: String,
    pub text: String,
    /// The tools the model called, in the order it gave them (empty when it answered).
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// The reply parsed as JSON, when a schema was given (and no tool was called).
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
