//! The activity feed: the run's events newest first, filterable by team and kind. The run's
//! view keeps at most [`FEED_CAP`](crate::run_view::FEED_CAP) items and the page shows the
//! newest 200 that pass the filters; a burst of events is one refresh of the page, not one
//! per event. The filters are a GET form (`?team=&kind=`): choosing one shows it at once.

use std::sync::Arc;

use leptos::prelude::*;

use super::RunQuery;
use crate::run_view::RunView;
use crate::time::format_clock;

/// Most items shown.
const SHOWN: usize = 200;

#[component]
pub fn ActivityFeed(view: Arc<RunView>, state: RunQuery) -> impl IntoView {
    let (teams, kinds) = view.feed_filters();
    let items: Vec<_> = view
        .feed
        .iter()
        .rev()
        .filter(|f| state.team.is_empty() || f.team.as_deref() == Some(state.team.as_str()))
        .filter(|f| state.kind.is_empty() || f.kind == state.kind)
        .take(SHOWN)
        .cloned()
        .collect();
    let empty = view.feed.is_empty();
    let select_class = "rounded border border-slate-300 bg-white px-2 py-1 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";
    // The other parts of the page's state ride along with the filters.
    let keep: Vec<_> = state
        .pairs()
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "team" | "kind"))
        .collect();
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-label="Activity">
            <form method="get" action=format!("/runs/{}", view.id) data-soft class="flex flex-wrap items-center justify-between gap-2">
                <h2 class="font-medium">"Activity"</h2>
                {keep.into_iter().map(|(name, value)| view! { <input type="hidden" name=name value=value /> }).collect_view()}
                <div class="flex flex-wrap gap-2">
                    <label class="text-sm">
                        <span class="sr-only">"Team"</span>
                        <select name="team" class=select_class data-testid="feed-team" data-autosubmit>
                            <option value="">"All teams"</option>
                            {teams.into_iter().map(|t| {
                                let selected = t == state.team;
                                view! { <option value=t.clone() selected=selected>{t.clone()}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label class="text-sm">
                        <span class="sr-only">"Kind"</span>
                        <select name="kind" class=select_class data-testid="feed-kind" data-autosubmit>
                            <option value="">"All kinds"</option>
                            {kinds.into_iter().map(|k| {
                                let selected = k == state.kind;
                                view! { <option value=k.clone() selected=selected>{k.replace('_', " ")}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <noscript><button type="submit" class="rounded border border-slate-300 px-2 py-1 text-sm">"Filter"</button></noscript>
                </div>
            </form>
            <ol class="mt-3 max-h-96 divide-y divide-slate-100 overflow-y-auto text-sm" data-testid="feed">
                {items.into_iter().map(|f| view! {
                    <li class="flex gap-3 py-1.5" id=format!("feed-{}", f.seq) data-seq=f.seq data-kind=f.kind.clone()>
                        <span class="w-16 shrink-0 tabular-nums text-xs text-slate-500" title=f.ts.clone()>{format_clock(&f.ts)}</span>
                        <span class="w-28 shrink-0 truncate text-xs text-slate-500">{f.team.clone().unwrap_or_default()}</span>
                        <span class="min-w-0 break-words">{f.text.clone()}</span>
                    </li>
                }).collect_view()}
            </ol>
            {empty.then(|| view! { <p class="text-sm text-slate-500">"No events yet: they appear here as the run moves."</p> })}
        </section>
    }
}
