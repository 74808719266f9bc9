//! How a dashboard port reports a failure: a refusal the user can act on keeps its message,
//! an internal fault is logged here and reported opaquely.

use app::server_fns::PortError;

use crate::store::StoreError;

use super::artifacts::{ArtifactError, DiffError};

/// Why a memory, audit, artifact or gym request failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error("the team catalogue cannot be read: {0}")]
    Catalogue(String),
    #[error("a background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Failure {
    /// The browser's view: refusals keep their message, faults are logged once.
    pub(super) fn into_port(self, what: &str) -> PortError {
        let refusal = match &self {
            Failure::Refused(_) => true,
            Failure::Artifact(e) => e.is_refusal(),
            Failure::Diff(e) => e.is_refusal(),
            _ => false,
        };
        if refusal {
            PortError::Refused(self.to_string())
        } else {
            tracing::error!(error = %self, "{what} failed");
            PortError::Internal
        }
    }
}
