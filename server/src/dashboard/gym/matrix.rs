//! The Gym page's numbers, from the newest recorded attempts: the attempts grouped by gym run,
//! the matrix of scenarios × the newest gym runs, and each gym run's pass rate for the chart.

use std::collections::BTreeMap;

use app::gym::CheckStatus;
use app::server_fns::gym::{GymCell, GymRunColumn, ScenarioRow};

use crate::store::gym::GymEntry;

/// One `factory gym run` and its attempts within what was read, newest first.
pub(super) struct GymRun<'a> {
    pub id: &'a str,
    /// When its first attempt (of those read) was recorded.
    pub at: &'a str,
    pub models: &'a str,
    pub entries: Vec<&'a GymEntry>,
}

impl GymRun<'_> {
    pub fn passed(&self) -> u32 {
        count(self.entries.iter().filter(|e| e.record.passed))
    }

    pub fn attempts(&self) -> u32 {
        count(self.entries.iter())
    }
}

/// The gym runs among `entries` (newest first, as the store gives them), newest first. When
/// the read was cut at `limit`, the oldest run may be only partly there: it is left out unless
/// it is the only one, so no pass rate is computed from part of a run.
pub(super) fn gym_runs(entries: &[GymEntry], limit: usize) -> Vec<GymRun<'_>> {
    let mut runs: Vec<GymRun<'_>> = Vec::new();
    for entry in entries {
        let record = &entry.record;
        match runs.iter_mut().find(|r| r.id == record.gym_run_id) {
            Some(run) => {
                run.at = run.at.min(entry.ts.as_str());
                run.entries.push(entry);
            }
            None => runs.push(GymRun {
                id: &record.gym_run_id,
                at: &entry.ts,
                models: &record.models,
                entries: vec![entry],
            }),
        }
    }
    if entries.len() >= limit && runs.len() > 1 {
        runs.pop();
    }
    runs
}

/// The matrix's columns: the first `columns` runs.
pub(super) fn columns(runs: &[GymRun<'_>], columns: usize) -> Vec<GymRunColumn> {
    runs.iter()
        .take(columns)
        .map(|run| GymRunColumn {
            gym_run_id: run.id.to_string(),
            at: run.at.to_string(),
            models: super::chart::short_models(run.models),
            passed: run.passed(),
            attempts: run.attempts(),
        })
        .collect()
}

/// One row per scenario in `runs` (by name), with a cell for each of the first `columns`
/// runs. A failed cell links to what changed when an earlier attempt of its scenario (among
/// all of `runs`) passed.
pub(super) fn rows(runs: &[GymRun<'_>], columns: usize) -> Vec<ScenarioRow> {
    // Each scenario's attempts, oldest first, and whether the newest says it is critical.
    let mut scenarios: BTreeMap<&str, (bool, Vec<&GymEntry>)> = BTreeMap::new();
    for entry in runs.iter().rev().flat_map(|r| r.entries.iter().rev()) {
        let (critical, history) = scenarios.entry(&entry.record.scenario).or_default();
        *critical = entry.record.critical;
        history.push(entry);
    }
    scenarios
        .into_iter()
        .map(|(name, (critical, history))| {
            let cells: Vec<Option<GymCell>> = runs
                .iter()
                .take(columns)
                .map(|run| cell(name, run, &history))
                .collect();
            let shown = cells.iter().flatten();
            ScenarioRow {
                scenario: name.to_string(),
                critical,
                passed: shown.clone().map(|c| c.passed_attempts).sum(),
                attempts: shown.map(|c| c.attempts).sum(),
                cells,
            }
        })
        .collect()
}

/// How `scenario` came out in `run`; `None` when the run did not include it. `history` is
/// every attempt of the scenario read, oldest first.
fn cell(scenario: &str, run: &GymRun<'_>, history: &[&GymEntry]) -> Option<GymCell> {
    let attempts: Vec<&GymEntry> = run
        .entries
        .iter()
        .copied()
        .filter(|e| e.record.scenario == scenario)
        .collect();
    // Newest first: the newest failed attempt stands for the cell, else the newest.
    let shown = attempts
        .iter()
        .find(|e| !e.record.passed)
        .or(attempts.first())?;
    let passed_attempts = count(attempts.iter().filter(|e| e.record.passed));
    let passed = passed_attempts == count(attempts.iter());
    let passed_before = history.iter().any(|e| e.seq < shown.seq && e.record.passed);
    let record = &shown.record;
    Some(GymCell {
        passed,
        passed_attempts,
        attempts: count(attempts.iter()),
        seq: shown.seq,
        run_status: record.run_status.clone(),
        reason: record.reason.clone(),
        offline: record.offline,
        skipped_checks: count(
            record
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Skipped),
        ),
        changed: (!passed && passed_before).then_some(shown.seq),
    })
}

fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use app::gym::{CheckOutcome, GymRecord};

    /// An attempt of `scenario` in gym run `run`, recorded as event `seq`.
    pub(crate) fn entry(seq: i64, run: &str, scenario: &str, passed: bool) -> GymEntry {
        GymEntry {
            seq,
            ts: format!("2026-11-22T05:{:02}:00.000Z", seq % 60),
            record: GymRecord {
                gym_run_id: run.into(),
                scenario: scenario.into(),
                attempt: 1,
                critical: scenario == "fix",
                passed,
                catalogue_hash: "c".into(),
                pipeline: "default".into(),
                models: "factory/coder=offline:template; factory/planner=offline:template".into(),
                offline: true,
                run_status: if passed { "succeeded" } else { "failed" }.into(),
                reason: None,
                checks: vec![CheckOutcome {
                    name: "reviewed".into(),
                    kind: "approval".into(),
                    status: CheckStatus::Skipped,
                    detail: "needs a model".into(),
                }],
                run_ms: 1,
                overhead_ms: 1,
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: 0.0,
                model_calls: 0,
                human_decisions: 0,
                run_id: "r".into(),
                dir: "d".into(),
            },
        }
    }

    /// Newest first, as the store returns them: g1 (fix passes, docs fails), g2 (fix fails,
    /// docs fails), g3 (fix passes twice, docs absent).
    fn history() -> Vec<GymEntry> {
        vec![
            entry(6, "g3", "fix", true),
            entry(5, "g3", "fix", true),
            entry(4, "g2", "fix", false),
            entry(3, "g2", "docs", false),
            entry(2, "g1", "fix", true),
            entry(1, "g1", "docs", false),
        ]
    }

    #[test]
    fn runs_are_grouped_newest_first_and_a_cut_oldest_run_is_left_out() {
        let entries = history();
        let ids: Vec<&str> = gym_runs(&entries, 200).iter().map(|r| r.id).collect();
        assert_eq!(ids, ["g3", "g2", "g1"]);
        let ids: Vec<&str> = gym_runs(&entries, 6).iter().map(|r| r.id).collect();
        assert_eq!(ids, ["g3", "g2"], "g1 may be partial");
        let one = &entries[..2];
        assert_eq!(gym_runs(one, 2).len(), 1, "the only run stays");
        let cols = columns(&gym_runs(&entries, 200), 2);
        assert_eq!(cols.len(), 2);
        assert_eq!((cols[0].passed, cols[0].attempts), (2, 2));
        assert_eq!(cols[0].at, "2026-11-22T05:05:00.000Z", "its first attempt");
        assert_eq!(cols[0].models, "every alias: offline:template");
    }

    #[test]
    fn a_failure_after_a_pass_links_to_what_changed_and_rates_cover_the_columns() {
        let entries = history();
        let rows = rows(&gym_runs(&entries, 200), 10);
        let names: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
        assert_eq!(names, ["docs", "fix"]);
        let (docs, fix) = (&rows[0], &rows[1]);
        assert!(fix.critical && !docs.critical);
        // fix: g3 passed twice, g2 failed after g1's pass, g1 passed.
        let g3 = fix.cells[0].as_ref().unwrap();
        assert!(g3.passed && g3.attempts == 2 && g3.changed.is_none());
        let g2 = fix.cells[1].as_ref().unwrap();
        assert!(!g2.passed);
        assert_eq!(g2.changed, Some(4));
        assert_eq!(g2.skipped_checks, 1);
        assert_eq!((fix.passed, fix.attempts), (3, 4));
        // docs never passed: no comparison; absent from g3.
        assert!(docs.cells[0].is_none());
        assert_eq!(docs.cells[1].as_ref().unwrap().changed, None);
        assert_eq!((docs.passed, docs.attempts), (0, 2));
        // Only the columns shown count towards the rate.
        let rows = super::rows(&gym_runs(&entries, 200), 1);
        assert_eq!((rows[1].passed, rows[1].attempts), (2, 2));
        assert_eq!(rows[1].cells.len(), 1);
    }
}
