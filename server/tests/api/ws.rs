//! `/ws`: snapshot, ready, live events; refused without a token or from a foreign origin;
//! a client that falls behind is resynced without slowing the writer.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite;

use crate::support::app::TestApp;
use crate::support::db::tokens;
use crate::support::ws::{bearer, next_msg, open};
use crate::support::{Config, EventData, ServerMsg};

#[tokio::test]
async fn snapshot_then_ready_then_live_events() {
    let app = TestApp::spawn().await;
    let before = app.start_run(json!({"goal": "before connecting"})).await;
    assert!(before.status().is_success());

    let mut socket = open(&app, "", &[bearer()])
        .await
        .expect("authorised connect");
    let ServerMsg::Snapshot { last_seq, runs } = next_msg(&mut socket).await else {
        panic!("first message must be a snapshot");
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].goal, "before connecting");
    assert!(matches!(next_msg(&mut socket).await, ServerMsg::Ready));

    let res = app.start_run(json!({"goal": "after connecting"})).await;
    let run_id = res.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The engine's events for the first run may come first; every event is newer than the
    // snapshot, and the new run's creation arrives.
    loop {
        let ServerMsg::Event { event } = next_msg(&mut socket).await else {
            panic!("expected live events");
        };
        assert!(event.seq > last_seq);
        if let EventData::RunCreated { ref goal, .. } = event.data {
            assert_eq!(goal, "after connecting");
            assert_eq!(event.run_id.as_deref(), Some(run_id.as_str()));
            break;
        }
    }
}

#[tokio::test]
async fn refused_without_a_token_or_from_a_foreign_origin() {
    let app = TestApp::spawn().await;
    let status_of = |err: tungstenite::Error| match err {
        tungstenite::Error::Http(res) => res.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    let err = open(&app, "", &[])
        .await
        .expect_err("refused without token");
    assert_eq!(status_of(err), 401);
    let wrong = (
        "authorization",
        "Bearer fct_nope_nope_nope_nope_nope_nope_nope".to_string(),
    );
    let err = open(&app, "", &[wrong])
        .await
        .expect_err("refused with a wrong token");
    assert_eq!(status_of(err), 401);
    let foreign = ("origin", "http://evil.example".to_string());
    let err = open(&app, "", &[bearer(), foreign])
        .await
        .expect_err("refused origin");
    assert_eq!(status_of(err), 403);
    let own = ("origin", format!("http://{}", app.addr));
    assert!(open(&app, "", &[bearer(), own]).await.is_ok());
}

#[tokio::test]
async fn a_slow_client_is_resynced_and_never_blocks_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.ws_backlog = 16;
    let app = TestApp::spawn_with(config).await;
    let mut socket = open(&app, "", &[bearer()]).await.unwrap();
    assert!(matches!(
        next_msg(&mut socket).await,
        ServerMsg::Snapshot { .. }
    ));
    assert!(matches!(next_msg(&mut socket).await, ServerMsg::Ready));

    // The client reads nothing while 2,000 events are committed: the appends must all finish.
    let batch = tokens(2000, "flood");
    let committed = tokio::time::timeout(Duration::from_secs(20), app.store.append_batch(batch))
        .await
        .expect("the writer is not held up by a slow client")
        .unwrap();
    let last = committed.last().unwrap().seq;

    let mut resynced = false;
    loop {
        match next_msg(&mut socket).await {
            ServerMsg::Resync { .. } => resynced = true,
            ServerMsg::Snapshot { last_seq, .. } if resynced => {
                assert_eq!(last_seq, last);
                break;
            }
            ServerMsg::Event { event } => assert!(event.seq <= last),
            _ => {}
        }
    }
    assert!(resynced);
}
