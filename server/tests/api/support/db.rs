//! The event log underneath the API: a connection pool of the test's own on a store's file, for
//! raw SQL that inspects or tampers with what the store wrote, and filler events.

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::{EventData, NewEvent};

/// A pool on the existing database file at `path` (`store.path()`), with the store's settings:
/// WAL, so it reads what the store committed and the store reads what it writes; a busy
/// timeout, so a write waits for the store's writer instead of failing.
pub async fn sqlite(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePool::connect_with(options).await.unwrap()
}

/// The payloads of the events of `kind` in the log of the data directory `data`, in order.
pub async fn payloads(data: &Path, kind: &str) -> Vec<serde_json::Value> {
    let pool = sqlite(&data.join("factory.db")).await;
    sqlx::query_scalar::<_, String>("SELECT payload FROM events WHERE kind = ? ORDER BY seq")
        .bind(kind)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

/// `n` small events (admin tokens `{tag}0`, `{tag}1`, … created) to fill the log.
pub fn tokens(n: usize, tag: &str) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            NewEvent::new(
                "test",
                EventData::AdminTokenCreated {
                    token_id: format!("{tag}{i}"),
                    label: tag.into(),
                },
            )
        })
        .collect()
}
