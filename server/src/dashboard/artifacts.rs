//! The server's side of the artifacts port: a run's artifact rendered to sanitised HTML, and a
//! delivered work order's diff (see `app::server_fns::artifacts`).

mod diff;
mod files;
mod markdown;

use std::path::PathBuf;
use std::sync::Arc;

use app::dto::RunDetail;
use app::server_fns::PortError;
use app::server_fns::artifacts::{ArtifactsPort, MAX_DIFF_BYTES, RenderedArtifact, WorkOrderPatch};

pub(super) use diff::DiffError;
pub(super) use files::ArtifactError;

use super::failure::Failure;
use crate::startup::AppState;
use crate::store::Store;

/// The port, with the handles it needs.
struct Artifacts {
    store: Store,
    data_dir: PathBuf,
}

/// The artifacts port for the dashboard's context.
pub(super) fn port(state: &AppState) -> Arc<dyn ArtifactsPort> {
    Arc::new(Artifacts {
        store: state.store.clone(),
        data_dir: state.config.data_dir.clone(),
    })
}

impl Artifacts {
    async fn run(&self, run_id: &str) -> Result<RunDetail, Failure> {
        self.store
            .get_run_detail(run_id)
            .await?
            .ok_or_else(|| Failure::Refused(format!("there is no run {run_id:?}")))
    }

    async fn artifact(&self, run_id: String, path: String) -> Result<RenderedArtifact, Failure> {
        let run = self.run(&run_id).await?;
        let Some(listed) = run.artifacts.iter().find(|a| a.path == path).cloned() else {
            let names: Vec<&str> = run.artifacts.iter().map(|a| a.path.as_str()).collect();
            return Err(Failure::Refused(format!(
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
            files::read_text(&data_dir, &relative).map(|text| markdown::to_safe_html(&text))
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

    async fn diff(&self, run_id: String, work_order_id: String) -> Result<WorkOrderPatch, Failure> {
        let run = self.run(&run_id).await?;
        let Some(wo) = run.work_orders.iter().find(|w| w.id == work_order_id) else {
            let ids: Vec<&str> = run.work_orders.iter().map(|w| w.id.as_str()).collect();
            return Err(Failure::Refused(format!(
                "run {run_id} has no work order {work_order_id:?}; its work orders are: {}",
                if ids.is_empty() {
                    "none yet".to_string()
                } else {
                    ids.join(", ")
                }
            )));
        };
        let Some(commit) = wo.commit.clone() else {
            return Err(Failure::Refused(format!(
                "work order {work_order_id} is {} and has no commit yet: its diff appears once \
                 it is delivered",
                wo.status
            )));
        };
        let Some(repo) = run.summary.project.clone() else {
            return Err(Failure::Refused(format!(
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
impl ArtifactsPort for Artifacts {
    async fn artifact_html(
        &self,
        run_id: String,
        path: String,
    ) -> Result<RenderedArtifact, PortError> {
        self.artifact(run_id, path)
            .await
            .map_err(|e| e.into_port("artifact_html"))
    }

    async fn work_order_diff(
        &self,
        run_id: String,
        work_order_id: String,
    ) -> Result<WorkOrderPatch, PortError> {
        self.diff(run_id, work_order_id)
            .await
            .map_err(|e| e.into_port("work_order_diff"))
    }
}
