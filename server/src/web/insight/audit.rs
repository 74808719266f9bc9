//! The audit log as the dashboard reads it: newest-first pages of short rows, one event in
//! full, and the chain's verification, timed.

use std::time::Instant;

use app::api::insight::{
    AuditEvents, AuditRow, BrokenLink, ChainStatus, EventJson, MAX_EVENT_DETAIL_BYTES, audit_row,
    hash_prefix,
};

use crate::store::chain::{self, EventRow};
use crate::store::{Store, StoreError};

const COLUMNS: &str = "seq, run_id, ts, kind, actor, payload, prev_hash, hash";

/// Up to `limit` events before `before` (newest first), of `kind` or of every kind, read
/// together with the log's last sequence number so the live tail can resume after it.
pub(super) async fn page(
    store: &Store,
    before: Option<i64>,
    kind: Option<&str>,
    limit: u32,
) -> Result<AuditEvents, StoreError> {
    let mut tx = store.pool().begin().await?;
    let last_seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    let below = before.unwrap_or(i64::MAX).min(last_seq.saturating_add(1));
    // One row more than asked says whether an older page exists.
    let fetch = i64::from(limit) + 1;
    let mut rows: Vec<EventRow> =
        match kind {
            Some(kind) => sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM events WHERE seq < ? AND kind = ? ORDER BY seq DESC LIMIT ?"
            ))
            .bind(below)
            .bind(kind)
            .bind(fetch)
            .fetch_all(&mut *tx)
            .await?,
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
    Ok(AuditEvents {
        rows: rows.into_iter().map(row).collect(),
        last_seq,
        older,
    })
}

/// A row's summary, or why it cannot be read (the table still shows it).
fn row(raw: EventRow) -> AuditRow {
    let prev_hash = raw.prev_hash.clone();
    let fallback = AuditRow {
        seq: raw.seq,
        ts: raw.ts.clone(),
        actor: raw.actor.clone(),
        kind: raw.kind.clone(),
        run_id: raw.run_id.clone(),
        summary: String::new(),
        hash: hash_prefix(&raw.hash),
        prev_hash: hash_prefix(&raw.prev_hash),
    };
    match raw.into_event() {
        Ok(event) => audit_row(&event, &prev_hash),
        Err(e) => AuditRow {
            summary: format!("unreadable: {e}"),
            ..fallback
        },
    }
}

/// An event's columns in the order of the table (a JSON object would sort them).
#[derive(serde::Serialize)]
struct Shown<'a> {
    seq: i64,
    ts: &'a str,
    actor: &'a str,
    kind: &'a str,
    run_id: Option<&'a str>,
    prev_hash: &'a str,
    hash: &'a str,
    payload: serde_json::Value,
}

/// One event with every column, pretty-printed, cut at [`MAX_EVENT_DETAIL_BYTES`].
pub(super) async fn detail(store: &Store, seq: i64) -> Result<Option<EventJson>, StoreError> {
    let raw: Option<EventRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM events WHERE seq = ?"))
            .bind(seq)
            .fetch_optional(store.pool())
            .await?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    // The payload as stored; shown as text when it is not JSON (a corrupted row).
    let payload = serde_json::from_str::<serde_json::Value>(&raw.payload)
        .unwrap_or_else(|_| serde_json::Value::String(raw.payload.clone()));
    let json = serde_json::to_string_pretty(&Shown {
        seq: raw.seq,
        ts: &raw.ts,
        actor: &raw.actor,
        kind: &raw.kind,
        run_id: raw.run_id.as_deref(),
        prev_hash: &raw.prev_hash,
        hash: &raw.hash,
        payload,
    })?;
    let bytes = json.len();
    let (json, truncated) = cut(json, MAX_EVENT_DETAIL_BYTES);
    Ok(Some(EventJson {
        seq: raw.seq,
        kind: raw.kind,
        json,
        bytes,
        truncated,
    }))
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(mut text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// Walks the whole chain and says how long it took.
pub(super) async fn verify(store: &Store) -> Result<ChainStatus, StoreError> {
    let started = Instant::now();
    let report = chain::verify(store.pool()).await?;
    Ok(ChainStatus {
        checked: report.checked,
        head_seq: report.head_seq,
        head_hash: report.head_hash,
        broken: report.broken.map(|b| BrokenLink {
            seq: b.seq,
            reason: b.reason,
        }),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_keeps_whole_characters() {
        assert_eq!(cut("abc".into(), 5), ("abc".into(), false));
        let (text, cut_off) = cut("aéé".into(), 2);
        assert_eq!(text, "a");
        assert!(cut_off);
    }
}
