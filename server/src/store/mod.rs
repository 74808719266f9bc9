//! The event store: an append-only, hash-chained log in SQLite (WAL, fsync on commit) plus the
//! projections derived from it, updated in the same transaction as each append.

mod append;
pub mod approvals;
pub mod auth;
mod batch;
pub mod chain;
mod counts;
pub mod gym;
pub mod memory;
pub mod model_calls;
mod open;
mod projection;
pub mod projects;
pub mod runs;
mod seal;
mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::events::{Event, EventData};
use sqlx::SqlitePool;
use tokio::sync::{Mutex, broadcast};

pub use append::{Durable, NewEvent, Staged};
pub use chain::{ChainBreak, ChainReport};
pub use open::schema_version;
pub use seal::now_rfc3339;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "factory.db";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {path} is not usable: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error(
        "the database {path} was written by a newer Factory (schema version {found}, this build \
         knows up to {known}); upgrade Factory — nothing was changed"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored event #{seq} cannot be read: {reason}")]
    Corrupt { seq: i64, reason: String },
    #[error(
        "a row of the {table} projection cannot be read: {reason} (`factory audit rebuild` rebuilds it from the log)"
    )]
    BadRow { table: &'static str, reason: String },
    #[error("could not encode an event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("a write could not be sent to the database: {0}")]
    Gathered(String),
    #[error("the commit this write shared with others failed, so nothing of it was stored: {0}")]
    GroupFailed(String),
    #[error(
        "the write was abandoned before it committed (the server is stopping); nothing of it was stored"
    )]
    Abandoned,
}

impl StoreError {
    /// True when the problem is the data directory or database file itself (the CLI maps these
    /// to their own exit code).
    pub fn is_unusable_database(&self) -> bool {
        matches!(
            self,
            StoreError::DataDir { .. }
                | StoreError::Open { .. }
                | StoreError::SchemaTooNew { .. }
                | StoreError::Migrate(_)
        )
    }
}

/// Handle to the store; cheap to clone, shared by every part of the server.
#[derive(Clone)]
pub struct Store {
    /// Connections for reads (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The single writer connection: appends are serialised here, so the chain has one head.
    writer: Arc<Mutex<writer::Writer>>,
    /// Writes waiting for the next group commit.
    pending: Arc<std::sync::Mutex<std::collections::VecDeque<append::Queued>>>,
    /// Committed events, in sequence order, for the hub. Sending never blocks.
    committed: broadcast::Sender<Arc<Event>>,
    /// Highest committed sequence number, readable without a query (see [`Store::head`]).
    head: Arc<std::sync::atomic::AtomicI64>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) `factory.db` in `data_dir` and applies pending migrations.
    /// Refuses a database written by a newer schema without touching it.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_capacity(data_dir, 4096).await
    }

    /// Like [`Store::open`], with the number of committed events a slow subscriber may fall
    /// behind before it is told to resync.
    pub async fn open_with_capacity(data_dir: &Path, capacity: usize) -> Result<Store, StoreError> {
        let (pool, writer, path) = open::open(data_dir).await?;
        let (committed, _) = broadcast::channel(capacity.max(16));
        let store = Store {
            pool,
            writer: Arc::new(Mutex::new(writer)),
            pending: Arc::default(),
            committed,
            head: Arc::default(),
            path,
        };
        let head = store.last_seq().await?;
        store.head.store(head, std::sync::atomic::Ordering::Release);
        Ok(store)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The read pool, for the queries of this module and its children: every SQL statement
    /// lives in the store.
    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Receives every event committed from now on, in sequence order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.committed.subscribe()
    }

    /// Highest sequence number this process has seen committed (or found at open), without a
    /// query: everything up to it is durable and readable. A page rendered after reading it
    /// shows at least that much, so its live link resumes from here.
    pub fn head(&self) -> i64 {
        self.head.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Highest committed sequence number (0 for an empty log).
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Events after `after`, in order, at most `limit`.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = chain::page(&self.pool, after, i64::from(limit)).await?;
        rows.into_iter().map(chain::EventRow::into_event).collect()
    }

    /// Every event of one run, in order, at most `limit` after `after`.
    pub async fn run_events(
        &self,
        run_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<chain::EventRow> = sqlx::query_as(
            "SELECT seq, run_id, ts, kind, actor, payload, prev_hash, hash FROM events \
             WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(run_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(chain::EventRow::into_event).collect()
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (tests use it before reopening the same file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Splits an event into its stored `kind` and `payload` text, serialising it once: an event is
/// adjacently tagged, `{"kind":"<kind>","payload":<payload>}`, so the payload is that text
/// between the tag and the closing brace (`null` for a kind without one).
pub(crate) fn encode(data: &EventData) -> Result<(&'static str, String), StoreError> {
    let kind = data.kind();
    let whole = serde_json::to_string(data)?;
    let payload = whole
        .strip_prefix("{\"kind\":\"")
        .and_then(|rest| rest.strip_prefix(kind))
        .and_then(|rest| rest.strip_prefix("\","));
    let payload = match payload {
        Some(rest) => rest
            .strip_prefix("\"payload\":")
            .and_then(|p| p.strip_suffix('}'))
            .map(str::to_string),
        None if whole == format!("{{\"kind\":\"{kind}\"}}") => Some("null".to_string()),
        None => None,
    };
    payload.map(|p| (kind, p)).ok_or_else(|| {
        StoreError::Gathered(format!(
            "event `{kind}` did not serialise as kind and payload"
        ))
    })
}
