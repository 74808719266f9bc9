//! `factory mcp`: the MCP server over stdio for an agent on this machine (Claude Desktop or
//! Code, an IDE), as the local operator. It opens the data directory as `factory run` does and
//! drives the runs it starts or lets go on; a run still working when the client disconnects
//! stays unfinished and goes on when `factory serve` next starts (or decides it).

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Exit, UsageError};
use crate::config::{Config, EnvSnapshot, FactoryConfig};
use crate::engine::Engine;
use crate::gateway::Gateway;
use crate::mcp::Services;

pub(super) async fn run(data_dir: &Path, config_file: Option<&Path>) -> anyhow::Result<Exit> {
    let config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())
        .and_then(|c| c.gateway.check_keys(super::serve::env_is_set).map(|()| c))
        .and_then(|c| c.validate().map(|()| c))
        .map_err(|e| UsageError(e.to_string()))?;
    let store = super::open_store(data_dir).await?;
    store.reserve_wal().await;
    let gateway = Arc::new(Gateway::with_ledger(config.gateway.clone(), store.clone()).await?);
    // What was set from the dashboard or the CLI applies here as it does in `serve`.
    crate::gateway::settings::replay(&gateway, &store).await?;
    let shutdown = CancellationToken::new();
    // Webhooks fire here as in `serve`: for every event this process commits.
    let webhooks = crate::webhooks::Webhooks::start(&config.webhooks, &store)
        .map_err(|e| UsageError(e.to_string()))?;
    let engine = Engine::new(
        store.clone(),
        gateway.clone(),
        config.engine.clone(),
        config.approvals.clone(),
        data_dir.to_path_buf(),
        shutdown.child_token(),
    );
    let services = Services {
        store,
        engine: engine.clone(),
        gateway: gateway.clone(),
        data_dir: data_dir.to_path_buf(),
        max_goal_chars: Config::new(data_dir.to_path_buf()).max_goal_chars,
        shutdown: shutdown.clone(),
    };
    let served = crate::mcp::serve_stdio(services).await;
    shutdown.cancel();
    engine.wait_idle().await;
    webhooks.finish(crate::webhooks::DRAIN_GRACE).await;
    crate::delivery::docker::finish_removals(std::time::Duration::from_secs(15)).await;
    gateway.flush().await;
    served?;
    Ok(Exit::Success)
}
