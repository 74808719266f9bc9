//! Pointing Factory at a repository it did not write: the repository's gates, settings and
//! pipelines cannot reach the host, its secrets or the remote.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::TestApp;
use crate::support::cli::{add_project, auto_run, auto_run_with_config, factory_cli};
use crate::support::git::{
    bubblewrap, commit_all, git, git_repo, project_settings, repo_with_remote,
};
use crate::support::{Config, Store};

/// A run of the project `shop` with `envs` added: its exit code and everything it printed.
fn run(data: &Path, envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = auto_run(data, "shop", "Export orders as CSV");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Everything Factory stored about its runs, as text (events, projections, artifacts).
fn stored(data: &Path) -> String {
    let mut all = Vec::new();
    let mut stack = vec![data.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                all.extend(bytes);
            }
        }
    }
    String::from_utf8_lossy(&all).to_string()
}

#[test]
fn a_gate_cannot_make_the_host_run_git_config_it_planted() {
    if !bubblewrap() {
        return;
    }
    // The gate swaps the worktree's `.git` for a repository whose config runs a command; a
    // host that later runs git in that worktree (to clean it) runs the command, outside the
    // sandbox, with the server's environment.
    let host = tempfile::tempdir().unwrap();
    let marker = host.path().join("host-ran-the-gates-command");
    let gate = format!(
        "(mv .git .git-orig || rm -rf .git) 2>/dev/null; git init -q . 2>/dev/null; \
         git config core.fsmonitor 'touch {m}; true' 2>/dev/null; \
         git config core.hooksPath /tmp 2>/dev/null; echo planted; exit 1",
        m = marker.display()
    );
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    add_project(data.path(), repo.path(), &["--gate", &gate]);
    let (code, out) = run(data.path(), &[]);
    assert_eq!(code, Some(2), "the failing gate asks a person: {out}");
    assert!(out.contains("planted"), "the gate ran: {out}");
    assert!(
        !marker.exists(),
        "the host ran a command from a git config the gate wrote"
    );
    // The user's repository is untouched and holds no planted config.
    let config = std::fs::read_to_string(repo.path().join(".git/config")).unwrap();
    assert!(
        !config.contains("fsmonitor") && !config.contains("hooksPath"),
        "{config}"
    );
    assert_eq!(git(repo.path(), &["status", "--porcelain"]).trim(), "");
}

#[test]
fn a_gate_sees_none_of_the_servers_secrets_home_or_data() {
    if !bubblewrap() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let gate = format!(
        "env; echo; ls -a \"$HOME\" /run {d} 2>&1; head -c 15 {d}/factory.db 2>&1; exit 1",
        d = data.path().display()
    );
    add_project(data.path(), repo.path(), &["--gate", &gate]);
    let (code, out) = run(
        data.path(),
        &[
            ("GITHUB_TOKEN", "ghp_SECRET_0123456789"),
            ("FACTORY_GIT_TOKEN", "git_SECRET_0123456789"),
            ("ANTHROPIC_API_KEY_UNUSED", "sk-ant-SECRET-0123456789"),
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("PATH="), "the gate's output is shown: {out}");
    for secret in ["ghp_SECRET", "git_SECRET", "sk-ant-SECRET"] {
        assert!(!out.contains(secret), "{secret} reached the gate: {out}");
        assert!(
            !stored(data.path()).contains(secret),
            "{secret} reached the gate and was stored"
        );
    }
    assert!(
        !out.contains("SQLite format"),
        "the gate read factory.db: {out}"
    );
    assert!(
        !out.contains("factory.db-wal"),
        "the gate listed the data dir: {out}"
    );
}

#[test]
fn a_repository_cannot_choose_the_unsafe_runner_or_host_mounts() {
    let host = tempfile::tempdir().unwrap();
    let marker = host.path().join("ran-on-the-host");
    for settings in [
        format!(
            "sandbox = \"process\"\nallow_unsafe_process = true\ngates = [\"touch {}\"]\n",
            marker.display()
        ),
        format!(
            "sandbox = \"process\"\ngates = [\"touch {}\"]\n",
            marker.display()
        ),
        "toolchain_mounts = [\"/root\"]\n".to_string(),
    ] {
        let data = tempfile::tempdir().unwrap();
        let repo = git_repo();
        project_settings(repo.path(), &settings);
        commit_all(repo.path(), "settings");
        // Registering refuses it, naming where the choice belongs...
        let out = factory_cli(data.path())
            .args(["project", "add", repo.path().to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{settings}: {text}");
        assert!(text.contains("factory project add"), "{settings}: {text}");
        // ...and a run on it (by path, unregistered) never runs the gate on the host.
        let out = auto_run(
            data.path(),
            repo.path().to_str().unwrap(),
            "Export orders as CSV",
        )
        .output()
        .unwrap();
        assert_ne!(out.status.code(), Some(0), "{out:?}");
        assert!(
            !marker.exists(),
            "{settings}: the repository ran a gate unsandboxed"
        );
    }
}

#[test]
fn a_pipeline_stage_name_cannot_write_outside_the_data_directory() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("planted");
    let climb = "../".repeat(40);
    let stage = format!(
        "x/{climb}{}",
        target.display().to_string().trim_start_matches('/')
    );
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    std::fs::create_dir_all(repo.path().join(".factory/pipelines")).unwrap();
    std::fs::write(
        repo.path().join(".factory/pipelines/evil.toml"),
        format!(
            "name = \"evil\"\n[[stages]]\nname = {stage:?}\nteam = \"documentation\"\nobjective = \"Document {{requirement}}\"\n"
        ),
    )
    .unwrap();
    commit_all(repo.path(), "pipeline");
    let out = factory_cli(data.path())
        .args([
            "run",
            "--auto-approve",
            "--project",
            repo.path().to_str().unwrap(),
            "--pipeline",
            "evil",
            "Document the export",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("is not accepted"), "{text}");
    assert!(
        !target.exists(),
        "an artifact was written outside the data directory"
    );
}

/// A run's pending approval, if any.
async fn pending_approval(app: &TestApp, run_id: &str) -> Option<Value> {
    let all: Value = app
        .get(&format!("/api/approvals?run_id={run_id}"))
        .await
        .json()
        .await
        .unwrap();
    all.as_array()?
        .iter()
        .find(|a| a["status"] == "pending")
        .cloned()
}

async fn approve(app: &TestApp, id: &str) {
    let body = json!({"option": "approve"});
    let res = app
        .post_json(&format!("/api/approvals/{id}/decide"), &body)
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

async fn status(app: &TestApp, run_id: &str) -> String {
    let run: Value = app
        .get(&format!("/supervisor/status/{run_id}"))
        .await
        .json()
        .await
        .unwrap();
    run["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_reach_the_remote_only_after_the_review_is_approved() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new(data.path().to_path_buf());
    config.factory.approvals.auto_approve = false;
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(data);
    let (repo, remote) = repo_with_remote();
    let project = json!({
        "path": repo.path().display().to_string(),
        "name": "shop",
        "policy": {"allow_unverified": true}
    });
    let res = app.post_json("/api/projects", &project).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let started: Value = app
        .start_run(json!({"goal": "Export orders as CSV", "project": "shop"}))
        .await
        .json()
        .await
        .unwrap();
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let remote_branches = || git(remote.path(), &["branch", "--list", "feature/*"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut reviewed = false;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish"
        );
        if status(&app, &run_id).await == "succeeded" {
            break;
        }
        let Some(approval) = pending_approval(&app, &run_id).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if approval["kind"] == "review" {
            // Delivered and committed locally, but nothing on the remote before a person
            // approved the review.
            let local = git(repo.path(), &["branch", "--list", "feature/*"]);
            assert!(
                !local.trim().is_empty(),
                "work orders were delivered locally"
            );
            assert!(remote_branches().trim().is_empty(), "pushed before review");
            reviewed = true;
        }
        approve(&app, approval["id"].as_str().unwrap()).await;
    }
    assert!(reviewed, "the run asked for a review");
    assert!(
        !remote_branches().trim().is_empty(),
        "published after the review"
    );
    // The publication is an event that says why it happened then.
    let events: Value = app
        .get(&format!("/events?run_id={run_id}&limit=500"))
        .await
        .json()
        .await
        .unwrap();
    let text = events.to_string();
    assert!(text.contains("work_order_published"), "{text}");
    assert!(text.contains("after_review"), "{text}");
}

#[test]
fn only_the_work_orders_change_is_committed_never_what_a_gate_dropped() {
    if !bubblewrap() {
        return;
    }
    // A passing gate that leaves a "found secret" and build output in the worktree, and tries
    // to rewrite the file the work order changed.
    let gate = "echo 'AKIA-FOUND-IN-ENV' > found-secret.txt; mkdir -p out && echo built > \
                out/artifact.bin; for f in docs/work-orders/*.md; do echo TAMPERED >> \"$f\"; \
                done; exit 0";
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let head = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();
    add_project(data.path(), repo.path(), &["--gate", gate]);
    let (code, out) = run(data.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    let branches = git(
        repo.path(),
        &["branch", "--list", "feature/*", "--format=%(refname:short)"],
    );
    assert!(!branches.trim().is_empty(), "{out}");
    for branch in branches.lines() {
        let files = git(
            repo.path(),
            &["diff", "--name-only", &format!("{head}..{branch}")],
        );
        assert!(
            files.lines().all(|f| f.starts_with("docs/work-orders/")),
            "{branch} committed what the gate dropped: {files}"
        );
        let content = git(
            repo.path(),
            &["log", "-p", "--format=", &format!("{head}..{branch}")],
        );
        assert!(!content.contains("TAMPERED"), "{branch}: {content}");
    }
    // The gate did run (and pass) on every delivered work order.
    let detail = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = Store::open(data.path()).await.unwrap();
            let runs = store.list_runs(10).await.unwrap();
            store.get_run_detail(&runs[0].id).await.unwrap().unwrap()
        });
    assert!(!detail.work_orders.is_empty());
    for wo in &detail.work_orders {
        assert!(
            wo.gates
                .iter()
                .any(|g| g.passed && g.command.contains("found-secret")),
            "{:?}",
            wo.gates
        );
    }
}

#[test]
fn a_gate_that_fills_the_disk_is_stopped_while_it_runs() {
    if !bubblewrap() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, "[engine]\nworktree_disk_budget_mb = 4\n").unwrap();
    // Writes 16 MiB into the worktree, then lingers: before the budget is measured during
    // the gate, only its start was checked and this gate passed.
    add_project(
        data.path(),
        repo.path(),
        &[
            "--gate",
            "head -c 16777216 /dev/zero > fill.bin; sleep 20; exit 0",
        ],
    );
    let started = std::time::Instant::now();
    let out = auto_run_with_config(data.path(), &config, "shop", "Export orders as CSV")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("over their budget of 4 MiB"), "{text}");
    assert!(text.contains("was stopped"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the gate was not cut short: {:?}",
        started.elapsed()
    );
}
