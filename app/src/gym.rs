//! The Gym's records: one scenario attempt's outcome, as the gym stores it in the event log
//! and its reports and the dashboard's Gym page show it.

use serde::{Deserialize, Serialize};

/// How one check of a scenario came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    Failed,
    /// Not evaluated, with why (e.g. a check that needs a model, on the offline provider).
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::Skipped => "skipped",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check's name (given in the scenario, or made from what it checks).
    pub name: String,
    /// `artifact`, `file`, `signature`, `command`, `status`, `approval`, `host_file` or
    /// `limit`.
    pub kind: String,
    pub status: CheckStatus,
    /// What was found: the failing command's output tail, the artifact names looked at, …
    pub detail: String,
}

/// One attempt of one scenario: what ran, under which settings, and how it came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymRecord {
    /// The `factory gym run` this attempt belongs to.
    pub gym_run_id: String,
    pub scenario: String,
    /// 1-based, of `--repeat`.
    pub attempt: u32,
    pub critical: bool,
    /// Every check that was evaluated passed (skipped ones aside) and the run was driven to
    /// an end.
    pub passed: bool,
    /// Content hash of the team catalogue the run used (with the fixture's overrides).
    pub catalogue_hash: String,
    pub pipeline: String,
    /// The model chains in force: `alias=provider:model,…` per alias, `;`-separated.
    pub models: String,
    /// Every model call was answered by the offline templates (no model was involved).
    pub offline: bool,
    /// The run's final status (`succeeded`, `failed`, `waiting_for_human`, …).
    pub run_status: String,
    /// Why the run ended, when it says.
    #[serde(default)]
    pub reason: Option<String>,
    pub checks: Vec<CheckOutcome>,
    /// Wall time of the run itself.
    pub run_ms: u64,
    /// Time the gym spent around it: fixture, setup, checks.
    pub overhead_ms: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub model_calls: u32,
    /// Decisions the gym made in a person's place.
    pub human_decisions: u32,
    /// The run's id in the attempt's own data directory.
    pub run_id: String,
    /// The attempt's directory (its data, fixture repository and diff), as written.
    pub dir: String,
}

impl GymRecord {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Failed)
    }
}
