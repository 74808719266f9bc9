//! Projects: the validator's checks, registration through the API and the CLI, runs started
//! with a registered project's name.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TestApp, get, start, status_json};
use crate::support::cli::factory_command;
use crate::support::git::{git, git_repo, project_settings};

async fn add(app: &TestApp, body: Value) -> (StatusCode, Value) {
    status_json(app.post_json("/api/projects", &body).await).await
}

#[tokio::test]
async fn each_check_fails_with_its_own_message_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let plain = tempfile::tempdir().unwrap();
    let empty_repo = tempfile::tempdir().unwrap();
    git(empty_repo.path(), &["init", "-q"]);
    let repo = git_repo();
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://example.com/acme/shop.git",
        ],
    );
    std::fs::write(repo.path().join("dirty.txt"), "x").unwrap();
    let bad_settings = git_repo();
    project_settings(bad_settings.path(), "sandbox = \"process\"\n");
    let p = |d: &tempfile::TempDir| d.path().display().to_string();
    for (body, needle) in [
        (
            json!({"path": "/does/not/exist"}),
            "project check `path` failed: /does/not/exist does not exist",
        ),
        (json!({"path": p(&plain)}), "check `repository` failed"),
        (json!({"path": p(&empty_repo)}), "has no commit yet"),
        (
            json!({"path": p(&repo), "remote": "https://example.com/acme/other"}),
            "`origin` is https://example.com/acme/shop.git, not https://example.com/acme/other",
        ),
        (
            json!({"path": p(&repo), "require_clean": true}),
            "check `clean` failed: the working tree has 1 uncommitted changes",
        ),
        (
            json!({"path": p(&repo), "github": "nope"}),
            "is not `owner/repo`",
        ),
        (
            json!({"path": p(&bad_settings)}),
            "only the operator may choose it",
        ),
        (
            json!({"path": p(&repo), "policy": {"sandbox": "process"}}),
            "add --allow-unsafe-process",
        ),
        (
            json!({"path": p(&repo), "policy": {"toolchain_mounts": ["relative/dir"]}}),
            "must be an existing absolute path",
        ),
    ] {
        let (status, err) = add(&app, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (_, list) = get(&app, "/api/projects").await;
    assert_eq!(list, json!([]));

    let (status, project) = add(
        &app,
        json!({"path": p(&repo), "name": "shop", "remote": "https://example.com/acme/shop", "github": "acme/shop", "gates": ["true"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(
        project["path"],
        std::fs::canonicalize(repo.path())
            .unwrap()
            .display()
            .to_string()
    );
    let (status, err) = add(&app, json!({"path": p(&repo), "name": "other"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("registered already as `shop`")
    );
    let (_, list) = get(&app, "/api/projects").await;
    assert_eq!(list[0]["name"], "shop");
    assert_eq!(list[0]["gates"], json!(["true"]));

    // A run started with the project's name runs in its repository.
    let run_id = start(&app, json!({"goal": "Export orders", "project": "shop"})).await;
    let (_, run) = get(&app, &format!("/supervisor/status/{run_id}")).await;
    assert_eq!(run["project"], project["path"]);
}

#[test]
fn the_cli_registers_and_lists_projects() {
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let out = factory_command(data.path())
        .args(["project", "add"])
        .arg(repo.path())
        .args(["--name", "shop", "--gate", "make test"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = factory_command(data.path())
        .args(["project", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("shop") && list.contains("gates: make test"),
        "{list}"
    );
    let out = factory_command(data.path())
        .args(["project", "add", "/does/not/exist"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("project check `path` failed"));
}
