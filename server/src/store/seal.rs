//! Sealing a write's events — sequence numbers, the transaction's time, the chained hashes —
//! and gathering their rows and projection updates into the transaction.

use app::events::Event;

use super::append::NewEvent;
use super::batch::{Tx, rows_of};
use super::chain::event_hash;
use super::runs::PlanRow;
use super::writer::Head;
use super::{StoreError, encode, projection};

/// Gathers the events' rows and their projection updates.
pub(super) async fn insert_and_apply(
    tx: &mut Tx<'_>,
    sealed: &[Sealed],
    seed: Option<PlanRow>,
) -> Result<Vec<PlanRow>, StoreError> {
    for chunk in sealed.chunks(INSERT_CHUNK) {
        insert(tx, chunk);
    }
    let applied: Vec<&Event> = sealed.iter().map(|s| &s.event).collect();
    projection::apply_all(tx, &applied, seed).await
}

/// Rows per multi-row INSERT (8 columns each, well under SQLite's 32,766 bound parameters).
const INSERT_CHUNK: usize = 256;

/// A committed-to-be event with its stored encoding.
pub(super) struct Sealed {
    pub(super) event: Event,
    kind: &'static str,
    payload: String,
    prev_hash: String,
}

/// Assigns sequence numbers, the transaction's timestamp and the chained hashes.
pub(super) fn seal(head: &Head, new_events: Vec<NewEvent>) -> Result<Vec<Sealed>, StoreError> {
    let ts = now_rfc3339();
    let (mut seq, mut prev_hash) = (head.seq, head.hash.clone());
    new_events
        .into_iter()
        .map(|new| {
            seq += 1;
            let (kind, payload) = encode(&new.data)?;
            let hash = event_hash(
                &prev_hash,
                seq,
                new.run_id.as_deref(),
                &ts,
                kind,
                &new.actor,
                &payload,
            );
            let sealed = Sealed {
                event: Event {
                    seq,
                    run_id: new.run_id,
                    ts: ts.clone(),
                    actor: new.actor,
                    data: new.data,
                    hash: hash.clone(),
                },
                kind,
                payload,
                prev_hash: std::mem::replace(&mut prev_hash, hash),
            };
            Ok(sealed)
        })
        .collect()
}

fn insert(tx: &mut Tx<'_>, rows: &[Sealed]) {
    let sql = format!(
        "INSERT INTO events (seq, run_id, ts, kind, actor, payload, prev_hash, hash) VALUES {}",
        rows_of(8, rows.len())
    );
    let mut stmt = tx.push(&sql);
    for s in rows {
        stmt = stmt
            .bind(s.event.seq)
            .bind(&s.event.run_id)
            .bind(&s.event.ts)
            .bind(s.kind)
            .bind(&s.event.actor)
            .bind(&s.payload)
            .bind(&s.prev_hash)
            .bind(&s.event.hash);
    }
}

/// Now, as Factory stores times: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
