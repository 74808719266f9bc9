//! The Run page: the team graph with clarification edges and work orders, the detail of what
//! is selected, pending approvals with their buttons, the chat, the activity feed, artifacts
//! and costs — all kept live from the run's own events over the WebSocket.

mod detail;
mod feed;
mod graph_view;
mod sections;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::Frame;
use super::runs::StatusBadge;
use crate::api::runs::{cancel_run, load_run_view};
use crate::components::approval_card::ApprovalCard;
use crate::components::chat::{Conversation, approval_of};
use crate::graph::Selection;
use crate::live::{FeedOptions, use_live_feed};
use crate::protocol::ServerMsg;
use crate::run_view::RunView;

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let initial = Resource::new(id, load_run_view);
    view! {
        <Frame>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the run…"</p> }>
                {move || Suspend::new(async move {
                    match initial.await {
                        Ok(view) => view! { <LiveRun initial=view /> }.into_any(),
                        Err(err) => view! {
                            <h1 class="text-2xl font-semibold">"Run"</h1>
                            <super::ErrorBox message=crate::api::error_text(&err) />
                            <p class="mt-2 text-sm"><a class="text-indigo-700 underline" href="/">"Back to the runs"</a></p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Frame>
    }
}

#[component]
fn LiveRun(initial: RunView) -> impl IntoView {
    let run_id = initial.id.clone();
    let options = FeedOptions {
        run: Some(run_id.clone()),
        after: Some(initial.last_seq),
    };
    let view = RwSignal::new(initial);
    let selected = RwSignal::new(None::<Selection>);
    let refetch_id = run_id.clone();
    let link = use_live_feed(options, move |batch| {
        let mut resync = false;
        view.update(|v| {
            for msg in &batch {
                match msg {
                    ServerMsg::Event { event } => {
                        v.apply(event);
                    }
                    ServerMsg::Resync { .. } => resync = true,
                    _ => {}
                }
            }
        });
        if resync {
            let id = refetch_id.clone();
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = load_run_view(id).await {
                    view.set(fresh);
                }
            });
        }
    });
    let cancel = Action::new(|id: &String| cancel_run(id.clone()));
    let cancel_error = move || match cancel.value().get() {
        Some(Err(e)) => Some(crate::api::error_text(&e)),
        _ => None,
    };
    let status = move || view.with(|v| v.status);
    let cancel_id = run_id.clone();
    let approvals_id = run_id.clone();
    view! {
        <div data-testid="run" data-run-id=run_id.clone() data-status=move || status().as_str() data-last-seq=move || view.with(|v| v.last_seq)>
            <div class="flex flex-wrap items-start justify-between gap-3">
                <div class="min-w-0">
                    <p class="text-xs text-slate-500"><a class="underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href="/">"Runs"</a> " / " {run_id.chars().take(8).collect::<String>()}</p>
                    <h1 class="mt-1 break-words text-xl font-semibold sm:text-2xl">{move || view.with(|v| v.goal.clone())}</h1>
                    <div class="mt-2 flex flex-wrap items-center gap-2 text-sm text-slate-600">
                        {move || view! { <StatusBadge status=status() /> }}
                        <span>{move || view.with(|v| format!("{} pipeline", v.pipeline))}</span>
                        {move || view.with(|v| v.project.clone()).map(|p| view! { <span title=p.clone()>"· " {p.clone()}</span> })}
                        <span data-testid="run-cost" class="tabular-nums">{move || view.with(|v| format!("· ${:.4} · {} calls", v.usage.cost_usd, v.usage.calls))}</span>
                        {move || view.with(|v| (v.revision > 0).then(|| format!("· revision {}", v.revision)))}
                        <span data-link=move || link.get().as_str()>{move || if link.get().as_str() == "live" { "· ● live" } else { "· ○ connecting…" }}</span>
                    </div>
                    {move || view.with(|v| v.reason.clone()).map(|r| view! { <p class="mt-1 text-sm text-slate-600">{r}</p> })}
                </div>
                <div class="flex gap-2">
                    <a class="rounded border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=format!("/costs?run={run_id}")>"Costs"</a>
                    <Show when=move || !status().is_terminal()>
                        <button
                            type="button"
                            class="rounded border border-red-300 px-3 py-1.5 text-sm text-red-700 hover:bg-red-50 disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                            disabled=move || cancel.pending().get()
                            on:click={
                                let id = cancel_id.clone();
                                move |_| { cancel.dispatch(id.clone()); }
                            }
                        >
                            "Cancel run"
                        </button>
                    </Show>
                </div>
            </div>
            {move || cancel_error().map(|e| view! { <super::ErrorBox message=e /> })}
            {move || view.with(|v| v.truncated).then(|| view! {
                <p class="mt-2 rounded bg-amber-50 px-3 py-2 text-sm text-amber-800">"This run has more events than the page folds; the audit log has them all."</p>
            })}
            // Decisions waiting for a person, inline.
            <div class="mt-4 space-y-3" data-testid="run-approvals">
                <For
                    each=move || view.with(|v| v.pending_approvals().cloned().collect::<Vec<_>>())
                    key=|a| a.id.clone()
                    children=move |a| {
                        let approval = approval_of(&approvals_id, &a);
                        view! { <div class="list-none"><ApprovalCard approval /></div> }
                    }
                />
            </div>
            <div class="mt-4 grid gap-6 lg:grid-cols-[minmax(0,1fr)_24rem]">
                <div class="min-w-0 space-y-4">
                    <section class="rounded-lg border border-slate-200 bg-white p-3" aria-label="Team graph">
                        <div class="flex flex-wrap items-center justify-between gap-2">
                            <h2 class="font-medium">"Team graph"</h2>
                            <graph_view::Legend />
                        </div>
                        <graph_view::TeamGraph view selected />
                    </section>
                    <detail::Detail view selected />
                </div>
                <section class="rounded-lg border border-slate-200 bg-white p-4" aria-label="Chat">
                    <h2 class="font-medium">"Chat"</h2>
                    <div class="mt-2"><Conversation view /></div>
                </section>
            </div>
            <feed::ActivityFeed view />
            <sections::Artifacts view />
            <sections::WorkOrders view />
            <section class="mt-6" aria-label="Costs of this run">
                <h2 class="font-medium">"Costs of this run"</h2>
                <super::CostPanel run_id=run_id.clone() />
            </section>
        </div>
    }
}
