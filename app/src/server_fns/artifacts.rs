//! A run's artifacts: one rendered from markdown to sanitised HTML, and a delivered work
//! order's diff, behind the run page's views, with their port.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::PortError;

/// Largest artifact rendered.
pub const MAX_ARTIFACT_BYTES: u64 = 1024 * 1024;
/// Most patch text one diff carries; the rest is left out and `truncated` set.
pub const MAX_DIFF_BYTES: usize = 512 * 1024;
/// An artifact rendered from markdown to sanitised HTML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedArtifact {
    pub run_id: String,
    pub path: String,
    pub name: String,
    pub stage: String,
    pub team: String,
    pub bytes: u64,
    /// Sanitised on the server: safe to insert as HTML.
    pub html: String,
}

/// What a diff line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffLineKind {
    Addition,
    Deletion,
    Context,
    /// `@@ -a,b +c,d @@ …`
    Hunk,
}

/// One line of a unified diff, without its `+`/`-`/` ` marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffLine {
    pub kind: DiffLineKind,
    pub text: String,
}

/// One file of a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffFile {
    pub path: String,
    /// The path before a rename.
    pub old_path: Option<String>,
    /// `added`, `deleted`, `modified`, `renamed`, …
    pub status: String,
    pub additions: u32,
    pub deletions: u32,
    pub binary: bool,
    pub lines: Vec<DiffLine>,
}

/// A work order's commit against its parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrderPatch {
    pub run_id: String,
    pub work_order_id: String,
    pub branch: Option<String>,
    pub commit: String,
    pub parent: Option<String>,
    pub files: Vec<DiffFile>,
    /// Totals over every file, counted in full even when lines were left out.
    pub additions: u32,
    pub deletions: u32,
    /// Lines were left out past [`MAX_DIFF_BYTES`] of patch text.
    pub truncated: bool,
}
/// What the artifact server functions may ask of the server.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ArtifactsPort: Send + Sync + 'static {
    /// One of a run's listed artifacts as sanitised HTML.
    async fn artifact_html(
        &self,
        run_id: String,
        path: String,
    ) -> Result<RenderedArtifact, PortError>;
    /// A delivered work order's commit against its parent.
    async fn work_order_diff(
        &self,
        run_id: String,
        work_order_id: String,
    ) -> Result<WorkOrderPatch, PortError>;
}

/// A run's artifact, rendered from markdown to sanitised HTML.
#[server(prefix = "/api", endpoint = "artifact_html")]
pub async fn artifact_html(
    run_id: String,
    path: String,
) -> Result<RenderedArtifact, ServerFnError> {
    super::port::<dyn ArtifactsPort>()?
        .artifact_html(run_id, path)
        .await
        .map_err(super::refused)
}

/// The unified diff of a delivered work order's commit.
#[server(prefix = "/api", endpoint = "work_order_diff")]
pub async fn work_order_diff(
    run_id: String,
    work_order_id: String,
) -> Result<WorkOrderPatch, ServerFnError> {
    super::port::<dyn ArtifactsPort>()?
        .work_order_diff(run_id, work_order_id)
        .await
        .map_err(super::refused)
}
