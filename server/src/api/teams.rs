//! The team catalogue: `GET /api/teams`.

use axum::Json;

use super::ApiError;
use crate::engine::{Catalogue, Team};

/// The built-in team catalogue (SOUL, AGENTS, TOOLS and settings of each team).
pub async fn teams() -> Result<Json<Vec<Team>>, ApiError> {
    let catalogue = Catalogue::builtin().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(catalogue.teams().cloned().collect()))
}
