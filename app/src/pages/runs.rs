//! The Runs page: every run with its status, project, current stage, cost and age, kept live
//! over the WebSocket; beside it the chat that submits a requirement and follows its run.

use std::collections::VecDeque;
use std::time::Duration;

use leptos::prelude::*;

use super::Frame;
use crate::api::list_runs;
use crate::api::runs::load_run_view;
use crate::components::chat::{Composer, Conversation};
use crate::events::{Event, EventData};
use crate::live::{FeedOptions, apply_event, use_clock, use_live_feed};
use crate::model::{RunStatus, RunSummary};
use crate::protocol::{SNAPSHOT_RUN_LIMIT, ServerMsg};
use crate::run_view::RunView;
use crate::time::format_age;

/// Recent events kept while the chat's run is being fetched, so none falls between the fetch
/// and the live feed.
const RECENT_EVENTS: usize = 256;

/// Lists runs, newest first; new runs appear without a reload.
#[component]
pub fn RunsPage() -> impl IntoView {
    let initial = Resource::new(|| (), |_| list_runs());
    view! {
        <Frame>
            <h1 class="text-2xl font-semibold">"Runs"</h1>
            <Suspense fallback=|| {
                view! { <p class="mt-4 text-slate-500">"Loading runs…"</p> }
            }>
                {move || Suspend::new(async move {
                    match initial.await {
                        Ok(runs) => view! { <LiveRuns initial=runs /> }.into_any(),
                        Err(err) => {
                            view! {
                                <super::ErrorBox message=format!("Could not load runs: {}", crate::api::error_text(&err)) />
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
        </Frame>
    }
}

#[component]
fn LiveRuns(initial: Vec<RunSummary>) -> impl IntoView {
    // The fold (plain data) and the rendered rows, one signal each: an event re-renders the
    // row it changes, and only a new run or a snapshot rebuilds the list.
    let rows = RwSignal::new(rebuild(&initial, &[]));
    let model = StoredValue::new(initial);
    let last_seq = RwSignal::new(0_i64);
    // The chat's run: its id at once, its folded view when fetched.
    let chat_run = RwSignal::new(None::<String>);
    let chat_view = RwSignal::new(None::<RunView>);
    let recent: StoredValue<VecDeque<Event>> = StoredValue::new(VecDeque::new());
    let link = use_live_feed(FeedOptions::default(), move |batch| {
        let mut membership = false;
        let mut changed: Vec<String> = Vec::new();
        let mut chat = chat_view.get_untracked();
        let mut chat_changed = false;
        let mut newest = None;
        model.update_value(|list| {
            for msg in batch {
                match msg {
                    ServerMsg::Snapshot {
                        runs: fresh,
                        last_seq,
                    } => {
                        *list = fresh;
                        membership = true;
                        newest = Some(last_seq);
                    }
                    ServerMsg::Event { event } => {
                        newest = Some(event.seq);
                        if apply_event(list, &event) {
                            match &event.data {
                                EventData::RunCreated { .. } => membership = true,
                                data => {
                                    if let Some(id) = data.run_id()
                                        && !changed.iter().any(|c| c == id)
                                    {
                                        changed.push(id.to_string());
                                    }
                                }
                            }
                        }
                        if let Some(view) = chat.as_mut() {
                            chat_changed |= view.apply(&event);
                        }
                        recent.update_value(|r| {
                            r.push_back(*event);
                            if r.len() > RECENT_EVENTS {
                                r.pop_front();
                            }
                        });
                    }
                    ServerMsg::Ready | ServerMsg::Resync { .. } => {}
                }
            }
            list.truncate(SNAPSHOT_RUN_LIMIT as usize);
        });
        model.with_value(|list| {
            if membership {
                let fresh = rows.with_untracked(|old| rebuild(list, old));
                rows.set(fresh);
            } else if !changed.is_empty() {
                rows.with_untracked(|old| {
                    for id in &changed {
                        if let (Some((_, signal)), Some(run)) = (
                            old.iter().find(|(row, _)| row == id),
                            list.iter().find(|r| &r.id == id),
                        ) {
                            signal.set(run.clone());
                        }
                    }
                });
            }
        });
        if chat_changed {
            chat_view.set(chat);
        }
        if let Some(seq) = newest {
            last_seq.set(seq);
        }
    });
    let on_started = Callback::new(move |id: String| {
        chat_run.set(Some(id.clone()));
        chat_view.set(None);
        leptos::task::spawn_local(async move {
            if let Ok(mut view) = load_run_view(id.clone()).await
                && chat_run.get_untracked().as_deref() == Some(id.as_str())
            {
                recent.with_value(|r| {
                    for event in r {
                        view.apply(event);
                    }
                });
                chat_view.set(Some(view));
            }
        });
    });
    let has_view = Memo::new(move |_| chat_view.with(Option::is_some));
    let now = use_clock(Duration::from_secs(5));
    view! {
        <p class="mt-1 text-sm text-slate-600" data-testid="link" data-link=move || link.get().as_str() data-last-seq=move || last_seq.get()>
            {move || match link.get().as_str() {
                "live" => "● Live: new runs and status changes appear here as they happen.",
                "reconnecting" => "○ Reconnecting to the server…",
                _ => "○ Connecting…",
            }}
        </p>
        <div class="mt-4 grid gap-6 lg:grid-cols-[minmax(0,1fr)_24rem]">
            <section class="order-2 min-w-0 lg:order-1" aria-label="Runs">
                <Show when=move || rows.with(|r| !r.is_empty()) fallback=EmptyState>
                    <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                        <table class="min-w-full text-left text-sm">
                            <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
                                <tr>
                                    <th class="px-3 py-2">"Goal"</th>
                                    <th class="px-3 py-2">"Project"</th>
                                    <th class="px-3 py-2">"Status"</th>
                                    <th class="px-3 py-2">"Stage"</th>
                                    <th class="px-3 py-2 text-right">"Cost"</th>
                                    <th class="px-3 py-2">"Age"</th>
                                </tr>
                            </thead>
                            <tbody data-testid="runs">
                                <For
                                    each=move || rows.get()
                                    key=|(id, _)| id.clone()
                                    children=move |(_, run)| view! { <RunRow run now /> }
                                />
                            </tbody>
                        </table>
                    </div>
                </Show>
            </section>
            <section class="order-1 rounded-lg border border-slate-200 bg-white p-4 lg:order-2" aria-label="Chat" data-testid="chat-panel">
                <div class="flex items-center justify-between gap-2">
                    <h2 class="text-lg font-medium">"Chat"</h2>
                    {move || chat_run.get().map(|id| view! {
                        <div class="flex gap-2 text-sm">
                            <a class="rounded text-indigo-700 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=format!("/runs/{id}") data-testid="chat-open-run">"Open run"</a>
                            <button type="button" class="rounded text-slate-600 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" on:click=move |_| { chat_run.set(None); chat_view.set(None); }>"New requirement"</button>
                        </div>
                    })}
                </div>
                {move || match (chat_run.get(), has_view.get()) {
                    (None, _) => view! {
                        <p class="mt-1 text-sm text-slate-600">"Type a requirement; the run starts at once and its teams answer here."</p>
                        <div class="mt-3"><Composer on_started /></div>
                    }.into_any(),
                    (Some(_), false) => view! { <p class="mt-3 text-sm text-slate-500">"Starting the run…"</p> }.into_any(),
                    (Some(_), true) => {
                        let view_signal = RwSignal::new(chat_view.get_untracked().unwrap_or_else(|| RunView::new("")));
                        Effect::new(move |_| {
                            if let Some(v) = chat_view.get() {
                                view_signal.set(v);
                            }
                        });
                        view! { <div class="mt-3"><Conversation view=view_signal /></div> }.into_any()
                    }
                }}
            </section>
        </div>
    }
}

/// One rendered row of the list: the run's id and its own signal.
type Row = (String, ArcRwSignal<RunSummary>);

/// Rows for `list`, reusing the signals of rows that stay (and updating those that changed).
fn rebuild(list: &[RunSummary], old: &[Row]) -> Vec<Row> {
    list.iter()
        .map(|run| match old.iter().find(|(id, _)| id == &run.id) {
            Some((id, signal)) => {
                if signal.with_untracked(|current| current != run) {
                    signal.set(run.clone());
                }
                (id.clone(), signal.clone())
            }
            None => (run.id.clone(), ArcRwSignal::new(run.clone())),
        })
        .collect()
}

#[component]
fn RunRow(run: ArcRwSignal<RunSummary>, now: RwSignal<i64>) -> impl IntoView {
    let fixed = run.get_untracked();
    let created = fixed.created_ms;
    let (status, stage, cost) = (run.clone(), run.clone(), run);
    view! {
        <tr class="border-t border-slate-100 hover:bg-slate-50" data-run-id=fixed.id.clone()>
            <td class="max-w-xs truncate px-3 py-2 font-medium" title=fixed.goal.clone()>
                <a class="rounded hover:text-indigo-700 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=format!("/runs/{}", fixed.id)>
                    {fixed.goal.clone()}
                </a>
            </td>
            <td class="max-w-[10rem] truncate px-3 py-2 text-slate-600" title=fixed.project.clone().unwrap_or_default()>
                {fixed.project.as_deref().map(project_name).unwrap_or_else(|| "—".into())}
            </td>
            <td class="px-3 py-2">
                {move || view! { <StatusBadge status=status.with(|r| r.status) /> }}
            </td>
            <td class="px-3 py-2 text-slate-600">{move || stage.with(|r| r.current_stage.clone()).unwrap_or_else(|| "—".into())}</td>
            <td class="px-3 py-2 text-right tabular-nums text-slate-600">{move || cost.with(|r| format!("${:.4}", r.cost_usd))}</td>
            <td class="whitespace-nowrap px-3 py-2 text-slate-600" title=fixed.created_at.clone()>
                {move || format_age(now.get() - created)}
            </td>
        </tr>
    }
}

/// The last part of a project's path (its folder name).
fn project_name(path: &str) -> String {
    path.rsplit('/')
        .find(|p| !p.is_empty())
        .unwrap_or(path)
        .to_string()
}

/// A coloured pill naming a run status.
#[component]
pub fn StatusBadge(status: RunStatus) -> impl IntoView {
    let colours = match status {
        RunStatus::Queued => "bg-slate-100 text-slate-700",
        RunStatus::Running => "bg-blue-100 text-blue-800",
        RunStatus::WaitingForHuman => "bg-amber-100 text-amber-800",
        RunStatus::Succeeded => "bg-emerald-100 text-emerald-800",
        RunStatus::Failed => "bg-red-100 text-red-800",
        RunStatus::Canceled => "bg-zinc-200 text-zinc-700",
    };
    view! {
        <span class=format!("rounded-full px-2 py-0.5 text-xs font-medium {colours}")>
            {status.as_str().replace('_', " ")}
        </span>
    }
}

#[component]
fn EmptyState() -> impl IntoView {
    view! {
        <div class="rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="empty">
            <h2 class="text-lg font-medium">"No runs yet"</h2>
            <p class="mt-2 text-sm text-slate-600">
                "Type a requirement in the chat, or post one to the supervisor API; it appears here at once:"
            </p>
            <pre class="mx-auto mt-3 max-w-2xl overflow-x-auto rounded bg-slate-900 p-3 text-left text-xs text-slate-100">
                "curl -X POST http://127.0.0.1:3000/supervisor/start \\\n  -H \"Authorization: Bearer $FACTORY_ADMIN_TOKEN\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{\"goal\": \"Add a health check endpoint\"}'"
            </pre>
        </div>
    }
}
