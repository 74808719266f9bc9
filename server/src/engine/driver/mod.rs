//! Driving one run: stage after stage, each a team answering through the TaskResult gate,
//! with questions between teams (the clarification broker) and durable waits for people
//! (approvals). Every step is committed — only while the run is still active — with all it
//! caused, and folded into the run's state exactly as a restart would fold it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use app::approval::{ApprovalKind, ErrorType, EscalationInfo, Severity};
use app::dto::RunStatus;
use app::events::{Event, EventData, PlannedStage};
use app::ledger::{Attribution, BudgetScope, Risk};
use app::task::{
    Clarification as Ask, TaskResult, TaskStatus, parse_answer, parse_task_result,
    task_result_schema,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::catalogue::{Catalogue, Team, TeamKind};
use super::context::ContextParts;
use super::pipeline::{self, Pipeline, Stage};
use super::state::RunState;
use super::templates::{TemplateBrief, requirement_vars};
use crate::gateway::GatewayError;
use crate::gateway::budget::BudgetError;
use crate::gateway::types::{Message, ModelRequest, OfflineAnswer};
use crate::store::memory::{RecallScope, SHARED_BANK};
use crate::store::{NewEvent, StoreError};

mod artifacts;
mod ask;
mod broker;
mod flow;

pub(super) use artifacts::summarise;
use artifacts::*;
use ask::*;
pub(super) use ask::{ask_team, context_budget};
use broker::*;
use flow::*;

/// Actor of the engine's events.
const ACTOR: &str = "engine";

/// How a stage attempt ended.
pub(super) enum Outcome {
    /// The team answered through the gate (possibly BLOCKED after malformed replies).
    Answered {
        result: Box<TaskResult>,
        events: Vec<EventData>,
        cost: f64,
    },
    /// No answer: the model chain failed. `permanent` failures are not retried.
    Failed {
        error: String,
        events: Vec<EventData>,
        permanent: bool,
    },
    /// A budget refused the call.
    Budget {
        error: BudgetError,
        events: Vec<EventData>,
    },
}

/// What one call to a team is about.
pub(super) struct Brief<'a> {
    pub(super) team: &'a Team,
    pub(super) anchor: String,
    pub(super) alias: String,
    pub(super) call_prefix: String,
    /// What the run page and `factory run` call this call while it streams: the stage, the
    /// work order, or the question being answered.
    pub(super) step: String,
    pub(super) offline: Option<OfflineAnswer>,
    /// A clarification answer (no artifacts required).
    pub(super) answer: bool,
    /// Agent work: the tools the team may call between turns and the check its answer must
    /// pass. `None`: one reply.
    pub(super) bench: Option<&'a dyn crate::engine::agent::Workbench>,
}

pub(super) async fn drive(
    engine: &Arc<Engine>,
    run_id: &str,
    cancel: &CancellationToken,
) -> Result<(), StoreError> {
    let Some(mut run) = RunState::load(&engine.store, run_id).await? else {
        return Ok(());
    };
    if run.status.is_terminal() {
        return Ok(());
    }
    let root = run.project.as_deref().map(Path::new).filter(|p| p.is_dir());
    let setup = Catalogue::load(root)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            pipeline::load_all(&c, root)
                .map(|p| (c, p))
                .map_err(|e| e.to_string())
        });
    let (catalogue, pipelines) = match setup {
        Ok(loaded) => loaded,
        Err(message) => {
            let reason = format!("the project's team or pipeline files are invalid: {message}");
            finish(engine, &mut run, RunStatus::Failed, reason, vec![]).await?;
            return Ok(());
        }
    };
    let Some(pipeline) = pipelines.get(&run.pipeline).cloned() else {
        let reason = format!(
            "unknown pipeline `{}` (available: {})",
            run.pipeline,
            pipelines.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        finish(engine, &mut run, RunStatus::Failed, reason, vec![]).await?;
        return Ok(());
    };

    if !run.started {
        let stages = pipeline
            .stages
            .iter()
            .map(|s| PlannedStage {
                name: s.name.clone(),
                team: s.team.clone(),
            })
            .collect();
        let base_commit = match root.map(Path::to_path_buf) {
            Some(r) => {
                tokio::task::spawn_blocking(move || crate::delivery::worktree::head_commit(&r).ok())
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        let mut events = vec![EventData::RunStarted {
            run_id: run_id.to_string(),
            pipeline: pipeline.name.clone(),
            stages,
            base_commit,
        }];
        events.push(stage_started(&run, &pipeline, 0));
        if !commit(engine, &mut run, events).await? {
            return Ok(());
        }
    }

    loop {
        if run.status.is_terminal() {
            return Ok(());
        }
        if let Some(awaiting) = run.awaiting.clone() {
            let Some((option, text)) = awaiting.decision.clone() else {
                return Ok(()); // waits for a person; a decision submits the run again
            };
            let events =
                apply_decision(engine, &run, &pipeline, &awaiting, &option, text.as_deref());
            if !commit(engine, &mut run, events).await? {
                return Ok(());
            }
            continue;
        }
        let index = run.next_index;
        if index as usize >= pipeline.stages.len() {
            let events = after_last_stage(engine, &run, &pipeline);
            if !commit(engine, &mut run, events).await? {
                return Ok(());
            }
            continue;
        }
        let stage = &pipeline.stages[index as usize];
        let Some(team) = catalogue.get(&stage.team) else {
            let reason = format!("stage `{}` names unknown team `{}`", stage.name, stage.team);
            finish(engine, &mut run, RunStatus::Failed, reason, vec![]).await?;
            return Ok(());
        };
        if run.iterations >= engine.config.max_iterations_per_run {
            let reason = format!(
                "the run reached its cap of {} stage attempts ([engine] max_iterations_per_run)",
                engine.config.max_iterations_per_run
            );
            finish(engine, &mut run, RunStatus::Failed, reason, vec![]).await?;
            return Ok(());
        }

        // A question left pending by a restart is answered first.
        if let Some(pending) = run.pending_clarification().cloned() {
            let ask = Ask {
                target_team: pending.target_team.clone(),
                question: pending.question.clone(),
            };
            let events = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                events = broker(engine, &run, stage, team, &catalogue, &pending.id, &ask) => events?,
            };
            if !commit(engine, &mut run, events).await? {
                return Ok(());
            }
            continue;
        }

        let mut brief = stage_brief(engine, &run, stage, team);
        let look = super::work::Look::open(engine, &run, team).await;
        brief.bench = look
            .as_ref()
            .map(|l| l as &dyn crate::engine::agent::Workbench);
        let outcome = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            outcome = ask_team(engine, &run, &brief, &catalogue) => outcome?,
        };
        match outcome {
            Outcome::Answered {
                result,
                mut events,
                cost,
            } => {
                let mut result = *result;
                if result.status == TaskStatus::Complete
                    && team.settings.kind == TeamKind::Engineering
                {
                    let orders: Vec<_> = run
                        .completed
                        .iter()
                        .rev()
                        .find(|(_, _, _, r)| !r.work_orders.is_empty())
                        .map(|(_, _, _, r)| r.work_orders.clone())
                        .unwrap_or_default();
                    if !orders.is_empty() && run.base_commit.is_some() {
                        let delivered = tokio::select! {
                            () = cancel.cancelled() => return Ok(()),
                            d = super::work::deliver(engine, &run, team, &catalogue, &orders, &mut events) => d?,
                        };
                        super::work::fold_into(&mut result, delivered);
                    }
                }
                let artifact_dir = match write_artifacts(engine, &run, stage, &result).await {
                    Ok(dir) => dir,
                    Err(e) => {
                        let reason = format!("cannot write the artifacts of `{}`: {e}", stage.name);
                        finish(engine, &mut run, RunStatus::Failed, reason, events).await?;
                        return Ok(());
                    }
                };
                events.push(EventData::StageCompleted {
                    run_id: run_id.to_string(),
                    index,
                    stage: stage.name.clone(),
                    team: team.name().to_string(),
                    status: result.status,
                    result: result.clone(),
                    artifact_dir,
                    cost_usd: cost,
                });
                match result.status {
                    TaskStatus::Complete => {
                        events.extend(retain(&run, index, team, &result));
                        events.extend(after_stage(engine, &run, &pipeline, index, team, &result));
                        if !commit(engine, &mut run, events).await? {
                            return Ok(());
                        }
                    }
                    TaskStatus::NeedsClarification => {
                        let ask = result.clarification_needed.clone().unwrap_or(Ask {
                            target_team: String::new(),
                            question: String::new(),
                        });
                        let id = uuid::Uuid::now_v7().to_string();
                        match refusal(engine, &run, team, &ask) {
                            Some(reason) => {
                                events.extend(refuse(&run, index, team, &id, &ask, 1, reason));
                                if !commit(engine, &mut run, events).await? {
                                    return Ok(());
                                }
                            }
                            None => {
                                events.push(EventData::ClarificationRequested {
                                    clarification_id: id.clone(),
                                    run_id: run_id.to_string(),
                                    index,
                                    asking_team: team.name().to_string(),
                                    target_team: ask.target_team.clone(),
                                    question: ask.question.clone(),
                                    depth: 1,
                                    parent: None,
                                });
                                // Durable before the answer is sought: a restart resumes it.
                                if !commit(engine, &mut run, events).await? {
                                    return Ok(());
                                }
                            }
                        }
                    }
                    TaskStatus::Blocked => {
                        let blockers = result.blockers.join("; ");
                        let malformed = blockers.starts_with("malformed TaskResult");
                        events.push(blocked_approval(
                            &run,
                            index,
                            stage,
                            team,
                            format!(
                                "Stage `{}` ({}) is BLOCKED: {blockers}",
                                stage.name,
                                team.name()
                            ),
                            result.reasoning.clone(),
                            if malformed {
                                ErrorType::Validation
                            } else {
                                ErrorType::Gate
                            },
                        ));
                        if !commit(engine, &mut run, events).await? {
                            return Ok(());
                        }
                    }
                }
            }
            Outcome::Failed {
                error,
                mut events,
                permanent,
            } => {
                let attempt = run.attempts + 1;
                events.push(EventData::StageAttemptFailed {
                    run_id: run_id.to_string(),
                    index,
                    stage: stage.name.clone(),
                    attempt,
                    error: error.clone(),
                });
                let max = team.settings.max_iterations;
                let escalate = permanent || attempt >= max;
                if escalate {
                    let why = if permanent {
                        format!("the model call failed: {error}")
                    } else {
                        format!(
                            "it failed {attempt} times in a row (max_iterations in team.toml); \
                             last error: {error}"
                        )
                    };
                    events.push(blocked_approval(
                        &run,
                        index,
                        stage,
                        team,
                        format!(
                            "Stage `{}` ({}) cannot continue: {why}",
                            stage.name,
                            team.name()
                        ),
                        error.clone(),
                        ErrorType::Api,
                    ));
                }
                if !commit(engine, &mut run, events).await? || escalate {
                    continue;
                }
                let wait = backoff(engine, attempt);
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Outcome::Budget { error, mut events } => {
                events.push(budget_approval(&run, index, stage, team, &error));
                if !commit(engine, &mut run, events).await? {
                    return Ok(());
                }
            }
        }
    }
}

fn backoff(engine: &Engine, attempt: u32) -> Duration {
    let base = engine.config.backoff_base_ms;
    let ms = base
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(engine.config.backoff_max_ms);
    Duration::from_millis(ms)
}

fn stage_started(run: &RunState, pipeline: &Pipeline, index: u32) -> EventData {
    let stage = &pipeline.stages[index as usize];
    EventData::StageStarted {
        run_id: run.run_id.clone(),
        index,
        stage: stage.name.clone(),
        team: stage.team.clone(),
    }
}

/// Appends `events` only while the run is still active, then folds them into `run`.
/// Returns whether they were committed.
async fn commit(
    engine: &Engine,
    run: &mut RunState,
    events: Vec<EventData>,
) -> Result<bool, StoreError> {
    let events = publish_on_success(engine, run, events).await?;
    let id = run.run_id.clone();
    let (committed, stored): (bool, Vec<Event>) = engine
        .store
        .write(Box::new(move |conn| {
            Box::pin(async move {
                if !crate::store::runs::is_active(conn, &id).await? {
                    return Ok((false, vec![]));
                }
                let events = events
                    .into_iter()
                    .map(|data| NewEvent::new(ACTOR, data))
                    .collect();
                Ok((true, events))
            })
        }))
        .await?;
    for event in &stored {
        if let EventData::BudgetRaised {
            budget, hard_usd, ..
        } = &event.data
        {
            engine.gateway.budgets().raise(budget.clone(), *hard_usd);
        }
        if event.run_id.as_deref() == Some(run.run_id.as_str()) {
            run.apply(event);
        }
    }
    Ok(committed)
}

/// A run about to succeed publishes its delivered work orders first (push, pull requests):
/// only now, after its review, does model output reach the remote. The publishing events go
/// before the run's end; a failure turns the success into a failure that says why.
async fn publish_on_success(
    engine: &Engine,
    run: &RunState,
    mut events: Vec<EventData>,
) -> Result<Vec<EventData>, StoreError> {
    let succeeds = events.iter().position(|e| {
        matches!(e, EventData::RunFinished { run_id, status: RunStatus::Succeeded, .. }
            if *run_id == run.run_id)
    });
    let Some(at) = succeeds.filter(|_| !run.status.is_terminal()) else {
        return Ok(events);
    };
    let (published, outcome) = super::work::publish_run(engine, run, &events).await?;
    let end = events.split_off(at);
    events.extend(published);
    match outcome {
        Ok(()) => events.extend(end),
        Err(reason) => events.push(EventData::RunFinished {
            run_id: run.run_id.clone(),
            status: RunStatus::Failed,
            reason: format!("the run was approved, but {reason}"),
        }),
    }
    Ok(events)
}

async fn finish(
    engine: &Engine,
    run: &mut RunState,
    status: RunStatus,
    reason: String,
    mut events: Vec<EventData>,
) -> Result<bool, StoreError> {
    tracing::info!(run_id = %run.run_id, status = status.as_str(), reason, "run finished");
    events.push(EventData::RunFinished {
        run_id: run.run_id.clone(),
        status,
        reason,
    });
    commit(engine, run, events).await
}
