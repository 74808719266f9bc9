//! Ollama's native API: model discovery (`GET /api/tags`) and chat (`POST /api/chat`, no
//! streaming, `format` carrying the JSON Schema for structured output). The model name `auto`
//! means the first chat model the server lists; discovery is cached for a minute, and a server
//! that does not answer makes the entry be skipped at once instead of retried.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http::{
    Framing, HttpEndpoint, Reassemble, ended_early, exchange, send_json, stream_json, tokens,
};
use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::config::gateway::AUTO_MODEL;
use crate::gateway::types::{Message, Role};

/// How long a discovery result is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);
/// How long discovery waits for the server (a missing Ollama must not slow every call).
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A client for one Ollama server.
#[derive(Debug)]
pub struct OllamaProvider {
    endpoint: HttpEndpoint,
    /// Models found at the last discovery and when it ran (`None` models: no server answered).
    discovered: Mutex<Option<(Instant, Option<Vec<String>>)>>,
}

impl OllamaProvider {
    pub fn new(name: &str, base_url: &str, timeout: Duration) -> OllamaProvider {
        OllamaProvider {
            endpoint: HttpEndpoint::new(name, base_url, timeout),
            discovered: Mutex::new(None),
        }
    }

    /// The server's models, or `None` when no Ollama answers (cached for a minute).
    pub async fn models(&self) -> Option<Vec<String>> {
        let mut cache = self.discovered.lock().await;
        if let Some((at, models)) = &*cache
            && at.elapsed() < DISCOVERY_TTL
        {
            return models.clone();
        }
        let found = self.list_models().await;
        *cache = Some((Instant::now(), found.clone()));
        found
    }

    async fn list_models(&self) -> Option<Vec<String>> {
        let reply = self
            .endpoint
            .http
            .get(format!("{}/api/tags", self.endpoint.base_url))
            .timeout(DISCOVERY_TIMEOUT)
            .send()
            .await
            .ok()?;
        let body: Value = reply.error_for_status().ok()?.json().await.ok()?;
        Some(
            body["models"]
                .as_array()?
                .iter()
                .filter_map(|m| m["name"].as_str().map(str::to_string))
                .collect(),
        )
    }

    /// Resolves `auto` to the first chat model (embedding models are not chat models).
    async fn resolve(&self, model: &str) -> Result<String, ProviderError> {
        let who = self.endpoint.who(model);
        let Some(models) = self.models().await else {
            return Err(ProviderError::Unavailable {
                message: format!("{who}: no Ollama answers at {}", self.endpoint.base_url),
            });
        };
        if model != AUTO_MODEL {
            return Ok(model.to_string());
        }
        models
            .into_iter()
            .find(|m| !m.contains("embed"))
            .ok_or_else(|| ProviderError::Unavailable {
                message: format!(
                    "{who}: the Ollama at {} has no chat model (pull one with `ollama pull`)",
                    self.endpoint.base_url
                ),
            })
    }
}

#[async_trait::async_trait]
impl Provider for OllamaProvider {
    async fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let Some(models) = self.models().await else {
            return Err(ProviderError::Unavailable {
                message: format!("no Ollama answers at {}", self.endpoint.base_url),
            });
        };
        let wanted = model.split(':').next().unwrap_or(model);
        if !models
            .iter()
            .any(|m| m == model || m.split(':').next() == Some(wanted))
        {
            return Err(ProviderError::Unavailable {
                message: format!(
                    "{} is not pulled on this Ollama (`ollama pull {model}`)",
                    self.endpoint.who(model)
                ),
            });
        }
        let who = self.endpoint.who(model);
        let call = self
            .endpoint
            .http
            .post(format!("{}/api/embed", self.endpoint.base_url))
            .json(&json!({"model": model, "input": texts}));
        let (body, _) = send_json(call, &who, |v| v["error"].as_str()).await?;
        super::vectors(body["embeddings"].as_array(), texts.len(), &who)
    }

    async fn complete(
        &self,
        request: &ProviderRequest<'_>,
    ) -> Result<ProviderReply, ProviderError> {
        let model = self.resolve(request.model).await?;
        let who = self.endpoint.who(&model);
        let mut options = json!({ "num_predict": request.max_tokens });
        if let Some(t) = request.temperature.filter(|_| request.caps.temperature) {
            options["temperature"] = json!(t);
        }
        let mut body = json!({
            "model": model,
            "messages": messages(request.messages),
            "stream": request.stream.is_some(),
            "options": options,
        });
        if !request.tools.is_empty() {
            body["tools"] = super::openai::tools(request.tools);
        }
        if let Some(schema) = request.schema {
            body["format"] = schema.clone();
        }
        let call = self
            .endpoint
            .http
            .post(format!("{}/api/chat", self.endpoint.base_url))
            .json(&body);
        let error: fn(&Value) -> Option<&str> = |v| v["error"].as_str();
        let (reply, upstream) =
            exchange::<Pieces>(call, &who, error, request.stream, Framing::Ndjson).await?;
        let calls = super::openai::tool_calls(&reply["message"]);
        let text = reply["message"]["content"]
            .as_str()
            .or_else(|| (!calls.is_empty()).then_some(""))
            .ok_or_else(|| ProviderError::Transient {
                message: format!("{who} sent a reply without message.content"),
                retry_after: None,
            })?
            .to_string();
        let mut answer = ProviderReply::new(
            text,
            tokens(&reply, "prompt_eval_count"),
            tokens(&reply, "eval_count"),
            upstream,
        );
        answer.model = Some(model);
        answer.truncated = reply["done_reason"] == "length";
        answer.tool_calls = calls;
        Ok(answer)
    }
}

/// Messages in Ollama's chat format: tool calls carry their arguments as an object, and a tool
/// result names its tool (Ollama matches results by name and order).
fn messages(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                json!({"role": "assistant", "content": m.content, "tool_calls": calls})
            }
            Role::Tool => json!({
                "role": "tool",
                "content": m.content,
                "tool_name": m.tool_call.as_ref().map(|c| c.name.as_str()),
            }),
            _ => json!({"role": m.role, "content": m.content}),
        })
        .collect()
}

/// A streamed chat reply, put back together as the whole reply would have been: the last
/// line (`done: true`) with every line's text and tool calls.
#[derive(Debug, Default)]
struct Pieces {
    content: String,
    calls: Vec<Value>,
    last: Value,
    /// Lines that carried output.
    count: u32,
}

impl Reassemble for Pieces {
    fn count(&self) -> u32 {
        self.count
    }

    fn add(&mut self, line: &str, who: &str) -> Result<bool, ProviderError> {
        let chunk = stream_json(line, who)?;
        if let Some(message) = chunk["error"].as_str() {
            return Err(ProviderError::Transient {
                message: format!("{who} failed mid-reply: {message}"),
                retry_after: None,
            });
        }
        let text = chunk["message"]["content"].as_str().unwrap_or_default();
        self.content.push_str(text);
        let calls = chunk["message"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let output = !text.is_empty() || !calls.is_empty();
        self.calls.extend(calls);
        self.last = chunk;
        if output {
            self.count += 1;
        }
        Ok(output)
    }

    fn body(mut self, who: &str) -> Result<Value, ProviderError> {
        if self.last["done"] != true {
            return Err(ended_early(who));
        }
        self.last["message"]["content"] = json!(self.content);
        if !self.calls.is_empty() {
            self.last["message"]["tool_calls"] = json!(self.calls);
        }
        Ok(self.last)
    }
}
