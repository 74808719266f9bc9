//! `POST /supervisor/start`, `GET /supervisor/status/{id}`, `GET /api/runs`, and bad input.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TOKEN, TestApp};

async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_started_run_is_queued_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let first = app
        .start_run(json!({"goal": "Add a health endpoint"}))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json_of(first).await;
    let project = tempfile::tempdir().unwrap();
    let project_path = project.path().display().to_string();
    let second = json_of(
        app.start_run(json!({"goal": "Write docs", "project": project_path}))
            .await,
    )
    .await;

    let status = app
        .get(&format!(
            "/supervisor/status/{}",
            first["run_id"].as_str().unwrap()
        ))
        .await;
    let code = status.status();
    let status = json_of(status).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    // The engine takes it at once (offline provider): queued, running or already done.
    assert!(
        ["queued", "running", "waiting_for_human"].contains(&status["status"].as_str().unwrap()),
        "{status}"
    );
    assert_eq!(status["goal"], "Add a health endpoint");

    let list = json_of(app.get("/api/runs").await).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["run_id"].as_str().unwrap(),
            first["run_id"].as_str().unwrap()
        ]
    );
    assert_eq!(list[0]["project"], project_path.as_str());
}

#[tokio::test]
async fn the_same_request_id_gives_the_same_run_even_when_concurrent() {
    let app = TestApp::spawn().await;
    let body = json!({"goal": "Idempotent", "request_id": "req-42"});
    let replies =
        futures_util::future::join_all((0..20).map(|_| app.start_run(body.clone()))).await;
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for res in replies {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected status {other}"),
        }
        ids.insert(json_of(res).await["run_id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(app.store.list_runs(100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_run_is_a_json_404_naming_the_id() {
    let app = TestApp::spawn().await;
    for path in ["/supervisor/status/nope-123", "/api/runs/nope-123"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body = json_of(res).await;
        assert_eq!(body["error"]["code"], "not_found");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nope-123")
        );
    }
    let res = app.get("/api/nothing-here").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(res).await["error"]["code"], "not_found");
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_and_store_nothing() {
    let app = TestApp::spawn().await;
    let long_goal = "x".repeat(20_001);
    let cases: Vec<(String, &str, StatusCode, &str)> = vec![
        (
            "{not json".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "{}".into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `goal`",
        ),
        (
            r#"{"goal": 5}"#.into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            r#"{"goal": "  "}"#.into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "`goal` is empty",
        ),
        (
            json!({"goal": long_goal}).to_string(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "the limit is 20000",
        ),
        (
            r#"{"goal": "g", "colour": "red"}"#.into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `colour`",
        ),
        (
            r#"{"goal": "g", "request_id": ""}"#.into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "`request_id` is empty",
        ),
        (
            r#"{"goal": "g"}"#.into(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json",
        ),
        (
            format!(r#"{{"goal": "{}"}}"#, "y".repeat(2 * 1024 * 1024)),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "too large",
        ),
    ];
    for (body, content_type, status, needle) in cases {
        let res = app
            .client
            .post(app.url("/supervisor/start"))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "body {:.60}", body);
        let json = json_of(res).await;
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    assert!(app.store.list_runs(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_limit_is_bounded() {
    let app = TestApp::spawn().await;
    for q in ["?limit=0", "?limit=1001", "?limit=abc", "?colour=red"] {
        let res = app.get(&format!("/api/runs{q}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
    }
}
