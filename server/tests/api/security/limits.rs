//! Resource limits and durable acknowledgements: `/ws` caps inbound messages and connections
//! and drops a client that stops reading; a model call whose cost cannot be recorded fails;
//! a new data directory is private to its owner.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::app::TestApp;
use crate::support::db::sqlite;
use crate::support::providers::{Reply, config, request, serve};
use crate::support::ws::{connect_small_buffer, ends_within};
use crate::support::{
    Config, ConnectionLimit, EventData, Gateway, GatewayError, NewEvent, Store, cost_report,
};

#[tokio::test]
async fn a_client_message_over_64_kib_closes_the_socket() {
    let app = TestApp::spawn().await;
    let mut socket = connect_small_buffer(&app, "?brief=true").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
    socket
        .send(Message::Text("x".repeat(100 * 1024).into()))
        .await
        .unwrap();
    assert!(
        ends_within(&mut socket, Duration::from_secs(10)).await,
        "the server would have buffered a 100 KiB message from a client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_is_503_and_a_stalled_client_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.ws_connections = ConnectionLimit::new(1);
    config.ws_send_timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(config).await;
    // 16 MB of events: far more than the sockets between server and client can hold.
    let error = "e".repeat(8 * 1024);
    let flood: Vec<NewEvent> = (0..2000)
        .map(|i| {
            NewEvent::new(
                "test",
                EventData::ModelCallFailed {
                    call_id: format!("flood-{i}"),
                    attribution: Default::default(),
                    target: "test/chain".into(),
                    error: error.clone(),
                    path: Vec::new(),
                },
            )
        })
        .collect();
    app.store.append_batch(flood).await.unwrap();

    // The first client asks for all of it, then reads nothing.
    let mut stalled = connect_small_buffer(&app, "?after=0").await.unwrap();
    // It holds the only slot: the next one is refused before upgrading, with a JSON error.
    let refused = connect_small_buffer(&app, "?brief=true").await.unwrap_err();
    let tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status(), 503);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("WebSocket clients"), "{body}");

    // Its sends stall; after the 1 s send timeout it is dropped and its slot is free again.
    let started = Instant::now();
    let mut admitted = None;
    while admitted.is_none() && started.elapsed() < Duration::from_secs(15) {
        admitted = connect_small_buffer(&app, "?brief=true").await.ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        admitted.is_some(),
        "the stalled client still holds its slot"
    );
    // The stalled client's connection was closed: what was in flight drains, then it ends.
    assert!(ends_within(&mut stalled, Duration::from_secs(20)).await);
}

#[tokio::test]
async fn a_model_call_whose_cost_cannot_be_recorded_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let answer = Reply::Ok {
        text: "hi",
        input: 1_000,
        output: 500,
    };
    let (base, script) = serve(vec![answer.clone(), answer]).await;
    let gateway = Gateway::with_ledger(config(&[&base], |_| {}), store.clone())
        .await
        .unwrap();
    // The disk "fills up": SQLite refuses every new event.
    let db = sqlite(store.path()).await;
    sqlx::query(
        "CREATE TRIGGER test_disk_full BEFORE INSERT ON events \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let err = gateway.complete(&request(None)).await.unwrap_err();
    assert_eq!(script.calls(), 1, "the model was asked");
    assert!(matches!(err, GatewayError::Ledger(_)), "{err:?}");
    assert!(err.to_string().contains("disk is full"), "{err}");

    // With room again, calls succeed and each is in the ledger; the failed one never was.
    sqlx::query("DROP TRIGGER test_disk_full")
        .execute(&db)
        .await
        .unwrap();
    gateway.complete(&request(None)).await.unwrap();
    let report = cost_report(&store).await.unwrap();
    assert_eq!(report.total.map(|t| t.calls), Some(1));
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_new_data_directory_is_readable_by_its_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let store = Store::open(&data).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("factory.db")), 0o600);
    store
        .append(NewEvent::new(
            "test",
            EventData::ModelCallFailed {
                call_id: "c1".into(),
                attribution: Default::default(),
                target: "test/chain".into(),
                error: "mode check".into(),
                path: Vec::new(),
            },
        ))
        .await
        .unwrap();
    let wal = data.join("factory.db-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600, "SQLite's side files follow the database");
    store.close().await;

    // A directory the person already shares is left as they set it (a warning names it).
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
    Store::open(&shared).await.unwrap().close().await;
    assert_eq!(mode(&shared), 0o750);
}
