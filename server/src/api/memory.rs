//! Memory search: `GET /api/memory/search`.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::ApiError;
use crate::gateway::Gateway;
use crate::startup::AppState;
use crate::store::Store;
use crate::store::memory::{MAX_RECALL, MemoryHit, RecallScope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: String,
    bank: Option<String>,
    project: Option<String>,
    limit: Option<u32>,
}

/// Search over memory by bank and project: BM25, fused with vector similarity when a local
/// embedding model answers.
pub async fn search_memory(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<MemoryHit>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let hits = search(
        &state.store,
        &state.gateway,
        &query.q,
        query.bank.as_deref(),
        query.project.as_deref(),
        query.limit,
    )
    .await?;
    Ok(Json(hits))
}

/// Memory matching `q` (in `bank` and `project` when given), at most `limit` hits
/// (1–[`MAX_RECALL`], default 10): what `GET /api/memory/search` and the MCP tool
/// `search_memory` return.
pub async fn search(
    store: &Store,
    gateway: &Gateway,
    q: &str,
    bank: Option<&str>,
    project: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<MemoryHit>, ApiError> {
    if q.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "`q` is empty: give words to search for".into(),
        ));
    }
    if q.len() > 2_000 {
        return Err(ApiError::BadRequest("`q` is longer than 2000 bytes".into()));
    }
    let limit = limit.unwrap_or(10);
    if limit == 0 || limit > MAX_RECALL {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_RECALL}"
        )));
    }
    let banks: Vec<&str> = bank.into_iter().collect();
    let scope = RecallScope {
        banks: &banks,
        project,
        run_id: None,
        exclude_run: None,
    };
    Ok(crate::engine::memory::recall(store, gateway, q, &scope, limit).await?)
}
