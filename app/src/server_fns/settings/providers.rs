//! Providers and alias chains set from the dashboard: the bodies that add, edit and remove a
//! provider and set the chains of the canonical aliases, what a provider's Test shows, and the
//! server functions behind the Settings page's editors.
//!
//! A key typed here travels once, to the server, as a [`KeyText`] whose `Debug` never shows it;
//! nothing the server sends back ever holds it.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use super::Saved;
#[cfg(feature = "ssr")]
use super::SettingsPort;

/// A key as typed. `Debug` shows only that there is one, so a logged request never holds it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(<redacted>)")
    }
}

/// A provider as a person adds or edits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// `[a-z0-9-]{1,32}`.
    pub name: String,
    /// `openai`, `anthropic` or `ollama`.
    pub kind: String,
    /// `http(s)://…`; empty or absent for the kind's default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The model its chains use and Test calls (`auto`: the first the server lists).
    pub model: String,
    /// A key to keep in the data directory's secrets file (never recorded, never shown back).
    /// Absent when editing: the key stays as it was.
    #[serde(default)]
    pub api_key: Option<KeyText>,
    /// Or the environment variable that holds the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Make this model the whole chain of every canonical chat alias.
    #[serde(default)]
    pub every_alias: bool,
    /// Or of these aliases only.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Also make `local/embed` this embedding model (`openai` and `ollama` only).
    #[serde(default)]
    pub embed_model: Option<String>,
}

/// New chains for some canonical aliases, each an ordered list of `provider:model`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSettings {
    pub chains: BTreeMap<String, Vec<String>>,
}

/// One capability in force for a model, with where its value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityLine {
    /// `temperature`, `reasoning_effort`, `context_window`, `tools`, `structured_output`,
    /// `max_completion_tokens`.
    pub name: String,
    /// As people read it, e.g. `128000 tokens`, `yes`, `not sent`.
    pub value: String,
    /// `factory.toml` when `[models."…"]` sets it, else `family default`.
    pub from: String,
}

/// What a provider's Test found: who answered (or why nothing did), how fast, how many tokens,
/// and what the model accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderTest {
    /// The `provider:model` called.
    pub target: String,
    /// `provider:model`, or `offline (no model): deterministic template, not an LLM`.
    pub answered_by: Option<String>,
    /// The reply's first characters.
    pub reply: Option<String>,
    /// The provider's own error text when nothing answered (never a key).
    pub error: Option<String>,
    pub latency_ms: u64,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    /// Each attempt: `provider:model (outcome)`.
    pub path: Vec<String>,
    /// The capabilities in force for the model answering (or called).
    pub capabilities: Vec<CapabilityLine>,
}

/// Adds a provider (refused when one of that name is already set from here or the file).
#[server(prefix = "/api", endpoint = "add_provider", input = Json)]
pub async fn add_provider(provider: ProviderInput) -> Result<Saved, ServerFnError> {
    super::super::port::<dyn SettingsPort>()?
        .save_provider(provider, true)
        .await
        .map_err(super::super::refused)
}

/// Replaces a provider's settings; a key left out stays as it was.
#[server(prefix = "/api", endpoint = "edit_provider", input = Json)]
pub async fn edit_provider(provider: ProviderInput) -> Result<Saved, ServerFnError> {
    super::super::port::<dyn SettingsPort>()?
        .save_provider(provider, false)
        .await
        .map_err(super::super::refused)
}

/// Removes a provider, its stored key and its entries in every chain.
#[server(prefix = "/api", endpoint = "remove_provider", input = Json)]
pub async fn remove_provider(name: String) -> Result<Saved, ServerFnError> {
    super::super::port::<dyn SettingsPort>()?
        .remove_provider(name)
        .await
        .map_err(super::super::refused)
}

/// Sets the chains of canonical aliases.
#[server(prefix = "/api", endpoint = "update_aliases", input = Json)]
pub async fn update_aliases(aliases: AliasSettings) -> Result<Saved, ServerFnError> {
    super::super::port::<dyn SettingsPort>()?
        .update_aliases(aliases)
        .await
        .map_err(super::super::refused)
}

/// Sends one tiny prompt to the provider's model through the gateway.
#[server(prefix = "/api", endpoint = "test_provider", input = Json)]
pub async fn test_provider(name: String) -> Result<ProviderTest, ServerFnError> {
    super::super::port::<dyn SettingsPort>()?
        .test_provider(name)
        .await
        .map_err(super::super::refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_key_never_shows_in_debug_and_bodies_refuse_unknown_fields() {
        let input: ProviderInput = serde_json::from_str(
            r#"{"name":"acme","kind":"openai","model":"m","api_key":"sk-secret-value-1234"}"#,
        )
        .unwrap();
        assert!(!format!("{input:?}").contains("sk-secret"));
        assert!(!input.every_alias && input.aliases.is_empty());
        let err = serde_json::from_str::<ProviderInput>(
            r#"{"name":"a","kind":"openai","model":"m","key":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `key`"), "{err}");
    }
}
