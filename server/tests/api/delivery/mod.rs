//! Delivery end to end: `factory run --project` with the offline provider leaves one branch
//! `feature/wo-…` per work order with one commit each, gates run in the sandbox (passing only
//! on what this run's work orders wrote), and the user's checkout untouched; a gate that keeps
//! failing a scripted engineer's answers sends each output back to it, then rolls the work order
//! back and asks a person.

use std::path::Path;
use std::process::Output;

use axum::http::Method;
use tempfile::TempDir;

use crate::support::cli::{add_project, auto_run, auto_run_with_config, factory, wait_until_up};
use crate::support::db::sqlite;
use crate::support::git::{
    bubblewrap, commit_all, docker_image, git, git_repo, project_settings, repo_with_remote,
};
use crate::support::github::{GitHubApi, Request, github_api};
use crate::support::served::{Client, serve};
use crate::support::{Store, free_port};

#[test]
fn offline_work_orders_land_on_their_own_branches_and_the_checkout_is_untouched() {
    if !bubblewrap() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    std::fs::write(
        repo.path().join("local-notes.txt"),
        "uncommitted work of the user\n",
    )
    .unwrap();
    let head = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();
    // The gate passes only in a worktree holding exactly one work order's record, made from
    // this run's requirement (a store number the test makes up).
    let store = nonce();
    add_project(
        data.path(),
        repo.path(),
        &[
            "--gate",
            &format!(
                "test \"$(ls docs/work-orders | wc -l)\" -eq 1 && grep -q 'store {store}' docs/work-orders/*.md"
            ),
        ],
    );
    let out = auto_run(
        data.path(),
        "shop",
        &format!(
            "Export orders as CSV for store {store} and email the weekly report to accountants"
        ),
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("delivery.md"), "{stdout}");

    let branches = git(
        repo.path(),
        &["branch", "--list", "feature/*", "--format=%(refname:short)"],
    );
    let branches: Vec<&str> = branches.lines().collect();
    assert_eq!(branches.len(), 2, "one branch per work order: {branches:?}");
    for branch in &branches {
        assert!(branch.starts_with("feature/wo-"), "{branch}");
        let log = git(
            repo.path(),
            &["log", "--format=%s%n%b", &format!("{head}..{branch}")],
        );
        assert_eq!(log.matches("WO-").count(), 1, "one commit: {log}");
        assert!(
            log.contains("Factory-Run: ") && log.contains("Factory-Model: offline:template"),
            "{log}"
        );
    }
    // The user's checkout: same HEAD, same branch, their uncommitted file still there, no new
    // files.
    assert_eq!(git(repo.path(), &["rev-parse", "HEAD"]).trim(), head);
    assert_eq!(
        git(repo.path(), &["branch", "--show-current"]).trim(),
        "main"
    );
    assert_eq!(
        git(repo.path(), &["status", "--porcelain"]).trim(),
        "?? local-notes.txt"
    );
    assert!(!repo.path().join("docs").exists());
    // Worktrees were removed.
    let worktrees = git(repo.path(), &["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");
    // The run shows its work orders: planned, then delivered with branch, commit and gates.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let detail = runtime.block_on(async {
        let store = Store::open(data.path()).await.unwrap();
        let runs = store.list_runs(10).await.unwrap();
        store.get_run_detail(&runs[0].id).await.unwrap().unwrap()
    });
    assert_eq!(detail.work_orders.len(), 2);
    for wo in &detail.work_orders {
        assert_eq!(wo.status.as_str(), "delivered");
        assert!(wo.branch.as_deref().unwrap().starts_with("feature/wo-"));
        assert!(wo.commit.is_some() && wo.spec.is_some());
        assert_eq!(wo.gates[0].sandbox, "bubblewrap");
        assert!(wo.gates[0].passed);
    }
}

/// What the scripted engineer of [`a_gate_that_keeps_failing_rolls_back_and_asks_a_person`]
/// was sent, in order.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// A scripted model: architecture plans one work order on `notes.txt`; engineering writes
/// `attempt N` there on its Nth answer (never what the gate wants); every other team completes.
async fn never_fixes(
    axum::extract::State(seen): axum::extract::State<Seen>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;

    use crate::agent_loop::{result, said, team_of};
    if let Some(error) = crate::support::wire::openai_refusal(&body) {
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let team = team_of(&body);
    let reply = match team.as_str() {
        "solution-architecture" => result(
            &team,
            "COMPLETE",
            serde_json::json!({"work_orders": [{
                "id": "wo-1", "title": "Write the notes", "description": "Notes",
                "risk": "low", "files_in_scope": ["notes.txt"],
                "acceptance_criteria": ["the notes say FIXED"], "dependencies": [],
                "confidence": 0.9
            }]}),
        ),
        "backend-engineering" if said(&body, "user")[0].contains("Your work order `wo-1`") => {
            seen.lock().unwrap().push(body.clone());
            let attempt = said(&body, "assistant").len() + 1;
            result(
                &team,
                "COMPLETE",
                serde_json::json!({"edits": [{
                    "op": "write", "path": "notes.txt", "content": format!("attempt {attempt}\n")
                }]}),
            )
        }
        other => result(other, "COMPLETE", serde_json::json!({})),
    };
    let whole = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.to_string()},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    });
    if body["stream"] == true {
        return crate::support::stream::openai_stream(&body, &whole, std::time::Duration::ZERO);
    }
    axum::Json(whole).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_keeps_failing_rolls_back_and_asks_a_person() {
    if !bubblewrap() {
        return;
    }
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(never_fixes))
        .with_state(seen.clone());
    let base = format!("http://{}/v1", crate::support::loopback(app).await);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, crate::support::model::factory_toml(&base)).unwrap();
    let repo = git_repo();
    // The gate reports what it found in the worktree, and passes only on `FIXED`.
    add_project(
        data.path(),
        repo.path(),
        &[
            "--gate",
            "echo \"gate saw: $(cat notes.txt)\"; grep -q FIXED notes.txt",
        ],
    );
    let out = tokio::process::Command::from(auto_run_with_config(
        data.path(),
        &config,
        "shop",
        "Write the notes",
    ))
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "a person is needed: {stdout}");
    assert!(stdout.contains("blocked approval"), "{stdout}");
    assert!(stdout.contains("failed and was rolled back"), "{stdout}");
    assert!(
        stdout.contains("gate saw: attempt 5"),
        "the last gate's output is shown: {stdout}"
    );
    // Five gate rounds (the team's max_iterations), each answer's gate output sent back into
    // the same conversation before the next answer.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5, "one engineering call per gate round");
    for (round, body) in seen.iter().enumerate().skip(1) {
        let feedback = crate::agent_loop::said(body, "user");
        assert!(
            feedback
                .last()
                .is_some_and(|f| f.contains(&format!("gate saw: attempt {round}"))),
            "round {round}: {feedback:?}"
        );
    }
    let branches = git(repo.path(), &["branch", "--list", "feature/*"]);
    assert!(branches.trim().is_empty(), "rolled back: {branches}");
}

/// A number the test makes up, so a check can only pass on what this run produced.
fn nonce() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 1_000_000
        + 1_000_000
}

#[test]
fn gates_run_in_docker_when_the_project_names_an_image() {
    if !docker_image("factory-sandbox:test") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let store = nonce();
    project_settings(
        repo.path(),
        &format!(
            "sandbox = \"docker\"\nimage = \"factory-sandbox:test\"\ngates = [\"grep -q 'store {store}' docs/work-orders/wo-1.md\"]\n"
        ),
    );
    commit_all(repo.path(), "settings");
    let out = auto_run(
        data.path(),
        repo.path().to_str().unwrap(),
        &format!("Export orders as CSV for store {store}"),
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let branches = git(repo.path(), &["branch", "--list", "feature/*"]);
    assert_eq!(branches.lines().count(), 1, "{branches}");
    // The gate's sandbox is recorded on the work order.
    let events = factory(data.path(), &["audit", "verify"]);
    assert_eq!(events.status.code(), Some(0));
    let db = data.path().join("factory.db");
    let gates = recorded_gates(&db);
    assert!(gates.contains("\"sandbox\":\"docker\""), "{gates}");
}

/// The gates recorded on the work orders of a data directory.
fn recorded_gates(db: &Path) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(db.parent().unwrap()).await.unwrap();
        let rows: Vec<(String,)> = sqlx::query_as("SELECT gates FROM work_orders")
            .fetch_all(&sqlite(store.path()).await)
            .await
            .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n")
    })
}

/// A project registered in `data` whose gate (in the process sandbox the operator opted into,
/// which can reach the user's repository) commits `file` with `content` to the user's branch
/// the first time it runs: the branch moves while the run is in progress.
fn moving_project(data: &Path, file: &str, content: &str) -> tempfile::TempDir {
    let repo = git_repo();
    let marker = repo.path().join(".git/factory-moved");
    let gate = format!(
        "test -e {marker} || (touch {marker} && cd {root} && printf '{content}' > {file} && \
         git add {file} && git -c user.name=T -c user.email=t@e commit -qm moved)",
        marker = marker.display(),
        root = repo.path().display(),
    );
    let out = factory(
        data,
        &[
            "project",
            "add",
            repo.path().to_str().unwrap(),
            "--sandbox",
            "process",
            "--allow-unsafe-process",
            "--gate",
            &gate,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    repo
}

#[test]
fn a_moved_branch_is_rebased_onto_when_clean_and_escalated_when_not() {
    // Clean: the branch gained an unrelated file.
    let data = tempfile::tempdir().unwrap();
    let repo = moving_project(data.path(), "other.txt", "unrelated\\n");
    let out = auto_run(
        data.path(),
        repo.path().to_str().unwrap(),
        "Export orders as CSV",
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let head = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();
    let branch = git(
        repo.path(),
        &["branch", "--list", "feature/*", "--format=%(refname:short)"],
    );
    let parent = git(repo.path(), &["rev-parse", &format!("{}^", branch.trim())])
        .trim()
        .to_string();
    assert_eq!(parent, head, "the work order sits on the moved branch");
    let files = git(
        repo.path(),
        &["show", "--name-only", "--format=", branch.trim()],
    );
    assert_eq!(files.trim(), "docs/work-orders/wo-1.md");

    // Conflicting: the branch gained the very file the work order writes.
    let data = tempfile::tempdir().unwrap();
    let repo = moving_project(
        data.path(),
        "docs/work-orders/wo-1.md",
        "someone else wrote this\\n",
    );
    std::fs::create_dir_all(repo.path().join("docs/work-orders")).unwrap();
    let out = auto_run(
        data.path(),
        repo.path().to_str().unwrap(),
        "Export orders as CSV",
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("moved since the run started"), "{stdout}");
    assert!(
        stdout.contains("conflicts in docs/work-orders/wo-1.md"),
        "{stdout}"
    );
    assert!(
        git(repo.path(), &["branch", "--list", "feature/*"])
            .trim()
            .is_empty(),
        "rolled back"
    );
}

#[test]
fn independent_work_orders_are_delivered_concurrently() {
    if !bubblewrap() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    add_project(data.path(), repo.path(), &["--gate", "sleep 1"]);
    let started = std::time::Instant::now();
    let out = auto_run(
        data.path(),
        "shop",
        "Export orders as CSV. Email the weekly report. Show a sales chart.",
    )
    .output()
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let branches = git(repo.path(), &["branch", "--list", "feature/*"]);
    assert_eq!(branches.lines().count(), 3, "{branches}");
    // Three one-second gates one after another would take three seconds at least.
    assert!(
        elapsed < std::time::Duration::from_millis(2_800),
        "took {elapsed:?}"
    );
}

#[test]
fn worktrees_over_their_disk_budget_are_refused_and_gates_are_remembered() {
    if !bubblewrap() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    std::fs::create_dir_all(data.path().join("worktrees/leftover")).unwrap();
    std::fs::write(
        data.path().join("worktrees/leftover/big"),
        vec![0u8; 2 * 1024 * 1024],
    )
    .unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, "[engine]\nworktree_disk_budget_mb = 1\n").unwrap();
    let out = auto_run_with_config(
        data.path(),
        &config,
        repo.path().to_str().unwrap(),
        "Export orders as CSV",
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("over their budget of 1 MiB"), "{stdout}");

    // Within budget, the gate's outcome is retained in the team's memory.
    std::fs::remove_dir_all(data.path().join("worktrees/leftover")).unwrap();
    add_project(data.path(), repo.path(), &["--gate", "true"]);
    let out = auto_run(data.path(), "shop", "Export orders as CSV")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let memory = factory(
        data.path(),
        &[
            "memory",
            "search",
            "gates passed",
            "--bank",
            "backend-engineering",
        ],
    );
    let memory = String::from_utf8_lossy(&memory.stdout);
    assert!(
        memory.contains("[backend-engineering · gate]") && memory.contains("`true` in bubblewrap"),
        "{memory}"
    );
}

#[test]
fn a_missing_gate_command_and_a_rejected_push_are_clear() {
    if !bubblewrap() {
        return;
    }
    // A gate command that does not exist.
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    add_project(
        data.path(),
        repo.path(),
        &["--gate", "definitely-not-a-command --check"],
    );
    let out = auto_run(data.path(), "shop", "Export orders as CSV")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("definitely-not-a-command") && stdout.contains("not found"),
        "{stdout}"
    );
    assert!(stdout.contains("(exit 127)"), "{stdout}");

    // A remote that cannot take the branch: a ref `feature` already exists there, so
    // `feature/wo-…` is refused.
    let data = tempfile::tempdir().unwrap();
    let (repo, remote) = repo_with_remote();
    std::fs::write(remote.path().join("refs/heads/feature"), "not a ref\n").unwrap();
    add_project(data.path(), repo.path(), &["--allow-unverified"]);
    let out = auto_run(data.path(), "shop", "Export orders as CSV")
        .output()
        .unwrap();
    // Publishing comes after the (automatic) review: the refused push fails the run, says
    // why, and keeps the reviewed commit on its local branch.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("push failed"), "{stdout}");
    assert!(stdout.contains("kept locally"), "{stdout}");
    assert!(
        !git(repo.path(), &["branch", "--list", "feature/*"])
            .trim()
            .is_empty(),
        "the local branch keeps the work"
    );
    assert!(
        git(remote.path(), &["branch", "--list", "feature/*"])
            .trim()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_with_no_gate_asks_a_person_who_may_commit_it_unverified() {
    if !bubblewrap() {
        return;
    }
    // A repository with nothing a gate could be detected from, and no gate configured.
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    add_project(data.path(), repo.path(), &[]);
    let config = data.path().join("factory.toml");
    std::fs::write(&config, "[approvals]\nauto_approve = true\n").unwrap();
    let port = free_port();
    let client = Client::new(port);
    let mut child = serve(data.path(), &config, port, None);
    wait_until_up(&client.base).await;
    let run_id = client.start("Export orders as CSV", "shop").await;
    let asked = client.pending(&run_id).await;
    assert_eq!(asked["kind"], "blocked", "{asked}");
    assert!(
        asked["question"]
            .as_str()
            .unwrap()
            .contains("has no gate to verify it"),
        "{asked}"
    );
    assert_eq!(asked["options"][0]["id"], "commit_unverified", "{asked}");
    assert!(
        git(repo.path(), &["branch", "--list", "feature/*"])
            .trim()
            .is_empty(),
        "nothing committed before a person decided"
    );
    client
        .decide(&asked, serde_json::json!({"option": "commit_unverified"}))
        .await;
    client.wait_for(&run_id, "succeeded").await;
    child.kill().unwrap();
    child.wait().unwrap();
    let branch = git(
        repo.path(),
        &["branch", "--list", "feature/*", "--format=%(refname:short)"],
    );
    let message = git(repo.path(), &["log", "-1", "--format=%B", branch.trim()]);
    assert!(
        message
            .contains("Factory-Verified: no (no gate configured or detected; allowed by a person)"),
        "{message}"
    );
    let db = data.path().join("factory.db");
    let pool = sqlite(&db).await;
    let delivered: String =
        sqlx::query_scalar("SELECT payload FROM events WHERE kind = 'work_order_delivered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        delivered.contains("\"unverified\":\"allowed by a person\""),
        "{delivered}"
    );
}

mod remote;
