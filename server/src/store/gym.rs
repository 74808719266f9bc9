//! The gym's history: every scenario attempt recorded (`gym_scenario_finished`), newest first.

use app::events::EventData;
use app::gym::GymRecord;

use super::{Store, StoreError, chain};

/// A recorded attempt and when it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct GymEntry {
    pub seq: i64,
    pub ts: String,
    pub record: GymRecord,
}

impl Store {
    /// The last `limit` gym attempts recorded, newest first; only `scenario`'s when given.
    pub async fn gym_history(
        &self,
        scenario: Option<&str>,
        limit: u32,
    ) -> Result<Vec<GymEntry>, StoreError> {
        let rows: Vec<chain::EventRow> = sqlx::query_as(
            "SELECT seq, run_id, ts, kind, actor, payload, prev_hash, hash FROM events \
             WHERE kind = 'gym_scenario_finished' \
             AND (?1 IS NULL OR json_extract(payload, '$.record.scenario') = ?1) \
             ORDER BY seq DESC LIMIT ?2",
        )
        .bind(scenario)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let event = row.into_event()?;
            if let EventData::GymScenarioFinished { record } = event.data {
                out.push(GymEntry {
                    seq: event.seq,
                    ts: event.ts,
                    record,
                });
            }
        }
        Ok(out)
    }
}
