//! Asking a team: the objective anchor, the brief, context packing within the model's window,
//! the call through the gate and re-asks on malformed replies.

use super::*;
use crate::engine::context::Packed;
use crate::engine::repo_map::RepoMap;
use converse::{Asked, Conversation};

/// The objective anchor: always in the context, in full.
pub(super) fn anchor(run: &RunState, stage: &Stage, team: &Team) -> String {
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

pub(super) fn stage_brief<'a>(
    engine: &Engine,
    run: &RunState,
    stage: &Stage,
    team: &'a Team,
) -> Brief<'a> {
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
        step: stage.name.clone(),
        offline: Some(
            TemplateBrief {
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
            }
            .into_answer(),
        ),
        answer: false,
        bench: None,
    }
}

/// Asks a team through the gate: context packing, the call, re-asks on malformed replies.
pub(in crate::engine) async fn ask_team(
    engine: &Engine,
    run: &RunState,
    brief: &Brief<'_>,
    catalogue: &Catalogue,
) -> Result<Outcome, StoreError> {
    let attribution = Attribution {
        run_id: Some(run.run_id.clone()),
        project: run.project.clone(),
        team: Some(brief.team.name().to_string()),
        objective_id: Some(format!("{}/{}", run.run_id, run.next_index)),
        work_order_id: None,
    };
    let mut events = Vec::new();
    let (packed, repo_map) = context(engine, run, brief, &attribution, &mut events).await?;
    let conversation = Conversation::new(
        Asked {
            engine,
            run,
            brief,
            catalogue,
            repo_map,
        },
        attribution,
        packed,
        events,
    );
    Ok(conversation.until_answered().await)
}

/// The team's context: anchor, identity, the repository map (for teams that see the
/// repository), earlier artifacts and facts of this run, recall of the project's earlier runs
/// (its oldest part summarised when it does not fit); packed within the model's window.
async fn context(
    engine: &Engine,
    run: &RunState,
    brief: &Brief<'_>,
    attribution: &Attribution,
    events: &mut Vec<EventData>,
) -> Result<(Packed, Option<Arc<RepoMap>>), StoreError> {
    let team = brief.team;
    let recall = recall(engine, run, brief).await?;
    let budget = context_budget(engine, &brief.alias);
    let repo_map = if sees_repository(team) {
        engine.repo_map(run).await
    } else {
        None
    };
    let mut parts = ContextParts {
        anchor: brief.anchor.clone(),
        identity: team.identity(),
        repo_map: repo_map
            .as_ref()
            .map(|m| m.render(engine.config.repo_map_tokens.min(budget / 4)))
            .unwrap_or_default(),
        artifacts: earlier_work(run),
        recall,
    };
    if parts.needs_summary(budget) {
        summarise_oldest(engine, run, brief, attribution, &mut parts, events).await;
    }
    Ok((parts.pack(budget), repo_map))
}

/// What the team's bank and the shared bank recall of the project's earlier runs, least
/// relevant first (packing drops from the front).
async fn recall(
    engine: &Engine,
    run: &RunState,
    brief: &Brief<'_>,
) -> Result<Vec<String>, StoreError> {
    let Some(project) = run.project.as_deref() else {
        return Ok(Vec::new());
    };
    let banks = [brief.team.name(), SHARED_BANK];
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
    let mut recall: Vec<String> = crate::engine::memory::recall(
        &engine.store,
        &engine.gateway,
        &query,
        &scope,
        engine.config.recall_k,
    )
    .await?
    .into_iter()
    .map(|hit| format!("[{} · {}] {}", hit.bank, hit.kind, hit.text))
    .collect();
    recall.reverse();
    Ok(recall)
}

/// The artifacts of this run's completed stages, and the facts they verified.
fn earlier_work(run: &RunState) -> Vec<(String, String)> {
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
    artifacts
}

/// Replaces the oldest recall with a summary by the cheap model, retained as memory; left as
/// it is when the call fails (packing then drops what does not fit).
async fn summarise_oldest(
    engine: &Engine,
    run: &RunState,
    brief: &Brief<'_>,
    attribution: &Attribution,
    parts: &mut ContextParts,
    events: &mut Vec<EventData>,
) {
    let oldest = parts.take_oldest_recall();
    let mut request = ModelRequest::new(
        &engine.gateway.routing().cheap_alias,
        vec![
            Message::system(
                "Summarise these notes in at most 10 short bullet points. Keep names, numbers \
                 and decisions; drop repetition.",
            ),
            Message::user(oldest.join("\n")),
        ],
        512,
    );
    request.attribution = attribution.clone();
    request.call_id = Some(format!("{}/summary", brief.call_prefix));
    request.no_templates = run.served_by_model;
    let (reply, ledger) = engine.gateway.complete_deferred(&request).await;
    events.extend(ledger);
    if let Ok(reply) = reply {
        let text = reply.text.trim().to_string();
        parts
            .recall
            .insert(0, format!("[summary of older memory] {text}"));
        events.push(EventData::MemoryRetained {
            item_id: format!("{}/summary", brief.call_prefix),
            bank: brief.team.name().to_string(),
            project: run.project.clone(),
            run_id: Some(run.run_id.clone()),
            kind: "summary".into(),
            text,
        });
    }
}

/// Teams that plan or change code are shown the repository map (and their plans checked
/// against it): solution architecture, QA and every engineering team.
fn sees_repository(team: &Team) -> bool {
    team.settings.kind == TeamKind::Engineering
        || matches!(team.name(), "solution-architecture" | "qa-engineering")
}

/// A clarification must name a real team (asking oneself is refused by the broker), and the
/// files a plan puts in scope must exist in the repository or plainly be new ones.
pub(super) fn check_result(
    result: TaskResult,
    catalogue: &Catalogue,
    map: Option<&RepoMap>,
) -> Result<TaskResult, String> {
    if let Some(map) = map {
        let mut refused = Vec::new();
        for wo in &result.work_orders {
            let check = map.check_files_in_scope(&wo.files_in_scope);
            refused.extend(
                check
                    .invalid
                    .into_iter()
                    .map(|p| format!("work order `{}`: `{}`: {}", wo.id, p.path, p.message)),
            );
        }
        if !refused.is_empty() {
            return Err(format!(
                "files_in_scope names files the repository does not have and could not \
                 plainly create ({}); use the paths in the repository map",
                refused.join("; ")
            ));
        }
    }
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

/// Tokens available for the prompt: the alias's first model's context window, less the
/// output reserved and a 10 % margin for estimation error.
pub(in crate::engine) fn context_budget(engine: &Engine, alias: &str) -> usize {
    let window = engine
        .gateway
        .resolve(alias)
        .ok()
        .and_then(|chain| chain.first().cloned())
        .map_or(crate::config::gateway::DEFAULT_CONTEXT_WINDOW, |entry| {
            engine.gateway.config().capabilities(&entry).context_window
        });
    let usable = (f64::from(window) * 0.9) as usize;
    usable
        .saturating_sub(engine.config.max_output_tokens as usize)
        .max(2_048)
}
