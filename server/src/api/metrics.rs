//! `GET /metrics`: the Prometheus exposition (OpenMetrics text), behind a token like the rest of
//! the API (a `viewer` token is enough). What the store and the gateway know is read now.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiError;
use crate::gateway::resilience::BreakerState;
use crate::startup::AppState;
use crate::telemetry::metrics::{CONTENT_TYPE, METRICS};

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (runs, waiting) = state.store.live_counts().await?;
    for (status, n) in runs {
        METRICS.runs.get_or_create(&[("status", status)]).set(n);
    }
    METRICS.approvals_waiting.set(waiting);
    for (provider, breaker) in state.gateway.breaker_states() {
        let value = match breaker {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        METRICS
            .breaker_state
            .get_or_create(&[("provider", provider)])
            .set(value);
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], METRICS.render()))
}
