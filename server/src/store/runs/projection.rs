//! The `supervisor_runs` and `work_orders` projections: how run, stage and work-order events
//! change a run's row. A run's plan and artifacts (JSON columns) are changed in memory over a
//! batch and written once ([`Plans`]).

use app::dto::{RunStatus, StepState};
use app::events::{Event, EventData};

use crate::store::StoreError;
use crate::store::batch::Tx;

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

/// The plans of the runs a batch touches, read once and written once.
#[derive(Default)]
pub(in crate::store) struct Plans {
    runs: Vec<RunJson>,
    /// A run's row read as the transaction began (id, steps, artifacts): used instead of a
    /// read until something writes the row directly.
    seed: Option<(String, String, String)>,
}

impl Plans {
    pub(in crate::store) fn seeded(seed: Option<(String, String, String)>) -> Plans {
        Plans {
            runs: Vec::new(),
            seed,
        }
    }

    /// The run's plan, read once per batch. `None` when the run does not exist.
    async fn run(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        event: &Event,
    ) -> Result<Option<&mut RunJson>, StoreError> {
        let i = match self.runs.iter().position(|r| r.id == id) {
            Some(i) => i,
            None => {
                let row = match self.seed.take_if(|(seeded, _, _)| seeded == id) {
                    Some((_, steps, artifacts)) => Some((steps, artifacts)),
                    None => {
                        sqlx::query_as("SELECT steps, artifacts FROM supervisor_runs WHERE id = ?")
                            .bind(id)
                            .fetch_optional(tx.conn().await?)
                            .await?
                    }
                };
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

    /// Writes one run's gathered changes (before a statement that writes the row directly,
    /// which also makes the seed stale).
    fn flush_run(&mut self, tx: &mut Tx<'_>, id: &str) -> Result<(), StoreError> {
        self.seed.take_if(|(seeded, _, _)| seeded == id);
        if let Some(i) = self.runs.iter().position(|r| r.id == id) {
            let run = self.runs.remove(i);
            write_run(tx, &run)?;
        }
        Ok(())
    }

    /// Writes every gathered plan. Returns each run's plan and artifacts (JSON) as the batch
    /// leaves them: those it wrote, and the seed when nothing changed it.
    pub(in crate::store) fn flush(self, tx: &mut Tx<'_>) -> Result<Vec<PlanRow>, StoreError> {
        let mut rows = Vec::with_capacity(self.runs.len() + 1);
        for run in &self.runs {
            let (steps, artifacts) = write_run(tx, run)?;
            rows.push((run.id.clone(), steps, artifacts));
        }
        rows.extend(self.seed);
        Ok(rows)
    }
}

/// A run's id, plan and artifacts, as stored (JSON).
pub(in crate::store) type PlanRow = (String, String, String);

/// Writes a run's gathered changes; returns the plan and artifacts as written.
fn write_run(tx: &mut Tx<'_>, run: &RunJson) -> Result<(String, String), StoreError> {
    let (set_stage, stage) = match &run.current_stage {
        Some(stage) => (true, stage.clone()),
        None => (false, None),
    };
    let steps = serde_json::to_string(&run.steps)?;
    let artifacts = serde_json::to_string(&run.artifacts)?;
    tx.push(
        "UPDATE supervisor_runs SET steps = ?, artifacts = ?, \
         current_stage = CASE WHEN ? THEN ? ELSE current_stage END, \
         updated_at = ?, last_seq = MAX(last_seq, ?) WHERE id = ?",
    )
    .bind(steps.as_str())
    .bind(artifacts.as_str())
    .bind(set_stage)
    .bind(stage)
    .bind(&run.ts)
    .bind(run.seq)
    .bind(&run.id);
    Ok((steps, artifacts))
}

/// Folds one run, stage or work-order event into the run's row (plans through `pending`).
pub(in crate::store) async fn apply(
    tx: &mut Tx<'_>,
    event: &Event,
    pending: &mut Plans,
) -> Result<(), StoreError> {
    match &event.data {
        EventData::RunCreated {
            run_id,
            request_id,
            goal,
            project,
            pipeline,
        } => {
            tx.push(
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
            .bind(event.seq);
        }
        EventData::RunStarted {
            run_id,
            pipeline,
            stages,
            ..
        } => {
            pending.flush_run(tx, run_id)?;
            let steps: Vec<serde_json::Value> = stages
                .iter()
                .map(|s| {
                    serde_json::json!({"name": s.name, "team": s.team, "status": StepState::Pending.as_str(),
                                       "attempts": 0, "cost_usd": 0.0})
                })
                .collect();
            tx.push(
                "UPDATE supervisor_runs SET status = ?, pipeline = ?, steps = ?, updated_at = ?, \
                 last_seq = ? WHERE id = ?",
            )
            .bind(RunStatus::Running.as_str())
            .bind(pipeline)
            .bind(serde_json::to_string(&steps)?)
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id);
        }
        EventData::StageStarted {
            run_id,
            index,
            stage,
            ..
        } => {
            if let Some(run) = pending.run(tx, run_id, event).await? {
                if let Some(step) = run.steps.get_mut(*index as usize) {
                    step["status"] = StepState::Running.as_str().into();
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
            if let Some(run) = pending.run(tx, run_id, event).await?
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
                tx.push("DELETE FROM work_orders WHERE run_id = ? AND status = 'planned'")
                    .bind(run_id);
                for wo in &result.work_orders {
                    tx.push(
                        "INSERT INTO work_orders (run_id, work_order_id, title, spec, status, \
                         updated_at) VALUES (?, ?, ?, ?, 'planned', ?) \
                         ON CONFLICT (run_id, work_order_id) DO NOTHING",
                    )
                    .bind(run_id)
                    .bind(&wo.id)
                    .bind(&wo.title)
                    .bind(serde_json::to_string(wo)?)
                    .bind(&event.ts);
                }
            }
            if let Some(run) = pending.run(tx, run_id, event).await? {
                if let Some(step) = run.steps.get_mut(*index as usize) {
                    let attempts = step["attempts"].as_u64().unwrap_or(0) + 1;
                    step["attempts"] = attempts.into();
                    step["status"] = StepState::from(*status).as_str().into();
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
            tx.push(
                "UPDATE supervisor_runs SET status = ?, reason = ?, current_stage = NULL, \
                 updated_at = ?, last_seq = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id);
        }
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
            stacked_on: _,
            unverified: _,
        } => {
            tx.push(
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
            .bind(published_by_policy);
        }
        EventData::WorkOrderPublished {
            run_id,
            work_order_id,
            pushed,
            pull_request,
            policy,
            error: None,
            ..
        } => {
            tx.push(
                "UPDATE work_orders SET pushed = ?, pull_request = ?, published_policy = ?, \
                 updated_at = ? WHERE run_id = ? AND work_order_id = ?",
            )
            .bind(pushed)
            .bind(pull_request)
            .bind(policy)
            .bind(&event.ts)
            .bind(run_id)
            .bind(work_order_id);
        }
        EventData::BranchPushed {
            run_id,
            work_order_id,
            ..
        } => {
            tx.push(
                "UPDATE work_orders SET pushed = 1, updated_at = ? \
                 WHERE run_id = ? AND work_order_id = ?",
            )
            .bind(&event.ts)
            .bind(run_id)
            .bind(work_order_id);
        }
        EventData::PullRequestOpened {
            run_id,
            work_order_id,
            url,
            ..
        } => {
            tx.push(
                "UPDATE work_orders SET pull_request = ?, updated_at = ? \
                 WHERE run_id = ? AND work_order_id = ?",
            )
            .bind(url)
            .bind(&event.ts)
            .bind(run_id)
            .bind(work_order_id);
        }
        EventData::StageSkipped { run_id, index, .. } => {
            if let Some(run) = pending.run(tx, run_id, event).await?
                && let Some(step) = run.steps.get_mut(*index as usize)
            {
                step["status"] = StepState::Skipped.as_str().into();
                step["finished_at"] = event.ts.clone().into();
            }
        }
        EventData::RunRevised { run_id, .. } => {
            if let Some(run) = pending.run(tx, run_id, event).await? {
                for step in &mut run.steps {
                    step["status"] = StepState::Pending.as_str().into();
                    step["error"] = serde_json::Value::Null;
                }
                run.artifacts.clear();
            }
        }
        _ => {}
    }
    Ok(())
}
