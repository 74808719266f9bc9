//! Gym: how the gym's scenarios came out, run after run — a matrix of scenarios × the newest
//! gym runs (pass or fail per cell, each scenario's pass rate, a link to what changed where a
//! scenario that passed before fails) and the pass rate over time per model, as a chart with
//! its table. Built from the attempts `factory gym run` recorded; refreshed when one is
//! recorded. One failed attempt beside its last pass is [`GymChangedPage`].

mod changed;

use leptos::prelude::*;

use super::chart::ChartCard;
use super::{ErrorBox, Frame};
use crate::live::LiveScope;
use crate::server_fns::error_text;
use crate::server_fns::gym::{
    GymCell, GymDashboard, GymRunColumn, ScenarioRow, format_rate, gym_dashboard, short_gym_run,
};
use crate::time::format_minute;
pub use changed::GymChangedPage;

/// The events that change what the Gym pages show.
const CHANGES: &[&str] = &["gym_scenario_finished"];

const LINK: &str = "rounded text-indigo-700 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";

/// The Gym page: the matrix, then the chart (or how to record something).
#[component]
pub fn GymPage() -> impl IntoView {
    let dashboard = Resource::new(|| (), |_| gym_dashboard());
    view! {
        <Frame live=LiveScope::kinds(CHANGES)>
            <div data-testid="gym">
                <h1 class="text-2xl font-semibold">"Gym"</h1>
                <p class="mt-1 text-sm text-slate-600">
                    "How the gym's scenarios came out in the latest gym runs. Updates live."
                </p>
                <Suspense fallback=|| view! { <p class="mt-4 text-slate-500" aria-live="polite">"Loading the gym's history…"</p> }>
                    {move || Suspend::new(async move {
                        match dashboard.await {
                            Ok(d) if d.records == 0 => view! { <EmptyState /> }.into_any(),
                            Ok(d) => view! { <Dashboard dashboard=d /> }.into_any(),
                            Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </Frame>
    }
}

#[component]
fn Dashboard(dashboard: GymDashboard) -> impl IntoView {
    let GymDashboard {
        records,
        runs,
        scenarios,
        charts,
    } = dashboard;
    let scope = format!(
        "The newest {} gym run(s) of the last {records} recorded attempts; newest first.",
        runs.len()
    );
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="gym-matrix-title">
            <h2 id="gym-matrix-title" class="text-base font-medium">"Scenarios × gym runs"</h2>
            <p class="mt-1 text-xs text-slate-500" data-testid="gym-scope">{scope}</p>
            <Matrix runs scenarios />
        </section>
        <div class="mt-6 space-y-6">
            {charts.into_iter().map(|chart| view! { <ChartCard chart compact=false /> }).collect_view()}
        </div>
    }
}

/// One row per scenario, one column per gym run, and the scenario's pass rate.
#[component]
fn Matrix(runs: Vec<GymRunColumn>, scenarios: Vec<ScenarioRow>) -> impl IntoView {
    let columns = runs.clone();
    view! {
        <div class="mt-3 overflow-x-auto">
            <table class="min-w-full text-left text-sm" data-testid="gym-matrix">
                <caption class="sr-only">"Each scenario's result in each of the newest gym runs"</caption>
                <thead class="bg-slate-50 text-xs text-slate-500">
                    <tr>
                        <th scope="col" class="px-2 py-1 uppercase tracking-wide">"Scenario"</th>
                        {columns.into_iter().map(|run| view! { <RunHeading run /> }).collect_view()}
                        <th scope="col" class="px-2 py-1 uppercase tracking-wide">"Pass rate"</th>
                    </tr>
                </thead>
                <tbody>
                    {scenarios
                        .into_iter()
                        .map(|row| view! { <Row row runs=runs.clone() /> })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// A gym run's column heading: when, which run, how many attempts passed; the models on hover.
#[component]
fn RunHeading(run: GymRunColumn) -> impl IntoView {
    let title = format!("gym run {}\nmodels: {}", run.gym_run_id, run.models);
    let short = short_gym_run(&run.gym_run_id);
    view! {
        <th scope="col" class="whitespace-nowrap px-2 py-1 font-normal" title=title data-gym-run=run.gym_run_id.clone()>
            <span class="block font-medium text-slate-700">{format_minute(&run.at)}</span>
            <span class="block font-mono">{short}</span>
            <span class="block tabular-nums">{format!("{}/{} passed", run.passed, run.attempts)}</span>
        </th>
    }
}

#[component]
fn Row(row: ScenarioRow, runs: Vec<GymRunColumn>) -> impl IntoView {
    let ScenarioRow {
        scenario,
        critical,
        cells,
        passed,
        attempts,
    } = row;
    let rate_title = format!("{passed} of {attempts} attempts passed in the gym runs shown");
    view! {
        <tr class="border-t border-slate-100 align-top" data-scenario=scenario.clone()>
            <th scope="row" class="px-2 py-2 font-medium">
                {scenario.clone()}
                {critical.then(|| view! { <span class="ml-2 rounded bg-slate-100 px-1.5 py-0.5 text-xs font-normal text-slate-600">"critical"</span> })}
            </th>
            {cells
                .into_iter()
                .zip(runs)
                .map(|(cell, run)| view! { <Cell cell gym_run_id=run.gym_run_id /> })
                .collect_view()}
            <td class="px-2 py-2 tabular-nums" data-testid="gym-pass-rate" title=rate_title>
                {format_rate(passed, attempts)}
            </td>
        </tr>
    }
}

/// Pass or fail, with the run's status on hover, a hint when checks were skipped offline, and
/// a link to the failed attempt (to what changed, when the scenario passed before).
#[component]
fn Cell(cell: Option<GymCell>, gym_run_id: String) -> impl IntoView {
    let Some(cell) = cell else {
        return view! {
            <td class="px-2 py-2 text-slate-400" data-gym-run=gym_run_id data-result="none" title="not in this gym run">"—"</td>
        }
        .into_any();
    };
    let (result, label, class) = if cell.passed {
        ("pass", "✓ pass", "bg-emerald-50 text-emerald-800")
    } else {
        ("fail", "✗ fail", "bg-red-50 text-red-800")
    };
    let count = (cell.attempts > 1).then(|| format!(" {}/{}", cell.passed_attempts, cell.attempts));
    let hint = offline_hint(&cell);
    let link = (!cell.passed).then(|| {
        let (href, text) = match cell.changed {
            Some(seq) => (format!("/gym/changed/{seq}"), "what changed"),
            None => (format!("/gym/changed/{}", cell.seq), "checks"),
        };
        view! { <a class=format!("block text-xs {LINK}") href=href data-testid="gym-cell-link">{text}</a> }
    });
    view! {
        <td class="px-2 py-2" data-gym-run=gym_run_id data-result=result data-seq=cell.seq title=cell_title(&cell)>
            <span class=format!("whitespace-nowrap rounded px-1.5 py-0.5 text-xs font-medium {class}")>{label}{count}</span>
            {hint.map(|h| view! { <span class="mt-0.5 block whitespace-nowrap text-xs text-amber-700" data-testid="gym-offline">{h}</span> })}
            {link}
        </td>
    }
    .into_any()
}

/// The hover text of a cell: the run's status (and why it ended), and the attempts.
fn cell_title(cell: &GymCell) -> String {
    let mut title = format!("run {}", cell.run_status);
    if let Some(reason) = &cell.reason {
        title.push_str(&format!(": {reason}"));
    }
    if cell.attempts > 1 {
        title.push_str(&format!(
            "\n{} of {} attempts passed",
            cell.passed_attempts, cell.attempts
        ));
    }
    title
}

/// Said when the attempt ran on the offline templates: its checks that need a model were
/// skipped, so a pass there says less.
fn offline_hint(cell: &GymCell) -> Option<String> {
    match (cell.offline, cell.skipped_checks) {
        (false, _) => None,
        (true, 0) => Some("offline".to_string()),
        (true, 1) => Some("offline · 1 skipped check".to_string()),
        (true, n) => Some(format!("offline · {n} skipped checks")),
    }
}

#[component]
fn EmptyState() -> impl IntoView {
    const CODE: &str = "rounded bg-slate-100 px-1 font-mono text-slate-800";
    view! {
        <div class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="gym-empty">
            <h2 class="text-lg font-medium">"No gym runs recorded yet"</h2>
            <p class="mt-2 text-sm text-slate-600">
                "Run the scenarios with " <code class=CODE>"factory gym run"</code>
                " on this data directory; each attempt is recorded and shows here. "
                <code class=CODE>"factory gym run --model '*=offline:template'"</code>
                " runs them without a model (checks that need one are skipped)."
            </p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(offline: bool, skipped: u32, attempts: u32) -> GymCell {
        GymCell {
            passed: false,
            passed_attempts: 1,
            attempts,
            seq: 7,
            run_status: "failed".into(),
            reason: Some("tests failed".into()),
            offline,
            skipped_checks: skipped,
            changed: None,
        }
    }

    #[test]
    fn a_cell_says_how_its_run_ended_and_what_offline_skipped() {
        assert_eq!(cell_title(&cell(false, 0, 1)), "run failed: tests failed");
        assert!(cell_title(&cell(false, 0, 3)).ends_with("1 of 3 attempts passed"));
        assert_eq!(offline_hint(&cell(false, 2, 1)), None);
        assert_eq!(offline_hint(&cell(true, 0, 1)).as_deref(), Some("offline"));
        assert_eq!(
            offline_hint(&cell(true, 2, 1)).as_deref(),
            Some("offline · 2 skipped checks")
        );
    }
}
