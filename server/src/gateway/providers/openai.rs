//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, Ollama's
//! `/v1`, vLLM, llama.cpp's server and a LiteLLM proxy. Structured output uses
//! `response_format: {type: "json_schema", …}`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::http::{ApiKey, HttpEndpoint, send_json, tokens};
use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::config::gateway::AUTO_MODEL;

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
            "messages": request.messages,
        });
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
    let text = match &message["content"] {
        Value::String(text) => text.clone(),
        // A reasoning model that spent its whole limit thinking says nothing at all.
        Value::Null if choice["finish_reason"] == "length" => String::new(),
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
        let call = self.authorised(
            self.endpoint
                .http
                .post(format!("{}/chat/completions", self.endpoint.base_url))
                .json(&Self::body(request, &model)),
        );
        let (body, upstream) = send_json(call, &who, |v| v["error"]["message"].as_str()).await?;
        let mut answer = reply(&body, &who, upstream)?;
        answer.model = (model != request.model).then_some(model);
        Ok(answer)
    }
}
