//! The engine: the supervisor that drives each run through its pipeline of teams.
//!
//! Durable by construction: a run's state is folded from its events ([`state`]); every step
//! is committed with the events it caused (the stage's result, its model calls, memory, the
//! next stage's start) in **one** transaction, and only while the run is still active, so a
//! cancel or a crash can never leave half a step. On start the engine resumes every run that
//! has not finished; a model call that was in flight is issued again with the same call id.

pub mod catalogue;
pub mod context;
mod driver;
pub mod memory;
pub mod pipeline;
pub mod state;
pub mod work;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use app::events::EventData;
use app::model::RunStatus;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::gateway::Gateway;
use crate::store::{NewEvent, Store, StoreError};

pub use app::approval::ApprovalKind;

pub use catalogue::{Catalogue, Team};
pub use pipeline::{Pipeline, Stage};

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

/// Why an engine operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no run with id \"{0}\"")]
    UnknownRun(String),
    #[error("run {run_id} has already finished ({status}); only an active run can be canceled")]
    Finished { run_id: String, status: RunStatus },
    #[error("no approval with id \"{0}\"")]
    UnknownApproval(String),
    #[error(
        "approval {id} was already decided: `{option}` by {decided_by}{}",
        .text.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
    )]
    AlreadyDecided {
        id: String,
        option: String,
        text: Option<String>,
        decided_by: String,
    },
    #[error("run {run_id} has finished ({status}); its approvals can no longer be decided")]
    RunFinished { run_id: String, status: RunStatus },
    #[error("{0}")]
    BadDecision(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The supervisor. Shared behind an `Arc`.
pub struct Engine {
    store: Store,
    gateway: Arc<Gateway>,
    config: EngineConfig,
    data_dir: PathBuf,
    slots: Arc<Semaphore>,
    /// Cancel tokens of runs being driven (or waiting for a slot).
    active: Mutex<HashMap<String, CancellationToken>>,
    /// Stops every driver without changing any run (server shutdown): they resume on start.
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    pub fn new(
        store: Store,
        gateway: Arc<Gateway>,
        config: EngineConfig,
        data_dir: PathBuf,
        shutdown: CancellationToken,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            slots: Arc::new(Semaphore::new(config.max_concurrent_runs)),
            store,
            gateway,
            config,
            data_dir,
            active: Mutex::new(HashMap::new()),
            shutdown,
            tasks: TaskTracker::new(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts driving a run (it waits for a slot while `max_concurrent_runs` are busy).
    /// Submitting a run already being driven does nothing.
    pub fn submit(self: &Arc<Self>, run_id: String) {
        let cancel = {
            let mut active = self.active();
            if active.contains_key(&run_id) {
                return;
            }
            let token = self.shutdown.child_token();
            active.insert(run_id.clone(), token.clone());
            token
        };
        let engine = self.clone();
        self.tasks.spawn(async move {
            let permit = tokio::select! {
                permit = engine.slots.clone().acquire_owned() => permit.ok(),
                () = cancel.cancelled() => None,
            };
            if permit.is_some()
                && let Err(err) = driver::drive(&engine, &run_id, &cancel).await
            {
                tracing::error!(run_id, %err, "the run could not be driven; it resumes on the next start");
            }
            engine.active().remove(&run_id);
        });
    }

    /// Resumes every run that has not finished (on start). Returns how many.
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM supervisor_runs WHERE status IN ('queued', 'running', \
             'waiting_for_human') ORDER BY created_seq",
        )
        .fetch_all(self.store.pool())
        .await?;
        let n = ids.len();
        for id in ids {
            self.submit(id);
        }
        Ok(n)
    }

    /// Cancels an active run: records `canceled` (unless it finished first), then drops its
    /// in-flight model call. Refused for unknown and finished runs.
    pub async fn cancel(&self, run_id: &str, actor: &str) -> Result<(), EngineError> {
        let id = run_id.to_string();
        let actor = actor.to_string();
        let (outcome, _) = self
            .store
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    let status: Option<String> =
                        sqlx::query_scalar("SELECT status FROM supervisor_runs WHERE id = ?")
                            .bind(&id)
                            .fetch_optional(&mut *conn)
                            .await?;
                    let status = status.as_deref().and_then(RunStatus::parse);
                    match status {
                        None => Ok((Err(EngineError::UnknownRun(id)), vec![])),
                        Some(status) if status.is_terminal() => {
                            Ok((Err(EngineError::Finished { run_id: id, status }), vec![]))
                        }
                        Some(_) => {
                            let event = NewEvent::new(
                                actor.clone(),
                                EventData::RunFinished {
                                    run_id: id,
                                    status: RunStatus::Canceled,
                                    reason: format!("canceled by {actor}"),
                                },
                            );
                            Ok((Ok(()), vec![event]))
                        }
                    }
                })
            }))
            .await?;
        outcome?;
        if let Some(token) = self.active().get(run_id) {
            token.cancel();
        }
        Ok(())
    }

    /// Decides a pending approval (see [`record_decision`]) and lets its run continue.
    pub async fn decide(
        self: &Arc<Self>,
        approval_id: &str,
        option: &str,
        text: Option<String>,
        decided_by: &str,
    ) -> Result<String, EngineError> {
        let run_id = record_decision(&self.store, approval_id, option, text, decided_by).await?;
        self.submit(run_id.clone());
        Ok(run_id)
    }

    /// Picks up runs whose approvals were decided by another process (`factory approvals
    /// decide` beside a running server): every `interval` until shutdown.
    pub fn watch_decisions(self: &Arc<Self>, interval: std::time::Duration) {
        let engine = self.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = engine.shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                let ids: Result<Vec<String>, _> = sqlx::query_scalar(
                    "SELECT r.id FROM supervisor_runs r WHERE r.status = 'running' AND \
                     (SELECT kind FROM events WHERE run_id = r.id ORDER BY seq DESC LIMIT 1) \
                     = 'approval_decided'",
                )
                .fetch_all(engine.store.pool())
                .await;
                for id in ids.unwrap_or_default() {
                    engine.submit(id);
                }
            }
        });
    }

    /// Stops accepting work and waits for drivers to stop (after the shutdown token fired).
    pub async fn wait_idle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Checks what a run is started with: the project (a directory, absolute) and the
    /// pipeline (built in or the project's own). The message says what is accepted.
    pub fn check_start(project: Option<&str>, pipeline: Option<&str>) -> Result<(), String> {
        let root = match project {
            Some(p) => {
                let path = std::path::Path::new(p);
                if !path.is_absolute() {
                    return Err(format!(
                        "unknown project `{p}`: give a registered project's name \
                         (`factory project add`) or the absolute path of its directory"
                    ));
                }
                if !path.is_dir() {
                    return Err(format!("unknown project: `{p}` is not a directory"));
                }
                Some(path)
            }
            None => None,
        };
        let name = pipeline.unwrap_or("default");
        let catalogue = Catalogue::load(root).map_err(|e| e.to_string())?;
        let pipelines = pipeline::load_all(&catalogue, root).map_err(|e| e.to_string())?;
        if !pipelines.contains_key(name) {
            return Err(format!(
                "unknown pipeline `{name}` (available: {})",
                pipelines.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    /// Where a run's artifacts are written.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.data_dir.join("runs").join(run_id)
    }
}

/// Records a decision on a pending approval; returns its run. Refused: unknown id, an option
/// the approval does not offer (the message lists those it does), a missing or oversize text,
/// a second decision (with the first one), a run that has finished. The check and the append
/// share one transaction, so two concurrent decisions can never both land.
pub async fn record_decision(
    store: &Store,
    approval_id: &str,
    option: &str,
    text: Option<String>,
    decided_by: &str,
) -> Result<String, EngineError> {
    use app::approval::{ApprovalOption, MAX_DECISION_TEXT};
    let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    if let Some(t) = &text
        && t.chars().count() > MAX_DECISION_TEXT
    {
        return Err(EngineError::BadDecision(format!(
            "`text` is {} characters; the limit is {MAX_DECISION_TEXT}",
            t.chars().count()
        )));
    }
    let id = approval_id.to_string();
    let option = option.to_string();
    let actor = decided_by.to_string();
    let (outcome, _) = store
        .write(Box::new(move |conn| {
            Box::pin(async move {
                type Row = (
                    String,
                    String,
                    String,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                );
                let row: Option<Row> = sqlx::query_as(
                    "SELECT a.run_id, a.kind, a.options, a.status, a.option, a.text, \
                         a.decided_by FROM approvals a WHERE a.id = ?",
                )
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((run_id, kind, options, status, first, first_text, by)) = row else {
                    return Ok((Err(EngineError::UnknownApproval(id)), vec![]));
                };
                if status == "decided" {
                    return Ok((
                        Err(EngineError::AlreadyDecided {
                            id,
                            option: first.unwrap_or_default(),
                            text: first_text,
                            decided_by: by.unwrap_or_default(),
                        }),
                        vec![],
                    ));
                }
                let run_status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM supervisor_runs WHERE id = ?")
                        .bind(&run_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some(status) = run_status.as_deref().and_then(RunStatus::parse)
                    && status.is_terminal()
                {
                    return Ok((Err(EngineError::RunFinished { run_id, status }), vec![]));
                }
                let options: Vec<ApprovalOption> =
                    serde_json::from_str(&options).unwrap_or_default();
                let Some(chosen) = options.iter().find(|o| o.id == option) else {
                    let offered: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
                    return Ok((
                        Err(EngineError::BadDecision(format!(
                            "option `{option}` is not offered by this approval (offered: {})",
                            offered.join(", ")
                        ))),
                        vec![],
                    ));
                };
                if chosen.needs_text && text.is_none() {
                    return Ok((
                        Err(EngineError::BadDecision(format!(
                            "option `{option}` needs `text` ({})",
                            chosen.label
                        ))),
                        vec![],
                    ));
                }
                let kind = serde_json::from_value(serde_json::Value::String(kind))
                    .map_err(StoreError::Encode)?;
                let event = NewEvent::new(
                    actor.clone(),
                    EventData::ApprovalDecided {
                        approval_id: id,
                        run_id: run_id.clone(),
                        kind,
                        option,
                        text,
                        decided_by: actor,
                        automatic: false,
                        policy: None,
                    },
                );
                Ok((Ok(run_id), vec![event]))
            })
        }))
        .await?;
    outcome
}
