//! The engine's parts of `factory.toml`: its limits (`[engine]`) and the clarification and
//! approval policies (`[approvals]`).

use serde::{Deserialize, Serialize};

/// Engine limits (`[engine]` in factory.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Runs driven at once; more wait in `queued`.
    pub max_concurrent_runs: usize,
    /// Attempts of all stages of one run together.
    pub max_iterations_per_run: u32,
    /// Backoff after a failed attempt: base, doubled per attempt, capped.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Output tokens asked of a team per call.
    pub max_output_tokens: u32,
    /// Memory items recalled into a team's context.
    pub recall_k: u32,
    /// Independent work orders delivered at once.
    pub max_parallel_work_orders: usize,
    /// Disk all work-order worktrees may use together, in MiB.
    pub worktree_disk_budget_mb: u64,
    /// Keep a delivered work order's worktree this long for inspection (0: remove at once);
    /// older ones are collected when the server starts.
    pub worktree_retention_secs: u64,
    /// Longest a gate may run, in seconds, whatever a repository's `.factory/project.toml`
    /// asks (its `gate_timeout_secs` is clamped to this).
    pub gate_timeout_max_secs: u64,
    /// Most gate output kept, in bytes, whatever a repository asks.
    pub gate_output_max_bytes: usize,
    /// Memory a bubblewrap gate may use, in MiB (a cgroup where one can be made, else an
    /// address-space limit per process).
    pub sandbox_memory_mb: u64,
    /// Size of a bubblewrap gate's private `/tmp`, in MiB.
    pub sandbox_tmp_mb: u64,
    /// Host directories every gate sees read-only at their own path (toolchains outside
    /// `/usr`, e.g. `/root/.rustup`); a `bin/` inside one goes on the gate's `PATH`.
    pub toolchain_paths: Vec<String>,
    /// Stage replies are streamed where the model can, so the run page and `factory run` show
    /// how far a slow model has got (and a stalled stream fails on `retry.stall_secs`).
    pub stream_replies: bool,
    /// Tokens of the repository map shown to teams that plan or change code (at most a quarter
    /// of their prompt's budget).
    pub repo_map_tokens: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_concurrent_runs: 3,
            max_iterations_per_run: 60,
            backoff_base_ms: 1_000,
            backoff_max_ms: 30_000,
            max_output_tokens: 4_096,
            recall_k: 8,
            max_parallel_work_orders: 3,
            worktree_disk_budget_mb: 4_096,
            worktree_retention_secs: 0,
            gate_timeout_max_secs: 3_600,
            gate_output_max_bytes: 1024 * 1024,
            sandbox_memory_mb: 4_096,
            sandbox_tmp_mb: 1_024,
            toolchain_paths: Vec::new(),
            stream_replies: true,
            repo_map_tokens: 2_048,
        }
    }
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_runs == 0
            || self.max_iterations_per_run == 0
            || self.max_output_tokens == 0
        {
            return Err(
                "[engine]: max_concurrent_runs, max_iterations_per_run and max_output_tokens \
                 must be at least 1"
                    .into(),
            );
        }
        if self.gate_timeout_max_secs == 0
            || self.gate_output_max_bytes == 0
            || self.sandbox_memory_mb == 0
            || self.sandbox_tmp_mb == 0
        {
            return Err(
                "[engine]: gate_timeout_max_secs, gate_output_max_bytes, sandbox_memory_mb and \
                 sandbox_tmp_mb must be at least 1"
                    .into(),
            );
        }
        for path in &self.toolchain_paths {
            if !path.starts_with('/') || path.contains(':') {
                return Err(format!(
                    "[engine] toolchain_paths: `{path}` must be an absolute path without `:`"
                ));
            }
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            return Err("[engine]: backoff_base_ms must not exceed backoff_max_ms".into());
        }
        Ok(())
    }
}

/// Clarifications and approvals (`[approvals]` in factory.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// Questions one objective may ask other teams.
    pub max_clarifications_per_objective: u32,
    /// How deep answering teams may ask in turn (1: only the stage itself asks).
    pub max_hop_depth: u32,
    /// How long a team has to answer a clarification before a person is asked.
    pub clarification_ttl_ms: u64,
    /// The director policy: a plan whose work orders are all low risk with at least this
    /// confidence is approved automatically (the decision is recorded).
    pub plan_auto_min_confidence: f64,
    /// Ask a person for a final review before a run succeeds.
    pub final_review: bool,
    /// Decide plan and review approvals automatically (`factory run --auto-approve`).
    pub auto_approve: bool,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            max_clarifications_per_objective: 3,
            max_hop_depth: 2,
            clarification_ttl_ms: 600_000,
            plan_auto_min_confidence: 0.95,
            final_review: true,
            auto_approve: false,
        }
    }
}

impl ApprovalsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_hop_depth == 0 || self.clarification_ttl_ms == 0 {
            return Err(
                "[approvals]: max_hop_depth and clarification_ttl_ms must be at least 1".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.plan_auto_min_confidence) {
            return Err("[approvals]: plan_auto_min_confidence must be between 0 and 1".into());
        }
        Ok(())
    }
}
