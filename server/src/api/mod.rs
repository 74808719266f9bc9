//! The HTTP surface: REST under `/api` and `/supervisor`, the `/ws` event stream, MCP at `/mcp`,
//! sign-in, health; all behind the authentication middleware except the few public paths.

mod approvals;
mod auth;
mod costs;
mod error;
mod health;
mod memory;
mod metrics;
mod projects;
mod runs;
mod settings;
mod teams;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

pub(crate) use auth::origin::trusted as trusted_origin;
pub use auth::{Access, Principal, SESSION_COOKIE, classify};
pub use error::{ApiError, ApiJson};
// What the REST handlers do, shared with the MCP tools (`crate::mcp`).
pub(crate) use approvals::{approval, list_approvals};
pub(crate) use memory::search as search_memory;
pub(crate) use runs::{events_page, list_runs, run_detail};

use crate::startup::AppState;

/// REST, WebSocket and sign-in routes. The caller adds the dashboard pages and the
/// authentication layer (which must wrap both).
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/supervisor/start", post(runs::start))
        .route("/supervisor/status/{id}", get(runs::status))
        .route("/api/runs", get(runs::list))
        .route("/supervisor/cancel/{id}", post(runs::cancel))
        .route("/events", get(runs::events))
        .route("/api/runs/{id}", get(runs::status))
        .route("/api/costs", get(costs::report))
        .route("/api/teams", get(teams::teams))
        .route("/api/projects", get(projects::list).post(projects::add))
        .route("/api/approvals", get(approvals::list))
        .route("/api/approvals/{id}", get(approvals::get))
        .route("/api/approvals/{id}/decide", post(approvals::decide))
        .route("/api/memory/search", get(memory::search_memory))
        .route("/api/settings", get(settings::get))
        .route("/api/settings/budgets", put(settings::put_budgets))
        .route("/api/settings/routing", put(settings::put_routing))
        .route("/api/settings/aliases", put(settings::put_aliases))
        .route("/api/settings/providers", post(settings::add_provider))
        .route(
            "/api/settings/providers/{name}",
            put(settings::edit_provider).delete(settings::remove_provider),
        )
        .route(
            "/api/settings/providers/{name}/test",
            post(settings::test_provider),
        )
        .route("/ws", get(ws::upgrade))
        // MCP over streamable HTTP: POST (messages), GET (the server's stream), DELETE (end the
        // session); each tool checks the caller's scope and projects itself.
        .merge(crate::mcp::http_routes(state))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
}

pub use auth::require_auth;

/// JSON 404 for unknown API paths (pages get the dashboard's own 404).
pub async fn api_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}
