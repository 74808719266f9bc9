//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, Ollama's
//! `/v1`, vLLM, llama.cpp's server and a LiteLLM proxy. Structured output uses
//! `response_format: {type: "json_schema", …}`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::http::{
    ApiKey, Framing, HttpEndpoint, Reassemble, ended_early, exchange, send_json, stream_json,
    tokens,
};
use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::config::gateway::AUTO_MODEL;
use crate::gateway::tools::arguments_from_string;
use crate::gateway::types::{Message, Role, ToolCall, ToolSpec};

/// A client for one OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAiProvider {
    endpoint: HttpEndpoint,
    api_key: Option<ApiKey>,
    /// What `auto` resolved to (the first model the server lists), once found.
    auto_model: OnceCell<String>,
}

impl OpenAiProvider {
    /// `name` is the provider's name in the configuration (used in messages).
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> OpenAiProvider {
        OpenAiProvider {
            endpoint: HttpEndpoint::new(name, base_url, timeout),
            api_key: api_key.map(ApiKey),
            auto_model: OnceCell::new(),
        }
    }

    fn authorised(&self, call: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(ApiKey(key)) => call.bearer_auth(key),
            None => call,
        }
    }

    /// `auto` becomes the first model `GET {base}/models` lists (vLLM, llama.cpp and LiteLLM
    /// name their models themselves); other names pass through.
    async fn resolve(&self, model: &str) -> Result<String, ProviderError> {
        if model != AUTO_MODEL {
            return Ok(model.to_string());
        }
        let who = self.endpoint.who(model);
        let found = self
            .auto_model
            .get_or_try_init(|| async {
                let call = self.authorised(
                    self.endpoint
                        .http
                        .get(format!("{}/models", self.endpoint.base_url)),
                );
                let (list, _) = send_json(call, &who, |v| v["error"]["message"].as_str()).await?;
                list["data"][0]["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ProviderError::Unavailable {
                        message: format!("{who}: the server lists no models at /models"),
                    })
            })
            .await?;
        Ok(found.clone())
    }

    /// The request body, with only what the model accepts: reasoning models get
    /// `max_completion_tokens` and no `temperature`; a schema is sent `strict` only when strict
    /// mode accepts it.
    fn body(request: &ProviderRequest<'_>, model: &str) -> Value {
        let caps = request.caps;
        let mut body = json!({
            "model": model,
            "messages": messages(request.messages),
        });
        if !request.tools.is_empty() {
            body["tools"] = tools(request.tools);
        }
        let limit = if caps.max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[limit] = json!(request.max_tokens);
        if let Some(t) = request.temperature.filter(|_| caps.temperature) {
            body["temperature"] = json!(t);
        }
        if let Some(effort) = caps.reasoning_effort.filter(|_| caps.reasoning) {
            body["reasoning_effort"] = json!(effort.as_str());
        }
        if let Some(schema) = request.schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {
                    "name": "result",
                    "schema": schema,
                    "strict": crate::gateway::schema::is_strict(schema),
                },
            });
        }
        body
    }
}

/// Messages in the chat completions format: an assistant's tool calls carry their arguments
/// as a JSON string, and a tool result names the call it answers.
fn messages(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments.to_string()},
                        })
                    })
                    .collect();
                let content = if m.content.is_empty() {
                    Value::Null
                } else {
                    json!(m.content)
                };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": m.tool_call.as_ref().map(|c| c.id.as_str()),
                "content": m.content,
            }),
            _ => json!({"role": m.role, "content": m.content}),
        })
        .collect()
}

/// Tools as chat completions functions (also Ollama's format).
pub(super) fn tools(tools: &[ToolSpec]) -> Value {
    tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            })
        })
        .collect()
}

/// The tool calls of a chat completions (or Ollama) message, in order; ids are generated
/// where the server sends none (Ollama).
pub(super) fn tool_calls(message: &Value) -> Vec<ToolCall> {
    message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| ToolCall {
                    id: c["id"]
                        .as_str()
                        .map_or_else(|| format!("call_{}", i + 1), str::to_string),
                    name: c["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    arguments: match &c["function"]["arguments"] {
                        Value::String(raw) => arguments_from_string(raw),
                        Value::Null => json!({}),
                        other => other.clone(),
                    },
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A streamed chat completion, put back together as the whole reply would have been.
#[derive(Debug, Default)]
struct Pieces {
    content: String,
    refusal: String,
    /// Tool calls by index, their arguments appended piece by piece.
    calls: Vec<Value>,
    finish_reason: Value,
    usage: Value,
    /// Pieces of text or arguments received.
    count: u32,
}

impl Reassemble for Pieces {
    fn count(&self) -> u32 {
        self.count
    }

    fn add(&mut self, data: &str, who: &str) -> Result<bool, ProviderError> {
        if data.trim() == "[DONE]" {
            return Ok(false);
        }
        let chunk = stream_json(data, who)?;
        if let Some(message) = chunk["error"]["message"].as_str() {
            return Err(ProviderError::Transient {
                message: format!("{who} failed mid-reply: {message}"),
                retry_after: None,
            });
        }
        if !chunk["usage"].is_null() {
            self.usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        if !choice["finish_reason"].is_null() {
            self.finish_reason = choice["finish_reason"].clone();
        }
        let delta = &choice["delta"];
        let mut output = false;
        if let Some(text) = delta["content"].as_str() {
            self.content.push_str(text);
            output = !text.is_empty();
        }
        if let Some(text) = delta["refusal"].as_str() {
            self.refusal.push_str(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0) as usize;
            if index >= 128 {
                continue;
            }
            while self.calls.len() <= index {
                self.calls
                    .push(json!({"type": "function", "function": {"name": "", "arguments": ""}}));
            }
            let slot = &mut self.calls[index];
            if let Some(id) = call["id"].as_str() {
                slot["id"] = json!(id);
            }
            if let Some(name) = call["function"]["name"].as_str() {
                slot["function"]["name"] = json!(name);
            }
            if let Some(piece) = call["function"]["arguments"].as_str() {
                let mut arguments = slot["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                arguments.push_str(piece);
                slot["function"]["arguments"] = json!(arguments);
            }
            output = true;
        }
        if output {
            self.count += 1;
        }
        Ok(output)
    }

    fn body(self, who: &str) -> Result<Value, ProviderError> {
        if self.finish_reason.is_null() {
            return Err(ended_early(who));
        }
        let mut message = json!({"role": "assistant", "content": self.content});
        if !self.refusal.is_empty() {
            message["refusal"] = json!(self.refusal);
        }
        if !self.calls.is_empty() {
            message["tool_calls"] = json!(self.calls);
        }
        Ok(json!({
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            // A server that ignores `include_usage`: the pieces counted are the estimate.
            "usage": if self.usage.is_null() { json!({"completion_tokens": self.count}) } else { self.usage },
        }))
    }
}

/// A chat completion's answer: its text (a refusal is a permanent failure: asking again gets
/// the same), whether it was cut off, and its usage with cached prompt tokens.
fn reply(body: &Value, who: &str, upstream: Duration) -> Result<ProviderReply, ProviderError> {
    let choice = &body["choices"][0];
    let message = &choice["message"];
    if let Some(refusal) = message["refusal"].as_str().filter(|r| !r.is_empty()) {
        return Err(ProviderError::Permanent {
            message: format!("{who} refused to answer: {refusal}"),
        });
    }
    let calls = tool_calls(message);
    let text = match &message["content"] {
        Value::String(text) => text.clone(),
        // A reasoning model that spent its whole limit thinking says nothing at all, and a
        // reply that only calls tools has no text.
        Value::Null if choice["finish_reason"] == "length" || !calls.is_empty() => String::new(),
        _ => {
            return Err(ProviderError::Transient {
                message: format!("{who} sent a reply without choices[0].message.content"),
                retry_after: None,
            });
        }
    };
    let usage = &body["usage"];
    let mut answer = ProviderReply::new(
        text,
        tokens(usage, "prompt_tokens"),
        tokens(usage, "completion_tokens"),
        upstream,
    );
    answer.truncated = choice["finish_reason"] == "length";
    answer.cached_tokens = tokens(&usage["prompt_tokens_details"], "cached_tokens");
    answer.tool_calls = calls;
    Ok(answer)
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    async fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let model = self.resolve(model).await?;
        let who = self.endpoint.who(&model);
        let call = self.authorised(
            self.endpoint
                .http
                .post(format!("{}/embeddings", self.endpoint.base_url))
                .json(&json!({"model": model, "input": texts})),
        );
        let (body, _) = send_json(call, &who, |v| v["error"]["message"].as_str()).await?;
        let data: Vec<Value> = body["data"]
            .as_array()
            .map(|d| d.iter().map(|item| item["embedding"].clone()).collect())
            .unwrap_or_default();
        super::vectors(Some(&data), texts.len(), &who)
    }

    async fn complete(
        &self,
        request: &ProviderRequest<'_>,
    ) -> Result<ProviderReply, ProviderError> {
        let model = self.resolve(request.model).await?;
        let who = self.endpoint.who(&model);
        let mut body = Self::body(request, &model);
        if request.stream.is_some() {
            body["stream"] = json!(true);
            // The usage arrives in a last chunk only when asked for.
            body["stream_options"] = json!({"include_usage": true});
        }
        let call = self.authorised(
            self.endpoint
                .http
                .post(format!("{}/chat/completions", self.endpoint.base_url))
                .json(&body),
        );
        let error: fn(&Value) -> Option<&str> = |v| v["error"]["message"].as_str();
        let (body, upstream) =
            exchange::<Pieces>(call, &who, error, request.stream, Framing::Sse).await?;
        let mut answer = reply(&body, &who, upstream)?;
        answer.model = (model != request.model).then_some(model);
        Ok(answer)
    }
}
