//! The server's side of the Costs port: ledger totals, budgets and the charts built from
//! them (see [`charts`] and [`gauge`]) for every run or one.

pub(super) mod charts;
mod gauge;

use std::sync::Arc;

use app::ledger::{BudgetScope, BudgetStatus, CostReport};
use app::server_fns::PortError;
use app::server_fns::costs::{CostDashboard, CostsPort};

use crate::gateway::Gateway;
use crate::gateway::budget::current_month;
use crate::startup::AppState;
use crate::store::model_calls::{cost_report, cost_report_for_run, cost_timeline};
use crate::store::{Store, StoreError};

/// Runs offered by the run selector.
const RUN_CHOICES: u32 = 50;

/// The Costs port for the dashboard, provided as Leptos context.
pub(super) fn port(state: &AppState) -> Arc<dyn CostsPort> {
    Arc::new(LedgerCosts {
        store: state.store.clone(),
        gateway: state.gateway.clone(),
    })
}

/// Reads the ledger (the `model_calls` projection) and the live budgets.
struct LedgerCosts {
    store: Store,
    gateway: Arc<Gateway>,
}

#[async_trait::async_trait]
impl CostsPort for LedgerCosts {
    async fn dashboard(&self, run: Option<String>) -> Result<CostDashboard, PortError> {
        let result = match run {
            None => self.overall().await,
            Some(run_id) => self.for_run(run_id).await,
        };
        result.map_err(|e| match e {
            Failure::Refused(message) => PortError::Refused(message),
            Failure::Store(e) => {
                tracing::error!(error = %e, "cost dashboard failed");
                PortError::Internal
            }
        })
    }
}

/// Why a dashboard could not be built.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LedgerCosts {
    async fn overall(&self) -> Result<CostDashboard, Failure> {
        let budgets = self.gateway.budgets();
        let mut report = cost_report(&self.store).await?;
        report.budgets = budgets.status(&current_month());
        report.emergency_stop = budgets.emergency_stop();
        let timeline = cost_timeline(&self.store, None).await?;
        let gauges = self.overall_gauges(&report.budgets);
        let mut charts = vec![
            charts::team_cost(&report.by_team),
            charts::cost_per_day(&timeline),
            charts::model_tokens(&report.by_model),
        ];
        charts.extend(gauges.iter().filter_map(gauge::budget_gauge));
        Ok(CostDashboard {
            scope_label: "All runs: every model call in the ledger; budgets for this month."
                .to_string(),
            run: None,
            report,
            charts,
            runs: self.run_choices().await?,
        })
    }

    async fn for_run(&self, run_id: String) -> Result<CostDashboard, Failure> {
        let Some(run) = self.store.get_run(&run_id).await? else {
            return Err(Failure::Refused(format!(
                "no run with id {run_id}: choose a run from the list, or show all runs"
            )));
        };
        let budgets = self.gateway.budgets();
        let mut report = cost_report_for_run(&self.store, &run_id).await?;
        report.budgets = vec![self.run_budget(&run_id, &report)];
        report.emergency_stop = budgets.emergency_stop();
        let timeline = cost_timeline(&self.store, Some(&run_id)).await?;
        let mut charts = vec![
            charts::team_cost(&report.by_team),
            charts::cumulative_cost(&timeline),
            charts::model_tokens(&report.by_model),
        ];
        charts.extend(report.budgets.iter().filter_map(gauge::budget_gauge));
        let short: String = run.id.chars().take(8).collect();
        Ok(CostDashboard {
            scope_label: format!("Run {short}: {}", run.goal),
            run: Some(run.id),
            report,
            charts,
            runs: self.run_choices().await?,
        })
    }

    /// The month, and every team and project with a limit (configured ones even before they
    /// spend anything).
    fn overall_gauges(&self, status: &[BudgetStatus]) -> Vec<BudgetStatus> {
        let month = current_month();
        // The limits in force (Settings may have changed them since start-up).
        let config = self.gateway.budgets().config();
        let mut gauges: Vec<BudgetStatus> = status
            .iter()
            .filter(|s| !matches!(s.scope, BudgetScope::Run { .. }))
            .cloned()
            .collect();
        let named = config
            .teams
            .iter()
            .map(|(team, tiers)| {
                let scope = BudgetScope::Team {
                    team: team.clone(),
                    month: month.clone(),
                };
                (scope, tiers)
            })
            .chain(config.projects.iter().map(|(project, tiers)| {
                let scope = BudgetScope::Project {
                    project: project.clone(),
                    month: month.clone(),
                };
                (scope, tiers)
            }));
        for (scope, tiers) in named {
            if !gauges.iter().any(|g| g.scope == scope) {
                gauges.push(unspent(scope, tiers));
            }
        }
        gauges.retain(has_limit);
        gauges
    }

    /// Where the run's own budget stands: the live figure when it has spent or holds
    /// anything, else the configured limits with what the ledger says it spent.
    fn run_budget(&self, run_id: &str, report: &CostReport) -> BudgetStatus {
        let scope = BudgetScope::Run {
            run_id: run_id.to_string(),
        };
        let live = self
            .gateway
            .budgets()
            .status(&current_month())
            .into_iter()
            .find(|s| s.scope == scope);
        live.unwrap_or_else(|| {
            let mut status = unspent(scope, &self.gateway.budgets().config().run);
            status.spent_usd = report.total.as_ref().map_or(0.0, |t| t.cost_usd);
            status
        })
    }

    async fn run_choices(&self) -> Result<Vec<(String, String)>, StoreError> {
        let runs = self.store.list_runs(RUN_CHOICES).await?;
        Ok(runs.into_iter().map(|r| (r.id, r.goal)).collect())
    }
}

fn unspent(scope: BudgetScope, tiers: &crate::config::gateway::Tiers) -> BudgetStatus {
    BudgetStatus {
        scope,
        spent_usd: 0.0,
        reserved_usd: 0.0,
        soft_usd: tiers.soft,
        hard_usd: tiers.hard,
        emergency_usd: tiers.emergency,
    }
}

fn has_limit(status: &BudgetStatus) -> bool {
    status.soft_usd.is_some() || status.hard_usd.is_some() || status.emergency_usd.is_some()
}
