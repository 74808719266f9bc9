//! The cost ledger's writer: model-call events go to the event log through a group-commit task.
//! Events queued together are committed in one transaction, so concurrent calls share one
//! fsync; each caller waits for the commit holding its events and is told if it failed. A
//! failed commit is retried a few times (a full disk or a locked file can clear) and then
//! reported to every caller in it: the ledger never acknowledges a call it did not record.
//! The queue is bounded: when the disk falls behind, callers wait for room (backpressure).
//!
//! A caller that goes away after queuing does not take its events with it: the writer commits
//! them anyway. A crash can lose what was queued but not yet committed; the engine never loses
//! money to that: a call whose result was not recorded is issued again with the same
//! `call_id`, and the ledger counts a call id once.

use std::sync::Arc;
use std::time::Duration;

use app::events::EventData;
use app::ledger::BudgetScope;
use tokio::sync::{mpsc, oneshot};

use crate::store::model_calls::Spending;
use crate::store::{NewEvent, Store, StoreError};

use super::budget::{Budgets, current_month};

/// Events taken from the queue per transaction at most.
const BATCH: usize = 512;
/// Jobs waiting to be committed before callers wait for room.
const QUEUE: usize = 8192;
/// Tries of one commit before its callers are told it failed; the waits between them grow
/// fourfold from [`FIRST_RETRY`] (0.1 s, 0.4 s, 1.6 s: about two seconds in all).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Why the ledger could not record a call's events.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("the cost ledger could not be written ({attempts} attempts): {source}")]
    Write {
        attempts: u32,
        /// Shared by every caller whose events were in the failed commit.
        source: Arc<StoreError>,
    },
    #[error("the cost ledger's writer has stopped")]
    Stopped,
}

/// What the writer is asked to do.
enum Job {
    /// Commit these events, then say whether it worked.
    Record {
        events: Vec<NewEvent>,
        done: oneshot::Sender<Result<(), LedgerError>>,
    },
    /// Answer once everything queued before is committed (or reported failed).
    Flush(oneshot::Sender<()>),
}

/// Handle to the ledger writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    jobs: mpsc::Sender<Job>,
    store: Store,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Record { events, .. } => write!(f, "Record({} events)", events.len()),
            Job::Flush(_) => write!(f, "Flush"),
        }
    }
}

impl Ledger {
    /// Starts the writer task for `store`. It ends when every handle is dropped.
    pub fn start(store: Store) -> Ledger {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store.clone(), rx));
        Ledger { jobs, store }
    }

    /// Records one event; returns once it is committed, or with the reason it was not.
    pub async fn record(&self, data: EventData) -> Result<(), LedgerError> {
        self.record_all(vec![data]).await
    }

    /// Records events together (one call's events, all in the same commit); returns once
    /// they are committed, or with the reason they were not. Waits for room when the queue
    /// is full.
    pub async fn record_all(&self, data: Vec<EventData>) -> Result<(), LedgerError> {
        if data.is_empty() {
            return Ok(());
        }
        let events = data
            .into_iter()
            .map(|d| NewEvent::new("gateway", d))
            .collect();
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job::Record { events, done })
            .await
            .map_err(|_| LedgerError::Stopped)?;
        committed.await.map_err(|_| LedgerError::Stopped)?
    }

    /// Waits until every event queued before this call is committed or its caller was told
    /// it failed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The store the ledger writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Loads what was spent into the budgets (this month's scopes and every run) and the
    /// limits people raised.
    pub async fn load_budgets(&self, budgets: &Budgets) -> Result<(), StoreError> {
        for (scope, hard) in self.store.budget_raises().await? {
            budgets.raise(scope, hard);
        }
        let month = current_month();
        for spent in self.store.spending().await? {
            let Spending {
                run_id,
                team,
                project,
                month: row_month,
                cost_usd: spent,
            } = spent;
            if let Some(run_id) = run_id {
                budgets.load_spent(BudgetScope::Run { run_id }, spent);
            }
            if row_month != month {
                continue;
            }
            budgets.load_spent(
                BudgetScope::Month {
                    month: month.clone(),
                },
                spent,
            );
            if let Some(team) = team {
                budgets.load_spent(
                    BudgetScope::Team {
                        team,
                        month: month.clone(),
                    },
                    spent,
                );
            }
            if let Some(project) = project {
                budgets.load_spent(
                    BudgetScope::Project {
                        project,
                        month: month.clone(),
                    },
                    spent,
                );
            }
        }
        Ok(())
    }
}

/// Takes whatever is queued (up to [`BATCH`] events), commits it in one transaction, and
/// tells each caller the outcome; flushes are answered after the commit before them.
async fn writer(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut callers = Vec::new();
    let mut flushes = Vec::new();
    while let Some(job) = rx.recv().await {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Record { events, done } => {
                    batch.extend(events);
                    callers.push(done);
                }
                Job::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let outcome = if batch.is_empty() {
            Ok(())
        } else {
            commit(&store, std::mem::take(&mut batch)).await
        };
        for done in callers.drain(..) {
            let _ = done.send(outcome.clone());
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Appends `events` in one transaction, retrying a failed attempt up to [`ATTEMPTS`] in all.
async fn commit(store: &Store, events: Vec<NewEvent>) -> Result<(), LedgerError> {
    let count = events.len();
    let (mut attempt, mut wait) = (1, FIRST_RETRY);
    loop {
        match store.append_batch(events.clone()).await {
            Ok(_) => return Ok(()),
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(%err, count, attempt, "the cost ledger could not commit; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                wait *= 4;
            }
            Err(err) => {
                tracing::error!(%err, count, "the cost ledger could not commit; its callers fail");
                return Err(LedgerError::Write {
                    attempts: attempt,
                    source: Arc::new(err),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_call(call_id: &str) -> EventData {
        EventData::ModelCallFailed {
            call_id: call_id.into(),
            attribution: Default::default(),
            target: "test/chain".into(),
            error: "scripted".into(),
            path: Vec::new(),
        }
    }

    /// A second connection pool on the store's file (the store's own is private to it).
    async fn raw(store: &Store) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", store.path().display()))
            .await
            .unwrap()
    }

    /// Makes every new event fail to insert while `condition` (SQL) holds, as a full disk would.
    async fn outage(store: &Store, condition: &str) {
        sqlx::query(&format!(
            "CREATE TRIGGER test_outage BEFORE INSERT ON events WHEN {condition} \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        ))
        .execute(&raw(store).await)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_write_that_keeps_failing_is_reported_not_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let ledger = Ledger::start(store.clone());
        outage(&store, "1").await;
        let err = ledger.record(failed_call("c1")).await.unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Write {
                    attempts: ATTEMPTS,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("disk is full"), "{err}");
        ledger.flush().await;
        assert!(store.events_after(0, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_write_failing_for_a_moment_is_retried_and_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let ledger = Ledger::start(store.clone());
        // Inserts fail for the next 0.6 s: past the first two attempts, before the last.
        let pool = raw(&store).await;
        sqlx::query("CREATE TABLE test_until (t REAL)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO test_until VALUES (julianday('now') + 0.6 / 86400.0)")
            .execute(&pool)
            .await
            .unwrap();
        outage(&store, "julianday('now') < (SELECT t FROM test_until)").await;
        let started = std::time::Instant::now();
        ledger.record(failed_call("c1")).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "it landed on a retry, not the first attempt"
        );
        let events = store.events_after(0, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, failed_call("c1"));
    }
}
