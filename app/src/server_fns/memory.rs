//! Memory: the banks and the search behind the Memory page, with their port. Input is checked
//! here, before the port is asked, so every refusal names what was wrong and what is accepted.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::PortError;
#[cfg(feature = "ssr")]
use super::{check_limit, given};

/// Longest search text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 2_000;
/// Most memory hits one search returns (and the default).
pub const MAX_SEARCH_HITS: u32 = 50;
pub const DEFAULT_SEARCH_HITS: u32 = 20;
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

/// What the memory server functions may ask of the server. Arguments arrive checked.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait MemoryPort: Send + Sync + 'static {
    /// Every memory bank: one per team, then the shared bank.
    async fn memory_banks(&self) -> Result<Vec<String>, PortError>;
    /// The best `limit` memory items for `q`, in one bank or all.
    async fn search_memory(
        &self,
        q: String,
        bank: Option<String>,
        limit: u32,
    ) -> Result<Vec<MemoryResult>, PortError>;
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

/// The memory banks to search in: each team's, then the shared one.
#[server(prefix = "/api", endpoint = "memory_banks")]
pub async fn memory_banks() -> Result<Vec<String>, ServerFnError> {
    super::port::<dyn MemoryPort>()?
        .memory_banks()
        .await
        .map_err(super::refused)
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
    super::port::<dyn MemoryPort>()?
        .search_memory(q, given(bank), limit)
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
}
