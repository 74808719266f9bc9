//! The Settings area: what the Settings page and `GET /api/settings` show (aliases and their
//! chains, provider status, budgets, routing and where each comes from), the bodies that change
//! budgets and routing, and the port through which the server answers. Providers and alias
//! chains (added, edited, removed, tested) are in [`providers`].
//!
//! No secret ever travels back here: a provider says where its key comes from and, for a key
//! typed into the dashboard, its last four characters — never the key.

mod providers;

pub use providers::*;

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::PortError;

/// Section name of budget changes (the `section` of a `settings_changed` event).
pub const BUDGETS: &str = "budgets";
/// Section name of routing changes.
pub const ROUTING: &str = "routing";
/// Section name of provider and alias-chain changes (an overlay over `factory.toml`).
pub const PROVIDERS: &str = "providers";

/// Everything the Settings page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    /// Every alias with its fallback chain, tried in order.
    pub aliases: Vec<AliasChain>,
    /// Every configured provider and whether it can be used.
    pub providers: Vec<ProviderStatus>,
    /// The budget limits in force.
    pub budgets: BudgetSettings,
    /// Where the budget limits come from.
    pub budgets_source: SectionSource,
    /// The editable part of the router in force.
    pub routing: RoutingSettings,
    /// Where the routing settings come from.
    pub routing_source: SectionSource,
    /// Where the providers and chains set from the dashboard or the CLI come from.
    pub providers_source: SectionSource,
    /// The aliases whose chains may be edited here (the canonical ones).
    pub editable_aliases: Vec<String>,
}

/// One alias and the `provider:model` entries it tries, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasChain {
    pub alias: String,
    pub chain: Vec<String>,
}

/// A provider as an operator needs to see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: String,
    /// The wire format: `openai`, `anthropic`, `ollama` or `offline`.
    pub kind: String,
    /// How the kind is shown ("OpenAI-compatible", "offline (no model): …").
    pub label: String,
    pub base_url: Option<String>,
    /// The environment variable the key is read from (`None`: no key needed).
    pub api_key_env: Option<String>,
    /// Whether a key is there (the variable set, or one stored in the secrets file). The
    /// value itself is never read into any view.
    pub key_set: bool,
    /// Where the key comes from, for people: `key set, ends in …1234`, `key from $VAR`,
    /// `key missing: …`, `no key needed`.
    pub key_status: String,
    /// For Ollama: whether it answered and the models it serves.
    pub ollama: Option<OllamaStatus>,
    /// The model the provider was added with (what Test calls), when one is known.
    pub model: Option<String>,
    /// `provider:model` that Test calls (`None` for the offline provider's own row).
    pub test_target: Option<String>,
    /// Set from the dashboard or the CLI (editable and removable there), not from the file.
    pub overlay: bool,
}

/// What a probe of an Ollama server found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OllamaStatus {
    pub reachable: bool,
    pub models: Vec<String>,
}

/// One scope's limits in USD; `None` is no limit. Soft ≤ hard ≤ emergency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    #[serde(default)]
    pub soft: Option<f64>,
    #[serde(default)]
    pub hard: Option<f64>,
    #[serde(default)]
    pub emergency: Option<f64>,
}

/// Every budget scope's limits: the month, each run, every team and project by default, and
/// per-name overrides. A change replaces the whole section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    pub month: TierLimits,
    pub run: TierLimits,
    pub team: TierLimits,
    pub project: TierLimits,
    #[serde(default)]
    pub teams: BTreeMap<String, TierLimits>,
    #[serde(default)]
    pub projects: BTreeMap<String, TierLimits>,
}

/// The router's editable settings (weights and divisor stay in `factory.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// Below this complexity (0–1) the cheap alias is used.
    pub threshold: f64,
    /// This many files in scope or more count as "many" (at least 1).
    pub files_cap: u32,
    pub cheap_alias: String,
    pub strong_alias: String,
    /// Words that force the strong alias.
    pub hard_stop_keywords: Vec<String>,
}

/// Where a section's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionSource {
    /// `factory.toml/defaults`, or `dashboard (event #12 by api at 2026-11-22T05:00:00.000Z)`.
    pub label: String,
    /// The `settings_changed` event in force, when there is one.
    pub event_seq: Option<i64>,
}

/// A change that was applied and recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// `budgets` or `routing`.
    pub section: String,
    /// The `settings_changed` event that recorded it.
    pub event_seq: i64,
    pub ts: String,
    pub changed_by: String,
    /// The section's source from now on.
    pub source: SectionSource,
}

/// What the Settings server functions may ask of the server.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait SettingsPort: Send + Sync + 'static {
    /// The settings in force, with provider status (Ollama is probed).
    async fn settings(&self) -> Result<SettingsView, PortError>;
    /// Validates, records and applies new budgets; refused with a message naming the field.
    async fn update_budgets(&self, budgets: BudgetSettings) -> Result<Saved, PortError>;
    /// Validates, records and applies new routing settings.
    async fn update_routing(&self, routing: RoutingSettings) -> Result<Saved, PortError>;
    /// Adds a provider (`adding`) or replaces one set before; its key goes to the secrets file.
    async fn save_provider(
        &self,
        provider: ProviderInput,
        adding: bool,
    ) -> Result<Saved, PortError>;
    /// Removes a provider (and its entries from every chain).
    async fn remove_provider(&self, name: String) -> Result<Saved, PortError>;
    /// Sets the chains of canonical aliases.
    async fn update_aliases(&self, aliases: AliasSettings) -> Result<Saved, PortError>;
    /// One tiny call to the provider's model through the gateway.
    async fn test_provider(&self, name: String) -> Result<ProviderTest, PortError>;
}

/// The Settings page's data.
#[server(prefix = "/api", endpoint = "get_settings")]
pub async fn get_settings() -> Result<SettingsView, ServerFnError> {
    super::port::<dyn SettingsPort>()?
        .settings()
        .await
        .map_err(super::refused)
}

/// Replaces the budget limits (applied to the next call, recorded as an event).
#[server(prefix = "/api", endpoint = "update_budgets", input = Json)]
pub async fn update_budgets(budgets: BudgetSettings) -> Result<Saved, ServerFnError> {
    super::port::<dyn SettingsPort>()?
        .update_budgets(budgets)
        .await
        .map_err(super::refused)
}

/// Replaces the routing settings (applied to the next decision, recorded as an event).
#[server(prefix = "/api", endpoint = "update_routing", input = Json)]
pub async fn update_routing(routing: RoutingSettings) -> Result<Saved, ServerFnError> {
    super::port::<dyn SettingsPort>()?
        .update_routing(routing)
        .await
        .map_err(super::refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_refuse_unknown_fields_and_default_missing_tiers() {
        let err = serde_json::from_str::<RoutingSettings>(
            r#"{"threshold":0.5,"files_cap":3,"cheap_alias":"a","strong_alias":"b","hard_stop_keywords":[],"colour":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
        let b: BudgetSettings =
            serde_json::from_str(r#"{"month":{"hard":50.0},"run":{},"team":{},"project":{}}"#)
                .unwrap();
        assert_eq!(b.month.hard, Some(50.0));
        assert_eq!(b.month.soft, None);
        assert!(b.teams.is_empty());
    }
}
