//! The engine: the supervisor that drives each run through its pipeline of teams.
//!
//! Durable by construction: a run's state is folded from its events ([`state`]); every step
//! is committed with the events it caused (the stage's result, its model calls, memory, the
//! next stage's start) in **one** transaction, and only while the run is still active, so a
//! cancel or a crash can never leave half a step. On start the engine resumes every run that
//! has not finished; a model call that was in flight is issued again with the same call id.

pub mod agent;
pub mod catalogue;
pub mod context;
mod driver;
pub mod memory;
pub mod pipeline;
pub mod repo_map;
mod start;
pub mod state;
pub mod templates;
pub mod work;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use app::dto::RunStatus;
use app::events::EventData;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ApprovalsConfig, EngineConfig};
use crate::gateway::Gateway;
use crate::hub::LiveProgress;
use crate::store::{NewEvent, Store, StoreError};

pub use app::approval::ApprovalKind;

pub use catalogue::{Catalogue, Team};
pub use pipeline::{Pipeline, Stage};
pub use start::StartError;

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
    /// Clarification limits and approval policies.
    approvals: ApprovalsConfig,
    data_dir: PathBuf,
    slots: Arc<Semaphore>,
    /// Cancel tokens of runs being driven (or waiting for a slot).
    active: Mutex<HashMap<String, CancellationToken>>,
    /// Active runs submitted again (a decision recorded while their drive was ending): driven
    /// once more when that drive ends.
    again: Mutex<std::collections::HashSet<String>>,
    /// Stops every driver without changing any run (server shutdown): they resume on start.
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// How far the models streaming stage replies have got (not recorded; see
    /// [`LiveProgress`]).
    progress: Arc<LiveProgress>,
    /// Repository maps by commit (memory, and `<data_dir>/cache/repo-maps`).
    repo_maps: Arc<repo_map::RepoMapCache>,
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
        approvals: ApprovalsConfig,
        data_dir: PathBuf,
        shutdown: CancellationToken,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            slots: Arc::new(Semaphore::new(config.max_concurrent_runs)),
            store,
            gateway,
            config,
            approvals,
            active: Mutex::new(HashMap::new()),
            again: Mutex::default(),
            shutdown,
            tasks: TaskTracker::new(),
            progress: Arc::new(LiveProgress::default()),
            repo_maps: Arc::new(repo_map::RepoMapCache::new(
                repo_map::Limits::default(),
                Some(data_dir.join("cache").join("repo-maps")),
            )),
            data_dir,
        })
    }

    /// The map of a run's repository at its base commit (built once per commit), or `None`
    /// when the run has no project or the map cannot be made (logged; the team then works
    /// without it).
    pub(crate) async fn repo_map(&self, run: &state::RunState) -> Option<Arc<repo_map::RepoMap>> {
        let (project, base) = (run.project.clone()?, run.base_commit.clone()?);
        let (cache, scratch) = (
            self.repo_maps.clone(),
            self.data_dir.join("cache").join("scratch"),
        );
        let built = tokio::task::spawn_blocking(move || {
            cache.for_repo_commit(std::path::Path::new(&project), &base, &scratch)
        })
        .await;
        match built {
            Ok(Ok(map)) => Some(map),
            Ok(Err(e)) => {
                tracing::warn!(run_id = %run.run_id, error = %e, "no repository map");
                None
            }
            Err(e) => {
                tracing::warn!(run_id = %run.run_id, error = %e, "repository map task failed");
                None
            }
        }
    }

    /// Streamed stage replies in progress, for the pages and the CLI that show them.
    pub fn progress(&self) -> &Arc<LiveProgress> {
        &self.progress
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
                self.again
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(run_id);
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
            let again = {
                let mut active = engine.active();
                active.remove(&run_id);
                let mut again = engine.again.lock().unwrap_or_else(|e| e.into_inner());
                again.remove(&run_id)
            };
            if again && !engine.shutdown.is_cancelled() {
                engine.submit(run_id);
            }
        });
    }

    /// Resumes every run that has not finished (on start). Returns how many.
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, StoreError> {
        let ids = self.store.unfinished_runs().await?;
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
                    match crate::store::runs::status(conn, &id).await? {
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
        let token = self.active().get(run_id).cloned();
        match token {
            Some(token) => token.cancel(),
            // Not being driven (waiting for a person): its trace ends here.
            None => driver::trace_ended(self, run_id).await,
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
                let ids = engine.store.runs_with_undriven_decisions().await;
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
    use app::approval::{Approval, ApprovalStatus, MAX_DECISION_TEXT};
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
                let Some(approval) = crate::store::approvals::get(&mut *conn, &id).await? else {
                    return Ok((Err(EngineError::UnknownApproval(id)), vec![]));
                };
                let Approval {
                    run_id,
                    kind,
                    options,
                    status,
                    decision,
                    created_at,
                    ..
                } = approval;
                if status == ApprovalStatus::Decided {
                    let first = decision.unwrap_or_default();
                    return Ok((
                        Err(EngineError::AlreadyDecided {
                            id,
                            option: first.option,
                            text: first.text,
                            decided_by: first.decided_by,
                        }),
                        vec![],
                    ));
                }
                if let Some(status) = crate::store::runs::status(conn, &run_id).await?
                    && status.is_terminal()
                {
                    return Ok((Err(EngineError::RunFinished { run_id, status }), vec![]));
                }
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
                trace_wait(&run_id, &id, kind, &created_at, &option);
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

/// Sends the span of an approval's wait, from its request to this decision (traces on only).
fn trace_wait(
    run_id: &str,
    approval_id: &str,
    kind: app::approval::ApprovalKind,
    created_at: &str,
    option: &str,
) {
    if !crate::telemetry::tracing_on() {
        return;
    }
    let Ok(asked) = chrono::DateTime::parse_from_rfc3339(created_at) else {
        return;
    };
    crate::telemetry::run_span(
        run_id,
        "factory.approval_wait",
        asked.into(),
        vec![
            opentelemetry::KeyValue::new("factory.run.id", run_id.to_string()),
            opentelemetry::KeyValue::new("factory.approval.id", approval_id.to_string()),
            opentelemetry::KeyValue::new("factory.approval.kind", kind.as_str()),
            opentelemetry::KeyValue::new("factory.approval.option", option.to_string()),
        ],
    );
}
