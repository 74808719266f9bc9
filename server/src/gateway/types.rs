//! What callers send to the gateway and what they get back.

use serde::{Deserialize, Serialize};

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

    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// Whom a call is for: every call is attributed in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub run_id: Option<String>,
    pub team: Option<String>,
    pub objective_id: Option<String>,
    pub work_order_id: Option<String>,
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
}

/// One step of the fallback path actually taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `provider:model`.
    pub model: String,
    /// `ok`, or what went wrong (`429 Too Many Requests, retried`, `circuit open`, …).
    pub outcome: String,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    pub text: String,
    /// The reply parsed as JSON, when a schema was given.
    pub json: Option<serde_json::Value>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u64,
    pub provider: String,
    pub model: String,
    /// Every attempt in order; the last one is the one that answered.
    pub path: Vec<Attempt>,
}
