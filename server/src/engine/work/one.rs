//! One work order, start to finish: routed, given its own worktree and branch, worked by the
//! team until its gates pass (`attempt`), committed with its trailers — replayed onto the
//! project's branch when that moved, and gated again — and published when the project's policy
//! says at delivery; rolled back (worktree removed, branch deleted) when it fails.

use app::dto::GateSummary;
use app::events::EventData;
use app::ledger::Attribution;
use app::task::WorkOrderSpec;

use super::stack::Start;
use super::unverified::{unverified, unverified_note, verified_trailer};
use super::{Ctx, Delivered, attempt, gates, id8, land};
use crate::delivery::worktree::{Worktree, slug};
use crate::gateway::routing::{RoutingDecision, RoutingInput};
use crate::store::StoreError;

/// A work order whose gates passed: what ran, who answered, and the change's tree.
pub(super) struct Passed {
    pub(super) gates: Vec<GateSummary>,
    pub(super) model: String,
    pub(super) cost: f64,
    pub(super) tree: git2::Oid,
}

/// One work order, start to finish; its events, and what it delivered or why it failed (rolled
/// back).
pub(super) async fn deliver_one(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    start: &Start,
) -> Result<(Vec<EventData>, Result<Delivered, String>), StoreError> {
    let run = ctx.run;
    let mut events = Vec::new();
    let short = id8(&run.run_id, &wo.id);
    let decision = route(ctx, wo).await;
    let branch = format!("feature/wo-{short}-{}", slug(&wo.title));
    let worktree = match worktree(ctx, wo, start, &short, &branch).await {
        Ok(w) => w,
        Err(reason) => return Ok((events, Err(reason))),
    };
    let unverified = match unverified(ctx, &worktree).await {
        Ok(u) => u,
        Err(reason) => {
            roll_back(ctx, &worktree, &branch).await;
            return Ok((events, Err(format!("work order `{}` {reason}", wo.id))));
        }
    };
    let outcome =
        attempt::attempts(ctx, wo, &worktree, &start.base, &decision, &mut events).await?;
    events.extend(attempt::gate_memory(run, ctx.team, wo, &short, &outcome));
    let landed = match outcome {
        Ok(passed) => {
            let landing = Landing {
                wo,
                start,
                short: &short,
                worktree: &worktree,
                decision: &decision,
                unverified,
            };
            land_one(ctx, &landing, passed).await
        }
        Err(e) => Err(e),
    };
    ctx.sandbox.release(&worktree.path).await;
    match landed {
        Ok((delivered, event)) => {
            // Kept for inspection when [engine] worktree_retention_secs is set (collected at start
            // once older than that); removed at once otherwise.
            if ctx.engine.config.worktree_retention_secs == 0 {
                let w = worktree.clone();
                let _ = ctx.git(move || w.remove()).await;
            }
            events.push(event);
            Ok((events, Ok(delivered)))
        }
        Err(reason) => {
            roll_back(ctx, &worktree, &branch).await;
            Ok((
                events,
                Err(format!(
                    "work order `{}` ({}) failed and was rolled back: {reason}",
                    wo.id, wo.title
                )),
            ))
        }
    }
}

/// The work order's model, by its complexity and risk (recorded by the gateway).
async fn route(ctx: &Ctx<'_>, wo: &WorkOrderSpec) -> RoutingDecision {
    let run = ctx.run;
    let attribution = Attribution {
        run_id: Some(run.run_id.clone()),
        project: run.project.clone(),
        team: Some(ctx.team.name().to_string()),
        objective_id: Some(format!("{}/{}", run.run_id, run.next_index)),
        work_order_id: Some(wo.id.clone()),
    };
    let text = format!("{} {}", wo.title, wo.description);
    ctx.engine
        .gateway
        .route(
            &attribution,
            &RoutingInput {
                files_in_scope: wo.files_in_scope.len() as u32,
                risk: wo.risk,
                has_acceptance_criteria: !wo.acceptance_criteria.is_empty(),
                text: &text,
            },
        )
        .await
}

/// The work order's worktree on its own branch from its start, unless the worktrees are over
/// their disk budget.
async fn worktree(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    start: &Start,
    short: &str,
    branch: &str,
) -> Result<Worktree, String> {
    let config = &ctx.engine.config;
    let root_dir = ctx.worktrees.clone();
    let used = tokio::task::spawn_blocking(move || gates::disk_usage(&root_dir))
        .await
        .unwrap_or(0);
    if used > config.worktree_disk_budget_mb.saturating_mul(1024 * 1024) {
        return Err(format!(
            "worktrees use {} MiB, over their budget of {} MiB ([engine] worktree_disk_budget_mb)",
            used / (1024 * 1024),
            config.worktree_disk_budget_mb
        ));
    }
    let (repo, worktrees, name, base, b) = (
        ctx.root.to_path_buf(),
        ctx.worktrees.clone(),
        format!("wo-{short}"),
        start.base.clone(),
        branch.to_string(),
    );
    ctx.git(move || Worktree::create(&repo, &worktrees, &name, &base, &b))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| format!("work order `{}`: cannot make its worktree: {e}", wo.id))
}

/// Removes a failed work order's worktree and branch (the worktree is only ever removed,
/// never cleaned).
pub(super) async fn roll_back(ctx: &Ctx<'_>, worktree: &Worktree, branch: &str) {
    let (w, root, b) = (worktree.clone(), ctx.root.to_path_buf(), branch.to_string());
    let _ = ctx
        .git(move || {
            let _ = w.remove();
            Worktree::delete_branch(&root, &b)
        })
        .await;
}

/// Where a passed work order lands and how it was verified.
struct Landing<'a> {
    wo: &'a WorkOrderSpec,
    start: &'a Start,
    short: &'a str,
    worktree: &'a Worktree,
    decision: &'a RoutingDecision,
    /// Why it may be committed with no gate, when it has none.
    unverified: Option<String>,
}

/// Commits a passed work order on its branch, publishes it when the project's policy says at
/// delivery, and returns the delivery and its event.
async fn land_one(
    ctx: &Ctx<'_>,
    landing: &Landing<'_>,
    passed: Passed,
) -> Result<(Delivered, EventData), String> {
    let (run, wo, worktree) = (ctx.run, landing.wo, landing.worktree);
    let (commit, gates_run) = commit(ctx, landing, &passed).await?;
    let w = worktree.clone();
    let files = ctx
        .git(move || w.changed_files())
        .await?
        .unwrap_or_default();
    let published = match &ctx.publisher {
        Some(publisher) => Some(publish(ctx, publisher, landing, &passed, &commit, &files).await?),
        None => None,
    };
    let pull_request = published.as_ref().and_then(|p| p.pull_request.clone());
    let event = EventData::WorkOrderDelivered {
        run_id: run.run_id.clone(),
        work_order_id: wo.id.clone(),
        title: wo.title.clone(),
        branch: worktree.branch.clone(),
        commit: commit.clone(),
        files: files.clone(),
        gates: gates_run,
        model: passed.model,
        cost_usd: passed.cost,
        pushed: published.as_ref().is_some_and(|p| p.pushed),
        pull_request: pull_request.clone(),
        published_by_policy: published
            .map(|_| format!("{} (the project's policy)", ctx.policy.publish.as_str())),
        stacked_on: landing.start.stacked_on.clone(),
        unverified: landing.unverified.clone(),
    };
    let delivered = Delivered {
        id: wo.id.clone(),
        title: wo.title.clone(),
        branch: worktree.branch.clone(),
        commit,
        files,
        pull_request,
    };
    Ok((delivered, event))
}

/// Commits the change with its trailers. When the project's branch moved since the base, the
/// change is replayed onto the new head and gated again; a conflict or a failing gate fails
/// the work order. (A stacked work order starts from its dependencies, which were replayed
/// already.) The commit, and every gate that ran.
async fn commit(
    ctx: &Ctx<'_>,
    landing: &Landing<'_>,
    passed: &Passed,
) -> Result<(String, Vec<GateSummary>), String> {
    let (run, wo, worktree) = (ctx.run, landing.wo, landing.worktree);
    let (model, cost) = (&passed.model, passed.cost);
    let message = format!(
        "WO-{}: {}\n\n{}\n\nFactory-Run: {}\nFactory-Work-Order: {}\nFactory-Stage: {}\nFactory-Revision: {}\nFactory-Model: {model}\nFactory-Cost-USD: {cost:.6}\n{}",
        landing.short,
        wo.title,
        wo.description,
        run.run_id,
        wo.id,
        run.next_index,
        run.revision,
        verified_trailer(landing.unverified.as_deref())
    );
    let (w, tree) = (worktree.clone(), passed.tree);
    let mut commit = ctx
        .git(move || w.commit_tree(tree, &message))
        .await?
        .map_err(|e| e.to_string())?;
    let mut gates_run = passed.gates.clone();
    let (root, base) = (ctx.root.to_path_buf(), ctx.base.to_string());
    let head = ctx
        .git(move || crate::delivery::worktree::head_commit(&root))
        .await?;
    if let Ok(head) = head
        && landing.start.stacked_on.is_empty()
        && head != base
    {
        let w = worktree.clone();
        commit = ctx
            .git(move || w.rebase_onto(&head))
            .await?
            .map_err(|e| format!("the project's branch moved since the run started and {e}"))?;
        let (more, failed) = gates::run(
            ctx.sandbox.as_ref(),
            &worktree.path,
            &ctx.gates,
            &ctx.limits,
            &ctx.disk(),
            " (after rebase)",
        )
        .await;
        gates_run.extend(more);
        if let Some(f) = failed {
            return Err(format!("after rebasing onto the moved branch, {f}"));
        }
    }
    Ok((commit, gates_run))
}

/// Pushes the work order's branch and opens (or updates) its pull request, at delivery, by the
/// project's policy.
async fn publish(
    ctx: &Ctx<'_>,
    publisher: &land::Publisher,
    landing: &Landing<'_>,
    passed: &Passed,
    commit: &str,
    files: &[String],
) -> Result<land::Published, String> {
    let (run, wo, short) = (ctx.run, landing.wo, landing.short);
    let body = format!(
        "Work order **{}** ({short}) of Factory run `{}`, published at delivery by the \
         project's policy (before any review).\n\n{}\n\n| | |\n|---|---|\n| Risk | {:?} |\n\
         | Complexity | {:.3} |\n| Model | {} |\n| Cost | ${:.6} |\n\n\
         **Routing:** {}\n\n**Files changed:** {}\n{}",
        wo.id,
        run.run_id,
        wo.description,
        wo.risk,
        landing.decision.complexity,
        passed.model,
        passed.cost,
        landing.decision.reason,
        files.join(", "),
        unverified_note(landing.unverified.as_deref())
    );
    let title = format!("WO-{short}: {}", wo.title);
    publisher
        .publish(
            &ctx.engine.store,
            &land::Branch {
                run_id: &run.run_id,
                work_order_id: &wo.id,
                branch: &landing.worktree.branch,
                commit,
                base: landing.start.pr_base.as_deref(),
                title: &title,
                body: &body,
            },
        )
        .await
}
