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
pub(crate) const PROJECTION_TABLES: &[&str] = &[
    "supervisor_runs",
    "model_calls",
    "routing_decisions",
    "memory_items",
];

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
            pipeline,
        } => {
            sqlx::query(
                "INSERT INTO supervisor_runs (id, request_id, goal, project, pipeline, status, \
                 created_at, created_seq, updated_at, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(request_id)
            .bind(goal)
            .bind(project)
            .bind(pipeline.as_deref().unwrap_or("default"))
            .bind(RunStatus::Queued.as_str())
            .bind(&event.ts)
            .bind(event.seq)
            .bind(&event.ts)
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ModelCallStarted {
            call_id,
            attribution,
            target,
            reserved_usd,
        } => {
            // A call issued again after a restart keeps its id: the row is reset, not added.
            sqlx::query(
                "INSERT INTO model_calls (call_id, run_id, project, team, objective_id, \
                 work_order_id, target, status, reserved_usd, started_at, day, month, last_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET status = 'running', \
                 reserved_usd = excluded.reserved_usd, last_seq = excluded.last_seq",
            )
            .bind(call_id)
            .bind(&attribution.run_id)
            .bind(&attribution.project)
            .bind(&attribution.team)
            .bind(&attribution.objective_id)
            .bind(&attribution.work_order_id)
            .bind(target)
            .bind(reserved_usd)
            .bind(&event.ts)
            .bind(day(&event.ts))
            .bind(month(&event.ts))
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ModelCallFinished {
            call_id,
            attribution,
            target,
            provider,
            model,
            input_tokens,
            output_tokens,
            cost_usd,
            latency_ms,
            path,
        } => {
            let path = serde_json::to_string(path)?;
            sqlx::query(
                "INSERT INTO model_calls (call_id, run_id, project, team, objective_id, \
                 work_order_id, target, provider, model, status, input_tokens, output_tokens, \
                 cost_usd, latency_ms, path, started_at, finished_at, day, month, last_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET provider = excluded.provider, \
                 model = excluded.model, status = 'ok', input_tokens = excluded.input_tokens, \
                 output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, \
                 reserved_usd = 0, latency_ms = excluded.latency_ms, path = excluded.path, \
                 error = NULL, finished_at = excluded.finished_at, last_seq = excluded.last_seq",
            )
            .bind(call_id)
            .bind(&attribution.run_id)
            .bind(&attribution.project)
            .bind(&attribution.team)
            .bind(&attribution.objective_id)
            .bind(&attribution.work_order_id)
            .bind(target)
            .bind(provider)
            .bind(model)
            .bind(i64::from(*input_tokens))
            .bind(i64::from(*output_tokens))
            .bind(cost_usd)
            .bind(i64::try_from(*latency_ms).unwrap_or(i64::MAX))
            .bind(&path)
            .bind(&event.ts)
            .bind(&event.ts)
            .bind(day(&event.ts))
            .bind(month(&event.ts))
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ModelCallFailed {
            call_id,
            attribution,
            target,
            error,
            path,
        } => {
            let path = serde_json::to_string(path)?;
            sqlx::query(
                "INSERT INTO model_calls (call_id, run_id, project, team, objective_id, \
                 work_order_id, target, status, path, error, started_at, finished_at, day, \
                 month, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET status = 'failed', input_tokens = 0, \
                 output_tokens = 0, cost_usd = 0, reserved_usd = 0, path = excluded.path, \
                 error = excluded.error, finished_at = excluded.finished_at, \
                 last_seq = excluded.last_seq",
            )
            .bind(call_id)
            .bind(&attribution.run_id)
            .bind(&attribution.project)
            .bind(&attribution.team)
            .bind(&attribution.objective_id)
            .bind(&attribution.work_order_id)
            .bind(target)
            .bind(&path)
            .bind(error)
            .bind(&event.ts)
            .bind(&event.ts)
            .bind(day(&event.ts))
            .bind(month(&event.ts))
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
        }
        EventData::RoutingDecided {
            attribution,
            decision,
        } => {
            sqlx::query(
                "INSERT INTO routing_decisions (seq, run_id, work_order_id, alias, complexity, \
                 reason, decision, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(event.seq)
            .bind(&attribution.run_id)
            .bind(&attribution.work_order_id)
            .bind(&decision.alias)
            .bind(decision.complexity)
            .bind(&decision.reason)
            .bind(serde_json::to_string(decision)?)
            .bind(&event.ts)
            .execute(&mut *conn)
            .await?;
        }
        EventData::RunStarted {
            run_id,
            pipeline,
            stages,
        } => {
            let steps: Vec<serde_json::Value> = stages
                .iter()
                .map(|s| {
                    serde_json::json!({"name": s.name, "team": s.team, "status": "pending",
                                       "attempts": 0, "cost_usd": 0.0})
                })
                .collect();
            sqlx::query(
                "UPDATE supervisor_runs SET status = ?, pipeline = ?, steps = ?, updated_at = ?, \
                 last_seq = ? WHERE id = ?",
            )
            .bind(RunStatus::Running.as_str())
            .bind(pipeline)
            .bind(serde_json::to_string(&steps)?)
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id)
            .execute(&mut *conn)
            .await?;
        }
        EventData::StageStarted {
            run_id,
            index,
            stage,
            ..
        } => {
            update_steps(conn, event, run_id, Some(stage), |steps, _| {
                if let Some(step) = steps.get_mut(*index as usize) {
                    step["status"] = "running".into();
                    step["started_at"] = event.ts.clone().into();
                }
            })
            .await?;
        }
        EventData::StageAttemptFailed {
            run_id,
            index,
            error,
            ..
        } => {
            update_steps(conn, event, run_id, None, |steps, _| {
                if let Some(step) = steps.get_mut(*index as usize) {
                    let attempts = step["attempts"].as_u64().unwrap_or(0) + 1;
                    step["attempts"] = attempts.into();
                    step["error"] = error.clone().into();
                }
            })
            .await?;
        }
        EventData::StageCompleted {
            run_id,
            index,
            stage,
            team,
            status,
            result,
            artifact_dir,
            cost_usd,
        } => {
            update_steps(conn, event, run_id, None, |steps, artifacts| {
                if let Some(step) = steps.get_mut(*index as usize) {
                    let attempts = step["attempts"].as_u64().unwrap_or(0) + 1;
                    step["attempts"] = attempts.into();
                    step["status"] = status.as_str().to_lowercase().into();
                    step["finished_at"] = event.ts.clone().into();
                    step["cost_usd"] = (*cost_usd).into();
                    step["reasoning"] = result.reasoning.clone().into();
                }
                for a in &result.artifacts {
                    artifacts.push(serde_json::json!({
                        "stage": stage, "team": team, "name": a.name,
                        "path": format!("{artifact_dir}/{}", a.name), "bytes": a.content.len()
                    }));
                }
            })
            .await?;
        }
        EventData::RunFinished {
            run_id,
            status,
            reason,
        } => {
            sqlx::query(
                "UPDATE supervisor_runs SET status = ?, reason = ?, current_stage = NULL, \
                 updated_at = ?, last_seq = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id)
            .execute(&mut *conn)
            .await?;
        }
        EventData::MemoryRetained {
            item_id,
            bank,
            project,
            run_id,
            kind,
            text,
        } => {
            sqlx::query(
                "INSERT INTO memory_items (item_id, bank, project, run_id, kind, text, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO NOTHING",
            )
            .bind(item_id)
            .bind(bank)
            .bind(project)
            .bind(run_id)
            .bind(kind)
            .bind(text)
            .bind(&event.ts)
            .execute(&mut *conn)
            .await?;
        }
        EventData::AdminTokenCreated { .. }
        | EventData::SessionStarted { .. }
        | EventData::BudgetReached { .. } => {}
    }
    Ok(())
}

/// Read-modify-write of a run's `steps` and `artifacts` JSON; `stage` sets `current_stage`.
async fn update_steps(
    conn: &mut SqliteConnection,
    event: &Event,
    run_id: &str,
    stage: Option<&String>,
    change: impl FnOnce(&mut Vec<serde_json::Value>, &mut Vec<serde_json::Value>),
) -> Result<(), StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT steps, artifacts FROM supervisor_runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((steps, artifacts)) = row else {
        return Ok(());
    };
    let mut steps: Vec<serde_json::Value> = serde_json::from_str(&steps)?;
    let mut artifacts: Vec<serde_json::Value> = serde_json::from_str(&artifacts)?;
    change(&mut steps, &mut artifacts);
    sqlx::query(
        "UPDATE supervisor_runs SET steps = ?, artifacts = ?, \
         current_stage = COALESCE(?, current_stage), updated_at = ?, last_seq = ? WHERE id = ?",
    )
    .bind(serde_json::to_string(&steps)?)
    .bind(serde_json::to_string(&artifacts)?)
    .bind(stage)
    .bind(&event.ts)
    .bind(event.seq)
    .bind(run_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `2026-11-22` from an RFC 3339 time.
pub(crate) fn day(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

/// `2026-11` from an RFC 3339 time.
pub(crate) fn month(ts: &str) -> &str {
    ts.get(..7).unwrap_or(ts)
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
