//! The providers, aliases and models in force, with a client and a circuit breaker per
//! provider: one immutable snapshot, swapped whole when a person changes them. A call takes
//! the snapshot once at its start (a read lock and an `Arc` clone) and finishes on it, so a
//! change never reaches a call half-way; a provider whose settings and key did not change
//! keeps its client and its breaker across the swap.

use super::*;
use crate::gateway::secrets::{Keys, Secret};

/// One provider's client and breaker, with what it was built from (to tell whether a new
/// snapshot may keep it).
pub(crate) struct Endpoint {
    pub(super) client: Arc<dyn Provider>,
    pub(super) breaker: CircuitBreaker,
    spec: ProviderConfig,
    key: Option<Secret>,
}

/// Where a provider's key comes from, as Settings and `factory models` show it. Never the key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyStatus {
    /// No key needed (local servers, the offline provider).
    NotNeeded,
    /// Read from an environment variable, set or not.
    Env { var: String, set: bool },
    /// In the secrets file: `key set, ends in …1234`.
    Stored { hint: String },
    /// Meant to be in the secrets file, but it is not there or the file is refused.
    StoredMissing { reason: String },
}

impl KeyStatus {
    /// Whether a key will be sent.
    pub fn is_set(&self) -> bool {
        matches!(
            self,
            KeyStatus::Env { set: true, .. } | KeyStatus::Stored { .. }
        )
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            KeyStatus::NotNeeded => "no key needed".into(),
            KeyStatus::Env { var, set: true } => format!("key from ${var}"),
            KeyStatus::Env { var, set: false } => format!("key missing: set ${var}"),
            KeyStatus::Stored { hint } => hint.clone(),
            KeyStatus::StoredMissing { reason } => format!("key missing: {reason}"),
        }
    }
}

/// The providers, aliases and models a call works with.
pub struct Models {
    /// Providers, aliases, models and retry in force (routing and budgets as at start-up:
    /// the ones in force are the gateway's own).
    pub(super) config: Arc<GatewayConfig>,
    pub(super) endpoints: BTreeMap<String, Arc<Endpoint>>,
    /// Where each provider's key comes from.
    pub(crate) keys: BTreeMap<String, KeyStatus>,
}

/// The key of provider `name` and how to show it: from the secrets file when it was typed into
/// the dashboard or the CLI, else from its environment variable.
fn key_for(
    name: &str,
    p: &ProviderConfig,
    stored: &Result<Keys, String>,
) -> (Option<Secret>, KeyStatus) {
    if p.key_stored {
        return match stored {
            Ok(keys) => match keys.get(name) {
                Some(key) => (Some(key.clone()), KeyStatus::Stored { hint: key.hint() }),
                None => (
                    None,
                    KeyStatus::StoredMissing {
                        reason: "not in the secrets file: set it again".into(),
                    },
                ),
            },
            Err(reason) => (
                None,
                KeyStatus::StoredMissing {
                    reason: reason.clone(),
                },
            ),
        };
    }
    match &p.api_key_env {
        Some(var) => {
            let key = std::env::var(var)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .and_then(|k| Secret::new(&k).ok());
            let set = key.is_some();
            (
                key,
                KeyStatus::Env {
                    var: var.clone(),
                    set,
                },
            )
        }
        None => (None, KeyStatus::NotNeeded),
    }
}

fn client(
    name: &str,
    p: &ProviderConfig,
    key: Option<&Secret>,
    timeout: Duration,
) -> Arc<dyn Provider> {
    let key = key.map(|k| k.expose().to_string());
    match p.kind {
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
    }
}

impl Models {
    /// A client per configured provider, keeping `previous`'s endpoint (client and breaker)
    /// for every provider built from the same settings and key. `stored` holds the keys of
    /// the secrets file, or why it cannot be used.
    pub(super) fn build(
        config: GatewayConfig,
        stored: &Result<Keys, String>,
        previous: Option<&Models>,
    ) -> Models {
        let timeout = Duration::from_secs(config.retry.timeout_secs);
        let mut endpoints = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for (name, p) in &config.providers {
            let (key, status) = key_for(name, p, stored);
            keys.insert(name.clone(), status);
            let kept = previous
                .filter(|old| old.config.retry == config.retry)
                .and_then(|old| old.endpoints.get(name))
                .filter(|e| e.spec == *p && e.key == key)
                .cloned();
            let endpoint = kept.unwrap_or_else(|| {
                Arc::new(Endpoint {
                    client: client(name, p, key.as_ref(), timeout),
                    breaker: CircuitBreaker::new(
                        config.retry.breaker_failures,
                        Duration::from_secs(config.retry.breaker_cooldown_secs),
                    ),
                    spec: p.clone(),
                    key,
                })
            });
            endpoints.insert(name.clone(), endpoint);
        }
        Models {
            config: Arc::new(config),
            endpoints,
            keys,
        }
    }

    /// The configuration in force (routing and budgets as at start-up).
    pub fn config(&self) -> &Arc<GatewayConfig> {
        &self.config
    }

    /// `text` with every key of this snapshot replaced by `[key]`: a provider's error text may
    /// echo the key it was sent, and error texts reach events, pages and logs.
    pub fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for key in self.endpoints.values().filter_map(|e| e.key.as_ref()) {
            if key.expose().len() >= 4 && text.contains(key.expose()) {
                text = std::borrow::Cow::Owned(text.replace(key.expose(), "[key]"));
            }
        }
        text
    }

    /// `error` with [`Models::redact`] applied to its message and path.
    pub(super) fn redact_error(&self, error: GatewayError) -> GatewayError {
        let path = |path: Vec<Attempt>| self.redact_path(path);
        match error {
            GatewayError::Permanent { message, path: p } => GatewayError::Permanent {
                message: self.redact(&message).into_owned(),
                path: path(p),
            },
            GatewayError::Exhausted { target, path: p } => GatewayError::Exhausted {
                target,
                path: path(p),
            },
            GatewayError::Budget { error, path: p } => GatewayError::Budget {
                error,
                path: path(p),
            },
            other => other,
        }
    }

    /// The attempts with [`Models::redact`] applied to every outcome but `ok`.
    pub(super) fn redact_path(&self, mut path: Vec<Attempt>) -> Vec<Attempt> {
        for attempt in &mut path {
            if attempt.outcome != "ok" {
                attempt.outcome = self.redact(&attempt.outcome).into_owned();
            }
        }
        path
    }

    /// Where `provider`'s key comes from.
    pub fn key_status(&self, provider: &str) -> KeyStatus {
        self.keys
            .get(provider)
            .cloned()
            .unwrap_or(KeyStatus::NotNeeded)
    }
}

impl Gateway {
    /// Each configured provider's circuit breaker state.
    pub fn breaker_states(&self) -> Vec<(String, crate::gateway::resilience::BreakerState)> {
        self.models()
            .endpoints
            .iter()
            .map(|(name, e)| (name.clone(), e.breaker.state()))
            .collect()
    }

    /// The snapshot a call works with from its start to its end.
    pub fn models(&self) -> Arc<Models> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `config`'s providers, aliases and models in force for the next call. Calls in
    /// flight finish on what they started with; unchanged providers keep their clients and
    /// circuit breakers; per-model slots of models whose limits changed start afresh. Only
    /// [`crate::gateway::settings`] calls this, after validating (and recording) the change.
    pub(crate) fn set_models(&self, config: GatewayConfig, stored: &Result<Keys, String>) {
        let mut slot = self.models.write().unwrap_or_else(|p| p.into_inner());
        let next = Models::build(config, stored, Some(&**slot));
        let mut per_model = self.per_model.lock().unwrap_or_else(|p| p.into_inner());
        per_model.retain(|entry, _| {
            let provider = split_model(entry).map_or("", |(p, _)| p);
            slot.config.model(entry) == next.config.model(entry)
                && slot.endpoints.get(provider).map(Arc::as_ptr)
                    == next.endpoints.get(provider).map(Arc::as_ptr)
        });
        *slot = Arc::new(next);
    }
}
