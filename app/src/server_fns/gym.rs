//! The Gym area: what the dashboard's Gym page shows (scenarios × recent gym runs, pass rate
//! over time per model) and one failed attempt beside the last earlier pass ("what changed"),
//! with the port through which the server builds them from the recorded history
//! (`gym_scenario_finished` events, written by `factory gym run`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::costs::ChartSpec;
use crate::gym::GymRecord;

#[cfg(feature = "ssr")]
use super::PortError;

/// Everything the Gym page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymDashboard {
    /// Attempts read from the history (the newest ones, at most a few hundred): what the page
    /// covers. Zero means nothing was recorded yet.
    pub records: usize,
    /// The newest gym runs, newest first: the matrix's columns.
    pub runs: Vec<GymRunColumn>,
    /// One row per scenario in the history read, by name.
    pub scenarios: Vec<ScenarioRow>,
    /// Pass rate over time per model, with its table.
    pub charts: Vec<ChartSpec>,
}

/// One `factory gym run`, as a column of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymRunColumn {
    pub gym_run_id: String,
    /// When its first attempt was recorded (RFC 3339).
    pub at: String,
    /// The model chains it ran with, shortened (see the chart).
    pub models: String,
    /// Attempts that passed, of all made in it.
    pub passed: u32,
    pub attempts: u32,
}

/// One scenario across the columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRow {
    pub scenario: String,
    /// A failed attempt of it makes `factory gym run` exit non-zero.
    pub critical: bool,
    /// One per column, in the columns' order; `None` where that gym run did not include it.
    pub cells: Vec<Option<GymCell>>,
    /// Attempts that passed, of all made in the columns shown: its pass rate.
    pub passed: u32,
    pub attempts: u32,
}

/// How a scenario came out in one gym run (all its attempts, with `--repeat`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymCell {
    /// Every attempt passed.
    pub passed: bool,
    pub passed_attempts: u32,
    pub attempts: u32,
    /// The event number of the attempt the cell stands for: the newest failed one, else the
    /// newest.
    pub seq: i64,
    /// That attempt's run status, and why it ended when the run said.
    pub run_status: String,
    pub reason: Option<String>,
    /// Every model call was answered by the offline templates.
    pub offline: bool,
    /// Checks not evaluated (those that need a model, when offline).
    pub skipped_checks: u32,
    /// Set when the cell failed and an earlier attempt of the scenario passed: the failed
    /// attempt's event number, for its "what changed" page.
    pub changed: Option<i64>,
}

/// One recorded attempt, with how it differs from the scenario's last earlier pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymChange {
    pub seq: i64,
    /// When it was recorded (RFC 3339).
    pub ts: String,
    pub record: GymRecord,
    /// The last attempt of the same scenario recorded before it that passed, when the
    /// attempt failed and there is one.
    pub last_pass: Option<LastPass>,
}

/// The pass a failure is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastPass {
    pub seq: i64,
    pub ts: String,
    pub gym_run_id: String,
    /// What differs, in lines a person reads at once (settings, run status, flipped checks).
    pub what_changed: String,
}

/// What the Gym server functions may ask of the server.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait GymPort: Send + Sync + 'static {
    /// The matrix and the chart, from the newest recorded attempts.
    async fn dashboard(&self) -> Result<GymDashboard, PortError>;
    /// The attempt recorded as event `seq`; `None` when that event is not a gym attempt.
    async fn change(&self, seq: i64) -> Result<Option<GymChange>, PortError>;
}

/// The Gym page's data.
#[server(name = GymDashboardFn, prefix = "/api", endpoint = "gym_dashboard")]
pub async fn gym_dashboard() -> Result<GymDashboard, ServerFnError> {
    super::port::<dyn GymPort>()?
        .dashboard()
        .await
        .map_err(super::refused)
}

/// One recorded attempt (event `seq`) and what changed since its scenario last passed;
/// `None` when no gym attempt has that number.
#[server(name = GymChangeFn, prefix = "/api", endpoint = "gym_change")]
pub async fn gym_change(seq: i64) -> Result<Option<GymChange>, ServerFnError> {
    super::port::<dyn GymPort>()?
        .change(seq)
        .await
        .map_err(super::refused)
}

/// A gym run's id as the Gym pages show it: its last eight characters. The ids are UUIDv7,
/// whose first characters are the time and so are the same for runs minutes apart.
pub fn short_gym_run(id: &str) -> String {
    let skip = id.chars().count().saturating_sub(8);
    id.chars().skip(skip).collect()
}

/// A pass rate as the Gym page shows it: whole percent, `—` when nothing was attempted.
pub fn format_rate(passed: u32, attempts: u32) -> String {
    if attempts == 0 {
        "—".to_string()
    } else {
        format!("{:.0}%", f64::from(passed) * 100.0 / f64::from(attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gym_runs_are_told_apart_by_their_random_end() {
        assert_eq!(
            short_gym_run("01a24807-9fc3-743e-94ad-b282b388e82e"),
            "b388e82e"
        );
        assert_eq!(short_gym_run("g1"), "g1");
    }

    #[test]
    fn rates_are_whole_percent_and_nothing_is_a_dash() {
        assert_eq!(format_rate(2, 3), "67%");
        assert_eq!(format_rate(3, 3), "100%");
        assert_eq!(format_rate(0, 0), "—");
    }
}
