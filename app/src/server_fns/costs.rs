//! The Costs area: what the dashboard's Costs page and run cost panel show, and the port
//! through which the server builds it (totals plus chart options made on the server, so the
//! browser build never links a charting crate).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ledger::CostReport;

#[cfg(feature = "ssr")]
use super::PortError;

/// Everything the Costs page shows for one view (every run, or one run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostDashboard {
    /// What the numbers cover, in words ("All runs", "Run 0190ab12 — Add a login page").
    pub scope_label: String,
    /// The run the view is limited to, when it is.
    pub run: Option<String>,
    /// Totals grouped every useful way, with the budgets relevant to the view.
    pub report: CostReport,
    /// The charts in the order the page shows them.
    pub charts: Vec<ChartSpec>,
    /// Recent runs for the run selector: `(id, goal)`, newest first.
    pub runs: Vec<(String, String)>,
}

/// One chart: an ECharts option built on the server, and the same numbers as a table so they
/// are readable before the chart script runs and by screen readers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSpec {
    /// Stable id (`team-cost`, `cost-over-time`, `model-tokens`, `budget-…`; the Gym page's
    /// `gym-pass-rate`), also the `data-chart` attribute of the chart's host element.
    pub id: String,
    pub title: String,
    /// The ECharts option, as JSON, handed to `setOption` unchanged.
    pub option_json: String,
    /// The chart's numbers as rows of text.
    pub table: ChartTable,
}

/// A plain table: column headings and rows of cells, already formatted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChartTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// What the Costs server function may ask of the server.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait CostsPort: Send + Sync + 'static {
    /// The dashboard for every run (`None`) or one run. An unknown run is refused with a
    /// message naming it.
    async fn dashboard(&self, run: Option<String>) -> Result<CostDashboard, PortError>;
}

/// The Costs page's data: totals, charts and budgets, for every run or one (`run`). An empty
/// `run` means every run, so a form's "All runs" option needs no special case.
#[server(name = CostDashboardFn, prefix = "/api", endpoint = "cost_dashboard")]
pub async fn cost_dashboard(run: Option<String>) -> Result<CostDashboard, ServerFnError> {
    let run = run.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    super::port::<dyn CostsPort>()?
        .dashboard(run)
        .await
        .map_err(super::refused)
}

/// Dollars as the Costs views show them: cents, or four decimals below a cent so small model
/// calls do not read as free.
pub fn format_usd(usd: f64) -> String {
    if usd != 0.0 && usd.abs() < 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_keep_small_amounts_visible() {
        assert_eq!(format_usd(0.0), "$0.00");
        assert_eq!(format_usd(12.345), "$12.35");
        assert_eq!(format_usd(0.00123), "$0.0012");
    }
}
