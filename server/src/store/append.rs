//! Appending: one writer connection, one transaction per append (or batch) holding both the
//! new events and the projection updates they cause, fsync'd before `Ok` is returned.

use std::sync::Arc;

use app::events::{Event, EventData};
use futures::future::BoxFuture;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};

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

    /// Runs `work` in one write transaction (`BEGIN IMMEDIATE`), appends the events it returns
    /// with their projection updates, commits (fsync), then publishes them to subscribers.
    /// On any error nothing is written.
    pub async fn write<T: Send + 'static>(
        &self,
        work: WriteFn<T>,
    ) -> Result<(T, Vec<Event>), StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.conn.begin_with("BEGIN IMMEDIATE").await?;
        let (value, new_events) = work(&mut tx).await?;
        let head = Writer::read_head(&mut tx).await?;
        let committed = seal(&head, new_events)?;
        for chunk in committed.chunks(INSERT_CHUNK) {
            insert(&mut tx, chunk).await?;
        }
        let applied: Vec<&Event> = committed.iter().map(|s| &s.event).collect();
        projection::apply_all(&mut tx, &applied).await?;
        tx.commit().await?;
        // Published while still holding the writer, so subscribers see sequence order.
        let committed: Vec<Event> = committed.into_iter().map(|s| s.event).collect();
        if self.committed.receiver_count() > 0 {
            for event in &committed {
                let _ = self.committed.send(Arc::new(event.clone()));
            }
        }
        Ok((value, committed))
    }
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
