//! The call path: resolve an alias to its chain, then for each `provider:model` in order ask
//! the circuit breaker, call, retry transient failures with backoff, and fall back to the next
//! entry when retries are used up. Every attempt is recorded in the response's path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::config::{GatewayConfig, ProviderKind, split_model};
use super::providers::anthropic::AnthropicProvider;
use super::providers::offline::OfflineProvider;
use super::providers::ollama::OllamaProvider;
use super::providers::openai::OpenAiProvider;
use super::providers::{Provider, ProviderError, ProviderReply, ProviderRequest};
use super::resilience::{CircuitBreaker, Next, next_step};
use super::types::{Attempt, ModelRequest, ModelResponse};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "unknown model alias or provider `{target}`: use an alias ({known}) or `provider:model` with a configured provider"
    )]
    UnknownTarget { target: String, known: String },
    #[error("{message}")]
    Permanent { message: String, path: Vec<Attempt> },
    #[error("no model in the chain for `{target}` answered: {}", summarise(.path))]
    Exhausted { target: String, path: Vec<Attempt> },
}

fn summarise(path: &[Attempt]) -> String {
    path.iter()
        .map(|a| format!("{}: {}", a.model, a.outcome))
        .collect::<Vec<_>>()
        .join("; ")
}

struct Endpoint {
    client: Arc<dyn Provider>,
    breaker: CircuitBreaker,
}

/// The model gateway. Cheap to share behind an `Arc`.
pub struct Gateway {
    config: Arc<GatewayConfig>,
    /// Calls in flight across all models (`retry.max_in_flight`).
    in_flight: Semaphore,
    /// Calls in flight per `provider:model` (`max_concurrency`), created on first use.
    per_model: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Clients by provider name.
    endpoints: BTreeMap<String, Endpoint>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("providers", &self.endpoints.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Gateway {
    /// Builds a client per configured provider. API keys are read from the environment here,
    /// once, and kept only inside the clients.
    pub fn new(config: GatewayConfig) -> Gateway {
        let timeout = Duration::from_secs(config.retry.timeout_secs);
        let mut endpoints = BTreeMap::new();
        for (name, p) in &config.providers {
            let key = p
                .api_key_env
                .as_deref()
                .and_then(|var| std::env::var(var).ok())
                .filter(|k| !k.trim().is_empty());
            let client: Arc<dyn Provider> = match p.kind {
                ProviderKind::Openai => Arc::new(OpenAiProvider::new(
                    name,
                    p.base_url.as_deref().unwrap_or("https://api.openai.com/v1"),
                    key,
                    timeout,
                )),
                ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(
                    name,
                    p.base_url.as_deref().unwrap_or("https://api.anthropic.com"),
                    key,
                    timeout,
                )),
                ProviderKind::Ollama => Arc::new(OllamaProvider::new(
                    name,
                    p.base_url.as_deref().unwrap_or("http://127.0.0.1:11434"),
                    timeout,
                )),
                ProviderKind::Offline => Arc::new(OfflineProvider),
            };
            let breaker = CircuitBreaker::new(
                config.retry.breaker_failures,
                Duration::from_secs(config.retry.breaker_cooldown_secs),
            );
            endpoints.insert(name.clone(), Endpoint { client, breaker });
        }
        Gateway {
            in_flight: Semaphore::new(config.retry.max_in_flight),
            per_model: std::sync::Mutex::new(HashMap::new()),
            config: Arc::new(config),
            endpoints,
        }
    }

    /// The fallback chain for an alias or an explicit `provider:model`.
    pub fn resolve(&self, target: &str) -> Result<Vec<String>, GatewayError> {
        if let Some(chain) = self.config.aliases.get(target) {
            return Ok(chain.clone());
        }
        match split_model(target) {
            Some((provider, _)) if self.config.providers.contains_key(provider) => {
                Ok(vec![target.to_string()])
            }
            _ => Err(GatewayError::UnknownTarget {
                target: target.to_string(),
                known: self
                    .config
                    .aliases
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Sends a request along its chain until a model answers.
    pub async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, GatewayError> {
        let chain = self.resolve(&request.target)?;
        let started = Instant::now();
        let mut path = Vec::new();
        for entry in &chain {
            let (provider, model) = split_model(entry).unwrap_or(("", entry));
            let Some(endpoint) = self.endpoints.get(provider) else {
                path.push(Attempt {
                    model: entry.clone(),
                    outcome: "skipped: provider not configured".into(),
                });
                continue;
            };
            let call = ProviderRequest {
                model,
                messages: &request.messages,
                temperature: request.temperature,
                max_tokens: request.max_tokens,
                schema: request.schema.as_ref(),
            };
            match self.try_endpoint(endpoint, entry, &call, &mut path).await {
                Ok(Some((reply, json))) => {
                    let price = self.config.model(entry);
                    let cost = (f64::from(reply.input_tokens) * price.input_per_mtok
                        + f64::from(reply.output_tokens) * price.output_per_mtok)
                        / 1_000_000.0;
                    return Ok(ModelResponse {
                        text: reply.text,
                        json,
                        input_tokens: reply.input_tokens,
                        output_tokens: reply.output_tokens,
                        cost_usd: cost,
                        latency_ms: started.elapsed().as_millis() as u64,
                        provider: provider.to_string(),
                        model: reply.model.clone().unwrap_or_else(|| model.to_string()),
                        path,
                    });
                }
                Ok(None) => continue,
                Err(message) => return Err(GatewayError::Permanent { message, path }),
            }
        }
        Err(GatewayError::Exhausted {
            target: request.target.clone(),
            path,
        })
    }

    fn model_slots(&self, entry: &str) -> Arc<Semaphore> {
        let mut map = self.per_model.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(entry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.model(entry).max_concurrency)))
            .clone()
    }

    /// One chain entry with its retries. `Ok(None)`: move on to the next entry.
    async fn try_endpoint(
        &self,
        endpoint: &Endpoint,
        entry: &str,
        call: &ProviderRequest<'_>,
        path: &mut Vec<Attempt>,
    ) -> Result<Option<(ProviderReply, Option<serde_json::Value>)>, String> {
        let mut attempt = 0u32;
        loop {
            if let Err(open) = endpoint.breaker.try_acquire() {
                path.push(Attempt {
                    model: entry.to_string(),
                    outcome: open.to_string(),
                });
                return Ok(None);
            }
            let result = {
                // The model's slot first, then a global one: a call waiting for its model
                // never holds a slot another model could use.
                let model_slots = self.model_slots(entry);
                let _model = model_slots
                    .acquire()
                    .await
                    .expect("semaphores are never closed");
                let _global = self
                    .in_flight
                    .acquire()
                    .await
                    .expect("semaphores are never closed");
                endpoint.client.complete(call).await
            };
            match result.and_then(|reply| with_json(reply, call.schema.is_some())) {
                Ok(answer) => {
                    endpoint.breaker.record_success();
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: "ok".into(),
                    });
                    return Ok(Some(answer));
                }
                Err(ProviderError::Unavailable { message }) => {
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: format!("skipped: {message}"),
                    });
                    return Ok(None);
                }
                Err(ProviderError::Permanent { message }) => {
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: message.clone(),
                    });
                    return Err(message);
                }
                Err(ProviderError::Transient {
                    message,
                    retry_after,
                }) => {
                    endpoint.breaker.record_failure();
                    path.push(Attempt {
                        model: entry.to_string(),
                        outcome: message,
                    });
                    match next_step(&self.config.retry, attempt, retry_after, rand::random()) {
                        Next::RetryAfter(wait) => tokio::time::sleep(wait).await,
                        Next::NextProvider => return Ok(None),
                    }
                }
            }
            attempt += 1;
        }
    }
}

/// With a schema, the reply must be JSON: parsed once here, and a reply that is not JSON is a
/// transient failure (the model may do better on the next try).
fn with_json(
    reply: ProviderReply,
    schema: bool,
) -> Result<(ProviderReply, Option<serde_json::Value>), ProviderError> {
    if !schema {
        return Ok((reply, None));
    }
    match serde_json::from_str(&reply.text) {
        Ok(json) => Ok((reply, Some(json))),
        Err(_) => Err(ProviderError::Transient {
            message: "reply is not the JSON the schema asks for".into(),
            retry_after: None,
        }),
    }
}
