//! One chart of the Costs views: a host element ECharts draws into after hydration (through
//! `window.factoryCharts` from `/charts.js`), and beneath it a table of the same numbers.

use leptos::prelude::*;

use crate::api::costs::ChartSpec;

/// The charts in a responsive grid. Keyed by id and option, so a refresh that changes nothing
/// keeps every drawn chart, and a changed chart gets a fresh host (whose `data-rendered` then
/// means this option was drawn).
#[component]
pub(super) fn ChartGrid(charts: Vec<ChartSpec>, compact: bool) -> impl IntoView {
    let class = if compact {
        "mt-4 grid gap-4 md:grid-cols-2"
    } else {
        "mt-6 grid gap-6 lg:grid-cols-2"
    };
    view! {
        <div class=class>
            <For
                each=move || charts.clone()
                key=|c| (c.id.clone(), c.option_json.clone())
                children=move |chart| view! { <ChartCard chart=chart compact=compact /> }
            />
        </div>
    }
}

/// A titled chart with its table. `compact` (the run page's panel) folds the table away.
#[component]
fn ChartCard(chart: ChartSpec, compact: bool) -> impl IntoView {
    let ChartSpec {
        id,
        title,
        option_json,
        table,
    } = chart;
    let gauge = id.starts_with("budget-");
    let height = if gauge || compact { "h-56" } else { "h-72" };
    #[cfg(feature = "hydrate")]
    {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        // Retries stop once the card is gone (a refresh replaced it).
        let alive = Arc::new(AtomicBool::new(true));
        let gone = alive.clone();
        on_cleanup(move || gone.store(false, Ordering::Relaxed));
        let (id, json) = (id.clone(), option_json.clone());
        Effect::new(move |_| browser::draw(id.clone(), json.clone(), alive.clone(), 0));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = option_json;
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

/// The bridge to `/charts.js`, found at run time so a missing or late script is a retry, not
/// a crash.
#[cfg(feature = "hydrate")]
mod browser {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use leptos::prelude::set_timeout;
    use wasm_bindgen::{JsCast, JsValue};

    /// Attempts before giving up on a script that never loaded (about six seconds).
    const ATTEMPTS: u32 = 40;
    const PAUSE: Duration = Duration::from_millis(150);

    /// Draws the chart now, or again shortly while the scripts are still loading.
    pub(super) fn draw(id: String, option_json: String, alive: Arc<AtomicBool>, attempt: u32) {
        if !alive.load(Ordering::Relaxed) || render(&id, &option_json) {
            return;
        }
        if attempt + 1 >= ATTEMPTS {
            leptos::logging::warn!("chart {id} not drawn: /charts.js or ECharts did not load");
            return;
        }
        set_timeout(move || draw(id, option_json, alive, attempt + 1), PAUSE);
    }

    /// `window.factoryCharts.render(id, optionJson)`; false when it is not there yet or
    /// could not draw.
    fn render(id: &str, option_json: &str) -> bool {
        let Some(window) = web_sys::window() else {
            return false;
        };
        let Ok(charts) = js_sys::Reflect::get(&window, &JsValue::from_str("factoryCharts")) else {
            return false;
        };
        if charts.is_undefined() || charts.is_null() {
            return false;
        }
        let Ok(render) = js_sys::Reflect::get(&charts, &JsValue::from_str("render")) else {
            return false;
        };
        let Some(render) = render.dyn_ref::<js_sys::Function>() else {
            return false;
        };
        render
            .call2(
                &charts,
                &JsValue::from_str(id),
                &JsValue::from_str(option_json),
            )
            .map(|drawn| drawn.is_truthy())
            .unwrap_or(false)
    }
}
