//! Server functions the dashboard calls. Each one runs on the server behind the same
//! authentication as the REST API (they live under `/api/`).

use leptos::prelude::*;

use crate::approval::Approval;
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

#[cfg(feature = "ssr")]
fn backend() -> Result<crate::backend::SharedBackend, ServerFnError> {
    use_context::<crate::backend::SharedBackend>()
        .ok_or_else(|| ServerFnError::new("server misconfigured: no backend in context"))
}

/// Approvals waiting for a person, oldest first.
#[server(prefix = "/api", endpoint = "pending_approvals")]
pub async fn pending_approvals() -> Result<Vec<Approval>, ServerFnError> {
    backend()?
        .pending_approvals()
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// Decides an approval with one of its options (and words, where the option needs them).
#[server(prefix = "/api", endpoint = "decide_approval")]
pub async fn decide_approval(
    id: String,
    option: String,
    text: Option<String>,
) -> Result<(), ServerFnError> {
    backend()?
        .decide_approval(id, option, text)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}
