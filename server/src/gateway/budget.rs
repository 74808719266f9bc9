//! Budgets: three tiers (soft, hard, emergency) per scope (calendar month, run, team, project).
//!
//! A paid call first **reserves** its worst-case cost (prompt tokens plus `max_tokens` at the
//! model's price) in every scope it belongs to, and is refused when any scope would go past its
//! hard or emergency limit counting what is already spent *and* what calls in flight hold.
//! After the call the reservation is **settled** with the actual cost (or released on
//! failure). So any number of concurrent calls can never push a scope past its hard limit.
//! Free models (local, offline) reserve nothing and are never refused.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use app::ledger::{Attribution, BudgetScope, BudgetStatus, BudgetTier};

use crate::config::gateway::{BudgetConfig, Tiers};

/// A call refused by a budget.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "budget: the hard limit of ${limit:.2} for {scope} would be exceeded (spent ${spent:.4}, \
         held by calls in flight ${reserved:.4}, this call up to ${amount:.4}); no more paid \
         calls in this scope until a person raises the limit (a budget approval, Settings, or \
         [budgets] in factory.toml)"
    )]
    Hard {
        scope: BudgetScope,
        limit: f64,
        spent: f64,
        reserved: f64,
        amount: f64,
    },
    #[error(
        "budget: emergency stop — {scope} reached its emergency limit of ${limit:.2}; every paid \
         call is refused until the limit is raised (Settings, or factory.toml and a restart)"
    )]
    Emergency { scope: BudgetScope, limit: f64 },
}

/// Cost held for one call in flight.
#[derive(Debug)]
#[must_use = "a reservation must be settled or released"]
pub struct Reservation {
    scopes: Vec<BudgetScope>,
    amount: f64,
}

impl Reservation {
    /// The worst-case cost held.
    pub fn amount(&self) -> f64 {
        self.amount
    }
}

/// A tier newly reached by a scope (recorded as a `budget_reached` event).
#[derive(Debug, Clone, PartialEq)]
pub struct Reached {
    pub scope: BudgetScope,
    pub tier: BudgetTier,
    pub spent: f64,
    pub limit: f64,
}

#[derive(Debug, Default)]
struct State {
    /// The limits in force; replaced as a whole by [`Budgets::set_config`].
    config: BudgetConfig,
    spent: HashMap<BudgetScope, f64>,
    reserved: HashMap<BudgetScope, f64>,
    /// Tiers already reported, so each is recorded once per scope.
    reached: HashSet<(BudgetScope, BudgetTier)>,
    /// Hard limits raised by a person, per scope.
    raised: HashMap<BudgetScope, f64>,
    /// Set once any scope reaches its emergency limit: every paid call is refused.
    emergency: Option<(BudgetScope, f64)>,
}

/// Budget accounting for one process. Spending already in the ledger is loaded at start-up.
/// The limits live under the same lock as the spending, so a change made in Settings applies
/// to the very next reservation and never to half of one.
#[derive(Debug)]
pub struct Budgets {
    state: Mutex<State>,
}

impl State {
    /// The configured tiers of a scope.
    fn tiers(&self, scope: &BudgetScope) -> &Tiers {
        let c = &self.config;
        match scope {
            BudgetScope::Month { .. } => &c.month,
            BudgetScope::Run { .. } => &c.run,
            BudgetScope::Team { team, .. } => c.teams.get(team).unwrap_or(&c.team),
            BudgetScope::Project { project, .. } => c.projects.get(project).unwrap_or(&c.project),
        }
    }

    /// A scope's limit for one tier; a hard limit raised by a person wins over the configured
    /// one.
    fn limit(&self, scope: &BudgetScope, tier: BudgetTier) -> Option<f64> {
        match tier {
            BudgetTier::Hard => self
                .raised
                .get(scope)
                .copied()
                .or_else(|| self.tiers(scope).hard),
            _ => self.tiers(scope).limit(tier),
        }
    }

    /// The limit of `tier` when spending in `scope` has reached it.
    fn reached_limit(&self, scope: &BudgetScope, tier: BudgetTier) -> Option<f64> {
        let limit = self.limit(scope, tier)?;
        (self.spent.get(scope).copied().unwrap_or(0.0) >= limit).then_some(limit)
    }
}

/// The calendar month (UTC) now, as budgets and the ledger key it: `2026-11`.
pub fn current_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

impl Budgets {
    pub fn new(config: BudgetConfig) -> Budgets {
        Budgets {
            state: Mutex::new(State {
                config,
                ..State::default()
            }),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> BudgetConfig {
        self.state().config.clone()
    }

    /// Replaces the limits, keeping spending, reservations and raised hard limits. Tiers are
    /// re-evaluated against the new limits: one no longer reached may be reported again when
    /// spending crosses it, and an emergency stop lifts when no scope is past its (new)
    /// emergency limit.
    pub fn set_config(&self, config: BudgetConfig) {
        let mut guard = self.state();
        let state = &mut *guard;
        state.config = config;
        let reached = state
            .reached
            .iter()
            .filter(|(scope, tier)| state.reached_limit(scope, *tier).is_some())
            .cloned()
            .collect();
        let emergency = state.spent.keys().find_map(|scope| {
            let limit = state.reached_limit(scope, BudgetTier::Emergency)?;
            Some((scope.clone(), limit))
        });
        state.reached = reached;
        state.emergency = emergency;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The scopes a call counts against.
    pub fn scopes(attribution: &Attribution, month: &str) -> Vec<BudgetScope> {
        let mut scopes = vec![BudgetScope::Month {
            month: month.to_string(),
        }];
        if let Some(run_id) = &attribution.run_id {
            scopes.push(BudgetScope::Run {
                run_id: run_id.clone(),
            });
        }
        if let Some(team) = &attribution.team {
            scopes.push(BudgetScope::Team {
                team: team.clone(),
                month: month.to_string(),
            });
        }
        if let Some(project) = &attribution.project {
            scopes.push(BudgetScope::Project {
                project: project.clone(),
                month: month.to_string(),
            });
        }
        scopes
    }

    /// Adds spending already recorded (the ledger, read at start-up).
    pub fn load_spent(&self, scope: BudgetScope, spent: f64) {
        let mut state = self.state();
        *state.spent.entry(scope.clone()).or_default() += spent;
        let total = state.spent[&scope];
        for tier in [BudgetTier::Soft, BudgetTier::Hard, BudgetTier::Emergency] {
            if let Some(limit) = state.limit(&scope, tier)
                && total >= limit
            {
                state.reached.insert((scope.clone(), tier));
                if tier == BudgetTier::Emergency && state.emergency.is_none() {
                    state.emergency = Some((scope.clone(), limit));
                }
            }
        }
    }

    /// Holds `amount` (the call's worst case) in every scope of the call, or refuses it.
    pub fn reserve(
        &self,
        attribution: &Attribution,
        month: &str,
        amount: f64,
    ) -> Result<Reservation, (BudgetError, Vec<Reached>)> {
        let scopes = Budgets::scopes(attribution, month);
        if amount <= 0.0 {
            return Ok(Reservation {
                scopes: Vec::new(),
                amount: 0.0,
            });
        }
        let mut state = self.state();
        if let Some((scope, limit)) = &state.emergency {
            return Err((
                BudgetError::Emergency {
                    scope: scope.clone(),
                    limit: *limit,
                },
                Vec::new(),
            ));
        }
        for scope in &scopes {
            let spent = state.spent.get(scope).copied().unwrap_or(0.0);
            let reserved = state.reserved.get(scope).copied().unwrap_or(0.0);
            let hard = state.limit(scope, BudgetTier::Hard);
            if let Some(limit) = hard
                && spent + reserved + amount > limit
            {
                let mut reached = Vec::new();
                if state.reached.insert((scope.clone(), BudgetTier::Hard)) {
                    reached.push(Reached {
                        scope: scope.clone(),
                        tier: BudgetTier::Hard,
                        spent,
                        limit,
                    });
                }
                let error = BudgetError::Hard {
                    scope: scope.clone(),
                    limit,
                    spent,
                    reserved,
                    amount,
                };
                return Err((error, reached));
            }
            // Without a hard limit (or with one raised past it), the emergency limit still
            // holds the line.
            if let Some(limit) = state.limit(scope, BudgetTier::Emergency)
                && spent + reserved + amount > limit
            {
                return Err((
                    BudgetError::Emergency {
                        scope: scope.clone(),
                        limit,
                    },
                    Vec::new(),
                ));
            }
        }
        for scope in &scopes {
            *state.reserved.entry(scope.clone()).or_default() += amount;
        }
        Ok(Reservation { scopes, amount })
    }

    /// Replaces the reservation with what the call actually cost; returns tiers newly reached.
    pub fn settle(&self, reservation: Reservation, cost: f64) -> Vec<Reached> {
        let mut state = self.state();
        let mut reached = Vec::new();
        for scope in &reservation.scopes {
            if let Some(held) = state.reserved.get_mut(scope) {
                *held = (*held - reservation.amount).max(0.0);
            }
            let spent = {
                let spent = state.spent.entry(scope.clone()).or_default();
                *spent += cost;
                *spent
            };
            for tier in [BudgetTier::Soft, BudgetTier::Hard, BudgetTier::Emergency] {
                if let Some(limit) = state.limit(scope, tier)
                    && spent >= limit
                    && state.reached.insert((scope.clone(), tier))
                {
                    if tier == BudgetTier::Emergency && state.emergency.is_none() {
                        state.emergency = Some((scope.clone(), limit));
                    }
                    reached.push(Reached {
                        scope: scope.clone(),
                        tier,
                        spent,
                        limit,
                    });
                }
            }
        }
        reached
    }

    /// Gives a reservation back (the call failed or moved on to another model).
    pub fn release(&self, reservation: Reservation) {
        let mut state = self.state();
        for scope in &reservation.scopes {
            if let Some(held) = state.reserved.get_mut(scope) {
                *held = (*held - reservation.amount).max(0.0);
            }
        }
    }

    /// A person raised a scope's hard limit (a `budget` approval).
    pub fn raise(&self, scope: BudgetScope, hard: f64) {
        let mut state = self.state();
        state.reached.remove(&(scope.clone(), BudgetTier::Hard));
        state.raised.insert(scope, hard);
    }

    /// True while an emergency limit has stopped every paid call.
    pub fn emergency_stop(&self) -> bool {
        self.state().emergency.is_some()
    }

    /// Where every scope with spending or a limit stands (the current month's scopes, runs with
    /// spending).
    pub fn status(&self, month: &str) -> Vec<BudgetStatus> {
        let state = self.state();
        let mut scopes: BTreeMap<BudgetScope, ()> = BTreeMap::new();
        scopes.insert(
            BudgetScope::Month {
                month: month.to_string(),
            },
            (),
        );
        for scope in state.spent.keys().chain(state.reserved.keys()) {
            let current = match scope {
                BudgetScope::Month { month: m }
                | BudgetScope::Team { month: m, .. }
                | BudgetScope::Project { month: m, .. } => m == month,
                BudgetScope::Run { .. } => true,
            };
            if current {
                scopes.insert(scope.clone(), ());
            }
        }
        scopes
            .into_keys()
            .map(|scope| BudgetStatus {
                spent_usd: state.spent.get(&scope).copied().unwrap_or(0.0),
                reserved_usd: state.reserved.get(&scope).copied().unwrap_or(0.0),
                soft_usd: state.limit(&scope, BudgetTier::Soft),
                hard_usd: state.limit(&scope, BudgetTier::Hard),
                emergency_usd: state.limit(&scope, BudgetTier::Emergency),
                scope,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
