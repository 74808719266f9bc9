//! Memory: items retained per bank (each team's own, and the shared `factory-shared-world`),
//! recalled with SQLite FTS5 ranked by BM25, filtered by bank and project, top-k bounded.

use serde::{Deserialize, Serialize};
use sqlx::Row;

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
        if !scope.banks.is_empty() {
            sql.push(" AND m.bank IN (");
            let mut banks = sql.separated(", ");
            for bank in scope.banks {
                banks.push_bind(*bank);
            }
            sql.push(")");
        }
        match (scope.project, scope.run_id) {
            (Some(project), _) => {
                sql.push(" AND m.project = ").push_bind(project);
            }
            (None, Some(run_id)) => {
                sql.push(" AND m.run_id = ").push_bind(run_id);
            }
            (None, None) => {}
        }
        if let Some(run_id) = scope.exclude_run {
            sql.push(" AND (m.run_id IS NULL OR m.run_id <> ")
                .push_bind(run_id)
                .push(")");
        }
        sql.push(" ORDER BY score DESC, m.rowid LIMIT ")
            .push_bind(i64::from(k.min(MAX_RECALL)));
        let rows = sql.build().fetch_all(self.pool()).await?;
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
