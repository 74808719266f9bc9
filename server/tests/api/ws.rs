//! `/ws`: snapshot, ready, live events; refused without a token or from a foreign origin;
//! a client that falls behind is resynced without slowing the writer.

use std::time::Duration;

use app::events::EventData;
use app::protocol::ServerMsg;
use factory_server::config::Config;
use factory_server::store::NewEvent;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::helpers::{TOKEN, TestApp};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    app: &TestApp,
    headers: &[(&'static str, String)],
) -> Result<Socket, tungstenite::Error> {
    let mut req = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

async fn next_msg(socket: &mut Socket) -> ServerMsg {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("valid frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).expect("a ServerMsg");
        }
    }
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

#[tokio::test]
async fn snapshot_then_ready_then_live_events() {
    let app = TestApp::spawn().await;
    let before = app.start_run(json!({"goal": "before connecting"})).await;
    assert!(before.status().is_success());

    let mut socket = connect(&app, &[bearer()])
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
    let err = connect(&app, &[]).await.expect_err("refused without token");
    assert_eq!(status_of(err), 401);
    let wrong = (
        "authorization",
        "Bearer fct_nope_nope_nope_nope_nope_nope_nope".to_string(),
    );
    let err = connect(&app, &[wrong])
        .await
        .expect_err("refused with a wrong token");
    assert_eq!(status_of(err), 401);
    let foreign = ("origin", "http://evil.example".to_string());
    let err = connect(&app, &[bearer(), foreign])
        .await
        .expect_err("refused origin");
    assert_eq!(status_of(err), 403);
    let own = ("origin", format!("http://{}", app.addr));
    assert!(connect(&app, &[bearer(), own]).await.is_ok());
}

#[tokio::test]
async fn a_slow_client_is_resynced_and_never_blocks_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.ws_backlog = 16;
    let app = TestApp::spawn_with(config).await;
    let mut socket = connect(&app, &[bearer()]).await.unwrap();
    assert!(matches!(
        next_msg(&mut socket).await,
        ServerMsg::Snapshot { .. }
    ));
    assert!(matches!(next_msg(&mut socket).await, ServerMsg::Ready));

    // The client reads nothing while 2,000 events are committed: the appends must all finish.
    let batch: Vec<NewEvent> = (0..2000)
        .map(|i| {
            NewEvent::new(
                "test",
                EventData::AdminTokenCreated {
                    token_id: format!("t{i}"),
                    label: "flood".into(),
                },
            )
        })
        .collect();
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
