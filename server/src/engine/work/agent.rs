//! A work order's agent loop, tool side: the `run` tool executes one shell command in the work
//! order's worktree inside the gates' sandbox (no network, read-only system, the team's time
//! and output limits), each recorded as a `command_run` event; a COMPLETE answer has its JSON
//! `edits` applied, the whole worktree's change taken (`Worktree::snapshot_all`) and the gates
//! run — a failure goes back into the same conversation, with the worktree as the team left it.
//! Bounded by the team's `[agent]` limits and its `max_iterations` gate rounds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use app::dto::GateSummary;
use app::events::EventData;
use app::task::{TaskResult, WorkOrderSpec};
use sha2::Digest;

use super::super::agent::{Finish, RUN_TOOL, Workbench, run_tool, tail};
use super::super::catalogue::AgentLimits;
use super::{Ctx, gates};
use crate::delivery::edits::{apply, protected};
use crate::delivery::sandbox::GateLimits;
use crate::delivery::worktree::{SnapshotLimits, Worktree};
use crate::gateway::types::{ToolCall, ToolSpec};

/// Bytes of a command's output kept in its event (the model sees up to the team's cap).
const EVENT_TAIL_BYTES: usize = 2_000;

/// The change a passed gate round took, and the gates that passed on it.
pub(super) struct Taken {
    pub gates: Vec<GateSummary>,
    pub tree: git2::Oid,
}

/// One work order's workbench for one attempt.
pub(super) struct WorkOrderBench<'c, 'a> {
    ctx: &'c Ctx<'a>,
    wo: &'c WorkOrderSpec,
    worktree: &'c Worktree,
    /// The commit the work order's branch started from.
    base: &'c str,
    limits: AgentLimits,
    /// When the work order started (its wall-time limit counts from here).
    started: Instant,
    /// The worktree's git metadata as made; a change means the isolation failed.
    digest: String,
    /// Gate rounds allowed and used.
    max_rounds: u32,
    rounds: AtomicU32,
    /// Commands run so far: a team that never ran one answers with whole-change edits, so
    /// after a failed round its worktree is made again from the base.
    commands: AtomicU32,
    taken: Mutex<Option<Taken>>,
    /// Why the last round failed, for the work order's error when it stops.
    last_failure: Mutex<Option<String>>,
}

impl<'c, 'a> WorkOrderBench<'c, 'a> {
    pub(super) fn new(
        ctx: &'c Ctx<'a>,
        wo: &'c WorkOrderSpec,
        worktree: &'c Worktree,
        base: &'c str,
        started: Instant,
        digest: String,
    ) -> Self {
        WorkOrderBench {
            ctx,
            wo,
            worktree,
            base,
            limits: ctx.team.settings.agent,
            started,
            digest,
            max_rounds: ctx.team.settings.max_iterations,
            rounds: AtomicU32::new(0),
            commands: AtomicU32::new(0),
            taken: Mutex::new(None),
            last_failure: Mutex::new(None),
        }
    }

    /// The change that passed its gates, once one did.
    pub(super) fn take(&self) -> Option<Taken> {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Why the last gate round failed, if one did.
    pub(super) fn last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn metadata_intact(&self) -> bool {
        let w = self.worktree.clone();
        let now = self.ctx.git(move || w.metadata_digest()).await;
        matches!(&now, Ok(Ok(d)) if *d == self.digest)
    }

    /// A failed round: the feedback for the model, or the reason to stop when the rounds are
    /// used up. A team that ran no command gets its worktree made again from the base (its
    /// edits are whole changes, written against the files as first shown).
    async fn failed_round(&self, round: u32, why: String) -> Finish {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        if round >= self.max_rounds {
            return Finish::Stop(format!(
                "{why}\n\n(all {} gate rounds of the work order are used)",
                self.max_rounds
            ));
        }
        let left = format!("round {round} of {}", self.max_rounds);
        if self.commands.load(Ordering::SeqCst) > 0 {
            return Finish::Again(format!(
                "{why}\n\nThe worktree still holds your change as you left it ({left}). Look \
                 again with `{RUN_TOOL}`, fix it, and answer with the TaskResult when done."
            ));
        }
        // Never cleaned with git: removed and made again at the base.
        self.ctx.sandbox.release(&self.worktree.path).await;
        let (w, base) = (self.worktree.clone(), self.base.to_string());
        let remade = self.ctx.git(move || w.recreate(&base)).await;
        if !matches!(remade, Ok(Ok(()))) {
            return Finish::Stop(format!(
                "{why}\n\n(the worktree could not be made again from the base)"
            ));
        }
        Finish::Again(format!(
            "{why}\n\nThe worktree is made again from the base ({left}): send the whole change \
             again, or look around with `{RUN_TOOL}` first."
        ))
    }

    /// Applies the answer's edits, takes the worktree's change and refuses what the project
    /// protects. `Err` is feedback for the model.
    async fn take_change(&self, result: &TaskResult) -> Result<git2::Oid, String> {
        let (w, edits, limits) = (
            self.worktree.clone(),
            result.edits.clone(),
            self.ctx.edit_limits,
        );
        let allow_protected = limits.allow_protected;
        let taken = self
            .ctx
            .git(move || {
                apply(&w.path, &edits, &limits)
                    .map_err(|e| format!("your edits could not be applied: {e}"))?;
                let tree = w
                    .snapshot_all(&SnapshotLimits::default())
                    .map_err(|e| format!("the worktree's change cannot be taken: {e}"))?
                    .ok_or_else(|| {
                        "the worktree holds no change against the base: make the change (with \
                         `run`, or `edits` in your answer) before answering COMPLETE"
                            .to_string()
                    })?;
                let changed = w.tree_changes(tree).map_err(|e| e.to_string())?;
                if !allow_protected
                    && let Some((path, why)) = changed
                        .iter()
                        .find_map(|p| protected(p).map(|why| (p.clone(), why)))
                {
                    return Err(format!(
                        "`{path}` may not be changed ({why}); undo that change (the project's \
                         operator may allow it with --allow-ci-edits)"
                    ));
                }
                Ok(tree)
            })
            .await;
        taken.and_then(|r| r)
    }
}

#[async_trait::async_trait]
impl Workbench for WorkOrderBench<'_, '_> {
    fn tools(&self) -> Vec<ToolSpec> {
        vec![run_tool(&format!(
            "The working directory is the repository root; only it is writable. A command may \
             run {} s and {} bytes of its output are shown.",
            self.limits.command_timeout_secs, self.limits.command_output_bytes
        ))]
    }

    fn max_turns(&self) -> u32 {
        self.limits.max_turns
    }

    async fn call(&self, turn: u32, call: &ToolCall) -> (String, Vec<EventData>) {
        let command = match command_of(call) {
            Ok(command) => command,
            Err(refusal) => return (refusal, vec![]),
        };
        self.commands.fetch_add(1, Ordering::SeqCst);
        let ran = gates::run_one(
            self.ctx.sandbox.as_ref(),
            &self.worktree.path,
            command,
            &command_limits(&self.limits),
            &self.ctx.disk(),
        )
        .await;
        let who = Who {
            run_id: &self.ctx.run.run_id,
            team: self.ctx.team.name(),
            work_order_id: Some(&self.wo.id),
            timeout_secs: self.limits.command_timeout_secs,
        };
        recorded(ran, command, turn, &who)
    }

    async fn finish(&self, result: &TaskResult) -> (Finish, Vec<EventData>) {
        let round = self.rounds.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.metadata_intact().await {
            return (Finish::Stop(ISOLATION.into()), vec![]);
        }
        let tree = match self.take_change(result).await {
            Ok(tree) => tree,
            Err(why) => return (self.failed_round(round, why).await, vec![]),
        };
        let ctx = self.ctx;
        let (summaries, failed) = gates::run(
            ctx.sandbox.as_ref(),
            &self.worktree.path,
            &ctx.gates,
            &ctx.limits,
            &ctx.disk(),
            "",
        )
        .await;
        if !self.metadata_intact().await {
            return (Finish::Stop(ISOLATION.into()), vec![]);
        }
        match failed {
            None => {
                *self.taken.lock().unwrap_or_else(|e| e.into_inner()) = Some(Taken {
                    gates: summaries,
                    tree,
                });
                (Finish::Accepted, vec![])
            }
            Some(f) => (self.failed_round(round, f).await, vec![]),
        }
    }

    fn exhausted(&self, cost_usd: f64) -> Option<String> {
        over_limits(&self.limits, self.started, cost_usd, "the work order")
    }
}

/// The `run` tool's limits for a team.
pub(in crate::engine) fn command_limits(limits: &AgentLimits) -> GateLimits {
    GateLimits {
        timeout: Duration::from_secs(limits.command_timeout_secs),
        output_bytes: limits.command_output_bytes,
    }
}

const ISOLATION: &str = "the worktree's git metadata changed while sandboxed commands ran; the \
     work order is stopped and nothing of it is committed";

/// The command a `run` call asks for, or the refusal the model gets back.
pub(in crate::engine) fn command_of(call: &ToolCall) -> Result<&str, String> {
    if call.name != RUN_TOOL {
        return Err(format!(
            "Refused: there is no tool `{}`; the one tool is `{RUN_TOOL}`.",
            call.name
        ));
    }
    call.arguments["command"]
        .as_str()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            format!(
                "Refused: `{RUN_TOOL}` takes {{\"command\": \"<shell command>\"}}; got {}.",
                call.arguments
            )
        })
}

/// Who ran a command, for its event.
pub(in crate::engine) struct Who<'a> {
    pub run_id: &'a str,
    pub team: &'a str,
    pub work_order_id: Option<&'a str>,
    pub timeout_secs: u64,
}

/// What a command's run tells the model (`exit N in M ms` and its output) and its
/// `command_run` event.
pub(in crate::engine) fn recorded(
    ran: Result<crate::delivery::sandbox::GateResult, String>,
    command: &str,
    turn: u32,
    who: &Who<'_>,
) -> (String, Vec<EventData>) {
    let g = match ran {
        Ok(g) => g,
        Err(why) => return (format!("The command did not run: {why}"), vec![]),
    };
    let end = match (g.timed_out, g.exit_code) {
        (true, _) => format!("killed after {} s (the time limit)", who.timeout_secs),
        (false, Some(code)) => format!("exit {code}"),
        (false, None) => "killed by a signal".to_string(),
    };
    let event = EventData::CommandRun {
        run_id: who.run_id.to_string(),
        team: who.team.to_string(),
        work_order_id: who.work_order_id.map(str::to_string),
        turn,
        command: command.to_string(),
        sandbox: g.sandbox.clone(),
        exit_code: g.exit_code,
        timed_out: g.timed_out,
        duration_ms: g.duration_ms,
        output_bytes: g.output.len() as u64,
        output_sha256: hex::encode(sha2::Sha256::digest(g.output.as_bytes())),
        output_tail: tail(&g.output, EVENT_TAIL_BYTES),
    };
    (
        format!("{end} in {} ms\n{}", g.duration_ms, g.output),
        vec![event],
    )
}

/// Why agent work started at `started` may not go on: its wall time or its cost limit.
pub(in crate::engine) fn over_limits(
    limits: &AgentLimits,
    started: Instant,
    cost_usd: f64,
    what: &str,
) -> Option<String> {
    if started.elapsed().as_secs() >= limits.max_wall_secs {
        return Some(format!(
            "{what} used its wall time of {} s ([agent] max_wall_secs)",
            limits.max_wall_secs
        ));
    }
    if cost_usd > limits.max_cost_usd {
        return Some(format!(
            "{what}'s model calls cost ${cost_usd:.4}, over its limit of ${:.4} ([agent] \
             max_cost_usd)",
            limits.max_cost_usd
        ));
    }
    None
}
