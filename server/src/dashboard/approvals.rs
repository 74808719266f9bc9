//! The server's side of the approvals port: the approvals waiting for a person, and deciding
//! one as the API does (see `app::server_fns::approvals`).

use std::sync::Arc;

use app::approval::{Approval, ApprovalStatus};
use app::server_fns::PortError;
use app::server_fns::approvals::ApprovalsPort;

use crate::engine::{Engine, EngineError};
use crate::startup::AppState;
use crate::store::Store;

/// The port, with the handles it needs.
struct Approvals {
    store: Store,
    engine: Arc<Engine>,
}

/// The approvals port for the dashboard's context.
pub(super) fn port(state: &AppState) -> Arc<dyn ApprovalsPort> {
    Arc::new(Approvals {
        store: state.store.clone(),
        engine: state.engine.clone(),
    })
}

#[async_trait::async_trait]
impl ApprovalsPort for Approvals {
    async fn pending_approvals(&self) -> Result<Vec<Approval>, PortError> {
        self.store
            .list_approvals(Some(ApprovalStatus::Pending), None, 500)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "pending_approvals failed");
                PortError::Internal
            })
    }

    async fn decide_approval(
        &self,
        id: String,
        option: String,
        text: Option<String>,
    ) -> Result<(), PortError> {
        match self.engine.decide(&id, &option, text, "dashboard").await {
            Ok(_) => Ok(()),
            Err(EngineError::Store(e)) => {
                tracing::error!(error = %e, "decide_approval failed");
                Err(PortError::Internal)
            }
            Err(refused) => Err(PortError::Refused(refused.to_string())),
        }
    }
}
