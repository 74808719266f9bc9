//! The run page's lower sections: every stage's artifacts (one opened at a time, rendered from
//! markdown on the server: `?artifact=<path>`) and the work orders with their branches,
//! commits, pull requests, gates and diffs (`?diff=<work order>`).

use std::sync::Arc;

use leptos::prelude::*;

use super::RunQuery;
use crate::components::artifact::{ArtifactView, DiffView};
use crate::run_view::RunView;

const LINK: &str = "rounded focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";

/// Artifacts of the run, by stage; one opens at a time.
#[component]
pub fn Artifacts(view: Arc<RunView>, state: RunQuery) -> impl IntoView {
    let entries: Vec<_> = view
        .stages
        .iter()
        .filter_map(|s| Some((s, s.artifact_dir.as_ref()?, s.result.as_ref()?)))
        .flat_map(|(s, dir, r)| {
            r.artifacts.iter().map(move |(name, bytes)| {
                (
                    s.name.clone(),
                    s.team.clone(),
                    name.clone(),
                    *bytes,
                    format!("{dir}/{name}"),
                )
            })
        })
        .collect();
    let run_id = view.id.clone();
    let body = if entries.is_empty() {
        view! { <p class="mt-2 text-sm text-slate-500">"No artifacts yet: each stage's deliverables appear here when it completes."</p> }.into_any()
    } else {
        view! {
            <ul class="mt-2 divide-y divide-slate-100">
                {entries.into_iter().map(|(stage, team, name, bytes, path)| {
                    let open = state.artifact.as_deref() == Some(path.as_str());
                    let href = state.href(&run_id, |q| q.artifact = (!open).then(|| path.clone()));
                    view! {
                        <li class="py-2" id=format!("artifact-{path}") data-artifact=path.clone()>
                            <a
                                href=href
                                data-soft
                                class=format!("flex w-full flex-wrap items-baseline justify-between gap-2 text-left text-sm hover:text-indigo-700 {LINK}")
                                aria-expanded=open.to_string()
                            >
                                <span class="font-medium">{name.clone()}</span>
                                <span class="text-xs text-slate-500">{format!("{stage} · {team} · {bytes} bytes")}</span>
                            </a>
                            {open.then(|| view! {
                                <div class="mt-2"><ArtifactView run_id=run_id.clone() path=path.clone() /></div>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        }.into_any()
    };
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-label="Artifacts" data-testid="artifacts">
            <h2 class="font-medium">"Artifacts"</h2>
            {body}
        </section>
    }
}

/// Work orders with what was delivered; a delivered one shows its diff on request.
#[component]
pub fn WorkOrders(view: Arc<RunView>, state: RunQuery) -> impl IntoView {
    if view.work_orders.is_empty() {
        return ().into_any();
    }
    let run_id = view.id.clone();
    let shown = state.diff.clone().filter(|d| {
        view.work_orders
            .iter()
            .any(|w| &w.id == d && w.commit.is_some())
    });
    let rows = view.work_orders.iter().map(|w| {
        let passed = w.gates.iter().filter(|g| g.passed).count();
        let open = shown.as_deref() == Some(w.id.as_str());
        let href = state.href(&run_id, |q| q.diff = (!open).then(|| w.id.clone()));
        view! {
            <tr class="border-t border-slate-100" data-work-order=w.id.clone()>
                <td class="py-1 pr-3" data-stacked-on=w.stacked_on.join(" ")>{format!("{} · {}", w.id, w.title)}{(!w.stacked_on.is_empty()).then(|| view! { <span class="ml-1 text-xs text-slate-500">{format!("(on {})", w.stacked_on.join(", "))}</span> })}</td>
                <td class="py-1 pr-3" data-commands=w.commands>{if w.commands > 0 { format!("{} · {} commands", w.state, w.commands) } else { w.state.clone() }}</td>
                <td class="py-1 pr-3 font-mono text-xs">{w.branch.clone().unwrap_or_else(|| "—".into())}</td>
                <td class="py-1 pr-3 font-mono text-xs">{w.commit.as_deref().map(|c| c.chars().take(8).collect::<String>()).unwrap_or_else(|| "—".into())}</td>
                <td class="py-1 pr-3">{if w.gates.is_empty() { "—".to_string() } else { format!("{passed}/{} passed", w.gates.len()) }}</td>
                <td class="py-1 pr-3">{match w.pull_request.clone() {
                    Some(url) => view! { <a class="text-indigo-700 underline" href=url rel="noopener noreferrer" target="_blank">"open"</a> }.into_any(),
                    None => view! { <span>"—"</span> }.into_any(),
                }}</td>
                <td class="py-1">
                    {w.commit.is_some().then(|| view! {
                        <a href=href data-soft aria-expanded=open.to_string() class=format!("text-indigo-700 underline {LINK}")>"diff"</a>
                    })}
                </td>
            </tr>
        }
    }).collect_view();
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-label="Work orders" data-testid="work-orders">
            <h2 class="font-medium">"Work orders"</h2>
            <div class="mt-2 overflow-x-auto">
                <table class="min-w-full text-left text-sm">
                    <thead class="text-xs uppercase tracking-wide text-slate-500">
                        <tr>
                            <th class="py-1 pr-3">"Work order"</th>
                            <th class="py-1 pr-3">"State"</th>
                            <th class="py-1 pr-3">"Branch"</th>
                            <th class="py-1 pr-3">"Commit"</th>
                            <th class="py-1 pr-3">"Gates"</th>
                            <th class="py-1 pr-3">"Pull request"</th>
                            <th class="py-1">"Diff"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {shown.map(|wo| view! { <div class="mt-3"><DiffView run_id=run_id.clone() work_order_id=wo /></div> })}
        </section>
    }
    .into_any()
}
