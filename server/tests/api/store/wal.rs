//! The write-ahead log's space, reserved by a long-running process: commits overwrite it
//! instead of growing the file, and the zeros past its last frame never reach the data, even in
//! a copy of the files taken while the store is open (what a crash leaves behind).

use crate::support::Store;
use crate::support::db::{sqlite, tokens};

/// What a checkpoint cycle fills at most: 10,000 pages of 4 KiB (and their frame headers).
const CYCLE_BYTES: u64 = 10_000 * (4_096 + 24);

#[tokio::test]
async fn the_wal_is_reserved_at_open_and_a_copy_taken_while_open_keeps_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let wal = dir.path().join("factory.db-wal");
    // Opening alone (a one-shot CLI command) reserves nothing.
    assert!(std::fs::metadata(&wal).unwrap().len() < 4 << 20);
    store.reserve_wal().await;
    let reserved = std::fs::metadata(&wal).unwrap().len();
    assert!(
        reserved >= CYCLE_BYTES,
        "the WAL is {reserved} bytes after open; a full checkpoint cycle needs {CYCLE_BYTES}"
    );

    // Commits one by one and in a batch: written over the reserved space, the file keeps its
    // length.
    for event in tokens(200, "single-") {
        store.append(event).await.unwrap();
    }
    store.append_batch(tokens(2_000, "batch-")).await.unwrap();
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        reserved,
        "commits grew the WAL instead of overwriting its reserved space"
    );

    // The files as they are now, without the shared-memory index: opening the copy recovers
    // the log from the WAL's frames and must stop at the zeros after the last one.
    let copy = tempfile::tempdir().unwrap();
    for name in ["factory.db", "factory.db-wal"] {
        std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
    }
    let recovered = Store::open(copy.path()).await.unwrap();
    let report = recovered.verify_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, 2_200);
    assert_eq!(report.head_seq, 2_200);
    let last = recovered.events_after(2_199, 1).await.unwrap();
    assert_eq!(
        last[0].hash,
        store.events_after(2_199, 1).await.unwrap()[0].hash
    );
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&sqlite(recovered.path()).await)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");

    // A second handle on the same files (as `factory run` beside the server) finds the space
    // reserved and leaves the WAL as it is: the first handle's commits are all still there.
    let second = Store::open(dir.path()).await.unwrap();
    second.reserve_wal().await;
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), reserved);
    assert_eq!(second.verify_chain().await.unwrap().checked, 2_200);
}
