//! The Run page: the team graph with clarification edges and work orders, the detail of what
//! is selected, pending approvals with their buttons, the chat, the activity feed, artifacts
//! and costs — rendered on the server from the run's events and refreshed live when the run
//! moves. What the person looks at is in the address (`?sel=`, `?team=`, `?kind=`,
//! `?artifact=`, `?diff=`), so a refresh keeps it and a link can be shared.

mod detail;
mod feed;
mod graph_view;
mod sections;

use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::Frame;
use super::runs::StatusBadge;
use crate::components::approval_card::ApprovalCard;
use crate::components::chat::{Conversation, approval_of};
use crate::graph::Selection;
use crate::live::LiveScope;
use crate::run_view::RunView;
use crate::server_fns::runs::{cancel_run, load_run_view};

/// What the run page shows besides the run itself, read from and written to its address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// The graph's selection, shown in the detail panel.
    pub sel: Option<Selection>,
    /// The activity feed's filters (empty: all).
    pub team: String,
    pub kind: String,
    /// The artifact opened (its path under the data directory).
    pub artifact: Option<String>,
    /// The work order whose diff is shown.
    pub diff: Option<String>,
}

/// Longest value of a query parameter the page reads; longer ones are ignored.
const MAX_PARAM: usize = 512;

impl RunQuery {
    /// The page's state from its query parameters; unknown or malformed values are ignored.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> RunQuery {
        let text = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty() && v.len() <= MAX_PARAM)
        };
        RunQuery {
            sel: text("sel").and_then(|s| Selection::from_param(&s)),
            team: text("team").unwrap_or_default(),
            kind: text("kind").unwrap_or_default(),
            artifact: text("artifact"),
            diff: text("diff"),
        }
    }

    /// The query parameters of this state, unencoded and in the address's order; empty
    /// ones are left out.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(sel) = &self.sel {
            pairs.push(("sel", sel.to_param()));
        }
        for (name, value) in [("team", &self.team), ("kind", &self.kind)] {
            if !value.is_empty() {
                pairs.push((name, value.clone()));
            }
        }
        if let Some(a) = &self.artifact {
            pairs.push(("artifact", a.clone()));
        }
        if let Some(d) = &self.diff {
            pairs.push(("diff", d.clone()));
        }
        pairs
    }

    /// The query string of this state (`?…`, or empty).
    pub fn query(&self) -> String {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return String::new();
        }
        let encoded: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(&v, NON_ALPHANUMERIC)))
            .collect();
        format!("?{}", encoded.join("&"))
    }

    /// The link to run `id` with this state changed by `change`.
    pub fn href(&self, id: &str, change: impl FnOnce(&mut RunQuery)) -> String {
        let mut next = self.clone();
        change(&mut next);
        format!("/runs/{id}{}", next.query())
    }
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let state = query.with_untracked(|q| RunQuery::read(|name| q.get(name)));
    let live = LiveScope::run(&id);
    let initial = Resource::new(move || id.clone(), load_run_view);
    view! {
        <Frame live>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the run…"</p> }>
                {move || {
                    let state = state.clone();
                    Suspend::new(async move {
                        match initial.await {
                            Ok(view) => view! { <RunBody view state /> }.into_any(),
                            Err(err) => view! {
                                <h1 class="text-2xl font-semibold">"Run"</h1>
                                <super::ErrorBox message=crate::server_fns::error_text(&err) />
                                <p class="mt-2 text-sm"><a class="text-indigo-700 underline" href="/">"Back to the runs"</a></p>
                            }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </Frame>
    }
}

#[component]
fn RunBody(view: RunView, state: RunQuery) -> impl IntoView {
    // Shared by the sections below rather than cloned for each: a run's view is large.
    let view = Arc::new(view);
    let run_id = view.id.clone();
    let status = view.status;
    let approvals: Vec<_> = view
        .pending_approvals()
        .map(|a| approval_of(&run_id, a))
        .collect();
    view! {
        <div data-testid="run" data-run-id=run_id.clone() data-status=status.as_str() data-last-seq=view.last_seq>
            <div class="flex flex-wrap items-start justify-between gap-3">
                <div class="min-w-0">
                    <p class="text-xs text-slate-500"><a class="underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href="/">"Runs"</a> " / " {run_id.chars().take(8).collect::<String>()}</p>
                    <h1 class="mt-1 break-words text-xl font-semibold sm:text-2xl">{view.goal.clone()}</h1>
                    <div class="mt-2 flex flex-wrap items-center gap-2 text-sm text-slate-600">
                        <StatusBadge status />
                        <span>{format!("{} pipeline", view.pipeline)}</span>
                        {view.project.clone().map(|p| view! { <span title=p.clone()>"· " {p.clone()}</span> })}
                        <span data-testid="run-served-by" data-templates=view.served_by.templates.to_string()>{format!("· {}", view.served_by.label())}</span>
                        <span data-testid="run-cost" class="tabular-nums">{format!("· ${:.4} · {} calls", view.usage.cost_usd, view.usage.calls)}</span>
                        {(view.revision > 0).then(|| format!("· revision {}", view.revision))}
                    </div>
                    {view.reason.clone().map(|r| view! { <p class="mt-1 text-sm text-slate-600">{r}</p> })}
                    // Kept current between refreshes by the live link (`BriefMsg::Progress`).
                    <p data-testid="run-streaming" data-stream-progress=run_id.clone() class="mt-1 text-sm text-indigo-700" aria-live="polite">
                        {view.streaming.as_ref().filter(|s| !s.done).map(|s| s.label())}
                    </p>
                </div>
                <div class="flex gap-2">
                    <a class="rounded border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=format!("/costs?run={run_id}")>"Costs"</a>
                    {(!status.is_terminal()).then(|| view! { <CancelRun id=run_id.clone() /> })}
                </div>
            </div>
            {view.truncated.then(|| view! {
                <p class="mt-2 rounded bg-amber-50 px-3 py-2 text-sm text-amber-800">"This run has more events than the page folds; the audit log has them all."</p>
            })}
            // Decisions waiting for a person, inline.
            <ul class="mt-4 space-y-3" data-testid="run-approvals">
                {approvals.into_iter().map(|approval| view! { <ApprovalCard approval /> }).collect_view()}
            </ul>
            <div class="mt-4 grid gap-6 lg:grid-cols-[minmax(0,1fr)_24rem]">
                <div class="min-w-0 space-y-4">
                    <section class="rounded-lg border border-slate-200 bg-white p-3" aria-label="Team graph">
                        <div class="flex flex-wrap items-center justify-between gap-2">
                            <h2 class="font-medium">"Team graph"</h2>
                            <graph_view::Legend />
                        </div>
                        <graph_view::TeamGraph view=view.clone() state=state.clone() />
                    </section>
                    <detail::Detail view=view.clone() state=state.clone() />
                </div>
                <section class="rounded-lg border border-slate-200 bg-white p-4" aria-label="Chat">
                    <h2 class="font-medium">"Chat"</h2>
                    <div class="mt-2"><Conversation view=view.clone() /></div>
                </section>
            </div>
            <feed::ActivityFeed view=view.clone() state=state.clone() />
            <sections::Artifacts view=view.clone() state=state.clone() />
            <sections::WorkOrders view=view.clone() state=state.clone() />
            <section class="mt-6" aria-label="Costs of this run">
                <h2 class="font-medium">"Costs of this run"</h2>
                <super::CostPanel run_id=run_id.clone() />
            </section>
        </div>
    }
}

/// Cancels the run; the page refreshes to show it canceled.
#[island]
fn CancelRun(id: String) -> impl IntoView {
    let cancel = Action::new(|id: &String| cancel_run(id.clone()));
    let (done, error) = crate::live::refresh_on_success(cancel);
    view! {
        <button
            type="button"
            data-testid="cancel-run"
            class="rounded border border-red-300 px-3 py-1.5 text-sm text-red-700 hover:bg-red-50 disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
            disabled=move || cancel.pending().get() || done.get()
            on:click=move |_| {
                cancel.dispatch(id.clone());
            }
        >
            {move || if cancel.pending().get() { "Canceling…" } else { "Cancel run" }}
        </button>
        {move || error.get().map(|e| view! { <p role="alert" class="text-sm text-red-700">{e}</p> })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_the_address() {
        let state = RunQuery {
            sel: Some(Selection::Clarification("c 1".into())),
            team: "qa-engineering".into(),
            kind: String::new(),
            artifact: Some("runs/a/01-ba/x y.md".into()),
            diff: None,
        };
        let href = state.href("r1", |_| {});
        assert!(
            href.starts_with("/runs/r1?sel=clar%2Dc%201&team="),
            "{href}"
        );
        let query = href.split_once('?').unwrap().1;
        let pairs: Vec<(String, String)> = query
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        let back = RunQuery::read(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        });
        assert_eq!(back, state);
        assert_eq!(RunQuery::default().href("r1", |_| {}), "/runs/r1");
        let long = "x".repeat(MAX_PARAM + 1);
        assert_eq!(RunQuery::read(|_| Some(long.clone())), RunQuery::default());
    }
}
