//! Live settings: budgets, routing, providers and alias chains changed from the dashboard, the
//! API or the CLI while Factory runs.
//!
//! A change is checked by the same rules as `factory.toml` ([`GatewayConfig::validate`]),
//! recorded as a `settings_changed` event with the section's values before and after, and only
//! then applied, so the next call uses it and a refused or unrecorded change leaves nothing
//! behind. At start-up [`replay`] applies the newest change of each section over `factory.toml`
//! again: what a person set survives a restart, and the file still supplies everything else.
//! While the server runs, [`watch`] applies changes another process (the CLI) recorded.

mod overlay;
mod probe;
mod providers;
mod replay;
mod view;

pub use overlay::{KeyRecord, ModelOverlay, OverlayProvider};
pub use probe::{OFFLINE_ANSWER, capabilities, probe, test_provider, test_target};
pub use providers::{remove_provider, save_provider, update_aliases};
pub use replay::{catch_up, replay, watch};
pub use view::{OllamaProbes, view};

use std::collections::BTreeMap;

use app::events::{Event, EventData};
use app::server_fns::settings::{
    BUDGETS, BudgetSettings, PROVIDERS, ROUTING, RoutingSettings, Saved, SectionSource,
};

use super::Gateway;
use super::client::Models;
use super::secrets::{SecretsError, SecretsFile};
use crate::config::gateway::{GatewayConfig, RoutingConfig};
use crate::store::{NewEvent, Store, StoreError};

/// Why a change was refused or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The input was refused; the message names the field and what is accepted.
    #[error("{0}")]
    Invalid(String),
    /// No such provider (or test target); the message names it.
    #[error("{0}")]
    Unknown(String),
    /// The secrets file cannot be used (others may read it, or it cannot be written).
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The secrets file of the data directory `store` lives in.
pub fn secrets_of(store: &Store) -> SecretsFile {
    SecretsFile::in_dir(store.path().parent().unwrap_or(std::path::Path::new(".")))
}

/// The source of a section nobody has changed while Factory runs.
pub const FROM_FILE: &str = "factory.toml/defaults";

/// The `settings_changed` event a section's values come from.
#[derive(Debug, Clone)]
struct Origin {
    seq: i64,
    changed_by: String,
    ts: String,
}

impl Origin {
    fn of(event: &Event, changed_by: &str) -> Origin {
        Origin {
            seq: event.seq,
            changed_by: changed_by.to_string(),
            ts: event.ts.clone(),
        }
    }
}

/// What the settings in force were built from: where each section's values come from, the
/// providers and chains set from the dashboard or the CLI, and how far the log was read.
#[derive(Debug, Default)]
struct Applied {
    origins: BTreeMap<&'static str, Origin>,
    overlay: ModelOverlay,
    /// Every `settings_changed` event up to here has been seen by [`watch`].
    seen: i64,
}

/// The settings' state. Its lock also serialises changes, so the `before` of a change is
/// always exactly what the previous change left.
#[derive(Debug, Default)]
pub struct Provenance {
    applied: tokio::sync::Mutex<Applied>,
}

fn source(origin: Option<&Origin>) -> SectionSource {
    match origin {
        None => SectionSource {
            label: FROM_FILE.to_string(),
            event_seq: None,
        },
        Some(o) => SectionSource {
            label: format!(
                "{} (event #{} by {} at {})",
                if o.changed_by == "cli" {
                    "command line"
                } else {
                    "dashboard"
                },
                o.seq,
                o.changed_by,
                o.ts
            ),
            event_seq: Some(o.seq),
        },
    }
}

/// The settings in force and where each section comes from, read together.
pub struct InForce {
    /// The whole configuration, routing and budgets included.
    pub config: GatewayConfig,
    /// The snapshot calls use (key status per provider).
    pub models: std::sync::Arc<Models>,
    /// Providers and chains set from the dashboard or the CLI.
    pub overlay: ModelOverlay,
    pub budgets: SectionSource,
    pub routing: SectionSource,
    pub providers: SectionSource,
}

/// The settings in force, read together.
pub async fn in_force(gateway: &Gateway) -> InForce {
    let applied = gateway.settings.applied.lock().await;
    InForce {
        config: gateway.live_config(),
        models: gateway.models(),
        overlay: applied.overlay.clone(),
        budgets: source(applied.origins.get(BUDGETS)),
        routing: source(applied.origins.get(ROUTING)),
        providers: source(applied.origins.get(PROVIDERS)),
    }
}

/// A change to one section.
#[derive(Debug, Clone)]
enum Change {
    Budgets(BudgetSettings),
    Routing(RoutingSettings),
}

impl Change {
    fn section(&self) -> &'static str {
        match self {
            Change::Budgets(_) => BUDGETS,
            Change::Routing(_) => ROUTING,
        }
    }

    /// A recorded change (the `after` of a `settings_changed` event).
    fn stored(section: &str, after: &serde_json::Value) -> Result<Change, SettingsError> {
        let unreadable = |e: serde_json::Error| {
            SettingsError::Invalid(format!(
                "the recorded {section} settings cannot be read: {e}"
            ))
        };
        match section {
            BUDGETS => serde_json::from_value(after.clone())
                .map(Change::Budgets)
                .map_err(unreadable),
            ROUTING => serde_json::from_value(after.clone())
                .map(Change::Routing)
                .map_err(unreadable),
            other => Err(SettingsError::Invalid(format!(
                "unknown settings section `{other}` (known: {BUDGETS}, {ROUTING})"
            ))),
        }
    }

    /// Puts the change into `config` and checks the whole as `factory.toml` is checked.
    fn apply(&self, config: &mut GatewayConfig) -> Result<(), SettingsError> {
        match self {
            Change::Budgets(b) => {
                for (kind, names) in [("teams", &b.teams), ("projects", &b.projects)] {
                    if names.keys().any(|n| n.trim().is_empty()) {
                        return Err(SettingsError::Invalid(format!(
                            "budgets.{kind}: an override needs a non-empty name"
                        )));
                    }
                }
                config.budgets = view::budget_config(b);
            }
            Change::Routing(r) => config.routing = routing_config(config, r)?,
        }
        config
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))
    }

    /// Makes `config`'s section the one in force.
    fn install(&self, gateway: &Gateway, config: &GatewayConfig) {
        match self {
            Change::Budgets(_) => gateway.budgets().set_config(config.budgets.clone()),
            Change::Routing(_) => gateway.set_routing(config.routing.clone()),
        }
    }
}

/// The router with `r`'s fields over `config`'s (weights and divisor are kept). Aliases and
/// keywords are checked here, with the accepted values in the message.
fn routing_config(
    config: &GatewayConfig,
    r: &RoutingSettings,
) -> Result<RoutingConfig, SettingsError> {
    for (field, alias) in [
        ("cheap_alias", &r.cheap_alias),
        ("strong_alias", &r.strong_alias),
    ] {
        if !config.aliases.contains_key(alias) {
            return Err(SettingsError::Invalid(format!(
                "routing.{field}: `{alias}` is not a configured alias (configured: {})",
                config
                    .aliases
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut keywords = Vec::new();
    for word in &r.hard_stop_keywords {
        let trimmed = word.trim();
        if trimmed.is_empty() || !trimmed.chars().all(char::is_alphanumeric) {
            return Err(SettingsError::Invalid(format!(
                "routing.hard_stop_keywords: `{word}` must be one word of letters or digits \
                 (it matches words that start with it)"
            )));
        }
        keywords.push(trimmed.to_string());
    }
    Ok(RoutingConfig {
        threshold: r.threshold,
        files_cap: r.files_cap,
        cheap_alias: r.cheap_alias.clone(),
        strong_alias: r.strong_alias.clone(),
        hard_stop_keywords: keywords,
        ..config.routing.clone()
    })
}

/// A section's editable values, as `before` and `after` record them.
fn snapshot(config: &GatewayConfig, section: &str) -> serde_json::Value {
    let value = if section == BUDGETS {
        serde_json::to_value(view::budget_settings(&config.budgets))
    } else {
        serde_json::to_value(view::routing_settings(&config.routing))
    };
    value.unwrap_or(serde_json::Value::Null)
}

/// Checks, records and applies new budget limits.
pub async fn update_budgets(
    gateway: &Gateway,
    store: &Store,
    budgets: BudgetSettings,
    changed_by: &str,
) -> Result<Saved, SettingsError> {
    change(gateway, store, Change::Budgets(budgets), changed_by).await
}

/// Checks, records and applies new routing settings.
pub async fn update_routing(
    gateway: &Gateway,
    store: &Store,
    routing: RoutingSettings,
    changed_by: &str,
) -> Result<Saved, SettingsError> {
    change(gateway, store, Change::Routing(routing), changed_by).await
}

async fn change(
    gateway: &Gateway,
    store: &Store,
    change: Change,
    changed_by: &str,
) -> Result<Saved, SettingsError> {
    let mut applied = gateway.settings.applied.lock().await;
    let section = change.section();
    let mut config = gateway.live_config();
    let before = snapshot(&config, section);
    change.apply(&mut config)?;
    let after = snapshot(&config, section);
    let event = record(store, section, before, after, changed_by).await?;
    // Recorded: from here on the change is in force.
    change.install(gateway, &config);
    Ok(saved(&mut applied, section, &event, changed_by))
}

/// Appends the `settings_changed` event of a checked change.
async fn record(
    store: &Store,
    section: &str,
    before: serde_json::Value,
    after: serde_json::Value,
    changed_by: &str,
) -> Result<Event, StoreError> {
    let data = EventData::SettingsChanged {
        section: section.to_string(),
        before,
        after,
        changed_by: changed_by.to_string(),
    };
    store.append(NewEvent::new(changed_by, data)).await
}

/// Notes where `section` now comes from and says so.
fn saved(applied: &mut Applied, section: &'static str, event: &Event, changed_by: &str) -> Saved {
    let origin = Origin::of(event, changed_by);
    let saved = Saved {
        section: section.to_string(),
        event_seq: event.seq,
        ts: event.ts.clone(),
        changed_by: changed_by.to_string(),
        source: source(Some(&origin)),
    };
    applied.origins.insert(section, origin);
    tracing::info!(section, seq = event.seq, changed_by, "settings changed");
    saved
}

#[cfg(test)]
mod tests;
