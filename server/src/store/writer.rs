//! The writer connection: how a write transaction begins and ends, and what the last commit
//! left behind for the next one.

use app::dto::RunStatus;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::StoreError;
use super::chain::GENESIS_HASH;
use super::runs::PlanRow;

/// The writer connection. The chain head is read inside a write transaction (cheap: the last
/// row by primary key), so another process appending to the same file — `factory token
/// create` beside a running server — can never fork the chain.
///
/// Transactions are begun and ended with plain statements rather than sqlx's `Transaction`, so
/// `BEGIN` shares a round trip with the first reads and `COMMIT` with the gathered writes
/// ([`Tx`]). A write whose caller goes away between the two leaves `open` set, and the next
/// write rolls that transaction back first.
pub(super) struct Writer {
    pub(super) conn: SqliteConnection,
    pub(super) open: bool,
    /// What this writer's last commit left, when it was one run's events alone: the chain's
    /// head and that run's row. The run's next commit then skips the transaction's first round
    /// trip (see `run_group` in `append.rs`).
    known: Option<Known>,
}

/// The chain's head and one run's row, as the writer's last commit left them.
pub(super) struct Known {
    pub(super) head: Head,
    pub(super) run: RunRow,
}

/// Sequence number and hash of the newest event.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub(super) seq: i64,
    pub(super) hash: String,
}

/// A run's row, read with the transaction's first statement by a write that concerns one run
/// (or known from the writer's last commit).
pub(super) struct RunRow {
    pub(super) id: String,
    /// Whether the run is active (exists and has not finished), its plan and its artifacts
    /// (JSON); `None` when there is no such run.
    pub(super) row: Option<(bool, String, String)>,
}

impl RunRow {
    pub(super) fn active(&self) -> bool {
        matches!(&self.row, Some((true, _, _)))
    }

    /// The run's plan and artifacts (JSON), to seed the projection's copy.
    pub(super) fn plans(self) -> Option<PlanRow> {
        let (_, steps, artifacts) = self.row?;
        Some((self.id, steps, artifacts))
    }
}

/// The first round trip of a write: its transaction, the chain's head, and (with a bound run
/// id) that run's row, each row tagged with what it is.
const BEGIN: &str = "BEGIN IMMEDIATE; \
    SELECT 'head', seq, hash, NULL FROM events ORDER BY seq DESC LIMIT 1";
const BEGIN_WITH_RUN: &str = "BEGIN IMMEDIATE; \
    SELECT 'head', seq, hash, NULL FROM events ORDER BY seq DESC LIMIT 1; \
    SELECT 'run', status, steps, artifacts FROM supervisor_runs WHERE id = ?";

impl Writer {
    pub(super) fn new(conn: SqliteConnection) -> Writer {
        Writer {
            conn,
            open: false,
            known: None,
        }
    }

    /// The connection outside any write transaction (one left open is rolled back first).
    /// What the last commit left is forgotten: the caller may write anything.
    pub(super) async fn idle_conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.known = None;
        if self.open {
            self.rollback().await?;
        }
        Ok(&mut self.conn)
    }

    /// Takes what the last commit left, when it concerns run `run` (it is forgotten either
    /// way: only a commit of that run's events alone leaves it again).
    pub(super) fn take_known(&mut self, run: Option<&str>) -> Option<Known> {
        self.known.take().filter(|k| Some(k.run.id.as_str()) == run)
    }

    /// Remembers what a commit left, when it was one run's events alone.
    pub(super) fn remember(&mut self, known: Option<Known>) {
        self.known = known;
    }

    /// Begins a write transaction and reads the chain's head, and `run`'s row when asked, in
    /// one round trip.
    pub(super) async fn begin(
        &mut self,
        run: Option<&str>,
    ) -> Result<(Head, Option<RunRow>), StoreError> {
        if self.open {
            self.rollback().await?;
        }
        self.open = true;
        let rows = match run {
            Some(id) => sqlx::query(BEGIN_WITH_RUN)
                .bind(id)
                .fetch_all(&mut self.conn),
            None => sqlx::query(BEGIN).fetch_all(&mut self.conn),
        }
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                self.rollback().await?;
                return Err(e.into());
            }
        };
        let mut head = Head {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        };
        let mut prefetched = run.map(|id| RunRow {
            id: id.to_string(),
            row: None,
        });
        for row in rows {
            let tag: String = row.try_get(0)?;
            if tag == "head" {
                head = Head {
                    seq: row.try_get(1)?,
                    hash: row.try_get(2)?,
                };
            } else if let Some(prefetched) = prefetched.as_mut() {
                let status: String = row.try_get(1)?;
                let active = RunStatus::parse(&status).is_some_and(|s| !s.is_terminal());
                prefetched.row = Some((active, row.try_get(2)?, row.try_get(3)?));
            }
        }
        Ok((head, prefetched))
    }

    /// Ends the open transaction without keeping anything. "No transaction is active" is not
    /// an error here: the `BEGIN` itself may be what failed.
    pub(super) async fn rollback(&mut self) -> Result<(), StoreError> {
        self.open = false;
        match sqlx::query("ROLLBACK").execute(&mut self.conn).await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
