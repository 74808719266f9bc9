//! The Gym page's chart, built with `charming` on the server like the Costs charts: the share
//! of attempts that passed in each gym run, one line per set of models, with its table.

use app::server_fns::costs::ChartSpec;
use app::server_fns::gym::{format_rate, short_gym_run};
use charming::component::{Axis, Legend};
use charming::element::{AxisLabel, AxisType, Formatter, ItemStyle, Tooltip, Trigger};
use charming::series::Line;

use super::matrix::GymRun;
use crate::dashboard::costs::charts::{base, spec};

/// Series colours, in turn (Tailwind's indigo, sky, emerald, amber, rose, slate).
const COLOURS: &[&str] = &[
    "#6366f1", "#38bdf8", "#10b981", "#f59e0b", "#f43f5e", "#64748b",
];

/// Pass rate per gym run over time (oldest first), a line per models label (`runs` newest
/// first, as [`super::matrix::gym_runs`] gives them). A run ran under one set of models, so
/// each line has a point only at its own runs and is drawn across the others.
pub(super) fn pass_rate(runs: &[GymRun<'_>]) -> ChartSpec {
    let runs: Vec<&GymRun<'_>> = runs.iter().rev().collect();
    let mut lines: Vec<String> = Vec::new();
    for run in &runs {
        let models = short_models(run.models);
        if !lines.contains(&models) {
            lines.push(models);
        }
    }
    // To the second, so runs in the same minute stay apart.
    let times: Vec<String> = runs
        .iter()
        .map(|r| {
            let day = r.at.get(..10).unwrap_or(r.at);
            format!("{day} {}", app::time::format_clock(r.at))
        })
        .collect();
    let mut chart = base()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().top("bottom"))
        // Labels that would overlap are left out (the table has every run).
        .x_axis(Axis::new().type_(AxisType::Category).data(times.clone()))
        .y_axis(
            Axis::new()
                .type_(AxisType::Value)
                .min(0)
                .max(100)
                .axis_label(AxisLabel::new().formatter(Formatter::String("{value}%".into()))),
        );
    for (i, models) in lines.iter().enumerate() {
        let points: Vec<Option<f64>> = runs
            .iter()
            .map(|run| (short_models(run.models) == *models).then(|| percent(run)))
            .collect();
        chart = chart.series(
            Line::new()
                .name(models.as_str())
                .connect_nulls(true)
                .show_symbol(true)
                .symbol_size(8)
                .item_style(ItemStyle::new().color(COLOURS[i % COLOURS.len()]))
                .data(points),
        );
    }
    let rows = runs
        .iter()
        .zip(times)
        .map(|(run, at)| {
            vec![
                at,
                short_gym_run(run.id),
                short_models(run.models),
                format!("{}/{}", run.passed(), run.attempts()),
                format_rate(run.passed(), run.attempts()),
            ]
        })
        .collect();
    spec(
        "gym-pass-rate",
        "Pass rate per gym run, by models",
        &chart,
        &["Gym run", "Id", "Models", "Passed", "Pass rate"],
        rows,
    )
}

/// Share of the run's attempts that passed, in percent to one decimal.
fn percent(run: &GymRun<'_>) -> f64 {
    let attempts = run.attempts().max(1);
    (f64::from(run.passed()) * 1000.0 / f64::from(attempts)).round() / 10.0
}

/// A records' models (`alias=chain; …`) as a legend shows them: `every alias: chain` when all
/// aliases share one chain (as `--model '*=…'` makes them), else as recorded.
pub(super) fn short_models(models: &str) -> String {
    let chains: Vec<&str> = models
        .split(';')
        .filter_map(|part| part.split_once('=').map(|(_, chain)| chain.trim()))
        .collect();
    match chains.split_first() {
        Some((first, rest)) if rest.iter().all(|c| c == first) => {
            format!("every alias: {first}")
        }
        _ => models.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::matrix::{gym_runs, tests::entry};
    use super::*;

    #[test]
    fn one_line_per_models_with_a_point_at_each_of_its_runs() {
        let mut entries = vec![
            entry(4, "g3", "fix", true),
            entry(3, "g2", "fix", false),
            entry(2, "g2", "docs", true),
            entry(1, "g1", "fix", true),
        ];
        entries[0].record.models = "factory/coder=lab:m; factory/planner=lab:m".into();
        let spec = pass_rate(&gym_runs(&entries, 200));
        let v: serde_json::Value = serde_json::from_str(&spec.option_json).unwrap();
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 2, "{v}");
        assert_eq!(series[0]["name"], "every alias: offline:template");
        assert_eq!(series[0]["data"], serde_json::json!([100.0, 50.0, null]));
        assert_eq!(series[1]["name"], "every alias: lab:m");
        assert_eq!(series[1]["data"], serde_json::json!([null, null, 100.0]));
        assert_eq!(v["xAxis"]["data"][0], "2026-11-22 05:01:00");
        assert_eq!(v["yAxis"]["max"], 100);
        assert_eq!(
            spec.table.rows[1],
            [
                "2026-11-22 05:02:00",
                "g2",
                "every alias: offline:template",
                "1/2",
                "50%"
            ]
        );
    }

    #[test]
    fn models_differing_per_alias_are_kept_as_recorded() {
        let mixed = "factory/coder=a:x; factory/planner=b:y";
        assert_eq!(short_models(mixed), mixed);
        assert_eq!(short_models("factory/coder=a:x"), "every alias: a:x");
        assert_eq!(short_models(""), "");
    }
}
