//! Looking before answering: solution architecture and QA get the `run` tool too, in a
//! throwaway copy of the repository at the run's base commit (written from the object
//! database, inside the same sandbox as the gates) — they can `ls`, `grep`, `cat` and run the
//! tests, and whatever they change is discarded with the copy. No branch, worktree or file of
//! the project is ever touched by a look.

use std::path::Path;
use std::time::Instant;

use app::events::EventData;
use app::task::TaskResult;

use super::super::Engine;
use super::super::agent::{Finish, Workbench, run_tool};
use super::super::catalogue::{AgentLimits, Team};
use super::super::state::RunState;
use super::agent::{Who, command_limits, command_of, over_limits, recorded};
use super::gates;
use crate::delivery::project::project_file;
use crate::delivery::sandbox::Sandbox;
use crate::delivery::toolchain::{self, HostEnv, LockFiles};
use crate::gateway::types::{ToolCall, ToolSpec};

/// Teams that may look at the repository before answering (without touching it).
pub const LOOKING_TEAMS: [&str; 2] = ["solution-architecture", "qa-engineering"];

/// The copy of the repository a look runs in, and its sandbox.
type Ready = (tempfile::TempDir, Box<dyn Sandbox>);

/// A team's look at the repository for one stage. The copy and the sandbox are made when the
/// team runs its first command (a team that never looks costs nothing).
pub(in crate::engine) struct Look {
    project: std::path::PathBuf,
    base: String,
    scratch: std::path::PathBuf,
    policy: app::dto::ProjectPolicy,
    config: crate::config::EngineConfig,
    data_dir: std::path::PathBuf,
    ready: tokio::sync::OnceCell<Result<Ready, String>>,
    limits: AgentLimits,
    started: Instant,
    run_id: String,
    team: String,
}

impl Look {
    /// The look for `team` at `run`'s base commit, when the team may look and the run has a
    /// project.
    pub(in crate::engine) async fn open(
        engine: &Engine,
        run: &RunState,
        team: &Team,
    ) -> Option<Look> {
        if !LOOKING_TEAMS.contains(&team.name()) || team.settings.agent.max_turns == 0 {
            return None;
        }
        let (project, base) = (run.project.as_deref()?, run.base_commit.as_deref()?);
        let policy = engine
            .store
            .find_project(project)
            .await
            .ok()
            .flatten()
            .map(|p| p.policy)
            .unwrap_or_default();
        Some(Look {
            project: Path::new(project).to_path_buf(),
            base: base.to_string(),
            scratch: engine.data_dir.join("cache").join("scratch"),
            policy,
            config: engine.config.clone(),
            data_dir: engine.data_dir.clone(),
            ready: tokio::sync::OnceCell::new(),
            limits: team.settings.agent,
            started: Instant::now(),
            run_id: run.run_id.clone(),
            team: team.name().to_string(),
        })
    }

    /// The copy of the repository and the sandbox to run in, made on first use.
    async fn ready(&self) -> Result<&Ready, String> {
        let made = self
            .ready
            .get_or_init(|| async {
                let (root, base, scratch) = (
                    self.project.clone(),
                    self.base.clone(),
                    self.scratch.clone(),
                );
                let copy =
                    tokio::task::spawn_blocking(move || -> Result<tempfile::TempDir, String> {
                        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
                        let copy = tempfile::Builder::new()
                            .prefix("look-")
                            .tempdir_in(&scratch)
                            .map_err(|e| e.to_string())?;
                        crate::delivery::worktree::export_tree(
                            &root,
                            &base,
                            copy.path(),
                            100_000,
                            u64::MAX,
                        )
                        .map_err(|e| e.to_string())?;
                        Ok(copy)
                    })
                    .await
                    .map_err(|e| e.to_string())??;
                let settings = project_file(&self.project).map_err(|e| e.to_string())?;
                let view = toolchain::detect(
                    &HostEnv::current(),
                    &self.project,
                    &toolchain::cache_dir(&self.data_dir),
                    &LockFiles::of(copy.path()),
                );
                let sandbox =
                    gates::choose(&self.config, &self.policy, &settings, &self.data_dir, view)
                        .await?;
                Ok((copy, sandbox))
            })
            .await;
        made.as_ref().map_err(Clone::clone)
    }
}

#[async_trait::async_trait]
impl Workbench for Look {
    fn tools(&self) -> Vec<ToolSpec> {
        vec![run_tool(&format!(
            "The working directory is a throwaway copy of the repository at the run's base \
             commit: look and run the tests; whatever you change there is discarded. A command \
             may run {} s and {} bytes of its output are shown.",
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
        let (copy, sandbox) = match self.ready().await {
            Ok(ready) => ready,
            Err(why) => {
                return (
                    format!("The command did not run: the repository cannot be looked at ({why})."),
                    vec![],
                );
            }
        };
        let disk = gates::DiskWatch {
            root: &self.scratch,
            budget_bytes: self
                .config
                .worktree_disk_budget_mb
                .saturating_mul(1024 * 1024),
        };
        let ran = gates::run_one(
            sandbox.as_ref(),
            copy.path(),
            command,
            &command_limits(&self.limits),
            &disk,
        )
        .await;
        let who = Who {
            run_id: &self.run_id,
            team: &self.team,
            work_order_id: None,
            timeout_secs: self.limits.command_timeout_secs,
        };
        recorded(ran, command, turn, &who)
    }

    async fn finish(&self, _result: &TaskResult) -> (Finish, Vec<EventData>) {
        (Finish::Accepted, vec![])
    }

    fn exhausted(&self, cost_usd: f64) -> Option<String> {
        over_limits(&self.limits, self.started, cost_usd, "the stage's look")
    }
}
