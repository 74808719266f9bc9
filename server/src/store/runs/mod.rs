//! Runs: the `supervisor_runs` projection's row type, its queries, and idempotent creation.

use app::dto::{
    ArtifactRef, RunDetail, RunStatus, RunSummary, StepStatus, WorkOrderState, WorkOrderStatus,
};
use app::events::EventData;

use super::{NewEvent, Store, StoreError};

mod projection;

pub(super) use projection::{PlanRow, Plans, apply};

/// One row of the `supervisor_runs` projection.
#[derive(Debug, Clone, sqlx::FromRow)]
struct RunRow {
    id: String,
    request_id: Option<String>,
    goal: String,
    project: Option<String>,
    status: String,
    created_at: String,
    current_stage: Option<String>,
    cost_usd: f64,
}

impl RunRow {
    fn into_summary(self) -> Result<RunSummary, StoreError> {
        let status = RunStatus::parse(&self.status).ok_or_else(|| StoreError::BadRow {
            table: "supervisor_runs",
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
            current_stage: self.current_stage,
            cost_usd: self.cost_usd,
        })
    }
}

/// A run row with its plan and progress.
#[derive(Debug, Clone, sqlx::FromRow)]
struct DetailRow {
    #[sqlx(flatten)]
    run: RunRow,
    pipeline: Option<String>,
    reason: Option<String>,
    steps: String,
    artifacts: String,
}

const RUN_COLUMNS: &str = "id, request_id, goal, project, status, created_at, current_stage, \
     (SELECT COALESCE(SUM(cost_usd), 0.0) FROM model_calls m \
      WHERE m.run_id = supervisor_runs.id AND m.status = 'ok') AS cost_usd";

/// The newest `limit` runs, newest first.
async fn newest<'e, E>(exec: E, limit: u32) -> Result<Vec<RunSummary>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM supervisor_runs ORDER BY created_seq DESC LIMIT ?"
    ))
    .bind(i64::from(limit))
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(RunRow::into_summary).collect()
}

/// A run's status, read inside a write (`None`: no such run, or a status this build does not
/// know).
pub async fn status(
    conn: &mut sqlx::SqliteConnection,
    run_id: &str,
) -> Result<Option<RunStatus>, StoreError> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM supervisor_runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(conn)
            .await?;
    Ok(status.as_deref().and_then(RunStatus::parse))
}

/// True when the run exists and has not finished (read inside a write, so the events that
/// follow are committed only while it holds).
pub async fn is_active(
    conn: &mut sqlx::SqliteConnection,
    run_id: &str,
) -> Result<bool, StoreError> {
    Ok(status(conn, run_id)
        .await?
        .is_some_and(|s| !s.is_terminal()))
}

/// What the caller asked for when starting a run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub goal: String,
    pub project: Option<String>,
    pub request_id: Option<String>,
    pub pipeline: Option<String>,
}

impl Store {
    /// Runs that have not finished (queued, running, waiting for a person), oldest first.
    pub async fn unfinished_runs(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM supervisor_runs WHERE status IN ('queued', 'running', \
             'waiting_for_human') ORDER BY created_seq",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Running runs whose newest event is a decided approval: a decision another process
    /// recorded that no driver has picked up yet.
    pub async fn runs_with_undriven_decisions(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT r.id FROM supervisor_runs r WHERE r.status = 'running' AND \
             (SELECT kind FROM events WHERE run_id = r.id ORDER BY seq DESC LIMIT 1) \
             = 'approval_decided'",
        )
        .fetch_all(self.pool())
        .await?)
    }

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
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM supervisor_runs WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(RunRow::into_summary).transpose()
    }

    /// One run with its steps, artifacts and cost so far.
    pub async fn get_run_detail(&self, id: &str) -> Result<Option<RunDetail>, StoreError> {
        let row: Option<DetailRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS}, pipeline, reason, steps, artifacts \
                 FROM supervisor_runs WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(DetailRow {
            run,
            pipeline,
            reason,
            steps,
            artifacts,
        }) = row
        else {
            return Ok(None);
        };
        let bad = |what: &str, e: serde_json::Error| StoreError::BadRow {
            table: "supervisor_runs",
            reason: format!("run {id}: {what} is not valid JSON: {e}"),
        };
        let steps: Vec<StepStatus> = serde_json::from_str(&steps).map_err(|e| bad("steps", e))?;
        let artifacts: Vec<ArtifactRef> =
            serde_json::from_str(&artifacts).map_err(|e| bad("artifacts", e))?;
        let cost: f64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cost_usd), 0.0) FROM model_calls WHERE run_id = ? AND status = 'ok'",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        type WoRow = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            f64,
            bool,
            Option<String>,
        );
        let rows: Vec<WoRow> = sqlx::query_as(
            "SELECT work_order_id, title, status, spec, branch, commit_id, files, gates, model, \
             cost_usd, pushed, pull_request FROM work_orders WHERE run_id = ? ORDER BY work_order_id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let work_orders = rows
            .into_iter()
            .map(|r| {
                let status = WorkOrderState::parse(&r.2).ok_or_else(|| StoreError::BadRow {
                    table: "work_orders",
                    reason: format!("work order {} has unknown status {:?}", r.1, r.2),
                })?;
                Ok(WorkOrderStatus {
                    id: r.0,
                    title: r.1,
                    status,
                    spec: serde_json::from_str(&r.3).ok(),
                    branch: r.4,
                    commit: r.5,
                    files: serde_json::from_str(&r.6).unwrap_or_default(),
                    gates: serde_json::from_str(&r.7).unwrap_or_default(),
                    model: r.8,
                    cost_usd: r.9,
                    pushed: r.10,
                    pull_request: r.11,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let summary = run.into_summary()?;
        Ok(Some(RunDetail {
            current_stage: summary.current_stage.clone(),
            summary,
            pipeline,
            reason,
            steps,
            artifacts,
            cost_usd: cost,
            work_orders,
        }))
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
                        let existing: Option<String> = sqlx::query_scalar(
                            "SELECT id FROM supervisor_runs WHERE request_id = ?",
                        )
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
                            pipeline: run.pipeline,
                        },
                    );
                    Ok(((run_id, true), vec![event]))
                })
            }))
            .await?;
        Ok(outcome)
    }
}
