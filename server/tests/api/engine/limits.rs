//! The engine's limits and bad input: the concurrency cap, bad starts, the event stream's pages.

use super::*;

#[tokio::test]
async fn runs_beyond_the_concurrency_cap_wait_queued() {
    let script = ModelScript::default();
    *script.delay.lock().unwrap() = Duration::from_millis(300);
    let app = app_with_model(script, |c| c.factory.engine.max_concurrent_runs = 1).await;
    let first = start(&app, json!({"goal": "first"})).await;
    let second = start(&app, json!({"goal": "second"})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, a) = get(&app, &format!("/supervisor/status/{first}")).await;
    let (_, b) = get(&app, &format!("/supervisor/status/{second}")).await;
    assert_eq!(a["status"], "running");
    assert_eq!(b["status"], "queued", "waits for a slot");
    let (status, _) = post(&app, &format!("/supervisor/cancel/{second}")).await;
    assert_eq!(status, StatusCode::OK, "a queued run can be canceled");
    let (status, _) = post(&app, &format!("/supervisor/cancel/{first}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_starts_are_refused_and_the_event_stream_pages() {
    let app = TestApp::spawn().await;
    for (body, code, needle) in [
        (json!({"goal": ""}), 400, "`goal` is empty"),
        (
            json!({"goal": "x".repeat(20_001)}),
            400,
            "the limit is 20000",
        ),
        (
            json!({"goal": "x", "pipeline": "nope"}),
            422,
            "unknown pipeline `nope`",
        ),
        (
            json!({"goal": "x", "project": "/does/not/exist"}),
            422,
            "unknown project",
        ),
        (
            json!({"goal": "x", "project": "relative/path"}),
            422,
            "absolute path",
        ),
    ] {
        let res = app.start_run(body.clone()).await;
        assert_eq!(res.status().as_u16(), code, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    let (_, runs) = get(&app, "/api/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 0, "nothing was stored");

    let run_id = start(&app, json!({"goal": "Document the API"})).await;
    finished(&app, &run_id, Duration::from_secs(10)).await;
    // The projections maintained batch by batch equal a replay of the log.
    let db = sqlite(app.store.path()).await;
    let dump = || async {
        let runs: Vec<RunRow> = sqlx::query_as(
            "SELECT id, status, steps, artifacts, current_stage, reason, last_seq \
                 FROM supervisor_runs ORDER BY id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let memory: Vec<(String, String, String)> =
            sqlx::query_as("SELECT item_id, bank, text FROM memory_items ORDER BY item_id")
                .fetch_all(&db)
                .await
                .unwrap();
        (runs, memory)
    };
    let live = dump().await;
    app.store.rebuild_projections().await.unwrap();
    assert_eq!(dump().await, live);
    assert!(!live.1.is_empty());
    let (_, all) = get(&app, &format!("/events?run_id={run_id}")).await;
    let total = all["events"].as_array().unwrap().len();
    assert!(total > 10);
    let (_, page) = get(&app, &format!("/events?run_id={run_id}&limit=3")).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    let after = page["next_after"].as_i64().unwrap();
    let (_, rest) = get(
        &app,
        &format!("/events?run_id={run_id}&after={after}&limit=1000"),
    )
    .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), total - 3);
    let (status, _) = get(&app, "/events?run_id=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/events?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, teams) = get(&app, "/api/teams").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(teams.as_array().unwrap().len(), 17);
    assert!(teams[0]["soul"].as_str().unwrap().len() > 500);
    let (_, hits) = get(&app, "/api/memory/search?q=API&bank=business-analysis").await;
    assert!(!hits.as_array().unwrap().is_empty(), "{hits}");
    let (status, _) = get(&app, "/api/memory/search?q=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
