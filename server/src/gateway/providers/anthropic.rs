//! Anthropic Messages API (`POST {base}/v1/messages`), native. System messages go to the
//! top-level `system` field, marked for the prompt cache; structured output forces a single
//! tool whose input schema is the requested schema, and the tool's input becomes the reply
//! text.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{ApiKey, HttpEndpoint, send_json, tokens};
use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::gateway::types::Role;

/// The API version this client speaks.
const API_VERSION: &str = "2023-06-01";

/// Name of the forced tool used for structured output.
const RESULT_TOOL: &str = "result";

/// A client for the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicProvider {
    endpoint: HttpEndpoint,
    api_key: Option<ApiKey>,
}

impl AnthropicProvider {
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> AnthropicProvider {
        AnthropicProvider {
            endpoint: HttpEndpoint::new(name, base_url, timeout),
            api_key: api_key.map(ApiKey),
        }
    }

    fn body(request: &ProviderRequest<'_>) -> Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!({ "role": m.role, "content": m.content }))
            .collect();
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": messages,
        });
        if !system.is_empty() {
            // The system prompt (the team's identity, the repository map) is the stable
            // prefix of a run's calls: marked for the prompt cache.
            body["system"] = json!([{
                "type": "text",
                "text": system.join("\n\n"),
                "cache_control": {"type": "ephemeral"},
            }]);
        }
        if let Some(t) = request.temperature.filter(|_| request.caps.temperature) {
            body["temperature"] = json!(t);
        }
        if let Some(schema) = request.schema {
            body["tools"] = json!([{
                "name": RESULT_TOOL,
                "description": "Return the result in exactly this structure.",
                "input_schema": schema,
            }]);
            body["tool_choice"] = json!({ "type": "tool", "name": RESULT_TOOL });
        }
        body
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    async fn complete(
        &self,
        request: &ProviderRequest<'_>,
    ) -> Result<ProviderReply, ProviderError> {
        let who = self.endpoint.who(request.model);
        let mut call = self
            .endpoint
            .http
            .post(format!("{}/v1/messages", self.endpoint.base_url))
            .header("anthropic-version", API_VERSION)
            .json(&Self::body(request));
        if let Some(ApiKey(key)) = &self.api_key {
            call = call.header("x-api-key", key);
        }
        let (body, upstream) = send_json(call, &who, |v| v["error"]["message"].as_str()).await?;
        let blocks = body["content"].as_array().cloned().unwrap_or_default();
        let text = if request.schema.is_some() {
            blocks
                .iter()
                .find(|b| b["type"] == "tool_use")
                .map(|b| b["input"].to_string())
        } else {
            let parts: Vec<&str> = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            (!parts.is_empty()).then(|| parts.concat())
        };
        let text = text.ok_or_else(|| ProviderError::Transient {
            message: format!("{who} sent a reply without the expected content"),
            retry_after: None,
        })?;
        // Anthropic counts cached prompt tokens apart from `input_tokens`; the ledger counts
        // every prompt token as input and says how many were cached.
        let usage = &body["usage"];
        let cached = tokens(usage, "cache_read_input_tokens");
        let written = tokens(usage, "cache_creation_input_tokens");
        let input = tokens(usage, "input_tokens")
            .saturating_add(cached)
            .saturating_add(written);
        let mut answer = ProviderReply::new(text, input, tokens(usage, "output_tokens"), upstream);
        answer.truncated = body["stop_reason"] == "max_tokens";
        answer.cached_tokens = cached;
        answer.cache_write_tokens = written;
        Ok(answer)
    }
}
