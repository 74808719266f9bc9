//! Approvals: `GET /api/approvals`, `GET /api/approvals/{id}`,
//! `POST /api/approvals/{id}/decide`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use app::approval::{Approval, ApprovalStatus, DecideRequest};

use super::{ApiError, ApiJson};
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    run_id: Option<String>,
    limit: Option<u32>,
}

/// Approvals oldest first; `?status=pending|decided`, `?run_id=`, `?limit=` (1–1000, 200).
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Approval>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`status` must be `pending` or `decided`, not `{s}`"
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(200);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::BadRequest(
            "`limit` must be between 1 and 1000".into(),
        ));
    }
    let approvals = state
        .store
        .list_approvals(status, query.run_id.as_deref(), limit)
        .await?;
    Ok(Json(approvals))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Approval>, ApiError> {
    state
        .store
        .get_approval(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no approval with id {id:?}")))
}

/// Decides: `200` with the decided approval; `400` for an option not offered (listing those
/// that are) or a missing/oversize text; `404` unknown; `409` already decided (with the first
/// decision) or the run has finished.
pub async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DecideRequest>,
) -> Result<Json<Approval>, ApiError> {
    state
        .engine
        .decide(&id, &req.option, req.text, "api")
        .await?;
    get(State(state), Path(id)).await
}
