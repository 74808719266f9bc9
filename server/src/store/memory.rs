//! Memory: items retained per bank (each team's own, and the shared `factory-shared-world`),
//! recalled with SQLite FTS5 ranked by BM25, filtered by bank and project, top-k bounded.

use app::events::{Event, EventData};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::batch::{Tx, rows_of};
use super::{Store, StoreError};

/// The bank every team reads and the place shared facts go.
pub const SHARED_BANK: &str = "factory-shared-world";

/// Largest `k` a recall or search returns.
pub const MAX_RECALL: u32 = 50;

/// One recalled item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryHit {
    pub item_id: String,
    pub bank: String,
    pub project: Option<String>,
    pub run_id: Option<String>,
    pub kind: String,
    pub text: String,
    pub created_at: String,
    /// BM25 score (higher is better).
    pub score: f64,
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct RecallScope<'a> {
    /// Banks to search (empty: every bank).
    pub banks: &'a [&'a str],
    /// Only this project's items; `None` with `run_id`: only that run's items.
    pub project: Option<&'a str>,
    pub run_id: Option<&'a str>,
    /// Leave out this run's items (a run already has its own results in full).
    pub exclude_run: Option<&'a str>,
}

/// Turns free text into an FTS5 query: each word quoted (no operators can be injected), any
/// word may match; BM25 ranks items matching more and rarer words first.
pub fn fts_query(text: &str) -> Option<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words.truncate(64);
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}

impl Store {
    /// The `k` best items for `query` within `scope`.
    pub async fn recall(
        &self,
        query: &str,
        scope: &RecallScope<'_>,
        k: u32,
    ) -> Result<Vec<MemoryHit>, StoreError> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT m.item_id, m.bank, m.project, m.run_id, m.kind, m.text, m.created_at, \
             -bm25(memory_fts) AS score FROM memory_fts JOIN memory_items m \
             ON m.rowid = memory_fts.rowid WHERE memory_fts MATCH ",
        );
        sql.push_bind(fts);
        push_scope(&mut sql, scope);
        sql.push(" ORDER BY score DESC, m.rowid LIMIT ")
            .push_bind(i64::from(k.min(MAX_RECALL)));
        hits(sql.build().fetch_all(self.pool()).await?)
    }

    /// The newest `limit` items within `scope`, whatever their words (candidates for vector
    /// search), with score 0.
    pub async fn recent_memory(
        &self,
        scope: &RecallScope<'_>,
        limit: u32,
    ) -> Result<Vec<MemoryHit>, StoreError> {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT m.item_id, m.bank, m.project, m.run_id, m.kind, m.text, m.created_at, \
             0.0 AS score FROM memory_items m WHERE 1 = 1",
        );
        push_scope(&mut sql, scope);
        sql.push(" ORDER BY m.rowid DESC LIMIT ")
            .push_bind(i64::from(limit));
        hits(sql.build().fetch_all(self.pool()).await?)
    }

    /// Stored vectors of `model` for these items.
    pub async fn memory_vectors(
        &self,
        model: &str,
        item_ids: &[String],
    ) -> Result<Vec<(String, Vec<f32>)>, StoreError> {
        let mut out = Vec::new();
        for chunk in item_ids.chunks(500) {
            let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT item_id, vector FROM memory_vectors WHERE model = ",
            );
            sql.push_bind(model).push(" AND item_id IN (");
            let mut ids = sql.separated(", ");
            for id in chunk {
                ids.push_bind(id);
            }
            sql.push(")");
            for row in sql.build().fetch_all(self.pool()).await? {
                let bytes: Vec<u8> = row.try_get(1)?;
                out.push((row.try_get(0)?, decode_vector(&bytes)));
            }
        }
        Ok(out)
    }

    /// Caches vectors (not events: they are derived, recomputable data).
    pub async fn store_memory_vectors(
        &self,
        model: &str,
        vectors: Vec<(String, Vec<f32>)>,
    ) -> Result<(), StoreError> {
        if vectors.is_empty() {
            return Ok(());
        }
        let model = model.to_string();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT OR REPLACE INTO memory_vectors (item_id, model, vector) ",
                );
                sql.push_values(&vectors, |mut row, (id, v)| {
                    row.push_bind(id)
                        .push_bind(&model)
                        .push_bind(encode_vector(v));
                });
                sql.build().execute(&mut *conn).await?;
                Ok(((), vec![]))
            })
        }))
        .await?;
        Ok(())
    }
}

fn push_scope(sql: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>, scope: &RecallScope<'_>) {
    if !scope.banks.is_empty() {
        sql.push(" AND m.bank IN (");
        let mut banks = sql.separated(", ");
        for bank in scope.banks {
            banks.push_bind(bank.to_string());
        }
        sql.push(")");
    }
    match (scope.project, scope.run_id) {
        (Some(project), _) => {
            sql.push(" AND m.project = ").push_bind(project.to_string());
        }
        (None, Some(run_id)) => {
            sql.push(" AND m.run_id = ").push_bind(run_id.to_string());
        }
        (None, None) => {}
    }
    if let Some(run_id) = scope.exclude_run {
        sql.push(" AND (m.run_id IS NULL OR m.run_id <> ")
            .push_bind(run_id.to_string())
            .push(")");
    }
}

fn hits(rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<MemoryHit>, StoreError> {
    rows.into_iter()
        .map(|row| {
            Ok(MemoryHit {
                item_id: row.try_get(0)?,
                bank: row.try_get(1)?,
                project: row.try_get(2)?,
                run_id: row.try_get(3)?,
                kind: row.try_get(4)?,
                text: row.try_get(5)?,
                created_at: row.try_get(6)?,
                score: row.try_get(7)?,
            })
        })
        .collect()
}

/// Little-endian f32s.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode_vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Cosine similarity (0 for empty or mismatched vectors).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Inserts the `memory_retained` events of a batch, 128 rows per statement (an item already
/// stored is kept).
pub(super) fn insert_retained(tx: &mut Tx<'_>, events: &[Event]) {
    for chunk in events.chunks(128) {
        let sql = format!(
            "INSERT INTO memory_items (item_id, bank, project, run_id, kind, text, created_at) \
             VALUES {} ON CONFLICT (item_id) DO NOTHING",
            rows_of(7, chunk.len())
        );
        let mut stmt = tx.push(&sql);
        for event in chunk {
            if let EventData::MemoryRetained {
                item_id,
                bank,
                project,
                run_id,
                kind,
                text,
            } = &event.data
            {
                stmt = stmt
                    .bind(item_id)
                    .bind(bank)
                    .bind(project)
                    .bind(run_id)
                    .bind(kind)
                    .bind(text)
                    .bind(&event.ts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn queries_are_quoted_words_so_nothing_is_injected() {
        assert_eq!(
            fts_query("login OR \"drop\" NEAR(x) a").as_deref(),
            Some("\"drop\" OR \"login\" OR \"near\" OR \"or\"")
        );
        assert_eq!(fts_query("!! ?"), None);
    }
}
