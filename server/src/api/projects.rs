//! Projects: `POST /api/projects`, `GET /api/projects`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use app::dto::Project;

use super::{ApiError, ApiJson};
use crate::delivery::project::{NewProject, validate};
use crate::startup::AppState;

/// Registers a project after its checks: `201`; `422` naming the failed check; `409` when the
/// name or path is registered already.
pub async fn add(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    let now = crate::store::now_rfc3339();
    let project = tokio::task::spawn_blocking(move || validate(&new, &now))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Rejected {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: e.to_string(),
        })?;
    state
        .store
        .add_project(project.clone(), "api")
        .await?
        .map_err(ApiError::Conflict)?;
    Ok((StatusCode::CREATED, Json(project)))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Project>>, ApiError> {
    Ok(Json(state.store.list_projects().await?))
}
