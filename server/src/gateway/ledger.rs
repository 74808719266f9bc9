//! The cost ledger's writer: model-call events go to the event log through a group-commit task,
//! so a call never waits on an fsync of its own bookkeeping. Events queued together are
//! committed in one transaction; `flush` waits until everything queued before it is durable.
//! The queue is bounded: when the disk falls behind, callers wait for room (backpressure).
//!
//! A crash can lose what was queued but not yet committed (at most a few milliseconds of
//! ledger). The engine never loses money to that: a call whose result was not recorded is
//! issued again with the same `call_id`, and the ledger counts a call id once.

use app::events::EventData;
use app::ledger::{BudgetScope, CostLine, CostReport};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::store::{NewEvent, Store, StoreError};

use super::budget::{Budgets, current_month};

/// Events taken from the queue per transaction at most.
const BATCH: usize = 512;
/// Events waiting to be committed before callers wait for room.
const QUEUE: usize = 8192;

enum Job {
    Event(Box<NewEvent>),
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
            Job::Event(e) => write!(f, "Event({})", e.data.kind()),
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

    /// Queues an event; waits only when the queue is full.
    pub async fn record(&self, data: EventData) {
        let event = NewEvent::new("gateway", data);
        if self.jobs.send(Job::Event(Box::new(event))).await.is_err() {
            tracing::error!("the ledger writer has stopped; a model-call event was not recorded");
        }
    }

    /// Waits until every event queued before this call is committed.
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
        let raises: Vec<(String, f64)> =
            sqlx::query_as("SELECT scope, hard_usd FROM budget_raises ORDER BY seq")
                .fetch_all(self.store.pool())
                .await?;
        for (scope, hard) in raises {
            if let Ok(scope) = serde_json::from_str::<BudgetScope>(&scope) {
                budgets.raise(scope, hard);
            }
        }
        let month = current_month();
        let rows = sqlx::query(
            "SELECT run_id, team, project, month, SUM(cost_usd) FROM model_calls \
             WHERE status = 'ok' AND cost_usd > 0 GROUP BY run_id, team, project, month",
        )
        .fetch_all(self.store.pool())
        .await?;
        for row in rows {
            let run_id: Option<String> = row.try_get(0)?;
            let team: Option<String> = row.try_get(1)?;
            let project: Option<String> = row.try_get(2)?;
            let row_month: String = row.try_get(3)?;
            let spent: f64 = row.try_get(4)?;
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

async fn writer(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(job) = rx.recv().await {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Event(event) => batch.push(*event),
                Job::Flush(done) => waiting.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let events = std::mem::take(&mut batch);
            let count = events.len();
            if let Err(err) = store.append_batch(events).await {
                tracing::error!(%err, count, "could not record model-call events in the ledger");
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Totals from the ledger per run, team, model, project and day (successful calls).
pub async fn cost_report(store: &Store) -> Result<CostReport, StoreError> {
    report(store, None).await
}

/// The same totals for the calls of one run only.
pub async fn cost_report_for_run(store: &Store, run_id: &str) -> Result<CostReport, StoreError> {
    report(store, Some(run_id)).await
}

async fn report(store: &Store, run: Option<&str>) -> Result<CostReport, StoreError> {
    // `? IS NULL OR run_id = ?` keeps one statement for both views (and portable SQL).
    const CALLS: &str = "FROM model_calls WHERE status = 'ok' AND (? IS NULL OR run_id = ?)";
    let group = |column: &str| {
        format!(
            "SELECT COALESCE({column}, '(none)'), COUNT(*), SUM(input_tokens), \
             SUM(output_tokens), SUM(cost_usd) {CALLS} GROUP BY 1 ORDER BY 5 DESC, 1 LIMIT 500"
        )
    };
    let mut lines = Vec::new();
    for sql in [
        format!(
            "SELECT 'total', COUNT(*), COALESCE(SUM(input_tokens), 0), \
             COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0.0) {CALLS}"
        ),
        group("run_id"),
        group("team"),
        group("provider || ':' || model"),
        group("project"),
        group("day"),
    ] {
        let rows = sqlx::query(&sql)
            .bind(run)
            .bind(run)
            .fetch_all(store.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(CostLine {
                key: row.try_get(0)?,
                calls: row.try_get(1)?,
                input_tokens: row.try_get(2)?,
                output_tokens: row.try_get(3)?,
                cost_usd: row.try_get(4)?,
            });
        }
        lines.push(out);
    }
    let mut lines = lines.into_iter();
    let mut next = || lines.next().unwrap_or_default();
    let total = next().into_iter().next();
    let mut report = CostReport {
        total,
        by_run: next(),
        by_team: next(),
        by_model: next(),
        by_project: next(),
        by_day: next(),
        ..CostReport::default()
    };
    report.by_day.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

/// Most points a cost timeline returns: the newest days, or a run's first calls.
const TIMELINE_POINTS: i64 = 5000;

/// One point of a cost timeline: when (a UTC day, or a call's finish time) and what was spent.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPoint {
    pub at: String,
    pub cost_usd: f64,
}

/// Spending over time, oldest first: every run per UTC day (`run` is `None`), or one run's
/// finished calls one by one in the order they finished.
pub async fn cost_timeline(store: &Store, run: Option<&str>) -> Result<Vec<CostPoint>, StoreError> {
    let rows: Vec<(String, f64)> = match run {
        None => {
            sqlx::query_as(
                "SELECT day, SUM(cost_usd) FROM model_calls WHERE status = 'ok' \
                 GROUP BY day ORDER BY day DESC LIMIT ?",
            )
            .bind(TIMELINE_POINTS)
            .fetch_all(store.pool())
            .await?
        }
        Some(run_id) => {
            sqlx::query_as(
                "SELECT COALESCE(finished_at, started_at), cost_usd FROM model_calls \
                 WHERE status = 'ok' AND run_id = ? \
                 ORDER BY COALESCE(finished_at, started_at), last_seq LIMIT ?",
            )
            .bind(run_id)
            .bind(TIMELINE_POINTS)
            .fetch_all(store.pool())
            .await?
        }
    };
    let mut points: Vec<CostPoint> = rows
        .into_iter()
        .map(|(at, cost_usd)| CostPoint { at, cost_usd })
        .collect();
    // Days were read newest first, to keep the newest when there are too many.
    points.sort_by(|a, b| a.at.cmp(&b.at));
    Ok(points)
}
