//! Model-call accounting shared by server and dashboard: who a call is for, the fallback path
//! it took, routing decisions, budget scopes and cost totals.

use serde::{Deserialize, Serialize};

/// Whom a model call is for: every call is attributed in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
}

/// One step of the fallback path actually taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// `provider:model`.
    pub model: String,
    /// `ok`, or what went wrong (`429 Too Many Requests`, `circuit open`, …).
    pub outcome: String,
}

/// A work order's risk level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    /// The risk's weight in the complexity score (0.2 / 0.5 / 0.8).
    pub fn score(self) -> f64 {
        match self {
            Risk::Low => 0.2,
            Risk::Medium => 0.5,
            Risk::High => 0.8,
        }
    }

    /// Lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// A routing decision with its inputs and reason (the decision log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub alias: String,
    pub complexity: f64,
    pub files_in_scope: u32,
    pub files_normalised: f64,
    pub risk: Risk,
    pub has_acceptance_criteria: bool,
    pub threshold: f64,
    /// The keyword that forced the strong alias, if one did.
    pub hard_stop: Option<String>,
    pub reason: String,
}

/// A spending scope. Team and project budgets are per calendar month, like the global one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum BudgetScope {
    /// Everything spent in a calendar month (`2026-11`).
    Month {
        month: String,
    },
    Run {
        run_id: String,
    },
    Team {
        team: String,
        month: String,
    },
    Project {
        project: String,
        month: String,
    },
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetScope::Month { month } => write!(f, "month {month}"),
            BudgetScope::Run { run_id } => write!(f, "run {run_id}"),
            BudgetScope::Team { team, month } => write!(f, "team {team} in {month}"),
            BudgetScope::Project { project, month } => write!(f, "project {project} in {month}"),
        }
    }
}

/// The three budget tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetTier {
    /// A warning event and a badge.
    Soft,
    /// No more paid calls in that scope.
    Hard,
    /// No more paid calls anywhere.
    Emergency,
}

impl BudgetTier {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetTier::Soft => "soft",
            BudgetTier::Hard => "hard",
            BudgetTier::Emergency => "emergency",
        }
    }
}

/// Calls, tokens and cost of one group (a run, team, model, project or day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    pub key: String,
    pub calls: i64,
    /// Every prompt token, cached ones included.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    /// Prompt tokens read from the providers' caches, at their cached rate.
    #[serde(default)]
    pub cached_tokens: i64,
}

/// Where a budget scope stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    #[serde(flatten)]
    pub scope: BudgetScope,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub soft_usd: Option<f64>,
    pub hard_usd: Option<f64>,
    pub emergency_usd: Option<f64>,
}

/// Totals from the ledger, grouped every useful way, plus the budgets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    pub total: Option<CostLine>,
    pub by_run: Vec<CostLine>,
    pub by_team: Vec<CostLine>,
    pub by_model: Vec<CostLine>,
    pub by_project: Vec<CostLine>,
    pub by_day: Vec<CostLine>,
    pub budgets: Vec<BudgetStatus>,
    /// True while the emergency tier has stopped every paid call.
    pub emergency_stop: bool,
}
