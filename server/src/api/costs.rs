//! `GET /api/costs`: ledger totals per run, team, model, project and day, with every budget
//! scope's spending, reservations and limits.

use axum::Json;
use axum::extract::State;

use app::ledger::CostReport;

use super::ApiError;
use crate::gateway::budget::current_month;
use crate::startup::AppState;
use crate::store::model_calls::cost_report;

pub async fn report(State(state): State<AppState>) -> Result<Json<CostReport>, ApiError> {
    let mut report = cost_report(&state.store).await?;
    report.budgets = state.gateway.budgets().status(&current_month());
    report.emergency_stop = state.gateway.budgets().emergency_stop();
    Ok(Json(report))
}
