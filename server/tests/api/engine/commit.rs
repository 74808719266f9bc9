//! A stage's commit that fails at its `COMMIT`: the next stage's team may already have been
//! asked (it overlaps the commit's fsync), but nothing after the failed stage is stored, and
//! the run resumes at that stage on the next start.

use super::*;
use crate::support::model::{factory_toml, serve_model};
use crate::support::{Config, EnvSnapshot, FactoryConfig};

fn config(dir: &std::path::Path, model: &str) -> Config {
    let mut config = Config::new(dir.to_path_buf());
    let mut factory = FactoryConfig::defaults(&EnvSnapshot::default());
    factory.merge_toml(&factory_toml(model), "test").unwrap();
    factory.validate().unwrap();
    config.factory = factory;
    config
}

/// Makes the `COMMIT` of the transaction holding stage 1's completion fail: a deferred
/// foreign key is checked only then, after every statement of the write succeeded.
const FAIL_STAGE_1: &str = "
    CREATE TABLE guard_parent (id INTEGER PRIMARY KEY);
    CREATE TABLE guard (
        id INTEGER PRIMARY KEY,
        parent INTEGER REFERENCES guard_parent (id) DEFERRABLE INITIALLY DEFERRED
    );
    CREATE TRIGGER fail_stage_1 AFTER INSERT ON events
    WHEN NEW.kind = 'stage_completed' AND json_extract(NEW.payload, '$.index') = 1
    BEGIN INSERT INTO guard (parent) VALUES (42); END;";

const LIFT: &str = "DROP TRIGGER fail_stage_1; DROP TABLE guard; DROP TABLE guard_parent;";

#[tokio::test]
async fn a_stage_whose_commit_fails_leaves_nothing_after_it_and_the_run_resumes_there() {
    let script = ModelScript::default();
    let model = serve_model(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(config(dir.path(), &model)).await;
    let db = sqlite(app.store.path()).await;
    sqlx::raw_sql(FAIL_STAGE_1).execute(&db).await.unwrap();

    let run_id = start(&app, json!({"goal": "Export orders as CSV"})).await;
    // Stage 1 (solution-architecture) answered; its commit fails, and the driving stops.
    let deadline = Instant::now() + Duration::from_secs(20);
    while script.bodies_to("solution-architecture").is_empty() {
        assert!(Instant::now() < deadline, "stage 1's team was never asked");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut calls = script.calls();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = script.calls();
        if now == calls {
            break;
        }
        assert!(Instant::now() < deadline, "the run kept calling the model");
        calls = now;
    }
    assert!(
        calls <= 3,
        "at most the next stage's team was asked ahead: {calls} calls"
    );

    let stored: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT kind, json_extract(payload, '$.index') FROM events WHERE run_id = ? ORDER BY seq",
    )
    .bind(&run_id)
    .fetch_all(&db)
    .await
    .unwrap();
    let completed: Vec<i64> = stored
        .iter()
        .filter(|(k, _)| k == "stage_completed")
        .filter_map(|(_, i)| *i)
        .collect();
    assert_eq!(completed, [0], "only stage 0 is stored: {stored:?}");
    let last = stored.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1),
        ("stage_started", Some(1)),
        "the log ends where stage 1 began: {stored:?}"
    );
    let (_, run) = get(&app, &format!("/supervisor/status/{run_id}")).await;
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(app.store.verify_chain().await.unwrap().broken, None);

    // The cause lifted, the next start resumes the run at stage 1 and finishes it.
    sqlx::raw_sql(LIFT).execute(&db).await.unwrap();
    db.close().await;
    app.stop().await;
    drop(app);
    let app = TestApp::spawn_with(config(dir.path(), &model)).await;
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let db = sqlite(app.store.path()).await;
    let completed: Vec<i64> = sqlx::query_scalar(
        "SELECT json_extract(payload, '$.index') FROM events \
         WHERE run_id = ? AND kind = 'stage_completed' ORDER BY seq",
    )
    .bind(&run_id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(completed, [0, 1, 2, 3, 4]);
    assert_eq!(
        script.bodies_to("solution-architecture").len(),
        2,
        "asked again"
    );
    assert_eq!(app.store.verify_chain().await.unwrap().broken, None);
}
