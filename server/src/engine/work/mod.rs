//! Work orders from solution architecture, executed by an engineering stage: in dependency
//! order, each routed by complexity, each in its own worktree on its own branch from the run's
//! base commit; its edits applied, the project's gates run in the sandbox, failures sent back
//! to the team as feedback (bounded by the team's `max_iterations`), and the change committed
//! as `WO-<id8>: <title>` with trailers. A work order that still fails is rolled back (branch
//! deleted, worktree removed) and the stage reports BLOCKED with the reason.
//!
//! The change is taken from the worktree before its gates run and committed in the repository
//! itself; a worktree that sandboxed code touched is only ever removed and made again
//! (`delivery::worktree`). Branches reach the remote after the run's review (`land`).

mod agent;
mod attempt;
mod gates;
mod land;
mod look;
mod plan;
mod prepare;
mod shown;
mod stack;
mod unverified;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use app::dto::{GateSummary, ProjectPolicy, PublishPolicy};
use app::events::EventData;
use app::ledger::Attribution;
use app::task::WorkOrderSpec;
use sha2::Digest;

use super::Engine;
use super::catalogue::{Catalogue, Team};
use super::state::RunState;
use crate::delivery::edits::EditLimits;
use crate::delivery::project::project_file;
use crate::delivery::sandbox::{GateLimits, Sandbox};
use crate::delivery::worktree::{Worktree, slug};
use crate::gateway::routing::{RoutingDecision, RoutingInput};
use crate::store::StoreError;

pub(super) use land::publish_run;
pub(in crate::engine) use look::Look;
pub use plan::{Assessed, assess};
pub(super) use stack::fold_into;
use stack::{Start, start_of};
pub use unverified::NO_GATE;
use unverified::{unverified, unverified_note, verified_trailer};

/// Most work orders one run executes.
pub const MAX_WORK_ORDERS: usize = 8;

/// One delivered work order.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub id: String,
    pub title: String,
    pub branch: String,
    pub commit: String,
    pub files: Vec<String>,
    pub pull_request: Option<String>,
}

/// The order to execute: dependencies first. Refuses duplicates, dangling dependencies, cycles.
pub fn order(orders: &[WorkOrderSpec]) -> Result<Vec<&WorkOrderSpec>, String> {
    if orders.len() > MAX_WORK_ORDERS {
        return Err(format!(
            "{} work orders; at most {MAX_WORK_ORDERS} per run",
            orders.len()
        ));
    }
    let by_id: HashMap<&str, &WorkOrderSpec> = orders.iter().map(|w| (w.id.as_str(), w)).collect();
    if by_id.len() != orders.len() {
        return Err("two work orders share an id".into());
    }
    for w in orders {
        for d in &w.dependencies {
            if !by_id.contains_key(d.as_str()) {
                return Err(format!("work order `{}` depends on unknown `{d}`", w.id));
            }
        }
    }
    let mut done: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    while out.len() < orders.len() {
        let ready: Vec<&WorkOrderSpec> = orders
            .iter()
            .filter(|w| !done.contains(w.id.as_str()))
            .filter(|w| w.dependencies.iter().all(|d| done.contains(d.as_str())))
            .collect();
        if ready.is_empty() {
            return Err("the work orders' dependencies form a cycle".into());
        }
        for w in ready {
            done.insert(w.id.as_str());
            out.push(w);
        }
    }
    Ok(out)
}

/// A short stable id of a work order within a run.
pub fn id8(run_id: &str, wo: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{run_id}/{wo}").as_bytes());
    hex::encode(digest)[..8].to_string()
}

/// Executes the work orders; the events (routing, model calls, deliveries) go to `events`.
/// `Err` carries why the stage is blocked (everything of the failed work order rolled back).
pub(super) async fn deliver(
    engine: &Engine,
    run: &RunState,
    team: &Team,
    catalogue: &Catalogue,
    orders: &[WorkOrderSpec],
    events: &mut Vec<EventData>,
) -> Result<Result<Vec<Delivered>, String>, StoreError> {
    let (Some(project), Some(base)) = (run.project.as_deref(), run.base_commit.as_deref()) else {
        return Ok(Ok(Vec::new()));
    };
    let root = Path::new(project);
    let ordered = match order(orders) {
        Ok(o) => o,
        Err(e) => return Ok(Err(format!("the work orders are not valid: {e}"))),
    };
    let settings = match project_file(root) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let registered = engine.store.find_project(project).await?;
    let policy = registered
        .as_ref()
        .map(|p| p.policy.clone())
        .unwrap_or_default();
    let github_repo = registered.as_ref().and_then(|p| p.github.clone());
    let mut gate_commands: Vec<String> = registered.map(|p| p.gates).unwrap_or_default();
    gate_commands.extend(settings.gates.clone());
    let limits = gates::limits(&engine.config, &settings);
    let (view, prepared) =
        prepare::prepare(engine, &run.run_id, root, base, &policy, &limits).await;
    events.extend(prepared);
    let sandbox =
        match gates::choose(&engine.config, &policy, &settings, &engine.data_dir, view).await {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
    let publisher = match policy.publish {
        PublishPolicy::OnDelivery => Some(land::Publisher::new(root, github_repo).await),
        PublishPolicy::AfterReview => None,
    };
    let ctx = Ctx {
        engine,
        run,
        team,
        catalogue,
        root,
        base,
        limits,
        gates: gate_commands,
        sandbox,
        worktrees: engine.data_dir.join("worktrees"),
        edit_limits: EditLimits {
            allow_protected: policy.allow_ci_edits,
            ..EditLimits::default()
        },
        publisher,
        policy,
        git: std::sync::Arc::new(std::sync::Mutex::new(())),
    };
    // Dependency levels: a work order runs once every one it depends on is delivered;
    // independent ones run together, at most `max_parallel_work_orders` at a time.
    let mut level: HashMap<&str, usize> = HashMap::new();
    for wo in &ordered {
        let l = wo
            .dependencies
            .iter()
            .map(|d| level.get(d.as_str()).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
        level.insert(wo.id.as_str(), l);
    }
    let depth = level.values().copied().max().unwrap_or(0);
    let parallel = engine.config.max_parallel_work_orders.max(1);
    let mut delivered = Vec::new();
    for l in 0..=depth {
        let batch: Vec<&WorkOrderSpec> = ordered
            .iter()
            .copied()
            .filter(|w| level[w.id.as_str()] == l)
            .collect();
        let mut starts = Vec::with_capacity(batch.len());
        for wo in &batch {
            match start_of(&ctx, wo, &delivered).await {
                Ok(start) => starts.push(start),
                Err(reason) => return Ok(Err(reason)),
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        for chunk in batch
            .iter()
            .zip(&starts)
            .collect::<Vec<_>>()
            .chunks(parallel)
        {
            let running = chunk.iter().map(|(wo, start)| deliver_one(&ctx, wo, start));
            results.extend(futures::future::join_all(running).await);
        }
        let mut failure = None;
        for result in results {
            let (e, outcome) = result?;
            events.extend(e);
            match outcome {
                Ok(d) => delivered.push(d),
                Err(reason) => failure = failure.or(Some(reason)),
            }
        }
        if let Some(reason) = failure {
            return Ok(Err(reason));
        }
    }
    Ok(Ok(delivered))
}

/// What every work order of a run shares.
struct Ctx<'a> {
    engine: &'a Engine,
    run: &'a RunState,
    team: &'a Team,
    catalogue: &'a Catalogue,
    root: &'a Path,
    base: &'a str,
    gates: Vec<String>,
    sandbox: Box<dyn Sandbox>,
    limits: GateLimits,
    worktrees: std::path::PathBuf,
    edit_limits: EditLimits,
    /// Present when the project's policy publishes at delivery.
    publisher: Option<land::Publisher>,
    policy: ProjectPolicy,
    /// Serialises changes to the repository's git metadata (worktrees, refs); model calls and
    /// gates of independent work orders run concurrently.
    git: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Ctx<'_> {
    /// Runs git work (or another blocking file operation) on the blocking pool, with the git
    /// lock held there.
    async fn git<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let lock = self.git.clone();
        tokio::task::spawn_blocking(move || {
            let _git = lock.lock().unwrap_or_else(|p| p.into_inner());
            work()
        })
        .await
        .map_err(|e| format!("a git task failed: {e}"))
    }

    fn disk(&self) -> gates::DiskWatch<'_> {
        gates::DiskWatch {
            root: &self.worktrees,
            budget_bytes: self
                .engine
                .config
                .worktree_disk_budget_mb
                .saturating_mul(1024 * 1024),
        }
    }
}

/// A work order whose gates passed: what ran, who answered, and the change's tree.
struct Passed {
    gates: Vec<GateSummary>,
    model: String,
    cost: f64,
    tree: git2::Oid,
}

/// One work order, start to finish; its events, and what it delivered or why it failed (rolled
/// back).
async fn deliver_one(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    start: &Start,
) -> Result<(Vec<EventData>, Result<Delivered, String>), StoreError> {
    let (engine, run) = (ctx.engine, ctx.run);
    let mut events = Vec::new();
    let short = id8(&run.run_id, &wo.id);
    let attribution = Attribution {
        run_id: Some(run.run_id.clone()),
        project: run.project.clone(),
        team: Some(ctx.team.name().to_string()),
        objective_id: Some(format!("{}/{}", run.run_id, run.next_index)),
        work_order_id: Some(wo.id.clone()),
    };
    let text = format!("{} {}", wo.title, wo.description);
    let decision = engine
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
        .await;
    let branch = format!("feature/wo-{short}-{}", slug(&wo.title));
    let root_dir = ctx.worktrees.clone();
    let used = tokio::task::spawn_blocking(move || gates::disk_usage(&root_dir))
        .await
        .unwrap_or(0);
    let budget = engine
        .config
        .worktree_disk_budget_mb
        .saturating_mul(1024 * 1024);
    if used > budget {
        return Ok((
            events,
            Err(format!(
                "worktrees use {} MiB, over their budget of {} MiB ([engine] worktree_disk_budget_mb)",
                used / (1024 * 1024),
                engine.config.worktree_disk_budget_mb
            )),
        ));
    }
    let (repo, worktrees, name, base, b) = (
        ctx.root.to_path_buf(),
        ctx.worktrees.clone(),
        format!("wo-{short}"),
        start.base.clone(),
        branch.clone(),
    );
    let created = ctx
        .git(move || Worktree::create(&repo, &worktrees, &name, &base, &b))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    let worktree = match created {
        Ok(w) => w,
        Err(e) => {
            return Ok((
                events,
                Err(format!(
                    "work order `{}`: cannot make its worktree: {e}",
                    wo.id
                )),
            ));
        }
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
                start,
                short: &short,
                worktree: &worktree,
                decision: &decision,
                unverified,
            };
            land_one(ctx, wo, &landing, passed).await
        }
        Err(e) => Err(e),
    };
    ctx.sandbox.release(&worktree.path).await;
    match landed {
        Ok((delivered, event)) => {
            // Kept for inspection when [engine] worktree_retention_secs is set (collected at start
            // once older than that); removed at once otherwise.
            if engine.config.worktree_retention_secs == 0 {
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

/// Removes a failed work order's worktree and branch (the worktree is only ever removed,
/// never cleaned).
async fn roll_back(ctx: &Ctx<'_>, worktree: &Worktree, branch: &str) {
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
    start: &'a Start,
    short: &'a str,
    worktree: &'a Worktree,
    decision: &'a RoutingDecision,
    /// Why it may be committed with no gate, when it has none.
    unverified: Option<String>,
}

/// Commits a passed work order on its branch (replayed onto the project's branch when that
/// moved, and gated again), publishes it when the project's policy says at delivery, and
/// returns the delivery and its event.
async fn land_one(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    landing: &Landing<'_>,
    passed: Passed,
) -> Result<(Delivered, EventData), String> {
    let (start, short, worktree, decision, unverified): (&Start, &str, &Worktree, _, _) = (
        landing.start,
        landing.short,
        landing.worktree,
        landing.decision,
        &landing.unverified,
    );
    let run = ctx.run;
    let Passed {
        gates: mut gates_run,
        model,
        cost,
        tree,
    } = passed;
    let message = format!(
        "WO-{short}: {}\n\n{}\n\nFactory-Run: {}\nFactory-Work-Order: {}\nFactory-Stage: {}\nFactory-Revision: {}\nFactory-Model: {model}\nFactory-Cost-USD: {cost:.6}\n{}",
        wo.title,
        wo.description,
        run.run_id,
        wo.id,
        run.next_index,
        run.revision,
        verified_trailer(unverified.as_deref())
    );
    let w = worktree.clone();
    let mut commit = ctx
        .git(move || w.commit_tree(tree, &message))
        .await?
        .map_err(|e| e.to_string())?;
    // The project's branch moved since the base: replay the change onto the new head and
    // run the gates again; a conflict or a failing gate escalates. (A stacked work order
    // starts from its dependencies, which were replayed already.)
    let (root, base) = (ctx.root.to_path_buf(), ctx.base.to_string());
    let head = ctx
        .git(move || crate::delivery::worktree::head_commit(&root))
        .await?;
    if let Ok(head) = head
        && start.stacked_on.is_empty()
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
    let w = worktree.clone();
    let files = ctx
        .git(move || w.changed_files())
        .await?
        .unwrap_or_default();
    let (mut pushed, mut pull_request, mut published_by_policy) = (false, None, None);
    if let Some(publisher) = &ctx.publisher {
        let body = format!(
            "Work order **{}** ({short}) of Factory run `{}`, published at delivery by the \
             project's policy (before any review).\n\n{}\n\n| | |\n|---|---|\n| Risk | {:?} |\n\
             | Complexity | {:.3} |\n| Model | {model} |\n| Cost | ${cost:.6} |\n\n\
             **Routing:** {}\n\n**Files changed:** {}\n{}",
            wo.id,
            run.run_id,
            wo.description,
            wo.risk,
            decision.complexity,
            decision.reason,
            files.join(", "),
            unverified_note(unverified.as_deref())
        );
        let title = format!("WO-{short}: {}", wo.title);
        let published = publisher
            .publish(
                &ctx.engine.store,
                &land::Branch {
                    run_id: &run.run_id,
                    work_order_id: &wo.id,
                    branch: &worktree.branch,
                    commit: &commit,
                    base: start.pr_base.as_deref(),
                    title: &title,
                    body: &body,
                },
            )
            .await?;
        pushed = published.pushed;
        pull_request = published.pull_request;
        published_by_policy = Some(format!(
            "{} (the project's policy)",
            ctx.policy.publish.as_str()
        ));
    }
    let event = EventData::WorkOrderDelivered {
        run_id: run.run_id.clone(),
        work_order_id: wo.id.clone(),
        title: wo.title.clone(),
        branch: worktree.branch.clone(),
        commit: commit.clone(),
        files: files.clone(),
        gates: gates_run,
        model,
        cost_usd: cost,
        pushed,
        pull_request: pull_request.clone(),
        published_by_policy,
        stacked_on: start.stacked_on.clone(),
        unverified: unverified.clone(),
    };
    Ok((
        Delivered {
            id: wo.id.clone(),
            title: wo.title.clone(),
            branch: worktree.branch.clone(),
            commit,
            files,
            pull_request,
        },
        event,
    ))
}

#[cfg(test)]
mod tests;
