//! One run as the dashboard shows it, folded from the run's events: stages with their
//! TaskResults, clarifications between teams, approvals, work orders, model calls, the activity
//! feed and the chat. The server folds a run's stored events into it to render the run page
//! and the chat; it keeps the views of recently shown runs and folds only newer events into
//! them when the page is rendered again (events are append-only and the fold deterministic).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalKind, ApprovalOption, Decision};
use crate::dto::{GateSummary, RunStatus};
use crate::events::{Event, EventData};
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

/// What answered a run's model calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServedBy {
    /// `provider:model` of every model that answered, in the order they first did.
    pub models: Vec<String>,
    /// The offline templates answered at least one call.
    pub templates: bool,
}

impl ServedBy {
    /// One line for the run page: which models, or that templates (no model) answered.
    pub fn label(&self) -> String {
        const TEMPLATES: &str = "offline templates (no model)";
        match (self.models.is_empty(), self.templates) {
            (true, false) => "no model call yet".into(),
            (true, true) => TEMPLATES.into(),
            (false, false) => format!("model: {}", self.models.join(", ")),
            (false, true) => format!("model: {} and {TEMPLATES}", self.models.join(", ")),
        }
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
    /// Shell commands its engineering team ran in the sandbox (agent turns).
    #[serde(default)]
    pub commands: u32,
    /// The work orders whose delivered change it starts from.
    #[serde(default)]
    pub stacked_on: Vec<String>,
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
    /// What answered the run's calls: models, or the offline templates.
    pub served_by: ServedBy,
    /// The teams of the catalogue (for operatives and titles); filled by the server.
    pub teams: Vec<TeamCard>,
    /// The last event folded in: live events after it are applied, older ones ignored.
    pub last_seq: i64,
    /// True when the run has more events than the server folded for the page.
    pub truncated: bool,
    /// A model streaming one of the run's replies now (not from events: filled by the server
    /// when it renders the page, then kept current by the page's live link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<crate::protocol::StageStream>,
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
            served_by: ServedBy::default(),
            teams: Vec::new(),
            last_seq: 0,
            truncated: false,
            streaming: None,
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

    fn push_feed(&mut self, event: &Event, team: Option<String>) {
        self.feed.push_back(FeedItem {
            seq: event.seq,
            ts: event.ts.clone(),
            kind: event.data.kind().to_string(),
            team,
            text: cut(&crate::server_fns::audit::event_summary(&event.data)),
        });
        while self.feed.len() > FEED_CAP {
            self.feed.pop_front();
        }
    }
}

mod fold;

#[cfg(test)]
mod tests;
