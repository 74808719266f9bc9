//! Publishing to a remote: branches pushed to a bare repository and pull requests opened on a
//! loopback GitHub API, and a refused pull request rolling the pushed branch back.

use super::*;

/// A run of the project `shop` (a repository whose `origin` is a bare repository, on GitHub as
/// `acme/shop`) against a loopback GitHub API that answers pull requests with `status`.
/// Returns the run's output, the repository, its remote and what the API was asked.
async fn run_with_remote(status: u16) -> (Output, TempDir, TempDir, GitHubApi) {
    let api = github_api(status).await;
    let base = api.base.clone();
    let data = tempfile::tempdir().unwrap();
    let (repo, remote) = repo_with_remote();
    let out = tokio::task::spawn_blocking({
        let (data, repo) = (data.path().to_path_buf(), repo.path().to_path_buf());
        move || {
            add_project(
                &data,
                &repo,
                &["--github", "acme/shop", "--allow-unverified"],
            );
            auto_run(&data, "shop", "Export orders as CSV")
                .env("FACTORY_GITHUB_API", base)
                .env("GITHUB_TOKEN", "ghp_test_token")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    (out, repo, remote, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_are_pushed_to_the_remote_and_a_pull_request_is_opened() {
    if !bubblewrap() {
        return;
    }
    let (out, repo, remote, api) = run_with_remote(201).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The bare remote has the branch, at the same commit as the local one.
    let pushed = git(
        remote.path(),
        &[
            "branch",
            "--list",
            "feature/*",
            "--format=%(refname:short) %(objectname)",
        ],
    );
    let local = git(
        repo.path(),
        &[
            "branch",
            "--list",
            "feature/*",
            "--format=%(refname:short) %(objectname)",
        ],
    );
    assert!(!pushed.trim().is_empty());
    assert_eq!(pushed, local);
    let opened = api.requests_of(Method::POST);
    assert_eq!(opened.len(), 1, "one pull request per work order");
    let Request {
        repo: path,
        auth,
        body,
        ..
    } = &opened[0];
    assert_eq!(path, "acme/shop");
    assert_eq!(auth, "Bearer ghp_test_token");
    assert_eq!(body["base"], "main");
    assert!(body["head"].as_str().unwrap().starts_with("feature/wo-"));
    assert!(body["title"].as_str().unwrap().starts_with("WO-"));
    let text = body["body"].as_str().unwrap();
    for needle in [
        "approved in the run's review",
        "Risk",
        "Model",
        "Cost",
        "Acceptance checklist",
        "- [ ] ",
        "Files changed:",
        "**Unverified:** no gate ran on this change",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert!(
        !stdout.contains("ghp_test_token"),
        "the token is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pull_request_rolls_back_the_pushed_branch_and_fails_the_approved_run() {
    if !bubblewrap() {
        return;
    }
    let (out, repo, remote, _) = run_with_remote(422).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Publishing happens after the (automatic) review: its failure fails the run, says why,
    // removes the pushed branch from the remote and keeps the committed work locally.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the pull request API answered 422"),
        "{stdout}"
    );
    assert!(stdout.contains("kept locally"), "{stdout}");
    assert!(
        git(remote.path(), &["branch", "--list", "feature/*"])
            .trim()
            .is_empty(),
        "remote rolled back"
    );
    assert!(
        !git(repo.path(), &["branch", "--list", "feature/*"])
            .trim()
            .is_empty(),
        "the local branches keep the reviewed work"
    );
}
