//! Provider clients: one per wire format, all behind [`Provider`].

pub mod anthropic;
mod http;
pub mod offline;
pub mod ollama;
pub mod openai;

use std::time::Duration;

use super::types::{Message, OfflineAnswer, ToolCall, ToolSpec};
use crate::config::gateway::Capabilities;

/// What a provider is asked (the model is already resolved).
#[derive(Debug, Clone)]
pub struct ProviderRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    /// The schema to constrain the reply with natively (the gateway puts it in the prompt
    /// instead for a model without structured output).
    pub schema: Option<&'a serde_json::Value>,
    /// The caller's prepared answer, for the offline provider.
    pub offline: Option<&'a OfflineAnswer>,
    /// What the model accepts: parameters it would refuse are not sent.
    pub caps: &'a Capabilities,
    /// Tools offered natively (empty for a model without tool calling: the gateway then
    /// describes them in the messages instead).
    pub tools: &'a [ToolSpec],
    /// Stream the reply, reporting progress (`None`: one whole reply).
    pub stream: Option<Streaming<'a>>,
}

/// How a streamed reply is received: its stall and overall limits, and where the output
/// tokens received so far are reported.
#[derive(Clone, Copy)]
pub struct Streaming<'a> {
    /// Longest gap between two pieces of the reply.
    pub stall: Duration,
    /// Longest the whole reply may take.
    pub timeout: Duration,
    /// Called with the output tokens received so far (one per streamed piece of text or
    /// arguments, an estimate until the final usage arrives).
    pub progress: &'a (dyn Fn(u32) + Send + Sync),
}

impl std::fmt::Debug for Streaming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("stall", &self.stall)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderReply {
    pub text: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// The model that answered when it differs from the one asked for (`auto` resolved).
    pub model: Option<String>,
    /// Time spent waiting on the server (zero for the offline provider); the gateway's own
    /// overhead is the rest.
    pub upstream: Duration,
    /// The reply was cut off at the output limit (`finish_reason: "length"`, Anthropic
    /// `stop_reason: "max_tokens"`, Ollama `done_reason: "length"`).
    pub truncated: bool,
    /// Prompt tokens read from the provider's prompt cache (part of `input_tokens`).
    pub cached_tokens: u32,
    /// Prompt tokens written to the prompt cache (Anthropic; part of `input_tokens`).
    pub cache_write_tokens: u32,
    /// The tools the model called, in order.
    pub tool_calls: Vec<ToolCall>,
}

impl ProviderReply {
    /// A whole reply of `text` with these token counts, nothing cached.
    pub fn new(text: String, input_tokens: u32, output_tokens: u32, upstream: Duration) -> Self {
        ProviderReply {
            text,
            input_tokens,
            output_tokens,
            model: None,
            upstream,
            truncated: false,
            cached_tokens: 0,
            cache_write_tokens: 0,
            tool_calls: Vec::new(),
        }
    }
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying: timeout, connection refused, 408/425/429, 5xx, a garbled body.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: 400, 401, 403, 404, … The message names provider and model.
    #[error("{message}")]
    Permanent { message: String },
    /// The provider is not there (no local server, no model): skip to the next entry at once.
    #[error("{message}")]
    Unavailable { message: String },
}

/// A model server speaking one wire format.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    async fn complete(&self, request: &ProviderRequest<'_>)
    -> Result<ProviderReply, ProviderError>;

    /// Embedding vectors, one per text. Providers without embeddings are `Unavailable`.
    async fn embed(&self, _model: &str, _texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        Err(ProviderError::Unavailable {
            message: "this provider has no embeddings".into(),
        })
    }
}

/// Vectors from a JSON array of arrays of numbers, checked to match the inputs.
pub(crate) fn vectors(
    list: Option<&Vec<serde_json::Value>>,
    expected: usize,
    who: &str,
) -> Result<Vec<Vec<f32>>, ProviderError> {
    let bad = || ProviderError::Transient {
        message: format!("{who}: the embeddings reply does not hold {expected} vectors"),
        retry_after: None,
    };
    let list = list.ok_or_else(bad)?;
    if list.len() != expected {
        return Err(bad());
    }
    list.iter()
        .map(|v| {
            v.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(bad))
                .collect()
        })
        .collect()
}
