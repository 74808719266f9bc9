//! Approval tools: `list_approvals`, `decide_approval`, `answer_clarification`.

use app::approval::{Approval, ApprovalKind, ApprovalStatus};
use app::events::TokenScope::{Operator, Viewer};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde::Deserialize;

use super::done;
use crate::api::Principal;
use crate::mcp::FactoryMcp;
use crate::mcp::access::require;
use crate::mcp::error::ToolError;
use crate::mcp::wait::{self, Watch};

/// Arguments of `list_approvals`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListApprovals {
    /// `pending` (the default), `decided` or `all`.
    #[serde(default)]
    status: Option<String>,
    /// Only this run's approvals.
    #[serde(default)]
    run_id: Option<String>,
    /// At most this many, oldest first: 1 to 1000 (default 200).
    #[serde(default)]
    limit: Option<u32>,
}

/// Arguments of `decide_approval`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideApproval {
    /// The approval's id (list_approvals, or a run's pending_approvals).
    approval_id: String,
    /// One of the options the approval offers, e.g. `approve`, `revise`, `reject` for a plan.
    option: String,
    /// The words an option needs (feedback, guidance, an answer); at most 4000 characters.
    #[serde(default)]
    text: Option<String>,
    /// Then wait until the run finishes or waits for a person again.
    #[serde(default)]
    wait: bool,
    /// How long to wait, in seconds: 1 to 1800 (default 300).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// Arguments of `answer_clarification`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerClarification {
    /// The clarification approval's id; or give `run_id` to answer the run's open question.
    #[serde(default)]
    approval_id: Option<String>,
    /// The run whose open question to answer (when `approval_id` is not given).
    #[serde(default)]
    run_id: Option<String>,
    /// The answer, in words (at most 4000 characters).
    answer: String,
    /// Then wait until the run finishes or waits for a person again.
    #[serde(default)]
    wait: bool,
    /// How long to wait, in seconds: 1 to 1800 (default 300).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

#[tool_router(router = approval_tools, vis = "pub(crate)")]
impl FactoryMcp {
    #[tool(
        description = "Approvals: decisions waiting for a person (plan, review, blocked stage, \
                       budget, clarification), with the options each offers.",
        annotations(read_only_hint = true)
    )]
    async fn list_approvals(
        &self,
        Parameters(args): Parameters<ListApprovals>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Viewer, "list_approvals")?;
        let status = match args.status.as_deref().unwrap_or("pending") {
            "all" => None,
            s if ApprovalStatus::parse(s).is_some() => Some(s),
            other => {
                return Err(ToolError::BadInput(format!(
                    "`status` must be `pending`, `decided` or `all`, not {other:?}"
                )));
            }
        };
        if let Some(run_id) = &args.run_id {
            self.visible_run(&caller, run_id).await?;
        }
        let store = &self.services.store;
        let approvals =
            crate::api::list_approvals(store, status, args.run_id.as_deref(), args.limit).await?;
        let approvals = self.of_visible_runs(&caller, approvals).await?;
        done(serde_json::json!({ "approvals": approvals }))
    }

    #[tool(
        description = "Decide a pending approval with one of its options (and text where the \
                       option needs words); the run continues. With wait=true, returns when it \
                       finishes or waits for a person again. Needs `operator`."
    )]
    async fn decide_approval(
        &self,
        Parameters(args): Parameters<DecideApproval>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Operator, "decide_approval")?;
        let approval = crate::api::approval(&self.services.store, &args.approval_id).await?;
        let decision = Decision {
            option: &args.option,
            text: args.text,
            wait: args.wait,
            timeout_secs: args.timeout_secs,
        };
        self.decide(&context, &caller, approval, decision).await
    }

    #[tool(
        description = "Answer a question a run's teams could not settle (a clarification \
                       approval), by approval_id or by the run's id; the run continues. With \
                       wait=true, returns when it finishes or waits for a person again. Needs \
                       `operator`."
    )]
    async fn answer_clarification(
        &self,
        Parameters(args): Parameters<AnswerClarification>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = self.caller(&context)?;
        require(&caller, Operator, "answer_clarification")?;
        let store = &self.services.store;
        let approval = match (&args.approval_id, &args.run_id) {
            (Some(id), None) => crate::api::approval(store, id).await?,
            (None, Some(run_id)) => {
                self.visible_run(&caller, run_id).await?;
                open_question(store, run_id).await?
            }
            _ => {
                return Err(ToolError::BadInput(
                    "give either `approval_id` (the clarification's) or `run_id` (to answer \
                     the run's open question), not both or neither"
                        .into(),
                ));
            }
        };
        if approval.kind != ApprovalKind::Clarification {
            let options: Vec<&str> = approval.options.iter().map(|o| o.id.as_str()).collect();
            return Err(ToolError::BadInput(format!(
                "approval {} is a `{}` approval, not a question: decide it with \
                 decide_approval (options: {})",
                approval.id,
                approval.kind.as_str(),
                options.join(", ")
            )));
        }
        let decision = Decision {
            option: "answer",
            text: Some(args.answer),
            wait: args.wait,
            timeout_secs: args.timeout_secs,
        };
        self.decide(&context, &caller, approval, decision).await
    }
}

/// A decision as a tool was asked for it.
struct Decision<'a> {
    option: &'a str,
    text: Option<String>,
    wait: bool,
    timeout_secs: Option<u64>,
}

impl FactoryMcp {
    /// Records the decision (as the REST API does) and reports the run, waiting if asked.
    async fn decide(
        &self,
        context: &RequestContext<RoleServer>,
        caller: &Principal,
        approval: Approval,
        decision: Decision<'_>,
    ) -> Result<CallToolResult, ToolError> {
        self.visible_run(caller, &approval.run_id).await?;
        let timeout = wait::timeout(decision.timeout_secs)?;
        let events = Watch::start(&self.services.store);
        let run_id = self
            .services
            .engine
            .decide(&approval.id, decision.option, decision.text, "mcp")
            .await?;
        let decided = crate::api::approval(&self.services.store, &approval.id).await?;
        let settled = match decision.wait {
            true => Some(self.settle(context, &run_id, events, timeout).await?),
            false => None,
        };
        let report = self.report(&run_id, settled).await?;
        done(serde_json::json!({ "approval": decided, "report": report }))
    }

    /// `approvals` without those of runs the caller may not see.
    async fn of_visible_runs(
        &self,
        caller: &Principal,
        approvals: Vec<Approval>,
    ) -> Result<Vec<Approval>, ToolError> {
        if caller.projects.is_empty() {
            return Ok(approvals);
        }
        let mut kept = Vec::with_capacity(approvals.len());
        for approval in approvals {
            if self.visible_run(caller, &approval.run_id).await.is_ok() {
                kept.push(approval);
            }
        }
        Ok(kept)
    }
}

/// The run's pending clarification approval.
async fn open_question(store: &crate::store::Store, run_id: &str) -> Result<Approval, ToolError> {
    let pending = crate::api::list_approvals(store, Some("pending"), Some(run_id), None).await?;
    let kinds: Vec<&str> = pending.iter().map(|a| a.kind.as_str()).collect();
    pending
        .iter()
        .find(|a| a.kind == ApprovalKind::Clarification)
        .cloned()
        .ok_or_else(|| {
            ToolError::NotFound(format!(
                "run {run_id} has no question waiting for an answer{}",
                if kinds.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; it waits for {} approval(s): use decide_approval",
                        kinds.join(", ")
                    )
                }
            ))
        })
}
