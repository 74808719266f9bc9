//! Work orders from solution architecture, executed by an engineering stage: in dependency
//! order, each routed by complexity, each in its own worktree on its own branch from the run's
//! base commit; its edits applied, the project's gates run in the sandbox, failures sent back
//! to the team as feedback (bounded by the team's `max_iterations`), and the change committed
//! as `WO-<id8>: <title>` with trailers. A work order that still fails is rolled back (branch
//! deleted, worktree removed) and the stage reports BLOCKED with the reason.

use std::collections::{HashMap, HashSet};

use std::path::Path;

use app::events::EventData;
use app::ledger::Attribution;
use app::model::GateSummary;
use app::task::{Artifact, TaskResult, TaskStatus, WorkOrderSpec};
use sha2::Digest;

use super::Engine;
use super::catalogue::{Catalogue, Team};
use super::driver::{Brief, Outcome, ask_team};
use super::state::RunState;
use crate::delivery::docker::DockerSandbox;
use crate::delivery::edits::{EditLimits, apply};
use crate::delivery::project::{SandboxKind, project_file};
use crate::delivery::publish::{
    GitHub, base_branch, delete_remote_branch, open_pull_request, push,
};
use crate::delivery::sandbox::{Bubblewrap, GateLimits, Process, Sandbox, detect_gates};
use crate::delivery::worktree::{Worktree, slug};
use crate::gateway::providers::offline::requirement_vars;
use crate::gateway::routing::RoutingInput;
use crate::gateway::types::OfflineBrief;
use crate::store::StoreError;

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

fn anchor(run: &RunState, wo: &WorkOrderSpec, feedback: Option<&str>) -> String {
    let criteria = wo
        .acceptance_criteria
        .iter()
        .map(|c| format!("- {c}"))
        .collect::<Vec<_>>()
        .join("\n");
    let files = if wo.files_in_scope.is_empty() {
        "(not given: keep the change small and local)".to_string()
    } else {
        wo.files_in_scope.join(", ")
    };
    let mut text = format!(
        "# Requirement\n\n{}\n\n# Your work order `{}`: {}\n\n{}\n\nRisk: {:?}. Files in scope: \
         {files}\n\n# Acceptance criteria\n\n{criteria}\n\n# How to answer\n\nReply with one \
         TaskResult JSON object: `status` COMPLETE with `edits` (write {{path, content}}, replace \
         {{path, search, replace}} with an exact search text, delete {{path}}; paths relative to \
         the repository root) and a short artifact describing the change.",
        run.goal.trim(),
        wo.id,
        wo.title,
        wo.description,
        wo.risk
    );
    if let Some(feedback) = feedback {
        text.push_str(&format!(
            "\n\n# Your previous attempt failed — fix this\n\n{feedback}"
        ));
    }
    text
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
    let github_repo = registered.as_ref().and_then(|p| p.github.clone());
    let has_remote = git2::Repository::open(root)
        .map(|r| r.find_remote("origin").is_ok())
        .unwrap_or(false);
    let github = GitHub::from_env();
    let mut gates: Vec<String> = registered.map(|p| p.gates).unwrap_or_default();
    gates.extend(settings.gates.clone());
    let sandbox: Box<dyn Sandbox> = match (settings.sandbox, settings.image.as_deref()) {
        (Some(SandboxKind::Process), _) => Box::new(Process),
        (Some(SandboxKind::Docker), None) => {
            return Ok(Err(
                "sandbox = \"docker\" needs `image` in .factory/project.toml (an image that exists \
                 locally; Factory never pulls)"
                    .into(),
            ));
        }
        (Some(SandboxKind::Docker), Some(image)) => match DockerSandbox::connect(image).await {
            Ok(mut d) => {
                d.toolchain_mounts = settings.toolchain_mounts.clone();
                Box::new(d)
            }
            Err(e) => return Ok(Err(format!("the docker sandbox is not available: {e}"))),
        },
        (None, Some(image)) if DockerSandbox::engine_answers().await => {
            match DockerSandbox::connect(image).await {
                Ok(mut d) => {
                    d.toolchain_mounts = settings.toolchain_mounts.clone();
                    Box::new(d)
                }
                Err(e) => return Ok(Err(format!("the docker sandbox is not available: {e}"))),
            }
        }
        (Some(SandboxKind::Bubblewrap) | None, _) => {
            if !Bubblewrap::available().await {
                return Ok(Err(
                    "no sandbox is available for the gates: install bubblewrap (`apt-get install \
                     bubblewrap`), configure a docker image, or opt in to sandbox = \"process\" in \
                     .factory/project.toml"
                        .into(),
                ));
            }
            Box::new(Bubblewrap)
        }
    };
    let limits = GateLimits {
        timeout: std::time::Duration::from_secs(settings.gate_timeout_secs.unwrap_or(600)),
        output_bytes: settings.gate_output_bytes.unwrap_or(64 * 1024),
    };
    let worktrees = engine.data_dir.join("worktrees");
    let ctx = Ctx {
        engine,
        run,
        team,
        catalogue,
        root,
        base,
        gates,
        sandbox,
        limits,
        worktrees,
        github,
        github_repo,
        has_remote,
        git: std::sync::Mutex::new(()),
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
        let mut results = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(parallel) {
            let mut running = Vec::with_capacity(chunk.len());
            for wo in chunk {
                running.push(deliver_one(&ctx, wo));
            }
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

/// Adds the delivery report to an engineering result, or turns it BLOCKED with the reason.
pub(super) fn fold_into(result: &mut TaskResult, delivered: Result<Vec<Delivered>, String>) {
    match delivered {
        Ok(list) if list.is_empty() => {}
        Ok(list) => {
            let mut report = String::from(
                "# Delivery\n\n| Work order | Branch | Commit | Files | Pull request |\n\
                 |---|---|---|---|---|\n",
            );
            for d in &list {
                report.push_str(&format!(
                    "| {} {} | `{}` | `{}` | {} | {} |\n",
                    d.id,
                    d.title,
                    d.branch,
                    &d.commit[..d.commit.len().min(12)],
                    d.files.join(", "),
                    d.pull_request.as_deref().unwrap_or("-")
                ));
            }
            result.artifacts.push(Artifact {
                name: "delivery.md".into(),
                content: report,
            });
        }
        Err(reason) => {
            result.status = TaskStatus::Blocked;
            result.blockers = vec![reason];
        }
    }
}

/// Runs the project's gates (or the detected ones) in order, stopping at the first failure.
/// Returns what ran and, on a failure, the feedback for the team (with the output's tail).
async fn run_gates(
    sandbox: &dyn Sandbox,
    worktree: &Path,
    gates: &[String],
    limits: &GateLimits,
    suffix: &str,
) -> (Vec<GateSummary>, Option<String>) {
    let commands = if gates.is_empty() {
        detect_gates(worktree)
    } else {
        gates.to_vec()
    };
    let mut summaries = Vec::new();
    for command in &commands {
        let g = match sandbox.run(worktree, command, limits).await {
            Ok(g) => g,
            Err(e) => {
                return (
                    summaries,
                    Some(format!("gate `{command}` could not run: {e}")),
                );
            }
        };
        summaries.push(GateSummary {
            command: format!("{}{suffix}", g.command),
            sandbox: g.sandbox.clone(),
            passed: g.passed,
            exit_code: g.exit_code,
            duration_ms: g.duration_ms,
        });
        if !g.passed {
            let skip = g.output.chars().count().saturating_sub(4_000);
            let tail: String = g.output.chars().skip(skip).collect();
            let how = match (g.timed_out, g.exit_code) {
                (true, _) => "timed out".to_string(),
                (false, Some(code)) => format!("exit {code}"),
                (false, None) => "killed by a signal".to_string(),
            };
            let failed = format!("gate `{command}` failed ({how}) in {}:\n{tail}", g.sandbox);
            return (summaries, Some(failed));
        }
    }
    (summaries, None)
}

/// Bytes under `dir` (symlinks not followed).
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
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
    github: GitHub,
    github_repo: Option<String>,
    has_remote: bool,
    /// Serialises changes to the repository's git metadata (worktrees, refs); model calls and
    /// gates of independent work orders run concurrently.
    git: std::sync::Mutex<()>,
}

impl Ctx<'_> {
    /// Runs a change to the repository's git metadata with the lock held.
    fn locked<T>(&self, change: impl FnOnce() -> T) -> T {
        let _git = self.git.lock().unwrap_or_else(|p| p.into_inner());
        change()
    }
}

/// One work order, start to finish; its events, and what it delivered or why it failed (rolled
/// back).
async fn deliver_one(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
) -> Result<(Vec<EventData>, Result<Delivered, String>), StoreError> {
    let (engine, run, team, catalogue, root, base) = (
        ctx.engine,
        ctx.run,
        ctx.team,
        ctx.catalogue,
        ctx.root,
        ctx.base,
    );
    let (gates, sandbox, limits, worktrees) =
        (&ctx.gates, &ctx.sandbox, &ctx.limits, &ctx.worktrees);
    let (github, github_repo, has_remote) = (&ctx.github, &ctx.github_repo, ctx.has_remote);
    let mut out = Vec::new();
    let events = &mut out;
    let short = id8(&run.run_id, &wo.id);
    let attribution = Attribution {
        run_id: Some(run.run_id.clone()),
        project: run.project.clone(),
        team: Some(team.name().to_string()),
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
    let used = disk_usage(worktrees);
    let budget = engine
        .config
        .worktree_disk_budget_mb
        .saturating_mul(1024 * 1024);
    if used > budget {
        return Ok((
            out,
            Err(format!(
                "worktrees use {} MiB, over their budget of {} MiB ([engine] worktree_disk_budget_mb)",
                used / (1024 * 1024),
                engine.config.worktree_disk_budget_mb
            )),
        ));
    }
    let created =
        ctx.locked(|| Worktree::create(root, worktrees, &format!("wo-{short}"), base, &branch));
    let worktree = match created {
        Ok(w) => w,
        Err(e) => {
            return Ok((
                out,
                Err(format!(
                    "work order `{}`: cannot make its worktree: {e}",
                    wo.id
                )),
            ));
        }
    };
    let mut feedback: Option<String> = None;
    let mut outcome: Result<(Vec<GateSummary>, String, f64), String> =
        Err("no attempt was made".into());
    for attempt in 0..team.settings.max_iterations {
        let mut vars = requirement_vars(
            &run.goal,
            run.project.as_deref(),
            &wo.id,
            &wo.title,
            &wo.acceptance_criteria,
            &[],
        );
        vars["work_order"] = serde_json::to_value(wo).unwrap_or_default();
        let brief = Brief {
            team,
            anchor: anchor(run, wo, feedback.as_deref()),
            alias: decision.alias.clone(),
            call_prefix: format!(
                "{}/{}/{}/wo-{short}/{attempt}",
                run.run_id, run.started_seq, run.round
            ),
            offline: Some(OfflineBrief {
                team: team.name().to_string(),
                deliverable: format!("wo-{}.md", wo.id),
                template: format!("# Work order {}: {{{{ work_order.title }}}}\n", wo.id),
                vars,
            }),
            answer: false,
        };
        let (result, cost, model) = match ask_team(engine, run, &brief, catalogue).await? {
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
                outcome = Err(error);
                break;
            }
            Outcome::Budget { error, events: e } => {
                events.extend(e);
                outcome = Err(error.to_string());
                break;
            }
        };
        if result.status != TaskStatus::Complete {
            outcome = Err(format!(
                "the team answered {}: {}",
                result.status.as_str(),
                result.blockers.join("; ")
            ));
            break;
        }
        if let Err(e) = apply(&worktree.path, &result.edits, &EditLimits::default()) {
            feedback = Some(e.to_string());
            outcome = Err(e.to_string());
            continue;
        }
        let (summaries, failed) =
            run_gates(sandbox.as_ref(), &worktree.path, gates, limits, "").await;
        match failed {
            None => {
                outcome = Ok((summaries, model, cost));
                break;
            }
            Some(f) => {
                // Start the next attempt from the base again.
                feedback = Some(f.clone());
                outcome = Err(f);
                let _ = std::process::Command::new("git")
                    .args(["checkout", "-q", "--", "."])
                    .current_dir(&worktree.path)
                    .status();
                let _ = std::process::Command::new("git")
                    .args(["clean", "-qfd"])
                    .current_dir(&worktree.path)
                    .status();
            }
        }
    }
    // What the gates said, summarised into the team's memory for later runs of the project.
    let gate_note = match &outcome {
        Ok((summaries, _, _)) if !summaries.is_empty() => Some(format!(
            "work order {} ({}): gates passed — {}",
            wo.id,
            wo.title,
            summaries
                .iter()
                .map(|g| format!("`{}` in {}", g.command, g.sandbox))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(reason) if reason.contains("gate `") => Some(format!(
            "work order {} ({}): {}",
            wo.id,
            wo.title,
            super::driver::summarise(reason, 1_500)
        )),
        _ => None,
    };
    if let Some(text) = gate_note {
        events.push(EventData::MemoryRetained {
            item_id: format!("{}/wo-{short}/gates/{}", run.run_id, run.round),
            bank: team.name().to_string(),
            project: run.project.clone(),
            run_id: Some(run.run_id.clone()),
            kind: "gate".into(),
            text,
        });
    }
    let committed = match outcome {
        Ok((gates_run, model, cost)) => {
            let message = format!(
                "WO-{short}: {}\n\n{}\n\nFactory-Run: {}\nFactory-Work-Order: {}\nFactory-Model: {model}\nFactory-Cost-USD: {cost:.6}\n",
                wo.title, wo.description, run.run_id, wo.id
            );
            match ctx.locked(|| worktree.commit(&message)) {
                Ok(Some(commit)) => Ok((commit, gates_run, model, cost)),
                Ok(None) => Err("the edits changed nothing".to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e),
    };
    // The project's branch moved since the base: replay the change onto the new head and
    // run the gates again; a conflict or a failing gate escalates.
    let committed = match committed {
        Ok((commit, gates_run, model, cost)) => {
            match crate::delivery::worktree::head_commit(root) {
                Ok(head) if head != base => match ctx.locked(|| worktree.rebase_onto(&head)) {
                    Ok(rebased) => {
                        let (more, failed) = run_gates(
                            sandbox.as_ref(),
                            &worktree.path,
                            gates,
                            limits,
                            " (after rebase)",
                        )
                        .await;
                        let mut again = gates_run.clone();
                        again.extend(more);
                        let failed =
                            failed.map(|f| format!("after rebasing onto the moved branch, {f}"));
                        match failed {
                            None => Ok((rebased, again, model, cost)),
                            Some(f) => Err(f),
                        }
                    }
                    Err(e) => Err(format!(
                        "the project's branch moved since the run started and {e}"
                    )),
                },
                _ => Ok((commit, gates_run, model, cost)),
            }
        }
        Err(e) => Err(e),
    };
    let committed = match committed {
        Ok(c) if has_remote => {
            let branch = branch.clone();
            let root = root.to_path_buf();
            let token = github.token.clone();
            let pushed =
                tokio::task::spawn_blocking(move || push(&root, &branch, token.as_deref()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
            match pushed {
                Ok(()) => Ok((c, true)),
                Err(e) => Err(format!("push failed: {e}")),
            }
        }
        Ok(c) => Ok((c, false)),
        Err(e) => Err(e),
    };
    let files = worktree.changed_files().unwrap_or_default();
    let committed = match committed {
        Ok(((commit, gates_run, model, cost), true)) if github_repo.is_some() => {
            let owner_repo = github_repo.clone().unwrap_or_default();
            let checklist = wo
                .acceptance_criteria
                .iter()
                .map(|c| format!("- [ ] {c}"))
                .collect::<Vec<_>>()
                .join("\n");
            let body = format!(
                "Work order **{}** ({short}) of Factory run `{}`.\n\n{}\n\n| | |\n|---|---|\n\
                 | Risk | {:?} |\n| Complexity | {:.3} |\n| Model | {model} |\n| Cost | ${cost:.6} |\n\n\
                 **Routing:** {}\n\n**Acceptance checklist**\n\n{checklist}\n\n\
                 **Files changed:** {}\n",
                wo.id,
                run.run_id,
                wo.description,
                wo.risk,
                decision.complexity,
                decision.reason,
                files.join(", ")
            );
            let base_branch = base_branch(root).unwrap_or_else(|| "main".into());
            let title = format!("WO-{short}: {}", wo.title);
            match open_pull_request(github, &owner_repo, &branch, &base_branch, &title, &body).await
            {
                Ok(url) => Ok((commit, gates_run, model, cost, true, Some(url))),
                Err(e) => {
                    let (root, branch, token) =
                        (root.to_path_buf(), branch.clone(), github.token.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        delete_remote_branch(&root, &branch, token.as_deref())
                    })
                    .await;
                    Err(format!("the pull request could not be opened: {e}"))
                }
            }
        }
        Ok(((commit, gates_run, model, cost), pushed)) => {
            Ok((commit, gates_run, model, cost, pushed, None))
        }
        Err(e) => Err(e),
    };
    match committed {
        Ok((commit, gates_run, model, cost, pushed, pull_request)) => {
            // Kept for inspection when [engine] worktree_retention_secs is set (collected at start
            // once older than that); removed at once otherwise.
            if engine.config.worktree_retention_secs == 0 {
                let _ = worktree.remove();
            }
            events.push(EventData::WorkOrderDelivered {
                run_id: run.run_id.clone(),
                work_order_id: wo.id.clone(),
                title: wo.title.clone(),
                branch: branch.clone(),
                commit: commit.clone(),
                files: files.clone(),
                gates: gates_run,
                model,
                cost_usd: cost,
                pushed,
                pull_request: pull_request.clone(),
            });
            Ok((
                out,
                Ok(Delivered {
                    id: wo.id.clone(),
                    title: wo.title.clone(),
                    branch,
                    commit,
                    files,
                    pull_request,
                }),
            ))
        }
        Err(reason) => {
            let _ = worktree.remove();
            let _ = Worktree::delete_branch(root, &branch);
            Ok((
                out,
                Err(format!(
                    "work order `{}` ({}) failed and was rolled back: {reason}",
                    wo.id, wo.title
                )),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::ledger::Risk;

    fn wo(id: &str, deps: &[&str]) -> WorkOrderSpec {
        WorkOrderSpec {
            id: id.into(),
            title: id.into(),
            description: String::new(),
            risk: Risk::Low,
            files_in_scope: vec![],
            acceptance_criteria: vec![],
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            confidence: 0.5,
        }
    }

    #[test]
    fn dependencies_come_first_and_bad_graphs_are_refused() {
        let orders = [wo("b", &["a"]), wo("a", &[]), wo("c", &["a", "b"])];
        let ids: Vec<&str> = order(&orders)
            .unwrap()
            .iter()
            .map(|w| w.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(
            order(&[wo("a", &["z"])])
                .unwrap_err()
                .contains("unknown `z`")
        );
        assert!(
            order(&[wo("a", &["b"]), wo("b", &["a"])])
                .unwrap_err()
                .contains("cycle")
        );
        assert!(
            order(&[wo("a", &[]), wo("a", &[])])
                .unwrap_err()
                .contains("share an id")
        );
        let many: Vec<_> = (0..9).map(|i| wo(&i.to_string(), &[])).collect();
        assert!(order(&many).unwrap_err().contains("at most 8"));
    }
}
