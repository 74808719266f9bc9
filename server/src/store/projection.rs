//! Projections: tables derived from the log. `apply` folds one event into them inside the
//! append transaction; `rebuild` empties them and replays the whole log through `apply`, so the
//! two can never disagree about what an event means.

use app::events::{Event, EventData};
use sqlx::Connection;

use super::batch::Tx;
use super::chain;
use super::runs::PlanRow;
use super::{Store, StoreError};

/// Every projection table, emptied by a rebuild. Auth tables are not emptied (token hashes are
/// never in the log); the replay rewrites their event-derived columns (see `store::auth`).
pub(crate) const PROJECTION_TABLES: &[&str] = &[
    "supervisor_runs",
    "model_calls",
    "routing_decisions",
    "memory_items",
    "approvals",
    "clarifications",
    "escalations",
    "budget_raises",
    "projects",
    "work_orders",
];

/// Rows replayed per query during a rebuild.
const REPLAY_PAGE: i64 = 4096;

/// Applies committed events, in order, to the projections they touch. Changes to a run's plan
/// and to memory are gathered and written once per batch (a stage's commit touches the same run
/// several times); a `model_call_started` followed in the same batch by its outcome is folded
/// into the outcome's row.
/// `seed`: a run's row (id, steps, artifacts) read as the transaction began. Returns the plans
/// of the runs the batch wrote, and the seed when nothing changed it (see [`Plans::flush`]).
///
/// [`Plans::flush`]: super::runs::Plans::flush
pub(super) async fn apply_all(
    tx: &mut Tx<'_>,
    events: &[&Event],
    seed: Option<PlanRow>,
) -> Result<Vec<PlanRow>, StoreError> {
    let ended: std::collections::HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::ModelCallFinished { call_id, .. }
            | EventData::ModelCallFailed { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut pending = Pending {
        plans: super::runs::Plans::seeded(seed),
        memory: Vec::new(),
    };
    for event in events {
        if let EventData::ModelCallStarted { call_id, .. } = &event.data
            && ended.contains(call_id.as_str())
        {
            continue;
        }
        apply(tx, event, &mut pending).await?;
    }
    pending.flush(tx)
}

/// Projection changes gathered over a batch.
struct Pending {
    plans: super::runs::Plans,
    memory: Vec<Event>,
}

impl Pending {
    fn flush(self, tx: &mut Tx<'_>) -> Result<Vec<PlanRow>, StoreError> {
        let plans = self.plans.flush(tx)?;
        super::memory::insert_retained(tx, &self.memory);
        Ok(plans)
    }
}

/// Applies one event: each projection's owner folds the events it knows.
async fn apply(tx: &mut Tx<'_>, event: &Event, pending: &mut Pending) -> Result<(), StoreError> {
    use EventData::*;
    match &event.data {
        RunCreated { .. }
        | RunStarted { .. }
        | StageStarted { .. }
        | StageAttemptFailed { .. }
        | StageCompleted { .. }
        | RunFinished { .. }
        | WorkOrderDelivered { .. }
        | WorkOrderPublished { .. }
        | BranchPushed { .. }
        | PullRequestOpened { .. }
        | StageSkipped { .. }
        | RunRevised { .. } => super::runs::apply(tx, event, &mut pending.plans).await,
        ModelCallStarted { .. }
        | ModelCallFinished { .. }
        | ModelCallFailed { .. }
        | RoutingDecided { .. }
        | BudgetRaised { .. } => super::model_calls::apply(tx, event),
        ApprovalRequested { .. }
        | ApprovalDecided { .. }
        | ClarificationRequested { .. }
        | ClarificationAnswered { .. }
        | ClarificationRefused { .. } => super::approvals::apply(tx, event),
        ProjectAdded { .. } => super::projects::apply(tx, event),
        MemoryRetained { .. } => {
            pending.memory.push(event.clone());
            Ok(())
        }
        TokenScoped { .. } | TokenRevoked { .. } | SessionStarted { .. } => {
            super::auth::apply(tx, event)
        }
        AdminTokenCreated { .. }
        | SettingsChanged { .. }
        | GymScenarioFinished { .. }
        | BudgetReached { .. }
        | CommandRun { .. }
        | DependenciesPrepared { .. }
        | WebhookDelivered { .. }
        | WebhookFailed { .. }
        | WebhookDropped { .. } => Ok(()),
    }
}

/// `2026-11-22` from an RFC 3339 time.
pub(crate) fn day(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

/// `2026-11` from an RFC 3339 time.
pub(crate) fn month(ts: &str) -> &str {
    ts.get(..7).unwrap_or(ts)
}

impl Store {
    /// Drops every projection and rebuilds it by replaying the log, in one transaction (readers
    /// see the old projections until it commits). Returns the number of events replayed.
    pub async fn rebuild_projections(&self) -> Result<u64, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer
            .idle_conn()
            .await?
            .begin_with("BEGIN IMMEDIATE")
            .await?;
        for table in PROJECTION_TABLES {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        let mut after = 0i64;
        let mut replayed = 0u64;
        loop {
            let rows = chain::page(&mut *tx, after, REPLAY_PAGE).await?;
            if rows.is_empty() {
                break;
            }
            let events = rows
                .into_iter()
                .map(chain::EventRow::into_event)
                .collect::<Result<Vec<_>, _>>()?;
            after = events.last().map_or(after, |e| e.seq);
            replayed += events.len() as u64;
            let mut gathered = Tx::new(&mut tx);
            apply_all(&mut gathered, &events.iter().collect::<Vec<_>>(), None).await?;
            gathered.flush().await?;
        }
        tx.commit().await?;
        Ok(replayed)
    }
}
