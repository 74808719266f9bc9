//! What the Memory and Audit pages and the artifact and diff views receive: one definition
//! for the server that fills them and the browser that shows them.

use serde::{Deserialize, Serialize};

/// Longest search text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 2_000;
/// Most memory hits one search returns (and the default).
pub const MAX_SEARCH_HITS: u32 = 50;
pub const DEFAULT_SEARCH_HITS: u32 = 20;
/// Most audit rows one page holds (and the default).
pub const MAX_AUDIT_ROWS: u32 = 200;
pub const DEFAULT_AUDIT_ROWS: u32 = 50;
/// Longest pretty-printed event shown; longer ones are cut with a note.
pub const MAX_EVENT_DETAIL_BYTES: usize = 256 * 1024;
/// Largest artifact rendered.
pub const MAX_ARTIFACT_BYTES: u64 = 1024 * 1024;
/// Most patch text one diff carries; the rest is left out and `truncated` set.
pub const MAX_DIFF_BYTES: usize = 512 * 1024;
/// Hex digits of a hash shown in the audit table.
pub const HASH_PREFIX: usize = 12;

/// One memory item that matched a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryResult {
    pub item_id: String,
    /// The team bank (or the shared bank) it was retained in.
    pub bank: String,
    /// `fact` or `artifact_summary`.
    pub kind: String,
    pub text: String,
    pub project: Option<String>,
    /// The run that retained it, so a hit links back to where it was learnt.
    pub run_id: Option<String>,
    pub created_at: String,
    /// Relevance (higher is better); only the order is meaningful.
    pub score: f64,
}

/// One row of the audit table: what happened, never the whole payload (a stage's event
/// carries its artifacts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: String,
    pub actor: String,
    pub kind: String,
    pub run_id: Option<String>,
    /// One short line (see [`super::event_summary`]).
    pub summary: String,
    /// The first [`HASH_PREFIX`] hex digits of the event's hash.
    pub hash: String,
    /// The same of the previous event's hash; empty when not known (a live row whose
    /// predecessor is not on the page).
    pub prev_hash: String,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvents {
    pub rows: Vec<AuditRow>,
    /// Highest sequence number in the log when the page was read: the live tail resumes
    /// after it.
    pub last_seq: i64,
    /// `before` for the next, older page; `None` when this page reaches the first event.
    pub older: Option<i64>,
}

/// The first link of the chain that does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: String,
}

/// The result of walking the whole hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Events checked (up to and including a break).
    pub checked: u64,
    /// The last good event.
    pub head_seq: i64,
    pub head_hash: String,
    /// `None` when every link holds.
    pub broken: Option<BrokenLink>,
    pub duration_ms: u64,
}

/// One event as pretty-printed JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventJson {
    pub seq: i64,
    pub kind: String,
    pub json: String,
    /// Size of the whole pretty-printed event; more than `json.len()` when it was cut.
    pub bytes: usize,
    pub truncated: bool,
}

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
