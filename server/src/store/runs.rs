//! Runs: the `runs` projection's row type, its queries, and idempotent creation.

use app::events::EventData;
use app::model::{RunStatus, RunSummary};

use super::{NewEvent, Store, StoreError};

/// One row of the `runs` projection.
#[derive(Debug, Clone, sqlx::FromRow)]
struct RunRow {
    id: String,
    request_id: Option<String>,
    goal: String,
    project: Option<String>,
    status: String,
    created_at: String,
}

impl RunRow {
    fn into_summary(self) -> Result<RunSummary, StoreError> {
        let status = RunStatus::parse(&self.status).ok_or_else(|| StoreError::BadRow {
            table: "runs",
            reason: format!("run {} has unknown status {:?}", self.id, self.status),
        })?;
        let created_ms = app::time::parse_rfc3339_ms(&self.created_at).unwrap_or(0);
        Ok(RunSummary {
            id: self.id,
            request_id: self.request_id,
            goal: self.goal,
            project: self.project,
            status,
            created_at: self.created_at,
            created_ms,
        })
    }
}

const RUN_COLUMNS: &str = "id, request_id, goal, project, status, created_at";

/// The newest `limit` runs, newest first.
async fn newest<'e, E>(exec: E, limit: u32) -> Result<Vec<RunSummary>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_seq DESC LIMIT ?"
    ))
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(RunRow::into_summary).collect()
}

/// What the caller asked for when starting a run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub goal: String,
    pub project: Option<String>,
    pub request_id: Option<String>,
}

impl Store {
    /// Newest runs first, at most `limit`.
    pub async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, StoreError> {
        newest(self.pool(), limit).await
    }

    /// The newest runs and the sequence number they are consistent with, read in one
    /// transaction (the WebSocket snapshot).
    pub async fn snapshot(&self, limit: u32) -> Result<(i64, Vec<RunSummary>), StoreError> {
        let mut tx = self.pool().begin().await?;
        let last_seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let runs = newest(&mut *tx, limit).await?;
        tx.rollback().await?;
        Ok((last_seq.unwrap_or(0), runs))
    }

    /// One run by id.
    pub async fn get_run(&self, id: &str) -> Result<Option<RunSummary>, StoreError> {
        let row: Option<RunRow> =
            sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(RunRow::into_summary).transpose()
    }

    /// Creates a queued run, or returns the existing one when `request_id` was seen before.
    /// The check and the append share one transaction, so concurrent retries of the same
    /// request can never create two runs. Returns the run id and whether it is new.
    pub async fn create_run(&self, run: NewRun, actor: &str) -> Result<(String, bool), StoreError> {
        let actor = actor.to_string();
        let (outcome, _) = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    if let Some(key) = &run.request_id {
                        let existing: Option<String> =
                            sqlx::query_scalar("SELECT id FROM runs WHERE request_id = ?")
                                .bind(key)
                                .fetch_optional(&mut *conn)
                                .await?;
                        if let Some(id) = existing {
                            return Ok(((id, false), vec![]));
                        }
                    }
                    let run_id = uuid::Uuid::now_v7().to_string();
                    let event = NewEvent::new(
                        actor,
                        EventData::RunCreated {
                            run_id: run_id.clone(),
                            request_id: run.request_id,
                            goal: run.goal,
                            project: run.project,
                        },
                    );
                    Ok(((run_id, true), vec![event]))
                })
            }))
            .await?;
        Ok(outcome)
    }
}
