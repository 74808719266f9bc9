//! Runs: `POST /supervisor/start`, `GET /supervisor/status/{id}`, `POST /supervisor/cancel/{id}`,
//! `GET /api/runs`, and the event stream `GET /events`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use app::dto::{RunDetail, RunSummary, StartRunRequest, StartRunResponse};

use super::{ApiError, ApiJson};
use crate::startup::AppState;

/// Starts a run; `201` when created, `200` when `request_id` matched an existing run.
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StartRunRequest>,
) -> Result<(StatusCode, Json<StartRunResponse>), ApiError> {
    let (run_id, created) = state
        .engine
        .start(req, state.config.max_goal_chars, "api")
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(StartRunResponse { run_id, created })))
}

/// One run by id with its plan, progress, artifacts and cost; 404 names an unknown id.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    state
        .store
        .get_run_detail(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no run with id {id:?}")))
}

/// Cancels an active run: `200` with the run; `404` unknown; `409` when it already finished.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    state.engine.cancel(&id, "api").await?;
    status(State(state), Path(id)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    run_id: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// A page of the unified event stream.
#[derive(Debug, serde::Serialize)]
pub struct EventsPage {
    events: Vec<app::events::Event>,
    /// Pass as `after` for the next page; equal to the request's `after` when nothing is new.
    next_after: i64,
}

/// `GET /events?run_id=&after=&limit=`: events in sequence order after `after` (default 0),
/// at most `limit` (1–1000, default 200) and about 8 MiB, for one run or all.
pub async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest("`after` must be 0 or more".into()));
    }
    let limit = query.limit.unwrap_or(200);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIST}"
        )));
    }
    let events = match &query.run_id {
        Some(run_id) => {
            if state.store.get_run(run_id).await?.is_none() {
                return Err(ApiError::NotFound(format!("no run with id {run_id:?}")));
            }
            state.store.run_events(run_id, after, limit).await?
        }
        None => state.store.events_after(after, limit).await?,
    };
    // Bounded by size as well as count: a stage's event carries its artifacts.
    let mut bytes = 0usize;
    let mut kept = Vec::with_capacity(events.len());
    for event in events {
        bytes += serde_json::to_string(&event).map_or(0, |t| t.len());
        if bytes > MAX_PAGE_BYTES && !kept.is_empty() {
            break;
        }
        kept.push(event);
    }
    let next_after = kept.last().map_or(after, |e| e.seq);
    Ok(Json(EventsPage {
        events: kept,
        next_after,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
}

/// Largest `/events` page in bytes (at least one event is always returned).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Largest page of `GET /api/runs`.
const MAX_LIST: u32 = 1000;

/// Newest runs first; `?limit=` up to 1000 (default 100).
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIST}"
        )));
    }
    Ok(Json(state.store.list_runs(limit).await?))
}
