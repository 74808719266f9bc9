//! The server's side of the insight port: memory search, the audit log, artifacts rendered
//! to sanitised HTML and work-order diffs (see `app::api::insight`).

mod artifact;
mod audit;
mod diff;
mod markdown;

use std::path::PathBuf;
use std::sync::Arc;

use app::api::insight::{
    AuditEvents, ChainStatus, EventJson, InsightPort, MAX_DIFF_BYTES, MemoryResult,
    RenderedArtifact, WorkOrderPatch,
};
use app::backend::BackendError;
use app::model::RunDetail;

use crate::engine::Catalogue;
use crate::gateway::Gateway;
use crate::startup::AppState;
use crate::store::memory::{RecallScope, SHARED_BANK};
use crate::store::{Store, StoreError};

/// Why an insight request failed: a refusal the user can act on, or an internal fault that
/// is logged here and reported opaquely.
#[derive(Debug, thiserror::Error)]
enum InsightError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Artifact(#[from] artifact::ArtifactError),
    #[error(transparent)]
    Diff(#[from] diff::DiffError),
    #[error("the team catalogue cannot be read: {0}")]
    Catalogue(String),
    #[error("a background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl InsightError {
    /// The browser's view: refusals keep their message, faults are logged once.
    fn into_backend(self, what: &str) -> BackendError {
        let refusal = match &self {
            InsightError::Refused(_) => true,
            InsightError::Artifact(e) => e.is_refusal(),
            InsightError::Diff(e) => e.is_refusal(),
            _ => false,
        };
        if refusal {
            BackendError::Refused(self.to_string())
        } else {
            tracing::error!(error = %self, "{what} failed");
            BackendError::Internal
        }
    }
}

/// The port, with the handles it needs.
struct ServerInsight {
    store: Store,
    gateway: Arc<Gateway>,
    data_dir: PathBuf,
}

/// The insight port for the dashboard's context.
pub(super) fn port(state: &AppState) -> Arc<dyn InsightPort> {
    Arc::new(ServerInsight {
        store: state.store.clone(),
        gateway: state.gateway.clone(),
        data_dir: state.config.data_dir.clone(),
    })
}

impl ServerInsight {
    async fn run(&self, run_id: &str) -> Result<RunDetail, InsightError> {
        self.store
            .get_run_detail(run_id)
            .await?
            .ok_or_else(|| InsightError::Refused(format!("there is no run {run_id:?}")))
    }

    fn banks() -> Result<Vec<String>, InsightError> {
        let catalogue = Catalogue::builtin().map_err(|e| InsightError::Catalogue(e.to_string()))?;
        let mut banks: Vec<String> = catalogue.names().into_iter().map(String::from).collect();
        banks.push(SHARED_BANK.to_string());
        Ok(banks)
    }

    async fn search(
        &self,
        q: String,
        bank: Option<String>,
        limit: u32,
    ) -> Result<Vec<MemoryResult>, InsightError> {
        if let Some(bank) = &bank {
            let banks = ServerInsight::banks()?;
            if !banks.contains(bank) {
                return Err(InsightError::Refused(format!(
                    "there is no memory bank {bank:?}; the banks are {}",
                    banks.join(", ")
                )));
            }
        }
        let banks: Vec<&str> = bank.as_deref().into_iter().collect();
        let scope = RecallScope {
            banks: &banks,
            ..RecallScope::default()
        };
        let hits =
            crate::engine::memory::recall(&self.store, &self.gateway, &q, &scope, limit).await?;
        Ok(hits
            .into_iter()
            .map(|h| MemoryResult {
                item_id: h.item_id,
                bank: h.bank,
                kind: h.kind,
                text: h.text,
                project: h.project,
                run_id: h.run_id,
                created_at: h.created_at,
                score: h.score,
            })
            .collect())
    }

    async fn artifact(
        &self,
        run_id: String,
        path: String,
    ) -> Result<RenderedArtifact, InsightError> {
        let run = self.run(&run_id).await?;
        let Some(listed) = run.artifacts.iter().find(|a| a.path == path).cloned() else {
            let names: Vec<&str> = run.artifacts.iter().map(|a| a.path.as_str()).collect();
            return Err(InsightError::Refused(format!(
                "{path:?} is not an artifact of run {run_id}; its artifacts are: {}",
                if names.is_empty() {
                    "none yet".to_string()
                } else {
                    names.join(", ")
                }
            )));
        };
        let data_dir = self.data_dir.clone();
        let relative = listed.path.clone();
        let html = tokio::task::spawn_blocking(move || {
            artifact::read_text(&data_dir, &relative).map(|text| markdown::to_safe_html(&text))
        })
        .await??;
        Ok(RenderedArtifact {
            run_id,
            path: listed.path,
            name: listed.name,
            stage: listed.stage,
            team: listed.team,
            bytes: listed.bytes,
            html,
        })
    }

    async fn diff(
        &self,
        run_id: String,
        work_order_id: String,
    ) -> Result<WorkOrderPatch, InsightError> {
        let run = self.run(&run_id).await?;
        let Some(wo) = run.work_orders.iter().find(|w| w.id == work_order_id) else {
            let ids: Vec<&str> = run.work_orders.iter().map(|w| w.id.as_str()).collect();
            return Err(InsightError::Refused(format!(
                "run {run_id} has no work order {work_order_id:?}; its work orders are: {}",
                if ids.is_empty() {
                    "none yet".to_string()
                } else {
                    ids.join(", ")
                }
            )));
        };
        let Some(commit) = wo.commit.clone() else {
            return Err(InsightError::Refused(format!(
                "work order {work_order_id} is {} and has no commit yet: its diff appears once \
                 it is delivered",
                wo.status
            )));
        };
        let Some(repo) = run.summary.project.clone() else {
            return Err(InsightError::Refused(format!(
                "run {run_id} has no project repository to read the diff from"
            )));
        };
        let diff = {
            let commit = commit.clone();
            tokio::task::spawn_blocking(move || {
                diff::commit_diff(std::path::Path::new(&repo), &commit, MAX_DIFF_BYTES)
            })
            .await??
        };
        Ok(WorkOrderPatch {
            run_id,
            work_order_id,
            branch: wo.branch.clone(),
            commit,
            parent: diff.parent,
            additions: diff.files.iter().map(|f| f.additions).sum(),
            deletions: diff.files.iter().map(|f| f.deletions).sum(),
            files: diff.files,
            truncated: diff.truncated,
        })
    }
}

#[async_trait::async_trait]
impl InsightPort for ServerInsight {
    async fn memory_banks(&self) -> Result<Vec<String>, BackendError> {
        ServerInsight::banks().map_err(|e| e.into_backend("memory_banks"))
    }

    async fn search_memory(
        &self,
        q: String,
        bank: Option<String>,
        limit: u32,
    ) -> Result<Vec<MemoryResult>, BackendError> {
        self.search(q, bank, limit)
            .await
            .map_err(|e| e.into_backend("search_memory"))
    }

    async fn audit_page(
        &self,
        before: Option<i64>,
        kind: Option<String>,
        limit: u32,
    ) -> Result<AuditEvents, BackendError> {
        audit::page(&self.store, before, kind.as_deref(), limit)
            .await
            .map_err(|e| InsightError::from(e).into_backend("audit_page"))
    }

    async fn audit_verify(&self) -> Result<ChainStatus, BackendError> {
        audit::verify(&self.store)
            .await
            .map_err(|e| InsightError::from(e).into_backend("audit_verify"))
    }

    async fn event_detail(&self, seq: i64) -> Result<EventJson, BackendError> {
        match audit::detail(&self.store, seq).await {
            Ok(Some(detail)) => Ok(detail),
            Ok(None) => {
                let held = match self.store.last_seq().await.unwrap_or(0) {
                    0 => "the log is empty".to_string(),
                    last => format!("the log holds #1 to #{last}"),
                };
                Err(BackendError::Refused(format!(
                    "there is no event #{seq}: {held}"
                )))
            }
            Err(e) => Err(InsightError::from(e).into_backend("event_detail")),
        }
    }

    async fn artifact_html(
        &self,
        run_id: String,
        path: String,
    ) -> Result<RenderedArtifact, BackendError> {
        self.artifact(run_id, path)
            .await
            .map_err(|e| e.into_backend("artifact_html"))
    }

    async fn work_order_diff(
        &self,
        run_id: String,
        work_order_id: String,
    ) -> Result<WorkOrderPatch, BackendError> {
        self.diff(run_id, work_order_id)
            .await
            .map_err(|e| e.into_backend("work_order_diff"))
    }
}
