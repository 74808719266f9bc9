//! Approvals: the ones waiting for a person, and deciding one, with their port.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::PortError;
use crate::approval::Approval;

/// What the approval server functions may ask of the server.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ApprovalsPort: Send + Sync + 'static {
    /// Approvals waiting for a person, oldest first.
    async fn pending_approvals(&self) -> Result<Vec<Approval>, PortError>;
    /// Decides an approval (as the API does); the run continues.
    async fn decide_approval(
        &self,
        id: String,
        option: String,
        text: Option<String>,
    ) -> Result<(), PortError>;
}

/// Approvals waiting for a person, oldest first.
#[server(prefix = "/api", endpoint = "pending_approvals")]
pub async fn pending_approvals() -> Result<Vec<Approval>, ServerFnError> {
    super::port::<dyn ApprovalsPort>()?
        .pending_approvals()
        .await
        .map_err(super::refused)
}

/// Decides an approval with one of its options (and words, where the option needs them).
#[server(prefix = "/api", endpoint = "decide_approval")]
pub async fn decide_approval(
    id: String,
    option: String,
    text: Option<String>,
) -> Result<(), ServerFnError> {
    super::port::<dyn ApprovalsPort>()?
        .decide_approval(id, option, text)
        .await
        .map_err(super::refused)
}
