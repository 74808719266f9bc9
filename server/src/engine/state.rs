//! A run's state, folded from its events: the engine keeps nothing that is not in the log.

use app::events::{Event, EventData};
use app::model::RunStatus;
use app::task::TaskResult;

use crate::store::{Store, StoreError};

/// Events read per query while folding.
const PAGE: u32 = 1_000;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub run_id: String,
    pub goal: String,
    pub project: Option<String>,
    pub pipeline: String,
    pub status: RunStatus,
    /// `run_started` was recorded (the plan is fixed).
    pub started: bool,
    /// Results of completed stages by index.
    pub completed: Vec<(u32, String, String, TaskResult)>,
    /// The stage to run next.
    pub next_index: u32,
    /// Failed attempts of the next stage since it started.
    pub attempts: u32,
    /// Every attempt of every stage (the per-run iteration cap counts these).
    pub iterations: u32,
    pub cost_usd: f64,
}

impl RunState {
    /// Folds every event of the run. `None` when the run does not exist.
    pub async fn load(store: &Store, run_id: &str) -> Result<Option<RunState>, StoreError> {
        let mut state: Option<RunState> = None;
        let mut after = 0;
        loop {
            let events = store.run_events(run_id, after, PAGE).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                state = fold(state, event);
            }
        }
        Ok(state)
    }
}

fn fold(state: Option<RunState>, event: &Event) -> Option<RunState> {
    if let EventData::RunCreated {
        run_id,
        goal,
        project,
        pipeline,
        ..
    } = &event.data
    {
        return Some(RunState {
            run_id: run_id.clone(),
            goal: goal.clone(),
            project: project.clone(),
            pipeline: pipeline.clone().unwrap_or_else(|| "default".into()),
            status: RunStatus::Queued,
            started: false,
            completed: Vec::new(),
            next_index: 0,
            attempts: 0,
            iterations: 0,
            cost_usd: 0.0,
        });
    }
    let mut s = state?;
    match &event.data {
        EventData::RunStarted { pipeline, .. } => {
            s.started = true;
            s.pipeline = pipeline.clone();
            s.status = RunStatus::Running;
        }
        EventData::StageAttemptFailed { index, .. } if *index == s.next_index => {
            s.attempts += 1;
            s.iterations += 1;
        }
        EventData::StageCompleted {
            index,
            stage,
            team,
            result,
            cost_usd,
            ..
        } => {
            s.completed
                .push((*index, stage.clone(), team.clone(), result.clone()));
            s.next_index = index + 1;
            s.attempts = 0;
            s.iterations += 1;
            s.cost_usd += cost_usd;
        }
        EventData::RunFinished { status, .. } => s.status = *status,
        _ => {}
    }
    Some(s)
}
