//! Run tools: `start_run`, `get_run`, `list_runs`, `cancel_run`, `get_events`, `verify_audit`.

use app::dto::{RunStatus, StartRunRequest};
use app::events::TokenScope::{Operator, Viewer};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde::Deserialize;

use super::done;
use crate::mcp::FactoryMcp;
use crate::mcp::access::{outside_projects, require};
use crate::mcp::error::ToolError;
use crate::mcp::wait::{self, Watch};

/// Arguments of `start_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The requirement, in plain words (`requirement` is accepted as another name for it).
    #[serde(alias = "requirement")]
    goal: String,
    /// A registered project's name (list_projects), or the absolute path of a git repository;
    /// omit for a run that writes documents only.
    #[serde(default)]
    project: Option<String>,
    /// Pipeline: `default` (5 stages), `full` (all 17 teams) or one of the project's own.
    #[serde(default)]
    pipeline: Option<String>,
    /// Idempotency key: starting again with the same key returns the same run.
    #[serde(default)]
    request_id: Option<String>,
    /// Return only when the run finishes or waits for a person, sending progress
    /// notifications as it advances (when the request has a progressToken).
    #[serde(default)]
    wait: bool,
    /// How long to wait, in seconds: 1 to 1800 (default 300).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// Arguments of `get_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRun {
    /// The run's id.
    run_id: String,
    /// Wait until the run finishes or waits for a person (with progress notifications).
    #[serde(default)]
    wait: bool,
    /// How long to wait, in seconds: 1 to 1800 (default 300).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// Arguments of `list_runs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRuns {
    /// How many of the newest runs to look at: 1 to 1000 (default 100).
    #[serde(default)]
    limit: Option<u32>,
    /// Keep only runs in this status: queued, running, waiting_for_human, succeeded, failed or
    /// canceled.
    #[serde(default)]
    status: Option<String>,
}

/// Arguments of `cancel_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    /// The run's id.
    run_id: String,
}

/// Arguments of `get_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetEvents {
    /// Only this run's events (required for a token limited to projects).
    #[serde(default)]
    run_id: Option<String>,
    /// Events after this sequence number (default 0); pass the last page's `next_after`.
    #[serde(default)]
    after: Option<i64>,
    /// At most this many events: 1 to 1000 (default 200); a page also stops near 8 MiB.
    #[serde(default)]
    limit: Option<u32>,
}

/// Arguments of tools that take none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

#[tool_router(router = run_tools, vis = "pub(crate)")]
impl FactoryMcp {
    #[tool(
        description = "Start a run: a requirement through a pipeline of AI teams, optionally in \
                       a project. With wait=true the call returns when the run finishes or \
                       waits for a person (decide with decide_approval / answer_clarification), \
                       with progress notifications as stages advance. Needs `operator`."
    )]
    async fn start_run(
        &self,
        Parameters(args): Parameters<StartRun>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Operator, "start_run")?;
        let services = &self.services;
        if !caller
            .may_start_in(&services.store, args.project.as_deref())
            .await?
        {
            return Err(match &args.project {
                None => outside_projects(&caller, None),
                Some(project) => ToolError::Forbidden(format!(
                    "this token is limited to the projects {}; {project} is not one of them",
                    caller.projects.join(", ")
                )),
            });
        }
        let timeout = wait::timeout(args.timeout_secs)?;
        // Before the run exists, so the wait misses nothing it does.
        let events = Watch::start(&services.store);
        let request = StartRunRequest {
            goal: args.goal,
            project: args.project,
            request_id: args.request_id,
            pipeline: args.pipeline,
        };
        let (run_id, created) = services
            .engine
            .start(request, services.max_goal_chars, "mcp")
            .await?;
        let settled = match args.wait {
            true => Some(self.settle(&context, &run_id, events, timeout).await?),
            false => None,
        };
        let report = self.report(&run_id, settled).await?;
        done(serde_json::json!({ "run_id": run_id, "created": created, "report": report }))
    }

    #[tool(
        description = "A run with its plan, progress, artifacts, work orders, cost and pending \
                       approvals; with wait=true, once it finishes or waits for a person.",
        annotations(read_only_hint = true)
    )]
    async fn get_run(
        &self,
        Parameters(args): Parameters<GetRun>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "get_run")?;
        let timeout = wait::timeout(args.timeout_secs)?;
        let events = Watch::start(&self.services.store);
        self.visible_run(&caller, &args.run_id).await?;
        let settled = match args.wait {
            true => Some(self.settle(&context, &args.run_id, events, timeout).await?),
            false => None,
        };
        done(self.report(&args.run_id, settled).await?)
    }

    #[tool(
        description = "The newest runs (id, goal, project, status, current stage, cost).",
        annotations(read_only_hint = true)
    )]
    async fn list_runs(
        &self,
        Parameters(args): Parameters<ListRuns>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "list_runs")?;
        let status = match args.status.as_deref() {
            None => None,
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                let names: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                ToolError::BadInput(format!(
                    "`status` must be one of {}, not {s:?}",
                    names.join(", ")
                ))
            })?),
        };
        let runs = crate::api::list_runs(&self.services.store, args.limit).await?;
        let runs: Vec<_> = runs
            .into_iter()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .collect();
        let runs = self
            .only_visible(&caller, runs, |r| r.project.as_deref())
            .await;
        done(serde_json::json!({ "runs": runs }))
    }

    #[tool(
        description = "Cancel an active run (refused once it has finished). Needs `operator`.",
        annotations(destructive_hint = true)
    )]
    async fn cancel_run(
        &self,
        Parameters(args): Parameters<CancelRun>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Operator, "cancel_run")?;
        self.visible_run(&caller, &args.run_id).await?;
        self.services.engine.cancel(&args.run_id, "mcp").await?;
        done(self.report(&args.run_id, None).await?)
    }

    #[tool(
        description = "The audit trail: recorded events in sequence order, for one run or all, \
                       a page at a time (after + limit; pass next_after for the next page).",
        annotations(read_only_hint = true)
    )]
    async fn get_events(
        &self,
        Parameters(args): Parameters<GetEvents>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "get_events")?;
        match &args.run_id {
            Some(run_id) => {
                self.visible_run(&caller, run_id).await?;
            }
            None if !caller.projects.is_empty() => {
                return Err(ToolError::Forbidden(format!(
                    "this token is limited to the projects {}: give `run_id` (one of their \
                     runs) to read events",
                    caller.projects.join(", ")
                )));
            }
            None => {}
        }
        let page = crate::api::events_page(
            &self.services.store,
            args.run_id.as_deref(),
            args.after,
            args.limit,
        )
        .await?;
        done(page)
    }

    #[tool(
        description = "Walk the audit log's hash chain: how many events were checked, the head, \
                       and the first broken link if there is one.",
        annotations(read_only_hint = true)
    )]
    async fn verify_audit(
        &self,
        Parameters(NoArguments {}): Parameters<NoArguments>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "verify_audit")?;
        let status = crate::dashboard::verify_audit(&self.services.store).await?;
        let intact = status.broken.is_none();
        let mut value = serde_json::to_value(status)?;
        value["intact"] = intact.into();
        done(value)
    }
}
