//! Driving one run: stage after stage, each a team answering through the TaskResult gate,
//! with questions between teams (the clarification broker) and durable waits for people
//! (approvals). Every step is committed — only while the run is still active — with all it
//! caused, and folded into the run's state exactly as a restart would fold it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use app::approval::{ApprovalKind, ErrorType, EscalationInfo, Severity};
use app::events::{Event, EventData, PlannedStage};
use app::ledger::{Attribution, BudgetScope, Risk};
use app::model::RunStatus;
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
use crate::gateway::GatewayError;
use crate::gateway::budget::BudgetError;
use crate::gateway::providers::offline::requirement_vars;
use crate::gateway::types::{Message, ModelRequest, OfflineBrief};
use crate::store::memory::{RecallScope, SHARED_BANK};
use crate::store::{NewEvent, StoreError};

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
    pub(super) offline: Option<OfflineBrief>,
    /// A clarification answer (no artifacts required).
    pub(super) answer: bool,
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

        let brief = stage_brief(engine, &run, stage, team);
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

/// What follows a COMPLETE stage: the plan approval after solution architecture (unless the
/// director policy approves it), the next stage, or what follows the last stage.
fn after_stage(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
    index: u32,
    team: &Team,
    result: &TaskResult,
) -> Vec<EventData> {
    let policy = &engine.gateway.config().approvals;
    let next = |run: &RunState| -> Vec<EventData> {
        if (index as usize + 1) < pipeline.stages.len() {
            return after_stage_index(engine, run, pipeline, index);
        }
        // The stage completing now belongs in the review's list too.
        let mut done = run.clone();
        done.completed.push((
            index,
            pipeline.stages[index as usize].name.clone(),
            team.name().to_string(),
            result.clone(),
        ));
        after_stage_index(engine, &done, pipeline, index)
    };
    if team.name() != "solution-architecture" || result.work_orders.is_empty() {
        return next(run);
    }
    let orders = &result.work_orders;
    // Risk as the server measures it from what each work order touches; the model's own
    // risk and confidence can only make a plan look riskier, never safer.
    let root = run.project.as_deref().map(Path::new);
    let assessed: Vec<_> = orders
        .iter()
        .map(|w| (w, super::work::assess(w, root)))
        .collect();
    let plan = assessed
        .iter()
        .map(|(w, a)| {
            let why = if a.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", a.reasons.join("; "))
            };
            format!(
                "- {} {} (measured risk {:?}, declared {:?}, confidence {:.2}){why}",
                w.id, w.title, a.risk, w.risk, w.confidence
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let safe = assessed
        .iter()
        .all(|(w, a)| a.risk == Risk::Low && w.confidence >= policy.plan_auto_min_confidence);
    let auto = if safe {
        Some(format!(
            "director policy: every work order measured low risk (at most a few files in scope, \
             none sensitive, CI or settings) with confidence ≥ {}",
            policy.plan_auto_min_confidence
        ))
    } else if policy.auto_approve {
        Some("auto-approve (factory run --auto-approve or [approvals] auto_approve)".into())
    } else {
        None
    };
    let id = uuid::Uuid::now_v7().to_string();
    let mut events = vec![approval(
        run,
        &id,
        index,
        ApprovalKind::Plan,
        format!(
            "Approve the plan of {} work order{}?",
            orders.len(),
            if orders.len() == 1 { "" } else { "s" }
        ),
        plan,
        None,
        serde_json::json!({
            "measured_risk": assessed
                .iter()
                .map(|(w, a)| serde_json::json!({
                    "work_order": w.id,
                    "risk": a.risk,
                    "reasons": a.reasons,
                }))
                .collect::<Vec<_>>(),
        }),
    )];
    if let Some(policy) = auto {
        events.push(auto_decision(
            run,
            &id,
            ApprovalKind::Plan,
            "approve",
            policy,
        ));
        events.extend(next(run));
    }
    events
}

/// What follows stage `index`: the next stage's start, or what follows the last stage.
fn after_stage_index(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
    index: u32,
) -> Vec<EventData> {
    if (index as usize + 1) < pipeline.stages.len() {
        return vec![stage_started(run, pipeline, index + 1)];
    }
    let mut done = run.clone();
    done.next_index = index + 1;
    after_last_stage(engine, &done, pipeline)
}

/// After the last stage: the final review (decided automatically when configured), or success.
fn after_last_stage(engine: &Engine, run: &RunState, pipeline: &Pipeline) -> Vec<EventData> {
    let policy = &engine.gateway.config().approvals;
    let succeeded = EventData::RunFinished {
        run_id: run.run_id.clone(),
        status: RunStatus::Succeeded,
        reason: format!(
            "all {} stages of `{}` complete{}",
            pipeline.stages.len(),
            pipeline.name,
            if run.revision > 0 {
                format!(" (revision {})", run.revision)
            } else {
                String::new()
            }
        ),
    };
    if !policy.final_review {
        return vec![succeeded];
    }
    let id = uuid::Uuid::now_v7().to_string();
    let artifacts = run
        .completed
        .iter()
        .flat_map(|(_, stage, _, r)| {
            r.artifacts
                .iter()
                .map(move |a| format!("- {stage}: {}", a.name))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let index = pipeline.stages.len().saturating_sub(1) as u32;
    let mut events = vec![approval(
        run,
        &id,
        index,
        ApprovalKind::Review,
        "Review the run's artifacts: approve, or revise with feedback?".into(),
        artifacts,
        None,
        serde_json::Value::Null,
    )];
    if policy.auto_approve {
        events.push(auto_decision(
            run,
            &id,
            ApprovalKind::Review,
            "approve",
            "auto-approve (factory run --auto-approve or [approvals] auto_approve)".into(),
        ));
        events.push(succeeded);
    }
    events
}

#[allow(clippy::too_many_arguments)]
fn approval(
    run: &RunState,
    id: &str,
    index: u32,
    kind: ApprovalKind,
    question: String,
    context: String,
    escalation: Option<EscalationInfo>,
    detail: serde_json::Value,
) -> EventData {
    EventData::ApprovalRequested {
        approval_id: id.to_string(),
        run_id: run.run_id.clone(),
        index,
        kind,
        question,
        context,
        options: kind.options(),
        deadline: None,
        escalation,
        detail,
    }
}

fn auto_decision(
    run: &RunState,
    id: &str,
    kind: ApprovalKind,
    option: &str,
    policy: String,
) -> EventData {
    EventData::ApprovalDecided {
        approval_id: id.to_string(),
        run_id: run.run_id.clone(),
        kind,
        option: option.into(),
        text: None,
        decided_by: "policy".into(),
        automatic: true,
        policy: Some(policy),
    }
}

fn blocked_approval(
    run: &RunState,
    index: u32,
    stage: &Stage,
    team: &Team,
    question: String,
    context: String,
    error_type: ErrorType,
) -> EventData {
    let id = uuid::Uuid::now_v7().to_string();
    approval(
        run,
        &id,
        index,
        ApprovalKind::Blocked,
        question.clone(),
        context,
        Some(EscalationInfo {
            severity: Severity::High,
            error_type,
            message: question,
        }),
        serde_json::json!({"stage": stage.name, "team": team.name()}),
    )
}

fn budget_approval(
    run: &RunState,
    index: u32,
    stage: &Stage,
    team: &Team,
    error: &BudgetError,
) -> EventData {
    let id = uuid::Uuid::now_v7().to_string();
    let (scope, limit, amount, severity) = match error {
        BudgetError::Hard {
            scope,
            limit,
            spent,
            reserved,
            amount,
        } => (
            scope.clone(),
            *limit,
            spent + reserved + amount - limit,
            Severity::High,
        ),
        BudgetError::Emergency { scope, limit } => (scope.clone(), *limit, 0.0, Severity::Critical),
    };
    approval(
        run,
        &id,
        index,
        ApprovalKind::Budget,
        format!(
            "Stage `{}` ({}) was stopped by a budget: {error}",
            stage.name,
            team.name()
        ),
        error.to_string(),
        Some(EscalationInfo {
            severity,
            error_type: ErrorType::Budget,
            message: error.to_string(),
        }),
        serde_json::json!({"scope": scope, "limit": limit, "shortfall": amount.max(0.0)}),
    )
}

/// The events that carry out a person's (or a policy's) decision.
fn apply_decision(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
    awaiting: &super::state::Awaiting,
    option: &str,
    text: Option<&str>,
) -> Vec<EventData> {
    let index = awaiting.index;
    let failed = |reason: String| {
        vec![EventData::RunFinished {
            run_id: run.run_id.clone(),
            status: RunStatus::Failed,
            reason,
        }]
    };
    let stage_name = pipeline
        .stages
        .get(index as usize)
        .map_or("?", |s| s.name.as_str());
    match (awaiting.kind, option) {
        (ApprovalKind::Clarification, _) => {
            let mut events = Vec::new();
            if let Some(id) = awaiting.detail["clarification_id"].as_str() {
                events.push(EventData::ClarificationAnswered {
                    clarification_id: id.to_string(),
                    run_id: run.run_id.clone(),
                    index,
                    question: awaiting.question.clone(),
                    answer: text.unwrap_or_default().to_string(),
                    answered_by: "a person".into(),
                });
            }
            events.push(stage_started(run, pipeline, index));
            events
        }
        (ApprovalKind::Blocked, "skip") => {
            let mut events = vec![EventData::StageSkipped {
                run_id: run.run_id.clone(),
                index,
                stage: stage_name.to_string(),
                reason: "skipped by a person".into(),
            }];
            events.extend(after_stage_index(engine, run, pipeline, index));
            events
        }
        (ApprovalKind::Blocked, "fail") => failed(format!(
            "stage `{stage_name}` was blocked and a person failed the run"
        )),
        (ApprovalKind::Blocked, _) => vec![stage_started(run, pipeline, index)],
        (ApprovalKind::Plan, "approve") => after_stage_index(engine, run, pipeline, index),
        (ApprovalKind::Plan, "revise") => vec![stage_started(run, pipeline, index)],
        (ApprovalKind::Plan, _) => failed("a person rejected the plan".into()),
        (ApprovalKind::Budget, "stop") => failed(format!(
            "stage `{stage_name}` stopped at a budget limit by a person"
        )),
        (ApprovalKind::Budget, option) => {
            let mut events = Vec::new();
            if let Ok(scope) =
                serde_json::from_value::<BudgetScope>(awaiting.detail["scope"].clone())
            {
                let limit = awaiting.detail["limit"].as_f64().unwrap_or(0.0);
                let shortfall = awaiting.detail["shortfall"].as_f64().unwrap_or(0.0);
                let hard = if option == "raise_once" {
                    // A millionth of a dollar over, so rounding cannot refuse the same call.
                    limit + shortfall + 1e-6
                } else {
                    text.and_then(|t| t.trim().trim_start_matches('$').parse::<f64>().ok())
                        .filter(|v| *v > limit)
                        .unwrap_or(limit * 2.0 + shortfall)
                };
                events.push(EventData::BudgetRaised {
                    run_id: Some(run.run_id.clone()),
                    budget: scope,
                    hard_usd: hard,
                });
            }
            events.push(stage_started(run, pipeline, index));
            events
        }
        (ApprovalKind::Review, "approve") => vec![EventData::RunFinished {
            run_id: run.run_id.clone(),
            status: RunStatus::Succeeded,
            reason: format!(
                "all {} stages of `{}` complete and approved in review",
                pipeline.stages.len(),
                pipeline.name
            ),
        }],
        (ApprovalKind::Review, _) => {
            let revision = run.revision + 1;
            let mut revised = run.clone();
            revised.next_index = 0;
            vec![
                EventData::RunRevised {
                    run_id: run.run_id.clone(),
                    revision,
                    feedback: text.unwrap_or_default().to_string(),
                },
                stage_started(&revised, pipeline, 0),
            ]
        }
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
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM supervisor_runs WHERE id = ?")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let active = status
                    .as_deref()
                    .and_then(RunStatus::parse)
                    .is_some_and(|s| !s.is_terminal());
                if !active {
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

/// The objective anchor: always in the context, in full.
fn anchor(run: &RunState, stage: &Stage, team: &Team) -> String {
    let objective = stage.objective_for(&run.goal, run.project.as_deref());
    let criteria = if stage.acceptance_criteria.is_empty() {
        "- (none given: use your team's standards)".to_string()
    } else {
        stage
            .acceptance_criteria
            .iter()
            .map(|c| format!("- {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let deliver = team
        .settings
        .deliverables
        .iter()
        .map(|d| format!("- `{}`: {}", d.name, d.description))
        .collect::<Vec<_>>()
        .join("\n");
    let mut extra = String::new();
    if !run.feedback.is_empty() {
        extra.push_str("\n\n# Review feedback to address\n\n");
        for f in &run.feedback {
            extra.push_str(&format!("- {f}\n"));
        }
    }
    if !run.answers.is_empty() {
        extra.push_str("\n\n# Answers to your questions\n\n");
        for (q, a, by) in &run.answers {
            extra.push_str(&format!("- Q: {q}\n  A ({by}): {a}\n"));
        }
    }
    if !run.guidance.is_empty() {
        extra.push_str("\n\n# Guidance from a person\n\n");
        for g in &run.guidance {
            extra.push_str(&format!("- {g}\n"));
        }
    }
    format!(
        "# Requirement\n\n{}\n\n# Your objective (stage `{}`)\n\n{objective}\n\n\
         # Acceptance criteria\n\n{criteria}\n\n# Deliver\n\n{deliver}{extra}\n\n\
         # How to answer\n\nReply with exactly one JSON object, a TaskResult: `status` COMPLETE \
         when every acceptance criterion is met and the artifacts are delivered; \
         NEEDS_CLARIFICATION with `clarification_needed` {{target_team, question}} when another \
         team must answer first (never guess); BLOCKED with `blockers` when nothing you or \
         another team can do would let you finish. Always give `reasoning`, \
         `assumptions_made` and `verified_facts` (only facts you checked).",
        run.goal.trim(),
        stage.name
    )
}

fn stage_brief<'a>(engine: &Engine, run: &RunState, stage: &Stage, team: &'a Team) -> Brief<'a> {
    let objective = stage.objective_for(&run.goal, run.project.as_deref());
    let prior: Vec<(String, String)> = run
        .completed
        .iter()
        .flat_map(|(_, _, team, r)| {
            r.artifacts
                .iter()
                .map(move |a| (team.clone(), a.name.clone()))
        })
        .collect();
    let alias = if run.strong_alias {
        engine.gateway.routing().strong_alias.clone()
    } else {
        team.settings.alias.clone()
    };
    Brief {
        team,
        anchor: anchor(run, stage, team),
        alias,
        call_prefix: format!("{}/{}/{}", run.run_id, run.started_seq, run.round),
        offline: Some(OfflineBrief {
            team: team.name().to_string(),
            deliverable: team.settings.deliverables[0].name.clone(),
            template: team.offline_template.clone(),
            vars: requirement_vars(
                &run.goal,
                run.project.as_deref(),
                &stage.name,
                &objective,
                &stage.acceptance_criteria,
                &prior,
            ),
        }),
        answer: false,
    }
}

/// Asks a team through the gate: context packing, the call, re-asks on malformed replies.
pub(super) async fn ask_team(
    engine: &Engine,
    run: &RunState,
    brief: &Brief<'_>,
    catalogue: &Catalogue,
) -> Result<Outcome, StoreError> {
    let config = &engine.config;
    let team = brief.team;
    let attribution = Attribution {
        run_id: Some(run.run_id.clone()),
        project: run.project.clone(),
        team: Some(team.name().to_string()),
        objective_id: Some(format!("{}/{}", run.run_id, run.next_index)),
        work_order_id: None,
    };
    let mut events = Vec::new();

    // Context: anchor, identity, earlier artifacts and facts of this run, recall of the
    // project's earlier runs.
    let mut recall = Vec::new();
    if let Some(project) = run.project.as_deref() {
        let banks = [team.name(), SHARED_BANK];
        let scope = RecallScope {
            banks: &banks,
            project: Some(project),
            exclude_run: Some(&run.run_id),
            run_id: None,
        };
        let query = format!(
            "{} {}",
            run.goal,
            brief.anchor.chars().take(600).collect::<String>()
        );
        recall = super::memory::recall(
            &engine.store,
            &engine.gateway,
            &query,
            &scope,
            config.recall_k,
        )
        .await?
        .into_iter()
        .map(|hit| format!("[{} · {}] {}", hit.bank, hit.kind, hit.text))
        .collect();
        recall.reverse(); // least relevant first: packing drops from the front
    }
    let mut artifacts: Vec<(String, String)> = run
        .completed
        .iter()
        .flat_map(|(_, stage, team, result)| {
            result
                .artifacts
                .iter()
                .map(move |a| (format!("{stage} ({team}): {}", a.name), a.content.clone()))
        })
        .collect();
    let facts: Vec<String> = run
        .completed
        .iter()
        .flat_map(|(_, _, team, r)| {
            r.verified_facts
                .iter()
                .map(move |f| format!("- {f} ({team})"))
        })
        .collect();
    if !facts.is_empty() {
        artifacts.push(("Facts verified by earlier stages".into(), facts.join("\n")));
    }
    let mut parts = ContextParts {
        anchor: brief.anchor.clone(),
        identity: team.identity(),
        artifacts,
        recall,
    };
    let budget = context_budget(engine, &brief.alias);
    if parts.needs_summary(budget) {
        let oldest = parts.take_oldest_recall();
        let mut request = ModelRequest::new(
            &engine.gateway.routing().cheap_alias,
            vec![
                Message::system(
                    "Summarise these notes in at most 10 short bullet points. Keep names, \
                     numbers and decisions; drop repetition.",
                ),
                Message::user(oldest.join("\n")),
            ],
            512,
        );
        request.attribution = attribution.clone();
        request.call_id = Some(format!("{}/summary", brief.call_prefix));
        let (reply, ledger) = engine.gateway.complete_deferred(&request).await;
        events.extend(ledger);
        if let Ok(reply) = reply {
            let text = reply.text.trim().to_string();
            parts
                .recall
                .insert(0, format!("[summary of older memory] {text}"));
            events.push(EventData::MemoryRetained {
                item_id: format!("{}/summary", brief.call_prefix),
                bank: team.name().to_string(),
                project: run.project.clone(),
                run_id: Some(run.run_id.clone()),
                kind: "summary".into(),
                text,
            });
        }
    }
    let packed = parts.pack(budget);

    let schema = task_result_schema(
        team.settings.kind == TeamKind::Engineering && !brief.answer,
        team.name() == "solution-architecture" && !brief.answer,
    );
    let mut messages = vec![Message::system(packed.system), Message::user(packed.user)];
    let mut cost = 0.0;
    let mut last_error = String::new();
    for reask in 0..=team.settings.max_reasks {
        let mut request =
            ModelRequest::new(&brief.alias, messages.clone(), config.max_output_tokens);
        request.temperature = Some(0.2);
        request.schema = Some(schema.clone());
        request.attribution = attribution.clone();
        request.call_id = Some(format!("{}/{reask}", brief.call_prefix));
        request.offline_brief = brief.offline.clone();
        request.caller_parses = true;
        let (reply, ledger) = engine.gateway.complete_deferred(&request).await;
        events.extend(ledger);
        let reply = match reply {
            Ok(reply) => reply,
            Err(GatewayError::Budget { error, .. }) => {
                return Ok(Outcome::Budget { error, events });
            }
            Err(e) => {
                let permanent = !matches!(e, GatewayError::Exhausted { .. });
                return Ok(Outcome::Failed {
                    error: e.to_string(),
                    events,
                    permanent,
                });
            }
        };
        cost += reply.cost_usd;
        let parsed = if brief.answer {
            parse_answer(&reply.text)
        } else {
            parse_task_result(&reply.text)
        };
        match parsed.and_then(|r| check_result(r, catalogue)) {
            Ok(result) => {
                return Ok(Outcome::Answered {
                    result: Box::new(result),
                    events,
                    cost,
                });
            }
            Err(error) => {
                tracing::info!(run_id = %run.run_id, team = team.name(), reask, %error, "malformed TaskResult; asking again");
                last_error = error.clone();
                messages.push(Message::assistant(reply.text));
                messages.push(Message::user(format!(
                    "Your reply is not a valid TaskResult: {error}. Reply again with only the \
                     corrected JSON object."
                )));
            }
        }
    }
    let result = TaskResult {
        status: TaskStatus::Blocked,
        reasoning: format!(
            "the team's reply was still not a valid TaskResult after {} re-asks",
            team.settings.max_reasks
        ),
        blockers: vec![format!("malformed TaskResult: {last_error}")],
        assumptions_made: vec![],
        verified_facts: vec![],
        clarification_needed: None,
        artifacts: vec![],
        edits: vec![],
        work_orders: vec![],
    };
    Ok(Outcome::Answered {
        result: Box::new(result),
        events,
        cost,
    })
}

/// A clarification must name a real team (asking oneself is refused by the broker).
fn check_result(result: TaskResult, catalogue: &Catalogue) -> Result<TaskResult, String> {
    if let Some(c) = &result.clarification_needed
        && result.status == TaskStatus::NeedsClarification
        && catalogue.get(&c.target_team).is_none()
    {
        return Err(format!(
            "clarification_needed.target_team `{}` is not a team (teams: {})",
            c.target_team,
            catalogue.names().join(", ")
        ));
    }
    Ok(result)
}

/// Why the broker refuses a stage's question, if it does.
fn refusal(engine: &Engine, run: &RunState, team: &Team, ask: &Ask) -> Option<String> {
    let limits = &engine.gateway.config().approvals;
    if ask.target_team == team.name() {
        return Some(format!(
            "`{}` asked itself; a team cannot answer its own question",
            team.name()
        ));
    }
    if run.clarifications.len() as u32 >= limits.max_clarifications_per_objective {
        return Some(format!(
            "the objective already asked {} questions, its limit ([approvals] max_clarifications_per_objective)",
            run.clarifications.len()
        ));
    }
    None
}

/// A refused question becomes a question for a person.
fn refuse(
    run: &RunState,
    index: u32,
    team: &Team,
    id: &str,
    ask: &Ask,
    depth: u32,
    reason: String,
) -> Vec<EventData> {
    vec![
        EventData::ClarificationRequested {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index,
            asking_team: team.name().to_string(),
            target_team: ask.target_team.clone(),
            question: ask.question.clone(),
            depth,
            parent: None,
        },
        EventData::ClarificationRefused {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index,
            reason: reason.clone(),
        },
        approval(
            run,
            &uuid::Uuid::now_v7().to_string(),
            index,
            ApprovalKind::Clarification,
            ask.question.clone(),
            format!(
                "`{}` asked `{}`; the question comes to you because {reason}",
                team.name(),
                ask.target_team
            ),
            None,
            serde_json::json!({"clarification_id": id, "asking_team": team.name()}),
        ),
    ]
}

/// Seeks the answer to a stage's pending question: the target team's focused objective, within
/// the time-to-live; nested questions are followed to the hop depth, never in a cycle. Returns
/// the events to commit: the answer, or the refusal and a question for a person.
async fn broker(
    engine: &Engine,
    run: &RunState,
    stage: &Stage,
    asking: &Team,
    catalogue: &Catalogue,
    id: &str,
    ask: &Ask,
) -> Result<Vec<EventData>, StoreError> {
    let ttl = Duration::from_millis(engine.gateway.config().approvals.clarification_ttl_ms);
    let path = vec![asking.name().to_string()];
    let mut events = Vec::new();
    let outcome = tokio::time::timeout(
        ttl,
        answer(
            engine,
            run,
            stage,
            catalogue,
            ask,
            path,
            1,
            id.to_string(),
            &mut events,
        ),
    )
    .await;
    let index = run.next_index;
    let result = match outcome {
        Ok(result) => result?,
        Err(_) => Err(format!(
            "`{}` did not answer within the clarification time-to-live of {} s",
            ask.target_team,
            ttl.as_secs_f64()
        )),
    };
    match result {
        Ok(text) => events.push(EventData::ClarificationAnswered {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index,
            question: ask.question.clone(),
            answer: text,
            answered_by: ask.target_team.clone(),
        }),
        Err(reason) => {
            let mut refusal = refuse(run, index, asking, id, ask, 1, reason);
            refusal.remove(0); // the request is already recorded
            events.extend(refusal);
        }
    }
    Ok(events)
}

/// The target team's answer to `ask`: `Ok(answer)` or `Err(why no team could answer)`.
#[allow(clippy::too_many_arguments)]
fn answer<'a>(
    engine: &'a Engine,
    run: &'a RunState,
    stage: &'a Stage,
    catalogue: &'a Catalogue,
    ask: &'a Ask,
    path: Vec<String>,
    depth: u32,
    id: String,
    events: &'a mut Vec<EventData>,
) -> BoxFuture<'a, Result<Result<String, String>, StoreError>> {
    Box::pin(async move {
        let limits = &engine.gateway.config().approvals;
        let Some(team) = catalogue.get(&ask.target_team) else {
            return Ok(Err(format!("`{}` is not a team", ask.target_team)));
        };
        let mut answers: Vec<(String, String)> = Vec::new();
        for round in 0..=limits.max_hop_depth {
            let asked_by = path.last().cloned().unwrap_or_default();
            let mut context = format!(
                "# Requirement\n\n{}\n\n# A question for your team\n\nTeam `{asked_by}` (stage `{}`) asks: {}\n",
                run.goal.trim(),
                stage.name,
                ask.question
            );
            for (q, a) in &answers {
                context.push_str(&format!("\n# Answer you received\n\n- Q: {q}\n  A: {a}\n"));
            }
            context.push_str(
                "\n# How to answer\n\nReply with one TaskResult JSON object: `status` COMPLETE \
                 with the answer in `reasoning` (concise, specific); NEEDS_CLARIFICATION with \
                 `clarification_needed` {target_team, question} only if another team must answer \
                 first; BLOCKED with `blockers` if the question cannot be answered.",
            );
            let brief = Brief {
                team,
                anchor: context,
                alias: team.settings.alias.clone(),
                call_prefix: format!(
                    "{}/{}/{}/{id}/{round}",
                    run.run_id, run.started_seq, run.round
                ),
                offline: None,
                answer: true,
            };
            let outcome = ask_team(engine, run, &brief, catalogue).await?;
            let result = match outcome {
                Outcome::Answered {
                    result, events: e, ..
                } => {
                    events.extend(e);
                    result
                }
                Outcome::Failed {
                    error, events: e, ..
                } => {
                    events.extend(e);
                    return Ok(Err(format!("`{}` could not answer: {error}", team.name())));
                }
                Outcome::Budget { error, events: e } => {
                    events.extend(e);
                    return Ok(Err(format!("`{}` could not answer: {error}", team.name())));
                }
            };
            match result.status {
                TaskStatus::Complete => {
                    let text = result
                        .artifacts
                        .first()
                        .map(|a| a.content.clone())
                        .filter(|c| !c.trim().is_empty())
                        .unwrap_or(result.reasoning);
                    return Ok(Ok(text));
                }
                TaskStatus::Blocked => {
                    return Ok(Err(format!(
                        "`{}` could not answer: {}",
                        team.name(),
                        result.blockers.join("; ")
                    )));
                }
                TaskStatus::NeedsClarification => {
                    let Some(next) = result.clarification_needed else {
                        return Ok(Err("an answer asked a question without naming it".into()));
                    };
                    let mut chain = path.clone();
                    chain.push(team.name().to_string());
                    if next.target_team == team.name() || chain.contains(&next.target_team) {
                        return Ok(Err(format!(
                            "refused a cycle: `{}` asked `{}`, already in the chain {}",
                            team.name(),
                            next.target_team,
                            chain.join(" → ")
                        )));
                    }
                    if depth + 1 > limits.max_hop_depth {
                        return Ok(Err(format!(
                            "`{}` asked `{}`, beyond the hop depth of {} ([approvals] max_hop_depth)",
                            team.name(),
                            next.target_team,
                            limits.max_hop_depth
                        )));
                    }
                    let nested = uuid::Uuid::now_v7().to_string();
                    events.push(EventData::ClarificationRequested {
                        clarification_id: nested.clone(),
                        run_id: run.run_id.clone(),
                        index: run.next_index,
                        asking_team: team.name().to_string(),
                        target_team: next.target_team.clone(),
                        question: next.question.clone(),
                        depth: depth + 1,
                        parent: Some(id.clone()),
                    });
                    let reply = answer(
                        engine,
                        run,
                        stage,
                        catalogue,
                        &next,
                        chain,
                        depth + 1,
                        nested.clone(),
                        events,
                    )
                    .await?;
                    match reply {
                        Ok(text) => {
                            events.push(EventData::ClarificationAnswered {
                                clarification_id: nested,
                                run_id: run.run_id.clone(),
                                index: run.next_index,
                                question: next.question.clone(),
                                answer: text.clone(),
                                answered_by: next.target_team.clone(),
                            });
                            answers.push((next.question.clone(), text));
                        }
                        Err(reason) => {
                            events.push(EventData::ClarificationRefused {
                                clarification_id: nested,
                                run_id: run.run_id.clone(),
                                index: run.next_index,
                                reason: reason.clone(),
                            });
                            return Ok(Err(reason));
                        }
                    }
                }
            }
        }
        Ok(Err(format!(
            "`{}` kept asking questions instead of answering",
            team.name()
        )))
    })
}

/// Tokens available for the prompt: the alias's first model's context window, less the
/// output reserved and a 10 % margin for estimation error.
fn context_budget(engine: &Engine, alias: &str) -> usize {
    let window = engine
        .gateway
        .resolve(alias)
        .ok()
        .and_then(|chain| chain.first().cloned())
        .map_or(32_768, |entry| {
            engine.gateway.config().model(&entry).context_window
        });
    let usable = (f64::from(window) * 0.9) as usize;
    usable
        .saturating_sub(engine.config.max_output_tokens as usize)
        .max(2_048)
}

/// Writes a result's artifacts under `runs/<run>/<NN>-<stage>/` (`r<N>-…` for review
/// revisions), atomically (temp file, then rename). Returns the directory relative to the data
/// directory.
async fn write_artifacts(
    engine: &Engine,
    run: &RunState,
    stage: &Stage,
    result: &TaskResult,
) -> std::io::Result<String> {
    let revision = if run.revision > 0 {
        format!("r{}-", run.revision)
    } else {
        String::new()
    };
    let relative = format!(
        "runs/{}/{revision}{:02}-{}",
        run.run_id,
        run.next_index + 1,
        stage.name
    );
    // Every part of the path is a plain name (stage names are checked when a pipeline is
    // parsed, run ids are ours, artifact names by the TaskResult gate); checked again here,
    // where a path-like name would become a write outside the data directory.
    let plain = |name: &str| {
        std::path::Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            && !name.contains('/')
    };
    if !super::pipeline::valid_name(&stage.name)
        || !plain(&run.run_id)
        || result
            .artifacts
            .iter()
            .any(|a| !plain(&a.name) || a.name.is_empty())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a stage, run or artifact name is not a plain file name",
        ));
    }
    if result.artifacts.is_empty() {
        return Ok(relative);
    }
    let dir = engine.data_dir.join(&relative);
    let artifacts = result.artifacts.clone();
    // One trip to the blocking pool for the whole stage rather than one per file operation.
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        for artifact in &artifacts {
            // Names were validated by the gate: plain file names, no directories.
            // A random, exclusively created temp name: nothing planted there is followed.
            let target = dir.join(&artifact.name);
            let mut tmp = tempfile::Builder::new()
                .prefix(".factory-artifact-")
                .tempfile_in(&dir)?;
            std::io::Write::write_all(&mut tmp, artifact.content.as_bytes())?;
            tmp.persist(&target).map_err(|e| e.error)?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(relative)
}

/// Memory from a COMPLETE result: verified facts (team and shared banks) and a summary of
/// each artifact (team bank). Ids are deterministic, so a repeated commit adds nothing.
fn retain(run: &RunState, index: u32, team: &Team, result: &TaskResult) -> Vec<EventData> {
    let mut out = Vec::new();
    let prefix = format!("{}/r{}/{index}", run.run_id, run.revision);
    let item = |id: String, bank: &str, kind: &str, text: String| EventData::MemoryRetained {
        item_id: id,
        bank: bank.to_string(),
        project: run.project.clone(),
        run_id: Some(run.run_id.clone()),
        kind: kind.to_string(),
        text,
    };
    for (i, fact) in result.verified_facts.iter().take(20).enumerate() {
        let fact: String = fact.chars().take(1_000).collect();
        out.push(item(
            format!("{prefix}/fact/{i}"),
            team.name(),
            "fact",
            fact.clone(),
        ));
        out.push(item(
            format!("{prefix}/fact/{i}/shared"),
            SHARED_BANK,
            "fact",
            fact,
        ));
    }
    for artifact in &result.artifacts {
        out.push(item(
            format!("{prefix}/artifact/{}", artifact.name),
            team.name(),
            "artifact_summary",
            format!("{}: {}", artifact.name, summarise(&artifact.content, 1_500)),
        ));
    }
    out
}

/// An extractive summary for indexing: headings and the first line under each, capped.
pub fn summarise(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out = String::new();
    let mut take_next = true;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let heading = line.starts_with('#');
        if heading || take_next {
            if out.chars().count() + line.chars().count() + 1 > max_chars {
                break;
            }
            out.push_str(line);
            out.push('\n');
        }
        take_next = heading;
    }
    out
}
