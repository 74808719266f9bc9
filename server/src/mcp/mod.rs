//! The MCP server: Factory's runs, approvals, clarifications, memory, audit log, artifacts and
//! diffs as Model Context Protocol tools and resources (rmcp), over stdio (`factory mcp`, as the
//! local operator) and streamable HTTP at `/mcp` (as the caller's token). See `docs/mcp.md`.
//!
//! The tools call what the REST handlers call (`crate::api`, `crate::dashboard`); this module
//! adds who may call them ([`access`]), waiting for a run with progress ([`wait`]), resource
//! URIs ([`resources`]) and change notifications ([`subscriptions`]).

mod access;
mod error;
mod http;
mod resources;
mod stdio;
mod subscriptions;
mod tools;
mod wait;

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::gateway::Gateway;
use crate::startup::AppState;
use crate::store::Store;

pub use http::routes as http_routes;
pub use stdio::{StdioError, serve as serve_stdio};

/// How long a tool called with `wait: true` waits when the call names no `timeout_secs`.
/// (No section of `factory.toml` governs MCP clients, so the limits are constants here.)
pub const WAIT_DEFAULT_SECS: u64 = 300;
/// The longest wait a call may ask for; an HTTP session lives at least this long (plus a
/// minute) without traffic, so a quiet wait never outlives its session.
pub const WAIT_MAX_SECS: u64 = 1800;
/// How many of the newest runs `resources/list` lists (older ones are read through the
/// templates).
pub const RESOURCE_LIST_RUNS: u32 = 50;

/// What the server tells a client about itself when it connects.
const INSTRUCTIONS: &str = "Factory turns requirements into reviewed artifacts and tested code \
with AI teams, and people approve what matters. Start a run with start_run (wait=true returns \
when it finishes or waits for a person); list_approvals and decide_approval or \
answer_clarification let it go on; get_run, get_artifact, get_diff and get_events show what it \
did. Resources: factory://runs/{run_id}, its artifacts and its work orders' diffs; subscribe to \
be told when they change.";

/// The handles the tools use: what [`AppState`] holds for them, without the pages' parts, so
/// `factory mcp` can build it without a listener.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub engine: Arc<Engine>,
    pub gateway: Arc<Gateway>,
    /// Where artifacts are read from.
    pub data_dir: PathBuf,
    /// Longest accepted goal, in characters (as `POST /supervisor/start`).
    pub max_goal_chars: usize,
    /// Ends waits and subscriptions when the process stops.
    pub shutdown: CancellationToken,
}

impl Services {
    /// The server's handles.
    pub fn from_state(state: &AppState) -> Services {
        Services {
            store: state.store.clone(),
            engine: state.engine.clone(),
            gateway: state.gateway.clone(),
            data_dir: state.config.data_dir.clone(),
            max_goal_chars: state.config.max_goal_chars,
            shutdown: state.shutdown.clone(),
        }
    }
}

/// Where requests come from, which decides who makes them (see [`access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `factory mcp`: the machine's own user, like every CLI command.
    Stdio,
    /// `/mcp`: the token the authentication middleware found on the request.
    Http,
}

/// One MCP connection's handler (one per HTTP session, one for the stdio process).
#[derive(Clone)]
pub struct FactoryMcp {
    services: Services,
    transport: Transport,
    tool_router: ToolRouter<FactoryMcp>,
    /// This connection's `resources/subscribe` URIs.
    subscriptions: subscriptions::Subscriptions,
}

impl FactoryMcp {
    fn new(services: Services, transport: Transport, tool_router: ToolRouter<FactoryMcp>) -> Self {
        FactoryMcp {
            services,
            transport,
            tool_router,
            subscriptions: subscriptions::Subscriptions::default(),
        }
    }

    /// Every tool, from the routers of [`tools`].
    fn all_tools() -> ToolRouter<FactoryMcp> {
        Self::run_tools() + Self::approval_tools() + Self::read_tools()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for FactoryMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new("factory", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self
            .resource_list(&context)
            .await
            .map_err(|e| e.into_error_data("resources/list"))?;
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let contents = self
            .resource_read(&context, &request.uri)
            .await
            .map_err(|e| e.into_error_data("resources/read"))?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscribe_uri(&context, request.uri)
            .await
            .map_err(|e| e.into_error_data("resources/subscribe"))
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(subscriptions::accepted(requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.listen_to(context).await
    }
}
