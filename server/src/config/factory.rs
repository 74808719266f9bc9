//! `factory.toml` as a whole: defaults derived from the environment, the file's sections over
//! them, validated together at start-up so a bad file fails with one clear message before any
//! model is called. Each part goes to its owner: the gateway sees only [`GatewayConfig`], the
//! engine only [`EngineConfig`] and [`ApprovalsConfig`], webhook delivery only
//! [`WebhookConfig`]s.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EnvSnapshot;
use super::engine::{ApprovalsConfig, EngineConfig};
use super::gateway::{
    BudgetConfig, GatewayConfig, ModelConfig, ProviderConfig, RetryConfig, RoutingConfig,
};
use super::webhooks::WebhookConfig;

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

/// The whole configuration after defaults and `factory.toml` are merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactoryConfig {
    /// Providers, aliases, models, retry, routing and budgets.
    pub gateway: GatewayConfig,
    /// The engine's limits (`[engine]`).
    pub engine: EngineConfig,
    /// Clarification limits and approval policies (`[approvals]`).
    pub approvals: ApprovalsConfig,
    /// Where committed events are POSTed, signed (`[[webhooks]]`); none by default.
    pub webhooks: Vec<WebhookConfig>,
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
    engine: Option<EngineConfig>,
    #[serde(default)]
    approvals: Option<ApprovalsConfig>,
    #[serde(default)]
    webhooks: Option<Vec<WebhookConfig>>,
}

impl FactoryConfig {
    /// Defaults for this environment: cloud models first when a key is set, then local Ollama
    /// models, then the offline provider; the engine's and approvals' defaults.
    pub fn defaults(env: &EnvSnapshot) -> FactoryConfig {
        FactoryConfig {
            gateway: GatewayConfig::defaults(env),
            engine: EngineConfig::default(),
            approvals: ApprovalsConfig::default(),
            webhooks: Vec::new(),
        }
    }

    /// Defaults, then `factory.toml` at `path` when given, validated.
    pub fn load(path: Option<&Path>, env: &EnvSnapshot) -> Result<FactoryConfig, ConfigError> {
        let mut config = FactoryConfig::defaults(env);
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
        let gateway = &mut self.gateway;
        gateway.providers.extend(file.providers);
        gateway.aliases.extend(file.aliases);
        gateway.models.extend(file.models);
        if let Some(retry) = file.retry {
            gateway.retry = retry;
        }
        if let Some(routing) = file.routing {
            gateway.routing = routing;
        }
        if let Some(budgets) = file.budgets {
            gateway.budgets = budgets;
        }
        if let Some(engine) = file.engine {
            self.engine = engine;
        }
        if let Some(approvals) = file.approvals {
            self.approvals = approvals;
        }
        if let Some(webhooks) = file.webhooks {
            self.webhooks = webhooks;
        }
        Ok(())
    }

    /// Checks every section; the message names the offending entry and what is accepted.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.gateway.validate()?;
        self.engine.validate().map_err(ConfigError::Invalid)?;
        self.approvals.validate().map_err(ConfigError::Invalid)?;
        super::webhooks::validate(&self.webhooks)
    }
}

#[cfg(test)]
mod tests;
