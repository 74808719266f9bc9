//! One chart of the Costs and Gym pages: a host element carrying the chart's ECharts option,
//! which `/charts.js` draws (on load, and again after a live refresh changed it), and beneath
//! it a table of the same numbers.

use leptos::prelude::*;

use crate::server_fns::costs::ChartSpec;

/// The charts in a responsive grid. A refresh that leaves a chart's option as it was keeps the
/// drawn chart (see `/live.js`); a changed option is drawn again.
#[component]
pub(super) fn ChartGrid(charts: Vec<ChartSpec>, compact: bool) -> impl IntoView {
    let class = if compact {
        "mt-4 grid gap-4 md:grid-cols-2"
    } else {
        "mt-6 grid gap-6 lg:grid-cols-2"
    };
    view! {
        <div class=class>
            {charts.into_iter().map(|chart| view! { <ChartCard chart=chart compact=compact /> }).collect_view()}
        </div>
    }
}

/// A titled chart with its table. `compact` (the run page's panel) folds the table away.
#[component]
pub(super) fn ChartCard(chart: ChartSpec, compact: bool) -> impl IntoView {
    let ChartSpec {
        id,
        title,
        option_json,
        table,
    } = chart;
    let gauge = id.starts_with("budget-");
    let height = if gauge || compact { "h-56" } else { "h-72" };
    let heading_id = format!("chart-{id}-title");
    let table = view! {
        <div class="mt-3 overflow-x-auto">
            <table class="min-w-full text-left text-xs" data-chart-table=id.clone()>
                <caption class="sr-only">{title.clone()}</caption>
                <thead class="bg-slate-50 uppercase tracking-wide text-slate-500">
                    <tr>
                        {table.columns.into_iter().map(|c| view! { <th scope="col" class="px-2 py-1">{c}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {table.rows.into_iter().map(|row| view! {
                        <tr class="border-t border-slate-100">
                            {row.into_iter().map(|cell| view! { <td class="px-2 py-1 tabular-nums">{cell}</td> }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    };
    let labelled_by = heading_id.clone();
    view! {
        <section class="min-w-0 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby=labelled_by>
            <h2 id=heading_id class="text-base font-medium">{title.clone()}</h2>
            <div
                data-chart=id
                data-option=option_json
                role="img"
                aria-label=format!("{title} (the table below has the numbers)")
                class=format!("mt-2 w-full {height}")
            ></div>
            {if compact {
                view! {
                    <details class="mt-2 text-sm">
                        <summary class="cursor-pointer rounded text-slate-600 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500">
                            "Numbers"
                        </summary>
                        {table}
                    </details>
                }
                .into_any()
            } else {
                table.into_any()
            }}
        </section>
    }
}
