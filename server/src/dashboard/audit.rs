//! The server's side of the audit port (see `app::server_fns::audit`): newest-first pages of
//! short rows, one event in full, and the chain's verification, timed.

use std::time::Instant;

use app::server_fns::PortError;
use app::server_fns::audit::{
    AuditEvents, AuditPort, AuditRow, BrokenLink, ChainStatus, EventJson, MAX_EVENT_DETAIL_BYTES,
    audit_row, hash_prefix,
};

use super::failure::Failure;
use crate::store::chain::EventRow;
use crate::store::{Store, StoreError};

/// Up to `limit` events before `before` (newest first), of `kind` or of every kind, with the
/// log's last sequence number so the live tail can resume after it.
async fn page(
    store: &Store,
    before: Option<i64>,
    kind: Option<&str>,
    limit: u32,
) -> Result<AuditEvents, StoreError> {
    let page = store.rows_before(before, kind, limit).await?;
    Ok(AuditEvents {
        rows: page.rows.into_iter().map(row).collect(),
        last_seq: page.last_seq,
        older: page.older,
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
async fn detail(store: &Store, seq: i64) -> Result<Option<EventJson>, StoreError> {
    let Some(raw) = store.row(seq).await? else {
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
pub(crate) async fn verify(store: &Store) -> Result<ChainStatus, StoreError> {
    let started = Instant::now();
    let report = store.verify_chain().await?;
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

/// The port, with the store it reads.
struct Audit {
    store: Store,
}

/// The audit port for the dashboard's context.
pub(super) fn port(state: &crate::startup::AppState) -> std::sync::Arc<dyn AuditPort> {
    std::sync::Arc::new(Audit {
        store: state.store.clone(),
    })
}

#[async_trait::async_trait]
impl AuditPort for Audit {
    async fn audit_page(
        &self,
        before: Option<i64>,
        kind: Option<String>,
        limit: u32,
    ) -> Result<AuditEvents, PortError> {
        page(&self.store, before, kind.as_deref(), limit)
            .await
            .map_err(|e| Failure::from(e).into_port("audit_page"))
    }

    async fn audit_verify(&self) -> Result<ChainStatus, PortError> {
        verify(&self.store)
            .await
            .map_err(|e| Failure::from(e).into_port("audit_verify"))
    }

    async fn event_detail(&self, seq: i64) -> Result<EventJson, PortError> {
        match detail(&self.store, seq).await {
            Ok(Some(detail)) => Ok(detail),
            Ok(None) => {
                let held = match self.store.last_seq().await.unwrap_or(0) {
                    0 => "the log is empty".to_string(),
                    last => format!("the log holds #1 to #{last}"),
                };
                Err(PortError::Refused(format!(
                    "there is no event #{seq}: {held}"
                )))
            }
            Err(e) => Err(Failure::from(e).into_port("event_detail")),
        }
    }
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
