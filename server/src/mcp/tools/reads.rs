//! Reading tools: `search_memory`, `list_teams`, `list_projects`, `get_artifact`, `get_diff`.

use app::events::TokenScope::Viewer;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde::Deserialize;

use super::done;
use super::runs::NoArguments;
use crate::engine::Catalogue;
use crate::mcp::FactoryMcp;
use crate::mcp::access::require;
use crate::mcp::error::ToolError;
use crate::mcp::resources::{artifact_name, artifact_uri, diff_uri, unified_diff};

/// Arguments of `search_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchMemory {
    /// Words to look for (at most 2000 bytes).
    q: String,
    /// Only this bank: a team's name, or factory-shared-world.
    #[serde(default)]
    bank: Option<String>,
    /// Only this project's items (its path; required for a token limited to projects).
    #[serde(default)]
    project: Option<String>,
    /// At most this many hits: 1 to 50 (default 10).
    #[serde(default)]
    limit: Option<u32>,
}

/// Arguments of `get_artifact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArtifact {
    /// The run's id.
    run_id: String,
    /// The artifact: its path under the run's directory (e.g. 01-requirements/requirements.md,
    /// as get_run lists them), or its file name when no other artifact of the run has it.
    name: String,
}

/// Arguments of `get_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetDiff {
    /// The run's id.
    run_id: String,
    /// A delivered work order's id (get_run lists the run's work orders).
    work_order_id: String,
}

#[tool_router(router = read_tools, vis = "pub(crate)")]
impl FactoryMcp {
    #[tool(
        description = "Search memory (facts and summaries teams kept): BM25, fused with vector \
                       similarity when a local embedding model answers.",
        annotations(read_only_hint = true)
    )]
    async fn search_memory(
        &self,
        Parameters(args): Parameters<SearchMemory>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "search_memory")?;
        if !caller.projects.is_empty()
            && !caller
                .may_start_in(&self.services.store, args.project.as_deref())
                .await?
        {
            return Err(ToolError::Forbidden(format!(
                "this token is limited to the projects {}: give one of them as `project`",
                caller.projects.join(", ")
            )));
        }
        let services = &self.services;
        let hits = crate::api::search_memory(
            &services.store,
            &services.gateway,
            &args.q,
            args.bank.as_deref(),
            args.project.as_deref(),
            args.limit,
        )
        .await?;
        done(serde_json::json!({ "hits": hits }))
    }

    #[tool(
        description = "The built-in team catalogue: each team's settings, SOUL, AGENTS and \
                       TOOLS.",
        annotations(read_only_hint = true)
    )]
    async fn list_teams(
        &self,
        Parameters(NoArguments {}): Parameters<NoArguments>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "list_teams")?;
        let catalogue = Catalogue::builtin().map_err(|e| ToolError::Internal(e.into()))?;
        let teams: Vec<_> = catalogue.teams().cloned().collect();
        done(serde_json::json!({ "teams": teams }))
    }

    #[tool(
        description = "Registered projects (repositories runs may deliver into).",
        annotations(read_only_hint = true)
    )]
    async fn list_projects(
        &self,
        Parameters(NoArguments {}): Parameters<NoArguments>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "list_projects")?;
        let projects = self.services.store.list_projects().await?;
        let projects = self
            .only_visible(&caller, projects, |p| Some(p.path.as_str()))
            .await;
        done(serde_json::json!({ "projects": projects }))
    }

    #[tool(
        description = "An artifact of a run as its team wrote it (markdown text); also the \
                       resource factory://runs/{run_id}/artifacts/{name}.",
        annotations(read_only_hint = true)
    )]
    async fn get_artifact(
        &self,
        Parameters(args): Parameters<GetArtifact>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "get_artifact")?;
        self.visible_run(&caller, &args.run_id).await?;
        let (artifact, text) = self.artifact(&args.run_id, &args.name).await?;
        let name = artifact_name(&args.run_id, &artifact).to_string();
        let about = serde_json::json!({
            "run_id": args.run_id,
            "uri": artifact_uri(&args.run_id, &name),
            "name": name,
            "stage": artifact.stage,
            "team": artifact.team,
            "bytes": artifact.bytes,
            "text": text,
        });
        let mut result = CallToolResult::structured(about);
        // The artifact itself is what a model reads.
        result.content = vec![ContentBlock::text(text)];
        Ok(result)
    }

    #[tool(
        description = "A delivered work order's change: its commit against its parent, as a \
                       unified diff (text) and per file with line counts (structured); also \
                       the resource factory://runs/{run_id}/diffs/{work_order_id}.",
        annotations(read_only_hint = true)
    )]
    async fn get_diff(
        &self,
        Parameters(args): Parameters<GetDiff>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "get_diff")?;
        self.visible_run(&caller, &args.run_id).await?;
        let uri = diff_uri(&args.run_id, &args.work_order_id);
        let patch = crate::dashboard::work_order_diff(
            &self.services.store,
            args.run_id,
            args.work_order_id,
        )
        .await?;
        let text = unified_diff(&patch);
        let mut value = serde_json::to_value(&patch)?;
        value["uri"] = uri.into();
        let mut result = CallToolResult::structured(value);
        result.content = vec![ContentBlock::text(text)];
        Ok(result)
    }
}
