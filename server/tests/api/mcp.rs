//! MCP with a real client, the official Python SDK (`FACTORY_PYTHON`; `mcp/client.py`): over
//! stdio (`factory mcp`) and streamable HTTP (`/mcp`), in both protocol eras (the
//! 2025-11-25 handshake with sessions and `resources/subscribe`, and 2026-07-28 with
//! `subscriptions/listen`), an agent starts a run offline and waits (progress arrives, the call
//! returns when a person must decide), decides its approvals until it succeeds, reads an
//! artifact and a diff as tools and as resources, pages through the audit trail and verifies
//! it. What the client saw is checked here against the store, the REST API, the files on disk
//! and git; `/mcp` refuses a request without a token, a foreign Origin and a viewer's start.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TOKEN, TestApp, get};
use crate::support::cli::{BIN, factory, text};
use crate::support::git::{client_python, git, git_repo};
use crate::support::{Store, TokenScope};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/mcp/client.py");

/// Runs the client with `args`; the test fails with what it said unless it succeeds. Returns
/// its report.
async fn drive(python: &Path, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(python)
        .arg(CLIENT)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the MCP client failed ({}):\n{}\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What every transport must have shown: progress, the approvals decided, the subscription's
/// updates, the error naming an unknown run, the artifact's text as written and the diff of the
/// delivered commit.
fn check_report(report: &Value, data_dir: &Path, repo: &Path) {
    let run_id = report["run_id"].as_str().unwrap();
    let messages: Vec<&str> = report["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["message"].as_str())
        .collect();
    for needle in [
        "stage 1 `requirements`",
        "waiting for a person",
        "run succeeded",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "no progress saying {needle:?}: {messages:?}"
        );
    }
    assert_eq!(report["decided"], json!(["plan", "review"]), "{report}");
    let run_uri = format!("factory://runs/{run_id}");
    assert!(
        report["updated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == &run_uri),
        "{report}"
    );
    assert!(
        report["unknown_run_error"]
            .as_str()
            .unwrap()
            .contains("no-such-run")
    );
    let artifact = &report["artifact"];
    let on_disk =
        std::fs::read_to_string(data_dir.join(artifact["path"].as_str().unwrap())).unwrap();
    assert!(!on_disk.is_empty());
    assert_eq!(artifact["text"], on_disk, "the artifact as written");
    assert_eq!(artifact["bytes"], on_disk.len());

    let work_order = &report["work_order"];
    let commit = work_order["commit"].as_str().unwrap();
    let diff = report["diff"].as_str().unwrap();
    let files = work_order["files"].as_array().unwrap();
    assert!(!files.is_empty(), "{work_order}");
    for file in files {
        let file = file.as_str().unwrap();
        assert!(diff.contains(&format!("+++ b/{file}\n")), "{file}: {diff}");
        for line in git(repo, &["show", &format!("{commit}:{file}")]).lines() {
            assert!(diff.contains(&format!("\n+{line}\n")), "{line:?}: {diff}");
        }
    }
    assert_eq!(report["chain"]["intact"], true);
}

/// The run's events as the store has them, `(seq, kind)`.
async fn stored_events(store: &Store, run_id: &str) -> Value {
    let events = store.run_events(run_id, 0, 10_000).await.unwrap();
    events
        .iter()
        .map(|e| json!({"seq": e.seq, "kind": e.data.kind()}))
        .collect()
}

#[tokio::test]
async fn an_agent_runs_a_requirement_over_stdio() {
    let Some(python) = client_python("mcp") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let repo_path = repo.path().to_str().unwrap();
    let added = factory(
        data.path(),
        &["project", "add", "--allow-unverified", repo_path],
    );
    assert_eq!(added.status.code(), Some(0), "{added:?}");
    for mode in ["auto", "legacy"] {
        let report = drive(
            &python,
            &[
                "--transport",
                "stdio",
                "--mode",
                mode,
                "--factory",
                BIN,
                "--data-dir",
                data.path().to_str().unwrap(),
                "--project",
                repo_path,
            ],
        )
        .await;
        let expected = match mode {
            "auto" => ("2026-07-28", "subscriptions/listen"),
            _ => ("2025-11-25", "resources/subscribe"),
        };
        assert_eq!(
            (&report["protocol_version"], &report["subscribed_with"]),
            (&json!(expected.0), &json!(expected.1)),
            "{mode}"
        );
        check_report(&report, data.path(), repo.path());

        // The process has exited: the store is as the client saw it.
        let store = Store::open(data.path()).await.unwrap();
        let run_id = report["run_id"].as_str().unwrap();
        let run = store.get_run_detail(run_id).await.unwrap().unwrap();
        assert_eq!(run.summary.status.as_str(), "succeeded");
        assert_eq!(report["events"], stored_events(&store, run_id).await);
        let decided = store.list_approvals(None, Some(run_id), 100).await.unwrap();
        assert!(
            decided
                .iter()
                .all(|a| a.decision.as_ref().unwrap().decided_by == "mcp"),
            "{decided:?}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn an_agent_runs_a_requirement_over_http_and_tokens_keep_their_scope() {
    let Some(python) = client_python("mcp") else {
        return;
    };
    let app = TestApp::spawn().await;
    let data_dir = app.store.path().parent().unwrap().to_path_buf();
    let repo = git_repo();
    let repo_path = repo.path().to_str().unwrap();
    let res = app
        .post_json(
            "/api/projects",
            &json!({"path": repo_path, "policy": {"allow_unverified": true}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let viewer = app
        .store
        .create_token("mcp viewer", TokenScope::Viewer, vec![], "test")
        .await
        .unwrap()
        .secret;
    let url = app.url("/mcp");
    for mode in ["legacy", "auto"] {
        let report = drive(
            &python,
            &[
                "--transport",
                "http",
                "--mode",
                mode,
                "--url",
                &url,
                "--token",
                TOKEN,
                "--viewer-token",
                &viewer,
                "--project",
                repo_path,
            ],
        )
        .await;
        check_report(&report, &data_dir, repo.path());
        let run_id = report["run_id"].as_str().unwrap();
        // The same run through the REST API.
        let (_, run) = get(&app, &format!("/api/runs/{run_id}")).await;
        assert_eq!(run["status"], "succeeded");
        assert_eq!(run["artifacts"][0]["path"], report["artifact"]["path"]);
        let (_, page) = get(&app, &format!("/events?run_id={run_id}&limit=1000")).await;
        let events: Vec<Value> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| json!({"seq": e["seq"], "kind": e["kind"]}))
            .collect();
        assert_eq!(report["events"], json!(events));
        // A viewer reads but neither starts nor cancels; no token gets no session.
        for refusal in ["viewer_start", "viewer_cancel"] {
            let message = report[refusal].as_str().unwrap();
            assert!(message.contains("`operator`"), "{refusal}: {message}");
        }
        assert_ne!(report["anonymous"], "connected");
    }
    assert_eq!(
        app.store.list_runs(10).await.unwrap().len(),
        2,
        "the viewer started nothing"
    );
}

#[tokio::test]
async fn mcp_needs_a_token_and_refuses_foreign_origins() {
    let app = TestApp::spawn().await;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    let post = || {
        app.client
            .post(app.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize)
    };
    let res = post().send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");

    let res = post()
        .bearer_auth(TOKEN)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("FACTORY_ALLOWED_ORIGINS"), "{message}");

    // The server's own origin, or none at all (a non-browser client), is fine.
    for origin in [Some(app.base.as_str()), None] {
        let mut req = post().bearer_auth(TOKEN);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{origin:?}");
        assert!(res.headers().contains_key("mcp-session-id"));
    }
}

/// `factory mcp` writes protocol messages only to stdout (what it logs goes to stderr), and
/// ends without complaint when its client closes the connection.
#[test]
fn factory_mcp_keeps_stdout_for_the_protocol() {
    let data = tempfile::tempdir().unwrap();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    let out =
        crate::support::cli::factory_with_stdin(data.path(), &["mcp"], &format!("{initialize}\n"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(
        lines[0]["result"]["serverInfo"]["name"], "factory",
        "{stdout}"
    );
    // A client that leaves at once is no failure either.
    let out = crate::support::cli::factory_with_stdin(data.path(), &["mcp"], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
