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
        // A team with a workbench runs commands on a copy of the repository: only once the
        // last stage is stored.
        if look.is_some()
            && let Flow::Stop = self.settle(run).await?
        {
            return Ok(Flow::Stop);
        }
        brief.bench = look
            .as_ref()
            .map(|l| l as &dyn crate::engine::agent::Workbench);
        let outcome = tokio::select! {
            () = self.cancel.cancelled() => return Ok(Flow::Stop),
            outcome = ask_team(engine, run, &brief, &self.catalogue) => outcome?,
        };
        // What the answer causes (work delivered, files, the next commit) waits for the last
        // stage's commit; should that fail, the answer is dropped with the run's driving.
        if let Flow::Stop = self.settle(run).await? {
            return Ok(Flow::Stop);
        }
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
        let (artifact_dir, files) = match write_artifacts(engine, run, stage, &result) {
            Ok(started) => started,
            Err(e) => {
                let reason = artifacts_failed(&stage.name, e);
                finish(engine, run, RunStatus::Failed, reason, events).await?;
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
        let (committed, durable) = match commit_staged(engine, run, events).await {
            Ok(staged) => staged,
            Err(e) => {
                // Waited for even so: nothing is left writing behind the driver.
                let _ = files.written().await;
                return Err(e);
            }
        };
        // The next stage's team is asked while the commit's fsync and the files go on.
        self.defer(Pending {
            durable,
            files,
            stage: stage.name.clone(),
            committed,
        });
        Ok(Flow::committed(committed))
    }

    /// Whether the next step only asks the next stage's team (see [`Driving::settle`]).
    pub(super) fn asks_next(&self, run: &RunState) -> bool {
        run.awaiting.is_none()
            && run.pending_clarification().is_none()
            && run.iterations < self.engine.config.max_iterations_per_run
            && self
                .pipeline
                .stages
                .get(run.next_index as usize)
                .is_some_and(|s| self.catalogue.get(&s.team).is_some())
    }

    fn defer(&self, pending: Pending) {
        let mut slot = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        debug_assert!(slot.is_none(), "one stage's commit in flight at a time");
        *slot = Some(pending);
    }

    fn take_pending(&self) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Waits for the last completed stage's commit to be durable and its artifact files to be
    /// written. `Err`: the commit failed, and nothing of it (nor of what followed it) is stored.
    /// `Flow::Stop`: the files failed, and the run with them.
    ///
    /// A completed stage's commit does not hold the run up: the stage's events are folded into
    /// the run as soon as they are written inside the transaction, and the next stage's team
    /// is asked (its context packed, the model called) while the `COMMIT`'s fsync goes on. Only
    /// that overlaps it. Whatever the answer causes — work delivered, files, the next commit —
    /// and every other step wait here first, so nothing acts on a stage that is not stored,
    /// and the log's order is the run's.
    pub(super) async fn settle(&self, run: &mut RunState) -> Result<Flow, StoreError> {
        let Some(Pending {
            durable,
            files,
            stage,
            committed,
        }) = self.take_pending()
        else {
            return Ok(Flow::Next);
        };
        let durable = durable.wait().await;
        let written = files.written().await;
        durable?;
        if let Err(e) = written {
            let reason = artifacts_failed(&stage, e);
            if run.status.is_terminal() {
                // The run ended with this stage; the artifacts' text is in its log.
                tracing::error!(run_id = %run.run_id, reason, "after the run ended");
            } else if committed {
                finish(self.engine, run, RunStatus::Failed, reason, vec![]).await?;
            }
            return Ok(Flow::Stop);
        }
        Ok(Flow::Next)
    }

    /// Waits for what is in flight, its outcome aside (the driver is stopping on an error).
    pub(super) async fn abandon(&self) {
        if let Some(pending) = self.take_pending() {
            let _ = pending.durable.wait().await;
            let _ = pending.files.written().await;
        }
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

/// A completed stage's commit on its way to disk, and its artifact files.
pub(super) struct Pending {
    durable: crate::store::Durable,
    files: ArtifactFiles,
    stage: String,
    /// Whether the run was still active, so the events are being committed.
    committed: bool,
}

fn artifacts_failed(stage: &str, e: std::io::Error) -> String {
    format!("cannot write the artifacts of `{stage}`: {e}")
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
