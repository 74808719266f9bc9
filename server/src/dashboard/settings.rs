//! The Settings area's port: the same view, the same checked, recorded changes and the same
//! provider test as the REST API, with changes recorded as made by `dashboard`.

use std::sync::Arc;

use app::server_fns::PortError;
use app::server_fns::settings::{
    AliasSettings, BudgetSettings, ProviderInput, ProviderTest, RoutingSettings, Saved,
    SettingsPort, SettingsView,
};

use crate::gateway::Gateway;
use crate::gateway::settings::{self, SettingsError};
use crate::startup::AppState;
use crate::store::Store;

/// Who a change made from the dashboard is recorded as.
const CHANGED_BY: &str = "dashboard";

struct Settings {
    gateway: Arc<Gateway>,
    store: Store,
}

/// The port provided to the Settings server functions.
pub(super) fn port(state: &AppState) -> Arc<dyn SettingsPort> {
    Arc::new(Settings {
        gateway: state.gateway.clone(),
        store: state.store.clone(),
    })
}

#[async_trait::async_trait]
impl SettingsPort for Settings {
    async fn settings(&self) -> Result<SettingsView, PortError> {
        Ok(settings::view(&self.gateway).await)
    }

    async fn update_budgets(&self, budgets: BudgetSettings) -> Result<Saved, PortError> {
        settings::update_budgets(&self.gateway, &self.store, budgets, CHANGED_BY)
            .await
            .map_err(refused)
    }

    async fn update_routing(&self, routing: RoutingSettings) -> Result<Saved, PortError> {
        settings::update_routing(&self.gateway, &self.store, routing, CHANGED_BY)
            .await
            .map_err(refused)
    }

    async fn save_provider(
        &self,
        provider: ProviderInput,
        adding: bool,
    ) -> Result<Saved, PortError> {
        settings::save_provider(&self.gateway, &self.store, provider, adding, CHANGED_BY)
            .await
            .map_err(refused)
    }

    async fn remove_provider(&self, name: String) -> Result<Saved, PortError> {
        settings::remove_provider(&self.gateway, &self.store, &name, CHANGED_BY)
            .await
            .map_err(refused)
    }

    async fn update_aliases(&self, aliases: AliasSettings) -> Result<Saved, PortError> {
        settings::update_aliases(&self.gateway, &self.store, aliases, CHANGED_BY)
            .await
            .map_err(refused)
    }

    async fn test_provider(&self, name: String) -> Result<ProviderTest, PortError> {
        settings::test_provider(&self.gateway, &name)
            .await
            .map_err(refused)
    }
}

fn refused(e: SettingsError) -> PortError {
    match e {
        SettingsError::Invalid(message) | SettingsError::Unknown(message) => {
            PortError::Refused(message)
        }
        SettingsError::Secrets(e) => PortError::Refused(e.to_string()),
        SettingsError::Store(e) => {
            tracing::error!(error = %e, "a settings change could not be recorded");
            PortError::Internal
        }
    }
}
