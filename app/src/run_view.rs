//! One run as the dashboard shows it, folded from the run's events: stages with their
//! TaskResults, clarifications between teams, approvals, work orders, model calls, the activity
//! feed and the chat. The server folds a run's stored events into it to render the run page
//! and the chat; it keeps the views of recently shown runs and folds only newer events into
//! them when the page is rendered again (events are append-only and the fold deterministic).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalKind, ApprovalOption, Decision};
use crate::events::{Event, EventData};
use crate::model::{GateSummary, RunStatus};
use crate::task::{TaskResult, TaskStatus, WorkOrderSpec};

/// Most feed items kept (older ones are dropped; the audit page has the whole log).
pub const FEED_CAP: usize = 500;
/// Most chat messages kept.
pub const CHAT_CAP: usize = 400;
/// Longest text of a feed item or chat message, in characters.
const TEXT_CAP: usize = 1_200;

/// Where a stage is, as the graph colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    Pending,
    Running,
    /// A person (or another team) must answer before it can go on.
    Waiting,
    Complete,
    Blocked,
    Failed,
    Skipped,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Pending => "pending",
            StageState::Running => "running",
            StageState::Waiting => "waiting",
            StageState::Complete => "complete",
            StageState::Blocked => "blocked",
            StageState::Failed => "failed",
            StageState::Skipped => "skipped",
        }
    }
}

/// A team's answer without the artifacts' contents (those are rendered on demand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultView {
    pub status: TaskStatus,
    pub reasoning: String,
    pub blockers: Vec<String>,
    pub assumptions_made: Vec<String>,
    pub verified_facts: Vec<String>,
    /// `target_team: question`, when the team asked.
    pub question: Option<String>,
    /// Names and sizes of the artifacts.
    pub artifacts: Vec<(String, usize)>,
    /// Paths the team's edits touch.
    pub edited_paths: Vec<String>,
    pub work_orders: Vec<WorkOrderSpec>,
}

impl ResultView {
    fn from_result(r: &TaskResult) -> ResultView {
        ResultView {
            status: r.status,
            reasoning: r.reasoning.clone(),
            blockers: r.blockers.clone(),
            assumptions_made: r.assumptions_made.clone(),
            verified_facts: r.verified_facts.clone(),
            question: r
                .clarification_needed
                .as_ref()
                .map(|c| format!("{}: {}", c.target_team, c.question)),
            artifacts: r
                .artifacts
                .iter()
                .map(|a| (a.name.clone(), a.content.len()))
                .collect(),
            edited_paths: r
                .edits
                .iter()
                .map(|e| match e {
                    crate::task::Edit::Write { path, .. }
                    | crate::task::Edit::Replace { path, .. }
                    | crate::task::Edit::Delete { path } => path.clone(),
                })
                .collect(),
            work_orders: r.work_orders.clone(),
        }
    }
}

/// Model calls summed for a stage, a clarification or a work order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub calls: u32,
    /// `provider:model` of the latest answer.
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl Usage {
    fn add(&mut self, model: &str, input: u32, output: u32, cost: f64) {
        self.calls += 1;
        self.model = Some(model.to_string());
        self.input_tokens += u64::from(input);
        self.output_tokens += u64::from(output);
        self.cost_usd += cost;
    }
}

/// One stage of the run's pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageView {
    pub index: u32,
    pub name: String,
    pub team: String,
    pub state: StageState,
    pub attempts: u32,
    pub error: Option<String>,
    pub result: Option<ResultView>,
    /// Where its artifacts were written, relative to the data directory.
    pub artifact_dir: Option<String>,
    pub usage: Usage,
}

/// A question between teams (an edge of the graph).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClarificationView {
    pub id: String,
    pub index: u32,
    pub asking_team: String,
    pub target_team: String,
    pub question: String,
    pub depth: u32,
    /// `asked`, `answered` or `refused`.
    pub state: String,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub refusal: Option<String>,
    /// The calls the answering team made for it.
    pub usage: Usage,
}

/// An approval of the run, pending or decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub id: String,
    pub index: u32,
    pub kind: ApprovalKind,
    pub question: String,
    pub context: String,
    pub options: Vec<ApprovalOption>,
    pub created_at: String,
    pub decision: Option<Decision>,
}

impl ApprovalView {
    pub fn is_pending(&self) -> bool {
        self.decision.is_none()
    }
}

/// A work order: planned by architecture, then delivered on its branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrderView {
    pub id: String,
    pub title: String,
    pub risk: Option<crate::ledger::Risk>,
    /// `planned` or `delivered`.
    pub state: String,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub pull_request: Option<String>,
    pub pushed: bool,
    pub files: Vec<String>,
    pub gates: Vec<GateSummary>,
    pub model: Option<String>,
    pub cost_usd: f64,
}

/// One line of the activity feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedItem {
    pub seq: i64,
    pub ts: String,
    pub kind: String,
    pub team: Option<String>,
    pub text: String,
}

/// Who speaks in the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", content = "name", rename_all = "snake_case")]
pub enum Speaker {
    /// The person who asked (the requirement, answers, decisions).
    User,
    /// A team.
    Team(String),
    /// Factory itself (run started, a person is needed, run finished).
    Factory,
}

/// One message of a run's conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub seq: i64,
    pub ts: String,
    pub from: Speaker,
    pub text: String,
    /// The approval this message asks for, shown with its buttons while pending.
    pub approval_id: Option<String>,
}

/// A team of the catalogue as the graph needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamCard {
    pub name: String,
    pub title: String,
    pub operatives: Vec<String>,
}

/// The whole run as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub id: String,
    pub goal: String,
    pub project: Option<String>,
    pub pipeline: String,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub created_at: String,
    pub base_commit: Option<String>,
    /// How often the final review sent the run back (0 for the first pass).
    pub revision: u32,
    pub stages: Vec<StageView>,
    pub clarifications: Vec<ClarificationView>,
    pub approvals: Vec<ApprovalView>,
    pub work_orders: Vec<WorkOrderView>,
    pub feed: VecDeque<FeedItem>,
    pub chat: VecDeque<ChatMessage>,
    /// Every call attributed to the run.
    pub usage: Usage,
    /// The teams of the catalogue (for operatives and titles); filled by the server.
    pub teams: Vec<TeamCard>,
    /// The last event folded in: live events after it are applied, older ones ignored.
    pub last_seq: i64,
    /// True when the run has more events than the server folded for the page.
    pub truncated: bool,
}

fn cut(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= TEXT_CAP {
        return text.to_string();
    }
    let mut out: String = text.chars().take(TEXT_CAP).collect();
    out.push('…');
    out
}

impl RunView {
    /// An empty view of run `id`; events fill it in.
    pub fn new(id: &str) -> RunView {
        RunView {
            id: id.to_string(),
            goal: String::new(),
            project: None,
            pipeline: "default".into(),
            status: RunStatus::Queued,
            reason: None,
            created_at: String::new(),
            base_commit: None,
            revision: 0,
            stages: Vec::new(),
            clarifications: Vec::new(),
            approvals: Vec::new(),
            work_orders: Vec::new(),
            feed: VecDeque::new(),
            chat: VecDeque::new(),
            usage: Usage::default(),
            teams: Vec::new(),
            last_seq: 0,
            truncated: false,
        }
    }

    /// Folds a run's events, in order.
    pub fn fold<'a>(id: &str, events: impl IntoIterator<Item = &'a Event>) -> RunView {
        let mut view = RunView::new(id);
        for event in events {
            view.apply(event);
        }
        view
    }

    /// The stage a running or waiting run is on.
    pub fn current_stage(&self) -> Option<&StageView> {
        self.stages
            .iter()
            .find(|s| matches!(s.state, StageState::Running | StageState::Waiting))
    }

    /// Approvals still waiting for a person.
    pub fn pending_approvals(&self) -> impl Iterator<Item = &ApprovalView> {
        self.approvals.iter().filter(|a| a.is_pending())
    }

    /// Teams and kinds present in the feed (for its filters), sorted.
    pub fn feed_filters(&self) -> (Vec<String>, Vec<String>) {
        let mut teams: Vec<String> = self.feed.iter().filter_map(|f| f.team.clone()).collect();
        let mut kinds: Vec<String> = self.feed.iter().map(|f| f.kind.clone()).collect();
        teams.sort();
        teams.dedup();
        kinds.sort();
        kinds.dedup();
        (teams, kinds)
    }

    /// Folds one event of this run. Events at or before `last_seq` and other runs' events
    /// are ignored, so a live event that overlaps the first paint is applied once.
    /// Returns true when the view changed.
    pub fn apply(&mut self, event: &Event) -> bool {
        if event.seq <= self.last_seq || event.data.run_id() != Some(self.id.as_str()) {
            return false;
        }
        self.last_seq = event.seq;
        let team = self.fold_data(event);
        self.push_feed(event, team);
        true
    }

    fn stage_mut(&mut self, index: u32) -> Option<&mut StageView> {
        self.stages.iter_mut().find(|s| s.index == index)
    }

    fn say(&mut self, event: &Event, from: Speaker, text: String, approval: Option<String>) {
        self.chat.push_back(ChatMessage {
            seq: event.seq,
            ts: event.ts.clone(),
            from,
            text: cut(&text),
            approval_id: approval,
        });
        while self.chat.len() > CHAT_CAP {
            self.chat.pop_front();
        }
    }

    /// Applies the event's meaning; returns the team it concerns, for the feed.
    fn fold_data(&mut self, event: &Event) -> Option<String> {
        match &event.data {
            EventData::RunCreated {
                goal,
                project,
                pipeline,
                ..
            } => {
                self.goal = goal.clone();
                self.project = project.clone();
                self.pipeline = pipeline.clone().unwrap_or_else(|| "default".into());
                self.created_at = event.ts.clone();
                self.say(event, Speaker::User, goal.clone(), None);
                None
            }
            EventData::RunStarted {
                pipeline,
                stages,
                base_commit,
                ..
            } => {
                self.status = RunStatus::Running;
                self.pipeline = pipeline.clone();
                self.base_commit = base_commit.clone();
                self.stages = stages
                    .iter()
                    .enumerate()
                    .map(|(i, s)| StageView {
                        index: i as u32,
                        name: s.name.clone(),
                        team: s.team.clone(),
                        state: StageState::Pending,
                        attempts: 0,
                        error: None,
                        result: None,
                        artifact_dir: None,
                        usage: Usage::default(),
                    })
                    .collect();
                let names: Vec<&str> = stages.iter().map(|s| s.team.as_str()).collect();
                self.say(
                    event,
                    Speaker::Factory,
                    format!(
                        "Run started with the {pipeline} pipeline: {}.",
                        names.join(" → ")
                    ),
                    None,
                );
                None
            }
            EventData::StageStarted { index, team, .. } => {
                self.status = RunStatus::Running;
                if let Some(stage) = self.stage_mut(*index) {
                    stage.state = StageState::Running;
                    stage.error = None;
                }
                Some(team.clone())
            }
            EventData::StageAttemptFailed {
                index,
                attempt,
                error,
                ..
            } => self.stage_mut(*index).map(|stage| {
                stage.attempts = *attempt;
                stage.error = Some(error.clone());
                stage.team.clone()
            }),
            EventData::StageCompleted {
                index,
                team,
                status,
                result,
                artifact_dir,
                ..
            } => {
                if let Some(stage) = self.stage_mut(*index) {
                    stage.state = match status {
                        TaskStatus::Complete => StageState::Complete,
                        TaskStatus::NeedsClarification => StageState::Waiting,
                        TaskStatus::Blocked => StageState::Blocked,
                    };
                    stage.result = Some(ResultView::from_result(result));
                    stage.artifact_dir = Some(artifact_dir.clone());
                }
                if !result.work_orders.is_empty() {
                    for spec in &result.work_orders {
                        if !self.work_orders.iter().any(|w| w.id == spec.id) {
                            self.work_orders.push(WorkOrderView {
                                id: spec.id.clone(),
                                title: spec.title.clone(),
                                risk: Some(spec.risk),
                                state: "planned".into(),
                                branch: None,
                                commit: None,
                                pull_request: None,
                                pushed: false,
                                files: spec.files_in_scope.clone(),
                                gates: vec![],
                                model: None,
                                cost_usd: 0.0,
                            });
                        }
                    }
                }
                let text = match status {
                    TaskStatus::Complete => format!("Done. {}", result.reasoning),
                    TaskStatus::NeedsClarification => format!(
                        "I need an answer first. {}",
                        result
                            .clarification_needed
                            .as_ref()
                            .map(|c| c.question.as_str())
                            .unwrap_or(&result.reasoning)
                    ),
                    TaskStatus::Blocked => {
                        format!("Blocked: {}", result.blockers.join("; "))
                    }
                };
                self.say(event, Speaker::Team(team.clone()), text, None);
                Some(team.clone())
            }
            EventData::StageSkipped { index, reason, .. } => self.stage_mut(*index).map(|stage| {
                stage.state = StageState::Skipped;
                stage.error = Some(reason.clone());
                stage.team.clone()
            }),
            EventData::RunFinished { status, reason, .. } => {
                self.status = *status;
                self.reason = Some(reason.clone());
                for stage in &mut self.stages {
                    if matches!(stage.state, StageState::Running | StageState::Waiting) {
                        stage.state = if *status == RunStatus::Failed {
                            StageState::Failed
                        } else {
                            StageState::Pending
                        };
                    }
                }
                let text = format!("Run {}: {reason}", status.as_str().replace('_', " "));
                self.say(event, Speaker::Factory, text, None);
                None
            }
            EventData::ApprovalRequested {
                approval_id,
                index,
                kind,
                question,
                context,
                options,
                ..
            } => {
                self.status = RunStatus::WaitingForHuman;
                if !self.approvals.iter().any(|a| &a.id == approval_id) {
                    self.approvals.push(ApprovalView {
                        id: approval_id.clone(),
                        index: *index,
                        kind: *kind,
                        question: question.clone(),
                        context: context.clone(),
                        options: options.clone(),
                        created_at: event.ts.clone(),
                        decision: None,
                    });
                }
                let team = self.stage_mut(*index).map(|stage| {
                    if stage.state == StageState::Running {
                        stage.state = StageState::Waiting;
                    }
                    stage.team.clone()
                });
                self.say(
                    event,
                    Speaker::Factory,
                    format!("A person is needed ({}): {question}", kind.as_str()),
                    Some(approval_id.clone()),
                );
                team
            }
            EventData::ApprovalDecided {
                approval_id,
                option,
                text,
                decided_by,
                automatic,
                policy,
                ..
            } => {
                let mut index = None;
                if let Some(a) = self.approvals.iter_mut().find(|a| &a.id == approval_id) {
                    a.decision = Some(Decision {
                        option: option.clone(),
                        text: text.clone(),
                        decided_by: decided_by.clone(),
                        decided_at: event.ts.clone(),
                        automatic: *automatic,
                        policy: policy.clone(),
                    });
                    index = Some(a.index);
                }
                if self.pending_approvals().next().is_none() && !self.status.is_terminal() {
                    self.status = RunStatus::Running;
                }
                let label = self
                    .approvals
                    .iter()
                    .find(|a| &a.id == approval_id)
                    .and_then(|a| a.options.iter().find(|o| &o.id == option))
                    .map_or(option.clone(), |o| o.label.clone());
                let words = text
                    .as_deref()
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default();
                let from = if *automatic {
                    Speaker::Factory
                } else {
                    Speaker::User
                };
                let by = policy
                    .as_deref()
                    .map(|p| format!(" (policy {p})"))
                    .unwrap_or_default();
                self.say(event, from, format!("{label}{words}{by}"), None);
                index.and_then(|i| {
                    let stage = self.stage_mut(i)?;
                    if stage.state == StageState::Waiting {
                        stage.state = StageState::Running;
                    }
                    Some(stage.team.clone())
                })
            }
            EventData::ClarificationRequested {
                clarification_id,
                index,
                asking_team,
                target_team,
                question,
                depth,
                ..
            } => {
                if !self
                    .clarifications
                    .iter()
                    .any(|c| &c.id == clarification_id)
                {
                    self.clarifications.push(ClarificationView {
                        id: clarification_id.clone(),
                        index: *index,
                        asking_team: asking_team.clone(),
                        target_team: target_team.clone(),
                        question: question.clone(),
                        depth: *depth,
                        state: "asked".into(),
                        answer: None,
                        answered_by: None,
                        refusal: None,
                        usage: Usage::default(),
                    });
                }
                if let Some(stage) = self.stage_mut(*index)
                    && stage.state == StageState::Running
                {
                    stage.state = StageState::Waiting;
                }
                self.say(
                    event,
                    Speaker::Team(asking_team.clone()),
                    format!("Question for {target_team}: {question}"),
                    None,
                );
                Some(asking_team.clone())
            }
            EventData::ClarificationAnswered {
                clarification_id,
                answer,
                answered_by,
                ..
            } => {
                if let Some(c) = self
                    .clarifications
                    .iter_mut()
                    .find(|c| &c.id == clarification_id)
                {
                    c.state = "answered".into();
                    c.answer = Some(answer.clone());
                    c.answered_by = Some(answered_by.clone());
                }
                let person = self
                    .clarifications
                    .iter()
                    .find(|c| &c.id == clarification_id)
                    .is_some_and(|c| &c.target_team != answered_by);
                let from = if person {
                    Speaker::User
                } else {
                    Speaker::Team(answered_by.clone())
                };
                self.say(event, from, format!("Answer: {answer}"), None);
                Some(answered_by.clone())
            }
            EventData::ClarificationRefused {
                clarification_id,
                reason,
                ..
            } => {
                let mut team = None;
                if let Some(c) = self
                    .clarifications
                    .iter_mut()
                    .find(|c| &c.id == clarification_id)
                {
                    c.state = "refused".into();
                    c.refusal = Some(reason.clone());
                    team = Some(c.asking_team.clone());
                }
                self.say(
                    event,
                    Speaker::Factory,
                    format!("No team could answer ({reason}); a person is asked instead."),
                    None,
                );
                team
            }
            EventData::WorkOrderDelivered {
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
                ..
            } => {
                let delivered = WorkOrderView {
                    id: work_order_id.clone(),
                    title: title.clone(),
                    risk: None,
                    state: "delivered".into(),
                    branch: Some(branch.clone()),
                    commit: Some(commit.clone()),
                    pull_request: pull_request.clone(),
                    pushed: *pushed,
                    files: files.clone(),
                    gates: gates.clone(),
                    model: Some(model.clone()),
                    cost_usd: *cost_usd,
                };
                match self.work_orders.iter_mut().find(|w| &w.id == work_order_id) {
                    Some(w) => {
                        let risk = w.risk;
                        *w = WorkOrderView { risk, ..delivered };
                    }
                    None => self.work_orders.push(delivered),
                }
                let team = self
                    .stages
                    .iter()
                    .find(|s| s.state == StageState::Running)
                    .map(|s| s.team.clone());
                self.say(
                    event,
                    Speaker::Team(team.clone().unwrap_or_else(|| "engineering".into())),
                    format!("Delivered {title} on {branch} ({})", short(commit)),
                    None,
                );
                team
            }
            EventData::WorkOrderPublished {
                work_order_id,
                branch,
                pushed,
                pull_request,
                error,
                ..
            } => {
                if let Some(w) = self.work_orders.iter_mut().find(|w| &w.id == work_order_id) {
                    w.pushed = *pushed;
                    w.pull_request = pull_request.clone();
                }
                let text = match (error, pull_request) {
                    (Some(e), _) => format!("Could not publish {branch}: {e}"),
                    (None, Some(pr)) => format!("Published {branch} after review: {pr}"),
                    (None, None) => format!("Pushed {branch} after review"),
                };
                self.say(event, Speaker::Factory, text, None);
                None
            }
            EventData::RunRevised {
                revision, feedback, ..
            } => {
                self.revision = *revision;
                for stage in &mut self.stages {
                    stage.state = StageState::Pending;
                    stage.attempts = 0;
                    stage.error = None;
                }
                self.say(
                    event,
                    Speaker::Factory,
                    format!("Revision {revision}: the pipeline starts again with: {feedback}"),
                    None,
                );
                None
            }
            EventData::ModelCallFinished {
                call_id,
                attribution,
                provider,
                model,
                input_tokens,
                output_tokens,
                cost_usd,
                ..
            } => {
                let name = format!("{provider}:{model}");
                self.usage
                    .add(&name, *input_tokens, *output_tokens, *cost_usd);
                if let Some(c) = self
                    .clarifications
                    .iter_mut()
                    .find(|c| call_id.contains(c.id.as_str()))
                {
                    c.usage.add(&name, *input_tokens, *output_tokens, *cost_usd);
                } else if let Some(index) = attribution
                    .objective_id
                    .as_deref()
                    .and_then(|o| o.rsplit('/').next())
                    .and_then(|i| i.parse::<u32>().ok())
                    && let Some(stage) = self.stage_mut(index)
                {
                    stage
                        .usage
                        .add(&name, *input_tokens, *output_tokens, *cost_usd);
                }
                attribution.team.clone()
            }
            EventData::ModelCallStarted { attribution, .. }
            | EventData::ModelCallFailed { attribution, .. }
            | EventData::RoutingDecided { attribution, .. } => attribution.team.clone(),
            EventData::MemoryRetained { bank, .. } => Some(bank.clone()),
            _ => None,
        }
    }

    fn push_feed(&mut self, event: &Event, team: Option<String>) {
        self.feed.push_back(FeedItem {
            seq: event.seq,
            ts: event.ts.clone(),
            kind: event.data.kind().to_string(),
            team,
            text: cut(&crate::api::insight::event_summary(&event.data)),
        });
        while self.feed.len() > FEED_CAP {
            self.feed.pop_front();
        }
    }
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

#[cfg(test)]
mod tests;
