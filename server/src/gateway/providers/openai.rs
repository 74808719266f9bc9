//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, Ollama's
//! `/v1`, vLLM, llama.cpp's server and a LiteLLM proxy. Structured output uses
//! `response_format: {type: "json_schema", …}`.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::gateway::resilience::{is_transient_status, parse_retry_after};

/// Largest reply body read (a runaway server cannot exhaust memory).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A client for one OpenAI-compatible endpoint.
pub struct OpenAiProvider {
    name: String,
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("OpenAiProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl OpenAiProvider {
    /// `name` is the provider's name in the configuration (used in messages).
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> OpenAiProvider {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("a reqwest client with a timeout always builds");
        OpenAiProvider {
            name: name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            http,
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
        let who = format!("{}:{}", self.name, request.model);
        let transient = |message: String, retry_after| ProviderError::Transient {
            message,
            retry_after,
        };
        let mut call = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&Self::body(request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "could not be reached"
            };
            transient(format!("{who} {what}: {}", without_url(&e)), None)
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(|e| {
            transient(
                format!("{who}: reply body could not be read: {}", without_url(&e)),
                None,
            )
        })?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(transient(
                format!("{who}: reply larger than {MAX_BODY_BYTES} bytes"),
                None,
            ));
        }
        if !status.is_success() {
            let detail = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_default();
            let message = format!(
                "{who} answered {status}{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            );
            return Err(if is_transient_status(status.as_u16()) {
                transient(message, retry_after)
            } else {
                ProviderError::Permanent { message }
            });
        }
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| transient(format!("{who} sent a reply that is not JSON: {e}"), None))?;
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| {
                transient(
                    format!("{who} sent a reply without choices[0].message.content"),
                    None,
                )
            })?
            .to_string();
        let tokens = |field: &str| {
            body["usage"][field]
                .as_u64()
                .unwrap_or(0)
                .min(u64::from(u32::MAX)) as u32
        };
        Ok(ProviderReply {
            text,
            input_tokens: tokens("prompt_tokens"),
            output_tokens: tokens("completion_tokens"),
        })
    }
}

/// reqwest errors print the URL; the URL may carry credentials in odd setups, so drop it.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}
