//! Approvals: `GET /api/approvals`, `GET /api/approvals/{id}`,
//! `POST /api/approvals/{id}/decide`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use app::approval::{Approval, ApprovalStatus, DecideRequest};

use super::{ApiError, ApiJson};
use crate::startup::AppState;
use crate::store::Store;

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
    let approvals = list_approvals(
        &state.store,
        query.status.as_deref(),
        query.run_id.as_deref(),
        query.limit,
    )
    .await?;
    Ok(Json(approvals))
}

/// Approvals oldest first: of `status` (`pending` or `decided`; every status when `None`), of
/// the run `run_id` or every run, at most `limit` (1–[`MAX_APPROVALS`], default 200).
pub async fn list_approvals(
    store: &Store,
    status: Option<&str>,
    run_id: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<Approval>, ApiError> {
    let status = match status {
        None => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`status` must be `pending` or `decided`, not `{s}`"
            ))
        })?),
    };
    let limit = limit.unwrap_or(200);
    if limit == 0 || limit > MAX_APPROVALS {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_APPROVALS}"
        )));
    }
    Ok(store.list_approvals(status, run_id, limit).await?)
}

/// Largest page of approvals.
pub const MAX_APPROVALS: u32 = 1000;

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(approval(&state.store, &id).await?))
}

/// One approval by id; `NotFound` names an unknown id.
pub async fn approval(store: &Store, id: &str) -> Result<Approval, ApiError> {
    store
        .get_approval(id)
        .await?
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
