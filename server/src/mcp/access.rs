//! Who calls and what they may do. Over HTTP the authentication middleware has already
//! checked the token (`/mcp` needs `viewer`) and put its [`Principal`] on the request, which
//! rmcp hands the handler with the request's parts; each tool then asks for the scope it needs
//! (reading: `viewer`; starting, cancelling, deciding, answering: `operator`), and a token
//! limited to projects sees and acts on those projects' runs only. Over stdio the caller is
//! the machine's own user, with full access, like every other CLI command.

use app::dto::RunSummary;
use app::events::TokenScope;
use axum::http::request::Parts;
use rmcp::RoleServer;
use rmcp::service::RequestContext;

use super::error::ToolError;
use super::{FactoryMcp, Transport};
use crate::api::Principal;

impl FactoryMcp {
    /// The caller of this request.
    pub(super) fn caller(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Principal, ToolError> {
        match self.transport {
            Transport::Stdio => Ok(Principal::local()),
            Transport::Http => context
                .extensions
                .get::<Parts>()
                .and_then(|parts| parts.extensions.get::<Principal>())
                .cloned()
                .ok_or_else(|| {
                    // Never expected: the middleware refuses `/mcp` without credentials.
                    ToolError::Forbidden(
                        "this request carries no credentials: send `Authorization: Bearer \
                         <token>`"
                            .into(),
                    )
                }),
        }
    }

    /// The run `run_id`, when it exists and `caller` may see it.
    pub(super) async fn visible_run(
        &self,
        caller: &Principal,
        run_id: &str,
    ) -> Result<RunSummary, ToolError> {
        let run = self.services.store.get_run(run_id).await?.ok_or_else(|| {
            ToolError::NotFound(format!(
                "no run with id {run_id:?}: list_runs shows the runs there are"
            ))
        })?;
        if !caller.may_use_project(run.project.as_deref()).await {
            return Err(outside_projects(caller, run.project.as_deref()));
        }
        Ok(run)
    }

    /// `items` without those whose run's project `caller` may not see (all of them for a token
    /// limited to no project).
    pub(super) async fn only_visible<T>(
        &self,
        caller: &Principal,
        items: Vec<T>,
        project_of: impl Fn(&T) -> Option<&str>,
    ) -> Vec<T> {
        if caller.projects.is_empty() {
            return items;
        }
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            if caller.may_use_project(project_of(&item)).await {
                kept.push(item);
            }
        }
        kept
    }
}

/// Refused unless `caller`'s scope includes `needed`.
pub(super) fn require(caller: &Principal, needed: TokenScope, tool: &str) -> Result<(), ToolError> {
    if caller.scope < needed {
        return Err(ToolError::Forbidden(format!(
            "`{tool}` needs a token with the `{needed}` scope; the token used has `{}`",
            caller.scope
        )));
    }
    Ok(())
}

/// Why a token limited to projects may not use a run of `project`.
pub(super) fn outside_projects(caller: &Principal, project: Option<&str>) -> ToolError {
    ToolError::Forbidden(format!(
        "this token is limited to the projects {}; {}",
        caller.projects.join(", "),
        project.map_or(
            "the run is in no project (a new run must name one of them in `project`)".to_string(),
            |p| format!("the run's project {p} is not one of them"),
        ),
    ))
}
