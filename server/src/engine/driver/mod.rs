//! Driving one run: stage after stage, each a team answering through the TaskResult gate,
//! with questions between teams (the clarification broker) and durable waits for people
//! (approvals). Every step is committed — only while the run is still active — with all it
//! caused, and folded into the run's state exactly as a restart would fold it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use app::approval::{ApprovalKind, ErrorType, EscalationInfo, Severity};
use app::dto::RunStatus;
use app::events::{EventData, PlannedStage};
use app::ledger::{Attribution, BudgetScope, Risk};
use app::task::{
    Artifact, Clarification as Ask, TaskResult, TaskStatus, parse_answer, parse_task_result,
    task_result_schema,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
mod converse;
mod flow;
mod stage;

use stage::Pending;

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

/// Whether the driver goes on with a run or stops (the run ended, waits for a person, or was
/// cancelled).
enum Flow {
    Next,
    Stop,
}

impl Flow {
    /// Goes on when the step's events were committed; a run no longer active stops.
    fn committed(ok: bool) -> Flow {
        if ok { Flow::Next } else { Flow::Stop }
    }
}

/// What driving one run holds on to: the engine, the run's teams and pipeline, its cancel,
/// and the last stage's commit while it is made durable.
struct Driving<'a> {
    engine: &'a Arc<Engine>,
    catalogue: Catalogue,
    pipeline: Pipeline,
    cancel: &'a CancellationToken,
    /// Set by a completed stage ([`Driving::settle`]).
    pending: std::sync::Mutex<Option<Pending>>,
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
    let Some((catalogue, pipeline)) = setup(engine, &mut run).await? else {
        return Ok(());
    };
    if let Err(e) = restore_artifacts(engine, &run).await {
        let reason = format!("cannot write the artifacts of its completed stages again: {e}");
        finish(engine, &mut run, RunStatus::Failed, reason, vec![]).await?;
        return Ok(());
    }
    let driving = Driving {
        engine,
        catalogue,
        pipeline,
        cancel,
        pending: std::sync::Mutex::new(None),
    };
    if !run.started && !driving.start(&mut run).await? {
        return Ok(());
    }
    let stepped = loop {
        match driving.step(&mut run).await {
            Ok(Flow::Next) => {}
            Ok(Flow::Stop) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Nothing is left in flight behind the driver.
    match stepped {
        Ok(()) => {
            driving.settle(&mut run).await?;
        }
        Err(e) => {
            driving.abandon().await;
            return Err(e);
        }
    }
    trace_ended(engine, run_id).await;
    Ok(())
}

/// The run's teams and its pipeline, or `None` when they cannot be loaded (the run failed,
/// saying why).
async fn setup(
    engine: &Engine,
    run: &mut RunState,
) -> Result<Option<(Catalogue, Pipeline)>, StoreError> {
    let root = run.project.as_deref().map(Path::new).filter(|p| p.is_dir());
    let loaded = Catalogue::load(root)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            pipeline::load_all(&c, root)
                .map(|p| (c, p))
                .map_err(|e| e.to_string())
        });
    let (catalogue, pipelines) = match loaded {
        Ok(loaded) => loaded,
        Err(message) => {
            let reason = format!("the project's team or pipeline files are invalid: {message}");
            finish(engine, run, RunStatus::Failed, reason, vec![]).await?;
            return Ok(None);
        }
    };
    let Some(pipeline) = pipelines.get(&run.pipeline).cloned() else {
        let reason = format!(
            "unknown pipeline `{}` (available: {})",
            run.pipeline,
            pipelines.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        finish(engine, run, RunStatus::Failed, reason, vec![]).await?;
        return Ok(None);
    };
    Ok(Some((catalogue, pipeline)))
}

impl Driving<'_> {
    /// Starts the run: its stages and the project's base commit, then the first stage.
    async fn start(&self, run: &mut RunState) -> Result<bool, StoreError> {
        let stages = self
            .pipeline
            .stages
            .iter()
            .map(|s| PlannedStage {
                name: s.name.clone(),
                team: s.team.clone(),
            })
            .collect();
        let root = run.project.as_deref().map(Path::new).filter(|p| p.is_dir());
        let base_commit = match root.map(Path::to_path_buf) {
            Some(r) => {
                tokio::task::spawn_blocking(move || crate::delivery::worktree::head_commit(&r).ok())
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        let events = vec![
            EventData::RunStarted {
                run_id: run.run_id.clone(),
                pipeline: self.pipeline.name.clone(),
                stages,
                base_commit,
            },
            stage_started(run, &self.pipeline, 0),
        ];
        commit(self.engine, run, events).await
    }

    /// One step of the run: a person's decision applied, the end of the pipeline, a question
    /// left pending by a restart answered, or the next stage's team asked.
    async fn step(&self, run: &mut RunState) -> Result<Flow, StoreError> {
        let engine = self.engine;
        if run.status.is_terminal() {
            return Ok(Flow::Stop);
        }
        // Only a team's answer may be sought while the last stage's commit is on its way to
        // disk; anything else waits for it.
        if !self.asks_next(run)
            && let Flow::Stop = self.settle(run).await?
        {
            return Ok(Flow::Stop);
        }
        if let Some(awaiting) = run.awaiting.clone() {
            let Some((option, text)) = awaiting.decision.clone() else {
                return Ok(Flow::Stop); // waits for a person; a decision submits the run again
            };
            let events = apply_decision(
                engine,
                run,
                &self.pipeline,
                &awaiting,
                &option,
                text.as_deref(),
            );
            return Ok(Flow::committed(commit(engine, run, events).await?));
        }
        let index = run.next_index;
        let Some(stage) = self.pipeline.stages.get(index as usize) else {
            let events = after_last_stage(engine, run, &self.pipeline);
            return Ok(Flow::committed(commit(engine, run, events).await?));
        };
        let Some(team) = self.catalogue.get(&stage.team) else {
            let reason = format!("stage `{}` names unknown team `{}`", stage.name, stage.team);
            finish(engine, run, RunStatus::Failed, reason, vec![]).await?;
            return Ok(Flow::Stop);
        };
        if run.iterations >= engine.config.max_iterations_per_run {
            let reason = format!(
                "the run reached its cap of {} stage attempts ([engine] max_iterations_per_run)",
                engine.config.max_iterations_per_run
            );
            finish(engine, run, RunStatus::Failed, reason, vec![]).await?;
            return Ok(Flow::Stop);
        }
        // A question left pending by a restart is answered first.
        if let Some(pending) = run.pending_clarification().cloned() {
            let ask = Ask {
                target_team: pending.target_team.clone(),
                question: pending.question.clone(),
            };
            let span = run_span(
                run,
                tracing::info_span!(
                    parent: None,
                    "factory.clarification",
                    factory.run.id = %run.run_id,
                    factory.clarification.id = %pending.id,
                    factory.team = %stage.team,
                    factory.target_team = %ask.target_team,
                ),
            );
            let asked = broker(engine, run, stage, team, &self.catalogue, &pending.id, &ask);
            let events = tokio::select! {
                () = self.cancel.cancelled() => return Ok(Flow::Stop),
                events = asked.instrument(span) => events?,
            };
            return Ok(Flow::committed(commit(engine, run, events).await?));
        }
        let span = run_span(
            run,
            tracing::info_span!(
                parent: None,
                "factory.stage",
                otel.name = format!("stage {}", stage.name),
                factory.run.id = %run.run_id,
                factory.stage = %stage.name,
                factory.stage.index = i64::from(index),
                factory.team = %stage.team,
            ),
        );
        let started = std::time::Instant::now();
        let flow = self.stage(run, stage, team).instrument(span).await;
        let outcome = match &flow {
            Ok(Flow::Next) => "next",
            Ok(Flow::Stop) => "stopped",
            Err(_) => "error",
        };
        crate::telemetry::metrics::METRICS.stage(&stage.team, outcome, started.elapsed());
        flow
    }
}

/// `span` put under the run's trace.
fn run_span(run: &RunState, span: tracing::Span) -> tracing::Span {
    crate::telemetry::under_run(&span, &run.run_id);
    span
}

/// Sends the run's root span once it has ended (traces on only).
pub(super) async fn trace_ended(engine: &Engine, run_id: &str) {
    if !crate::telemetry::tracing_on() {
        return;
    }
    let Ok(Some(run)) = engine.store.get_run(run_id).await else {
        return;
    };
    if !run.status.is_terminal() {
        return;
    }
    let started = std::time::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(run.created_ms).unwrap_or_default());
    crate::telemetry::run_ended(
        run_id,
        started,
        vec![
            opentelemetry::KeyValue::new("factory.run.status", run.status.as_str()),
            opentelemetry::KeyValue::new("factory.cost_usd", run.cost_usd),
            opentelemetry::KeyValue::new("factory.project", run.project.unwrap_or_default()),
        ],
    );
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
    let stored = engine
        .store
        .append_if_active(&run.run_id, new_events(events))
        .await?;
    let committed = stored.is_some();
    fold(engine, run, &stored.unwrap_or_default());
    Ok(committed)
}

/// [`commit`] up to the fsync: the events are folded into `run` once written inside the
/// transaction; the returned [`crate::store::Durable`] says when they are stored.
async fn commit_staged(
    engine: &Engine,
    run: &mut RunState,
    events: Vec<EventData>,
) -> Result<(bool, crate::store::Durable), StoreError> {
    let events = publish_on_success(engine, run, events).await?;
    let staged = engine
        .store
        .append_if_active_staged(&run.run_id, new_events(events))
        .await?;
    let committed = staged.events.is_some();
    fold(engine, run, &staged.events.unwrap_or_default());
    Ok((committed, staged.durable))
}

fn new_events(events: Vec<EventData>) -> Vec<NewEvent> {
    events
        .into_iter()
        .map(|data| NewEvent::new(ACTOR, data))
        .collect()
}

/// Folds committed events into `run` (and a raised budget into the gateway's).
fn fold(engine: &Engine, run: &mut RunState, stored: &[app::events::Event]) {
    for event in stored {
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
