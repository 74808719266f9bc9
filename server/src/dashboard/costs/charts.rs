//! The Costs charts, built with `charming` on the server and sent to the browser as ECharts
//! option JSON (the browser only runs ECharts itself), each with a table of the same numbers:
//! cost per team, cost over time and tokens per model here, budget gauges in [`super::gauge`].

use app::ledger::CostLine;
use app::server_fns::costs::{ChartSpec, ChartTable, format_usd};
use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::element::{AxisLabel, AxisType, Formatter, ItemStyle, Tooltip, Trigger};
use charming::series::{Bar, Line};

use crate::store::model_calls::CostPoint;

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

fn running_totals(calls: &[CostPoint]) -> Vec<f64> {
    calls
        .iter()
        .scan(0.0, |total, c| {
            *total += c.cost_usd.max(0.0);
            Some(*total)
        })
        .collect()
}

/// What the charts share (the Gym page's too): a grid that keeps the axis labels inside the
/// host.
pub(in crate::dashboard) fn base() -> Chart {
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

/// Dollars to four decimals: enough for a chart, without float noise.
pub(super) fn dollars(usd: f64) -> f64 {
    (usd * 10_000.0).round() / 10_000.0
}

/// A chart with its table, the chart serialised for ECharts.
pub(in crate::dashboard) fn spec(
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
            cached_tokens: 0,
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
}
