//! Projections: tables derived from the log. `apply` folds one event into them inside the
//! append transaction; `rebuild` empties them and replays the whole log through `apply`, so the
//! two can never disagree about what an event means.

use app::events::{Event, EventData};
use app::model::RunStatus;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use super::chain;
use super::{Store, StoreError};

/// Every projection table, emptied by a rebuild. Auth tables are not emptied (token hashes are
/// never in the log); the replay rewrites their event-derived columns (see `store::auth`).
pub(crate) const PROJECTION_TABLES: &[&str] = &[
    "supervisor_runs",
    "model_calls",
    "routing_decisions",
    "memory_items",
    "approvals",
    "clarifications",
    "escalations",
    "budget_raises",
    "projects",
    "work_orders",
];

/// Rows replayed per query during a rebuild.
const REPLAY_PAGE: i64 = 4096;

/// Applies committed events, in order, to the projections they touch. Changes to a run's plan
/// and to memory are gathered and written once per batch (a stage's commit touches the same run
/// several times); a `model_call_started` followed in the same batch by its outcome is folded
/// into the outcome's row.
pub(super) async fn apply_all(
    conn: &mut SqliteConnection,
    events: &[&Event],
) -> Result<(), StoreError> {
    let ended: std::collections::HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::ModelCallFinished { call_id, .. }
            | EventData::ModelCallFailed { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut pending = Pending::default();
    for event in events {
        if let EventData::ModelCallStarted { call_id, .. } = &event.data
            && ended.contains(call_id.as_str())
        {
            continue;
        }
        apply(conn, event, &mut pending).await?;
    }
    pending.flush(conn).await
}

/// A run's plan and artifacts as JSON, changed in memory during a batch.
struct RunJson {
    id: String,
    steps: Vec<serde_json::Value>,
    artifacts: Vec<serde_json::Value>,
    /// `Some(x)`: set `current_stage` to `x`.
    current_stage: Option<Option<String>>,
    ts: String,
    seq: i64,
}

/// Projection changes gathered over a batch.
#[derive(Default)]
struct Pending {
    runs: Vec<RunJson>,
    memory: Vec<Event>,
}

impl Pending {
    /// The run's plan, read once per batch. `None` when the run does not exist.
    async fn run(
        &mut self,
        conn: &mut SqliteConnection,
        id: &str,
        event: &Event,
    ) -> Result<Option<&mut RunJson>, StoreError> {
        let i = match self.runs.iter().position(|r| r.id == id) {
            Some(i) => i,
            None => {
                let row: Option<(String, String)> =
                    sqlx::query_as("SELECT steps, artifacts FROM supervisor_runs WHERE id = ?")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some((steps, artifacts)) = row else {
                    return Ok(None);
                };
                self.runs.push(RunJson {
                    id: id.to_string(),
                    steps: serde_json::from_str(&steps)?,
                    artifacts: serde_json::from_str(&artifacts)?,
                    current_stage: None,
                    ts: event.ts.clone(),
                    seq: event.seq,
                });
                self.runs.len() - 1
            }
        };
        let run = &mut self.runs[i];
        run.ts = event.ts.clone();
        run.seq = event.seq;
        Ok(Some(run))
    }

    /// Writes one run's gathered changes (before a statement that writes the row directly).
    async fn flush_run(&mut self, conn: &mut SqliteConnection, id: &str) -> Result<(), StoreError> {
        if let Some(i) = self.runs.iter().position(|r| r.id == id) {
            let run = self.runs.remove(i);
            write_run(conn, &run).await?;
        }
        Ok(())
    }

    async fn flush(self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        for run in &self.runs {
            write_run(conn, run).await?;
        }
        for chunk in self.memory.chunks(128) {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO memory_items (item_id, bank, project, run_id, kind, text, created_at) ",
            );
            query.push_values(chunk, |mut row, event| {
                if let EventData::MemoryRetained {
                    item_id,
                    bank,
                    project,
                    run_id,
                    kind,
                    text,
                } = &event.data
                {
                    row.push_bind(item_id)
                        .push_bind(bank)
                        .push_bind(project)
                        .push_bind(run_id)
                        .push_bind(kind)
                        .push_bind(text)
                        .push_bind(&event.ts);
                }
            });
            query.push(" ON CONFLICT (item_id) DO NOTHING");
            query.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}

async fn write_run(conn: &mut SqliteConnection, run: &RunJson) -> Result<(), StoreError> {
    let (set_stage, stage) = match &run.current_stage {
        Some(stage) => (true, stage.clone()),
        None => (false, None),
    };
    sqlx::query(
        "UPDATE supervisor_runs SET steps = ?, artifacts = ?, \
         current_stage = CASE WHEN ? THEN ? ELSE current_stage END, \
         updated_at = ?, last_seq = MAX(last_seq, ?) WHERE id = ?",
    )
    .bind(serde_json::to_string(&run.steps)?)
    .bind(serde_json::to_string(&run.artifacts)?)
    .bind(set_stage)
    .bind(stage)
    .bind(&run.ts)
    .bind(run.seq)
    .bind(&run.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies one event; plan and memory changes go to `pending`.
async fn apply(
    conn: &mut SqliteConnection,
    event: &Event,
    pending: &mut Pending,
) -> Result<(), StoreError> {
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
            ..
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
            ..
        } => {
            pending.flush_run(conn, run_id).await?;
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
            if let Some(run) = pending.run(conn, run_id, event).await? {
                if let Some(step) = run.steps.get_mut(*index as usize) {
                    step["status"] = "running".into();
                    step["started_at"] = event.ts.clone().into();
                }
                run.current_stage = Some(Some(stage.clone()));
            }
        }
        EventData::StageAttemptFailed {
            run_id,
            index,
            error,
            ..
        } => {
            if let Some(run) = pending.run(conn, run_id, event).await?
                && let Some(step) = run.steps.get_mut(*index as usize)
            {
                let attempts = step["attempts"].as_u64().unwrap_or(0) + 1;
                step["attempts"] = attempts.into();
                step["error"] = error.clone().into();
            }
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
            if !result.work_orders.is_empty() {
                sqlx::query("DELETE FROM work_orders WHERE run_id = ? AND status = 'planned'")
                    .bind(run_id)
                    .execute(&mut *conn)
                    .await?;
                for wo in &result.work_orders {
                    sqlx::query(
                        "INSERT INTO work_orders (run_id, work_order_id, title, spec, status, \
                         updated_at) VALUES (?, ?, ?, ?, 'planned', ?) \
                         ON CONFLICT (run_id, work_order_id) DO NOTHING",
                    )
                    .bind(run_id)
                    .bind(&wo.id)
                    .bind(&wo.title)
                    .bind(serde_json::to_string(wo)?)
                    .bind(&event.ts)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            if let Some(run) = pending.run(conn, run_id, event).await? {
                if let Some(step) = run.steps.get_mut(*index as usize) {
                    let attempts = step["attempts"].as_u64().unwrap_or(0) + 1;
                    step["attempts"] = attempts.into();
                    step["status"] = status.as_str().to_lowercase().into();
                    step["finished_at"] = event.ts.clone().into();
                    step["cost_usd"] = (*cost_usd).into();
                    step["reasoning"] = result.reasoning.clone().into();
                }
                for a in &result.artifacts {
                    run.artifacts.push(serde_json::json!({
                        "stage": stage, "team": team, "name": a.name,
                        "path": format!("{artifact_dir}/{}", a.name), "bytes": a.content.len()
                    }));
                }
            }
        }
        EventData::RunFinished {
            run_id,
            status,
            reason,
        } => {
            if let Some(run) = pending.runs.iter_mut().find(|r| &r.id == run_id) {
                run.current_stage = Some(None);
            }
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
        EventData::MemoryRetained { .. } => pending.memory.push(event.clone()),
        EventData::WorkOrderDelivered {
            run_id,
            work_order_id,
            title,
            branch,
            commit,
            files,
            gates,
            model,
            cost_usd,
            pushed,
            pull_request,
            published_by_policy,
        } => {
            sqlx::query(
                "INSERT INTO work_orders (run_id, work_order_id, title, status, branch, commit_id, \
                 files, gates, model, cost_usd, pushed, pull_request, updated_at, \
                 published_policy) \
                 VALUES (?, ?, ?, 'delivered', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (run_id, work_order_id) DO UPDATE SET status = 'delivered', \
                 branch = excluded.branch, commit_id = excluded.commit_id, files = excluded.files, \
                 gates = excluded.gates, model = excluded.model, cost_usd = excluded.cost_usd, \
                 pushed = excluded.pushed, pull_request = excluded.pull_request, \
                 updated_at = excluded.updated_at, published_policy = excluded.published_policy",
            )
            .bind(run_id)
            .bind(work_order_id)
            .bind(title)
            .bind(branch)
            .bind(commit)
            .bind(serde_json::to_string(files)?)
            .bind(serde_json::to_string(gates)?)
            .bind(model)
            .bind(cost_usd)
            .bind(pushed)
            .bind(pull_request)
            .bind(&event.ts)
            .bind(published_by_policy)
            .execute(&mut *conn)
            .await?;
        }
        EventData::WorkOrderPublished {
            run_id,
            work_order_id,
            pushed,
            pull_request,
            policy,
            error,
            ..
        } => {
            if error.is_none() {
                sqlx::query(
                    "UPDATE work_orders SET pushed = ?, pull_request = ?, published_policy = ?, \
                     updated_at = ? WHERE run_id = ? AND work_order_id = ?",
                )
                .bind(pushed)
                .bind(pull_request)
                .bind(policy)
                .bind(&event.ts)
                .bind(run_id)
                .bind(work_order_id)
                .execute(&mut *conn)
                .await?;
            }
        }
        EventData::ProjectAdded { project } => {
            sqlx::query(
                "INSERT INTO projects (name, path, remote, github, gates, require_clean, active, \
                 created_at, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&project.name)
            .bind(&project.path)
            .bind(&project.remote)
            .bind(&project.github)
            .bind(serde_json::to_string(&project.gates)?)
            .bind(project.require_clean)
            .bind(project.active)
            .bind(&project.created_at)
            .bind(serde_json::to_string(&project.policy)?)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ApprovalRequested {
            approval_id,
            run_id,
            index,
            kind,
            question,
            context,
            options,
            deadline,
            escalation,
            detail,
        } => {
            sqlx::query(
                "INSERT INTO approvals (id, run_id, stage_index, kind, question, context, options, \
                 detail, created_at, deadline, status, created_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            )
            .bind(approval_id)
            .bind(run_id)
            .bind(i64::from(*index))
            .bind(kind.as_str())
            .bind(question)
            .bind(context)
            .bind(serde_json::to_string(options)?)
            .bind(serde_json::to_string(detail)?)
            .bind(&event.ts)
            .bind(deadline)
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE supervisor_runs SET status = 'waiting_for_human', updated_at = ?, \
                 last_seq = ? WHERE id = ? AND status IN ('queued', 'running')",
            )
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id)
            .execute(&mut *conn)
            .await?;
            if let Some(e) = escalation {
                let options: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
                sqlx::query(
                    "INSERT INTO escalations (id, run_id, severity, error_type, message, \
                     resolution_options, status, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                )
                .bind(approval_id)
                .bind(run_id)
                .bind(serde_json::to_value(e.severity)?.as_str().unwrap_or("high"))
                .bind(
                    serde_json::to_value(e.error_type)?
                        .as_str()
                        .unwrap_or("execution"),
                )
                .bind(&e.message)
                .bind(serde_json::to_string(&options)?)
                .bind(&event.ts)
                .bind(&event.ts)
                .execute(&mut *conn)
                .await?;
            }
        }
        EventData::ApprovalDecided {
            approval_id,
            run_id,
            option,
            text,
            decided_by,
            automatic,
            policy,
            ..
        } => {
            sqlx::query(
                "UPDATE approvals SET status = 'decided', decided_by = ?, option = ?, text = ?, \
                 automatic = ?, policy = ?, decided_at = ? WHERE id = ?",
            )
            .bind(decided_by)
            .bind(option)
            .bind(text)
            .bind(automatic)
            .bind(policy)
            .bind(&event.ts)
            .bind(approval_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE supervisor_runs SET status = 'running', updated_at = ?, last_seq = ? \
                 WHERE id = ? AND status = 'waiting_for_human' AND NOT EXISTS \
                 (SELECT 1 FROM approvals WHERE run_id = ? AND status = 'pending')",
            )
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id)
            .bind(run_id)
            .execute(&mut *conn)
            .await?;
            let status = if option == "skip" {
                "ignored"
            } else {
                "resolved"
            };
            sqlx::query("UPDATE escalations SET status = ?, updated_at = ? WHERE id = ?")
                .bind(status)
                .bind(&event.ts)
                .bind(approval_id)
                .execute(&mut *conn)
                .await?;
        }
        EventData::ClarificationRequested {
            clarification_id,
            run_id,
            index,
            asking_team,
            target_team,
            question,
            depth,
            parent,
        } => {
            sqlx::query(
                "INSERT INTO clarifications (id, run_id, stage_index, asking_team, target_team, \
                 question, depth, parent, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(clarification_id)
            .bind(run_id)
            .bind(i64::from(*index))
            .bind(asking_team)
            .bind(target_team)
            .bind(question)
            .bind(i64::from(*depth))
            .bind(parent)
            .bind(&event.ts)
            .bind(&event.ts)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ClarificationAnswered {
            clarification_id,
            answer,
            answered_by,
            ..
        } => {
            sqlx::query(
                "UPDATE clarifications SET status = 'answered', answer = ?, answered_by = ?, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(answer)
            .bind(answered_by)
            .bind(&event.ts)
            .bind(clarification_id)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ClarificationRefused {
            clarification_id,
            reason,
            ..
        } => {
            sqlx::query(
                "UPDATE clarifications SET status = 'refused', reason = ?, updated_at = ? \
                 WHERE id = ?",
            )
            .bind(reason)
            .bind(&event.ts)
            .bind(clarification_id)
            .execute(&mut *conn)
            .await?;
        }
        EventData::BudgetRaised {
            run_id,
            budget,
            hard_usd,
        } => {
            sqlx::query(
                "INSERT INTO budget_raises (scope, hard_usd, run_id, seq) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (scope) DO UPDATE SET hard_usd = excluded.hard_usd, seq = excluded.seq",
            )
            .bind(serde_json::to_string(budget)?)
            .bind(hard_usd)
            .bind(run_id)
            .bind(event.seq)
            .execute(&mut *conn)
            .await?;
        }
        EventData::StageSkipped { run_id, index, .. } => {
            if let Some(run) = pending.run(conn, run_id, event).await?
                && let Some(step) = run.steps.get_mut(*index as usize)
            {
                step["status"] = "skipped".into();
                step["finished_at"] = event.ts.clone().into();
            }
        }
        EventData::RunRevised { run_id, .. } => {
            if let Some(run) = pending.run(conn, run_id, event).await? {
                for step in &mut run.steps {
                    step["status"] = "pending".into();
                    step["error"] = serde_json::Value::Null;
                }
                run.artifacts.clear();
            }
        }
        EventData::TokenScoped { .. }
        | EventData::TokenRevoked { .. }
        | EventData::SessionStarted { .. } => super::auth::apply(conn, event).await?,
        EventData::AdminTokenCreated { .. }
        | EventData::SettingsChanged { .. }
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
            let events = rows
                .into_iter()
                .map(chain::EventRow::into_event)
                .collect::<Result<Vec<_>, _>>()?;
            after = events.last().map_or(after, |e| e.seq);
            replayed += events.len() as u64;
            apply_all(&mut tx, &events.iter().collect::<Vec<_>>()).await?;
        }
        tx.commit().await?;
        Ok(replayed)
    }
}
