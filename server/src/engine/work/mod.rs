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
mod one;
mod plan;
mod prepare;
mod shown;
mod stack;
mod unverified;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use app::dto::{ProjectPolicy, PublishPolicy};
use app::events::EventData;
use app::task::WorkOrderSpec;
use sha2::Digest;

use super::Engine;
use super::catalogue::{Catalogue, Team};
use super::state::RunState;
use crate::delivery::edits::EditLimits;
use crate::delivery::project::project_file;
use crate::delivery::sandbox::{GateLimits, Sandbox};
use crate::store::StoreError;

pub(super) use land::publish_run;
pub(in crate::engine) use look::Look;
use one::{Passed, deliver_one};
pub use plan::{Assessed, assess};
pub(super) use stack::fold_into;
use stack::start_of;
pub use unverified::NO_GATE;

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
    let ordered = match order(orders) {
        Ok(o) => o,
        Err(e) => return Ok(Err(format!("the work orders are not valid: {e}"))),
    };
    let opened = Ctx::open(
        engine,
        run,
        team,
        catalogue,
        Path::new(project),
        base,
        events,
    )
    .await?;
    let ctx = match opened {
        Ok(ctx) => ctx,
        Err(reason) => return Ok(Err(reason)),
    };
    in_levels(&ctx, &ordered, events).await
}

/// Runs the work orders level by level: a work order runs once every one it depends on is
/// delivered; independent ones run together, at most `max_parallel_work_orders` at a time.
/// The first level with a failure is the last.
async fn in_levels(
    ctx: &Ctx<'_>,
    ordered: &[&WorkOrderSpec],
    events: &mut Vec<EventData>,
) -> Result<Result<Vec<Delivered>, String>, StoreError> {
    let mut level: HashMap<&str, usize> = HashMap::new();
    for wo in ordered {
        let l = wo
            .dependencies
            .iter()
            .map(|d| level.get(d.as_str()).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
        level.insert(wo.id.as_str(), l);
    }
    let depth = level.values().copied().max().unwrap_or(0);
    let parallel = ctx.engine.config.max_parallel_work_orders.max(1);
    let mut delivered = Vec::new();
    for l in 0..=depth {
        let batch: Vec<&WorkOrderSpec> = ordered
            .iter()
            .copied()
            .filter(|w| level[w.id.as_str()] == l)
            .collect();
        let mut starts = Vec::with_capacity(batch.len());
        for wo in &batch {
            match start_of(ctx, wo, &delivered).await {
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
            let running = chunk.iter().map(|(wo, start)| deliver_one(ctx, wo, start));
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

/// The sandbox a project's gates run in and their limits, with its dependencies prepared for
/// `base` (their events go to `events`); `Err` says why none can run.
async fn project_sandbox(
    engine: &Engine,
    run_id: &str,
    root: &Path,
    base: &str,
    settings: &crate::delivery::project::ProjectFile,
    policy: &ProjectPolicy,
    events: &mut Vec<EventData>,
) -> Result<(Box<dyn Sandbox>, GateLimits), String> {
    let limits = gates::limits(&engine.config, settings);
    let (view, prepared) = prepare::prepare(engine, run_id, root, base, policy, &limits).await;
    events.extend(prepared);
    let sandbox = gates::choose(&engine.config, policy, settings, &engine.data_dir, view).await?;
    Ok((sandbox, limits))
}

/// The sandbox and limits the registered project at `root` gives its gates, prepared for
/// `commit`: for a command run outside a work order (the gym's hidden checks), chosen and
/// bounded exactly as a stage's gates are.
pub(crate) async fn sandbox_for(
    engine: &Engine,
    run_id: &str,
    root: &Path,
    commit: &str,
) -> Result<(Box<dyn Sandbox>, GateLimits), String> {
    let settings = project_file(root).map_err(|e| e.to_string())?;
    let policy = engine
        .store
        .find_project(&root.to_string_lossy())
        .await
        .map_err(|e| e.to_string())?
        .map(|p| p.policy)
        .unwrap_or_default();
    project_sandbox(
        engine,
        run_id,
        root,
        commit,
        &settings,
        &policy,
        &mut Vec::new(),
    )
    .await
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

impl<'a> Ctx<'a> {
    /// What the work orders of an engineering stage (its `team`, on the project at `root` from
    /// `base`) share: the project's settings and policy, its gates and
    /// their limits, the dependencies prepared (its events go to `events`), the sandbox, the
    /// publisher. `Err` says why no work order can run.
    async fn open(
        engine: &'a Engine,
        run: &'a RunState,
        team: &'a Team,
        catalogue: &'a Catalogue,
        root: &'a Path,
        base: &'a str,
        events: &mut Vec<EventData>,
    ) -> Result<Result<Ctx<'a>, String>, StoreError> {
        let settings = match project_file(root) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let registered = engine.store.find_project(&root.to_string_lossy()).await?;
        let policy = registered
            .as_ref()
            .map(|p| p.policy.clone())
            .unwrap_or_default();
        let github_repo = registered.as_ref().and_then(|p| p.github.clone());
        let mut gate_commands: Vec<String> = registered.map(|p| p.gates).unwrap_or_default();
        gate_commands.extend(settings.gates.clone());
        let (sandbox, limits) = match project_sandbox(
            engine,
            &run.run_id,
            root,
            base,
            &settings,
            &policy,
            events,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let publisher = match policy.publish {
            PublishPolicy::OnDelivery => Some(land::Publisher::new(root, github_repo).await),
            PublishPolicy::AfterReview => None,
        };
        Ok(Ok(Ctx {
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
        }))
    }

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

#[cfg(test)]
mod tests;
