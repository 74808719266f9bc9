//! Projections: tables derived from the log. `apply` folds one event into them inside the
//! append transaction; `rebuild` empties them and replays the whole log through `apply`, so the
//! two can never disagree about what an event means.

use app::events::{Event, EventData};
use app::model::RunStatus;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use super::chain;
use super::{Store, StoreError};

/// Every projection table, emptied by a rebuild. Auth tables are not projections.
pub(crate) const PROJECTION_TABLES: &[&str] = &["runs"];

/// Rows replayed per query during a rebuild.
const REPLAY_PAGE: i64 = 4096;

/// Applies one committed event to the projections it touches.
pub(super) async fn apply(conn: &mut SqliteConnection, event: &Event) -> Result<(), StoreError> {
    match &event.data {
        EventData::RunCreated {
            run_id,
            request_id,
            goal,
            project,
        } => {
            sqlx::query(
                "INSERT INTO runs (id, request_id, goal, project, status, created_at, \
                 created_seq, updated_at, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(request_id)
            .bind(goal)
            .bind(project)
            .bind(RunStatus::Queued.as_str())
            .bind(&event.ts)
            .bind(event.seq)
            .bind(&event.ts)
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
        }
        EventData::AdminTokenCreated { .. } | EventData::SessionStarted { .. } => {}
    }
    Ok(())
}

impl Store {
    /// Drops every projection and rebuilds it by replaying the log, in one transaction (readers
    /// see the old projections until it commits). Returns the number of events replayed.
    pub async fn rebuild_projections(&self) -> Result<u64, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.conn_mut().begin_with("BEGIN IMMEDIATE").await?;
        for table in PROJECTION_TABLES {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        let mut after = 0i64;
        let mut replayed = 0u64;
        loop {
            let rows = chain::page(&mut *tx, after, REPLAY_PAGE).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                after = row.seq;
                apply(&mut tx, &row.into_event()?).await?;
                replayed += 1;
            }
        }
        tx.commit().await?;
        Ok(replayed)
    }
}
