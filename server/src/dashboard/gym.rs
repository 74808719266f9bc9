//! The server's side of the Gym port: the matrix and chart from the newest recorded gym
//! attempts ([`matrix`], [`chart`]), and one attempt beside its scenario's last earlier pass,
//! compared by the gym's own [`what_changed`].

mod chart;
mod matrix;

use std::sync::Arc;

use app::events::EventData;
use app::server_fns::PortError;
use app::server_fns::gym::{GymChange, GymDashboard, GymPort, LastPass};

use super::failure::Failure;
use crate::gym::history::what_changed;
use crate::startup::AppState;
use crate::store::Store;

/// Attempts the page is built from: the newest ones.
const HISTORY: u32 = 200;
/// Gym runs shown as the matrix's columns.
const COLUMNS: usize = 10;
/// How far back a failure's last pass is looked for, in attempts of its scenario.
const LOOKBACK: u32 = 1_000;

/// The Gym port for the dashboard, provided as Leptos context.
pub(super) fn port(state: &AppState) -> Arc<dyn GymPort> {
    Arc::new(GymHistory {
        store: state.store.clone(),
    })
}

/// Reads the gym's records from the event log.
struct GymHistory {
    store: Store,
}

impl GymHistory {
    async fn dashboard(&self) -> Result<GymDashboard, Failure> {
        let entries = self.store.gym_history(None, HISTORY).await?;
        let runs = matrix::gym_runs(&entries, HISTORY as usize);
        let charts = if runs.is_empty() {
            Vec::new()
        } else {
            vec![chart::pass_rate(&runs)]
        };
        Ok(GymDashboard {
            records: entries.len(),
            runs: matrix::columns(&runs, COLUMNS),
            scenarios: matrix::rows(&runs, COLUMNS),
            charts,
        })
    }

    async fn change(&self, seq: i64) -> Result<Option<GymChange>, Failure> {
        let Some(row) = self.store.row(seq).await? else {
            return Ok(None);
        };
        let event = row.into_event()?;
        let EventData::GymScenarioFinished { record } = event.data else {
            return Ok(None);
        };
        let last_pass = if record.passed {
            None
        } else {
            let earlier = self
                .store
                .gym_history(Some(&record.scenario), LOOKBACK)
                .await?;
            // Newest first: the first pass recorded before this attempt.
            earlier
                .into_iter()
                .find(|e| e.seq < seq && e.record.passed)
                .map(|pass| LastPass {
                    seq: pass.seq,
                    what_changed: what_changed(&pass.record, &record),
                    gym_run_id: pass.record.gym_run_id,
                    ts: pass.ts,
                })
        };
        Ok(Some(GymChange {
            seq,
            ts: event.ts,
            record,
            last_pass,
        }))
    }
}

#[async_trait::async_trait]
impl GymPort for GymHistory {
    async fn dashboard(&self) -> Result<GymDashboard, PortError> {
        GymHistory::dashboard(self)
            .await
            .map_err(|e| e.into_port("gym_dashboard"))
    }

    async fn change(&self, seq: i64) -> Result<Option<GymChange>, PortError> {
        GymHistory::change(self, seq)
            .await
            .map_err(|e| e.into_port("gym_change"))
    }
}
