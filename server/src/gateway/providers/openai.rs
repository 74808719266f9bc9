//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, Ollama's
//! `/v1`, vLLM, llama.cpp's server and a LiteLLM proxy. Structured output uses
//! `response_format: {type: "json_schema", …}`.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{ApiKey, HttpEndpoint, send_json, tokens};
use super::{Provider, ProviderError, ProviderReply, ProviderRequest};

/// A client for one OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAiProvider {
    endpoint: HttpEndpoint,
    api_key: Option<ApiKey>,
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
        }
    }

    fn body(request: &ProviderRequest<'_>) -> Value {
        let mut body = json!({
            "model": request.model,
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
    async fn complete(
        &self,
        request: &ProviderRequest<'_>,
    ) -> Result<ProviderReply, ProviderError> {
        let who = self.endpoint.who(request.model);
        let mut call = self
            .endpoint
            .http
            .post(format!("{}/chat/completions", self.endpoint.base_url))
            .json(&Self::body(request));
        if let Some(ApiKey(key)) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let body = send_json(call, &who, |v| v["error"]["message"].as_str()).await?;
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
            model: None,
        })
    }
}
