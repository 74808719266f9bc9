//! Raw request paths that a router would normalise must never reach a page without a token.
//! reqwest and browsers normalise `..` away before sending, so these tests write the request
//! line themselves over TCP, as an attacker's client would.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::app::TestApp;

/// Sends `GET <path>` exactly as written (no normalisation, no credentials) and returns the
/// status code and the body.
async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("the server answers")
    .unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn paths_with_dot_segments_never_render_a_page_without_a_token() {
    let app = TestApp::spawn().await;
    let goal = "Ship the quarterly ledger export SECRET-GOAL-7319";
    let created = app
        .start_run(serde_json::json!({"goal": goal, "request_id": "raw-path-1"}))
        .await;
    assert!(created.status().is_success(), "{}", created.status());
    // With the token the Runs page shows the goal: the marker is real page data.
    let page = app.get("/").await.text().await.unwrap();
    assert!(
        page.contains("SECRET-GOAL-7319"),
        "the runs page lists the goal"
    );

    for path in [
        "/pkg/..",
        "/pkg/../",
        "/vendor/%2e%2e/",
        "/vendor/%2E%2e/approvals",
        "/pkg/../approvals",
        "/vendor/%2e%2e/audit",
        "/pkg/./../runs",
        "//",
        "/pkg/..%5c",
    ] {
        let (status, body) = raw_get(&app, path).await;
        assert!(
            !body.contains("SECRET-GOAL-7319"),
            "{path} leaked page data without a token ({status})"
        );
        assert_eq!(status, 400, "{path} is refused before routing: {body}");
        assert!(body.contains("not accepted"), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_missing_asset_is_a_plain_404_not_the_app() {
    let app = TestApp::spawn().await;
    for path in [
        "/pkg/approvals",
        "/vendor/audit",
        "/pkg/nothing.wasm",
        "/vendor/x.js",
    ] {
        let (status, body) = raw_get(&app, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            !body.contains("<html") && !body.contains("<!DOCTYPE"),
            "{path} rendered the app: {body}"
        );
    }
    // Pages still need a token: a plain page request is sent to sign in.
    let (status, _) = raw_get(&app, "/approvals").await;
    assert_eq!(status, 303, "pages redirect to /login");
}
