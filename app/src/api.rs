//! Server functions the dashboard calls. Each one runs on the server behind the same
//! authentication as the REST API (they live under `/api/`).

use leptos::prelude::*;

use crate::model::RunSummary;

/// The newest runs, newest first (the same list a WebSocket snapshot carries).
#[server(prefix = "/api", endpoint = "list_runs")]
pub async fn list_runs() -> Result<Vec<RunSummary>, ServerFnError> {
    let backend = use_context::<crate::backend::SharedBackend>()
        .ok_or_else(|| ServerFnError::new("server misconfigured: no backend in context"))?;
    backend
        .list_runs(crate::protocol::SNAPSHOT_RUN_LIMIT)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}
