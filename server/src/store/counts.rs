//! Counts the metrics read at scrape time: runs by status, approvals waiting.

use super::{Store, StoreError};

impl Store {
    /// Runs by status (every status, zero included), and approvals waiting for a person.
    pub async fn live_counts(&self) -> Result<(Vec<(String, i64)>, i64), StoreError> {
        let counted: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM supervisor_runs GROUP BY status")
                .fetch_all(self.pool())
                .await?;
        let runs = app::dto::RunStatus::ALL
            .iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(status, _)| status == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (s.as_str().to_string(), n)
            })
            .collect();
        let (waiting,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM approvals WHERE status = ?")
            .bind(app::approval::ApprovalStatus::Pending.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok((runs, waiting))
    }
}
