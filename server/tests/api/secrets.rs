//! The secrets file: a key typed in lives only there (0600); a file others may read is refused
//! with the fix; and the key appears in no event, API answer, page, log line, database page or
//! command output — checked on the real binary, logging at `debug`.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TOKEN, TestApp, status_json};
use crate::support::cli::{factory_cli, factory_serve_logged, text, wait_until_up};
use crate::support::free_port;
use crate::support::keyed::{bearer_headers, serve_openai};

const KEY: &str = "sk-proj-SECRETVALUE-93f1c0de5a7b2e4d8c6f0a9b5678";

#[tokio::test]
async fn a_secrets_file_others_may_read_is_refused_with_409_and_the_fix() {
    let (base, _) = serve_openai(KEY).await;
    let app = TestApp::spawn().await;
    let body = |name: &str| json!({"name": name, "kind": "openai", "base_url": base, "model": "gpt-4o-mini", "api_key": KEY});
    let (status, _) = status_json(
        app.post_json("/api/settings/providers", &body("acme"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let path = app.store.path().parent().unwrap().join("secrets");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let seq = app.store.last_seq().await.unwrap();

    let (status, error) = status_json(
        app.post_json("/api/settings/providers", &body("other"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("run `chmod 600 {}`", path.display())) && message.contains("644"),
        "{message}"
    );
    // Removing a stored key needs the file too.
    let res = app
        .client
        .delete(app.url("/api/settings/providers/acme"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(app.store.last_seq().await.unwrap(), seq, "nothing recorded");

    // After the fix, the change goes through.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (status, _) = status_json(
        app.post_json("/api/settings/providers", &body("other"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Everything a person or another program can read, after a key was typed in, used and shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_in_no_event_answer_page_log_line_or_database_page() {
    let (base, seen) = serve_openai(KEY).await;
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let port = free_port();
    let mut child = factory_serve_logged(data.path(), port, &log)
        .spawn()
        .unwrap();
    let server = format!("http://127.0.0.1:{port}");
    wait_until_up(&server).await;
    let client = reqwest::Client::new();
    let send = |req: reqwest::RequestBuilder| async move {
        let res = req.bearer_auth(TOKEN).send().await.unwrap();
        let status = res.status();
        (status, res.text().await.unwrap())
    };
    let mut seen_text = Vec::new();
    let (status, saved) = send(
        client
            .post(format!("{server}/api/settings/providers"))
            .json(&json!({
                "name": "acme", "kind": "openai", "base_url": base, "model": "gpt-4o-mini",
                "api_key": KEY, "every_alias": true
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    seen_text.push(saved);
    let (status, report) =
        send(client.post(format!("{server}/api/settings/providers/acme/test"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        report.contains("\"answered_by\":\"acme:gpt-4o-mini\""),
        "{report}"
    );
    assert_eq!(
        bearer_headers(&seen),
        vec![format!("Bearer {KEY}")],
        "the typed key is the key sent"
    );
    seen_text.push(report);
    for path in [
        "/api/settings",
        "/settings",
        "/events?after=0&limit=1000",
        "/audit",
        "/api/costs",
    ] {
        let (status, body) = send(client.get(format!("{server}{path}"))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        seen_text.push(body);
    }
    let events: Value = serde_json::from_str(&seen_text[4]).unwrap();
    assert!(
        events.to_string().contains("\"key\":\"changed\""),
        "the change is recorded: {events}"
    );
    let listed = factory_cli(data.path()).arg("models").output().unwrap();
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let listed = text(&listed.stdout) + &text(&listed.stderr);
    assert!(listed.contains("key set, ends in …5678"), "{listed}");
    seen_text.push(listed);

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("settings changed"),
        "the log is captured: {log}"
    );
    seen_text.push(log);
    for file in ["factory.db", "factory.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.path().join(file)) {
            seen_text.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    for (i, text) in seen_text.iter().enumerate() {
        assert!(!text.contains(KEY), "the key leaked in item {i}");
        assert!(
            !text.contains("SECRETVALUE"),
            "part of the key leaked in item {i}"
        );
    }
}
