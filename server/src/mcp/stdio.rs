//! The MCP server on standard input and output (`factory mcp`): one connection, as the local
//! operator. Stdout carries protocol messages only; logs go to stderr.

use rmcp::ServiceExt;

use super::{FactoryMcp, Services, Transport};

/// Why the stdio server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("the MCP client did not complete the handshake: {0}")]
    Handshake(Box<rmcp::service::ServerInitializeError>),
    #[error("the MCP connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Serves until the client closes the connection (or the process is told to stop).
pub async fn serve(services: Services) -> Result<(), StdioError> {
    let shutdown = services.shutdown.clone();
    let server = FactoryMcp::new(services, Transport::Stdio, FactoryMcp::all_tools());
    let running = match server
        .serve_with_ct(rmcp::transport::stdio(), shutdown.child_token())
        .await
    {
        Ok(running) => running,
        // A client that leaves before the handshake had nothing to be served.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(StdioError::Handshake(Box::new(e))),
    };
    let reason = running.waiting().await?;
    tracing::debug!(?reason, "MCP stdio connection ended");
    Ok(())
}
