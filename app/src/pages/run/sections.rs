//! The run page's lower sections: every stage's artifacts (rendered from markdown on demand)
//! and the work orders with their branches, commits, pull requests, gates and diffs.

use leptos::prelude::*;

use crate::components::artifact::{ArtifactView, DiffView};
use crate::run_view::RunView;

/// Artifacts of the run, by stage; one opens at a time.
#[component]
pub fn Artifacts(view: RwSignal<RunView>) -> impl IntoView {
    let open = RwSignal::new(None::<String>);
    let entries = move || {
        view.with(|v| {
            v.stages
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
                .collect::<Vec<_>>()
        })
    };
    let run_id = view.with_untracked(|v| v.id.clone());
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-label="Artifacts" data-testid="artifacts">
            <h2 class="font-medium">"Artifacts"</h2>
            {move || {
                let list = entries();
                if list.is_empty() {
                    return view! { <p class="mt-2 text-sm text-slate-500">"No artifacts yet: each stage's deliverables appear here when it completes."</p> }.into_any();
                }
                let run_id = run_id.clone();
                view! {
                    <ul class="mt-2 divide-y divide-slate-100">
                        {list.into_iter().map(|(stage, team, name, bytes, path)| {
                            let run_id = run_id.clone();
                            let key = path.clone();
                            let toggle_key = path.clone();
                            let is_open = move || open.get().as_deref() == Some(key.as_str());
                            let is_open_body = is_open.clone();
                            let data_path = path.clone();
                            view! {
                                <li class="py-2" data-artifact=data_path>
                                    <button
                                        type="button"
                                        class="flex w-full flex-wrap items-baseline justify-between gap-2 rounded text-left text-sm hover:text-indigo-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                                        aria-expanded=move || is_open().to_string()
                                        on:click=move |_| open.update(|o| {
                                            *o = if o.as_deref() == Some(toggle_key.as_str()) { None } else { Some(toggle_key.clone()) };
                                        })
                                    >
                                        <span class="font-medium">{name.clone()}</span>
                                        <span class="text-xs text-slate-500">{format!("{stage} · {team} · {bytes} bytes")}</span>
                                    </button>
                                    {move || is_open_body().then(|| view! {
                                        <div class="mt-2"><ArtifactView run_id=run_id.clone() path=path.clone() /></div>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// Work orders with what was delivered; a delivered one shows its diff on request.
#[component]
pub fn WorkOrders(view: RwSignal<RunView>) -> impl IntoView {
    let open = RwSignal::new(None::<String>);
    let run_id = view.with_untracked(|v| v.id.clone());
    view! {
        <Show when=move || view.with(|v| !v.work_orders.is_empty())>
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
                        <tbody>
                            {move || view.with(|v| v.work_orders.clone()).into_iter().map(|w| {
                                let id = w.id.clone();
                                let toggle = id.clone();
                                let passed = w.gates.iter().filter(|g| g.passed).count();
                                view! {
                                    <tr class="border-t border-slate-100" data-work-order=w.id.clone()>
                                        <td class="py-1 pr-3">{format!("{} · {}", w.id, w.title)}</td>
                                        <td class="py-1 pr-3">{w.state.clone()}</td>
                                        <td class="py-1 pr-3 font-mono text-xs">{w.branch.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td class="py-1 pr-3 font-mono text-xs">{w.commit.as_deref().map(|c| c.chars().take(8).collect::<String>()).unwrap_or_else(|| "—".into())}</td>
                                        <td class="py-1 pr-3">{if w.gates.is_empty() { "—".to_string() } else { format!("{passed}/{} passed", w.gates.len()) }}</td>
                                        <td class="py-1 pr-3">{match w.pull_request.clone() {
                                            Some(url) => view! { <a class="text-indigo-700 underline" href=url rel="noopener noreferrer" target="_blank">"open"</a> }.into_any(),
                                            None => view! { <span>"—"</span> }.into_any(),
                                        }}</td>
                                        <td class="py-1">
                                            {w.commit.is_some().then(|| view! {
                                                <button type="button" class="rounded text-indigo-700 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                                                    on:click=move |_| open.update(|o| *o = if o.as_deref() == Some(toggle.as_str()) { None } else { Some(toggle.clone()) })>
                                                    "diff"
                                                </button>
                                            })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {
                    let run_id = run_id.clone();
                    move || open.get().map(|wo| view! { <div class="mt-3"><DiffView run_id=run_id.clone() work_order_id=wo /></div> })
                }
            </section>
        </Show>
    }
}
