//! The event store on a real SQLite file: chain, tamper detection, append-only triggers,
//! atomic batches, projection rebuild, schema guard.

use sqlx::Row;

mod wal;

use crate::support::db::sqlite;
use crate::support::{EventData, NewEvent, NewRun, Store, StoreError};

fn token_event(i: usize) -> NewEvent {
    NewEvent::new(
        "test",
        EventData::AdminTokenCreated {
            token_id: format!("t{i}"),
            label: format!("label {i}"),
        },
    )
}

async fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    for i in 0..5 {
        store
            .create_run(
                NewRun {
                    goal: format!("goal {i}"),
                    project: (i % 2 == 0).then(|| "p".to_string()),
                    request_id: Some(format!("req-{i}")),
                    pipeline: None,
                },
                "test",
            )
            .await
            .unwrap();
    }
    store
        .append_batch((0..10).map(token_event).collect())
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn appends_form_an_intact_gap_free_chain() {
    let (_dir, store) = seeded().await;
    let report = store.verify_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, 15);
    assert_eq!(report.head_seq, 15);
    let events = store.events_after(0, 100).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=15).collect::<Vec<_>>());
}

#[tokio::test]
async fn updates_and_deletes_are_refused_by_the_database() {
    let (_dir, store) = seeded().await;
    let db = sqlite(store.path()).await;
    let update = sqlx::query("UPDATE events SET actor = 'mallory' WHERE seq = 1")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sqlx::query("DELETE FROM events WHERE seq = 2")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    assert_eq!(store.verify_chain().await.unwrap().broken, None);
}

#[tokio::test]
async fn a_tampered_row_is_named_by_verify() {
    let (_dir, store) = seeded().await;
    let db = sqlite(store.path()).await;
    sqlx::query("DROP TRIGGER events_no_update")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET payload = replace(payload, 'goal 2', 'goal X') WHERE seq = 3")
        .execute(&db)
        .await
        .unwrap();
    let broken = store.verify_chain().await.unwrap().broken.expect("broken");
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("altered"), "{}", broken.reason);
}

#[tokio::test]
async fn a_removed_row_is_named_by_verify() {
    let (_dir, store) = seeded().await;
    let db = sqlite(store.path()).await;
    sqlx::query("DROP TRIGGER events_no_delete")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE seq = 7")
        .execute(&db)
        .await
        .unwrap();
    let broken = store.verify_chain().await.unwrap().broken.expect("broken");
    assert_eq!(broken.seq, 8);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);
}

async fn dump_projections(store: &Store) -> Vec<String> {
    sqlx::query("SELECT json_object('id', id, 'request_id', request_id, 'goal', goal, 'project', project, 'status', status, 'created_at', created_at, 'created_seq', created_seq, 'updated_at', updated_at, 'last_seq', last_seq) FROM supervisor_runs ORDER BY id")
        .fetch_all(&sqlite(store.path()).await)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

#[tokio::test]
async fn rebuilt_projections_equal_the_live_ones() {
    let (_dir, store) = seeded().await;
    let live = dump_projections(&store).await;
    assert_eq!(live.len(), 5);
    let db = sqlite(store.path()).await;
    // Damage the projection, then rebuild it from the log.
    sqlx::query("DELETE FROM supervisor_runs WHERE goal = 'goal 1'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE supervisor_runs SET status = 'failed'")
        .execute(&db)
        .await
        .unwrap();
    assert_ne!(dump_projections(&store).await, live);
    let replayed = store.rebuild_projections().await.unwrap();
    assert_eq!(replayed, 15);
    assert_eq!(dump_projections(&store).await, live);
}

#[tokio::test]
async fn a_failing_batch_writes_nothing() {
    let (_dir, store) = seeded().await;
    let existing = store.list_runs(1).await.unwrap().remove(0);
    let duplicate = NewEvent::new(
        "test",
        EventData::RunCreated {
            run_id: existing.id.clone(),
            request_id: None,
            goal: "duplicate id".into(),
            project: None,
            pipeline: None,
        },
    );
    let err = store
        .append_batch(vec![token_event(100), duplicate, token_event(101)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Db(_)), "{err}");
    assert_eq!(store.last_seq().await.unwrap(), 15);
    assert_eq!(store.verify_chain().await.unwrap().broken, None);
    // The store still works afterwards.
    store.append(token_event(102)).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 16);
}

#[tokio::test]
async fn a_write_abandoned_inside_its_transaction_leaves_nothing_and_the_store_goes_on() {
    // A caller that goes away (a closed request) while its write is inside the transaction:
    // what it did is rolled back before the next write begins its own.
    let (_dir, store) = seeded().await;
    let abandoned = store.write::<()>(Box::new(|conn| {
        Box::pin(async move {
            sqlx::query("DELETE FROM supervisor_runs")
                .execute(&mut *conn)
                .await?;
            std::future::pending().await
        })
    }));
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(300), abandoned).await;
    assert!(outcome.is_err(), "the write never finishes: {outcome:?}");
    let next = store.append(token_event(200)).await.unwrap();
    assert_eq!(next.seq, 16);
    assert_eq!(store.list_runs(10).await.unwrap().len(), 5);
    assert_eq!(store.verify_chain().await.unwrap().broken, None);
}

#[tokio::test]
async fn events_for_a_run_that_has_finished_are_refused_whole() {
    let (_dir, store) = seeded().await;
    let run = store.list_runs(1).await.unwrap().remove(0);
    let finished = NewEvent::new(
        "test",
        EventData::RunFinished {
            run_id: run.id.clone(),
            status: app::dto::RunStatus::Failed,
            reason: "stopped by the test".into(),
        },
    );
    let stored = store
        .append_if_active(&run.id, vec![finished, token_event(300)])
        .await
        .unwrap()
        .expect("the run was active");
    assert_eq!(stored.len(), 2);
    assert_eq!(
        store.get_run(&run.id).await.unwrap().unwrap().status,
        app::dto::RunStatus::Failed
    );
    let head = store.last_seq().await.unwrap();
    for id in [run.id.as_str(), "no-such-run"] {
        let refused = store
            .append_if_active(id, vec![token_event(301)])
            .await
            .unwrap();
        assert!(refused.is_none(), "{id}");
    }
    assert_eq!(store.last_seq().await.unwrap(), head, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_a_failing_one_spares_the_rest() {
    // 300 writers at once: they are committed in groups (several per transaction), every caller
    // gets its own events back, the chain stays gap-free, and the writes that fail (a duplicate
    // run id) are rolled back alone.
    let (_dir, store) = seeded().await;
    let existing = store.list_runs(1).await.unwrap().remove(0);
    let mut tasks = Vec::new();
    for i in 0..300usize {
        let store = store.clone();
        let existing = existing.id.clone();
        tasks.push(tokio::spawn(async move {
            if i % 50 == 7 {
                let duplicate = NewEvent::new(
                    "test",
                    EventData::RunCreated {
                        run_id: existing,
                        request_id: None,
                        goal: "duplicate id".into(),
                        project: None,
                        pipeline: None,
                    },
                );
                (
                    i,
                    store
                        .append_batch(vec![token_event(5000 + i), duplicate])
                        .await,
                )
            } else {
                (
                    i,
                    store
                        .append_batch(vec![token_event(3000 + i), token_event(4000 + i)])
                        .await,
                )
            }
        }));
    }
    let mut seqs = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        match outcome {
            Ok(events) => {
                assert_eq!(events.len(), 2);
                assert_eq!(
                    events[1].seq,
                    events[0].seq + 1,
                    "a write's events are contiguous"
                );
                match &events[0].data {
                    EventData::AdminTokenCreated { token_id, .. } => {
                        assert_eq!(
                            token_id,
                            &format!("t{}", 3000 + i),
                            "each caller gets its own events"
                        )
                    }
                    other => panic!("unexpected {other:?}"),
                }
                seqs.extend(events.iter().map(|e| e.seq));
            }
            Err(err) => {
                assert_eq!(i % 50, 7, "only the duplicates fail: {err}");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 6);
    seqs.sort_unstable();
    assert_eq!(seqs, (16..16 + 2 * 294).collect::<Vec<i64>>());
    let report = store.verify_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.head_seq, 15 + 2 * 294);
    // Nothing of a failed write is stored, not even its first event.
    let stored = sqlx::query("SELECT COUNT(*) FROM events WHERE payload LIKE '%t5007%'")
        .fetch_one(&sqlite(store.path()).await)
        .await
        .unwrap()
        .get::<i64, _>(0);
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn two_handles_on_one_file_never_fork_the_chain() {
    // A running server and `factory token create` in another process share the file.
    let (dir, a) = seeded().await;
    let b = Store::open(dir.path()).await.unwrap();
    let (ra, rb) = tokio::join!(
        async {
            for i in 0..50 {
                a.append(token_event(1000 + i)).await.unwrap();
            }
        },
        async {
            for i in 0..50 {
                b.append(token_event(2000 + i)).await.unwrap();
            }
        }
    );
    let _ = (ra, rb);
    let report = a.verify_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.head_seq, 115);
}

/// A run's plan as its row holds it: each stage's status.
async fn step_statuses(store: &Store, run_id: &str) -> Vec<String> {
    let steps: String = sqlx::query("SELECT steps FROM supervisor_runs WHERE id = ?")
        .bind(run_id)
        .fetch_one(&sqlite(store.path()).await)
        .await
        .unwrap()
        .get(0);
    let steps: Vec<serde_json::Value> = serde_json::from_str(&steps).unwrap();
    steps
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

/// `run_started` for `run_id`, planning three stages `s0`–`s2` of team `t`.
fn run_started(run_id: &str) -> NewEvent {
    NewEvent::new(
        "test",
        EventData::RunStarted {
            run_id: run_id.to_string(),
            pipeline: "p".into(),
            stages: (0..3)
                .map(|i| app::events::PlannedStage {
                    name: format!("s{i}"),
                    team: "t".into(),
                })
                .collect(),
            base_commit: None,
        },
    )
}

fn stage_started(run_id: &str, index: u32) -> NewEvent {
    NewEvent::new(
        "test",
        EventData::StageStarted {
            run_id: run_id.to_string(),
            index,
            stage: format!("s{index}"),
            team: "t".into(),
        },
    )
}

#[tokio::test]
async fn a_run_s_commits_begin_anew_when_another_handle_wrote_since() {
    // A run's commit after its own last one skips the transaction's reads: the writer knows
    // the head and the run's row. Another process appending between them (here one changing
    // that very row) must not be overwritten, nor fork the chain.
    let (dir, a) = seeded().await;
    let run = a.list_runs(1).await.unwrap().remove(0);
    let b = Store::open(dir.path()).await.unwrap();
    let stage = |index: u32| stage_started(&run.id, index);
    let started = run_started(&run.id);
    for events in [vec![started], vec![stage(0)]] {
        a.append_if_active(&run.id, events).await.unwrap().unwrap();
    }
    // `a` knows the row with stage 0 running; `b` starts stage 1 behind its back.
    b.append_if_active(&run.id, vec![stage(1)])
        .await
        .unwrap()
        .unwrap();
    let stored = a
        .append_if_active(&run.id, vec![stage(2)])
        .await
        .unwrap()
        .expect("the run is active");
    assert_eq!(stored[0].seq, 19, "after b's event, not over it");
    assert_eq!(
        step_statuses(&a, &run.id).await,
        ["running", "running", "running"],
        "b's change to the row was kept"
    );
    // And the known path itself: a's next commit right after its own.
    a.append_if_active(&run.id, vec![token_event(500)])
        .await
        .unwrap()
        .unwrap();
    let report = a.verify_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.head_seq, 20);
    let live = step_statuses(&a, &run.id).await;
    a.rebuild_projections().await.unwrap();
    assert_eq!(step_statuses(&a, &run.id).await, live);
}

#[tokio::test]
async fn a_staged_append_announces_exactly_the_events_it_then_stores() {
    // The engine folds a completed stage's events as soon as a staged append announces them,
    // before the COMMIT. They must be the events stored: the same sequence numbers and hashes,
    // even when another handle appended between two of the run's commits (the writer's known
    // head is then stale, and the events are sealed again), and published only once durable.
    let (dir, a) = seeded().await;
    let run = a.list_runs(1).await.unwrap().remove(0);
    let b = Store::open(dir.path()).await.unwrap();
    let mut published = a.subscribe();
    let stage = |index: u32| stage_started(&run.id, index);
    let started = run_started(&run.id);
    let mut announced = Vec::new();
    for (i, events) in [vec![started, stage(0)], vec![stage(1)], vec![stage(2)]]
        .into_iter()
        .enumerate()
    {
        if i == 2 {
            // Behind the writer's back, after its last commit of this run.
            b.append(token_event(600)).await.unwrap();
        }
        let staged = a.append_if_active_staged(&run.id, events).await.unwrap();
        let events = staged.events.clone().expect("the run is active");
        staged.durable.wait().await.unwrap();
        announced.extend(events);
    }
    let seqs: Vec<i64> = announced.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [16, 17, 18, 20], "after b's event (19), not over it");
    let db = sqlite(a.path()).await;
    for event in &announced {
        let hash: String = sqlx::query_scalar("SELECT hash FROM events WHERE seq = ?")
            .bind(event.seq)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(hash, event.hash, "event {} as announced", event.seq);
        let sent = published.recv().await.unwrap();
        assert_eq!((sent.seq, &sent.hash), (event.seq, &event.hash));
    }
    assert_eq!(a.verify_chain().await.unwrap().broken, None);
    assert_eq!(
        step_statuses(&a, &run.id).await,
        ["running", "running", "running"]
    );

    // A finished run: nothing is announced, nothing stored.
    let finished = NewEvent::new(
        "test",
        EventData::RunFinished {
            run_id: run.id.clone(),
            status: app::dto::RunStatus::Canceled,
            reason: "test".into(),
        },
    );
    a.append_if_active(&run.id, vec![finished]).await.unwrap();
    let head = a.verify_chain().await.unwrap().head_seq;
    let staged = a
        .append_if_active_staged(&run.id, vec![stage(3)])
        .await
        .unwrap();
    assert!(staged.events.is_none(), "the run has finished");
    staged.durable.wait().await.unwrap();
    assert_eq!(a.verify_chain().await.unwrap().head_seq, head);
}

#[tokio::test]
async fn a_database_from_a_newer_schema_is_refused_untouched() {
    let (dir, store) = seeded().await;
    let db = sqlite(store.path()).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', 1, x'00', 0)",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    store.close().await;
    let err = Store::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99990101000000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer Factory"));
    assert!(err.is_unusable_database());
    // Nothing was changed: the rows are all still there.
    let pool = sqlite(&dir.path().join("factory.db")).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 15);
}

#[tokio::test]
async fn an_unusable_data_dir_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("data")).await.unwrap_err();
    assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
    assert!(err.to_string().contains("cannot create it"), "{err}");

    let not_db = tempfile::tempdir().unwrap();
    std::fs::write(
        not_db.path().join("factory.db"),
        b"this is not a database at all, just text",
    )
    .unwrap();
    let err = Store::open(not_db.path()).await.unwrap_err();
    assert!(err.is_unusable_database(), "{err}");
    let content = std::fs::read(not_db.path().join("factory.db")).unwrap();
    assert_eq!(content, b"this is not a database at all, just text");
}
