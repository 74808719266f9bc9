//! The port through which server functions reach the server (hexagonal style): `app` defines
//! the trait, the server implements it and provides it as Leptos context, so no server crate
//! (sqlx, axum, …) is ever linked into the browser build.

use std::sync::Arc;

use crate::approval::Approval;
use crate::model::RunSummary;

/// What the dashboard's server functions may ask of the server.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The newest runs first, at most `limit`.
    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, BackendError>;
    /// Approvals waiting for a person, oldest first.
    async fn pending_approvals(&self) -> Result<Vec<Approval>, BackendError>;
    /// Decides an approval (as the API does); the run continues.
    async fn decide_approval(
        &self,
        id: String,
        option: String,
        text: Option<String>,
    ) -> Result<(), BackendError>;
}

/// The form in which the backend is provided as context.
pub type SharedBackend = Arc<dyn Backend>;

/// A failure the dashboard can show. Internal causes are logged by the server and not
/// repeated to the browser.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("internal error: the server log has the details")]
    Internal,
    /// The request was refused; the message says why and what is accepted.
    #[error("{0}")]
    Refused(String),
}
