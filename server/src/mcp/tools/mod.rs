//! The tools, one router per area: runs ([`runs`]), approvals and clarifications
//! ([`approvals`]), and reads of the catalogue, projects, memory, artifacts and diffs
//! ([`reads`]). Each checks its caller's scope and projects, then calls what the REST handler
//! calls. Results are JSON objects (`structuredContent`, repeated as text); failures are tool
//! errors (`isError: true`) whose text says what was wrong and what is accepted.

mod approvals;
mod reads;
mod runs;

use app::approval::{Approval, ApprovalKind, ApprovalStatus};
use app::dto::{RunDetail, RunStatus};
use rmcp::RoleServer;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use serde::Serialize;

use super::FactoryMcp;
use super::error::ToolError;
use super::wait::{self, Progress, Settled, Wait, Watch};

/// A tool's JSON result.
fn done(value: impl Serialize) -> Result<CallToolResult, ToolError> {
    Ok(CallToolResult::structured(serde_json::to_value(value)?))
}

/// A run as the run and approval tools return it.
#[derive(Debug, Serialize)]
struct RunReport {
    run: RunDetail,
    /// What the run waits for, when it waits for a person.
    pending_approvals: Vec<Approval>,
    /// How the wait ended, when the call waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<Settled>,
    /// What the caller can do next, in words.
    next: String,
}

impl FactoryMcp {
    /// Waits for `run_id` as the request asks (`watch` started before the tool acted).
    async fn settle(
        &self,
        context: &RequestContext<RoleServer>,
        run_id: &str,
        watch: Watch,
        timeout: std::time::Duration,
    ) -> Result<Settled, ToolError> {
        let wait = Wait {
            watch,
            timeout,
            progress: Progress::of(context),
            cancel: [context.ct.clone(), self.services.shutdown.clone()],
        };
        wait::until_settled(&self.services.store, run_id, wait).await
    }

    /// The run, its pending approvals and the next step.
    async fn report(&self, run_id: &str, wait: Option<Settled>) -> Result<RunReport, ToolError> {
        let store = &self.services.store;
        let run = crate::api::run_detail(store, run_id).await?;
        let pending = crate::api::list_approvals(
            store,
            Some(ApprovalStatus::Pending.as_str()),
            Some(run_id),
            None,
        )
        .await?;
        let next = next_step(&run, &pending, wait);
        Ok(RunReport {
            run,
            pending_approvals: pending,
            wait,
            next,
        })
    }
}

/// What a caller can do about a run in its current state.
fn next_step(run: &RunDetail, pending: &[Approval], wait: Option<Settled>) -> String {
    let id = &run.summary.id;
    let status = run.summary.status;
    if status.is_terminal() {
        let reason = run.reason.as_deref().unwrap_or("no reason recorded");
        return format!(
            "run {id} {status} ({reason}); read its artifacts with get_artifact and its work \
             orders' diffs with get_diff"
        );
    }
    if let Some(approval) = pending.first() {
        let options: Vec<&str> = approval.options.iter().map(|o| o.id.as_str()).collect();
        return match approval.kind {
            ApprovalKind::Clarification => format!(
                "a person must answer: \"{}\" — call answer_clarification with approval_id {} \
                 and the answer",
                approval.question, approval.id
            ),
            kind => format!(
                "a person must decide the {} approval {}: \"{}\" — call decide_approval with \
                 one of the options {}",
                kind.as_str(),
                approval.id,
                approval.question,
                options.join(", ")
            ),
        };
    }
    let still = match wait {
        Some(Settled::TimedOut) => "the wait timed out; ",
        Some(Settled::Interrupted) => "the wait was interrupted; ",
        _ => "",
    };
    let status = match status {
        RunStatus::Queued => "queued",
        _ => "running",
    };
    format!("{still}run {id} is {status}: call get_run with wait=true to wait for it")
}
