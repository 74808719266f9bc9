//! Provider clients: one per wire format, all behind [`Provider`].

pub mod anthropic;
mod http;
pub mod offline;
pub mod ollama;
pub mod openai;

use std::time::Duration;

use super::types::{Message, OfflineAnswer};

/// What a provider is asked (the model is already resolved).
#[derive(Debug, Clone)]
pub struct ProviderRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    pub schema: Option<&'a serde_json::Value>,
    /// The caller's prepared answer, for the offline provider.
    pub offline: Option<&'a OfflineAnswer>,
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
