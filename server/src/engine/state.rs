//! A run's state, folded from its events: the engine keeps nothing that is not in the log.
//! The driver folds the events it commits into the same state, so its view never drifts from
//! what a restart would rebuild.

use app::approval::ApprovalKind;
use app::dto::RunStatus;
use app::events::{Event, EventData};
use app::task::{TaskResult, TaskStatus};

use crate::store::{Store, StoreError};

/// Events read per query while folding.
const PAGE: u32 = 1_000;

/// A question of the current stage to another team.
#[derive(Debug, Clone, PartialEq)]
pub struct Clarification {
    pub id: String,
    pub target_team: String,
    pub question: String,
    pub depth: u32,
    /// `None` while pending; `Some(Ok(answer))` or `Some(Err(reason))`.
    pub outcome: Option<Result<String, String>>,
}

/// An approval the run waits for, and its decision once made.
#[derive(Debug, Clone, PartialEq)]
pub struct Awaiting {
    pub approval_id: String,
    pub kind: ApprovalKind,
    pub index: u32,
    pub detail: serde_json::Value,
    pub question: String,
    /// (option, text)
    pub decision: Option<(String, Option<String>)>,
}

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
    /// The project's `HEAD` at the start (work orders branch from it).
    pub base_commit: Option<String>,
    /// Review revisions so far, and the feedback of each (added to the objective anchor).
    pub revision: u32,
    pub feedback: Vec<String>,
    /// Results of this revision's completed stages: (index, stage, team, result).
    pub completed: Vec<(u32, String, String, TaskResult)>,
    /// The stage to run next.
    pub next_index: u32,
    /// Sequence number of the `stage_started` of the next stage: with `round`, it makes call
    /// ids unique and stable across restarts.
    pub started_seq: i64,
    /// The stage the last `stage_started` was for.
    pub started_index: Option<u32>,
    /// Re-runs of the next stage since it started (failed attempts, answers, refusals).
    pub round: u32,
    /// Failed attempts of the next stage since it started.
    pub attempts: u32,
    /// Every attempt of every stage (the per-run iteration cap counts these).
    pub iterations: u32,
    /// The next stage's questions to other teams (top level).
    pub clarifications: Vec<Clarification>,
    /// Answers the next stage receives: (question, answer, answered by).
    pub answers: Vec<(String, String, String)>,
    /// A person's guidance for the next stage.
    pub guidance: Vec<String>,
    /// A person asked to retry the next stage with the strongest alias.
    pub strong_alias: bool,
    /// A person allowed this run's work orders to be committed without a gate.
    pub unverified_allowed: bool,
    pub awaiting: Option<Awaiting>,
    /// Work orders delivered on their branches (the latest delivery of each), in order.
    pub delivered: Vec<DeliveredOrder>,
    /// A model (not the offline templates) has answered one of the run's calls: from then on
    /// the templates never stand in for it, and a lost model waits for a person.
    pub served_by_model: bool,
}

/// A work order committed on its branch, and whether its branch was published since.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredOrder {
    pub work_order_id: String,
    pub title: String,
    pub branch: String,
    pub commit: String,
    pub files: Vec<String>,
    pub model: String,
    pub cost_usd: f64,
    /// Pushed (and its pull request opened, where the project has one) — at delivery by the
    /// project's policy, or after the review.
    pub published: bool,
    /// The work orders it is stacked on.
    pub stacked_on: Vec<String>,
    /// Who allowed committing it with no gate, when none verified it.
    pub unverified: Option<String>,
}

/// Folds a delivery or a publication into the list of delivered work orders.
fn fold_delivered(list: &mut Vec<DeliveredOrder>, data: &EventData) {
    match data {
        EventData::WorkOrderDelivered {
            work_order_id,
            title,
            branch,
            commit,
            files,
            pushed,
            model,
            cost_usd,
            stacked_on,
            unverified,
            ..
        } => {
            let order = DeliveredOrder {
                stacked_on: stacked_on.clone(),
                unverified: unverified.clone(),
                work_order_id: work_order_id.clone(),
                title: title.clone(),
                branch: branch.clone(),
                commit: commit.clone(),
                files: files.clone(),
                model: model.clone(),
                cost_usd: *cost_usd,
                published: *pushed,
            };
            match list.iter_mut().find(|d| &d.work_order_id == work_order_id) {
                Some(d) => *d = order,
                None => list.push(order),
            }
        }
        EventData::WorkOrderPublished {
            work_order_id,
            commit,
            error: None,
            ..
        } => {
            if let Some(d) = list
                .iter_mut()
                .find(|d| &d.work_order_id == work_order_id && &d.commit == commit)
            {
                d.published = true;
            }
        }
        _ => {}
    }
}

impl RunState {
    /// The delivered work orders with `batch` (events not committed yet) folded in.
    pub fn delivered_with(&self, batch: &[EventData]) -> Vec<DeliveredOrder> {
        let mut list = self.delivered.clone();
        for data in batch {
            fold_delivered(&mut list, data);
        }
        list
    }

    /// Folds every event of the run. `None` when the run does not exist.
    pub async fn load(store: &Store, run_id: &str) -> Result<Option<RunState>, StoreError> {
        let mut state: Option<RunState> = None;
        let mut after = 0;
        loop {
            let events = store.run_events(run_id, after, PAGE).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                state = match state {
                    None => RunState::created(event),
                    Some(mut s) => {
                        s.apply(event);
                        Some(s)
                    }
                };
            }
        }
        Ok(state)
    }

    fn created(event: &Event) -> Option<RunState> {
        let EventData::RunCreated {
            run_id,
            goal,
            project,
            pipeline,
            ..
        } = &event.data
        else {
            return None;
        };
        Some(RunState {
            run_id: run_id.clone(),
            goal: goal.clone(),
            project: project.clone(),
            pipeline: pipeline.clone().unwrap_or_else(|| "default".into()),
            status: RunStatus::Queued,
            started: false,
            base_commit: None,
            revision: 0,
            feedback: Vec::new(),
            completed: Vec::new(),
            next_index: 0,
            started_seq: 0,
            started_index: None,
            round: 0,
            attempts: 0,
            iterations: 0,
            clarifications: Vec::new(),
            answers: Vec::new(),
            guidance: Vec::new(),
            strong_alias: false,
            unverified_allowed: false,
            awaiting: None,
            delivered: Vec::new(),
            served_by_model: false,
        })
    }

    fn reset_stage(&mut self) {
        self.round = 0;
        self.attempts = 0;
        self.clarifications.clear();
        self.answers.clear();
        self.guidance.clear();
        self.strong_alias = false;
    }

    /// The pending top-level clarification of the next stage, if any (after a restart).
    pub fn pending_clarification(&self) -> Option<&Clarification> {
        self.clarifications.iter().find(|c| c.outcome.is_none())
    }

    /// Folds one event of this run.
    pub fn apply(&mut self, event: &Event) {
        match &event.data {
            EventData::ModelCallFinished { offline, .. } => {
                self.served_by_model |= !offline;
            }
            EventData::RunStarted {
                pipeline,
                base_commit,
                ..
            } => {
                self.base_commit = base_commit.clone();
                self.started = true;
                self.pipeline = pipeline.clone();
                self.status = RunStatus::Running;
            }
            EventData::StageStarted { index, .. } => self.start_stage(*index, event.seq),
            EventData::StageAttemptFailed { index, .. } if *index == self.next_index => {
                self.attempts += 1;
                self.round += 1;
                self.iterations += 1;
            }
            EventData::StageCompleted {
                index,
                stage,
                team,
                result,
                status,
                ..
            } if *index == self.next_index => {
                self.iterations += 1;
                self.round += 1;
                if *status == TaskStatus::Complete {
                    self.completed
                        .push((*index, stage.clone(), team.clone(), result.clone()));
                    self.next_index = index + 1;
                }
            }
            EventData::StageSkipped { index, .. } => {
                self.next_index = index + 1;
                self.reset_stage();
                self.awaiting = None;
            }
            EventData::ClarificationRequested {
                clarification_id,
                index,
                target_team,
                question,
                depth,
                parent: None,
                ..
            } if *index == self.next_index => {
                self.clarifications.push(Clarification {
                    id: clarification_id.clone(),
                    target_team: target_team.clone(),
                    question: question.clone(),
                    depth: *depth,
                    outcome: None,
                });
            }
            EventData::ClarificationAnswered {
                clarification_id,
                question,
                answer,
                answered_by,
                ..
            } => {
                if self.settle(clarification_id, Ok(answer.clone())) {
                    self.answers
                        .push((question.clone(), answer.clone(), answered_by.clone()));
                }
            }
            EventData::ClarificationRefused {
                clarification_id,
                reason,
                ..
            } => {
                self.settle(clarification_id, Err(reason.clone()));
            }
            EventData::ApprovalRequested {
                approval_id,
                kind,
                index,
                detail,
                question,
                ..
            } => {
                self.awaiting = Some(Awaiting {
                    approval_id: approval_id.clone(),
                    kind: *kind,
                    index: *index,
                    detail: detail.clone(),
                    question: question.clone(),
                    decision: None,
                });
                self.status = RunStatus::WaitingForHuman;
            }
            EventData::ApprovalDecided {
                approval_id,
                option,
                text,
                ..
            } => self.decided(approval_id, option, text.as_deref()),
            EventData::RunRevised {
                revision, feedback, ..
            } => {
                self.revision = *revision;
                self.feedback.push(feedback.clone());
                self.completed.clear();
                self.next_index = 0;
                self.started_seq = 0;
                self.started_index = None;
                self.reset_stage();
                self.awaiting = None;
            }
            EventData::RunFinished { status, .. } => self.status = *status,
            data
            @ (EventData::WorkOrderDelivered { .. } | EventData::WorkOrderPublished { .. }) => {
                fold_delivered(&mut self.delivered, data);
            }
            _ => {}
        }
    }

    /// Stage `index` starts (its start event at `seq`): again after a person's decision (its
    /// guidance and answers kept), or afresh; a stage run again drops later results.
    fn start_stage(&mut self, index: u32, seq: i64) {
        if index < self.next_index {
            // A stage runs again (a plan revised): later results no longer hold.
            self.completed.retain(|(i, ..)| *i < index);
        }
        let same = self.started_index == Some(index);
        self.next_index = index;
        self.started_seq = seq;
        self.started_index = Some(index);
        if same {
            // Re-run after a person's decision: keep its guidance and answers.
            self.round = 0;
            self.attempts = 0;
        } else {
            self.reset_stage();
        }
        self.awaiting = None;
        if self.status == RunStatus::WaitingForHuman {
            self.status = RunStatus::Running;
        }
    }

    /// Records the outcome of one of this stage's questions; false when it is not one.
    fn settle(&mut self, clarification_id: &str, outcome: Result<String, String>) -> bool {
        let Some(c) = self
            .clarifications
            .iter_mut()
            .find(|c| c.id == clarification_id)
        else {
            return false;
        };
        c.outcome = Some(outcome);
        self.round += 1;
        true
    }

    /// A decision on the approval the run waits for: what it tells the next attempt
    /// (guidance, an answer, the strong model, committing unverified), and the run goes on.
    fn decided(&mut self, approval_id: &str, option: &str, text: Option<&str>) {
        let Some(a) = &mut self.awaiting else {
            return;
        };
        if a.approval_id != approval_id {
            return;
        }
        a.decision = Some((option.to_string(), text.map(str::to_string)));
        let text = text.unwrap_or_default().to_string();
        match (a.kind, option) {
            (ApprovalKind::Blocked, "guidance") | (ApprovalKind::Plan, "revise") => {
                self.guidance.push(text)
            }
            (ApprovalKind::Blocked, "retry_strong") => self.strong_alias = true,
            (ApprovalKind::Blocked, "commit_unverified") => self.unverified_allowed = true,
            (ApprovalKind::Clarification, "answer") => {
                let question = a.question.clone();
                self.answers.push((question, text, "a person".into()));
            }
            _ => {}
        }
        self.status = RunStatus::Running;
    }
}
