//! Live settings: budgets and routing changed from the dashboard or the API while Factory runs.
//!
//! A change is checked by the same rules as `factory.toml` ([`GatewayConfig::validate`]),
//! recorded as a `settings_changed` event with the section's values before and after, and only
//! then applied, so the next call uses it and a refused or unrecorded change leaves nothing
//! behind. At start-up [`replay`] applies the newest change of each section over `factory.toml`
//! again: what a person set survives a restart, and the file still supplies everything else.

mod view;

pub use view::{OllamaProbes, view};

use std::collections::BTreeMap;

use app::events::{Event, EventData};
use app::server_fns::settings::{
    BUDGETS, BudgetSettings, ROUTING, RoutingSettings, Saved, SectionSource,
};

use super::Gateway;
use crate::config::gateway::{GatewayConfig, RoutingConfig};
use crate::store::{NewEvent, Store, StoreError};

/// Why a change was refused or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The input was refused; the message names the field and what is accepted.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Where each section's values come from. Its lock also serialises changes, so the `before`
/// of a change is always exactly what the previous change left.
#[derive(Debug, Default)]
pub struct Provenance {
    origins: tokio::sync::Mutex<BTreeMap<&'static str, Origin>>,
}

fn source(origin: Option<&Origin>) -> SectionSource {
    match origin {
        None => SectionSource {
            label: FROM_FILE.to_string(),
            event_seq: None,
        },
        Some(o) => SectionSource {
            label: format!(
                "dashboard (event #{} by {} at {})",
                o.seq, o.changed_by, o.ts
            ),
            event_seq: Some(o.seq),
        },
    }
}

/// The configuration in force and the sources of its budgets and routing, read together.
pub async fn in_force(gateway: &Gateway) -> (GatewayConfig, SectionSource, SectionSource) {
    let origins = gateway.settings.origins.lock().await;
    (
        gateway.live_config(),
        source(origins.get(BUDGETS)),
        source(origins.get(ROUTING)),
    )
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
    let mut origins = gateway.settings.origins.lock().await;
    let section = change.section();
    let mut config = gateway.live_config();
    let before = snapshot(&config, section);
    change.apply(&mut config)?;
    let after = snapshot(&config, section);
    let data = EventData::SettingsChanged {
        section: section.to_string(),
        before,
        after,
        changed_by: changed_by.to_string(),
    };
    let event = store.append(NewEvent::new(changed_by, data)).await?;
    // Recorded: from here on the change is in force.
    change.install(gateway, &config);
    let origin = Origin::of(&event, changed_by);
    let saved = Saved {
        section: section.to_string(),
        event_seq: event.seq,
        ts: event.ts.clone(),
        changed_by: changed_by.to_string(),
        source: source(Some(&origin)),
    };
    origins.insert(section, origin);
    tracing::info!(section, seq = event.seq, changed_by, "settings changed");
    Ok(saved)
}

/// Applies the newest `settings_changed` event of each section over the configuration the
/// gateway was built with (`factory.toml` and defaults); returns how many were applied. A
/// recorded change that no longer fits the file — routing naming an alias the file has since
/// removed — is skipped with a warning, and the file's values stay in force.
pub async fn replay(gateway: &Gateway, store: &Store) -> Result<usize, StoreError> {
    let changes = store.newest_by_field("settings_changed", "section").await?;
    let mut origins = gateway.settings.origins.lock().await;
    let mut applied = 0;
    for event in changes {
        let EventData::SettingsChanged {
            section,
            after,
            changed_by,
            ..
        } = &event.data
        else {
            continue;
        };
        let mut config = gateway.live_config();
        match Change::stored(section, after).and_then(|c| c.apply(&mut config).map(|()| c)) {
            Ok(change) => {
                change.install(gateway, &config);
                origins.insert(change.section(), Origin::of(&event, changed_by));
                applied += 1;
            }
            Err(e) => tracing::warn!(
                seq = event.seq,
                section = %section,
                error = %e,
                "a recorded settings change no longer fits factory.toml; the file's values are used"
            ),
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests;
