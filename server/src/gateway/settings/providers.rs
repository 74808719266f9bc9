//! Providers and alias chains changed from the dashboard, the API or the CLI: the overlay is
//! edited, checked with the file under it, the typed key written to the secrets file, the
//! change recorded (the key only as `"key": "changed"`), and the new snapshot put in force for
//! the next call.

use app::server_fns::settings::{AliasSettings, PROVIDERS, ProviderInput, Saved};

use super::overlay::{KeyRecord, ModelOverlay};
use super::{SettingsError, record, saved, secrets_of};
use crate::config::gateway::GatewayConfig;
use crate::gateway::Gateway;
use crate::gateway::secrets::{Keys, Secret, SecretsFile};
use crate::store::Store;

/// Adds (`adding`) or replaces a provider; a typed key goes to the secrets file.
pub async fn save_provider(
    gateway: &Gateway,
    store: &Store,
    input: ProviderInput,
    adding: bool,
    changed_by: &str,
) -> Result<Saved, SettingsError> {
    let name = input.name.trim().to_string();
    change(gateway, store, changed_by, |overlay, in_force, base| {
        let typed = overlay.save(&input, adding, in_force, base)?;
        Ok(typed.map(|key| (name, key)))
    })
    .await
}

/// Removes a provider, its entries in every chain and its stored key.
pub async fn remove_provider(
    gateway: &Gateway,
    store: &Store,
    name: &str,
    changed_by: &str,
) -> Result<Saved, SettingsError> {
    let name = name.trim();
    change(gateway, store, changed_by, |overlay, in_force, base| {
        overlay.remove(name, in_force, base).map(|()| None)
    })
    .await
}

/// Sets the chains of canonical aliases.
pub async fn update_aliases(
    gateway: &Gateway,
    store: &Store,
    aliases: AliasSettings,
    changed_by: &str,
) -> Result<Saved, SettingsError> {
    change(gateway, store, changed_by, |overlay, _, base| {
        overlay.set_chains(&aliases.chains, base).map(|()| None)
    })
    .await
}

/// Whether any provider of `config` reads its key from the secrets file.
pub(super) fn needs_stored_keys(config: &GatewayConfig) -> bool {
    config.providers.values().any(|p| p.key_stored)
}

/// The stored keys when `config` needs them (none otherwise, so a refused file troubles only
/// the providers that use it).
fn keys_for(config: &GatewayConfig, secrets: &SecretsFile) -> Result<Keys, SettingsError> {
    if needs_stored_keys(config) {
        Ok(secrets.load()?)
    } else {
        Ok(Keys::new())
    }
}

/// Providers whose key was stored before and is not any more.
fn dropped_keys(before: &ModelOverlay, after: &ModelOverlay) -> Vec<String> {
    let stored = |k: &KeyRecord| matches!(k, KeyRecord::Stored | KeyRecord::Changed);
    before
        .providers
        .iter()
        .filter(|(_, p)| stored(&p.key))
        .filter(|(name, _)| after.providers.get(*name).is_none_or(|p| !stored(&p.key)))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Edits the overlay, checks it over the file, stores a typed key, records the change and
/// puts it in force; a refused change writes and records nothing.
async fn change(
    gateway: &Gateway,
    store: &Store,
    changed_by: &str,
    edit: impl FnOnce(
        &mut ModelOverlay,
        &GatewayConfig,
        &GatewayConfig,
    ) -> Result<Option<(String, Secret)>, SettingsError>,
) -> Result<Saved, SettingsError> {
    let mut applied = gateway.settings.applied.lock().await;
    let base = gateway.base_config();
    let mut config = gateway.live_config();
    let mut overlay = applied.overlay.clone();
    let typed = edit(&mut overlay, &config, base)?;
    overlay.apply(base, &mut config)?;
    let secrets = secrets_of(store);
    let dropped = dropped_keys(&applied.overlay, &overlay);
    // The file must be usable before anything is written or recorded: a refused file (others
    // may read it) refuses the change whole.
    if typed.is_some() || !dropped.is_empty() {
        secrets.load()?;
    }
    keys_for(&config, &secrets)?;
    let before = serde_json::to_value(&applied.overlay).unwrap_or_default();
    let after = serde_json::to_value(&overlay).unwrap_or_default();
    // The key is written first, so another process that reads the event finds it.
    let previous = match &typed {
        Some((name, key)) => Some((name, secrets.set(name, Some(key))?)),
        None => None,
    };
    let event = match record(store, PROVIDERS, before, after, changed_by).await {
        Ok(event) => event,
        Err(e) => {
            if let Some((name, previous)) = previous
                && let Err(undo) = secrets.set(name, previous.as_ref())
            {
                tracing::error!(provider = %name, error = %undo, "a key stored for a change that was not recorded could not be taken back");
            }
            return Err(e.into());
        }
    };
    for name in dropped {
        if let Err(e) = secrets.set(&name, None) {
            tracing::error!(provider = %name, error = %e, "a key no longer used stays in the secrets file");
        }
    }
    // Recorded: from here on the change is in force.
    let keys = keys_for(&config, &secrets).map_err(|e| e.to_string());
    gateway.set_models(config, &keys);
    applied.overlay = overlay.settled();
    Ok(saved(&mut applied, PROVIDERS, &event, changed_by))
}
