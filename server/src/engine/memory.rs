//! Recall: BM25 over memory items (SQLite FTS5), fused with cosine similarity over stored
//! vectors when a local embedding model answers (`local/embed`, e.g. an Ollama embedding
//! model). Fusion is reciprocal-rank (k = 60) over the BM25 hits and the newest items in scope;
//! vectors missing for candidates are computed (at most [`EMBED_BATCH`] per recall) and cached.

use std::collections::HashMap;

use crate::gateway::Gateway;
use crate::store::memory::{MemoryHit, RecallScope, cosine};
use crate::store::{Store, StoreError};

/// BM25 hits considered for fusion.
const BM25_DEPTH: u32 = 50;
/// Newest items in scope considered for vector similarity.
const VECTOR_DEPTH: u32 = 200;
/// Vectors computed per recall at most (the rest on later recalls).
pub const EMBED_BATCH: usize = 64;
/// Reciprocal-rank-fusion constant.
const RRF_K: f64 = 60.0;
/// Characters of an item embedded.
const EMBED_CHARS: usize = 2_000;

/// The `k` best items for `query`: BM25 alone, or fused with vectors when embeddings work.
pub async fn recall(
    store: &Store,
    gateway: &Gateway,
    query: &str,
    scope: &RecallScope<'_>,
    k: u32,
) -> Result<Vec<MemoryHit>, StoreError> {
    let bm25 = store.recall(query, scope, BM25_DEPTH.max(k)).await?;
    let Some((model, query_vector)) = gateway
        .embed(&[query.to_string()])
        .await
        .and_then(|(m, mut v)| v.pop().map(|q| (m, q)))
    else {
        return Ok(bm25.into_iter().take(k as usize).collect());
    };
    let mut candidates: Vec<MemoryHit> = bm25.clone();
    for hit in store.recent_memory(scope, VECTOR_DEPTH).await? {
        if !candidates.iter().any(|c| c.item_id == hit.item_id) {
            candidates.push(hit);
        }
    }
    let ids: Vec<String> = candidates.iter().map(|c| c.item_id.clone()).collect();
    let mut vectors: HashMap<String, Vec<f32>> = store
        .memory_vectors(&model, &ids)
        .await?
        .into_iter()
        .collect();
    let missing: Vec<&MemoryHit> = candidates
        .iter()
        .filter(|c| !vectors.contains_key(&c.item_id))
        .take(EMBED_BATCH)
        .collect();
    if !missing.is_empty() {
        let texts: Vec<String> = missing
            .iter()
            .map(|c| c.text.chars().take(EMBED_CHARS).collect())
            .collect();
        if let Some((m, computed)) = gateway.embed(&texts).await
            && m == model
        {
            let fresh: Vec<(String, Vec<f32>)> = missing
                .iter()
                .map(|c| c.item_id.clone())
                .zip(computed)
                .collect();
            store.store_memory_vectors(&model, fresh.clone()).await?;
            vectors.extend(fresh);
        }
    }
    let mut by_vector: Vec<(f64, &str)> = candidates
        .iter()
        .filter_map(|c| {
            vectors
                .get(&c.item_id)
                .map(|v| (cosine(&query_vector, v), c.item_id.as_str()))
        })
        .collect();
    by_vector.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut fused: HashMap<&str, f64> = HashMap::new();
    for (rank, hit) in bm25.iter().enumerate() {
        *fused.entry(hit.item_id.as_str()).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
    }
    for (rank, (_, id)) in by_vector.iter().enumerate() {
        *fused.entry(id).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
    }
    let mut out: Vec<MemoryHit> = candidates
        .iter()
        .filter_map(|c| {
            fused.get(c.item_id.as_str()).map(|score| MemoryHit {
                score: *score,
                ..c.clone()
            })
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item_id.cmp(&b.item_id)));
    out.truncate(k as usize);
    Ok(out)
}
