//! Opening the database: data directory checks, connection settings, schema version guard and
//! embedded migrations.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqlitePool};

use super::{DB_FILE, StoreError, writer::Writer};

/// Migrations embedded in the binary; applied on every start.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn open(data_dir: &Path) -> Result<(SqlitePool, Writer, PathBuf), StoreError> {
    check_data_dir(data_dir)?;
    let path = data_dir.join(DB_FILE);
    create_private(&path).map_err(|e| StoreError::Open {
        path: path.clone(),
        reason: format!("cannot create it: {e}"),
    })?;
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: every commit is fsync'd before it returns, so an acknowledged append survives a
        // crash of the process or the machine.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);

    let unusable = |e: sqlx::Error| StoreError::Open {
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut writer = SqliteConnection::connect_with(&options)
        .await
        .map_err(unusable)?;
    refuse_newer_schema(&mut writer, &path).await?;
    MIGRATOR.run(&mut writer).await?;
    super::wal::prepare(&mut writer).await?;

    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .connect_with(options)
        .await?;
    Ok((pool, Writer::new(writer), path))
}

/// Creates the data directory (owner-only: it holds the event log, session and token hashes)
/// and proves we can write into it, so a bad `--data-dir` fails at once with one clear line
/// instead of at the first append. An existing directory open to others is left as it is
/// (the person may share it on purpose) but named in a warning.
fn check_data_dir(dir: &Path) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::DataDir {
        path: dir.to_path_buf(),
        reason,
    };
    let existed = dir.exists();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(format!("cannot create it: {e}")))?;
    if !dir.is_dir() {
        return Err(fail("it is not a directory".into()));
    }
    if existed && let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:o}"),
                "other users have access to the data directory, which holds the event log and \
                 token hashes: `chmod 700` it unless sharing it is intended"
            );
        }
    }
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(|e| fail(format!("it is not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// A new database file starts owner-only; SQLite gives its `-wal` and `-shm` files the same
/// mode. An existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A database migrated by a newer build has migrations this build does not know: stop before
/// sqlx would complain half-way, and change nothing.
async fn refuse_newer_schema(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    let has_table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if has_table.is_none() {
        return Ok(());
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > known => Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known,
        }),
        _ => Ok(()),
    }
}

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}
