//! The server's side of the artifacts port: a run's artifact rendered to sanitised HTML, and a
//! delivered work order's diff (see `app::server_fns::artifacts`); the same reads serve MCP.

mod diff;
mod files;
mod markdown;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::dto::{ArtifactRef, RunDetail};
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
    async fn artifact(&self, run_id: String, path: String) -> Result<RenderedArtifact, Failure> {
        let (listed, text) = read_artifact(&self.store, &self.data_dir, &run_id, &path).await?;
        let html = tokio::task::spawn_blocking(move || markdown::to_safe_html(&text)).await?;
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
}

async fn run(store: &Store, run_id: &str) -> Result<RunDetail, Failure> {
    store
        .get_run_detail(run_id)
        .await?
        .ok_or_else(|| Failure::Refused(format!("there is no run {run_id:?}")))
}

/// One of a run's listed artifacts (`path` relative to the data directory) and its text.
async fn read_artifact(
    store: &Store,
    data_dir: &Path,
    run_id: &str,
    path: &str,
) -> Result<(ArtifactRef, String), Failure> {
    let run = run(store, run_id).await?;
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
    let data_dir = data_dir.to_path_buf();
    let relative = listed.path.clone();
    let text =
        tokio::task::spawn_blocking(move || files::read_text(&data_dir, &relative)).await??;
    Ok((listed, text))
}

/// A delivered work order's commit against its parent.
async fn diff(
    store: &Store,
    run_id: String,
    work_order_id: String,
) -> Result<WorkOrderPatch, Failure> {
    let run = run(store, &run_id).await?;
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

/// The text of one of a run's listed artifacts (`path` relative to the data directory), read
/// with the dashboard's checks (plain paths, no links, at most `MAX_ARTIFACT_BYTES`): what the
/// artifact view renders and the MCP server returns.
pub(crate) async fn artifact_text(
    store: &Store,
    data_dir: &Path,
    run_id: &str,
    path: &str,
) -> Result<(ArtifactRef, String), PortError> {
    read_artifact(store, data_dir, run_id, path)
        .await
        .map_err(|e| e.into_port("artifact_text"))
}

/// A delivered work order's diff, as the diff view shows it (and the MCP server returns it).
pub(crate) async fn work_order_diff(
    store: &Store,
    run_id: String,
    work_order_id: String,
) -> Result<WorkOrderPatch, PortError> {
    diff(store, run_id, work_order_id)
        .await
        .map_err(|e| e.into_port("work_order_diff"))
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
        work_order_diff(&self.store, run_id, work_order_id).await
    }
}
