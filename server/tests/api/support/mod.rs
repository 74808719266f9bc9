//! What the feature files share: the server under test (`app`), the `factory` binary (`cli`),
//! git repositories and the sandbox (`git`), scripted model providers on loopback (`model`,
//! `providers`), `/ws` clients (`ws`), webhook receivers (`webhook`) and the database
//! underneath (`db`).
//!
//! Feature files import from here only, never from each other. The server crate's paths are
//! re-exported below, once, so a module renamed in `factory_server` or `app` is fixed here.

pub mod app;
pub mod cli;
pub mod db;
pub mod git;
pub mod github;
pub mod gym_model;
pub mod keyed;
pub mod model;
pub mod providers;
pub mod served;
pub mod stream;
pub mod webhook;
pub mod wire;
pub mod ws;

use std::net::SocketAddr;

pub use ::app::approval::{ApprovalKind, ApprovalOption};
pub use ::app::events::{EventData, TokenScope};
pub use ::app::gym::{CheckOutcome, CheckStatus, GymRecord};
pub use ::app::ledger::{Attribution, BudgetScope, BudgetTier, CostLine};
pub use ::app::protocol::{BriefMsg, ServerMsg, StageStream};
pub use ::app::run_view::{RunView, Speaker, StageState};
pub use factory_server::api::Access;
pub use factory_server::config::gateway::{
    Capabilities, ModelConfig, ProviderConfig, ReasoningEffort, family_defaults,
};
pub use factory_server::config::{
    Config, EnvSnapshot, FactoryConfig, GatewayConfig, ProviderKind, SignInThrottle,
};
pub use factory_server::engine::memory::recall;
pub use factory_server::gateway::providers::anthropic::AnthropicProvider;
pub use factory_server::gateway::providers::{Provider, ProviderError, ProviderRequest, Streaming};
pub use factory_server::gateway::routing::{Risk, RoutingInput};
pub use factory_server::gateway::types::{
    Message, ModelRequest, Progress, StreamProgress, ToolCall, ToolSpec,
};
pub use factory_server::gateway::{Gateway, GatewayError};
pub use factory_server::hub::ConnectionLimit;
pub use factory_server::store::auth::secret_hash;
pub use factory_server::store::memory::RecallScope;
pub use factory_server::store::model_calls::cost_report;
pub use factory_server::store::runs::NewRun;
pub use factory_server::store::{NewEvent, Store, StoreError};

/// Serves `router` on a free loopback port until the test ends; returns its address.
pub async fn loopback(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A loopback port that nothing listens on (bound, noted, released): for a server the test
/// starts there itself, or for an address that must refuse connections.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
