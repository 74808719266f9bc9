//! Tokens limited to projects: a request that names a run (in its path, query or body) or a
//! project to start a run in is refused unless that run's project is one of the token's. Lists
//! (runs, approvals, costs, the audit log, the unfiltered `/ws` stream) are not filtered.

use std::collections::HashMap;

use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{StatusCode, header};

use super::Principal;
use super::scope::{Target, matches};
use crate::api::ApiError;
use crate::startup::AppState;

/// Passes `req` on when `principal` may act on what it names; reads (and puts back) the body
/// when the run or project is in it.
pub async fn check(
    state: &AppState,
    principal: &Principal,
    route_path: Option<&str>,
    target: Target,
    req: Request,
) -> Result<Request, ApiError> {
    if principal.projects.is_empty() {
        return Ok(req);
    }
    let (req, found) = find(state, route_path, target, req).await?;
    let project = match found {
        Found::Nothing => return Ok(req),
        Found::Run(id) => match state.store.get_run(&id).await? {
            // Unknown runs are the handler's to refuse (404).
            None => return Ok(req),
            Some(run) => run.project,
        },
        Found::Approval(id) => {
            let Some(approval) = state.store.get_approval(&id).await? else {
                return Ok(req);
            };
            match state.store.get_run(&approval.run_id).await? {
                None => return Ok(req),
                Some(run) => run.project,
            }
        }
        Found::NewRun(given) => resolve(&state.store, given).await?,
    };
    if allowed(&principal.projects, project.as_deref()).await {
        Ok(req)
    } else {
        Err(ApiError::Forbidden(format!(
            "this token is limited to the projects {}; {}",
            principal.projects.join(", "),
            project.map_or(
                "the run is in no project (a new run must name one of them in `project`)"
                    .to_string(),
                |p| format!("the run's project {p} is not one of them"),
            ),
        )))
    }
}

/// What a request acts on.
enum Found {
    Nothing,
    Run(String),
    Approval(String),
    /// A run to start, in this project (as given: a name or a path), or in none.
    NewRun(Option<String>),
}

async fn find(
    state: &AppState,
    route_path: Option<&str>,
    target: Target,
    req: Request,
) -> Result<(Request, Found), ApiError> {
    let in_path = || {
        route_path
            .and_then(|p| matches(p, req.uri().path()))
            .unwrap_or_default()
            .to_string()
    };
    let found = match target {
        Target::Nothing => Found::Nothing,
        Target::RunInPath => Found::Run(in_path()),
        Target::ApprovalInPath => Found::Approval(in_path()),
        Target::RunInQuery(name) => {
            let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
                .map(|Query(q)| q)
                .unwrap_or_default();
            given(query.get(name)).map_or(Found::Nothing, Found::Run)
        }
        Target::RunInBody(name) | Target::ApprovalInBody(name) | Target::ProjectInBody(name) => {
            let (req, value) = body_field(state, req, name).await?;
            let found = match (target, value) {
                (Target::ProjectInBody(_), value) => Found::NewRun(value),
                (_, None) => Found::Nothing,
                (Target::ApprovalInBody(_), Some(id)) => Found::Approval(id),
                (_, Some(id)) => Found::Run(id),
            };
            return Ok((req, found));
        }
    };
    Ok((req, found))
}

/// A non-blank value.
fn given(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Field `name` of a JSON or form body; the request comes back with the same body.
async fn body_field(
    state: &AppState,
    req: Request,
    name: &str,
) -> Result<(Request, Option<String>), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| ApiError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "request body is too large".into(),
        })?;
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let value = if json {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get(name).and_then(|f| f.as_str()).map(str::to_string))
    } else {
        let probe = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(bytes.clone()))
            .map_err(|e| ApiError::Internal(e.into()))?;
        Form::<HashMap<String, String>>::from_request(probe, &())
            .await
            .ok()
            .and_then(|Form(fields)| fields.get(name).cloned())
    };
    let value = given(value.as_ref());
    Ok((Request::from_parts(parts, Body::from(bytes)), value))
}

/// A project as a run records it: a registered project's path, else the path given.
pub(super) async fn resolve(
    store: &crate::store::Store,
    given: Option<String>,
) -> Result<Option<String>, crate::store::StoreError> {
    let Some(given) = given else {
        return Ok(None);
    };
    Ok(Some(match store.find_project(&given).await? {
        Some(project) => project.path,
        None => given,
    }))
}

/// True when `project` is one of `projects` (compared as given, then canonicalised).
pub(super) async fn allowed(projects: &[String], project: Option<&str>) -> bool {
    let Some(project) = project else {
        return false;
    };
    if projects.iter().any(|p| p == project) {
        return true;
    }
    match tokio::fs::canonicalize(project).await {
        Ok(path) => projects.iter().any(|p| std::path::Path::new(p) == path),
        Err(_) => false,
    }
}
