//! A gym run's report: every attempt's record with links to its artifacts and diff, and per
//! scenario its pass rate, pass@k and the spread of latency, tokens and cost. Written as
//! `report.json` and a self-contained `report.html` ([`super::html`]).

use std::path::Path;

use app::gym::GymRecord;
use serde::{Deserialize, Serialize};

use super::{GymError, GymOptions, Scenario};

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub gym_run_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub factory_version: String,
    pub models: String,
    pub repeat: u32,
    pub jobs: usize,
    pub scenarios: Vec<ScenarioReport>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub scenarios: usize,
    /// Scenarios every attempt of which passed.
    pub passed: usize,
    pub failed: usize,
    /// Critical scenarios with a failed attempt: the gym exits non-zero when any.
    pub critical_failed: Vec<String>,
    /// The most any attempt spent around its run (fixture, setup, checks).
    pub overhead_ms_max: u64,
}

/// One scenario over its attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    pub requirement: String,
    pub critical: bool,
    pub source: String,
    /// Every attempt passed.
    pub passed: bool,
    /// Share of attempts that passed (0–1).
    pub pass_rate: f64,
    /// pass@k with k = the attempts made: at least one passed.
    pub pass_at_k: bool,
    pub run_ms: Spread,
    pub tokens: Spread,
    pub cost_usd: Spread,
    pub attempts: Vec<AttemptReport>,
}

/// Minimum, median and maximum over attempts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = if values.len().is_multiple_of(2) {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        };
        Spread {
            min: values[0],
            median,
            max: values[values.len() - 1],
        }
    }
}

/// Who a report is: its gym run, when it started, how long it took, under which models.
pub(super) struct Head {
    pub gym_run_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub models: String,
}

/// One attempt: its record and where its files are (relative to the report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptReport {
    #[serde(flatten)]
    pub record: GymRecord,
    /// Artifact names and their paths.
    pub artifacts: Vec<(String, String)>,
    pub diff: Option<String>,
    /// When it failed and the scenario passed before: what differs (see
    /// [`super::history::what_changed`]).
    #[serde(default)]
    pub changed: Option<String>,
}

impl Report {
    /// The report of `attempts` (each already with its files and what changed) of
    /// `scenarios`, under `head`'s identity.
    pub(super) fn build(
        head: Head,
        options: &GymOptions,
        scenarios: &[Scenario],
        attempts: Vec<AttemptReport>,
    ) -> Report {
        let mut out = Vec::new();
        for s in scenarios {
            let mine: Vec<AttemptReport> = attempts
                .iter()
                .filter(|a| a.record.scenario == s.name)
                .cloned()
                .collect();
            let passed = mine.iter().filter(|a| a.record.passed).count();
            let total = mine.len().max(1);
            out.push(ScenarioReport {
                name: s.name.clone(),
                description: s.description.clone(),
                requirement: s.requirement.clone(),
                critical: s.critical,
                source: s.source.clone(),
                passed: passed == mine.len() && !mine.is_empty(),
                pass_rate: passed as f64 / total as f64,
                pass_at_k: passed > 0,
                run_ms: Spread::of(mine.iter().map(|a| a.record.run_ms as f64).collect()),
                tokens: Spread::of(
                    mine.iter()
                        .map(|a| (a.record.input_tokens + a.record.output_tokens) as f64)
                        .collect(),
                ),
                cost_usd: Spread::of(mine.iter().map(|a| a.record.cost_usd).collect()),
                attempts: mine,
            });
        }
        let summary = Summary {
            scenarios: out.len(),
            passed: out.iter().filter(|s| s.passed).count(),
            failed: out.iter().filter(|s| !s.passed).count(),
            critical_failed: out
                .iter()
                .filter(|s| s.critical && !s.passed)
                .map(|s| s.name.clone())
                .collect(),
            overhead_ms_max: attempts
                .iter()
                .map(|a| a.record.overhead_ms)
                .max()
                .unwrap_or(0),
        };
        Report {
            gym_run_id: head.gym_run_id,
            started_at: head.started_at,
            duration_ms: head.duration_ms,
            factory_version: env!("CARGO_PKG_VERSION").to_string(),
            models: head.models,
            repeat: options.repeat,
            jobs: options.jobs,
            scenarios: out,
            summary,
        }
    }

    /// Writes `report.json` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), GymError> {
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| GymError::Io {
            path: json.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&json, text).map_err(GymError::io(&json))?;
        let html = dir.join("report.html");
        std::fs::write(&html, super::html::render(self)).map_err(GymError::io(&html))?;
        Ok(())
    }

    /// Whether a critical scenario failed (the gym's exit code).
    pub fn critical_failed(&self) -> bool {
        !self.summary.critical_failed.is_empty()
    }
}
