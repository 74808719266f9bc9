//! `/mcp`: rmcp's streamable HTTP service (a tower service) mounted in the server's router,
//! behind the authentication middleware like every API path. rmcp's own Host and Origin
//! checks are replaced by the server's: a Bearer token is required (a DNS-rebinding page has
//! none, and the session cookie is `SameSite=Strict`), cookie-borne POSTs must come from this
//! server's pages (the middleware), and any request that does carry an `Origin` must name this
//! server or one of `FACTORY_ALLOWED_ORIGINS` — the rule `/ws` applies. A request without an
//! `Origin` (every non-browser client) is fine.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use super::{FactoryMcp, Services, Transport, WAIT_MAX_SECS};
use crate::api::ApiError;
use crate::startup::AppState;

/// The `/mcp` route, for the API router (which the authentication layer wraps).
pub fn routes(state: &AppState) -> Router<AppState> {
    let services = Services::from_state(state);
    let tools = FactoryMcp::all_tools();
    let mut sessions = LocalSessionManager::default();
    // A session lives through the longest quiet wait a tool may be asked for.
    sessions.session_config.keep_alive = Some(Duration::from_secs(WAIT_MAX_SECS + 60));
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(state.config.max_body_bytes)
        .with_cancellation_token(state.shutdown.child_token());
    let mcp = StreamableHttpService::new(
        move || {
            Ok(FactoryMcp::new(
                services.clone(),
                Transport::Http,
                tools.clone(),
            ))
        },
        Arc::new(sessions),
        config,
    );
    let allowed = Arc::new(state.config.allowed_origins.clone());
    Router::new()
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(allowed, check_origin))
}

/// Refuses a request whose `Origin` is neither this server nor an allowed one.
async fn check_origin(
    State(allowed): State<Arc<Vec<String>>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(origin) = req.headers().get(axum::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !crate::api::trusted_origin(origin, req.headers(), &allowed) {
            return ApiError::Forbidden(format!(
                "MCP request from origin {origin:?} refused: use a client that sends no Origin, \
                 or add the origin to FACTORY_ALLOWED_ORIGINS"
            ))
            .into_response();
        }
    }
    next.run(req).await
}
