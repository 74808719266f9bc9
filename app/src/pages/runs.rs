//! The Runs page: every run with its status, project, current stage, cost and age, refreshed
//! live; beside it the chat that submits a requirement and then follows that run's
//! conversation (`/?chat=<run id>`).

use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::Frame;
use crate::components::chat::{Composer, Conversation};
use crate::dto::{RunStatus, RunSummary, safe_run_id};
use crate::live::LiveScope;
use crate::server_fns::list_runs;
use crate::server_fns::runs::{get_composer_options, load_run_view};
use crate::time::{format_age, now_ms};

/// Lists runs, newest first; new runs appear without a reload.
#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let chat = query.with_untracked(|q| {
        q.get("chat")
            .map(|id| safe_run_id(&id))
            .filter(|id| !id.is_empty())
    });
    let runs = Resource::new(|| (), |_| list_runs());
    view! {
        <Frame live=LiveScope::all()>
            <h1 class="text-2xl font-semibold">"Runs"</h1>
            <p class="mt-1 text-sm text-slate-600">"New runs and status changes appear here as they happen."</p>
            <div class="mt-4 grid gap-6 lg:grid-cols-[minmax(0,1fr)_24rem]">
                <section class="order-2 min-w-0 lg:order-1" aria-label="Runs">
                    <Suspense fallback=|| view! { <p class="text-slate-500">"Loading runs…"</p> }>
                        {move || Suspend::new(async move {
                            match runs.await {
                                Ok(list) if list.is_empty() => view! { <EmptyState /> }.into_any(),
                                Ok(list) => view! { <RunTable runs=list /> }.into_any(),
                                Err(err) => view! {
                                    <super::ErrorBox message=format!("Could not load runs: {}", crate::server_fns::error_text(&err)) />
                                }.into_any(),
                            }
                        })}
                    </Suspense>
                </section>
                <section class="order-1 rounded-lg border border-slate-200 bg-white p-4 lg:order-2" aria-label="Chat" data-testid="chat-panel">
                    {match chat {
                        Some(id) => view! { <ChatOfRun id /> }.into_any(),
                        None => view! { <NewRequirement /> }.into_any(),
                    }}
                </section>
            </div>
        </Frame>
    }
}

/// The chat before a run: what to do, and the composer.
#[component]
fn NewRequirement() -> impl IntoView {
    let options = Resource::new(|| (), |_| get_composer_options());
    view! {
        <h2 class="text-lg font-medium">"Chat"</h2>
        <p class="mt-1 text-sm text-slate-600">"Type a requirement; the run starts at once and its teams answer here."</p>
        <div class="mt-3">
            <Suspense fallback=|| view! { <p class="text-xs text-slate-500">"Loading projects and pipelines…"</p> }>
                {move || Suspend::new(async move {
                    match options.await {
                        Ok(o) => view! { <Composer projects=o.projects pipelines=o.pipelines models_note=o.models_note /> }.into_any(),
                        Err(e) => view! { <super::ErrorBox message=crate::server_fns::error_text(&e) /> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

/// The chat following one run.
#[component]
fn ChatOfRun(id: String) -> impl IntoView {
    let href = format!("/runs/{id}");
    let view = Resource::new(move || id.clone(), load_run_view);
    view! {
        <div class="flex items-center justify-between gap-2">
            <h2 class="text-lg font-medium">"Chat"</h2>
            <div class="flex gap-2 text-sm">
                <a class="rounded text-indigo-700 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=href data-testid="chat-open-run">"Open run"</a>
                <a class="rounded text-slate-600 underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href="/" data-soft>"New requirement"</a>
            </div>
        </div>
        <Suspense fallback=|| view! { <p class="mt-3 text-sm text-slate-500">"Loading the conversation…"</p> }>
            {move || Suspend::new(async move {
                match view.await {
                    Ok(v) => view! { <div class="mt-3"><Conversation view=Arc::new(v) /></div> }.into_any(),
                    Err(e) => view! { <super::ErrorBox message=crate::server_fns::error_text(&e) /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RunTable(runs: Vec<RunSummary>) -> impl IntoView {
    let now = now_ms();
    view! {
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
                    {runs.into_iter().map(|run| view! { <RunRow run now /> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RunRow(run: RunSummary, now: i64) -> impl IntoView {
    view! {
        <tr class="border-t border-slate-100 hover:bg-slate-50" id=format!("run-{}", run.id) data-run-id=run.id.clone()>
            <td class="max-w-xs truncate px-3 py-2 font-medium" title=run.goal.clone()>
                <a class="rounded hover:text-indigo-700 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=format!("/runs/{}", run.id)>
                    {run.goal.clone()}
                </a>
            </td>
            <td class="max-w-[10rem] truncate px-3 py-2 text-slate-600" title=run.project.clone().unwrap_or_default()>
                {run.project.as_deref().map(project_name).unwrap_or_else(|| "—".into())}
            </td>
            <td class="px-3 py-2"><StatusBadge status=run.status /></td>
            <td class="px-3 py-2 text-slate-600">{run.current_stage.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="px-3 py-2 text-right tabular-nums text-slate-600">{format!("${:.4}", run.cost_usd)}</td>
            <td class="whitespace-nowrap px-3 py-2 text-slate-600" title=run.created_at.clone()>
                {format_age(now - run.created_ms)}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_folder_names() {
        assert_eq!(project_name("/home/me/shop/"), "shop");
        assert_eq!(project_name("shop"), "shop");
    }
}
