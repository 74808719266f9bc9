//! Delivering a work order again is idempotent: a revision replaces the branch Factory pushed
//! (force-with-lease) and updates its pull request, and a server SIGKILLed between pushing and
//! opening the pull request finishes the job after a restart — one branch, one pull request.
//! Real `factory serve` processes, a bare repository as the remote, and a loopback GitHub API
//! that refuses a second pull request for the same head, as GitHub does.

use std::path::Path;
use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use crate::support::cli::{add_project, wait_until_up};
use crate::support::git::{bubblewrap, git, repo_with_remote};
use crate::support::github::{github_api, github_api_hanging};
use crate::support::served::{Client, serve};
use crate::support::{EventData, Store, free_port};

/// `refs/heads/feature/*` of a repository: `name commit` lines.
fn feature_branches(repo: &Path) -> String {
    git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            "refs/heads/feature",
        ],
    )
}

/// The publishing events of the data directory's log.
async fn publishing(data: &Path) -> Vec<EventData> {
    let store = Store::open(data).await.unwrap();
    let events = store.events_after(0, 100_000).await.unwrap();
    store.close().await;
    events
        .into_iter()
        .map(|e| e.data)
        .filter(|d| {
            matches!(
                d,
                EventData::BranchPushed { .. } | EventData::PullRequestOpened { .. }
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_replaces_the_pushed_branch_and_updates_its_pull_request() {
    if !bubblewrap() {
        return;
    }
    let api = github_api(201).await;
    let data = tempfile::tempdir().unwrap();
    let (repo, remote) = repo_with_remote();
    add_project(
        data.path(),
        repo.path(),
        &[
            "--github",
            "acme/shop",
            "--publish",
            "on-delivery",
            "--allow-unverified",
        ],
    );
    let config = data.path().join("factory.toml");
    std::fs::write(&config, "[approvals]\nauto_approve = false\n").unwrap();
    let port = free_port();
    let client = Client::new(port);
    let mut child = serve(data.path(), &config, port, Some(&api));
    wait_until_up(&client.base).await;
    let run_id = client.start("Export orders as CSV", "shop").await;
    // Plans are approved; the first review asks for a revision, the second approves.
    let mut reviews = 0;
    while reviews < 2 {
        let approval = client.pending(&run_id).await;
        if approval["kind"] == "review" {
            reviews += 1;
            if reviews == 1 {
                let first = feature_branches(remote.path());
                assert_eq!(first.lines().count(), 1, "pushed at delivery: {first}");
                client
                    .decide(
                        &approval,
                        json!({"option": "revise", "text": "Add an audit log"}),
                    )
                    .await;
                continue;
            }
        }
        client.decide(&approval, json!({"option": "approve"})).await;
    }
    let run = client.wait_for(&run_id, "succeeded").await;
    child.kill().unwrap();
    child.wait().unwrap();

    // One branch on the remote, at the revision's commit, which is the local branch's.
    let on_remote = feature_branches(remote.path());
    assert_eq!(on_remote.lines().count(), 1, "{on_remote}");
    assert_eq!(on_remote, feature_branches(repo.path()), "{run}");
    let events = publishing(data.path()).await;
    let pushes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EventData::BranchPushed {
                commit, replaced, ..
            } => Some((commit.clone(), replaced.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(pushes.len(), 2, "pushed at each delivery: {events:?}");
    assert_ne!(pushes[0].0, pushes[1].0, "the revision is a new commit");
    assert_eq!(pushes[0].1, None, "the first push made the branch");
    assert_eq!(
        pushes[1].1.as_deref(),
        Some(pushes[0].0.as_str()),
        "the second replaced exactly what the first pushed"
    );
    assert!(on_remote.contains(&pushes[1].0), "{on_remote}");
    let updated: Vec<bool> = events
        .iter()
        .filter_map(|e| match e {
            EventData::PullRequestOpened { updated, .. } => Some(*updated),
            _ => None,
        })
        .collect();
    assert_eq!(updated, [false, true], "opened, then updated: {events:?}");
    assert_eq!(api.pulls().len(), 1, "one pull request");
    assert_eq!(api.requests_of(Method::POST).len(), 1);
    let patched = api.requests_of(Method::PATCH);
    assert_eq!(patched.len(), 1, "{:?}", api.requests());
    assert_eq!(patched[0].auth, "Bearer ghp_test_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_push_and_pull_request_resumes_with_one_branch_and_one_pull_request() {
    if !bubblewrap() {
        return;
    }
    let (told, opened) = tokio::sync::oneshot::channel();
    let api = github_api_hanging(told).await;
    let data = tempfile::tempdir().unwrap();
    let (repo, remote) = repo_with_remote();
    add_project(
        data.path(),
        repo.path(),
        &["--github", "acme/shop", "--allow-unverified"],
    );
    let config = data.path().join("factory.toml");
    std::fs::write(&config, "[approvals]\nauto_approve = true\n").unwrap();
    let port = free_port();
    let client = Client::new(port);
    let mut child = serve(data.path(), &config, port, Some(&api));
    wait_until_up(&client.base).await;
    let run_id = client.start("Export orders as CSV", "shop").await;
    // The review approved itself; the branch is pushed and the pull request opened, but the
    // API's answer never comes: the server dies there.
    tokio::time::timeout(Duration::from_secs(60), opened)
        .await
        .expect("the pull request was requested")
        .unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let pushed = feature_branches(remote.path());
    assert_eq!(
        pushed.lines().count(),
        1,
        "pushed before the kill: {pushed}"
    );

    let mut child = serve(data.path(), &config, port, Some(&api));
    let run = client.wait_for(&run_id, "succeeded").await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(feature_branches(remote.path()), pushed, "the same branch");
    assert_eq!(feature_branches(repo.path()), pushed, "{run}");
    assert_eq!(api.pulls().len(), 1, "{:?}", api.requests());
    assert_eq!(
        api.requests_of(Method::POST).len(),
        1,
        "the pull request was found, not opened twice"
    );
    assert_eq!(api.requests_of(Method::PATCH).len(), 1);
    let events = publishing(data.path()).await;
    let kinds: Vec<&str> = events.iter().map(EventData::kind).collect();
    assert_eq!(
        kinds,
        ["branch_pushed", "pull_request_opened"],
        "each side effect recorded once: {events:?}"
    );
    assert!(
        matches!(
            &events[1],
            EventData::PullRequestOpened {
                updated: true,
                number: 1,
                ..
            }
        ),
        "{events:?}"
    );
}
