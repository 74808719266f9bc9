//! Memory, audit and artifacts: the server functions behind the Memory and Audit pages and
//! the run page's artifact and diff views, with their port. Input is checked here, before the
//! port is asked, so every refusal names what was wrong and what is accepted.

mod dto;
mod summary;

use leptos::prelude::*;

pub use dto::*;
pub use summary::{audit_row, event_summary, hash_prefix};

#[cfg(feature = "ssr")]
use crate::backend::BackendError;

/// What the insight server functions may ask of the server. Arguments arrive checked (see
/// [`check_query`], [`check_limit`], [`check_kind`]).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait InsightPort: Send + Sync + 'static {
    /// Every memory bank: one per team, then the shared bank.
    async fn memory_banks(&self) -> Result<Vec<String>, BackendError>;
    /// The best `limit` memory items for `q`, in one bank or all.
    async fn search_memory(
        &self,
        q: String,
        bank: Option<String>,
        limit: u32,
    ) -> Result<Vec<MemoryResult>, BackendError>;
    /// Events before `before` (all when `None`), newest first, of one kind or all.
    async fn audit_page(
        &self,
        before: Option<i64>,
        kind: Option<String>,
        limit: u32,
    ) -> Result<AuditEvents, BackendError>;
    /// Walks the whole chain.
    async fn audit_verify(&self) -> Result<ChainStatus, BackendError>;
    /// One event, pretty-printed and capped at [`MAX_EVENT_DETAIL_BYTES`].
    async fn event_detail(&self, seq: i64) -> Result<EventJson, BackendError>;
    /// One of a run's listed artifacts as sanitised HTML.
    async fn artifact_html(
        &self,
        run_id: String,
        path: String,
    ) -> Result<RenderedArtifact, BackendError>;
    /// A delivered work order's commit against its parent.
    async fn work_order_diff(
        &self,
        run_id: String,
        work_order_id: String,
    ) -> Result<WorkOrderPatch, BackendError>;
}

#[cfg(feature = "ssr")]
fn insight() -> Result<std::sync::Arc<dyn InsightPort>, ServerFnError> {
    super::port::<dyn InsightPort>()
}

/// A form field that was left empty counts as not given.
fn given(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The search text, or why it is refused.
pub fn check_query(q: &str) -> Result<String, String> {
    let q = q.trim();
    if q.is_empty() {
        return Err("the search is empty: type a few words to look for".into());
    }
    if q.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "the search is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
            q.len()
        ));
    }
    Ok(q.to_string())
}

/// `limit` (or `default`) when it lies in `1..=max`.
pub fn check_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, String> {
    match limit.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n),
        n => Err(format!("limit {n} is out of range: give 1 to {max}")),
    }
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

/// The memory banks to search in: each team's, then the shared one.
#[server(prefix = "/api", endpoint = "memory_banks")]
pub async fn memory_banks() -> Result<Vec<String>, ServerFnError> {
    insight()?.memory_banks().await.map_err(super::refused)
}

/// Memory items matching `q`, best first, in `bank` or in every bank.
#[server(prefix = "/api", endpoint = "search_memory")]
pub async fn search_memory(
    q: String,
    bank: Option<String>,
    limit: Option<u32>,
) -> Result<Vec<MemoryResult>, ServerFnError> {
    let q = check_query(&q).map_err(ServerFnError::new)?;
    let limit =
        check_limit(limit, DEFAULT_SEARCH_HITS, MAX_SEARCH_HITS).map_err(ServerFnError::new)?;
    insight()?
        .search_memory(q, given(bank), limit)
        .await
        .map_err(super::refused)
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
    insight()?
        .audit_page(before, kind, limit)
        .await
        .map_err(super::refused)
}

/// Walks the hash chain: intact, or the first broken link.
#[server(prefix = "/api", endpoint = "audit_verify")]
pub async fn audit_verify() -> Result<ChainStatus, ServerFnError> {
    insight()?.audit_verify().await.map_err(super::refused)
}

/// One event as pretty-printed JSON.
#[server(prefix = "/api", endpoint = "event_detail")]
pub async fn event_detail(seq: i64) -> Result<EventJson, ServerFnError> {
    insight()?.event_detail(seq).await.map_err(super::refused)
}

/// A run's artifact, rendered from markdown to sanitised HTML.
#[server(prefix = "/api", endpoint = "artifact_html")]
pub async fn artifact_html(
    run_id: String,
    path: String,
) -> Result<RenderedArtifact, ServerFnError> {
    insight()?
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
    insight()?
        .work_order_diff(run_id, work_order_id)
        .await
        .map_err(super::refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_refused_when_empty_or_too_long() {
        assert_eq!(check_query("  tyres "), Ok("tyres".into()));
        assert!(check_query("   ").unwrap_err().contains("empty"));
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert!(check_query(&long).unwrap_err().contains("2000"));
    }

    #[test]
    fn limits_and_kinds_are_bounded() {
        assert_eq!(check_limit(None, 50, 200), Ok(50));
        assert_eq!(check_limit(Some(200), 50, 200), Ok(200));
        assert!(
            check_limit(Some(0), 50, 200)
                .unwrap_err()
                .contains("1 to 200")
        );
        assert!(check_limit(Some(201), 50, 200).is_err());
        assert_eq!(check_kind(Some(String::new())), Ok(None));
        assert_eq!(
            check_kind(Some("run_created".into())),
            Ok(Some("run_created".into()))
        );
        assert!(check_kind(Some("x' OR 1".into())).is_err());
    }
}
