//! The Runs page: every run with its status and age, kept live over the WebSocket.

use std::time::Duration;

use leptos::prelude::*;

use super::Frame;
use crate::api::list_runs;
use crate::live::{apply_event, use_clock, use_live_feed};
use crate::model::{RunStatus, RunSummary};
use crate::protocol::ServerMsg;
use crate::time::format_age;

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
                                <p role="alert" class="mt-4 rounded border border-red-200 bg-red-50 px-3 py-2 text-red-800">
                                    {format!("Could not load runs: {err}")}
                                </p>
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
    let runs = RwSignal::new(initial);
    let link = use_live_feed(move |msg| match msg {
        ServerMsg::Snapshot { runs: list, .. } => runs.set(list),
        ServerMsg::Event { event } => {
            runs.maybe_update(|list| apply_event(list, &event));
        }
        ServerMsg::Ready | ServerMsg::Resync { .. } => {}
    });
    let now = use_clock(Duration::from_secs(5));
    view! {
        <p class="mt-1 text-sm text-slate-600" data-testid="link" data-link=move || link.get().as_str()>
            {move || match link.get().as_str() {
                "live" => "● Live: new runs and status changes appear here as they happen.",
                "reconnecting" => "○ Reconnecting to the server…",
                _ => "○ Connecting…",
            }}
        </p>
        <Show when=move || runs.with(|r| !r.is_empty()) fallback=EmptyState>
            <div class="mt-4 overflow-x-auto rounded-lg border border-slate-200 bg-white">
                <table class="min-w-full text-left text-sm">
                    <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
                        <tr>
                            <th class="px-4 py-2">"Goal"</th>
                            <th class="px-4 py-2">"Project"</th>
                            <th class="px-4 py-2">"Status"</th>
                            <th class="px-4 py-2">"Age"</th>
                        </tr>
                    </thead>
                    <tbody data-testid="runs">
                        <For
                            each=move || runs.get()
                            key=|run| (run.id.clone(), run.status)
                            children=move |run| view! { <RunRow run now /> }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
    }
}

#[component]
fn RunRow(run: RunSummary, now: RwSignal<i64>) -> impl IntoView {
    let created = run.created_ms;
    view! {
        <tr class="border-t border-slate-100" data-run-id=run.id.clone()>
            <td class="max-w-md truncate px-4 py-2 font-medium" title=run.goal.clone()>
                {run.goal.clone()}
            </td>
            <td class="px-4 py-2 text-slate-600">{run.project.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="px-4 py-2">
                <StatusBadge status=run.status />
            </td>
            <td class="px-4 py-2 text-slate-600" title=run.created_at.clone()>
                {move || format_age(now.get() - created)}
            </td>
        </tr>
    }
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
        <div class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="empty">
            <h2 class="text-lg font-medium">"No runs yet"</h2>
            <p class="mt-2 text-sm text-slate-600">
                "Start one by posting a requirement to the supervisor API; it appears here at once:"
            </p>
            <pre class="mx-auto mt-3 max-w-2xl overflow-x-auto rounded bg-slate-900 p-3 text-left text-xs text-slate-100">
                "curl -X POST http://127.0.0.1:3000/supervisor/start \\\n  -H \"Authorization: Bearer $FACTORY_ADMIN_TOKEN\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{\"goal\": \"Add a health check endpoint\"}'"
            </pre>
        </div>
    }
}
