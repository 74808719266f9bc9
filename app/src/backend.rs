//! The port through which server functions reach the server (hexagonal style): `app` defines
//! the trait, the server implements it and provides it as Leptos context, so no server crate
//! (sqlx, axum, …) is ever linked into the browser build.

use std::sync::Arc;

use crate::model::RunSummary;

/// What the dashboard's server functions may ask of the server.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The newest runs first, at most `limit`.
    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, BackendError>;
}

/// The form in which the backend is provided as context.
pub type SharedBackend = Arc<dyn Backend>;

/// A failure the dashboard can show. Internal causes are logged by the server and not
/// repeated to the browser.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("internal error: the server log has the details")]
    Internal,
}
