//! Gateway configuration from `factory.toml`, on top of defaults derived from the environment
//! (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`,
//! `OLLAMA_HOST`). Validated as a whole at start-up, so a bad file fails with one clear message
//! before any model is called. Secrets are never read into the configuration: a provider names
//! the environment variable holding its key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

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

/// What was wrong with the configuration, and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

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
}

/// Price and limits of one `provider:model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// USD per million input tokens.
    #[serde(default)]
    pub input_per_mtok: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub output_per_mtok: f64,
    /// Calls to this model in flight at once.
    #[serde(default = "default_model_concurrency")]
    pub max_concurrency: usize,
    /// Context window in tokens (context packing derives its budget from it).
    #[serde(default = "default_context_window")]
    pub context_window: u32,
}

fn default_model_concurrency() -> usize {
    4
}

fn default_context_window() -> u32 {
    32_768
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
        }
    }
}

/// The complexity router (see [`super::routing`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    pub weight_files: f64,
    pub weight_risk: f64,
    pub weight_criteria: f64,
    /// The weighted sum is divided by this (the plan's `/ 3`).
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
    /// The plan's defaults: $20 soft / $50 hard / $100 emergency a month; $3 hard per run.
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

/// The whole gateway configuration after defaults and `factory.toml` are merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
    pub aliases: BTreeMap<String, Vec<String>>,
    pub models: BTreeMap<String, ModelConfig>,
    pub retry: RetryConfig,
    pub routing: RoutingConfig,
    pub budgets: BudgetConfig,
    /// The engine's limits (`[engine]`), kept in the same file.
    pub engine: crate::engine::EngineConfig,
    /// Clarification limits and approval policies (`[approvals]`).
    pub approvals: crate::engine::ApprovalsConfig,
}

/// The `factory.toml` file: every section optional; what it names replaces the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    aliases: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    models: BTreeMap<String, ModelConfig>,
    #[serde(default)]
    retry: Option<RetryConfig>,
    #[serde(default)]
    routing: Option<RoutingConfig>,
    #[serde(default)]
    budgets: Option<BudgetConfig>,
    #[serde(default)]
    engine: Option<crate::engine::EngineConfig>,
    #[serde(default)]
    approvals: Option<crate::engine::ApprovalsConfig>,
}

/// The model-related environment, read once (tests build it by hand). Key *values* are not
/// kept, only whether they are set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSnapshot {
    pub openai_key: bool,
    pub openai_base_url: Option<String>,
    pub anthropic_key: bool,
    pub anthropic_base_url: Option<String>,
    pub ollama_host: Option<String>,
}

impl EnvSnapshot {
    /// Reads the ecosystem's conventional variables.
    pub fn from_env() -> EnvSnapshot {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let value = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        EnvSnapshot {
            openai_key: set("OPENAI_API_KEY"),
            openai_base_url: value("OPENAI_BASE_URL"),
            anthropic_key: set("ANTHROPIC_API_KEY"),
            anthropic_base_url: value("ANTHROPIC_BASE_URL"),
            ollama_host: value("OLLAMA_HOST"),
        }
    }
}

/// Built-in prices (USD per million tokens, input / output) of the default cloud models.
const BUILT_IN_PRICES: [(&str, f64, f64, usize, u32); 4] = [
    ("openai:gpt-4o", 2.50, 10.00, 2, 128_000),
    ("openai:gpt-4o-mini", 0.15, 0.60, 4, 128_000),
    ("anthropic:claude-sonnet-4-5", 3.00, 15.00, 2, 200_000),
    ("anthropic:claude-haiku-4-5", 1.00, 5.00, 4, 200_000),
];

impl GatewayConfig {
    /// Defaults for this environment: cloud first when a key is set, then local Ollama models,
    /// then the offline provider.
    pub fn defaults(env: &EnvSnapshot) -> GatewayConfig {
        let mut providers = BTreeMap::new();
        providers.insert(
            "offline".to_string(),
            ProviderConfig {
                kind: ProviderKind::Offline,
                base_url: None,
                api_key_env: None,
            },
        );
        providers.insert(
            "ollama".to_string(),
            ProviderConfig {
                kind: ProviderKind::Ollama,
                base_url: Some(ollama_base(env)),
                api_key_env: None,
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
            chain.push(OFFLINE_MODEL.to_string());
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
            .map(|&(name, input, output, concurrency, window)| {
                (
                    name.to_string(),
                    ModelConfig {
                        input_per_mtok: input,
                        output_per_mtok: output,
                        max_concurrency: concurrency,
                        context_window: window,
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
            engine: crate::engine::EngineConfig::default(),
            approvals: crate::engine::ApprovalsConfig::default(),
        }
    }

    /// Defaults, then `factory.toml` at `path` when given, validated.
    pub fn load(path: Option<&Path>, env: &EnvSnapshot) -> Result<GatewayConfig, ConfigError> {
        let mut config = GatewayConfig::defaults(env);
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            config.merge_toml(&text, &path.display().to_string())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies a `factory.toml` text over this configuration.
    pub fn merge_toml(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        self.providers.extend(file.providers);
        self.aliases.extend(file.aliases);
        self.models.extend(file.models);
        if let Some(retry) = file.retry {
            self.retry = retry;
        }
        if let Some(routing) = file.routing {
            self.routing = routing;
        }
        if let Some(budgets) = file.budgets {
            self.budgets = budgets;
        }
        if let Some(engine) = file.engine {
            self.engine = engine;
        }
        if let Some(approvals) = file.approvals {
            self.approvals = approvals;
        }
        Ok(())
    }

    /// Checks the configuration as a whole; the message names the offending entry and what is
    /// accepted.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        for name in CANONICAL_ALIASES {
            if !self.aliases.contains_key(name) {
                return bad(format!(
                    "alias `{name}` is missing: every canonical alias needs a chain"
                ));
            }
        }
        for (alias, chain) in &self.aliases {
            if chain.is_empty() {
                return bad(format!(
                    "alias `{alias}` has an empty chain: list one or more `provider:model` entries"
                ));
            }
            for entry in chain {
                let (provider, model) = split_model(entry).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "alias `{alias}`: `{entry}` is not `provider:model` (e.g. `openai:gpt-4o`)"
                    ))
                })?;
                let Some(p) = self.providers.get(provider) else {
                    return bad(format!(
                        "alias `{alias}`: provider `{provider}` in `{entry}` is not configured \
                         (configured: {}){}",
                        self.providers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        missing_key_hint(provider)
                    ));
                };
                if p.kind == ProviderKind::Offline && entry != OFFLINE_MODEL {
                    return bad(format!(
                        "alias `{alias}`: the offline provider has one model, `{OFFLINE_MODEL}`, not `{model}`"
                    ));
                }
            }
        }
        for (name, p) in &self.providers {
            // OpenAI-compatible servers on a private network (vLLM, llama.cpp) often need no
            // key; Anthropic always does.
            if p.kind == ProviderKind::Anthropic && p.api_key_env.is_none() {
                return bad(format!(
                    "provider `{name}` ({:?}) needs `api_key_env`, the name of the environment \
                     variable holding its key",
                    p.kind
                ));
            }
            if let Some(url) = &p.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return bad(format!(
                    "provider `{name}`: base_url `{url}` must start with http:// or https://"
                ));
            }
        }
        for (name, m) in &self.models {
            if split_model(name).is_none() {
                return bad(format!(
                    "[models.\"{name}\"]: the key must be `provider:model`"
                ));
            }
            if !(non_negative(m.input_per_mtok) && non_negative(m.output_per_mtok)) {
                return bad(format!("[models.\"{name}\"]: prices must be zero or more"));
            }
            if m.max_concurrency == 0 || m.context_window == 0 {
                return bad(format!(
                    "[models.\"{name}\"]: max_concurrency and context_window must be at least 1"
                ));
            }
        }
        let r = &self.retry;
        if r.max_in_flight == 0 || r.timeout_secs == 0 || r.breaker_failures == 0 {
            return bad(
                "[retry]: max_in_flight, timeout_secs and breaker_failures must be at least 1"
                    .into(),
            );
        }
        if r.backoff_base_ms > r.backoff_max_ms {
            return bad("[retry]: backoff_base_ms must not exceed backoff_max_ms".into());
        }
        let rt = &self.routing;
        if !(0.0..=1.0).contains(&rt.threshold) {
            return bad(format!(
                "[routing]: threshold {} must be between 0 and 1",
                rt.threshold
            ));
        }
        if rt.divisor <= 0.0 || rt.files_cap == 0 {
            return bad("[routing]: divisor and files_cap must be greater than 0".into());
        }
        if [rt.weight_files, rt.weight_risk, rt.weight_criteria]
            .iter()
            .any(|w| *w < 0.0)
        {
            return bad("[routing]: weights must be zero or more".into());
        }
        for alias in [&rt.cheap_alias, &rt.strong_alias] {
            if !self.aliases.contains_key(alias) {
                return bad(format!(
                    "[routing]: alias `{alias}` is not defined in [aliases]"
                ));
            }
        }
        self.budgets.validate()?;
        self.engine.validate().map_err(ConfigError::Invalid)?;
        self.approvals.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Refuses a provider whose key variable is named but not set (checked at start-up, so the
    /// problem shows before the first call rather than as a 401 during a run).
    pub fn check_keys(&self, is_set: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        for (name, p) in &self.providers {
            if let Some(var) = &p.api_key_env
                && !is_set(var)
            {
                return Err(ConfigError::Invalid(format!(
                    "provider `{name}` reads its API key from {var}, which is not set: export \
                     {var}, or remove the provider (and its chain entries) from factory.toml"
                )));
            }
        }
        Ok(())
    }

    /// Price and limits of a `provider:model`: configured, else $0 with defaults (local,
    /// offline, and models a custom server names itself).
    pub fn model(&self, name: &str) -> ModelConfig {
        self.models.get(name).cloned().unwrap_or(ModelConfig {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
            max_concurrency: default_model_concurrency(),
            context_window: default_context_window(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(openai: bool, anthropic: bool, base: Option<&str>) -> EnvSnapshot {
        EnvSnapshot {
            openai_key: openai,
            openai_base_url: base.map(String::from),
            anthropic_key: anthropic,
            ..EnvSnapshot::default()
        }
    }

    #[test]
    fn with_no_keys_every_alias_falls_back_to_local_then_offline() {
        let c = GatewayConfig::load(None, &env(false, false, None)).unwrap();
        assert_eq!(
            c.aliases["factory/architect"],
            ["ollama:auto", "offline:template"]
        );
        assert!(!c.providers.contains_key("openai"));
    }

    #[test]
    fn cloud_comes_first_when_keys_are_set() {
        let c = GatewayConfig::load(None, &env(true, true, None)).unwrap();
        assert_eq!(
            c.aliases["factory/architect"],
            [
                "anthropic:claude-sonnet-4-5",
                "openai:gpt-4o",
                "ollama:auto",
                "offline:template"
            ]
        );
        assert_eq!(c.aliases["factory/cheap"][0], "openai:gpt-4o-mini");
        assert_eq!(c.model("openai:gpt-4o-mini").input_per_mtok, 0.15);
    }

    #[test]
    fn only_a_custom_base_url_points_every_alias_at_that_server() {
        let c =
            GatewayConfig::load(None, &env(true, false, Some("http://127.0.0.1:8000/v1"))).unwrap();
        for alias in [
            "factory/architect",
            "factory/coder",
            "factory/fast",
            "factory/cheap",
        ] {
            assert_eq!(c.aliases[alias][0], "openai:auto", "{alias}");
        }
        assert_eq!(
            c.providers["openai"].base_url.as_deref(),
            Some("http://127.0.0.1:8000/v1")
        );
    }

    #[test]
    fn the_file_overrides_what_it_names() {
        let mut c = GatewayConfig::defaults(&env(true, false, None));
        c.merge_toml(
            r#"
            [aliases]
            "factory/fast" = ["openai:gpt-4o-mini", "offline:template"]
            [models."openai:gpt-4o-mini"]
            input_per_mtok = 0.2
            output_per_mtok = 0.8
            max_concurrency = 8
            [budgets.run]
            hard = 5.0
            "#,
            "factory.toml",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.aliases["factory/fast"],
            ["openai:gpt-4o-mini", "offline:template"]
        );
        assert_eq!(c.model("openai:gpt-4o-mini").max_concurrency, 8);
        assert_eq!(c.budgets.run.hard, Some(5.0));
        assert_eq!(
            c.budgets.month.hard,
            Some(50.0),
            "unnamed fields keep their defaults"
        );
    }

    fn invalid(toml_text: &str) -> String {
        let mut c = GatewayConfig::defaults(&env(false, false, None));
        match c.merge_toml(toml_text, "factory.toml") {
            Err(e) => e.to_string(),
            Ok(()) => c.validate().expect_err("should be refused").to_string(),
        }
    }

    #[test]
    fn bad_files_are_refused_with_what_is_accepted() {
        let cases = [
            ("[aliasses]\nx = []", "unknown field `aliasses`"),
            ("[aliases]\n\"factory/fast\" = []", "empty chain"),
            (
                "[aliases]\n\"factory/fast\" = [\"gpt-4o\"]",
                "is not `provider:model`",
            ),
            (
                "[aliases]\n\"factory/fast\" = [\"openai:gpt-4o\"]",
                "set OPENAI_API_KEY",
            ),
            (
                "[aliases]\n\"factory/fast\" = [\"offline:gpt\"]",
                "one model",
            ),
            ("[providers.x]\nkind = \"grpc\"", "unknown variant `grpc`"),
            ("[providers.x]\nkind = \"anthropic\"", "needs `api_key_env`"),
            (
                "[providers.x]\nkind = \"ollama\"\nbase_url = \"localhost:1\"",
                "must start with http",
            ),
            ("[routing]\nthreshold = 2.0", "between 0 and 1"),
            (
                "[routing]\ncheap_alias = \"nope\"",
                "alias `nope` is not defined",
            ),
            (
                "[budgets.month]\nsoft = 60.0\nhard = 50.0",
                "[budgets.month]: need soft ≤ hard ≤ emergency",
            ),
            (
                "[budgets.teams.qa-engineering]\nhard = -1.0",
                "[budgets.teams.qa-engineering]: limits must be zero or more",
            ),
            (
                "[budgets]\nmonthly_hard = 5.0",
                "unknown field `monthly_hard`",
            ),
            ("[retry]\nmax_in_flight = 0", "at least 1"),
            (
                "[models.\"openai:x\"]\ninput_per_mtok = -1.0",
                "zero or more",
            ),
            ("not toml at all", "factory.toml is not valid"),
        ];
        for (text, needle) in cases {
            let message = invalid(text);
            assert!(
                message.contains(needle),
                "{text:?}: {message:?} should mention {needle:?}"
            );
        }
    }

    #[test]
    fn a_named_but_unset_key_is_refused_at_start_up() {
        let c = GatewayConfig::defaults(&env(true, false, None));
        let err = c.check_keys(|_| false).unwrap_err().to_string();
        assert!(err.contains("OPENAI_API_KEY, which is not set"), "{err}");
        assert!(c.check_keys(|_| true).is_ok());
    }

    #[test]
    fn ollama_host_without_a_scheme_is_accepted() {
        let e = EnvSnapshot {
            ollama_host: Some("10.0.0.5:11434".into()),
            ..EnvSnapshot::default()
        };
        let c = GatewayConfig::load(None, &e).unwrap();
        assert_eq!(
            c.providers["ollama"].base_url.as_deref(),
            Some("http://10.0.0.5:11434")
        );
    }

    #[test]
    fn ollama_model_names_keep_their_colons() {
        assert_eq!(
            split_model("ollama:qwen2.5-coder:14b"),
            Some(("ollama", "qwen2.5-coder:14b"))
        );
        assert_eq!(split_model(":x"), None);
        assert_eq!(split_model("x:"), None);
    }
}
