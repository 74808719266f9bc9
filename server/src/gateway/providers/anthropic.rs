//! Anthropic Messages API (`POST {base}/v1/messages`), native. System messages go to the
//! top-level `system` field, marked for the prompt cache; structured output forces a single
//! tool whose input schema is the requested schema, and the tool's input becomes the reply
//! text.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{
    ApiKey, Framing, HttpEndpoint, Reassemble, ended_early, exchange, stream_json, tokens,
};
use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::gateway::types::{Message, Role, ToolCall};

/// The API version this client speaks.
const API_VERSION: &str = "2023-06-01";

/// Name of the forced tool used for structured output.
const RESULT_TOOL: &str = crate::gateway::tools::RESERVED;

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
        let messages = messages(request.messages);
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
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        if let Some(schema) = request.schema {
            tools.push(json!({
                "name": RESULT_TOOL,
                "description": "Return the result in exactly this structure.",
                "input_schema": schema,
            }));
            // With other tools the model may call those first; either way it calls a tool.
            body["tool_choice"] = if request.tools.is_empty() {
                json!({ "type": "tool", "name": RESULT_TOOL })
            } else {
                json!({ "type": "any" })
            };
        }
        if !tools.is_empty() {
            body["tools"] = json!(tools);
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
        let mut body = Self::body(request);
        if request.stream.is_some() {
            body["stream"] = json!(true);
        }
        let mut call = self
            .endpoint
            .http
            .post(format!("{}/v1/messages", self.endpoint.base_url))
            .header("anthropic-version", API_VERSION)
            .json(&body);
        if let Some(ApiKey(key)) = &self.api_key {
            call = call.header("x-api-key", key);
        }
        let error: fn(&Value) -> Option<&str> = |v| v["error"]["message"].as_str();
        let (body, upstream) =
            exchange::<Pieces>(call, &who, error, request.stream, Framing::Sse).await?;
        let blocks = body["content"].as_array().cloned().unwrap_or_default();
        let calls: Vec<ToolCall> = blocks
            .iter()
            .filter(|b| b["type"] == "tool_use" && b["name"] != RESULT_TOOL)
            .map(|b| ToolCall {
                id: b["id"].as_str().unwrap_or_default().to_string(),
                name: b["name"].as_str().unwrap_or_default().to_string(),
                arguments: b["input"].clone(),
            })
            .collect();
        let text = if request.schema.is_some() {
            blocks
                .iter()
                .find(|b| b["type"] == "tool_use" && b["name"] == RESULT_TOOL)
                .map(|b| b["input"].to_string())
        } else {
            let parts: Vec<&str> = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            (!parts.is_empty()).then(|| parts.concat())
        };
        let text = match text {
            Some(text) => text,
            None if !calls.is_empty() => String::new(),
            None => {
                return Err(ProviderError::Transient {
                    message: format!("{who} sent a reply without the expected content"),
                    retry_after: None,
                });
            }
        };
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
        answer.tool_calls = calls;
        Ok(answer)
    }
}

/// Messages in the Messages API's format (system messages are sent apart): an assistant's
/// tool calls become `tool_use` blocks, and the results that answer them one user turn of
/// `tool_result` blocks, as the API requires right after the calls.
fn messages(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<Value> = Vec::new();
    for m in messages.iter().filter(|m| m.role != Role::System) {
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                blocks.extend(m.tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
                }));
                turns.push(json!({"role": "assistant", "content": blocks}));
            }
            Role::Tool => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call.as_ref().map(|c| c.id.as_str()),
                    "content": m.content,
                });
                match turns.last_mut() {
                    // Results of one assistant turn go together in one user turn.
                    Some(last)
                        if last["role"] == "user"
                            && last["content"][0]["type"] == "tool_result" =>
                    {
                        if let Some(blocks) = last["content"].as_array_mut() {
                            blocks.push(block);
                        }
                    }
                    _ => turns.push(json!({"role": "user", "content": [block]})),
                }
            }
            _ => turns.push(json!({"role": m.role, "content": m.content})),
        }
    }
    turns
}

/// A streamed message, put back together as the whole reply would have been.
#[derive(Debug, Default)]
struct Pieces {
    /// From `message_start`, with `stop_reason` and the output usage from `message_delta`.
    message: Value,
    blocks: Vec<Value>,
    /// A tool_use block's input, as JSON text arriving piece by piece.
    inputs: Vec<String>,
    /// Pieces of text or input received.
    count: u32,
}

impl Reassemble for Pieces {
    fn count(&self) -> u32 {
        self.count
    }

    fn add(&mut self, data: &str, who: &str) -> Result<bool, ProviderError> {
        let event = stream_json(data, who)?;
        let index = event["index"].as_u64().unwrap_or(0) as usize;
        match event["type"].as_str().unwrap_or_default() {
            "message_start" => self.message = event["message"].clone(),
            "content_block_start" if index < 128 => {
                while self.blocks.len() <= index {
                    self.blocks.push(Value::Null);
                    self.inputs.push(String::new());
                }
                self.blocks[index] = event["content_block"].clone();
            }
            "content_block_delta" => {
                let Some(block) = self.blocks.get_mut(index) else {
                    return Ok(false);
                };
                let delta = &event["delta"];
                if let Some(text) = delta["text"].as_str() {
                    let mut whole = block["text"].as_str().unwrap_or_default().to_string();
                    whole.push_str(text);
                    block["text"] = json!(whole);
                } else if let Some(piece) = delta["partial_json"].as_str() {
                    self.inputs[index].push_str(piece);
                } else {
                    return Ok(false);
                }
                self.count += 1;
                return Ok(true);
            }
            "content_block_stop" => {
                if let Some(block) = self.blocks.get_mut(index)
                    && block["type"] == "tool_use"
                    && !self.inputs[index].is_empty()
                {
                    block["input"] = stream_json(&self.inputs[index], who)?;
                }
            }
            "message_delta" => {
                self.message["stop_reason"] = event["delta"]["stop_reason"].clone();
                if let Some(usage) = event["usage"].as_object() {
                    for (key, value) in usage {
                        self.message["usage"][key] = value.clone();
                    }
                }
            }
            "error" => {
                let message = event["error"]["message"].as_str().unwrap_or("an error");
                return Err(ProviderError::Transient {
                    message: format!("{who} failed mid-reply: {message}"),
                    retry_after: None,
                });
            }
            _ => {}
        }
        Ok(false)
    }

    fn body(mut self, who: &str) -> Result<Value, ProviderError> {
        if self.message["stop_reason"].is_null() {
            return Err(ended_early(who));
        }
        self.message["content"] = json!(self.blocks);
        Ok(self.message)
    }
}
