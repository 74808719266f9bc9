//! The Costs charts, built with `charming` on the server and sent to the browser as ECharts
//! option JSON (the browser only runs ECharts itself), each with a table of the same numbers.

use app::api::costs::{ChartSpec, ChartTable, format_usd};
use app::ledger::{BudgetScope, BudgetStatus, CostLine};
use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::element::{
    Anchor, AxisLabel, AxisLine, AxisLineStyle, AxisTick, AxisType, Formatter, Icon, ItemStyle,
    Pointer, SplitLine, Tooltip, Trigger,
};
use charming::series::{Bar, Gauge, GaugeDetail, GaugeTitle, Line};

use crate::gateway::ledger::CostPoint;

/// Below the soft limit.
const GREEN: &str = "#10b981";
/// Between the soft and the hard limit.
const AMBER: &str = "#f59e0b";
/// Past the hard limit.
const RED: &str = "#ef4444";
const INDIGO: &str = "#6366f1";
const SKY: &str = "#38bdf8";

/// Cost per team (bar).
pub(super) fn team_cost(teams: &[CostLine]) -> ChartSpec {
    let names: Vec<String> = teams.iter().map(|t| t.key.clone()).collect();
    let costs: Vec<f64> = teams.iter().map(|t| dollars(t.cost_usd)).collect();
    let chart = base()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .x_axis(category(names))
        .y_axis(usd_axis())
        .series(
            Bar::new()
                .name("Cost (USD)")
                .item_style(ItemStyle::new().color(INDIGO))
                .data(costs),
        );
    let rows = teams
        .iter()
        .map(|t| vec![t.key.clone(), t.calls.to_string(), format_usd(t.cost_usd)])
        .collect();
    spec(
        "team-cost",
        "Cost per team",
        &chart,
        &["Team", "Calls", "Cost"],
        rows,
    )
}

/// Every run's spending per UTC day (line).
pub(super) fn cost_per_day(days: &[CostPoint]) -> ChartSpec {
    let labels: Vec<String> = days.iter().map(|d| d.at.clone()).collect();
    let costs: Vec<f64> = days.iter().map(|d| dollars(d.cost_usd)).collect();
    let chart = base()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .x_axis(category(labels))
        .y_axis(usd_axis())
        .series(
            Line::new()
                .name("Cost (USD)")
                .show_symbol(true)
                .symbol_size(8)
                .item_style(ItemStyle::new().color(INDIGO))
                .data(costs),
        );
    let rows = days
        .iter()
        .map(|d| vec![d.at.clone(), format_usd(d.cost_usd)])
        .collect();
    spec(
        "cost-over-time",
        "Cost per day (UTC)",
        &chart,
        &["Day", "Cost"],
        rows,
    )
}

/// One run's running total after each finished call, in the order they finished (line).
pub(super) fn cumulative_cost(calls: &[CostPoint]) -> ChartSpec {
    let totals = running_totals(calls);
    // Calls often finish within the same second: number them (the table has the times).
    let labels: Vec<String> = (1..=calls.len()).map(|n| format!("#{n}")).collect();
    let chart = base()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .x_axis(category(labels))
        .y_axis(usd_axis())
        .series(
            Line::new()
                .name("Running total (USD)")
                .item_style(ItemStyle::new().color(INDIGO))
                .data(totals.iter().map(|t| dollars(*t)).collect::<Vec<f64>>()),
        );
    let rows = calls
        .iter()
        .zip(&totals)
        .map(|(c, total)| vec![c.at.clone(), format_usd(c.cost_usd), format_usd(*total)])
        .collect();
    spec(
        "cost-over-time",
        "Cost over the run (running total)",
        &chart,
        &["Finished", "Call", "Running total"],
        rows,
    )
}

/// Input and output tokens per model, stacked (bar).
pub(super) fn model_tokens(models: &[CostLine]) -> ChartSpec {
    let names: Vec<String> = models.iter().map(|m| m.key.clone()).collect();
    let input: Vec<i64> = models.iter().map(|m| m.input_tokens).collect();
    let output: Vec<i64> = models.iter().map(|m| m.output_tokens).collect();
    let chart = base()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().top("bottom"))
        .x_axis(category(names))
        .y_axis(Axis::new().type_(AxisType::Value))
        .series(
            Bar::new()
                .name("Input tokens")
                .stack("tokens")
                .item_style(ItemStyle::new().color(INDIGO))
                .data(input),
        )
        .series(
            Bar::new()
                .name("Output tokens")
                .stack("tokens")
                .item_style(ItemStyle::new().color(SKY))
                .data(output),
        );
    let rows = models
        .iter()
        .map(|m| {
            vec![
                m.key.clone(),
                m.calls.to_string(),
                m.input_tokens.to_string(),
                m.output_tokens.to_string(),
                format_usd(m.cost_usd),
            ]
        })
        .collect();
    spec(
        "model-tokens",
        "Tokens per model",
        &chart,
        &["Model", "Calls", "Input tokens", "Output tokens", "Cost"],
        rows,
    )
}

/// A gauge of what a scope spent against its limits: green below soft, amber to hard, red
/// beyond; its scale ends at the emergency (else hard) limit. `None` for a scope without
/// limits, which has nothing to measure against.
pub(super) fn budget_gauge(status: &BudgetStatus) -> Option<ChartSpec> {
    let max = status
        .emergency_usd
        .or(status.hard_usd)
        .or(status.soft_usd.map(|s| s * 2.0))
        .filter(|m| *m > 0.0)?;
    let mut style = AxisLineStyle::new().width(14);
    for (at, colour) in colour_stops(status, max) {
        style = style.color((at, colour));
    }
    let spent = status.spent_usd;
    let chart = Chart::new().series(
        Gauge::new()
            .name(status.scope.to_string())
            .radius("95%")
            .center(("50%", "58%"))
            .min(0)
            .max(dollars(max))
            .split_number(4)
            .axis_line(AxisLine::new().line_style(style))
            .axis_tick(AxisTick::new().show(false))
            .split_line(SplitLine::new().length(10).distance(-14))
            .axis_label(
                AxisLabel::new()
                    .distance(20)
                    .font_size(11)
                    .formatter(Formatter::String("${value}".into())),
            )
            // "auto": the pointer takes the colour of the band it points into.
            .pointer(
                Pointer::new()
                    .icon(Icon::RoundRect)
                    .width(6)
                    .length("62%")
                    .item_style(ItemStyle::new().color("auto")),
            )
            .anchor(
                Anchor::new()
                    .show(true)
                    .show_above(true)
                    .size(14)
                    .item_style(ItemStyle::new().color("#475569")),
            )
            .title(GaugeTitle::new().offset_center(("0%", "78%")))
            .detail(
                GaugeDetail::new()
                    .formatter(Formatter::String("${value}".into()))
                    .color(level_colour(status))
                    .font_size(18),
            )
            .data(vec![(dollars(spent), "spent")]),
    );
    let limit = |v: Option<f64>| v.map_or_else(|| "—".to_string(), format_usd);
    let rows = vec![vec![
        format_usd(spent),
        format_usd(status.reserved_usd),
        limit(status.soft_usd),
        limit(status.hard_usd),
        limit(status.emergency_usd),
    ]];
    Some(spec(
        &gauge_id(&status.scope),
        &gauge_title(&status.scope),
        &chart,
        &[
            "Spent",
            "Held by calls in flight",
            "Soft",
            "Hard",
            "Emergency",
        ],
        rows,
    ))
}

/// The gauge's axis colours as `(fraction of the scale, colour)`: each colour runs up to its
/// fraction. Limits past the end of the scale are clamped; empty bands are dropped.
fn colour_stops(status: &BudgetStatus, max: f64) -> Vec<(f64, &'static str)> {
    let mut stops: Vec<(f64, &'static str)> = Vec::new();
    let mut colour = GREEN;
    for (limit, next) in [(status.soft_usd, AMBER), (status.hard_usd, RED)] {
        if let Some(limit) = limit {
            let at = (limit / max).clamp(0.0, 1.0);
            if stops.last().is_none_or(|(prev, _)| at > *prev) {
                stops.push((round(at), colour));
            }
            colour = next;
        }
    }
    if stops.last().is_none_or(|(prev, _)| *prev < 1.0) {
        stops.push((1.0, colour));
    }
    stops
}

/// The colour of the scope's band that its spending is in.
fn level_colour(status: &BudgetStatus) -> &'static str {
    let spent = status.spent_usd;
    if status.hard_usd.is_some_and(|h| spent >= h) {
        RED
    } else if status.soft_usd.is_some_and(|s| spent >= s) {
        AMBER
    } else {
        GREEN
    }
}

fn running_totals(calls: &[CostPoint]) -> Vec<f64> {
    calls
        .iter()
        .scan(0.0, |total, c| {
            *total += c.cost_usd.max(0.0);
            Some(*total)
        })
        .collect()
}

fn gauge_title(scope: &BudgetScope) -> String {
    match scope {
        // The page already names the run.
        BudgetScope::Run { .. } => "Budget of this run".to_string(),
        other => format!("Budget: {other}"),
    }
}

/// A stable, attribute-safe chart id for a budget scope.
fn gauge_id(scope: &BudgetScope) -> String {
    let slug = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    match scope {
        BudgetScope::Month { .. } => "budget-month".into(),
        BudgetScope::Run { .. } => "budget-run".into(),
        BudgetScope::Team { team, .. } => format!("budget-team-{}", slug(team)),
        BudgetScope::Project { project, .. } => format!("budget-project-{}", slug(project)),
    }
}

/// What the charts share: a grid that keeps the axis labels inside the host.
fn base() -> Chart {
    Chart::new().grid(
        Grid::new()
            .left("6%")
            .right("4%")
            .top("8%")
            .bottom("12%")
            .contain_label(true),
    )
}

/// A category axis whose every label shows, slanted once there are too many to fit flat.
fn category(labels: Vec<String>) -> Axis {
    let mut label = AxisLabel::new().interval(0);
    if labels.len() > 3 {
        label = label.rotate(30);
    }
    Axis::new()
        .type_(AxisType::Category)
        .axis_label(label)
        .data(labels)
}

fn usd_axis() -> Axis {
    Axis::new()
        .type_(AxisType::Value)
        .axis_label(AxisLabel::new().formatter(Formatter::String("${value}".into())))
}

/// Dollars to a tenth of a cent's hundredth: enough for the chart, without float noise.
fn dollars(usd: f64) -> f64 {
    (usd * 10_000.0).round() / 10_000.0
}

fn round(fraction: f64) -> f64 {
    (fraction * 10_000.0).round() / 10_000.0
}

fn spec(
    id: &str,
    title: &str,
    chart: &Chart,
    columns: &[&str],
    rows: Vec<Vec<String>>,
) -> ChartSpec {
    ChartSpec {
        id: id.to_string(),
        title: title.to_string(),
        // A chart is plain data; serialising it cannot fail.
        option_json: serde_json::to_string(chart).unwrap_or_else(|_| "{}".into()),
        table: ChartTable {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(spec: &ChartSpec) -> Value {
        serde_json::from_str(&spec.option_json).unwrap()
    }

    fn line(key: &str, calls: i64, input: i64, output: i64, cost: f64) -> CostLine {
        CostLine {
            key: key.into(),
            calls,
            input_tokens: input,
            output_tokens: output,
            cost_usd: cost,
        }
    }

    fn month(spent: f64) -> BudgetStatus {
        BudgetStatus {
            scope: BudgetScope::Month {
                month: "2026-11".into(),
            },
            spent_usd: spent,
            reserved_usd: 0.0,
            soft_usd: Some(20.0),
            hard_usd: Some(50.0),
            emergency_usd: Some(100.0),
        }
    }

    #[test]
    fn the_team_bar_names_each_team_with_its_cost() {
        let spec = team_cost(&[
            line("qa-engineering", 3, 10, 5, 1.25),
            line("documentation", 1, 1, 1, 0.0042),
        ]);
        let v = json(&spec);
        assert_eq!(
            v["xAxis"]["data"],
            serde_json::json!(["qa-engineering", "documentation"]),
            "{v}"
        );
        assert_eq!(v["series"][0]["type"], "bar");
        assert_eq!(v["series"][0]["data"], serde_json::json!([1.25, 0.0042]));
        assert_eq!(spec.table.rows[0], ["qa-engineering", "3", "$1.25"]);
        assert_eq!(spec.table.rows[1][2], "$0.0042");
    }

    #[test]
    fn the_model_bar_stacks_input_on_output() {
        let v = json(&model_tokens(&[line("p0:gpt-test", 2, 3_000, 300, 0.0084)]));
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 2, "{v}");
        assert!(
            series
                .iter()
                .all(|s| s["stack"] == "tokens" && s["type"] == "bar")
        );
        assert_eq!(series[0]["data"], serde_json::json!([3000]));
        assert_eq!(series[1]["data"], serde_json::json!([300]));
    }

    #[test]
    fn the_gauge_changes_colour_at_the_soft_and_hard_limits() {
        let spec = budget_gauge(&month(30.0)).unwrap();
        assert_eq!(spec.id, "budget-month");
        let v = json(&spec);
        let gauge = &v["series"][0];
        assert_eq!(gauge["type"], "gauge", "{v}");
        assert_eq!(gauge["max"], 100.0, "the scale ends at the emergency limit");
        assert_eq!(
            gauge["axisLine"]["lineStyle"]["color"],
            serde_json::json!([[0.2, GREEN], [0.5, AMBER], [1.0, RED]])
        );
        assert_eq!(gauge["data"][0]["value"], 30.0);
        assert_eq!(
            gauge["detail"]["color"], AMBER,
            "30 is past soft, short of hard"
        );
        assert_eq!(
            spec.table.rows[0][..4],
            ["$30.00", "$0.00", "$20.00", "$50.00"]
        );
    }

    #[test]
    fn a_hard_only_budget_ends_at_its_hard_limit() {
        let run = BudgetStatus {
            scope: BudgetScope::Run { run_id: "r".into() },
            spent_usd: 3.5,
            reserved_usd: 0.0,
            soft_usd: None,
            hard_usd: Some(3.0),
            emergency_usd: None,
        };
        let v = json(&budget_gauge(&run).unwrap());
        assert_eq!(v["series"][0]["max"], 3.0);
        assert_eq!(
            v["series"][0]["axisLine"]["lineStyle"]["color"],
            serde_json::json!([[1.0, GREEN]])
        );
        assert_eq!(
            v["series"][0]["detail"]["color"], RED,
            "spent past the hard limit"
        );
        let unlimited = BudgetStatus {
            hard_usd: None,
            ..run
        };
        assert!(budget_gauge(&unlimited).is_none());
    }

    #[test]
    fn a_runs_line_is_its_running_total() {
        let calls: Vec<CostPoint> = [0.5, 0.0, 1.25, 0.25]
            .iter()
            .enumerate()
            .map(|(i, c)| CostPoint {
                at: format!("2026-11-22T05:00:0{i}.000Z"),
                cost_usd: *c,
            })
            .collect();
        let spec = cumulative_cost(&calls);
        let v = json(&spec);
        let data: Vec<f64> = v["series"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap())
            .collect();
        assert_eq!(data, [0.5, 0.5, 1.75, 2.0]);
        assert!(data.windows(2).all(|w| w[0] <= w[1]), "never goes down");
        assert_eq!(v["xAxis"]["data"][0], "#1");
        assert_eq!(
            spec.table.rows[3],
            ["2026-11-22T05:00:03.000Z", "$0.25", "$2.00"]
        );
    }

    #[test]
    fn gauge_ids_are_safe_attributes() {
        let team = BudgetScope::Team {
            team: "QA Eng\"x".into(),
            month: "2026-11".into(),
        };
        assert_eq!(gauge_id(&team), "budget-team-qa-eng-x");
    }
}
