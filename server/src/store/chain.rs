//! The hash chain: how an event's hash is computed, and `audit verify`, which walks the whole
//! log and names the first broken link.
//!
//! `hash = SHA-256("factory-event-v1" ‖ prev_hash ‖ seq as 8 bytes big-endian ‖ field(run_id)
//! ‖ field(ts) ‖ field(kind) ‖ field(actor) ‖ field(payload))`, where `field` is one tag byte
//! (0 = absent, 1 = present) then, when present, the length as 8 bytes big-endian and the UTF-8
//! bytes. Length prefixes make the encoding unambiguous; the payload is hashed exactly as
//! stored, so verification needs nothing but the row.

use app::events::{Event, EventData};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::StoreError;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many rows `verify` reads per query.
const VERIFY_PAGE: i64 = 2048;

/// The columns of one `events` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub run_id: Option<String>,
    pub ts: String,
    pub kind: String,
    pub actor: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

impl EventRow {
    /// The hash this row should carry, recomputed from its contents.
    pub fn computed_hash(&self) -> String {
        event_hash(
            &self.prev_hash,
            self.seq,
            self.run_id.as_deref(),
            &self.ts,
            &self.kind,
            &self.actor,
            &self.payload,
        )
    }

    /// Decodes the row into the shared [`Event`] type.
    pub fn into_event(self) -> Result<Event, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            seq: self.seq,
            reason,
        };
        let payload: serde_json::Value = serde_json::from_str(&self.payload)
            .map_err(|e| corrupt(format!("payload is not JSON: {e}")))?;
        let data: EventData =
            serde_json::from_value(serde_json::json!({ "kind": self.kind, "payload": payload }))
                .map_err(|e| corrupt(format!("unknown or malformed `{}` event: {e}", self.kind)))?;
        Ok(Event {
            seq: self.seq,
            run_id: self.run_id,
            ts: self.ts,
            actor: self.actor,
            data,
            hash: self.hash,
        })
    }
}

/// Reads up to `limit` rows after `after`, in sequence order.
pub(crate) async fn page<'e, E>(
    exec: E,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    Ok(sqlx::query_as(
        "SELECT seq, run_id, ts, kind, actor, payload, prev_hash, hash FROM events \
         WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Computes an event's hash (see the module docs for the encoding).
pub fn event_hash(
    prev_hash: &str,
    seq: i64,
    run_id: Option<&str>,
    ts: &str,
    kind: &str,
    actor: &str,
    payload: &str,
) -> String {
    fn field(h: &mut Sha256, value: Option<&str>) {
        match value {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"factory-event-v1");
    h.update(prev_hash.as_bytes());
    h.update(seq.to_be_bytes());
    field(&mut h, run_id);
    field(&mut h, Some(ts));
    field(&mut h, Some(kind));
    field(&mut h, Some(actor));
    field(&mut h, Some(payload));
    hex::encode(h.finalize())
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Sequence number of the first event that fails a check.
    pub seq: i64,
    pub reason: String,
}

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked (up to and including a break).
    pub checked: u64,
    /// Sequence number and hash of the last good event.
    pub head_seq: i64,
    pub head_hash: String,
    /// `None` when every link holds.
    pub broken: Option<ChainBreak>,
}

/// A newest-first page of stored rows as they are (a row that no longer decodes is still
/// shown), with the log's last sequence number read in the same transaction.
#[derive(Debug)]
pub struct RowPage {
    pub rows: Vec<EventRow>,
    pub last_seq: i64,
    /// The sequence number to page on from, when older rows exist.
    pub older: Option<i64>,
}

const COLUMNS: &str = "seq, run_id, ts, kind, actor, payload, prev_hash, hash";

impl super::Store {
    /// Up to `limit` rows before `before` (newest first), of `kind` or of every kind, read
    /// together with the log's last sequence number so a live tail can resume after it.
    pub async fn rows_before(
        &self,
        before: Option<i64>,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<RowPage, StoreError> {
        let mut tx = self.pool().begin().await?;
        let last_seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let below = before.unwrap_or(i64::MAX).min(last_seq.saturating_add(1));
        // One row more than asked says whether an older page exists.
        let fetch = i64::from(limit) + 1;
        let mut rows: Vec<EventRow> = match kind {
            Some(kind) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM events WHERE seq < ? AND kind = ? \
                     ORDER BY seq DESC LIMIT ?"
                ))
                .bind(below)
                .bind(kind)
                .bind(fetch)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?"
                ))
                .bind(below)
                .bind(fetch)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        tx.rollback().await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let older = if more {
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok(RowPage {
            rows,
            last_seq,
            older,
        })
    }

    /// One stored row as it is, by sequence number.
    pub async fn row(&self, seq: i64) -> Result<Option<EventRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM events WHERE seq = ?"))
                .bind(seq)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The newest event of `kind` for each distinct value of the payload field `field`
    /// (e.g. the newest `settings_changed` of each section), oldest first.
    pub async fn newest_by_field(&self, kind: &str, field: &str) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq IN (SELECT MAX(seq) FROM events \
             WHERE kind = ? GROUP BY json_extract(payload, ?)) ORDER BY seq"
        ))
        .bind(kind)
        .bind(format!("$.{field}"))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// The events of `kind` after `after`, in order (at most 1,000). The range is read on the
    /// primary key, so asking often for a few new events stays cheap on a long log.
    pub async fn kind_after(&self, kind: &str, after: i64) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq > ? AND kind = ? ORDER BY seq LIMIT 1000"
        ))
        .bind(after)
        .bind(kind)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// Walks every event in order and checks sequence continuity, each `prev_hash` link and
    /// each stored hash against the row's contents. Stops at the first break.
    pub async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        verify(self.pool()).await
    }
}

/// See [`super::Store::verify_chain`].
async fn verify(pool: &SqlitePool) -> Result<ChainReport, StoreError> {
    let mut report = ChainReport {
        checked: 0,
        head_seq: 0,
        head_hash: GENESIS_HASH.to_string(),
        broken: None,
    };
    loop {
        let rows = page(pool, report.head_seq, VERIFY_PAGE).await?;
        if rows.is_empty() {
            return Ok(report);
        }
        for row in rows {
            report.checked += 1;
            if let Some(reason) = check_link(&report, &row) {
                report.broken = Some(ChainBreak {
                    seq: row.seq,
                    reason,
                });
                return Ok(report);
            }
            report.head_seq = row.seq;
            report.head_hash = row.hash;
        }
    }
}

fn check_link(prev: &ChainReport, row: &EventRow) -> Option<String> {
    if row.seq != prev.head_seq + 1 {
        return Some(format!(
            "expected event #{} next but found #{} (events are missing)",
            prev.head_seq + 1,
            row.seq
        ));
    }
    if row.prev_hash != prev.head_hash {
        return Some(format!(
            "prev_hash does not match the hash of event #{} (an event was removed, reordered or \
             altered)",
            prev.head_seq
        ));
    }
    if row.computed_hash() != row.hash {
        return Some(
            "stored hash does not match the event's contents (the row was altered)".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let base = event_hash(GENESIS_HASH, 1, Some("r"), "t", "k", "a", "{}");
        let variants = [
            event_hash("ff", 1, Some("r"), "t", "k", "a", "{}"),
            event_hash(GENESIS_HASH, 2, Some("r"), "t", "k", "a", "{}"),
            event_hash(GENESIS_HASH, 1, None, "t", "k", "a", "{}"),
            event_hash(GENESIS_HASH, 1, Some("r"), "t2", "k", "a", "{}"),
            event_hash(GENESIS_HASH, 1, Some("r"), "t", "k2", "a", "{}"),
            event_hash(GENESIS_HASH, 1, Some("r"), "t", "k", "a2", "{}"),
            event_hash(GENESIS_HASH, 1, Some("r"), "t", "k", "a", "{ }"),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn an_encoded_payload_reads_back_as_the_same_event() {
        // Text that looks like the envelope's own punctuation, inside the payload.
        let result: app::task::TaskResult = serde_json::from_value(serde_json::json!({
            "status": "COMPLETE", "reasoning": "a \"quoted\" }",
            "artifacts": [{"name": "a.md", "content": "# A\n\"payload\":}"}],
        }))
        .unwrap();
        let events = [
            EventData::StageCompleted {
                run_id: "r".into(),
                index: 0,
                stage: "s".into(),
                team: "t".into(),
                status: app::task::TaskStatus::Complete,
                result,
                artifact_dir: "runs/r/01-s".into(),
                cost_usd: 0.5,
            },
            EventData::AdminTokenCreated {
                token_id: "t1".into(),
                label: "}{".into(),
            },
        ];
        for data in events {
            let (kind, payload) = crate::store::encode(&data).unwrap();
            assert_eq!(kind, data.kind());
            let whole = serde_json::to_value(&data).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&payload).unwrap(),
                whole["payload"]
            );
            let row = EventRow {
                seq: 1,
                run_id: None,
                ts: "t".into(),
                kind: kind.into(),
                actor: "a".into(),
                payload,
                prev_hash: GENESIS_HASH.into(),
                hash: "h".into(),
            };
            assert_eq!(row.into_event().unwrap().data, data);
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        // Moving a character from one field to the next must not collide.
        let a = event_hash(GENESIS_HASH, 1, None, "t", "ab", "c", "{}");
        let b = event_hash(GENESIS_HASH, 1, None, "t", "a", "bc", "{}");
        assert_ne!(a, b);
    }
}
