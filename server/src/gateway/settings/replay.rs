//! Recorded changes put in force again: at start-up the newest change of each section
//! ([`replay`]), and while the server runs the changes another process recorded in the same
//! data directory — `factory models add` on a running `factory serve` — found by a small
//! watcher that reads only the events after the last one it saw ([`watch`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use app::events::{Event, EventData};
use app::server_fns::settings::PROVIDERS;
use tokio_util::sync::CancellationToken;

use super::overlay::ModelOverlay;
use super::providers::needs_stored_keys;
use super::{Applied, Change, Origin, SettingsError, secrets_of};
use crate::gateway::Gateway;
use crate::gateway::secrets::{Keys, SecretsFile};
use crate::store::{Store, StoreError};

/// The event kind every change is recorded as.
const KIND: &str = "settings_changed";

/// Applies the newest `settings_changed` event of each section over the configuration the
/// gateway was built with (`factory.toml` and defaults); returns how many were applied. A
/// recorded change that no longer fits the file — routing naming an alias the file has since
/// removed, a chain naming a provider it no longer defines — is skipped with a warning, and
/// the file's values stay in force.
pub async fn replay(gateway: &Gateway, store: &Store) -> Result<usize, StoreError> {
    // Read before the changes: one recorded in between is the watcher's to apply.
    let head = store.last_seq().await?;
    let changes = store.newest_by_field(KIND, "section").await?;
    let secrets = secrets_of(store);
    let mut applied = gateway.settings.applied.lock().await;
    let mut count = 0;
    for event in changes {
        if apply(gateway, &secrets, &mut applied, &event) {
            count += 1;
        }
    }
    applied.seen = applied.seen.max(head);
    Ok(count)
}

/// Applies the changes recorded since the last look that this process did not make itself
/// (the newest of each section); returns how many.
pub async fn catch_up(gateway: &Gateway, store: &Store) -> Result<usize, StoreError> {
    // The cheap question first (the log's head is its primary key's maximum).
    let head = store.last_seq().await?;
    let mut applied = gateway.settings.applied.lock().await;
    if head <= applied.seen {
        return Ok(0);
    }
    let events = store.kind_after(KIND, applied.seen).await?;
    let mut newest: BTreeMap<String, &Event> = BTreeMap::new();
    for event in &events {
        if let EventData::SettingsChanged { section, .. } = &event.data {
            newest.insert(section.clone(), event);
        }
    }
    let mut count = 0;
    let secrets = secrets_of(store);
    for (section, event) in newest {
        let known = applied.origins.get(section.as_str()).map_or(0, |o| o.seq);
        if event.seq > known && apply(gateway, &secrets, &mut applied, event) {
            count += 1;
        }
    }
    let last = events.last().map_or(0, |e| e.seq);
    // A full page may have more behind it: the next look goes on from its last event.
    applied.seen = if events.len() >= 1000 {
        last
    } else {
        head.max(last)
    };
    Ok(count)
}

/// Follows the log every `every` (kept within 50 ms – 60 s) until `shutdown`, applying changes
/// other processes recorded.
pub fn watch(gateway: Arc<Gateway>, store: Store, every: Duration, shutdown: CancellationToken) {
    let every = every.clamp(Duration::from_millis(50), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            match catch_up(&gateway, &store).await {
                Ok(0) => {}
                Ok(applied) => {
                    tracing::info!(applied, "settings changed by another process are in force");
                }
                Err(e) => tracing::warn!(error = %e, "the settings watcher could not read the log"),
            }
        }
        tracing::debug!("the settings watcher stopped");
    });
}

/// Puts one recorded change in force; false (with a warning) when it no longer fits.
fn apply(gateway: &Gateway, secrets: &SecretsFile, applied: &mut Applied, event: &Event) -> bool {
    let EventData::SettingsChanged {
        section,
        after,
        changed_by,
        ..
    } = &event.data
    else {
        return false;
    };
    let result = if section == PROVIDERS {
        overlay(gateway, secrets, applied, after)
    } else {
        let mut config = gateway.live_config();
        Change::stored(section, after)
            .and_then(|c| c.apply(&mut config).map(|()| c))
            .map(|change| {
                change.install(gateway, &config);
                change.section()
            })
    };
    match result {
        Ok(section) => {
            applied
                .origins
                .insert(section, Origin::of(event, changed_by));
            true
        }
        Err(e) => {
            tracing::warn!(
                seq = event.seq,
                section = %section,
                error = %e,
                "a recorded settings change no longer fits factory.toml; the file's values are used"
            );
            false
        }
    }
}

/// Puts a recorded overlay in force, with the stored keys it needs (a refused secrets file is
/// logged, and its providers go without keys until it is fixed).
fn overlay(
    gateway: &Gateway,
    secrets: &SecretsFile,
    applied: &mut Applied,
    after: &serde_json::Value,
) -> Result<&'static str, SettingsError> {
    let overlay: ModelOverlay = serde_json::from_value(after.clone()).map_err(|e| {
        SettingsError::Invalid(format!("the recorded providers cannot be read: {e}"))
    })?;
    let overlay = overlay.settled();
    let mut config = gateway.live_config();
    overlay.apply(gateway.base_config(), &mut config)?;
    let keys = if needs_stored_keys(&config) {
        secrets.load().map_err(|e| {
            tracing::error!(error = %e, "keys set from the dashboard or the CLI are not used");
            e.to_string()
        })
    } else {
        Ok(Keys::new())
    };
    gateway.set_models(config, &keys);
    applied.overlay = overlay;
    Ok(PROVIDERS)
}
