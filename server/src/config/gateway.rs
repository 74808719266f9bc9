//! The gateway's part of `factory.toml`: providers, aliases as fallback chains, prices and
//! limits per model, retries, routing and budgets, on top of defaults derived from the
//! environment ([`EnvSnapshot`]). Secrets are never read into the configuration: a provider
//! names the environment variable holding its key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSnapshot};

mod capabilities;
mod validate;

pub use capabilities::{Capabilities, DEFAULT_CONTEXT_WINDOW, ReasoningEffort, family_defaults};

/// The aliases teams use; each resolves to an ordered fallback chain of `provider:model`.
pub const CANONICAL_ALIASES: [&str; 5] = [
    "factory/architect",
    "factory/coder",
    "factory/fast",
    "factory/cheap",
    "local/embed",
];

/// Model name meaning "the first model the server lists" (Ollama, or an OpenAI-compatible
/// server such as vLLM, llama.cpp or a LiteLLM proxy reached through `OPENAI_BASE_URL`).
pub const AUTO_MODEL: &str = "auto";

/// The one model of the offline provider.
pub const OFFLINE_MODEL: &str = "offline:template";

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI chat completions: OpenAI, Ollama's `/v1`, vLLM, llama.cpp server, LiteLLM proxy.
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// Ollama's native API (model discovery, `format` for structured output).
    Ollama,
    /// Built-in deterministic templates: no model at all. Shown as "offline (no model)".
    Offline,
}

impl ProviderKind {
    /// What the dashboard and the CLI call this kind of provider.
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OpenAI-compatible",
            ProviderKind::Anthropic => "Anthropic",
            ProviderKind::Ollama => "Ollama (local)",
            ProviderKind::Offline => "offline (no model)",
        }
    }
}

/// One provider endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Base URL; defaults per kind when omitted.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The key is in the data directory's secrets file, typed into the dashboard or the CLI
    /// (never in `factory.toml`, which cannot set this).
    #[serde(skip)]
    pub key_stored: bool,
}

/// Price, limits and capabilities of one `provider:model`. Capabilities left unset come from
/// the model's family (see [`capabilities`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// USD per million input tokens.
    #[serde(default)]
    pub input_per_mtok: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub output_per_mtok: f64,
    /// USD per million input tokens read from the provider's prompt cache (the input price
    /// when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per million input tokens written to the prompt cache (Anthropic; the input price
    /// when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    /// Calls to this model in flight at once.
    #[serde(default = "default_model_concurrency")]
    pub max_concurrency: usize,
    /// Context window in tokens (context packing derives its budget from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Whether the model takes a `temperature` (reasoning models take only the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<bool>,
    /// `reasoning_effort` sent to a reasoning model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Native tool calling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Structured output constrained by a JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<bool>,
    /// The OpenAI wire format's limit field is `max_completion_tokens` (else `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<bool>,
}

impl Default for ModelConfig {
    /// Free, with the default concurrency and every capability from the model's family.
    fn default() -> Self {
        ModelConfig {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
            max_concurrency: default_model_concurrency(),
            context_window: None,
            temperature: None,
            reasoning_effort: None,
            tools: None,
            structured_output: None,
            max_completion_tokens: None,
        }
    }
}

impl ModelConfig {
    /// The cost in USD of a call's tokens at this model's prices. `input` counts every prompt
    /// token, `cached` and `cache_written` included.
    pub fn cost(&self, input: u32, cached: u32, cache_written: u32, output: u32) -> f64 {
        let plain = input.saturating_sub(cached).saturating_sub(cache_written);
        let read = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        let write = self.cache_write_per_mtok.unwrap_or(self.input_per_mtok);
        (f64::from(plain) * self.input_per_mtok
            + f64::from(cached) * read
            + f64::from(cache_written) * write
            + f64::from(output) * self.output_per_mtok)
            / 1_000_000.0
    }
}

fn default_model_concurrency() -> usize {
    4
}

/// Retries, timeouts and the circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries of a transient failure on one provider before the next in the chain is tried.
    pub max_retries: u32,
    /// First backoff; doubles each retry (with full jitter), capped at `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` honoured; a longer one moves on to the next provider.
    pub retry_after_max_ms: u64,
    /// Timeout of one HTTP call.
    pub timeout_secs: u64,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before letting one trial call through.
    pub breaker_cooldown_secs: u64,
    /// Calls in flight across all models.
    pub max_in_flight: usize,
    /// Times a reply cut off at the output limit is asked again, shorter, before the next
    /// model in the chain is tried.
    pub max_truncation_retries: u32,
    /// A streamed reply that sends nothing for this long has stalled: the attempt fails
    /// (and is retried like a timeout), however long the reply has been running.
    pub stall_secs: u64,
    /// Longest a streamed reply may take in all, as long as it keeps sending (a slow model
    /// is given this instead of `timeout_secs`).
    pub stream_timeout_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
            retry_after_max_ms: 60_000,
            timeout_secs: 120,
            breaker_failures: 5,
            breaker_cooldown_secs: 30,
            max_in_flight: 16,
            max_truncation_retries: 1,
            stall_secs: 30,
            stream_timeout_secs: 600,
        }
    }
}

/// The complexity router (see [`crate::gateway::routing`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    pub weight_files: f64,
    pub weight_risk: f64,
    pub weight_criteria: f64,
    /// The weighted sum is divided by this (3 by default).
    pub divisor: f64,
    /// `files_in_scope` is normalised as `min(files, files_cap) / files_cap`.
    pub files_cap: u32,
    /// Below this complexity the cheap alias is used, otherwise the strong one.
    pub threshold: f64,
    pub cheap_alias: String,
    pub strong_alias: String,
    /// Words in a work order that force the strongest model regardless of budget tier.
    pub hard_stop_keywords: Vec<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            weight_files: 0.4,
            weight_risk: 0.3,
            weight_criteria: 0.3,
            divisor: 3.0,
            files_cap: 3,
            threshold: 0.3,
            cheap_alias: "factory/cheap".into(),
            strong_alias: "factory/architect".into(),
            hard_stop_keywords: ["security", "auth", "migration", "architecture", "payment"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// One scope's limits in USD. Soft warns (an event and a badge), hard stops paid calls in the
/// scope, emergency stops every paid call. Each is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tiers {
    pub soft: Option<f64>,
    pub hard: Option<f64>,
    pub emergency: Option<f64>,
}

impl Tiers {
    fn new(soft: Option<f64>, hard: Option<f64>, emergency: Option<f64>) -> Tiers {
        Tiers {
            soft,
            hard,
            emergency,
        }
    }

    /// The limit of one tier.
    pub fn limit(&self, tier: app::ledger::BudgetTier) -> Option<f64> {
        match tier {
            app::ledger::BudgetTier::Soft => self.soft,
            app::ledger::BudgetTier::Hard => self.hard,
            app::ledger::BudgetTier::Emergency => self.emergency,
        }
    }

    fn check(&self, section: &str) -> Result<(), ConfigError> {
        let set: Vec<f64> = [self.soft, self.hard, self.emergency]
            .into_iter()
            .flatten()
            .collect();
        if !set.iter().copied().all(non_negative) {
            return Err(ConfigError::Invalid(format!(
                "[{section}]: limits must be zero or more"
            )));
        }
        if set.windows(2).any(|w| w[0] > w[1]) {
            return Err(ConfigError::Invalid(format!(
                "[{section}]: need soft ≤ hard ≤ emergency (got {} / {} / {})",
                show(self.soft),
                show(self.hard),
                show(self.emergency)
            )));
        }
        Ok(())
    }
}

fn show(limit: Option<f64>) -> String {
    limit.map_or_else(|| "unset".to_string(), |v| v.to_string())
}

/// Spending limits per scope. `month` is everything spent in a calendar month (UTC); `run` is
/// one run's lifetime; `team` and `project` apply to every team or project per calendar month,
/// and `teams.<name>` / `projects.<name>` replace them for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    pub month: Tiers,
    pub run: Tiers,
    pub team: Tiers,
    pub project: Tiers,
    pub teams: BTreeMap<String, Tiers>,
    pub projects: BTreeMap<String, Tiers>,
}

impl Default for BudgetConfig {
    /// The defaults: $20 soft / $50 hard / $100 emergency a month; $3 hard per run.
    fn default() -> Self {
        BudgetConfig {
            month: Tiers::new(Some(20.0), Some(50.0), Some(100.0)),
            run: Tiers::new(None, Some(3.0), None),
            team: Tiers::default(),
            project: Tiers::default(),
            teams: BTreeMap::new(),
            projects: BTreeMap::new(),
        }
    }
}

impl BudgetConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.month.check("budgets.month")?;
        self.run.check("budgets.run")?;
        self.team.check("budgets.team")?;
        self.project.check("budgets.project")?;
        for (name, tiers) in &self.teams {
            tiers.check(&format!("budgets.teams.{name}"))?;
        }
        for (name, tiers) in &self.projects {
            tiers.check(&format!("budgets.projects.{name}"))?;
        }
        Ok(())
    }
}
/// The gateway's part of `factory.toml` (providers, aliases, models, retry, routing, budgets)
/// after defaults are merged in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
    pub aliases: BTreeMap<String, Vec<String>>,
    pub models: BTreeMap<String, ModelConfig>,
    pub retry: RetryConfig,
    pub routing: RoutingConfig,
    pub budgets: BudgetConfig,
}
/// Built-in prices of the default cloud models: USD per million tokens (input, cached input,
/// cache write, output) and calls in flight at once. Context windows and capabilities come
/// from the model's family.
const BUILT_IN_PRICES: [(&str, f64, f64, f64, f64, usize); 4] = [
    ("openai:gpt-4o", 2.50, 1.25, 2.50, 10.00, 2),
    ("openai:gpt-4o-mini", 0.15, 0.075, 0.15, 0.60, 4),
    ("anthropic:claude-sonnet-4-5", 3.00, 0.30, 3.75, 15.00, 2),
    ("anthropic:claude-haiku-4-5", 1.00, 0.10, 1.25, 5.00, 4),
];

impl GatewayConfig {
    /// Defaults for this environment: cloud first when a key is set, then local Ollama models,
    /// then — only when no cloud key is set — the offline provider.
    pub fn defaults(env: &EnvSnapshot) -> GatewayConfig {
        let mut providers = BTreeMap::new();
        providers.insert(
            "offline".to_string(),
            ProviderConfig {
                kind: ProviderKind::Offline,
                base_url: None,
                api_key_env: None,
                key_stored: false,
            },
        );
        providers.insert(
            "ollama".to_string(),
            ProviderConfig {
                kind: ProviderKind::Ollama,
                base_url: Some(ollama_base(env)),
                api_key_env: None,
                key_stored: false,
            },
        );
        if env.openai_key {
            providers.insert(
                "openai".to_string(),
                ProviderConfig {
                    kind: ProviderKind::Openai,
                    base_url: Some(
                        env.openai_base_url
                            .clone()
                            .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                    ),
                    api_key_env: Some("OPENAI_API_KEY".into()),
                    key_stored: false,
                },
            );
        }
        if env.anthropic_key {
            providers.insert(
                "anthropic".to_string(),
                ProviderConfig {
                    kind: ProviderKind::Anthropic,
                    base_url: Some(
                        env.anthropic_base_url
                            .clone()
                            .unwrap_or_else(|| "https://api.anthropic.com".into()),
                    ),
                    api_key_env: Some("ANTHROPIC_API_KEY".into()),
                    key_stored: false,
                },
            );
        }

        // A custom OpenAI-compatible server serves models of its own naming: use `auto`.
        let custom_openai = env.openai_key && env.openai_base_url.is_some();
        let openai = |model: &str| {
            env.openai_key.then(|| {
                if custom_openai {
                    format!("openai:{AUTO_MODEL}")
                } else {
                    format!("openai:{model}")
                }
            })
        };
        let anthropic = |model: &str| env.anthropic_key.then(|| format!("anthropic:{model}"));
        let chain = |cloud: Vec<Option<String>>| -> Vec<String> {
            let mut chain: Vec<String> = cloud.into_iter().flatten().collect();
            chain.dedup();
            chain.push(format!("ollama:{AUTO_MODEL}"));
            // The templates stand in only on a Factory with no model configured: with a
            // cloud key, a failing model waits for a person instead.
            if !(env.openai_key || env.anthropic_key) {
                chain.push(OFFLINE_MODEL.to_string());
            }
            chain
        };
        let strong = chain(vec![anthropic("claude-sonnet-4-5"), openai("gpt-4o")]);
        let light = chain(vec![openai("gpt-4o-mini"), anthropic("claude-haiku-4-5")]);
        let mut aliases = BTreeMap::new();
        aliases.insert("factory/architect".to_string(), strong.clone());
        aliases.insert("factory/coder".to_string(), strong);
        aliases.insert("factory/fast".to_string(), light.clone());
        aliases.insert("factory/cheap".to_string(), light);
        aliases.insert(
            "local/embed".to_string(),
            vec!["ollama:nomic-embed-text".to_string()],
        );

        let models = BUILT_IN_PRICES
            .iter()
            .map(|&(name, input, cached, written, output, concurrency)| {
                (
                    name.to_string(),
                    ModelConfig {
                        input_per_mtok: input,
                        output_per_mtok: output,
                        cached_input_per_mtok: Some(cached),
                        cache_write_per_mtok: Some(written),
                        max_concurrency: concurrency,
                        ..ModelConfig::default()
                    },
                )
            })
            .collect();

        GatewayConfig {
            providers,
            aliases,
            models,
            retry: RetryConfig::default(),
            routing: RoutingConfig::default(),
            budgets: BudgetConfig::default(),
        }
    }
    /// Price and limits of a `provider:model`: configured, else $0 with defaults (local,
    /// offline, and models a custom server names itself).
    pub fn model(&self, name: &str) -> ModelConfig {
        self.models.get(name).cloned().unwrap_or_default()
    }
}

/// True for a number that is zero or more (and not NaN).
fn non_negative(v: f64) -> bool {
    v >= 0.0
}

/// Splits `provider:model` at the first colon (Ollama model names contain colons themselves).
pub fn split_model(entry: &str) -> Option<(&str, &str)> {
    let (provider, model) = entry.split_once(':')?;
    (!provider.is_empty() && !model.is_empty()).then_some((provider, model))
}

fn ollama_base(env: &EnvSnapshot) -> String {
    let host = env
        .ollama_host
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:11434".into());
    if host.starts_with("http://") || host.starts_with("https://") {
        host
    } else {
        format!("http://{host}")
    }
}

fn missing_key_hint(provider: &str) -> &'static str {
    match provider {
        "openai" => "; set OPENAI_API_KEY to enable it",
        "anthropic" => "; set ANTHROPIC_API_KEY to enable it",
        _ => "",
    }
}
