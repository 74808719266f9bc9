//! Driving one run: stage after stage, each a team answering through the TaskResult gate,
//! every step committed (conditionally on the run still being active) with all it caused.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use app::events::{EventData, PlannedStage};
use app::ledger::Attribution;
use app::model::RunStatus;
use app::task::{TaskResult, TaskStatus, parse_task_result, task_result_schema};
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::catalogue::{Catalogue, Team, TeamKind};
use super::context::ContextParts;
use super::pipeline::{self, Stage};
use super::state::RunState;
use crate::gateway::GatewayError;
use crate::gateway::providers::offline::requirement_vars;
use crate::gateway::types::{Message, ModelRequest, OfflineBrief};
use crate::store::memory::{RecallScope, SHARED_BANK};
use crate::store::{NewEvent, StoreError};

/// Actor of the engine's events.
const ACTOR: &str = "engine";

/// How a stage attempt ended.
enum Outcome {
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
            finish(engine, run_id, RunStatus::Failed, reason, vec![]).await?;
            return Ok(());
        }
    };
    let Some(pipeline) = pipelines.get(&run.pipeline).cloned() else {
        let reason = format!(
            "unknown pipeline `{}` (available: {})",
            run.pipeline,
            pipelines.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        finish(engine, run_id, RunStatus::Failed, reason, vec![]).await?;
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
        let first = &pipeline.stages[0];
        let events = vec![
            EventData::RunStarted {
                run_id: run_id.to_string(),
                pipeline: pipeline.name.clone(),
                stages,
            },
            EventData::StageStarted {
                run_id: run_id.to_string(),
                index: 0,
                stage: first.name.clone(),
                team: first.team.clone(),
            },
        ];
        if !commit(engine, run_id, events).await? {
            return Ok(());
        }
        run.started = true;
        run.status = RunStatus::Running;
    }

    while (run.next_index as usize) < pipeline.stages.len() {
        let index = run.next_index;
        let stage = &pipeline.stages[index as usize];
        let Some(team) = catalogue.get(&stage.team) else {
            let reason = format!("stage `{}` names unknown team `{}`", stage.name, stage.team);
            finish(engine, run_id, RunStatus::Failed, reason, vec![]).await?;
            return Ok(());
        };
        if run.iterations >= engine.config.max_iterations_per_run {
            let reason = format!(
                "the run reached its cap of {} stage attempts ([engine] max_iterations_per_run)",
                engine.config.max_iterations_per_run
            );
            finish(engine, run_id, RunStatus::Failed, reason, vec![]).await?;
            return Ok(());
        }
        let outcome = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            outcome = attempt_stage(engine, &run, index, stage, team, &catalogue) => outcome?,
        };
        match outcome {
            Outcome::Answered {
                result,
                mut events,
                cost,
            } => {
                let result = *result;
                let dir = write_artifacts(engine, run_id, index, stage, &result).await;
                let artifact_dir = match dir {
                    Ok(dir) => dir,
                    Err(e) => {
                        let reason = format!("cannot write the artifacts of `{}`: {e}", stage.name);
                        finish(engine, run_id, RunStatus::Failed, reason, events).await?;
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
                let last = index as usize + 1 == pipeline.stages.len();
                match result.status {
                    TaskStatus::Complete => {
                        events.extend(retain(&run, index, team, &result));
                        if last {
                            events.push(EventData::RunFinished {
                                run_id: run_id.to_string(),
                                status: RunStatus::Succeeded,
                                reason: format!(
                                    "all {} stages of `{}` complete",
                                    pipeline.stages.len(),
                                    pipeline.name
                                ),
                            });
                        } else {
                            let next = &pipeline.stages[index as usize + 1];
                            events.push(EventData::StageStarted {
                                run_id: run_id.to_string(),
                                index: index + 1,
                                stage: next.name.clone(),
                                team: next.team.clone(),
                            });
                        }
                    }
                    TaskStatus::NeedsClarification => {
                        let ask = result.clarification_needed.clone();
                        let (target, question) =
                            ask.map(|c| (c.target_team, c.question)).unwrap_or_default();
                        events.push(EventData::RunFinished {
                            run_id: run_id.to_string(),
                            status: RunStatus::Failed,
                            reason: format!(
                                "stage `{}` ({}) needs clarification from `{target}`: {question}",
                                stage.name,
                                team.name()
                            ),
                        });
                    }
                    TaskStatus::Blocked => {
                        events.push(EventData::RunFinished {
                            run_id: run_id.to_string(),
                            status: RunStatus::Failed,
                            reason: format!(
                                "stage `{}` ({}) is BLOCKED: {}",
                                stage.name,
                                team.name(),
                                result.blockers.join("; ")
                            ),
                        });
                    }
                }
                if !commit(engine, run_id, events).await?
                    || result.status != TaskStatus::Complete
                    || last
                {
                    return Ok(());
                }
                run.completed
                    .push((index, stage.name.clone(), team.name().to_string(), result));
                run.next_index += 1;
                run.attempts = 0;
                run.iterations += 1;
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
                let give_up = if permanent {
                    Some(format!(
                        "stage `{}` ({}) failed: {error}",
                        stage.name,
                        team.name()
                    ))
                } else if attempt >= max {
                    Some(format!(
                        "stage `{}` ({}) failed {attempt} times in a row, its limit \
                         (max_iterations in team.toml); last error: {error}",
                        stage.name,
                        team.name()
                    ))
                } else {
                    None
                };
                if let Some(reason) = &give_up {
                    events.push(EventData::RunFinished {
                        run_id: run_id.to_string(),
                        status: RunStatus::Failed,
                        reason: reason.clone(),
                    });
                }
                if !commit(engine, run_id, events).await? || give_up.is_some() {
                    return Ok(());
                }
                run.attempts = attempt;
                run.iterations += 1;
                let wait = backoff(engine, attempt);
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    if !run.status.is_terminal() && run.next_index as usize >= pipeline.stages.len() {
        // Only reachable when a stage list shrank under a resumed run.
        let reason = "every stage of the pipeline is complete".to_string();
        finish(engine, run_id, RunStatus::Succeeded, reason, vec![]).await?;
    }
    Ok(())
}

fn backoff(engine: &Engine, attempt: u32) -> Duration {
    let base = engine.config.backoff_base_ms;
    let ms = base
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(engine.config.backoff_max_ms);
    Duration::from_millis(ms)
}

/// Appends `events` only while the run is still active. Returns whether they were committed.
async fn commit(engine: &Engine, run_id: &str, events: Vec<EventData>) -> Result<bool, StoreError> {
    let id = run_id.to_string();
    let (committed, _) = engine
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
    Ok(committed)
}

async fn finish(
    engine: &Engine,
    run_id: &str,
    status: RunStatus,
    reason: String,
    mut events: Vec<EventData>,
) -> Result<bool, StoreError> {
    tracing::info!(run_id, status = status.as_str(), reason, "run finished");
    events.push(EventData::RunFinished {
        run_id: run_id.to_string(),
        status,
        reason,
    });
    commit(engine, run_id, events).await
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
    format!(
        "# Requirement\n\n{}\n\n# Your objective (stage `{}`)\n\n{objective}\n\n\
         # Acceptance criteria\n\n{criteria}\n\n# Deliver\n\n{deliver}\n\n\
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

async fn attempt_stage(
    engine: &Engine,
    run: &RunState,
    index: u32,
    stage: &Stage,
    team: &Team,
    catalogue: &Catalogue,
) -> Result<Outcome, StoreError> {
    let config = &engine.config;
    let attempt = run.attempts;
    let attribution = Attribution {
        run_id: Some(run.run_id.clone()),
        project: run.project.clone(),
        team: Some(team.name().to_string()),
        objective_id: Some(format!("{}/{index}", run.run_id)),
        work_order_id: None,
    };
    let mut events = Vec::new();

    // Context: anchor, identity, earlier artifacts and facts of this run, recall of the
    // project's earlier runs.
    let objective = stage.objective_for(&run.goal, run.project.as_deref());
    let mut recall = Vec::new();
    if let Some(project) = run.project.as_deref() {
        let banks = [team.name(), SHARED_BANK];
        let scope = RecallScope {
            banks: &banks,
            project: Some(project),
            exclude_run: Some(&run.run_id),
            run_id: None,
        };
        let query = format!("{} {objective}", run.goal);
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
        anchor: anchor(run, stage, team),
        identity: team.identity(),
        artifacts,
        recall,
    };
    let budget = context_budget(engine, &team.settings.alias);
    if parts.needs_summary(budget) {
        let oldest = parts.take_oldest_recall();
        let mut request = ModelRequest::new(
            &engine.gateway.config().routing.cheap_alias,
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
        request.call_id = Some(format!("{}/{index}/{attempt}/summary", run.run_id));
        let (reply, ledger) = engine.gateway.complete_deferred(&request).await;
        events.extend(ledger);
        if let Ok(reply) = reply {
            let text = reply.text.trim().to_string();
            parts
                .recall
                .insert(0, format!("[summary of older memory] {text}"));
            events.push(EventData::MemoryRetained {
                item_id: format!("{}/{index}/{attempt}/summary", run.run_id),
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
        team.settings.kind == TeamKind::Engineering,
        team.name() == "solution-architecture",
    );
    let prior: Vec<(String, String)> = run
        .completed
        .iter()
        .flat_map(|(_, _, team, r)| {
            r.artifacts
                .iter()
                .map(move |a| (team.clone(), a.name.clone()))
        })
        .collect();
    let brief = OfflineBrief {
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
    };
    let mut messages = vec![Message::system(packed.system), Message::user(packed.user)];
    let mut cost = 0.0;
    let mut last_error = String::new();
    for reask in 0..=team.settings.max_reasks {
        let mut request = ModelRequest::new(
            &team.settings.alias,
            messages.clone(),
            config.max_output_tokens,
        );
        request.temperature = Some(0.2);
        request.schema = Some(schema.clone());
        request.attribution = attribution.clone();
        request.call_id = Some(format!("{}/{index}/{attempt}/{reask}", run.run_id));
        request.offline_brief = Some(brief.clone());
        request.caller_parses = true;
        let (reply, ledger) = engine.gateway.complete_deferred(&request).await;
        events.extend(ledger);
        let reply = match reply {
            Ok(reply) => reply,
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
        let parsed = parse_task_result(&reply.text).and_then(|r| check_result(r, catalogue, team));
        match parsed {
            Ok(result) => {
                return Ok(Outcome::Answered {
                    result: Box::new(result),
                    events,
                    cost,
                });
            }
            Err(error) => {
                tracing::info!(run_id = %run.run_id, stage = %stage.name, reask, %error, "malformed TaskResult; asking again");
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

/// Checks a result against the catalogue: a clarification must name another, real team.
fn check_result(
    result: TaskResult,
    catalogue: &Catalogue,
    team: &Team,
) -> Result<TaskResult, String> {
    if let Some(c) = &result.clarification_needed
        && result.status == TaskStatus::NeedsClarification
    {
        if catalogue.get(&c.target_team).is_none() {
            return Err(format!(
                "clarification_needed.target_team `{}` is not a team (teams: {})",
                c.target_team,
                catalogue.names().join(", ")
            ));
        }
        if c.target_team == team.name() {
            return Err(
                "clarification_needed.target_team is your own team: ask another team".into(),
            );
        }
    }
    Ok(result)
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

/// Writes a result's artifacts under `runs/<run>/<NN>-<stage>/` (atomically: temp file, then
/// rename). Returns the directory relative to the data directory.
async fn write_artifacts(
    engine: &Engine,
    run_id: &str,
    index: u32,
    stage: &Stage,
    result: &TaskResult,
) -> std::io::Result<String> {
    let relative = format!("runs/{run_id}/{:02}-{}", index + 1, stage.name);
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
            let target = dir.join(&artifact.name);
            let tmp = dir.join(format!(".{}.tmp", artifact.name));
            std::fs::write(&tmp, artifact.content.as_bytes())?;
            std::fs::rename(&tmp, &target)?;
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
            format!("{}/{index}/fact/{i}", run.run_id),
            team.name(),
            "fact",
            fact.clone(),
        ));
        out.push(item(
            format!("{}/{index}/fact/{i}/shared", run.run_id),
            SHARED_BANK,
            "fact",
            fact,
        ));
    }
    for artifact in &result.artifacts {
        out.push(item(
            format!("{}/{index}/artifact/{}", run.run_id, artifact.name),
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
