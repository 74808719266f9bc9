//! Costs: what model calls cost, per team, over time, per model, and where every budget
//! stands — for every run or one (`/costs?run=<id>`), plus the compact panel the run page
//! embeds. Chart options are built on the server; ECharts draws them in the browser
//! (`/charts.js`), and every chart has a plain table of the same numbers beneath it. The page
//! refreshes when a priced call finishes or a budget changes.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::chart::ChartGrid;
use super::{ErrorBox, Frame};
use crate::dto::safe_run_id;
use crate::ledger::CostLine;
use crate::live::LiveScope;
use crate::server_fns::costs::{CostDashboard, cost_dashboard, format_usd};
use crate::server_fns::error_text;

/// The events that change what the Costs views show.
const CHANGES: &[&str] = &[
    "model_call_finished",
    "budget_reached",
    "budget_raised",
    "settings_changed",
];

/// The Costs page: a run selector, totals, and every chart with its table.
#[component]
pub fn CostsPage() -> impl IntoView {
    let query = use_query_map();
    let run = query.with_untracked(|q| {
        q.get("run")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
    });
    let dashboard = Resource::new(move || run.clone(), cost_dashboard);
    view! {
        <Frame live=LiveScope::kinds(CHANGES)>
            <div data-testid="costs">
                <h1 class="text-2xl font-semibold">"Costs"</h1>
                <p class="mt-1 text-sm text-slate-600">"What model calls cost, against the budgets in factory.toml. Updates live."</p>
                <Suspense fallback=|| view! { <Loading what="costs" /> }>
                    {move || Suspend::new(async move {
                        match dashboard.await {
                            Ok(d) => view! { <Dashboard dashboard=d /> }.into_any(),
                            Err(e) => view! {
                                <ErrorBox message=error_text(&e) />
                                <p class="mt-2 text-sm">
                                    <a class=LINK href="/costs">"Show the costs of all runs"</a>
                                </p>
                            }
                            .into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </Frame>
    }
}

/// A run's costs in brief (totals, cost per team, its budget gauge), for the run page.
#[component]
pub fn CostPanel(run_id: String) -> impl IntoView {
    let run = run_id.clone();
    let dashboard = Resource::new(move || Some(run.clone()), cost_dashboard);
    let href = format!("/costs?run={}", safe_run_id(&run_id));
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" data-testid="cost-panel" aria-labelledby="cost-panel-title">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 id="cost-panel-title" class="text-lg font-semibold">"Costs"</h2>
                <a class=LINK href=href>"All cost charts for this run"</a>
            </div>
            <Suspense fallback=|| view! { <Loading what="costs" /> }>
                {move || Suspend::new(async move {
                    match dashboard.await {
                        Ok(d) => {
                            let empty = is_empty(&d);
                            let charts: Vec<_> = d
                                .charts
                                .into_iter()
                                .filter(|c| c.id == "team-cost" || c.id.starts_with("budget-"))
                                .collect();
                            view! {
                                <Totals total=d.report.total.clone() />
                                {if empty {
                                    view! { <EmptyState /> }.into_any()
                                } else {
                                    view! { <ChartGrid charts=charts compact=true /> }.into_any()
                                }}
                            }
                            .into_any()
                        }
                        Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The loaded page: selector, totals, then the charts (or what to do when there are none).
#[component]
fn Dashboard(dashboard: CostDashboard) -> impl IntoView {
    let empty = is_empty(&dashboard);
    let CostDashboard {
        scope_label,
        run,
        report,
        charts,
        runs,
    } = dashboard;
    let free = report
        .total
        .as_ref()
        .is_some_and(|t| t.calls > 0 && t.cost_usd <= 0.0);
    view! {
        <RunSelector runs=runs current=run />
        <p class="mt-4 text-sm text-slate-600" data-testid="cost-scope">{scope_label}</p>
        <Totals total=report.total.clone() />
        {report.emergency_stop.then(|| view! {
            <ErrorBox message="Emergency stop: a budget reached its emergency limit, so every paid model call is refused until the limit is raised in factory.toml and Factory restarted." />
        })}
        {free.then(|| view! {
            <p class="mt-4 rounded border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900">
                "Every call so far was free: the offline provider costs $0. Configure a priced model in factory.toml to see spending."
            </p>
        })}
        {if empty {
            view! { <EmptyState /> }.into_any()
        } else {
            view! { <ChartGrid charts=charts compact=false /> }.into_any()
        }}
    }
}

/// "All runs" or one of the recent runs. A plain GET form, so it works without scripts; with
/// them, choosing a run shows it at once without a reload.
#[component]
fn RunSelector(runs: Vec<(String, String)>, current: Option<String>) -> impl IntoView {
    let known = current
        .as_ref()
        .is_none_or(|id| runs.iter().any(|(r, _)| r == id));
    let options = runs
        .into_iter()
        .map(|(id, goal)| {
            let selected = current.as_deref() == Some(id.as_str());
            let label = format!("{} — {}", short(&id), truncate(&goal, 60));
            view! { <option value=id selected=selected>{label}</option> }
        })
        .collect_view();
    // A run older than the recent ones still shows as selected.
    let extra = (!known).then(|| {
        let id = current.clone().unwrap_or_default();
        view! { <option value=id.clone() selected=true>{format!("run {}", short(&id))}</option> }
    });
    view! {
        <form method="get" action="/costs" data-soft>
            <div class="mt-3 flex flex-wrap items-end gap-2">
                <label class="text-sm">
                    <span class="block text-slate-600">"Show costs for"</span>
                    <select
                        name="run"
                        data-testid="run-select"
                        data-autosubmit
                        class="mt-1 block w-72 max-w-full rounded border border-slate-300 bg-white px-2 py-1.5 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                    >
                        <option value="" selected=current.is_none()>"All runs"</option>
                        {options}
                        {extra}
                    </select>
                </label>
                <button
                    type="submit"
                    data-testid="run-show"
                    class="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2"
                >
                    "Show"
                </button>
            </div>
        </form>
    }
}

/// Calls, tokens and dollars of the view.
#[component]
fn Totals(total: Option<CostLine>) -> impl IntoView {
    let total = total.unwrap_or(CostLine {
        key: "total".into(),
        calls: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        cached_tokens: 0,
    });
    let tokens = total.input_tokens + total.output_tokens;
    let detail = format!(
        "{} in ({} from prompt caches), {} out",
        total.input_tokens, total.cached_tokens, total.output_tokens
    );
    view! {
        <dl class="mt-4 grid grid-cols-1 gap-3 sm:grid-cols-3" data-testid="cost-totals">
            <Stat label="Model calls" value=total.calls.to_string() detail=String::new() />
            <Stat label="Tokens" value=tokens.to_string() detail=detail />
            <Stat label="Cost" value=format_usd(total.cost_usd) detail="USD".to_string() />
        </dl>
    }
}

#[component]
fn Stat(label: &'static str, value: String, detail: String) -> impl IntoView {
    view! {
        <div class="rounded-lg border border-slate-200 bg-white px-4 py-3">
            <dt class="text-xs uppercase tracking-wide text-slate-500">{label}</dt>
            <dd class="mt-1 text-xl font-semibold tabular-nums" data-stat=label>{value}</dd>
            <dd class="text-xs text-slate-500">{detail}</dd>
        </div>
    }
}

#[component]
fn EmptyState() -> impl IntoView {
    view! {
        <div class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="no-costs">
            <h2 class="text-lg font-medium">"No model calls yet"</h2>
            <p class="mt-2 text-sm text-slate-600">
                "Charts appear here once a run calls a model. The offline provider costs $0; configure a priced model in factory.toml to see spending against the budgets."
            </p>
        </div>
    }
}

#[component]
fn Loading(what: &'static str) -> impl IntoView {
    view! { <p class="mt-4 text-slate-500" aria-live="polite">{format!("Loading {what}…")}</p> }
}

fn is_empty(d: &CostDashboard) -> bool {
    d.report.total.as_ref().is_none_or(|t| t.calls == 0)
}

const LINK: &str = "rounded text-indigo-700 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";

/// The first eight characters of an id, as the dashboard shows ids.
fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn labels_are_short_and_links_safe() {
        assert_eq!(short("0190abcdef12"), "0190abcd");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(safe_run_id("0190-ab\"&x"), "0190-abx");
    }
}
