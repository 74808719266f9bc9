//! Why a tool or resource request failed: a message the caller can act on (what was wrong and
//! what is accepted), or an internal fault that is logged here once and reported opaquely.

use app::server_fns::PortError;
use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};

use crate::api::ApiError;
use crate::store::StoreError;

/// A refused or failed MCP request.
#[derive(Debug, thiserror::Error)]
pub(super) enum ToolError {
    /// An argument is missing, malformed or out of range.
    #[error("{0}")]
    BadInput(String),
    /// An id names nothing (a run, approval, artifact, work order).
    #[error("{0}")]
    NotFound(String),
    /// The request is understood but cannot be done now (the run has finished, the approval
    /// was decided already, the project cannot be used).
    #[error("{0}")]
    Refused(String),
    /// The caller's token does not allow it (scope, projects).
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error: the server log has the details")]
    Internal(#[source] anyhow::Error),
    /// An internal fault already logged where it happened.
    #[error("internal error: the server log has the details")]
    Logged,
}

impl ToolError {
    /// Logs an internal cause once; every error's message is what the caller sees.
    fn logged(self, what: &str) -> ToolError {
        if let ToolError::Internal(cause) = &self {
            tracing::error!(error = %format!("{cause:#}"), "MCP {what} failed");
        }
        self
    }

    /// As a JSON-RPC error (resources and subscriptions, which have no error results).
    pub(super) fn into_error_data(self, what: &str) -> ErrorData {
        let error = self.logged(what);
        let message = error.to_string();
        match error {
            ToolError::NotFound(_) => ErrorData::resource_not_found(message, None),
            ToolError::BadInput(_) | ToolError::Refused(_) => {
                ErrorData::invalid_params(message, None)
            }
            ToolError::Forbidden(_) => ErrorData::invalid_request(message, None),
            ToolError::Internal(_) | ToolError::Logged => ErrorData::internal_error(message, None),
        }
    }
}

/// A tool's failure is a result the model reads (`isError: true`), not a protocol error.
impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let message = self.logged("tool call").to_string();
        Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())
    }
}

impl From<ApiError> for ToolError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest(m) => ToolError::BadInput(m),
            ApiError::NotFound(m) => ToolError::NotFound(m),
            ApiError::Conflict(m) | ApiError::Rejected { message: m, .. } => ToolError::Refused(m),
            ApiError::Unauthorized(m) | ApiError::Forbidden(m) => ToolError::Forbidden(m),
            ApiError::Internal(cause) => ToolError::Internal(cause),
        }
    }
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        ToolError::Internal(e.into())
    }
}

impl From<crate::engine::EngineError> for ToolError {
    fn from(e: crate::engine::EngineError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::engine::StartError> for ToolError {
    fn from(e: crate::engine::StartError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<PortError> for ToolError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Refused(m) => ToolError::Refused(m),
            PortError::Internal => ToolError::Logged,
        }
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(e: serde_json::Error) -> Self {
        ToolError::Internal(e.into())
    }
}
