//! Which scope each route and server function needs: one table, read by the middleware and
//! walked by the tests. A path not in it needs `viewer` for GET (pages, assets, 404s) and
//! `admin` for anything else, so a new state-changing route is closed until it is listed.

use app::events::TokenScope::{self, Admin, Operator, Viewer};

/// Where the run (or project) a request acts on is found, for tokens limited to projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Nothing run-specific: a list, a search or a global setting.
    Nothing,
    /// The run id is the path's `{id}`.
    RunInPath,
    /// The approval id is the path's `{id}`; its run is looked up.
    ApprovalInPath,
    /// A run id in this query parameter; absent, the request is a list.
    RunInQuery(&'static str),
    /// A run id in this field of the body (a server function's form, or JSON); absent, a list.
    RunInBody(&'static str),
    /// An approval id in this field of the body.
    ApprovalInBody(&'static str),
    /// The project a new run is for, in this field of the body.
    ProjectInBody(&'static str),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET` also covers `HEAD`.
    pub method: &'static str,
    /// The path; `{id}` stands for one segment.
    pub path: &'static str,
    pub scope: TokenScope,
    pub target: Target,
}

const fn route(
    method: &'static str,
    path: &'static str,
    scope: TokenScope,
    target: Target,
) -> Route {
    Route {
        method,
        path,
        scope,
        target,
    }
}

use Target::{
    ApprovalInBody, ApprovalInPath, Nothing, ProjectInBody, RunInBody, RunInPath, RunInQuery,
};

/// Every protected route: the REST API (`api::routes`), the dashboard's pages and its server
/// functions (`POST /api/<endpoint>`, `app::server_fns`). Public paths (`/login`, assets) are
/// not here.
pub const ROUTES: &[Route] = &[
    // REST: reading.
    route("GET", "/api/runs", Viewer, Nothing),
    route("GET", "/api/runs/{id}", Viewer, RunInPath),
    route("GET", "/supervisor/status/{id}", Viewer, RunInPath),
    route("GET", "/events", Viewer, RunInQuery("run_id")),
    route("GET", "/api/costs", Viewer, Nothing),
    route("GET", "/api/teams", Viewer, Nothing),
    route("GET", "/api/projects", Viewer, Nothing),
    route("GET", "/api/approvals", Viewer, RunInQuery("run_id")),
    route("GET", "/api/approvals/{id}", Viewer, ApprovalInPath),
    route("GET", "/api/memory/search", Viewer, Nothing),
    route("GET", "/api/settings", Viewer, Nothing),
    route("GET", "/ws", Viewer, RunInQuery("run")),
    // MCP over streamable HTTP: messages, the server's stream, ending a session. Every tool
    // checks the scope it needs and the token's projects itself (`crate::mcp`).
    route("POST", "/mcp", Viewer, Nothing),
    route("GET", "/mcp", Viewer, Nothing),
    route("DELETE", "/mcp", Viewer, Nothing),
    route("GET", "/metrics", Viewer, Nothing),
    // REST: acting on runs.
    route(
        "POST",
        "/supervisor/start",
        Operator,
        ProjectInBody("project"),
    ),
    route("POST", "/supervisor/cancel/{id}", Operator, RunInPath),
    route(
        "POST",
        "/api/approvals/{id}/decide",
        Operator,
        ApprovalInPath,
    ),
    // REST: administration.
    route("POST", "/api/projects", Admin, Nothing),
    route("PUT", "/api/settings/budgets", Admin, Nothing),
    route("PUT", "/api/settings/routing", Admin, Nothing),
    route("PUT", "/api/settings/aliases", Admin, Nothing),
    route("POST", "/api/settings/providers", Admin, Nothing),
    route("PUT", "/api/settings/providers/{id}", Admin, Nothing),
    route("DELETE", "/api/settings/providers/{id}", Admin, Nothing),
    // A test call spends (a few tokens) and shows what a provider answers.
    route("POST", "/api/settings/providers/{id}/test", Admin, Nothing),
    // Dashboard pages.
    route("GET", "/", Viewer, Nothing),
    route("GET", "/approvals", Viewer, Nothing),
    route("GET", "/runs/{id}", Viewer, RunInPath),
    route("GET", "/costs", Viewer, RunInQuery("run")),
    route("GET", "/gym", Viewer, Nothing),
    route("GET", "/gym/changed/{id}", Viewer, Nothing),
    route("GET", "/memory", Viewer, Nothing),
    route("GET", "/audit", Viewer, Nothing),
    route("GET", "/settings", Viewer, Nothing),
    // Server functions: reading.
    route("POST", "/api/run_view", Viewer, RunInBody("id")),
    route("POST", "/api/composer_options", Viewer, Nothing),
    route("POST", "/api/list_runs", Viewer, Nothing),
    route("POST", "/api/pending_approvals", Viewer, Nothing),
    route("POST", "/api/cost_dashboard", Viewer, RunInBody("run")),
    route("POST", "/api/gym_dashboard", Viewer, Nothing),
    route("POST", "/api/gym_change", Viewer, Nothing),
    route("POST", "/api/memory_banks", Viewer, Nothing),
    route("POST", "/api/search_memory", Viewer, Nothing),
    route("POST", "/api/audit_page", Viewer, Nothing),
    route("POST", "/api/audit_verify", Viewer, Nothing),
    route("POST", "/api/event_detail", Viewer, Nothing),
    route("POST", "/api/artifact_html", Viewer, RunInBody("run_id")),
    route("POST", "/api/work_order_diff", Viewer, RunInBody("run_id")),
    route("POST", "/api/get_settings", Viewer, Nothing),
    // Server functions: acting on runs.
    route("POST", "/api/start_run", Operator, ProjectInBody("project")),
    route("POST", "/api/cancel_run", Operator, RunInBody("id")),
    route(
        "POST",
        "/api/decide_approval",
        Operator,
        ApprovalInBody("id"),
    ),
    // Server functions: administration.
    route("POST", "/api/update_budgets", Admin, Nothing),
    route("POST", "/api/update_routing", Admin, Nothing),
    route("POST", "/api/add_provider", Admin, Nothing),
    route("POST", "/api/edit_provider", Admin, Nothing),
    route("POST", "/api/remove_provider", Admin, Nothing),
    route("POST", "/api/update_aliases", Admin, Nothing),
    route("POST", "/api/test_provider", Admin, Nothing),
];

/// The segment `path` has where `pattern` has `{id}`, if `path` matches `pattern`; an empty
/// string when the pattern has no `{id}`.
pub fn matches<'p>(pattern: &str, path: &'p str) -> Option<&'p str> {
    let mut id = "";
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(segment)) if !segment.is_empty() => id = segment,
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

/// What a request needs: its row's scope and target. A listed path asked with another method
/// needs `admin` (the router refuses it anyway); an unlisted one `viewer` for GET, else `admin`.
pub fn required(method: &str, path: &str) -> (TokenScope, Target) {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut listed = false;
    for route in ROUTES {
        if matches(route.path, path).is_some() {
            if route.method == method {
                return (route.scope, route.target);
            }
            listed = true;
        }
    }
    let scope = if method == "GET" && !listed {
        Viewer
    } else {
        Admin
    };
    (scope, Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_one_segment_per_id() {
        assert_eq!(matches("/api/runs/{id}", "/api/runs/r1"), Some("r1"));
        assert_eq!(matches("/api/runs/{id}", "/api/runs/"), None);
        assert_eq!(matches("/api/runs/{id}", "/api/runs/r1/x"), None);
        assert_eq!(matches("/api/runs", "/api/runs"), Some(""));
        assert_eq!(
            matches("/api/approvals/{id}/decide", "/api/approvals/a/decide"),
            Some("a")
        );
    }

    #[test]
    fn unknown_paths_are_closed_unless_they_only_read() {
        assert_eq!(required("GET", "/api/runs").0, Viewer);
        assert_eq!(required("HEAD", "/runs/r1"), (Viewer, RunInPath));
        assert_eq!(required("POST", "/api/projects").0, Admin);
        assert_eq!(
            required("POST", "/api/cancel_run"),
            (Operator, RunInBody("id"))
        );
        assert_eq!(required("GET", "/no-such-page").0, Viewer);
        assert_eq!(required("POST", "/api/some_new_function").0, Admin);
        assert_eq!(required("DELETE", "/api/runs/r1").0, Admin);
        // A read-only server function asked with GET is not a way around the table.
        assert_eq!(required("GET", "/api/update_budgets").0, Admin);
    }
}
