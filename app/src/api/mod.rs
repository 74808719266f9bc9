//! Server functions the dashboard calls. Each one runs on the server behind the same
//! authentication as the REST API (they live under `/api/`). One file per area; each area's
//! port trait (what its server functions may ask of the server) lives beside its functions and
//! is provided as Leptos context by `server/src/web/`.

pub mod costs;
pub mod insight;
pub mod runs;
pub mod settings;

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
    port::<dyn crate::backend::Backend>()
}

/// The port of type `T` the server provided as context (`Arc<dyn SomePort>`).
#[cfg(feature = "ssr")]
pub(crate) fn port<T: ?Sized + Send + Sync + 'static>() -> Result<std::sync::Arc<T>, ServerFnError>
{
    use_context::<std::sync::Arc<T>>()
        .ok_or_else(|| ServerFnError::new("server misconfigured: a port is missing from context"))
}

/// A port's failure as the browser sees it: the server's clear message, or an opaque internal
/// error (the cause is in the server log).
#[cfg(feature = "ssr")]
pub(crate) fn refused(e: crate::backend::BackendError) -> ServerFnError {
    ServerFnError::new(e.to_string())
}

/// The message of a failed server function without the transport's prefix, for display.
pub fn error_text(e: &ServerFnError) -> String {
    e.to_string()
        .trim_start_matches("error running server function: ")
        .to_string()
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
