//! The one error type at the HTTP boundary: maps failures to status codes and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Internal causes are logged once, with the
//! request id, and never sent to the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Rejected { status, .. } => (*status, "bad_request"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(e: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError as E;
        match e {
            E::UnknownRun(_) | E::UnknownApproval(_) => ApiError::NotFound(e.to_string()),
            E::Finished { .. } | E::AlreadyDecided { .. } | E::RunFinished { .. } => {
                ApiError::Conflict(e.to_string())
            }
            E::BadDecision(message) => ApiError::BadRequest(message),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::engine::StartError> for ApiError {
    fn from(e: crate::engine::StartError) -> Self {
        use crate::engine::StartError as E;
        match e {
            E::EmptyGoal | E::GoalTooLong { .. } | E::BadField(_) => {
                ApiError::BadRequest(e.to_string())
            }
            E::Refused(message) => ApiError::Rejected {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message,
            },
            E::Store(e) => e.into(),
            E::Task(e) => ApiError::Internal(e.into()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "expected a JSON body with `Content-Type: application/json`".to_string()
            }
            StatusCode::PAYLOAD_TOO_LARGE => "request body is too large".to_string(),
            _ => format!("invalid JSON body: {}", rejection.body_text()),
        };
        ApiError::Rejected { status, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                // Logged inside the request span, which carries the request id.
                tracing::error!(error = %format!("{cause:#}"), "request failed");
                "internal error: the server log has the details (see the x-request-id header)"
                    .to_string()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON body whose rejection is an [`ApiError`] (clear 400/413/415 messages).
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);
