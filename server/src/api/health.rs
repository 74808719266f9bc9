//! `/healthz`: liveness and database reachability, without authentication.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiError;
use crate::store::Store;

/// 200 `{"status":"ok"}` when the database answers.
pub async fn healthz(State(store): State<Store>) -> Result<Json<Value>, ApiError> {
    store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}
