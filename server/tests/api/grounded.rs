//! Engineering grounded in the repository: the engineer's first prompt holds the files its work
//! order names, exactly as they are at the base, so a model that never calls a tool can still
//! quote them in a `replace`. The scripted coder below can only make the change from the text
//! it was shown (the line holds a value made up by the test), and the gate checks the change
//! really landed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::cli::{add_project, assert_succeeded, auto_run_with_config};
use crate::support::git::{bubblewrap, commit_all, git, git_repo};
use crate::support::loopback;
use crate::support::model::{factory_toml, first_user, team_of};
use crate::support::stream::openai_stream;
use crate::support::wire::openai_refusal;

type Prompts = Arc<Mutex<Vec<(String, String)>>>;

/// The team a request is for and its first user prompt.
fn team_and_prompt(body: &Value) -> (String, String) {
    (team_of(body), first_user(body))
}

fn complete(team: &str, extra: Value) -> Value {
    let mut result = json!({
        "status": "COMPLETE",
        "reasoning": format!("{team} did its part"),
        "blockers": [], "assumptions_made": [], "verified_facts": [],
        "clarification_needed": null,
        "artifacts": [{"name": format!("{team}.md"), "content": format!("# {team}\n")}]
    });
    for (k, v) in extra.as_object().unwrap() {
        result[k] = v.clone();
    }
    result
}

/// A coder: the architect plans one work order on `src/lib.rs`; the engineer bumps the
/// prefix's version by quoting its line exactly as the prompt shows it.
async fn coder(State(prompts): State<Prompts>, Json(body): Json<Value>) -> Response {
    if let Some(error) = openai_refusal(&body) {
        return (axum::http::StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let (team, prompt) = team_and_prompt(&body);
    prompts.lock().unwrap().push((team.clone(), prompt.clone()));
    let result = match team.as_str() {
        "solution-architecture" => complete(
            &team,
            json!({"work_orders": [{
                "id": "wo-1", "title": "Version the order prefix",
                "description": "Append -v2 to ORDER_PREFIX", "risk": "low",
                "files_in_scope": ["src/lib.rs"], "acceptance_criteria": ["the prefix ends in -v2"],
                "dependencies": [], "confidence": 0.9
            }]}),
        ),
        "backend-engineering" if prompt.contains("Your work order `wo-1`") => {
            // Only the prompt can tell the line: it holds a value the test made up.
            let line = prompt
                .lines()
                .find(|l| l.starts_with("pub const ORDER_PREFIX"))
                .unwrap_or("pub const ORDER_PREFIX: &str = \"unknown\";");
            let bumped = line.replace("\";", "-v2\";");
            complete(
                &team,
                json!({"edits": [{"op": "replace", "path": "src/lib.rs", "search": line, "replace": bumped}]}),
            )
        }
        _ => complete(&team, json!({})),
    };
    let whole = json!({
        "id": "chatcmpl-coder", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 500, "completion_tokens": 50, "total_tokens": 550}
    });
    if body["stream"] == true {
        return openai_stream(&body, &whole, std::time::Duration::ZERO);
    }
    Json(whole).into_response()
}

async fn serve_coder() -> (String, Prompts) {
    let prompts = Prompts::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(coder))
        .with_state(prompts.clone());
    (format!("http://{}/v1", loopback(app).await), prompts)
}

/// The file at `path` on the run's work-order branch.
fn on_branch(repo: &Path, path: &str) -> String {
    let branches = git(
        repo,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    );
    let branch = branches
        .lines()
        .find(|b| *b != "main")
        .unwrap_or_else(|| panic!("a work-order branch: {branches}"));
    git(repo, &["show", &format!("{branch}:{path}")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engineer_is_shown_the_files_in_scope_and_quotes_them_exactly() {
    if !bubblewrap() {
        return;
    }
    let repo = git_repo();
    let nonce = format!(
        "ord-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::create_dir(repo.path().join("src")).unwrap();
    std::fs::write(
        repo.path().join("src/lib.rs"),
        format!("//! The shop.\n\npub const ORDER_PREFIX: &str = \"{nonce}\";\n"),
    )
    .unwrap();
    commit_all(repo.path(), "prefix");
    let (base, prompts) = serve_coder().await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml(&base)).unwrap();
    // The gate passes only if the bumped line is in the change.
    let gate = format!("grep -q '\"{nonce}-v2\"' src/lib.rs");
    add_project(data.path(), repo.path(), &["--gate", &gate]);

    let out = tokio::process::Command::from(auto_run_with_config(
        data.path(),
        &config,
        "shop",
        "Version the order prefix",
    ))
    .output()
    .await
    .unwrap();
    assert_succeeded(&out);
    let engineer = prompts
        .lock()
        .unwrap()
        .iter()
        .find(|(team, p)| team == "backend-engineering" && p.contains("wo-1"))
        .map(|(_, p)| p.clone())
        .expect("the engineer was asked");
    assert!(
        engineer.contains("# Files in scope, as they are at the base")
            && engineer.contains(&format!("pub const ORDER_PREFIX: &str = \"{nonce}\";")),
        "{engineer}"
    );
    assert_eq!(
        on_branch(repo.path(), "src/lib.rs"),
        format!("//! The shop.\n\npub const ORDER_PREFIX: &str = \"{nonce}-v2\";\n")
    );
    // The project's checkout is untouched.
    assert!(
        std::fs::read_to_string(repo.path().join("src/lib.rs"))
            .unwrap()
            .contains(&format!("\"{nonce}\";"))
    );
}
