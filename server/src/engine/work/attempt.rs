//! A work order's attempts: ask the engineering team, apply its edits, take the change into
//! the repository before any gate runs, run the gates; a failure goes back to the team as
//! feedback and the next attempt starts from a worktree made again at the base.

use app::events::EventData;
use app::task::{TaskStatus, WorkOrderSpec};

use super::super::catalogue::Team;
use super::super::driver::{Brief, Outcome, ask_team};
use super::super::state::RunState;
use super::{Ctx, Passed, gates, id8, plan, shown};
use crate::delivery::edits::apply;
use crate::delivery::worktree::Worktree;
use crate::engine::templates::{TemplateBrief, requirement_vars};
use crate::gateway::routing::RoutingDecision;
use crate::store::StoreError;

/// The team's attempts at a work order: ask, apply the edits, take the change, run the gates;
/// a failure goes back as feedback and the next attempt starts from a worktree made again at
/// the base. At most the team's `max_iterations` attempts.
pub(super) async fn attempts(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    worktree: &Worktree,
    decision: &RoutingDecision,
    events: &mut Vec<EventData>,
) -> Result<Result<Passed, String>, StoreError> {
    let (engine, run, team) = (ctx.engine, ctx.run, ctx.team);
    let short = id8(&run.run_id, &wo.id);
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
    let mut feedback: Option<String> = None;
    let mut outcome: Result<Passed, String> = Err("no attempt was made".into());
    for attempt in 0..team.settings.max_iterations {
        if attempt > 0 {
            // Whatever the last attempt or its gates left is gone: a fresh checkout of the
            // base, never a `git clean` inside a tree sandboxed code wrote.
            let (w, base) = (worktree.clone(), ctx.base.to_string());
            if let Err(e) = ctx
                .git(move || w.recreate(&base))
                .await
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                return Ok(Err(format!("the worktree could not be made again: {e}")));
            }
        }
        let mut vars = requirement_vars(
            &run.goal,
            run.project.as_deref(),
            &wo.id,
            &wo.title,
            &wo.acceptance_criteria,
            &[],
        );
        vars["work_order"] = serde_json::to_value(wo).unwrap_or_default();
        let shown = shown::files_in_scope(
            &worktree.path,
            &wo.files_in_scope,
            shown_budget(engine, &decision.alias),
        );
        let brief = Brief {
            team,
            anchor: plan::anchor(run, wo, &shown, feedback.as_deref()),
            alias: decision.alias.clone(),
            call_prefix: format!(
                "{}/{}/{}/wo-{short}/{attempt}",
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
        };
        let (result, cost, model) = match ask_team(engine, run, &brief, ctx.catalogue).await? {
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
                (*result, cost, model)
            }
            Outcome::Failed {
                error, events: e, ..
            } => {
                events.extend(e);
                return Ok(Err(error));
            }
            Outcome::Budget { error, events: e } => {
                events.extend(e);
                return Ok(Err(error.to_string()));
            }
        };
        if result.status != TaskStatus::Complete {
            return Ok(Err(format!(
                "the team answered {}: {}",
                result.status.as_str(),
                result.blockers.join("; ")
            )));
        }
        let (w, edits, limits) = (worktree.clone(), result.edits.clone(), ctx.edit_limits);
        let taken = ctx
            .git(move || {
                let changed = apply(&w.path, &edits, &limits).map_err(|e| e.to_string())?;
                w.snapshot(&changed).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
        let tree = match taken {
            Ok(Some(tree)) => tree,
            Ok(None) => {
                let f = "the edits changed nothing: send edits that change the files".to_string();
                feedback = Some(f.clone());
                outcome = Err(f);
                continue;
            }
            Err(e) => {
                feedback = Some(format!(
                    "{e}\n\n(The worktree is made again from the base for your next attempt: send \
                     the whole change again.)"
                ));
                outcome = Err(e);
                continue;
            }
        };
        let (summaries, failed) = gates::run(
            ctx.sandbox.as_ref(),
            &worktree.path,
            &ctx.gates,
            &ctx.limits,
            &ctx.disk(),
            "",
        )
        .await;
        let w = worktree.clone();
        let after = ctx.git(move || w.metadata_digest()).await;
        if !matches!(&after, Ok(Ok(d)) if *d == digest) {
            return Ok(Err(
                "the worktree's git metadata changed while a gate ran; the work order is stopped \
                 and nothing of it is committed"
                    .into(),
            ));
        }
        match failed {
            None => {
                return Ok(Ok(Passed {
                    gates: summaries,
                    model,
                    cost,
                    tree,
                }));
            }
            Some(f) => {
                feedback = Some(format!(
                    "{f}\n\n(The worktree is made again from the base for your next attempt: send \
                     the whole change again.)"
                ));
                outcome = Err(f);
            }
        }
    }
    Ok(outcome)
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
