//! Settings for scripts: `GET /api/settings` (aliases and chains, provider status — whether a
//! key is set, never the key —, budgets, routing and where each comes from),
//! `PUT /api/settings/budgets` and `PUT /api/settings/routing` (the whole section as JSON).

use axum::Json;
use axum::extract::State;
use serde::de::DeserializeOwned;

use app::server_fns::settings::{BudgetSettings, RoutingSettings, Saved, SettingsView};

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

/// Reads a body as one section. A body of the wrong shape is bad input like any other (400),
/// named by its section.
fn section<T: DeserializeOwned>(name: &str, body: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

fn refused(e: SettingsError) -> ApiError {
    match e {
        SettingsError::Invalid(message) => ApiError::BadRequest(message),
        SettingsError::Store(e) => e.into(),
    }
}
