//! What each event means for the run's view: its stages, clarifications, approvals, work
//! orders, chat and usage.

use super::*;

impl RunView {
    /// Applies the event's meaning; returns the team it concerns, for the feed.
    pub(super) fn fold_data(&mut self, event: &Event) -> Option<String> {
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
                                commands: 0,
                                stacked_on: spec.dependencies.clone(),
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
                stacked_on,
                ..
            } => {
                let delivered = WorkOrderView {
                    stacked_on: stacked_on.clone(),
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
                    commands: 0,
                };
                match self.work_orders.iter_mut().find(|w| &w.id == work_order_id) {
                    Some(w) => {
                        let (risk, commands) = (w.risk, w.commands);
                        *w = WorkOrderView {
                            risk,
                            commands,
                            ..delivered
                        };
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
            EventData::BranchPushed {
                work_order_id,
                branch,
                replaced,
                ..
            } => {
                if let Some(w) = self.work_orders.iter_mut().find(|w| &w.id == work_order_id) {
                    w.pushed = true;
                }
                let text = match replaced {
                    Some(old) => format!("Pushed {branch}, replacing {}", short(old)),
                    None => format!("Pushed {branch}"),
                };
                self.say(event, Speaker::Factory, text, None);
                None
            }
            EventData::DependenciesPrepared {
                tool,
                command,
                cached,
                exit_code,
                tail,
                ..
            } => {
                let text = match (cached, exit_code) {
                    (true, _) => {
                        format!("Dependencies ({tool}) already prepared for this lock file")
                    }
                    (false, Some(0)) => format!("Prepared dependencies: {command}"),
                    (false, _) => format!(
                        "Preparing dependencies failed ({command}); gates run without them:\n{tail}"
                    ),
                };
                self.say(event, Speaker::Factory, text, None);
                None
            }
            EventData::PullRequestOpened {
                work_order_id,
                url,
                updated,
                ..
            } => {
                if let Some(w) = self.work_orders.iter_mut().find(|w| &w.id == work_order_id) {
                    w.pull_request = Some(url.clone());
                }
                let what = if *updated { "Updated" } else { "Opened" };
                self.say(
                    event,
                    Speaker::Factory,
                    format!("{what} pull request {url}"),
                    None,
                );
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
                offline,
                ..
            } => {
                let name = format!("{provider}:{model}");
                if *offline {
                    self.served_by.templates = true;
                } else if !self.served_by.models.contains(&name) {
                    self.served_by.models.push(name.clone());
                }
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
            EventData::CommandRun {
                team,
                work_order_id,
                ..
            } => {
                if let Some(w) = self
                    .work_orders
                    .iter_mut()
                    .find(|w| Some(&w.id) == work_order_id.as_ref())
                {
                    w.commands += 1;
                }
                Some(team.clone())
            }
            _ => None,
        }
    }
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}
