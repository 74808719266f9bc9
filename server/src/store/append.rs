//! Appending: one writer connection; each append (or batch) holds its new events and the
//! projection updates they cause, fsync'd before `Ok` is returned. Concurrent appends share a
//! commit (group commit, see [`Store::write`]).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use app::events::{Event, EventData};
use futures::future::BoxFuture;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use tokio::sync::{OwnedMutexGuard, oneshot};

use super::chain::{GENESIS_HASH, event_hash};
use super::{Store, StoreError, encode, projection};

/// An event to append; the store assigns sequence number, time and hash.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub run_id: Option<String>,
    pub actor: String,
    pub data: EventData,
}

impl NewEvent {
    /// An event attributed to `actor`, tied to a run when the data names one.
    pub fn new(actor: impl Into<String>, data: EventData) -> NewEvent {
        let run_id = data.run_id().map(str::to_string);
        NewEvent {
            run_id,
            actor: actor.into(),
            data,
        }
    }
}

/// The writer connection. The chain head is read inside each write transaction (cheap: the
/// last row by primary key), so another process appending to the same file — `factory token
/// create` beside a running server — can never fork the chain.
pub(super) struct Writer {
    conn: SqliteConnection,
}

/// Sequence number and hash of the newest event.
#[derive(Debug, Clone)]
struct Head {
    seq: i64,
    hash: String,
}

impl Writer {
    pub(super) fn new(conn: SqliteConnection) -> Writer {
        Writer { conn }
    }

    pub(super) fn conn_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    async fn read_head(conn: &mut SqliteConnection) -> Result<Head, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(row) => Head {
                seq: row.try_get(0)?,
                hash: row.try_get(1)?,
            },
            None => Head {
                seq: 0,
                hash: GENESIS_HASH.to_string(),
            },
        })
    }
}

/// Work done inside a write transaction: reads what it needs, then returns a value and the
/// events to append. It may also write non-projection tables (auth) on the same connection.
pub type WriteFn<T> = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> BoxFuture<'c, Result<(T, Vec<NewEvent>), StoreError>>
        + Send,
>;

impl Store {
    /// Appends one event durably and returns it as committed.
    pub async fn append(&self, event: NewEvent) -> Result<Event, StoreError> {
        let mut events = self.append_batch(vec![event]).await?;
        Ok(events.remove(0))
    }

    /// Appends many events in one transaction: all or none.
    pub async fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let ((), committed) = self
            .write(Box::new(move |_conn| {
                Box::pin(async move { Ok(((), events)) })
            }))
            .await?;
        Ok(committed)
    }

    /// Runs `work` in a write transaction (`BEGIN IMMEDIATE`), appends the events it returns
    /// with their projection updates, commits (fsync), then publishes them to subscribers.
    /// On any error nothing of this write is stored.
    ///
    /// Group commit: writes that arrive while another commit is in progress queue up, and the
    /// next writer to take the connection runs them all (at most [`MAX_GROUP`]) in one
    /// transaction, each inside its own savepoint, so one fsync serves many callers. Every
    /// caller still returns only after the commit holding its write is durable, and a write that
    /// fails is rolled back to its savepoint without touching the others. A group holding
    /// others' writes runs in its own task, so a caller that goes away (a closed HTTP request)
    /// cannot abandon them; a write found alone is committed in place, with no savepoint.
    pub async fn write<T: Send + 'static>(
        &self,
        work: WriteFn<T>,
    ) -> Result<(T, Vec<Event>), StoreError> {
        let started = std::time::Instant::now();
        let (reply, mut answer) = oneshot::channel();
        let work: QueuedFn = Box::new(move |conn| {
            Box::pin(async move {
                let (value, events) = work(conn).await?;
                Ok((Box::new(value) as Box<dyn Any + Send>, events))
            })
        });
        self.pending_writes().push_back(Queued { work, reply });
        let writer = self.writer.clone().lock_owned().await;
        let outcome = match answer.try_recv() {
            // Already committed by an earlier group.
            Ok(outcome) => {
                drop(writer);
                outcome
            }
            Err(_) => {
                let alone = {
                    let mut queue = self.pending_writes();
                    if queue.len() == 1 {
                        queue.pop_front()
                    } else {
                        None
                    }
                };
                match alone {
                    // Only this write is waiting: commit it here, as without group commit.
                    Some(queued) => {
                        let mut writer = writer;
                        self.commit_group(&mut writer, vec![queued]).await;
                    }
                    // Others' writes too: commit everything queued in a task of its own.
                    None => {
                        let store = self.clone();
                        let _ =
                            tokio::spawn(async move { store.commit_queued(writer).await }).await;
                    }
                }
                answer.await.map_err(|_| StoreError::Abandoned)?
            }
        };
        let (value, events) = outcome?;
        if !events.is_empty() {
            crate::telemetry::metrics::METRICS
                .event_append_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        let value = value.downcast::<T>().map_err(|_| StoreError::Abandoned)?;
        Ok((*value, events))
    }

    fn pending_writes(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits queued writes, a group at a time, until none is left.
    async fn commit_queued(&self, mut writer: OwnedMutexGuard<Writer>) {
        loop {
            let group: Vec<Queued> = {
                let mut queue = self.pending_writes();
                let n = queue.len().min(MAX_GROUP);
                queue.drain(..n).collect()
            };
            if group.is_empty() {
                return;
            }
            self.commit_group(&mut writer, group).await;
        }
    }

    /// One transaction for a group of writes; answers every caller.
    async fn commit_group(&self, writer: &mut Writer, group: Vec<Queued>) {
        let (works, replies): (Vec<QueuedFn>, Vec<_>) =
            group.into_iter().map(|q| (q.work, q.reply)).unzip();
        let outcomes = match run_group(&mut writer.conn, works).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // Nothing of the group is stored: every caller learns why.
                let reason = err.to_string();
                let mut err = Some(err);
                for reply in replies {
                    let e = err
                        .take()
                        .unwrap_or_else(|| StoreError::GroupFailed(reason.clone()));
                    let _ = reply.send(Err(e));
                }
                return;
            }
        };
        // Published while still holding the writer, so subscribers see sequence order.
        let publish = self.committed.receiver_count() > 0;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let outcome = outcome.map(|(value, sealed)| {
                let events: Vec<Event> = sealed.into_iter().map(|s| s.event).collect();
                if let Some(last) = events.last() {
                    self.head
                        .fetch_max(last.seq, std::sync::atomic::Ordering::AcqRel);
                }
                if publish {
                    for event in &events {
                        let _ = self.committed.send(Arc::new(event.clone()));
                    }
                }
                (value, events)
            });
            let _ = reply.send(outcome);
        }
    }
}

/// Runs a group's writes in one transaction and commits it: one outcome per write, in order.
/// `Err` when the transaction itself failed and nothing was stored.
async fn run_group(
    conn: &mut SqliteConnection,
    works: Vec<QueuedFn>,
) -> Result<Vec<Result<WrittenSealed, StoreError>>, StoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut head = Writer::read_head(&mut tx).await?;
    // A write alone needs no savepoint: when it fails, the whole transaction is rolled back.
    let savepoints = works.len() > 1;
    let mut outcomes = Vec::with_capacity(works.len());
    for work in works {
        let outcome = write_one(&mut tx, &head, work, savepoints).await;
        if outcome.is_err() && !savepoints {
            tx.rollback().await?;
            return Ok(vec![outcome]);
        }
        if let Ok((_, sealed)) = &outcome
            && let Some(last) = sealed.last()
        {
            head = Head {
                seq: last.event.seq,
                hash: last.event.hash.clone(),
            };
        }
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Most writes committed together in one transaction.
pub const MAX_GROUP: usize = 256;

/// A write waiting for its group, with its result type erased.
pub(super) struct Queued {
    work: QueuedFn,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// A committed write: its work's value (type-erased) and its events as committed.
type Written = (Box<dyn Any + Send>, Vec<Event>);

/// A write done inside the group's transaction, before the commit.
type WrittenSealed = (Box<dyn Any + Send>, Vec<Sealed>);

type QueuedFn = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
        )
            -> BoxFuture<'c, Result<(Box<dyn Any + Send>, Vec<NewEvent>), StoreError>>
        + Send,
>;

/// One write of a group: its work, its events and their projection updates. With `savepoint`
/// it runs inside its own savepoint, rolled back on error so the group goes on.
async fn write_one(
    conn: &mut SqliteConnection,
    head: &Head,
    work: QueuedFn,
    savepoint: bool,
) -> Result<WrittenSealed, StoreError> {
    if !savepoint {
        return write_body(conn, head, work).await;
    }
    let mut savepoint = conn.begin().await?;
    let written = write_body(&mut savepoint, head, work).await?;
    savepoint.commit().await?;
    Ok(written)
}

async fn write_body(
    conn: &mut SqliteConnection,
    head: &Head,
    work: QueuedFn,
) -> Result<WrittenSealed, StoreError> {
    let (value, new_events) = work(conn).await?;
    let sealed = seal(head, new_events)?;
    for chunk in sealed.chunks(INSERT_CHUNK) {
        insert(conn, chunk).await?;
    }
    let applied: Vec<&Event> = sealed.iter().map(|s| &s.event).collect();
    projection::apply_all(conn, &applied).await?;
    Ok((value, sealed))
}

/// Rows per multi-row INSERT (8 columns each, well under SQLite's 32,766 bound parameters).
const INSERT_CHUNK: usize = 256;

/// A committed-to-be event with its stored encoding.
struct Sealed {
    event: Event,
    kind: &'static str,
    payload: String,
    prev_hash: String,
}

/// Assigns sequence numbers, the transaction's timestamp and the chained hashes.
fn seal(head: &Head, new_events: Vec<NewEvent>) -> Result<Vec<Sealed>, StoreError> {
    let ts = now_rfc3339();
    let (mut seq, mut prev_hash) = (head.seq, head.hash.clone());
    new_events
        .into_iter()
        .map(|new| {
            seq += 1;
            let (kind, payload) = encode(&new.data)?;
            let hash = event_hash(
                &prev_hash,
                seq,
                new.run_id.as_deref(),
                &ts,
                kind,
                &new.actor,
                &payload,
            );
            let sealed = Sealed {
                event: Event {
                    seq,
                    run_id: new.run_id,
                    ts: ts.clone(),
                    actor: new.actor,
                    data: new.data,
                    hash: hash.clone(),
                },
                kind,
                payload,
                prev_hash: std::mem::replace(&mut prev_hash, hash),
            };
            Ok(sealed)
        })
        .collect()
}

async fn insert(conn: &mut SqliteConnection, rows: &[Sealed]) -> Result<(), StoreError> {
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO events (seq, run_id, ts, kind, actor, payload, prev_hash, hash) ",
    );
    query.push_values(rows, |mut row, s| {
        row.push_bind(s.event.seq)
            .push_bind(&s.event.run_id)
            .push_bind(&s.event.ts)
            .push_bind(s.kind)
            .push_bind(&s.event.actor)
            .push_bind(&s.payload)
            .push_bind(&s.prev_hash)
            .push_bind(&s.event.hash);
    });
    query.build().execute(&mut *conn).await?;
    Ok(())
}

/// Now, as Factory stores times: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
