//! The write-ahead log's size: how often the writer checkpoints it, and the space a long-running
//! process writes into it once so that commits overwrite the file instead of growing it.
//!
//! Why both matter (measured on the 2-core machine kind, ext4): a durable commit that extends
//! the WAL also has to commit the file's new size and blocks, and costs about 1.6× one that
//! overwrites space the file already has (a 21-page commit: 0.67 ms against 0.41 ms). And a
//! checkpoint runs inside the commit that crosses the threshold: that commit also copies the
//! WAL's pages into the database file and fsyncs it. An engine stage's commit writes about 25
//! pages (its events, the run, the model call and the memory it retains, with their indexes),
//! so at SQLite's default of 1,000 pages every 40th stage paid for a checkpoint — a stage's p99.

use std::io::Write;
use std::path::{Path, PathBuf};

use sqlx::SqliteConnection;

use super::StoreError;

/// Pages the WAL holds before the commit that crosses this also checkpoints (SQLite's default
/// is 1,000): one engine stage in about 400 instead of one in 40. Readers search a longer WAL
/// index for it, which costs nothing measurable at this size.
const CHECKPOINT_PAGES: u64 = 10_000;

/// One WAL frame's header (page number, database size, salts, checksums), before its page.
const FRAME_HEADER: u64 = 24;
/// The WAL file's own header.
const FILE_HEADER: u64 = 32;
/// Frames beyond the threshold the reservation also covers: the commit that crosses it, and
/// room for a checkpoint that a reader held back.
const SLACK_PAGES: u64 = 1_000;

/// Sets the writer's checkpoint threshold (every store, at open).
pub(super) async fn prepare(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query(&format!("PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl super::Store {
    /// Writes the WAL's steady size into it once, for a process that commits for a long time
    /// (the server, `factory run`, `factory mcp`, the benchmarks), so that its commits overwrite
    /// the log instead of growing it; a one-shot CLI command has no use for 45 MB of zeros and
    /// does not call it. Zeros go past the file's end only, never over a byte it holds, while
    /// the writer holds the write lock (so no connection of any process writes a frame
    /// meanwhile). SQLite writes every frame at its own offset and stops reading the log at the
    /// first frame whose salts do not match its header, so the zeros are never read as data;
    /// after each complete checkpoint it writes the log again from its beginning and the file
    /// keeps its length (the `journal_size_limit` default). A failure only costs speed: it is
    /// logged, and the store goes on.
    pub async fn reserve_wal(&self) {
        let mut writer = self.writer.lock().await;
        let result = match writer.idle_conn().await {
            Ok(conn) => reserve(conn, self.path()).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not reserve the WAL's space; commits will grow it");
        }
    }
}

/// Extends the WAL to the length a full checkpoint cycle gives it, under the write lock.
async fn reserve(
    conn: &mut SqliteConnection,
    db: &Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    let target =
        FILE_HEADER + (CHECKPOINT_PAGES + SLACK_PAGES) * (FRAME_HEADER + page_size.max(512) as u64);
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let wal = wal_path(db);
    let extended = tokio::task::spawn_blocking(move || extend(&wal, target)).await;
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(extended??)
}

/// The WAL file beside `db` (SQLite names it `<db>-wal`).
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Appends zeros to `wal` until it is `target` bytes long, and makes them durable; a file
/// already that long (or missing: SQLite creates it) is left alone. Written, not `set_len`: a
/// sparse tail would leave every commit allocating its blocks, which is the cost avoided here.
fn extend(wal: &Path, target: u64) -> std::io::Result<()> {
    let mut file = match std::fs::OpenOptions::new().append(true).open(wal) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut len = file.metadata()?.len();
    if len >= target {
        return Ok(());
    }
    let zeros = vec![0u8; 1 << 20];
    while len < target {
        let n = (target - len).min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        len += n as u64;
    }
    file.sync_data()
}
