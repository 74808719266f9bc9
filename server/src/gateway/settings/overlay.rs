//! The providers and alias chains a person set from the dashboard or the CLI: an overlay over
//! `factory.toml`, applied by name. Only what a person set (and the providers they removed) is
//! in it, so a provider or chain of the file that nobody touched keeps following the file.
//!
//! The overlay is what a `settings_changed` event of the `providers` section records as
//! `before` and `after`. It never holds a key: a key typed in is in the secrets file, and the
//! overlay says only `"key": "stored"` — or `"key": "changed"` in the change that set it.

use std::collections::{BTreeMap, BTreeSet};

use app::server_fns::settings::ProviderInput;
use serde::{Deserialize, Serialize};

use super::SettingsError;
use crate::config::gateway::{
    CANONICAL_ALIASES, GatewayConfig, OFFLINE_MODEL, ProviderConfig, ProviderKind, split_model,
};
use crate::gateway::secrets::Secret;

/// Most providers that may be set from here.
const MAX_PROVIDERS: usize = 32;
/// Most entries in one chain.
const MAX_CHAIN: usize = 16;
/// Longest model name and base URL accepted.
const MAX_MODEL_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2048;

/// The alias that holds embedding models, left alone unless a person asks.
const EMBED_ALIAS: &str = "local/embed";

/// Where a provider set from here gets its key. Never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRecord {
    /// No key (a local server).
    None,
    /// The environment variable holding it.
    Env(String),
    /// In the secrets file.
    Stored,
    /// In the secrets file, put there by this very change (only in an event's `after`).
    Changed,
}

/// One provider set from the dashboard or the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayProvider {
    pub kind: ProviderKind,
    #[serde(default)]
    pub base_url: Option<String>,
    /// The model it was added with: what Test calls.
    pub model: String,
    pub key: KeyRecord,
}

/// Everything set from the dashboard or the CLI about providers and chains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOverlay {
    /// Providers added or edited, by name (an edited provider of the file replaces it whole).
    #[serde(default)]
    pub providers: BTreeMap<String, OverlayProvider>,
    /// Providers of the file a person removed.
    #[serde(default)]
    pub removed: BTreeSet<String>,
    /// Chains a person set, by alias.
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
}

impl ModelOverlay {
    /// `config` with `base`'s providers and chains and this overlay over them (routing,
    /// budgets, models and retry stay `config`'s), checked as `factory.toml` is checked.
    pub fn apply(
        &self,
        base: &GatewayConfig,
        config: &mut GatewayConfig,
    ) -> Result<(), SettingsError> {
        config.providers = base.providers.clone();
        config.aliases = base.aliases.clone();
        for name in &self.removed {
            config.providers.remove(name);
        }
        for (name, p) in &self.providers {
            config.providers.insert(
                name.clone(),
                ProviderConfig {
                    kind: p.kind,
                    base_url: p.base_url.clone(),
                    api_key_env: match &p.key {
                        KeyRecord::Env(var) => Some(var.clone()),
                        _ => None,
                    },
                    key_stored: matches!(p.key, KeyRecord::Stored | KeyRecord::Changed),
                },
            );
        }
        config.aliases.extend(self.aliases.clone());
        config
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))
    }

    /// The overlay as kept between changes: a key set by the change that recorded it is
    /// simply stored from then on.
    pub fn settled(mut self) -> ModelOverlay {
        for p in self.providers.values_mut() {
            if p.key == KeyRecord::Changed {
                p.key = KeyRecord::Stored;
            }
        }
        self
    }

    /// Adds (`adding`) or replaces provider `input.name`. `in_force` is the configuration in
    /// force, `base` the file's. Returns the key to store, if one was typed.
    pub fn save(
        &mut self,
        input: &ProviderInput,
        adding: bool,
        in_force: &GatewayConfig,
        base: &GatewayConfig,
    ) -> Result<Option<Secret>, SettingsError> {
        let name = input.name.trim();
        check_name(name)?;
        let exists = in_force.providers.get(name);
        match (adding, exists) {
            (true, Some(_)) => {
                return invalid(format!(
                    "name: a provider `{name}` already exists: edit it, or choose another name"
                ));
            }
            (false, None) => {
                return invalid(format!("name: there is no provider `{name}` to edit"));
            }
            _ => {}
        }
        if exists.is_some_and(|p| p.kind == ProviderKind::Offline) {
            return invalid(offline_is_built_in());
        }
        if adding && self.providers.len() >= MAX_PROVIDERS {
            return invalid(format!(
                "at most {MAX_PROVIDERS} providers can be set from the dashboard or the CLI"
            ));
        }
        let kind = kind(&input.kind)?;
        let base_url = base_url(input.base_url.as_deref())?;
        let model = model_name("model", &input.model)?;
        let (key, typed) = self.key(name, input, kind, exists)?;
        let entry = format!("{name}:{model}");
        let mut chains = BTreeMap::new();
        if input.every_alias && !input.aliases.is_empty() {
            return invalid(
                "every_alias, aliases: use the model for every alias or name the aliases, not both"
                    .into(),
            );
        }
        let chat = CANONICAL_ALIASES.iter().filter(|a| **a != EMBED_ALIAS);
        let wanted: Vec<&str> = if input.every_alias {
            chat.copied().collect()
        } else {
            input.aliases.iter().map(|a| a.trim()).collect()
        };
        for alias in wanted {
            if alias == EMBED_ALIAS || !CANONICAL_ALIASES.contains(&alias) {
                return invalid(format!(
                    "aliases: `{alias}` cannot be pointed at a chat model (accepted: {}; \
                     `{EMBED_ALIAS}` takes embed_model)",
                    CANONICAL_ALIASES
                        .iter()
                        .filter(|a| **a != EMBED_ALIAS)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            chains.insert(alias.to_string(), vec![entry.clone()]);
        }
        if let Some(embed) = input
            .embed_model
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            if kind == ProviderKind::Anthropic {
                return invalid(
                    "embed_model: Anthropic has no embedding models (accepted for openai and ollama)"
                        .into(),
                );
            }
            let embed = model_name("embed_model", embed)?;
            chains.insert(EMBED_ALIAS.to_string(), vec![format!("{name}:{embed}")]);
        }
        self.removed.remove(name);
        self.providers.insert(
            name.to_string(),
            OverlayProvider {
                kind,
                base_url,
                model,
                key,
            },
        );
        for (alias, chain) in chains {
            self.set_chain(&alias, chain, base);
        }
        Ok(typed)
    }

    /// The key record of a saved provider: a typed key (stored), a variable, or — when
    /// editing without either — the key it had.
    fn key(
        &self,
        name: &str,
        input: &ProviderInput,
        kind: ProviderKind,
        exists: Option<&ProviderConfig>,
    ) -> Result<(KeyRecord, Option<Secret>), SettingsError> {
        let typed = input.api_key.as_ref().filter(|k| !k.0.trim().is_empty());
        let var = input
            .api_key_env
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let (record, secret) = match (typed, var) {
            (Some(_), Some(_)) => {
                return invalid(
                    "api_key, api_key_env: give the key or the variable holding it, not both"
                        .into(),
                );
            }
            (Some(key), None) => {
                let secret = Secret::new(&key.0).map_err(SettingsError::Invalid)?;
                (KeyRecord::Changed, Some(secret))
            }
            (None, Some(var)) => {
                check_var(var)?;
                (KeyRecord::Env(var.to_string()), None)
            }
            (None, None) => {
                let kept = self.providers.get(name).map(|p| p.key.clone());
                let from_file = exists
                    .and_then(|p| p.api_key_env.clone())
                    .map(KeyRecord::Env);
                (kept.or(from_file).unwrap_or(KeyRecord::None), None)
            }
        };
        if kind == ProviderKind::Ollama && record != KeyRecord::None {
            return invalid("api_key: an Ollama server takes no key (leave it empty)".into());
        }
        if kind == ProviderKind::Anthropic && record == KeyRecord::None {
            return invalid(
                "api_key: an Anthropic provider needs a key (or api_key_env, the variable \
                 holding it)"
                    .into(),
            );
        }
        Ok((record, secret))
    }

    /// Removes provider `name` and its entries from every chain. A chain left empty goes back
    /// to the file's (refused when that one names the provider too). A refusal changes
    /// nothing.
    pub fn remove(
        &mut self,
        name: &str,
        in_force: &GatewayConfig,
        base: &GatewayConfig,
    ) -> Result<(), SettingsError> {
        let Some(p) = in_force.providers.get(name) else {
            return invalid(format!("there is no provider `{name}` to remove"));
        };
        if p.kind == ProviderKind::Offline {
            return invalid(offline_is_built_in());
        }
        let mut next = self.clone();
        next.providers.remove(name);
        if base.providers.contains_key(name) {
            next.removed.insert(name.to_string());
        }
        let uses = |entry: &String| split_model(entry).is_some_and(|(p, _)| p == name);
        for (alias, chain) in &in_force.aliases {
            if !chain.iter().any(uses) {
                continue;
            }
            let mut left: Vec<String> = chain.iter().filter(|e| !uses(e)).cloned().collect();
            if left.is_empty() {
                match base.aliases.get(alias) {
                    Some(file) if !file.iter().any(uses) => left = file.clone(),
                    _ => {
                        return invalid(format!(
                            "alias `{alias}` would have no model left: give it another chain \
                             before removing `{name}`"
                        ));
                    }
                }
            }
            next.set_chain(alias, left, base);
        }
        *self = next;
        Ok(())
    }

    /// Sets the chains of canonical aliases (checked as a whole by [`ModelOverlay::apply`]); a
    /// refusal changes nothing.
    pub fn set_chains(
        &mut self,
        chains: &BTreeMap<String, Vec<String>>,
        base: &GatewayConfig,
    ) -> Result<(), SettingsError> {
        if chains.is_empty() {
            return invalid("chains: give the chain of at least one alias".into());
        }
        let mut next = self.clone();
        for (alias, chain) in chains {
            if !CANONICAL_ALIASES.contains(&alias.as_str()) {
                return invalid(format!(
                    "chains: `{alias}` is not an alias set here (accepted: {})",
                    CANONICAL_ALIASES.join(", ")
                ));
            }
            let chain: Vec<String> = chain
                .iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            if chain.is_empty() || chain.len() > MAX_CHAIN {
                return invalid(format!(
                    "chains.{alias}: give 1 to {MAX_CHAIN} `provider:model` entries, tried in order"
                ));
            }
            for entry in &chain {
                let model = split_model(entry).map(|(_, m)| m).unwrap_or_default();
                if entry.chars().count() > MAX_MODEL_CHARS + 33 || !plain(model) {
                    return invalid(format!(
                        "chains.{alias}: `{entry}` is not `provider:model` (e.g. `openai:gpt-4o`)"
                    ));
                }
            }
            next.set_chain(alias, chain, base);
        }
        *self = next;
        Ok(())
    }

    /// Sets one chain; a chain equal to the file's is the file's again (not kept here).
    fn set_chain(&mut self, alias: &str, chain: Vec<String>, base: &GatewayConfig) {
        if base.aliases.get(alias) == Some(&chain) {
            self.aliases.remove(alias);
        } else {
            self.aliases.insert(alias.to_string(), chain);
        }
    }
}

fn invalid<T>(message: String) -> Result<T, SettingsError> {
    Err(SettingsError::Invalid(message))
}

fn offline_is_built_in() -> String {
    format!(
        "the offline provider is built in and cannot be edited or removed: to keep its \
         templates from answering, leave `{OFFLINE_MODEL}` out of the chains"
    )
}

/// `[a-z0-9-]{1,32}`, not starting with `-`.
fn check_name(name: &str) -> Result<(), SettingsError> {
    let ok = (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "name: `{}` is not a provider name (accepted: 1 to 32 lowercase letters, digits and \
             `-`, e.g. `acme` or `local-vllm`)",
            name.chars().take(40).collect::<String>()
        ))
    }
}

fn kind(text: &str) -> Result<ProviderKind, SettingsError> {
    match text.trim() {
        "openai" => Ok(ProviderKind::Openai),
        "anthropic" => Ok(ProviderKind::Anthropic),
        "ollama" => Ok(ProviderKind::Ollama),
        other => invalid(format!(
            "kind: `{}` is not a provider kind (accepted: openai, anthropic, ollama)",
            other.chars().take(40).collect::<String>()
        )),
    }
}

/// An `http(s)` URL with a host and no user or password in it (a key goes in `api_key`).
fn base_url(text: Option<&str>) -> Result<Option<String>, SettingsError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let refused = || {
        invalid(format!(
            "base_url: `{}` is not an http:// or https:// address with a host (e.g. \
             `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`), up to {MAX_URL_CHARS} characters",
            text.chars().take(80).collect::<String>()
        ))
    };
    if text.len() > MAX_URL_CHARS {
        return refused();
    }
    let Ok(url) = reqwest::Url::parse(text) else {
        return refused();
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return refused();
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid(
            "base_url: an address may not carry a user or password: give the key in api_key".into(),
        );
    }
    Ok(Some(text.trim_end_matches('/').to_string()))
}

/// A model name: visible characters, no spaces.
fn plain(model: &str) -> bool {
    !model.is_empty()
        && model.chars().count() <= MAX_MODEL_CHARS
        && model.chars().all(|c| c.is_ascii_graphic())
}

fn model_name(field: &str, text: &str) -> Result<String, SettingsError> {
    let model = text.trim();
    if plain(model) {
        Ok(model.to_string())
    } else {
        invalid(format!(
            "{field}: give the model's name as the provider spells it (1 to {MAX_MODEL_CHARS} \
             visible characters, no spaces; `auto` takes the first model the server lists)"
        ))
    }
}

/// An environment variable's name: `[A-Za-z_][A-Za-z0-9_]{0,127}`.
fn check_var(var: &str) -> Result<(), SettingsError> {
    let ok = var.len() <= 128
        && var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        invalid(
            "api_key_env: give the name of an environment variable (letters, digits and `_`, \
             e.g. `OPENAI_API_KEY`), not the key"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests;
