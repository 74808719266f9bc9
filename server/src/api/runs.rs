//! Runs: `POST /supervisor/start`, `GET /supervisor/status/{id}`, `POST /supervisor/cancel/{id}`,
//! `GET /api/runs`, and the event stream `GET /events`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use app::dto::{RunDetail, RunSummary, StartRunRequest, StartRunResponse};

use super::{ApiError, ApiJson};
use crate::startup::AppState;
use crate::store::Store;

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
    Ok(Json(run_detail(&state.store, &id).await?))
}

/// One run by id with its plan, progress, artifacts and cost; `NotFound` names an unknown id.
pub async fn run_detail(store: &Store, id: &str) -> Result<RunDetail, ApiError> {
    store
        .get_run_detail(id)
        .await?
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
    pub events: Vec<app::events::Event>,
    /// Pass as `after` for the next page; equal to the request's `after` when nothing is new.
    pub next_after: i64,
}

/// `GET /events?run_id=&after=&limit=`: events in sequence order after `after` (default 0),
/// at most `limit` (1–1000, default 200) and about 8 MiB, for one run or all.
pub async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let page = events_page(
        &state.store,
        query.run_id.as_deref(),
        query.after,
        query.limit,
    )
    .await?;
    Ok(Json(page))
}

/// A page of the event stream (what `GET /events` and the MCP tool `get_events` return): after
/// `after` (default 0), at most `limit` events (1–[`MAX_LIST`], default 200) and about 8 MiB,
/// for the run `run_id` (404 when unknown) or all.
pub async fn events_page(
    store: &Store,
    run_id: Option<&str>,
    after: Option<i64>,
    limit: Option<u32>,
) -> Result<EventsPage, ApiError> {
    let after = after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest("`after` must be 0 or more".into()));
    }
    let limit = checked_limit(limit, 200)?;
    let events = match run_id {
        Some(run_id) => {
            if store.get_run(run_id).await?.is_none() {
                return Err(ApiError::NotFound(format!("no run with id {run_id:?}")));
            }
            store.run_events(run_id, after, limit).await?
        }
        None => store.events_after(after, limit).await?,
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
    Ok(EventsPage {
        events: kept,
        next_after,
    })
}

/// `limit` (or `default`) when it is between 1 and [`MAX_LIST`].
fn checked_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIST}"
        )));
    }
    Ok(limit)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
}

/// Largest `/events` page in bytes (at least one event is always returned).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Largest page of `GET /api/runs` and `GET /events` (and of their MCP tools).
pub const MAX_LIST: u32 = 1000;

/// Newest runs first; `?limit=` up to 1000 (default 100).
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(list_runs(&state.store, query.limit).await?))
}

/// Newest runs first, at most `limit` (1–[`MAX_LIST`], default 100).
pub async fn list_runs(store: &Store, limit: Option<u32>) -> Result<Vec<RunSummary>, ApiError> {
    let limit = checked_limit(limit, 100)?;
    Ok(store.list_runs(limit).await?)
}
