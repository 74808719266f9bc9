//! Settings for scripts: `GET /api/settings` (aliases and chains, provider status — where a key
//! comes from, never the key —, budgets, routing and where each comes from),
//! `PUT /api/settings/budgets` and `PUT /api/settings/routing` (the whole section as JSON), and
//! the providers and chains: `POST /api/settings/providers`, `PUT` and `DELETE
//! /api/settings/providers/{name}`, `POST /api/settings/providers/{name}/test`,
//! `PUT /api/settings/aliases`.

use axum::Json;
use axum::extract::{Path, State};
use serde::de::DeserializeOwned;

use app::server_fns::settings::{
    AliasSettings, BudgetSettings, ProviderInput, ProviderTest, RoutingSettings, Saved,
    SettingsView,
};

use super::{ApiError, ApiJson};
use crate::gateway::settings::{self, SettingsError};
use crate::startup::AppState;

/// Who a change made through the REST API is recorded as.
const CHANGED_BY: &str = "api";

pub async fn get(State(state): State<AppState>) -> Json<SettingsView> {
    Json(settings::view(&state.gateway).await)
}

/// `200` with the event that recorded the change; `400` naming the field for anything refused
/// (an unknown or missing field, soft > hard, a threshold outside 0–1, an unknown alias).
pub async fn put_budgets(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<Saved>, ApiError> {
    let budgets: BudgetSettings = section("budgets", body)?;
    settings::update_budgets(&state.gateway, &state.store, budgets, CHANGED_BY)
        .await
        .map(Json)
        .map_err(refused)
}

pub async fn put_routing(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<Saved>, ApiError> {
    let routing: RoutingSettings = section("routing", body)?;
    settings::update_routing(&state.gateway, &state.store, routing, CHANGED_BY)
        .await
        .map(Json)
        .map_err(refused)
}

/// Adds a provider. `409` when the secrets file may be read by others (the message says how to
/// fix it); `400` naming the field for bad input, a name already taken included.
pub async fn add_provider(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<Saved>, ApiError> {
    let provider: ProviderInput = section("provider", body)?;
    settings::save_provider(&state.gateway, &state.store, provider, true, CHANGED_BY)
        .await
        .map(Json)
        .map_err(refused)
}

/// Replaces provider `{name}` (the body's `name`, when given, must be the same); a key left
/// out stays as it was.
pub async fn edit_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<Json<Saved>, ApiError> {
    if let Some(map) = body.as_object_mut() {
        match map.get("name").and_then(|n| n.as_str()) {
            Some(given) if given != name => {
                return Err(ApiError::BadRequest(format!(
                    "provider.name: `{given}` differs from the address's `{name}` (a provider cannot be renamed: add a new one)"
                )));
            }
            _ => {
                map.insert("name".into(), name.into());
            }
        }
    }
    let provider: ProviderInput = section("provider", body)?;
    settings::save_provider(&state.gateway, &state.store, provider, false, CHANGED_BY)
        .await
        .map(Json)
        .map_err(refused)
}

pub async fn remove_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Saved>, ApiError> {
    settings::remove_provider(&state.gateway, &state.store, &name, CHANGED_BY)
        .await
        .map(Json)
        .map_err(refused)
}

/// One tiny call to the provider's model: `200` with what answered (or the provider's error),
/// latency, tokens and the capabilities in force; `404` for an unknown provider.
pub async fn test_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProviderTest>, ApiError> {
    settings::test_provider(&state.gateway, &name)
        .await
        .map(Json)
        .map_err(refused)
}

pub async fn put_aliases(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<Saved>, ApiError> {
    let aliases: AliasSettings = section("aliases", body)?;
    settings::update_aliases(&state.gateway, &state.store, aliases, CHANGED_BY)
        .await
        .map(Json)
        .map_err(refused)
}

/// Reads a body as one section. A body of the wrong shape is bad input like any other (400),
/// named by its section.
fn section<T: DeserializeOwned>(name: &str, body: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

fn refused(e: SettingsError) -> ApiError {
    match e {
        SettingsError::Invalid(message) => ApiError::BadRequest(message),
        SettingsError::Unknown(message) => ApiError::NotFound(message),
        SettingsError::Secrets(e) => ApiError::Conflict(e.to_string()),
        SettingsError::Store(e) => e.into(),
    }
}
