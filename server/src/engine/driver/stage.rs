//! One attempt at a stage: the team asked (with its look at the repository), and what its
//! answer leads to — work orders delivered, artifacts written, the next stage, a question for
//! another team, a person asked — or, when no answer came, a retry after a backoff or a person
//! asked.

use super::*;

impl Driving<'_> {
    /// Asks the stage's team and commits what its answer, failure or budget refusal caused.
    pub(super) async fn stage(
        &self,
        run: &mut RunState,
        stage: &Stage,
        team: &Team,
    ) -> Result<Flow, StoreError> {
        let engine = self.engine;
        let mut brief = stage_brief(engine, run, stage, team);
        let look = super::super::work::Look::open(engine, run, team).await;
        brief.bench = look
            .as_ref()
            .map(|l| l as &dyn crate::engine::agent::Workbench);
        let outcome = tokio::select! {
            () = self.cancel.cancelled() => return Ok(Flow::Stop),
            outcome = ask_team(engine, run, &brief, &self.catalogue) => outcome?,
        };
        match outcome {
            Outcome::Answered {
                result,
                events,
                cost,
            } => {
                let answer = Answer {
                    result: *result,
                    events,
                    cost,
                };
                self.answered(run, stage, team, answer).await
            }
            Outcome::Failed {
                error,
                events,
                permanent,
            } => {
                self.failed(run, stage, team, error, events, permanent)
                    .await
            }
            Outcome::Budget { error, mut events } => {
                events.push(budget_approval(run, run.next_index, stage, team, &error));
                Ok(Flow::committed(commit(engine, run, events).await?))
            }
        }
    }

    /// The team answered: an engineering team's work orders are delivered, the artifacts
    /// written, and the stage completed, with what its status leads to.
    async fn answered(
        &self,
        run: &mut RunState,
        stage: &Stage,
        team: &Team,
        answer: Answer,
    ) -> Result<Flow, StoreError> {
        let (engine, index) = (self.engine, run.next_index);
        let Answer {
            mut result,
            mut events,
            cost,
        } = answer;
        if result.status == TaskStatus::Complete && team.settings.kind == TeamKind::Engineering {
            let orders: Vec<_> = run
                .completed
                .iter()
                .rev()
                .find(|(_, _, _, r)| !r.work_orders.is_empty())
                .map(|(_, _, _, r)| r.work_orders.clone())
                .unwrap_or_default();
            if !orders.is_empty() && run.base_commit.is_some() {
                let work = super::super::work::deliver(
                    engine,
                    run,
                    team,
                    &self.catalogue,
                    &orders,
                    &mut events,
                );
                let delivered = tokio::select! {
                    () = self.cancel.cancelled() => return Ok(Flow::Stop),
                    d = work => d?,
                };
                super::super::work::fold_into(&mut result, delivered);
            }
        }
        let artifacts_failed =
            |e: std::io::Error| format!("cannot write the artifacts of `{}`: {e}", stage.name);
        let (artifact_dir, files) = match write_artifacts(engine, run, stage, &result) {
            Ok(started) => started,
            Err(e) => {
                finish(engine, run, RunStatus::Failed, artifacts_failed(e), events).await?;
                return Ok(Flow::Stop);
            }
        };
        events.push(EventData::StageCompleted {
            run_id: run.run_id.clone(),
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
                events.extend(retain(run, index, team, &result));
                events.extend(after_stage(
                    engine,
                    run,
                    &self.pipeline,
                    index,
                    team,
                    &result,
                ));
            }
            // Committed before the answer is sought: a restart resumes it.
            TaskStatus::NeedsClarification => {
                events.extend(clarification_requested(engine, run, team, &result));
            }
            TaskStatus::Blocked => events.push(stage_blocked(run, stage, team, &result)),
        }
        let committed = commit(engine, run, events).await;
        // Waited for even when the commit failed: nothing is left writing behind the driver.
        let written = files.written().await;
        let committed = committed?;
        if let Err(e) = written {
            let reason = artifacts_failed(e);
            if run.status.is_terminal() {
                // The run ended with this stage; the artifacts' text is in its log.
                tracing::error!(run_id = %run.run_id, reason, "after the run ended");
            } else if committed {
                finish(engine, run, RunStatus::Failed, reason, vec![]).await?;
            }
            return Ok(Flow::Stop);
        }
        Ok(Flow::committed(committed))
    }

    /// No answer came: the attempt is recorded and retried after a backoff, or, when the
    /// failure is permanent or the team's `max_iterations` are used, a person is asked.
    async fn failed(
        &self,
        run: &mut RunState,
        stage: &Stage,
        team: &Team,
        error: String,
        mut events: Vec<EventData>,
        permanent: bool,
    ) -> Result<Flow, StoreError> {
        let (index, attempt) = (run.next_index, run.attempts + 1);
        events.push(EventData::StageAttemptFailed {
            run_id: run.run_id.clone(),
            index,
            stage: stage.name.clone(),
            attempt,
            error: error.clone(),
        });
        let escalate = permanent || attempt >= team.settings.max_iterations;
        if escalate {
            let why = if permanent {
                format!("the model call failed: {error}")
            } else {
                format!(
                    "it failed {attempt} times in a row (max_iterations in team.toml); last \
                     error: {error}"
                )
            };
            let question = format!(
                "Stage `{}` ({}) cannot continue: {why}",
                stage.name,
                team.name()
            );
            events.push(blocked_approval(
                run,
                index,
                stage,
                team,
                question,
                error,
                ErrorType::Api,
            ));
        }
        if !commit(self.engine, run, events).await? || escalate {
            return Ok(Flow::Next);
        }
        let wait = backoff(self.engine, attempt);
        tokio::select! {
            () = self.cancel.cancelled() => Ok(Flow::Stop),
            () = tokio::time::sleep(wait) => Ok(Flow::Next),
        }
    }
}

/// A team's answer through the gate, with what asking it caused and cost.
struct Answer {
    result: TaskResult,
    events: Vec<EventData>,
    cost: f64,
}

/// The question a team's NEEDS_CLARIFICATION answer asks, sent to the broker — or refused
/// with the reason (its own team, an unknown one, the limits), which goes back to the team.
fn clarification_requested(
    engine: &Engine,
    run: &RunState,
    team: &Team,
    result: &TaskResult,
) -> Vec<EventData> {
    let ask = result.clarification_needed.clone().unwrap_or(Ask {
        target_team: String::new(),
        question: String::new(),
    });
    let (index, id) = (run.next_index, uuid::Uuid::now_v7().to_string());
    match refusal(engine, run, team, &ask) {
        Some(reason) => refuse(run, index, team, &id, &ask, 1, reason),
        None => vec![EventData::ClarificationRequested {
            clarification_id: id,
            run_id: run.run_id.clone(),
            index,
            asking_team: team.name().to_string(),
            target_team: ask.target_team,
            question: ask.question,
            depth: 1,
            parent: None,
        }],
    }
}

/// A person asked about a BLOCKED stage (a validation error when the team's answers were
/// malformed, a gate otherwise).
fn stage_blocked(run: &RunState, stage: &Stage, team: &Team, result: &TaskResult) -> EventData {
    let blockers = result.blockers.join("; ");
    let error_type = match blockers.starts_with("malformed TaskResult") {
        true => ErrorType::Validation,
        false => ErrorType::Gate,
    };
    let question = format!(
        "Stage `{}` ({}) is BLOCKED: {blockers}",
        stage.name,
        team.name()
    );
    blocked_approval(
        run,
        run.next_index,
        stage,
        team,
        question,
        result.reasoning.clone(),
        error_type,
    )
}
