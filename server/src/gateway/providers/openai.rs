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

    fn body(request: &ProviderRequest<'_>, model: &str) -> Value {
        let mut body = json!({
            "model": model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
        });
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(schema) = request.schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": "result", "schema": schema, "strict": true },
            });
        }
        body
    }
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
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| ProviderError::Transient {
                message: format!("{who} sent a reply without choices[0].message.content"),
                retry_after: None,
            })?
            .to_string();
        Ok(ProviderReply {
            text,
            input_tokens: tokens(&body["usage"], "prompt_tokens"),
            output_tokens: tokens(&body["usage"], "completion_tokens"),
            model: (model != request.model).then_some(model),
            upstream,
        })
    }
}
