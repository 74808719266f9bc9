//! Fan-out of committed events to WebSocket clients: snapshot → ready → live, lag-safe.
//! A client that reconnects with `after` gets the events it missed instead of a snapshot, and
//! one that asks for a single `run` gets only that run's events.
//!
//! Each client has its own task and its own cursor into the store's broadcast channel, so a
//! slow client can only fall behind, never hold up the writer. A client that falls further
//! behind than the channel holds is sent `Resync` and a fresh snapshot; one that does not take
//! a message within the send timeout is dropped. [`ConnectionLimit`] caps how many are served.

mod progress;

pub use progress::LiveProgress;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use app::events::Event;
use app::protocol::{BriefMsg, SNAPSHOT_RUN_LIMIT, ServerMsg, StageStream};

use crate::store::{Store, StoreError};

/// Most missed events replayed to a reconnecting client; beyond it the client gets `Resync`
/// and a fresh snapshot (reloading is cheaper than replaying).
const MAX_REPLAY: i64 = 5_000;
/// Events read per query during a replay.
const REPLAY_PAGE: u32 = 500;
/// Most events a brief client is told about in one message.
const BRIEF_BATCH: usize = 1_000;

/// What a client asked for.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Resume after this event instead of starting with a snapshot.
    pub after: Option<i64>,
    /// Only this run's events.
    pub run: Option<String>,
    /// Send [`BriefMsg`]s (sequence number, kind and run of each event, no payload and no
    /// snapshot) instead of [`ServerMsg`]s: what the dashboard's pages need to know when to
    /// refresh.
    pub brief: bool,
    /// Where streamed replies report their progress: a brief client is sent
    /// [`BriefMsg::Progress`] for the runs it follows.
    pub progress: Option<Arc<LiveProgress>>,
}

impl StreamOptions {
    fn wants(&self, event: &app::events::Event) -> bool {
        self.wants_run(event.run_id.as_deref())
    }

    fn wants_run(&self, run: Option<&str>) -> bool {
        match &self.run {
            Some(wanted) => run == Some(wanted.as_str()),
            None => true,
        }
    }
}

/// The next progress update, skipping any the client was too slow to take (each supersedes
/// the one before); never resolves without a subscription.
async fn next_progress(rx: &mut Option<broadcast::Receiver<StageStream>>) -> StageStream {
    loop {
        let Some(receiver) = rx else {
            return std::future::pending().await;
        };
        match receiver.recv().await {
            Ok(update) => return update,
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => *rx = None,
        }
    }
}

/// The most WebSocket clients one server serves at once. Clones share the count, so every
/// handle of one server counts together; each [`ConnectionLimit::new`] starts with none.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    max: usize,
    free: Arc<Semaphore>,
}

impl ConnectionLimit {
    /// At most `max` connections at once.
    pub fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            max,
            free: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more connection, held until it is dropped; `None` when all are taken.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.free.clone().try_acquire_owned().ok()
    }
}

/// Why a connection ended (logged at debug level, a stalled client at info).
#[derive(Debug, thiserror::Error)]
enum HubError {
    #[error("client went away")]
    Closed,
    #[error("client did not take a message within {0:?}; dropped")]
    Stalled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

/// The sending half of a client's socket and how long each message may take to be accepted.
struct Outbound {
    sink: SplitSink<WebSocket, Message>,
    timeout: Duration,
}

impl Outbound {
    async fn send(&mut self, msg: &impl serde::Serialize) -> Result<(), HubError> {
        let text = serde_json::to_string(msg)?;
        self.send_message(Message::Text(text.into())).await
    }

    /// A client whose socket does not take the message in time is given up on: waiting
    /// longer would pin this task and its buffers for as long as the client likes.
    async fn send_message(&mut self, message: Message) -> Result<(), HubError> {
        match tokio::time::timeout(self.timeout, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(HubError::Closed),
            Err(_) => Err(HubError::Stalled(self.timeout)),
        }
    }
}

/// Serves one WebSocket until the client leaves, stalls for longer than `send_timeout` on one
/// message, or the server shuts down.
pub async fn serve(
    socket: WebSocket,
    store: Store,
    shutdown: CancellationToken,
    options: StreamOptions,
    send_timeout: Duration,
) {
    let (sink, mut rx) = socket.split();
    let mut tx = Outbound {
        sink,
        timeout: send_timeout,
    };
    // Inbound: we expect nothing but pings and close; its end ends the connection.
    let closed = async move {
        while let Some(Ok(msg)) = rx.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let outcome = tokio::select! {
        r = stream(&mut tx, &store, &options) => r,
        () = closed => Err(HubError::Closed),
        () = shutdown.cancelled() => Ok(()),
    };
    match outcome {
        // Its socket takes nothing: a goodbye would only wait out another timeout.
        Err(err @ HubError::Stalled(_)) => tracing::info!(error = %err, "websocket dropped"),
        outcome => {
            if let Err(err) = outcome {
                tracing::debug!(error = %err, "websocket closed");
            }
            let _ = tx.send_message(Message::Close(None)).await;
        }
    }
}

async fn stream(tx: &mut Outbound, store: &Store, options: &StreamOptions) -> Result<(), HubError> {
    // Subscribe before reading the snapshot: nothing committed in between can be missed.
    let mut events = store.subscribe();
    let mut progress = options
        .progress
        .as_ref()
        .filter(|_| options.brief)
        .map(|live| live.subscribe());
    let mut last_seq = match options.after {
        Some(after) => replay(tx, store, options, after).await?,
        None => send_snapshot(tx, store, options).await?,
    };
    loop {
        let received = tokio::select! {
            biased;
            received = events.recv() => received,
            update = next_progress(&mut progress) => {
                if options.wants_run(Some(&update.run_id)) {
                    tx.send(&BriefMsg::Progress { progress: update }).await?;
                }
                continue;
            }
        };
        match received {
            Ok(event) if event.seq <= last_seq => continue,
            Ok(event) if !options.wants(&event) => last_seq = event.seq,
            Ok(event) if options.brief => {
                // Everything already committed behind it goes in the same message.
                let mut batch = Brief::default();
                batch.add(&event);
                last_seq = event.seq;
                let mut lagged = None;
                while batch.count < BRIEF_BATCH {
                    match events.try_recv() {
                        Ok(next) if next.seq <= last_seq => {}
                        Ok(next) => {
                            last_seq = next.seq;
                            if options.wants(&next) {
                                batch.add(&next);
                            }
                        }
                        Err(TryRecvError::Lagged(missed)) => {
                            lagged = Some(missed);
                            break;
                        }
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                tx.send(&batch.message()).await?;
                if let Some(missed) = lagged {
                    last_seq = fell_behind(tx, store, options, missed).await?;
                }
            }
            Ok(event) => {
                last_seq = event.seq;
                send_event(tx, &event).await?;
            }
            Err(RecvError::Lagged(missed)) => {
                last_seq = fell_behind(tx, store, options, missed).await?;
            }
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

/// The client's receiver dropped `missed` events: it is told to resync and gets a snapshot.
/// Returns the last sequence number covered.
async fn fell_behind(
    tx: &mut Outbound,
    store: &Store,
    options: &StreamOptions,
    missed: u64,
) -> Result<i64, HubError> {
    send_resync(tx, options, format!("fell {missed} events behind")).await?;
    send_snapshot(tx, store, options).await
}

/// Sends the events after `after` (the client's filter applied), then `Ready`; a client too far
/// behind gets `Resync` and a snapshot instead. Returns the last sequence number covered.
async fn replay(
    tx: &mut Outbound,
    store: &Store,
    options: &StreamOptions,
    after: i64,
) -> Result<i64, HubError> {
    // Everything up to the head is committed; anything later comes through the subscription.
    let head = store.head();
    if head - after > MAX_REPLAY || after > head {
        let reason = if after > head {
            format!("event {after} is not in this log (it ends at {head})")
        } else {
            format!("{} events were missed", head - after)
        };
        send_resync(tx, options, reason).await?;
        return send_snapshot(tx, store, options).await;
    }
    let mut cursor = after;
    while cursor < head {
        let page = match &options.run {
            Some(run) => store.run_events(run, cursor, REPLAY_PAGE).await?,
            None => store.events_after(cursor, REPLAY_PAGE).await?,
        };
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        let page = page.into_iter().filter(|e| e.seq <= head);
        if options.brief {
            let mut batch = Brief::default();
            page.for_each(|e| batch.add(&e));
            if batch.count > 0 {
                tx.send(&batch.message()).await?;
            }
            continue;
        }
        for event in page {
            send_event(tx, &event).await?;
        }
    }
    if options.brief {
        tx.send(&BriefMsg::Ready { last_seq: head }).await?;
    } else {
        tx.send(&ServerMsg::Ready).await?;
    }
    Ok(head)
}

/// A fresh start: the runs and `Ready`, or in brief mode only `Ready` with the point the
/// stream continues from.
async fn send_snapshot(
    tx: &mut Outbound,
    store: &Store,
    options: &StreamOptions,
) -> Result<i64, HubError> {
    if options.brief {
        let last_seq = store.head();
        tx.send(&BriefMsg::Ready { last_seq }).await?;
        return Ok(last_seq);
    }
    let (last_seq, runs) = store.snapshot(SNAPSHOT_RUN_LIMIT).await?;
    tx.send(&ServerMsg::Snapshot { last_seq, runs }).await?;
    tx.send(&ServerMsg::Ready).await?;
    Ok(last_seq)
}

/// Events gathered for one [`BriefMsg::Events`].
#[derive(Debug, Default)]
struct Brief {
    last_seq: i64,
    count: usize,
    kinds: Vec<&'static str>,
}

impl Brief {
    fn add(&mut self, event: &Event) {
        self.last_seq = event.seq;
        self.count += 1;
        let kind = event.data.kind();
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
        }
    }

    fn message(&self) -> BriefMsg {
        BriefMsg::Events {
            last_seq: self.last_seq,
            count: u32::try_from(self.count).unwrap_or(u32::MAX),
            kinds: self.kinds.iter().map(|k| k.to_string()).collect(),
        }
    }
}

/// One event, in full.
async fn send_event(tx: &mut Outbound, event: &Event) -> Result<(), HubError> {
    tx.send(&ServerMsg::Event {
        event: Box::new(event.clone()),
    })
    .await
}

async fn send_resync(
    tx: &mut Outbound,
    options: &StreamOptions,
    reason: String,
) -> Result<(), HubError> {
    if options.brief {
        tx.send(&BriefMsg::Resync { reason }).await
    } else {
        tx.send(&ServerMsg::Resync { reason }).await
    }
}
