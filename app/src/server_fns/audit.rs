//! The audit log: newest-first pages of short rows, one event in full and the chain's
//! verification, behind the Audit page, with their port. Input is checked here, before the
//! port is asked.

mod summary;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use summary::{audit_row, event_summary, hash_prefix};

#[cfg(feature = "ssr")]
use super::PortError;
#[cfg(feature = "ssr")]
use super::check_limit;
use super::given;

/// Most audit rows one page holds (and the default).
pub const MAX_AUDIT_ROWS: u32 = 200;
pub const DEFAULT_AUDIT_ROWS: u32 = 50;
/// Longest pretty-printed event shown; longer ones are cut with a note.
pub const MAX_EVENT_DETAIL_BYTES: usize = 256 * 1024;
/// Hex digits of a hash shown in the audit table.
pub const HASH_PREFIX: usize = 12;

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

/// What the audit server functions may ask of the server. Arguments arrive checked.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait AuditPort: Send + Sync + 'static {
    /// Events before `before` (all when `None`), newest first, of one kind or all.
    async fn audit_page(
        &self,
        before: Option<i64>,
        kind: Option<String>,
        limit: u32,
    ) -> Result<AuditEvents, PortError>;
    /// Walks the whole chain.
    async fn audit_verify(&self) -> Result<ChainStatus, PortError>;
    /// One event, pretty-printed and capped at [`MAX_EVENT_DETAIL_BYTES`].
    async fn event_detail(&self, seq: i64) -> Result<EventJson, PortError>;
}

/// An event kind to filter by: snake_case words, as stored.
pub fn check_kind(kind: Option<String>) -> Result<Option<String>, String> {
    match given(kind) {
        Some(k) if k.len() > 64 || !k.chars().all(|c| c.is_ascii_lowercase() || c == '_') => Err(
            format!("{k:?} is not an event kind: kinds are snake_case words such as `run_created`"),
        ),
        k => Ok(k),
    }
}

/// A page of the audit log, newest first: the events before `before`, of `kind` or all.
#[server(prefix = "/api", endpoint = "audit_page")]
pub async fn audit_page(
    before: Option<i64>,
    kind: Option<String>,
    limit: Option<u32>,
) -> Result<AuditEvents, ServerFnError> {
    let kind = check_kind(kind).map_err(ServerFnError::new)?;
    let limit =
        check_limit(limit, DEFAULT_AUDIT_ROWS, MAX_AUDIT_ROWS).map_err(ServerFnError::new)?;
    super::port::<dyn AuditPort>()?
        .audit_page(before, kind, limit)
        .await
        .map_err(super::refused)
}

/// Walks the hash chain: intact, or the first broken link.
#[server(prefix = "/api", endpoint = "audit_verify")]
pub async fn audit_verify() -> Result<ChainStatus, ServerFnError> {
    super::port::<dyn AuditPort>()?
        .audit_verify()
        .await
        .map_err(super::refused)
}

/// One event as pretty-printed JSON.
#[server(prefix = "/api", endpoint = "event_detail")]
pub async fn event_detail(seq: i64) -> Result<EventJson, ServerFnError> {
    super::port::<dyn AuditPort>()?
        .event_detail(seq)
        .await
        .map_err(super::refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_snake_case_words() {
        assert_eq!(check_kind(Some(String::new())), Ok(None));
        assert_eq!(
            check_kind(Some("run_created".into())),
            Ok(Some("run_created".into()))
        );
        assert!(check_kind(Some("x' OR 1".into())).is_err());
    }
}
