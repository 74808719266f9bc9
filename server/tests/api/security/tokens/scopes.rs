//! Scopes: every route and server function, walked from the server's own table with a viewer,
//! an operator and an admin token; sessions keep their token's scope; tokens limited to
//! projects act only on those projects' runs.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};

use super::sign_in;
use crate::support::app::TestApp;
use crate::support::{
    Access, ApprovalKind, ApprovalOption, EventData, NewEvent, NewRun, TokenScope,
};

/// The registered server functions, `(method, path)`.
fn server_functions() -> Vec<(String, String)> {
    leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (method.to_string(), path.to_string()))
        .collect()
}

/// Sends `method path` with `token` and an empty body of the kind the route reads.
async fn send(app: &TestApp, method: &str, path: &str, token: &str) -> reqwest::Response {
    let is_server_fn = server_functions()
        .iter()
        .any(|(m, p)| m == method && p == path);
    let req = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(token);
    let req = match (method, is_server_fn) {
        ("GET", _) => req,
        (_, true) => req
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(""),
        (_, false) => req.header(CONTENT_TYPE, "application/json").body("{}"),
    };
    req.send().await.unwrap()
}

#[test]
fn every_server_function_has_a_scope_in_the_table() {
    let functions = server_functions();
    assert!(
        functions.len() >= 18,
        "server functions are registered: {functions:?}"
    );
    for (method, path) in functions {
        assert!(
            Access::scoped_routes().any(|(m, p, _)| m == method && p == path),
            "server function {method} {path} is not in the scope table (server/src/api/auth/scope.rs)"
        );
    }
}

/// The policy, written down apart from the server's table: every route that is not a GET, with
/// the scope it needs (GETs need `viewer`). A route the table adds must be added here too.
const NOT_GET: &[(&str, &str, TokenScope)] = &[
    ("POST", "/supervisor/start", TokenScope::Operator),
    ("POST", "/supervisor/cancel/{id}", TokenScope::Operator),
    ("POST", "/api/approvals/{id}/decide", TokenScope::Operator),
    ("POST", "/api/start_run", TokenScope::Operator),
    ("POST", "/api/cancel_run", TokenScope::Operator),
    ("POST", "/api/decide_approval", TokenScope::Operator),
    ("POST", "/api/projects", TokenScope::Admin),
    ("PUT", "/api/settings/budgets", TokenScope::Admin),
    ("PUT", "/api/settings/routing", TokenScope::Admin),
    ("PUT", "/api/settings/aliases", TokenScope::Admin),
    ("POST", "/api/settings/providers", TokenScope::Admin),
    ("PUT", "/api/settings/providers/{id}", TokenScope::Admin),
    ("DELETE", "/api/settings/providers/{id}", TokenScope::Admin),
    (
        "POST",
        "/api/settings/providers/{id}/test",
        TokenScope::Admin,
    ),
    ("POST", "/api/add_provider", TokenScope::Admin),
    ("POST", "/api/edit_provider", TokenScope::Admin),
    ("POST", "/api/remove_provider", TokenScope::Admin),
    ("POST", "/api/update_aliases", TokenScope::Admin),
    ("POST", "/api/test_provider", TokenScope::Admin),
    ("POST", "/api/update_budgets", TokenScope::Admin),
    ("POST", "/api/update_routing", TokenScope::Admin),
    ("POST", "/api/run_view", TokenScope::Viewer),
    ("POST", "/api/composer_options", TokenScope::Viewer),
    ("POST", "/api/list_runs", TokenScope::Viewer),
    ("POST", "/api/pending_approvals", TokenScope::Viewer),
    ("POST", "/api/cost_dashboard", TokenScope::Viewer),
    ("POST", "/api/gym_dashboard", TokenScope::Viewer),
    ("POST", "/api/gym_change", TokenScope::Viewer),
    ("POST", "/api/memory_banks", TokenScope::Viewer),
    ("POST", "/api/search_memory", TokenScope::Viewer),
    ("POST", "/api/audit_page", TokenScope::Viewer),
    ("POST", "/api/audit_verify", TokenScope::Viewer),
    ("POST", "/api/event_detail", TokenScope::Viewer),
    ("POST", "/api/artifact_html", TokenScope::Viewer),
    ("POST", "/api/work_order_diff", TokenScope::Viewer),
    ("POST", "/api/get_settings", TokenScope::Viewer),
    // MCP: each tool checks the scope it needs (a viewer may list and read).
    ("POST", "/mcp", TokenScope::Viewer),
    ("DELETE", "/mcp", TokenScope::Viewer),
];

#[test]
fn the_table_gives_each_route_the_scope_of_the_policy() {
    for (method, path, scope) in Access::scoped_routes() {
        let expected = if method == "GET" {
            TokenScope::Viewer
        } else {
            NOT_GET
                .iter()
                .find(|(m, p, _)| *m == method && *p == path)
                .map(|(_, _, s)| *s)
                .unwrap_or_else(|| {
                    panic!("{method} {path} is new: add it with its scope to NOT_GET")
                })
        };
        assert_eq!(scope, expected, "{method} {path}");
    }
    for (method, path, _) in NOT_GET {
        assert!(
            Access::scoped_routes().any(|(m, p, _)| m == *method && p == *path),
            "{method} {path} is missing from the table: it would fall to the default"
        );
    }
}

#[tokio::test]
async fn every_route_refuses_a_scope_below_its_own() {
    let app = TestApp::spawn().await;
    let mut tokens = Vec::new();
    for scope in TokenScope::ALL {
        let issued = app
            .store
            .create_token(scope.as_str(), scope, vec![], "test")
            .await
            .unwrap();
        tokens.push((scope, issued.secret));
    }
    let routes: Vec<_> = Access::scoped_routes().collect();
    assert!(routes.len() > 30, "{routes:?}");
    for (method, pattern, needed) in routes {
        let path = pattern.replace("{id}", "no-such-id");
        for (scope, secret) in &tokens {
            let res = send(&app, method, &path, secret).await;
            let status = res.status();
            let body = res.text().await.unwrap();
            if *scope < needed {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{scope} {method} {path}: {body}"
                );
                let message =
                    serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["message"]
                        .as_str()
                        .unwrap()
                        .to_string();
                assert!(
                    message.contains(&format!("`{needed}`"))
                        && message.contains(&format!("`{scope}`")),
                    "{message}"
                );
            } else {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{scope} {method} {path}: {body}"
                );
                // The table names routes that exist.
                for missing in ["no route for", "Could not find a server function"] {
                    assert!(!body.contains(missing), "{method} {path}: {body}");
                }
            }
        }
    }
    // Nothing was started, cancelled or changed by the walk.
    assert!(app.store.list_runs(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_session_has_the_scope_of_its_token_and_unknown_changes_need_admin() {
    let app = TestApp::spawn().await;
    let viewer = app
        .store
        .create_token("v", TokenScope::Viewer, vec![], "test")
        .await
        .unwrap();
    let session = sign_in(&app, &viewer.secret).await.unwrap();
    let post = |path: &str| {
        app.client
            .post(app.url(path))
            .header(COOKIE, format!("factory_session={session}"))
            .header("origin", &app.base)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("id=r1")
            .send()
    };
    assert_eq!(post("/api/list_runs").await.unwrap().status(), 200);
    let res = post("/api/cancel_run").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("`operator`") && body.contains("`viewer`"),
        "{body}"
    );
    // A state-changing path the table does not know is closed to all but admins.
    let res = post("/api/a_function_added_later").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// A run recorded directly in the store (queued; the engine never sees it).
async fn run_in(app: &TestApp, project: Option<&str>, key: &str) -> String {
    let (id, _) = app
        .store
        .create_run(
            NewRun {
                goal: format!("goal {key}"),
                project: project.map(str::to_string),
                request_id: Some(key.to_string()),
                pipeline: None,
            },
            "test",
        )
        .await
        .unwrap();
    id
}

/// An approval waiting on `run_id`.
async fn approval_for(app: &TestApp, run_id: &str) -> String {
    let id = format!("ap-{run_id}");
    let event = EventData::ApprovalRequested {
        approval_id: id.clone(),
        run_id: run_id.to_string(),
        index: 0,
        kind: ApprovalKind::Plan,
        question: "Go?".into(),
        context: String::new(),
        options: vec![ApprovalOption {
            id: "approve".into(),
            label: "Approve".into(),
            needs_text: false,
        }],
        deadline: None,
        escalation: None,
        detail: serde_json::Value::Null,
    };
    app.store
        .append_batch(vec![NewEvent::new("test", event)])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_token_limited_to_a_project_acts_only_on_its_runs() {
    let app = TestApp::spawn().await;
    let (mine, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let canonical = |d: &tempfile::TempDir| {
        std::fs::canonicalize(d.path())
            .unwrap()
            .display()
            .to_string()
    };
    let (mine_path, theirs_path) = (canonical(&mine), canonical(&theirs));
    let token = app
        .store
        .create_token("ops", TokenScope::Operator, vec![mine_path.clone()], "test")
        .await
        .unwrap()
        .secret;
    let own = run_in(&app, Some(&mine_path), "own").await;
    let other = run_in(&app, Some(&theirs_path), "other").await;
    let loose = run_in(&app, None, "loose").await;
    let other_approval = approval_for(&app, &other).await;

    let status = |method: &'static str,
                  path: String,
                  form: Option<String>,
                  json: Option<serde_json::Value>| {
        let req = app
            .client
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&token);
        let req = match (form, json) {
            (Some(form), _) => req
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form),
            (None, Some(json)) => req.json(&json),
            (None, None) => req,
        };
        async move { req.send().await.unwrap().status() }
    };
    // Reading and acting on a run of another project, or of none, is refused.
    for run in [&other, &loose] {
        assert_eq!(
            status("GET", format!("/api/runs/{run}"), None, None).await,
            403
        );
        assert_eq!(status("GET", format!("/runs/{run}"), None, None).await, 403);
        assert_eq!(
            status("GET", format!("/events?run_id={run}"), None, None).await,
            403
        );
        assert_eq!(
            status("GET", format!("/ws?run={run}"), None, None).await,
            403
        );
        assert_eq!(
            status(
                "POST",
                "/api/run_view".into(),
                Some(format!("id={run}")),
                None
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "POST",
                format!("/supervisor/cancel/{run}"),
                None,
                Some(serde_json::json!({}))
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "POST",
                "/api/cancel_run".into(),
                Some(format!("id={run}")),
                None
            )
            .await,
            403
        );
    }
    assert_eq!(
        status(
            "GET",
            format!("/api/approvals/{other_approval}"),
            None,
            None
        )
        .await,
        403
    );
    assert_eq!(
        status(
            "POST",
            "/api/decide_approval".into(),
            Some(format!("id={other_approval}&option=approve")),
            None
        )
        .await,
        403
    );
    // Starting a run elsewhere, or without a project, is refused.
    for project in [Some(theirs_path.as_str()), None] {
        let mut body = serde_json::json!({ "goal": "Add a health check" });
        if let Some(p) = project {
            body["project"] = p.into();
        }
        assert_eq!(
            status("POST", "/supervisor/start".into(), None, Some(body)).await,
            403,
            "{project:?}"
        );
    }
    let form = format!("goal=Add+a+health+check&project={theirs_path}");
    assert_eq!(
        status("POST", "/api/start_run".into(), Some(form), None).await,
        403
    );

    // Its own project's run is open to it; lists are not filtered.
    assert_eq!(
        status("GET", format!("/api/runs/{own}"), None, None).await,
        200
    );
    assert_eq!(
        status(
            "POST",
            "/api/run_view".into(),
            Some(format!("id={own}")),
            None
        )
        .await,
        200
    );
    assert_eq!(
        status(
            "POST",
            format!("/supervisor/cancel/{own}"),
            None,
            Some(serde_json::json!({}))
        )
        .await,
        200
    );
    assert_eq!(status("GET", "/api/runs".into(), None, None).await, 200);
    let runs = app.store.list_runs(10).await.unwrap();
    let canceled: Vec<_> = runs
        .iter()
        .filter(|r| r.status.as_str() == "canceled")
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(canceled, vec![own], "only its own run was cancelled");
    assert_eq!(runs.len(), 3, "no run was started");
}
