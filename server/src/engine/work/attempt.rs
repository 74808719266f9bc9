//! A work order's conversation with its engineering team: the first prompt holds the work
//! order and its files in scope; the team may run commands in the sandbox between turns
//! (`agent`); its finished answer's change is taken and gated, and a failure goes back into the
//! same conversation — at most the team's `max_iterations` gate rounds.

use std::time::Instant;

use app::events::EventData;
use app::task::{TaskResult, TaskStatus, WorkOrderSpec};

use super::super::catalogue::Team;
use super::super::driver::{Brief, Outcome, ask_team};
use super::super::state::RunState;
use super::agent::WorkOrderBench;
use super::{Ctx, Passed, id8, plan, shown};
use crate::delivery::worktree::Worktree;
use crate::engine::templates::{TemplateBrief, requirement_vars};
use crate::gateway::routing::RoutingDecision;
use crate::store::StoreError;

/// The team's work on a work order, start to a change that passed its gates (or why not).
pub(super) async fn attempts(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    worktree: &Worktree,
    base: &str,
    decision: &RoutingDecision,
    events: &mut Vec<EventData>,
) -> Result<Result<Passed, String>, StoreError> {
    let engine = ctx.engine;
    let started = Instant::now();
    let w = worktree.clone();
    let digest = ctx
        .git(move || w.metadata_digest())
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    let digest = match digest {
        Ok(d) => d,
        Err(e) => {
            return Ok(Err(format!(
                "the worktree's git metadata cannot be read: {e}"
            )));
        }
    };
    let shown = shown::files_in_scope(
        &worktree.path,
        &wo.files_in_scope,
        shown_budget(engine, &decision.alias),
    );
    let bench = WorkOrderBench::new(ctx, wo, worktree, base, started, digest);
    let mut brief = brief(ctx, wo, decision, &shown);
    brief.bench = Some(&bench);
    let (result, cost, model) = match answer(ctx, &brief, decision, events).await? {
        Ok(answered) => answered,
        Err(reason) => return Ok(Err(reason)),
    };
    if result.status != TaskStatus::Complete {
        return Ok(Err(format!(
            "the team answered {}: {}",
            result.status.as_str(),
            result.blockers.join("; ")
        )));
    }
    match bench.take() {
        Some(taken) => Ok(Ok(Passed {
            gates: taken.gates,
            model,
            cost,
            tree: taken.tree,
        })),
        None => Ok(Err(bench
            .last_failure()
            .unwrap_or_else(|| "no change passed the gates".into()))),
    }
}

/// The work order's brief: its anchor (the work order and its files in scope), its routed
/// model, and what the offline template provider writes for it.
fn brief<'a>(
    ctx: &Ctx<'a>,
    wo: &WorkOrderSpec,
    decision: &RoutingDecision,
    shown: &str,
) -> Brief<'a> {
    let (run, team) = (ctx.run, ctx.team);
    let short = id8(&run.run_id, &wo.id);
    let mut vars = requirement_vars(
        &run.goal,
        run.project.as_deref(),
        &wo.id,
        &wo.title,
        &wo.acceptance_criteria,
        &[],
    );
    vars["work_order"] = serde_json::to_value(wo).unwrap_or_default();
    Brief {
        team,
        anchor: plan::anchor(run, wo, shown),
        alias: decision.alias.clone(),
        call_prefix: format!(
            "{}/{}/{}/wo-{short}/0",
            run.run_id, run.started_seq, run.round
        ),
        step: format!("work order {}", wo.id),
        offline: Some(
            TemplateBrief {
                team: team.name().to_string(),
                deliverable: format!("wo-{}.md", wo.id),
                template: format!("# Work order {}: {{{{ work_order.title }}}}\n", wo.id),
                vars,
            }
            .into_answer(),
        ),
        answer: false,
        bench: None,
    }
}

/// Asks the team: its answer, what it cost and which model gave it (the last that finished a
/// call), or why none came. Every event goes to `events`.
async fn answer(
    ctx: &Ctx<'_>,
    brief: &Brief<'_>,
    decision: &RoutingDecision,
    events: &mut Vec<EventData>,
) -> Result<Result<(TaskResult, f64, String), String>, StoreError> {
    Ok(
        match ask_team(ctx.engine, ctx.run, brief, ctx.catalogue).await? {
            Outcome::Answered {
                result,
                events: e,
                cost,
            } => {
                let model = e
                    .iter()
                    .rev()
                    .find_map(|ev| match ev {
                        EventData::ModelCallFinished {
                            provider, model, ..
                        } => Some(format!("{provider}:{model}")),
                        _ => None,
                    })
                    .unwrap_or_else(|| decision.alias.clone());
                events.extend(e);
                Ok((*result, cost, model))
            }
            Outcome::Failed {
                error, events: e, ..
            } => {
                events.extend(e);
                Err(error)
            }
            Outcome::Budget { error, events: e } => {
                events.extend(e);
                Err(error.to_string())
            }
        },
    )
}

/// Bytes of file text the engineer's first prompt may hold: half the prompt's token budget
/// (at three bytes a token, as context packing estimates), at most 256 KiB.
fn shown_budget(engine: &crate::engine::Engine, alias: &str) -> usize {
    (super::super::driver::context_budget(engine, alias) / 2 * 3).min(256 * 1024)
}

/// What the gates said, summarised into the team's memory for later runs of the project.
pub(super) fn gate_memory(
    run: &RunState,
    team: &Team,
    wo: &WorkOrderSpec,
    short: &str,
    outcome: &Result<Passed, String>,
) -> Option<EventData> {
    let text = match outcome {
        Ok(passed) if !passed.gates.is_empty() => format!(
            "work order {} ({}): gates passed — {}",
            wo.id,
            wo.title,
            passed
                .gates
                .iter()
                .map(|g| format!("`{}` in {}", g.command, g.sandbox))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(reason) if reason.contains("gate `") => format!(
            "work order {} ({}): {}",
            wo.id,
            wo.title,
            super::super::driver::summarise(reason, 1_500)
        ),
        _ => return None,
    };
    Some(EventData::MemoryRetained {
        item_id: format!("{}/wo-{short}/gates/{}", run.run_id, run.round),
        bank: team.name().to_string(),
        project: run.project.clone(),
        run_id: Some(run.run_id.clone()),
        kind: "gate".into(),
        text,
    })
}
