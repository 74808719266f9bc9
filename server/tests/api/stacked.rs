//! Stacked work orders: B depends on A, so B's branch starts from A's delivered change — B's
//! engineer reads a value only A's change holds — and B's pull request targets A's branch.

use axum::Json;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::agent_loop::{result, said, team_of};
use crate::support::cli::{add_project, assert_succeeded, auto_run_with_config};
use crate::support::git::{bubblewrap, git, repo_with_remote};
use crate::support::github::github_api;
use crate::support::loopback;
use crate::support::model::factory_toml_with_tools;
use crate::support::stream::openai_stream;
use crate::support::wire::openai_refusal;

fn work_order(id: &str, deps: &[&str]) -> Value {
    json!({
        "id": id, "title": format!("Part {id}"), "description": format!("Write {id}.txt"),
        "risk": "low", "files_in_scope": [format!("{id}.txt")],
        "acceptance_criteria": ["the file exists"], "dependencies": deps, "confidence": 0.9
    })
}

/// A's engineer writes a value made up from the run; B's engineer copies what it reads in
/// `a.txt` (only there if B starts from A) into `b.txt`.
fn step(body: &Value) -> Result<String, Value> {
    let team = "backend-engineering";
    let prompt = said(body, "user").first().cloned().unwrap_or_default();
    let turns = said(body, "assistant").len();
    let tools = said(body, "tool");
    if prompt.contains("Your work order `a`") {
        return match turns {
            0 => Ok(format!("echo a-{} > a.txt", prompt.len())),
            _ => Err(result(team, "COMPLETE", json!({}))),
        };
    }
    match turns {
        0 => Ok("cat a.txt".into()),
        1 => {
            let seen = tools[0]
                .lines()
                .nth(1)
                .unwrap_or("missing")
                .trim()
                .to_string();
            Ok(format!("echo {seen} > b.txt"))
        }
        _ => Err(result(team, "COMPLETE", json!({}))),
    }
}

async fn model(Json(body): Json<Value>) -> Response {
    if let Some(error) = openai_refusal(&body) {
        return (axum::http::StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let team = team_of(&body);
    let first = said(&body, "user").first().cloned().unwrap_or_default();
    let outcome = match team.as_str() {
        "solution-architecture" => Err(result(
            &team,
            "COMPLETE",
            json!({"work_orders": [work_order("a", &[]), work_order("b", &["a"])]}),
        )),
        "backend-engineering" if first.contains("Your work order `") => step(&body),
        other => Err(result(other, "COMPLETE", json!({}))),
    };
    let message = match outcome {
        Err(answer) => json!({"role": "assistant", "content": answer.to_string()}),
        Ok(command) => json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "run", "arguments": json!({"command": command}).to_string()}
        }]}),
    };
    let finish = if message["tool_calls"].is_array() {
        "tool_calls"
    } else {
        "stop"
    };
    let whole = json!({
        "id": "chatcmpl-stacked", "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 500, "completion_tokens": 50, "total_tokens": 550}
    });
    if body["stream"] == true {
        return openai_stream(&body, &whole, std::time::Duration::ZERO);
    }
    Json(whole).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_starts_from_the_one_it_depends_on_and_its_pull_request_targets_it() {
    if !bubblewrap() {
        return;
    }
    let app = axum::Router::new().route("/v1/chat/completions", post(model));
    let base = format!("http://{}/v1", loopback(app).await);
    let api = github_api(201).await;
    let (repo, _remote) = repo_with_remote();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml_with_tools(&base)).unwrap();
    add_project(
        data.path(),
        repo.path(),
        &["--github", "acme/shop", "--gate", "test -s a.txt"],
    );
    let out = tokio::process::Command::from(auto_run_with_config(
        data.path(),
        &config,
        "shop",
        "Write two parts",
    ))
    .env("FACTORY_GITHUB_API", &api.base)
    .env("GITHUB_TOKEN", "ghp_test_token")
    .output()
    .await
    .unwrap();
    assert_succeeded(&out);
    let branches = git(
        repo.path(),
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/feature",
        ],
    );
    let of = |id: &str| {
        branches
            .lines()
            .find(|b| b.ends_with(&format!("part-{id}")))
            .unwrap_or_else(|| panic!("a branch for {id}: {branches}"))
            .to_string()
    };
    let (a, b) = (of("a"), of("b"));
    // B's one commit sits on A's, and holds the value it could only read from A's change.
    assert_eq!(
        git(repo.path(), &["rev-parse", &format!("{b}^")]),
        git(repo.path(), &["rev-parse", &a])
    );
    let written = git(repo.path(), &["show", &format!("{a}:a.txt")]);
    assert!(written.starts_with("a-"), "{written}");
    assert_eq!(git(repo.path(), &["show", &format!("{b}:b.txt")]), written);
    // B's pull request targets A's branch; A's the project's own.
    let prs = api.pulls();
    let base_of = |branch: &str| {
        prs.iter()
            .find(|p| p.head == branch)
            .map(|p| p.base.clone())
            .unwrap_or_else(|| panic!("a pull request for {branch}: {prs:?}"))
    };
    assert_eq!(base_of(&b), a);
    assert_eq!(base_of(&a), "main");
}
