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
pub(crate) const PROJECTION_TABLES: &[&str] = &["runs", "model_calls", "routing_decisions"];

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
        EventData::AdminTokenCreated { .. }
        | EventData::SessionStarted { .. }
        | EventData::BudgetReached { .. } => {}
    }
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
