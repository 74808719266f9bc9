//! Budget gauges: what a scope spent against its soft, hard and emergency limits, as an ECharts
//! gauge whose axis is green below soft, amber up to hard and red beyond.

use app::ledger::{BudgetScope, BudgetStatus};
use app::server_fns::costs::{ChartSpec, format_usd};
use charming::Chart;
use charming::element::{
    Anchor, AxisLabel, AxisLine, AxisLineStyle, AxisTick, Formatter, Icon, ItemStyle, Pointer,
    SplitLine,
};
use charming::series::{Gauge, GaugeDetail, GaugeTitle};

use super::charts::{dollars, spec};

/// Below the soft limit.
const GREEN: &str = "#10b981";
/// Between the soft and the hard limit.
const AMBER: &str = "#f59e0b";
/// Past the hard limit.
const RED: &str = "#ef4444";

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

/// A fraction of the scale to four decimals.
fn round(fraction: f64) -> f64 {
    (fraction * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(spec: &ChartSpec) -> Value {
        serde_json::from_str(&spec.option_json).unwrap()
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
    fn gauge_ids_are_safe_attributes() {
        let team = BudgetScope::Team {
            team: "QA Eng\"x".into(),
            month: "2026-11".into(),
        };
        assert_eq!(gauge_id(&team), "budget-team-qa-eng-x");
    }
}
