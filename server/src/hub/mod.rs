//! Fan-out of committed events to WebSocket clients: snapshot → ready → live, lag-safe.
//!
//! Each client has its own task and its own cursor into the store's broadcast channel, so a
//! slow client can only fall behind, never hold up the writer. A client that falls further
//! behind than the channel holds is sent `Resync` and a fresh snapshot.

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use app::protocol::{SNAPSHOT_RUN_LIMIT, ServerMsg};

use crate::store::{Store, StoreError};

/// Why a connection ended (logged at debug level).
#[derive(Debug, thiserror::Error)]
enum HubError {
    #[error("client went away")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

/// Serves one WebSocket until the client leaves or the server shuts down.
pub async fn serve(socket: WebSocket, store: Store, shutdown: CancellationToken) {
    let (mut tx, mut rx) = socket.split();
    // Inbound: we expect nothing but pings and close; its end ends the connection.
    let closed = async move {
        while let Some(Ok(msg)) = rx.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let outcome = tokio::select! {
        r = stream(&mut tx, &store) => r,
        () = closed => Err(HubError::Closed),
        () = shutdown.cancelled() => Ok(()),
    };
    if let Err(err) = outcome {
        tracing::debug!(error = %err, "websocket closed");
    }
    let _ = tx.send(Message::Close(None)).await;
}

async fn stream(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    store: &Store,
) -> Result<(), HubError> {
    // Subscribe before reading the snapshot: nothing committed in between can be missed.
    let mut events = store.subscribe();
    let mut last_seq = send_snapshot(tx, store).await?;
    loop {
        match events.recv().await {
            Ok(event) if event.seq <= last_seq => continue,
            Ok(event) => {
                last_seq = event.seq;
                send(
                    tx,
                    &ServerMsg::Event {
                        event: Box::new((*event).clone()),
                    },
                )
                .await?;
            }
            Err(RecvError::Lagged(missed)) => {
                let reason = format!("fell {missed} events behind");
                send(tx, &ServerMsg::Resync { reason }).await?;
                last_seq = send_snapshot(tx, store).await?;
            }
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

async fn send_snapshot(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    store: &Store,
) -> Result<i64, HubError> {
    let (last_seq, runs) = store.snapshot(SNAPSHOT_RUN_LIMIT).await?;
    send(tx, &ServerMsg::Snapshot { last_seq, runs }).await?;
    send(tx, &ServerMsg::Ready).await?;
    Ok(last_seq)
}

async fn send(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    msg: &ServerMsg,
) -> Result<(), HubError> {
    let text = serde_json::to_string(msg)?;
    tx.send(Message::Text(text.into()))
        .await
        .map_err(|_| HubError::Closed)
}
