//! Delivery end to end: `factory run --project` with the offline provider leaves one branch
//! `feature/wo-…` per work order with one commit each, gates run in the sandbox, and the user's
//! checkout untouched; a failing gate rolls its work order back and asks a person.

use std::process::Command;

use crate::engine::git_repo;

const BIN: &str = env!("CARGO_BIN_EXE_factory");

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn factory(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("FACTORY_CONFIG")
        .env("OLLAMA_HOST", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

fn bubblewrap() -> bool {
    let ok = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: bwrap cannot start a sandbox on this machine");
    }
    ok
}

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
    let out = factory(
        data.path(),
        &[
            "project",
            "add",
            repo.path().to_str().unwrap(),
            "--name",
            "shop",
            "--gate",
            "grep -qi 'work order' docs/work-orders/*.md",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = factory(
        data.path(),
        &[
            "run",
            "--auto-approve",
            "--project",
            "shop",
            "Export orders as CSV and email the weekly report to accountants",
        ],
    );
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
    // The user's checkout: same HEAD, same branch, their uncommitted file still there, no new files.
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
}

#[test]
fn a_gate_that_keeps_failing_rolls_back_and_asks_a_person() {
    if !bubblewrap() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let out = factory(
        data.path(),
        &[
            "project",
            "add",
            repo.path().to_str().unwrap(),
            "--name",
            "shop",
            "--gate",
            "echo tests failed; exit 1",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let out = factory(
        data.path(),
        &[
            "run",
            "--auto-approve",
            "--project",
            "shop",
            "Export orders as CSV",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "a person is needed: {stdout}");
    assert!(stdout.contains("blocked approval"), "{stdout}");
    assert!(stdout.contains("failed and was rolled back"), "{stdout}");
    assert!(
        stdout.contains("tests failed"),
        "the gate's output is shown: {stdout}"
    );
    let branches = git(repo.path(), &["branch", "--list", "feature/*"]);
    assert!(branches.trim().is_empty(), "rolled back: {branches}");
}
