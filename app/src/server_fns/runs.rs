//! Server functions of the run pages: the newest runs, a run folded for the dashboard, starting
//! a run from the chat, what the chat's composer offers, cancelling.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::PortError;
use crate::dto::RunSummary;
use crate::run_view::RunView;

/// What the chat's composer can choose from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComposerOptions {
    /// Registered projects by name (a run without one delivers artifacts only).
    pub projects: Vec<String>,
    /// Built-in pipelines with their stage counts: `default (5 stages)`.
    pub pipelines: Vec<(String, usize)>,
    /// Longest requirement accepted, in characters.
    pub max_goal_chars: usize,
    /// How the models are set up, e.g. "offline (no model): deterministic templates".
    pub models_note: String,
}

/// What the run pages may ask of the server.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait RunsPort: Send + Sync + 'static {
    /// The newest runs first, at most `limit`.
    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, PortError>;
    /// The run folded from its events (at most a bounded number of them), with the catalogue's
    /// teams. Unknown id → refused.
    async fn run_view(&self, id: String) -> Result<RunView, PortError>;
    /// Starts a run as `POST /supervisor/start` does; returns its id.
    async fn start_run(
        &self,
        goal: String,
        project: Option<String>,
        pipeline: Option<String>,
    ) -> Result<String, PortError>;
    async fn composer_options(&self) -> Result<ComposerOptions, PortError>;
    async fn cancel_run(&self, id: String) -> Result<(), PortError>;
}

/// The newest runs, newest first (the same list a WebSocket snapshot carries).
#[server(prefix = "/api", endpoint = "list_runs")]
pub async fn list_runs() -> Result<Vec<RunSummary>, ServerFnError> {
    super::port::<dyn RunsPort>()?
        .list_runs(crate::protocol::SNAPSHOT_RUN_LIMIT)
        .await
        .map_err(super::refused)
}

/// One run as the run page and the chat show it.
#[server(prefix = "/api", endpoint = "run_view")]
pub async fn load_run_view(id: String) -> Result<RunView, ServerFnError> {
    super::port::<dyn RunsPort>()?
        .run_view(id)
        .await
        .map_err(super::refused)
}

/// Starts a run from the chat; the run id comes back at once.
#[server(prefix = "/api", endpoint = "start_run")]
pub async fn start_run(
    goal: String,
    project: Option<String>,
    pipeline: Option<String>,
) -> Result<String, ServerFnError> {
    super::port::<dyn RunsPort>()?
        .start_run(goal, project, pipeline)
        .await
        .map_err(super::refused)
}

/// Projects and pipelines the composer offers.
#[server(prefix = "/api", endpoint = "composer_options")]
pub async fn get_composer_options() -> Result<ComposerOptions, ServerFnError> {
    super::port::<dyn RunsPort>()?
        .composer_options()
        .await
        .map_err(super::refused)
}

/// Cancels an active run.
#[server(prefix = "/api", endpoint = "cancel_run")]
pub async fn cancel_run(id: String) -> Result<(), ServerFnError> {
    super::port::<dyn RunsPort>()?
        .cancel_run(id)
        .await
        .map_err(super::refused)
}
