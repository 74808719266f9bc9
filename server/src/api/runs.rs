//! Runs: `POST /supervisor/start`, `GET /supervisor/status/{id}`, `GET /api/runs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use app::model::{RunSummary, StartRunRequest, StartRunResponse};

use super::{ApiError, ApiJson};
use crate::config::Config;
use crate::startup::AppState;
use crate::store::runs::NewRun;

/// Longest accepted `request_id` and `project`.
const MAX_KEY_CHARS: usize = 200;

/// Starts a run; `201` when created, `200` when `request_id` matched an existing run.
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StartRunRequest>,
) -> Result<(StatusCode, Json<StartRunResponse>), ApiError> {
    let run = validate(&state.config, req)?;
    let (run_id, created) = state.store.create_run(run, "api").await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(StartRunResponse { run_id, created })))
}

fn validate(config: &Config, req: StartRunRequest) -> Result<NewRun, ApiError> {
    let goal = req.goal.trim().to_string();
    if goal.is_empty() {
        return Err(ApiError::BadRequest(
            "`goal` is empty: describe the requirement in a sentence or more".into(),
        ));
    }
    let chars = goal.chars().count();
    if chars > config.max_goal_chars {
        return Err(ApiError::BadRequest(format!(
            "`goal` is {chars} characters; the limit is {}",
            config.max_goal_chars
        )));
    }
    let key = |name: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
        match value.map(|v| v.trim().to_string()) {
            Some(v) if v.is_empty() => Err(ApiError::BadRequest(format!(
                "`{name}` is empty: omit it or give a value"
            ))),
            Some(v) if v.chars().count() > MAX_KEY_CHARS => Err(ApiError::BadRequest(format!(
                "`{name}` is longer than {MAX_KEY_CHARS} characters"
            ))),
            other => Ok(other),
        }
    };
    Ok(NewRun {
        goal,
        project: key("project", req.project)?,
        request_id: key("request_id", req.request_id)?,
    })
}

/// One run by id; 404 names the id when it is unknown.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunSummary>, ApiError> {
    state
        .store
        .get_run(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no run with id {id:?}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
}

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
