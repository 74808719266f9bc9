//! The `model_calls` projection's queries: what was spent (to load the budgets), the cost
//! reports and timelines the dashboard, the API and the CLI show.

use app::ledger::{BudgetScope, CostLine, CostReport};
use sqlx::Row;

use super::batch::Tx;
use super::{Store, StoreError};
use app::events::{Event, EventData};

/// What successful calls cost, per run, team, project and month.
#[derive(Debug, Clone, PartialEq)]
pub struct Spending {
    pub run_id: Option<String>,
    pub team: Option<String>,
    pub project: Option<String>,
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub cost_usd: f64,
}

impl Store {
    /// The hard limits people raised, oldest first (a later raise of a scope wins).
    pub async fn budget_raises(&self) -> Result<Vec<(BudgetScope, f64)>, StoreError> {
        let raises: Vec<(String, f64)> =
            sqlx::query_as("SELECT scope, hard_usd FROM budget_raises ORDER BY seq")
                .fetch_all(self.pool())
                .await?;
        Ok(raises
            .into_iter()
            .filter_map(|(scope, hard)| {
                serde_json::from_str::<BudgetScope>(&scope)
                    .ok()
                    .map(|scope| (scope, hard))
            })
            .collect())
    }

    /// Everything spent on paid calls, grouped by run, team, project and month.
    pub async fn spending(&self) -> Result<Vec<Spending>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, team, project, month, SUM(cost_usd) FROM model_calls \
             WHERE status = 'ok' AND cost_usd > 0 GROUP BY run_id, team, project, month",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Spending {
                    run_id: row.try_get(0)?,
                    team: row.try_get(1)?,
                    project: row.try_get(2)?,
                    month: row.try_get(3)?,
                    cost_usd: row.try_get(4)?,
                })
            })
            .collect()
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
             SUM(output_tokens), SUM(cost_usd), SUM(cached_tokens) {CALLS} \
             GROUP BY 1 ORDER BY 5 DESC, 1 LIMIT 500"
        )
    };
    let mut lines = Vec::new();
    for sql in [
        format!(
            "SELECT 'total', COUNT(*), COALESCE(SUM(input_tokens), 0), \
             COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0.0), \
             COALESCE(SUM(cached_tokens), 0) {CALLS}"
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
                cached_tokens: row.try_get(5)?,
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

/// Folds one model-call, routing or budget event into the `model_calls`, `routing_decisions`
/// and `budget_raises` tables.
pub(super) fn apply(tx: &mut Tx<'_>, event: &Event) -> Result<(), StoreError> {
    match &event.data {
        EventData::ModelCallStarted {
            call_id,
            attribution,
            target,
            reserved_usd,
        } => {
            // A call issued again after a restart keeps its id: the row is reset, not added.
            tx.push(
                "INSERT INTO model_calls (call_id, run_id, project, team, objective_id, \
                 work_order_id, target, status, reserved_usd, started_at, day, month, last_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET status = 'running', \
                 reserved_usd = excluded.reserved_usd, last_seq = excluded.last_seq",
            )
            .bind(call_id)
            .bind(&attribution.run_id)
            .bind(&attribution.project)
            .bind(&attribution.team)
            .bind(&attribution.objective_id)
            .bind(&attribution.work_order_id)
            .bind(target)
            .bind(reserved_usd)
            .bind(&event.ts)
            .bind(super::projection::day(&event.ts))
            .bind(super::projection::month(&event.ts))
            .bind(event.seq);
        }
        EventData::ModelCallFinished {
            call_id,
            attribution,
            target,
            provider,
            model,
            input_tokens,
            output_tokens,
            cached_tokens,
            cost_usd,
            latency_ms,
            path,
            ..
        } => {
            let path = serde_json::to_string(path)?;
            tx.push(
                "INSERT INTO model_calls (call_id, run_id, project, team, objective_id, \
                 work_order_id, target, provider, model, status, input_tokens, output_tokens, \
                 cached_tokens, cost_usd, latency_ms, path, started_at, finished_at, day, month, \
                 last_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET provider = excluded.provider, \
                 model = excluded.model, status = 'ok', input_tokens = excluded.input_tokens, \
                 output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens, \
                 cost_usd = excluded.cost_usd, \
                 reserved_usd = 0, latency_ms = excluded.latency_ms, path = excluded.path, \
                 error = NULL, finished_at = excluded.finished_at, last_seq = excluded.last_seq",
            )
            .bind(call_id)
            .bind(&attribution.run_id)
            .bind(&attribution.project)
            .bind(&attribution.team)
            .bind(&attribution.objective_id)
            .bind(&attribution.work_order_id)
            .bind(target)
            .bind(provider)
            .bind(model)
            .bind(i64::from(*input_tokens))
            .bind(i64::from(*output_tokens))
            .bind(i64::from(*cached_tokens))
            .bind(cost_usd)
            .bind(i64::try_from(*latency_ms).unwrap_or(i64::MAX))
            .bind(&path)
            .bind(&event.ts)
            .bind(&event.ts)
            .bind(super::projection::day(&event.ts))
            .bind(super::projection::month(&event.ts))
            .bind(event.seq);
        }
        EventData::ModelCallFailed {
            call_id,
            attribution,
            target,
            error,
            path,
        } => {
            let path = serde_json::to_string(path)?;
            tx.push(
                "INSERT INTO model_calls (call_id, run_id, project, team, objective_id, \
                 work_order_id, target, status, path, error, started_at, finished_at, day, \
                 month, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET status = 'failed', input_tokens = 0, \
                 output_tokens = 0, cost_usd = 0, reserved_usd = 0, path = excluded.path, \
                 error = excluded.error, finished_at = excluded.finished_at, \
                 last_seq = excluded.last_seq",
            )
            .bind(call_id)
            .bind(&attribution.run_id)
            .bind(&attribution.project)
            .bind(&attribution.team)
            .bind(&attribution.objective_id)
            .bind(&attribution.work_order_id)
            .bind(target)
            .bind(&path)
            .bind(error)
            .bind(&event.ts)
            .bind(&event.ts)
            .bind(super::projection::day(&event.ts))
            .bind(super::projection::month(&event.ts))
            .bind(event.seq);
        }
        EventData::RoutingDecided {
            attribution,
            decision,
        } => {
            tx.push(
                "INSERT INTO routing_decisions (seq, run_id, work_order_id, alias, complexity, \
                 reason, decision, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(event.seq)
            .bind(&attribution.run_id)
            .bind(&attribution.work_order_id)
            .bind(&decision.alias)
            .bind(decision.complexity)
            .bind(&decision.reason)
            .bind(serde_json::to_string(decision)?)
            .bind(&event.ts);
        }
        EventData::BudgetRaised {
            run_id,
            budget,
            hard_usd,
        } => {
            tx.push(
                "INSERT INTO budget_raises (scope, hard_usd, run_id, seq) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (scope) DO UPDATE SET hard_usd = excluded.hard_usd, seq = excluded.seq",
            )
            .bind(serde_json::to_string(budget)?)
            .bind(hard_usd)
            .bind(run_id)
            .bind(event.seq);
        }
        _ => {}
    }
    Ok(())
}
