//! The activity feed: the run's events newest first, filterable by team and kind. The view
//! keeps at most [`FEED_CAP`](crate::run_view::FEED_CAP) items and the live link hands events
//! over once per animation frame, so a burst of events re-renders the list once a frame.

use leptos::prelude::*;

use crate::run_view::RunView;
use crate::time::format_clock;

#[component]
pub fn ActivityFeed(view: RwSignal<RunView>) -> impl IntoView {
    let team = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let filters = Memo::new(move |_| view.with(|v| v.feed_filters()));
    let items = move || {
        let (team, kind) = (team.get(), kind.get());
        view.with(|v| {
            v.feed
                .iter()
                .rev()
                .filter(|f| team.is_empty() || f.team.as_deref() == Some(team.as_str()))
                .filter(|f| kind.is_empty() || f.kind == kind)
                .take(200)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let select_class = "rounded border border-slate-300 bg-white px-2 py-1 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-label="Activity">
            <div class="flex flex-wrap items-center justify-between gap-2">
                <h2 class="font-medium">"Activity"</h2>
                <div class="flex flex-wrap gap-2">
                    <label class="text-sm">
                        <span class="sr-only">"Team"</span>
                        <select class=select_class data-testid="feed-team" on:change=move |ev| team.set(event_target_value(&ev))>
                            <option value="">"All teams"</option>
                            {move || filters.with(|(teams, _)| teams.iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view())}
                        </select>
                    </label>
                    <label class="text-sm">
                        <span class="sr-only">"Kind"</span>
                        <select class=select_class data-testid="feed-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                            <option value="">"All kinds"</option>
                            {move || filters.with(|(_, kinds)| kinds.iter().map(|k| view! { <option value=k.clone()>{k.replace('_', " ")}</option> }).collect_view())}
                        </select>
                    </label>
                </div>
            </div>
            <ol class="mt-3 max-h-96 divide-y divide-slate-100 overflow-y-auto text-sm" data-testid="feed">
                <For
                    each=items
                    key=|f| f.seq
                    children=|f| view! {
                        <li class="flex gap-3 py-1.5" data-seq=f.seq data-kind=f.kind.clone()>
                            <span class="w-16 shrink-0 tabular-nums text-xs text-slate-500" title=f.ts.clone()>{format_clock(&f.ts)}</span>
                            <span class="w-28 shrink-0 truncate text-xs text-slate-500">{f.team.clone().unwrap_or_default()}</span>
                            <span class="min-w-0 break-words">{f.text.clone()}</span>
                        </li>
                    }
                />
            </ol>
            {move || view.with(|v| v.feed.is_empty()).then(|| view! { <p class="text-sm text-slate-500">"No events yet: they appear here as the run moves."</p> })}
        </section>
    }
}
