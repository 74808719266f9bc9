//! `report.html`: one self-contained page (styles, data and ECharts inline; no request leaves
//! the file) with the summary, a chart of pass rate and one of latency per scenario (built
//! with `charming`), and per scenario a table of its attempts' checks with links to each
//! attempt's artifacts and diff.

use std::fmt::Write as _;
use std::path::PathBuf;

use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::element::{AxisType, ItemStyle, Tooltip, Trigger};
use charming::series::Bar;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use super::report::Report;

/// Where ECharts is looked for: `FACTORY_ECHARTS_JS`, the dashboard's site
/// (`vendor/echarts.min.js`), `public/vendor/`, `node_modules/echarts/dist/`.
fn echarts_source() -> Option<String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("FACTORY_ECHARTS_JS") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(site) = crate::dashboard::site_root(None) {
        candidates.push(site.join("vendor/echarts.min.js"));
    }
    candidates.push(PathBuf::from("public/vendor/echarts.min.js"));
    candidates.push(PathBuf::from("node_modules/echarts/dist/echarts.min.js"));
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;\
padding:0 1rem;color:#0f172a}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #cbd5e1;\
padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f1f5f9}\
.passed{color:#15803d;font-weight:600}.failed{color:#b91c1c;font-weight:600}\
.skipped{color:#64748b}.chart{height:320px;margin:1rem 0}pre{white-space:pre-wrap;margin:0;\
font-size:12px}.note{color:#64748b}";

/// The page.
pub fn render(report: &Report) -> String {
    let names: Vec<String> = report.scenarios.iter().map(|s| s.name.clone()).collect();
    let pass_rate = Chart::new()
        .grid(Grid::new().contain_label(true))
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .x_axis(Axis::new().type_(AxisType::Category).data(names.clone()))
        .y_axis(Axis::new().type_(AxisType::Value).max(100))
        .series(
            Bar::new()
                .name("Pass rate (%)")
                .item_style(ItemStyle::new().color("#6366f1"))
                .data(
                    report
                        .scenarios
                        .iter()
                        .map(|s| (s.pass_rate * 100.0).round())
                        .collect::<Vec<f64>>(),
                ),
        );
    let latency = Chart::new()
        .grid(Grid::new().contain_label(true))
        .legend(Legend::new())
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .x_axis(Axis::new().type_(AxisType::Category).data(names))
        .y_axis(Axis::new().type_(AxisType::Value).name("seconds"))
        .series(Bar::new().name("min").data(secs(report, |s| s.min)))
        .series(Bar::new().name("median").data(secs(report, |s| s.median)))
        .series(Bar::new().name("max").data(secs(report, |s| s.max)));
    let charts = [
        ("pass-rate", "Pass rate per scenario (%)", &pass_rate),
        (
            "latency",
            "Run time per scenario (s): min, median, max",
            &latency,
        ),
    ];

    let mut page = String::with_capacity(64 * 1024);
    let s = &report.summary;
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Factory gym report {id}</title><style>{STYLE}</style></head><body>\
         <h1>Factory gym report</h1>\
         <p id=\"summary\"><span class=\"{verdict}\">{passed} of {total} scenarios passed</span>\
         {critical} · {repeat} attempt(s) each · {secs:.1} s · started {started} · Factory {version}</p>\
         <p class=\"note\">Models: {models}</p>",
        id = text(&report.gym_run_id),
        verdict = if s.critical_failed.is_empty() {
            "passed"
        } else {
            "failed"
        },
        passed = s.passed,
        total = s.scenarios,
        critical = if s.critical_failed.is_empty() {
            String::new()
        } else {
            format!(
                " · <span class=\"failed\">critical failed: {}</span>",
                text(&s.critical_failed.join(", "))
            )
        },
        repeat = report.repeat,
        secs = report.duration_ms as f64 / 1000.0,
        started = text(&report.started_at),
        version = text(&report.factory_version),
        models = text(&report.models),
    );
    page.push_str(
        "<table id=\"scenarios\"><thead><tr><th>Scenario</th><th>Critical</th><th>Result</th>\
         <th>Pass rate</th><th>pass@k</th><th>Run time (median)</th><th>Tokens (median)</th>\
         <th>Cost (median)</th></tr></thead><tbody>",
    );
    for sc in &report.scenarios {
        let _ = write!(
            page,
            "<tr><td><a href=\"#{anchor}\">{name}</a></td><td>{critical}</td>\
             <td class=\"{class}\">{result}</td><td>{rate:.0}%</td><td>{at_k}</td>\
             <td>{run:.2} s</td><td>{tokens:.0}</td><td>${cost:.4}</td></tr>",
            anchor = attr(&sc.name),
            name = text(&sc.name),
            critical = if sc.critical { "yes" } else { "no" },
            class = if sc.passed { "passed" } else { "failed" },
            result = if sc.passed { "passed" } else { "failed" },
            rate = sc.pass_rate * 100.0,
            at_k = if sc.pass_at_k { "yes" } else { "no" },
            run = sc.run_ms.median / 1000.0,
            tokens = sc.tokens.median,
            cost = sc.cost_usd.median,
        );
    }
    page.push_str("</tbody></table>");
    for (id, title, chart) in charts {
        let option = serde_json::to_string(chart).unwrap_or_else(|_| "{}".into());
        let _ = write!(
            page,
            "<h2>{}</h2><div class=\"chart\" id=\"chart-{id}\" data-option=\"{}\"></div>",
            text(title),
            attr(&option)
        );
    }
    for sc in &report.scenarios {
        scenario_section(&mut page, sc);
    }
    match echarts_source() {
        Some(js) => {
            // A `</script>` inside the library would end the element early.
            let _ = write!(
                page,
                "<script>{}</script><script>{DRAW}</script>",
                js.replace("</script", "<\\/script")
            );
        }
        None => page.push_str(
            "<p class=\"note\">ECharts was not found (set FACTORY_ECHARTS_JS to \
             echarts.min.js): the charts are not drawn; their numbers are in the tables \
             above and in report.json.</p>",
        ),
    }
    page.push_str("</body></html>\n");
    page
}

/// Draws every chart host from its inline option.
const DRAW: &str = "document.querySelectorAll('.chart[data-option]').forEach(function(el){\
var c=echarts.init(el,null,{renderer:'svg'});\
c.setOption(Object.assign({animation:false},JSON.parse(el.dataset.option)));\
el.dataset.rendered='true';});";

fn secs(report: &Report, pick: impl Fn(&super::report::Spread) -> f64) -> Vec<f64> {
    report
        .scenarios
        .iter()
        .map(|s| (pick(&s.run_ms) / 10.0).round() / 100.0)
        .collect()
}

fn scenario_section(page: &mut String, sc: &super::report::ScenarioReport) {
    let _ = write!(
        page,
        "<h2 id=\"{anchor}\">{name} <span class=\"{class}\">{result}</span></h2>\
         <p>{description}</p><p class=\"note\">Requirement: {requirement}<br>From {source}</p>",
        anchor = attr(&sc.name),
        name = text(&sc.name),
        class = if sc.passed { "passed" } else { "failed" },
        result = if sc.passed { "passed" } else { "failed" },
        description = text(&sc.description),
        requirement = text(&sc.requirement),
        source = text(&sc.source),
    );
    for a in &sc.attempts {
        let r = &a.record;
        let _ = write!(
            page,
            "<h3>Attempt {n}: <span class=\"{class}\">{result}</span></h3>\
             <p class=\"note\">Run {run_id} {status}{reason} · {run:.2} s (+{overhead} ms gym) · \
             {calls} model call(s){offline} · {input}+{output} tokens · ${cost:.4} · \
             {decisions} decision(s) · catalogue {hash}</p>",
            n = r.attempt,
            class = if r.passed { "passed" } else { "failed" },
            result = if r.passed { "passed" } else { "failed" },
            run_id = text(&r.run_id),
            status = text(&r.run_status),
            reason = r
                .reason
                .as_deref()
                .map(|x| format!(": {}", text(x)))
                .unwrap_or_default(),
            run = r.run_ms as f64 / 1000.0,
            overhead = r.overhead_ms,
            calls = r.model_calls,
            offline = if r.offline {
                " (offline templates, no model)"
            } else {
                ""
            },
            input = r.input_tokens,
            output = r.output_tokens,
            cost = r.cost_usd,
            decisions = r.human_decisions,
            hash = text(&r.catalogue_hash[..r.catalogue_hash.len().min(12)]),
        );
        if let Some(changed) = &a.changed {
            let _ = write!(
                page,
                "<p><strong>What changed since it last passed</strong></p><pre class=\"changed\">{}</pre>",
                text(changed)
            );
        }
        page.push_str(
            "<table class=\"checks\"><thead><tr><th>Check</th><th>Kind</th><th>Result</th>\
             <th>Detail</th></tr></thead><tbody>",
        );
        for c in &r.checks {
            let _ = write!(
                page,
                "<tr><td>{name}</td><td>{kind}</td><td class=\"{status}\">{status}</td>\
                 <td><pre>{detail}</pre></td></tr>",
                name = text(&c.name),
                kind = text(&c.kind),
                status = c.status.as_str(),
                detail = text(&c.detail),
            );
        }
        page.push_str("</tbody></table><p>");
        if let Some(diff) = &a.diff {
            let _ = write!(page, "<a href=\"{}\">diff</a> · ", attr(diff));
        }
        let links: Vec<String> = a
            .artifacts
            .iter()
            .map(|(name, path)| format!("<a href=\"{}\">{}</a>", attr(path), text(name)))
            .collect();
        let _ = write!(
            page,
            "artifacts: {}</p>",
            if links.is_empty() {
                "none".into()
            } else {
                links.join(" · ")
            }
        );
    }
}
