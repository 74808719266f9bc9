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
        if self.backoff_base_ms > self.backoff_max_ms {
            return Err("[engine]: backoff_base_ms must not exceed backoff_max_ms".into());
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
            "SELECT id FROM supervisor_runs WHERE status IN ('queued', 'running') \
             ORDER BY created_seq",
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
                        "`project` must be the absolute path of the project's directory, not `{p}`"
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
