//! Audit: the hash chain's verification (when the page opens, and again on request) and the
//! event log, newest first, with a kind filter, older pages (`?before=N`) and each event's full
//! JSON on request (`?event=N`). The first page refreshes live as events are committed.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{ErrorBox, Frame};
use crate::live::LiveScope;
use crate::server_fns::audit::{
    AuditEvents, AuditRow, ChainStatus, audit_page, audit_verify, event_detail,
};
use crate::server_fns::error_text;

const FOCUS: &str = "focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-1";
const BUTTON: &str = "rounded border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-700 hover:bg-slate-50 disabled:cursor-not-allowed disabled:opacity-50";

/// Event kinds offered by the filter (any stored kind is accepted by the server).
const KINDS: &[&str] = &[
    "run_created",
    "run_started",
    "stage_started",
    "stage_attempt_failed",
    "stage_completed",
    "stage_skipped",
    "run_revised",
    "run_finished",
    "work_order_delivered",
    "work_order_published",
    "approval_requested",
    "approval_decided",
    "clarification_requested",
    "clarification_answered",
    "clarification_refused",
    "memory_retained",
    "model_call_started",
    "model_call_finished",
    "model_call_failed",
    "routing_decided",
    "budget_reached",
    "budget_raised",
    "project_added",
    "settings_changed",
    "gym_scenario_finished",
    "webhook_delivered",
    "webhook_failed",
    "webhook_dropped",
    "admin_token_created",
    "token_scoped",
    "token_revoked",
    "session_started",
];

/// What the page shows, from its address.
#[derive(Debug, Clone, Default, PartialEq)]
struct AuditQuery {
    kind: String,
    before: Option<i64>,
    event: Option<i64>,
}

impl AuditQuery {
    fn href(&self, change: impl FnOnce(&mut AuditQuery)) -> String {
        let mut next = self.clone();
        change(&mut next);
        let mut parts = Vec::new();
        if !next.kind.is_empty() {
            parts.push(format!("kind={}", next.kind));
        }
        if let Some(before) = next.before {
            parts.push(format!("before={before}"));
        }
        if let Some(event) = next.event {
            parts.push(format!("event={event}"));
        }
        if parts.is_empty() {
            "/audit".to_string()
        } else {
            format!("/audit?{}", parts.join("&"))
        }
    }
}

/// The Audit page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let state = query.with_untracked(|q| AuditQuery {
        // Only kinds the log knows: the value is echoed into links.
        kind: q
            .get("kind")
            .filter(|k| KINDS.contains(&k.as_str()))
            .unwrap_or_default(),
        before: q
            .get("before")
            .and_then(|b| b.parse().ok())
            .filter(|b| *b > 0),
        event: q
            .get("event")
            .and_then(|e| e.parse().ok())
            .filter(|e| *e > 0),
    });
    view! {
        <Frame live=LiveScope::all()>
            <h1 class="text-2xl font-semibold">"Audit"</h1>
            <p class="mt-1 text-sm text-slate-600">
                "Every fact Factory recorded, in order. Each event's hash covers the one before it, so any change to the log breaks the chain."
            </p>
            <section class="mt-4 rounded-lg border border-slate-200 bg-white p-4" aria-label="Chain verification">
                <ChainCheck />
            </section>
            <EventLog state />
        </Frame>
    }
}

/// The chain's verification: run when the page opens in the browser, again on request. It
/// runs in the browser (not in every rendering of the page), so live refreshes do not walk
/// the whole chain again.
#[island]
fn ChainCheck() -> impl IntoView {
    let verify = Action::new(|_: &()| audit_verify());
    Effect::new(move |_| {
        verify.dispatch(());
    });
    let verifying = move || verify.pending().get() || verify.value().get().is_none();
    view! {
        <div class="flex flex-col gap-3 sm:flex-row sm:items-center sm:justify-between">
            <div data-testid="audit-status" aria-live="polite" class="min-w-0">
                {move || match verify.value().get() {
                    Some(Ok(status)) if !verify.pending().get() => view! { <ChainVerdict status /> }.into_any(),
                    Some(Err(e)) if !verify.pending().get() => view! {
                        <ErrorBox message=format!("Could not verify the chain: {}", error_text(&e)) />
                    }.into_any(),
                    _ => view! {
                        <p class="text-sm text-slate-500" role="status" data-state="verifying">"Verifying the chain…"</p>
                    }.into_any(),
                }}
            </div>
            <button
                type="button"
                data-testid="audit-verify"
                class=format!("{BUTTON} shrink-0 {FOCUS}")
                disabled=verifying
                on:click=move |_| {
                    verify.dispatch(());
                }
            >
                {move || if verifying() { "Verifying…" } else { "Verify again" }}
            </button>
        </div>
    }
}

/// Intact in green, or the first broken link in red.
#[component]
fn ChainVerdict(status: ChainStatus) -> impl IntoView {
    match status.broken {
        None => view! {
            <p class="flex items-center gap-2 text-sm font-medium text-green-800" data-state="intact">
                <span aria-hidden="true" class="inline-block h-2.5 w-2.5 rounded-full bg-green-600"></span>
                {format!(
                    "Chain intact — {} events verified in {} ms",
                    status.checked, status.duration_ms
                )}
            </p>
        }
        .into_any(),
        Some(broken) => view! {
            <div class="text-sm text-red-800" data-state="broken" data-broken-seq=broken.seq role="alert">
                <p class="flex items-center gap-2 font-medium">
                    <span aria-hidden="true" class="inline-block h-2.5 w-2.5 rounded-full bg-red-600"></span>
                    {format!("Chain broken at event #{}", broken.seq)}
                </p>
                <p class="mt-1">{broken.reason}</p>
                <p class="mt-1 text-red-700">
                    {format!(
                        "{} events checked in {} ms; the chain holds up to event #{}. Restore the database from a backup, or ask who changed it.",
                        status.checked, status.duration_ms, status.head_seq
                    )}
                </p>
            </div>
        }
        .into_any(),
    }
}

/// The kind filter and a page of events.
#[component]
fn EventLog(state: AuditQuery) -> impl IntoView {
    let (kind, before, event) = (state.kind.clone(), state.before, state.event);
    let page = Resource::new(
        move || (kind.clone(), before),
        |(kind, before)| audit_page(before, Some(kind), None),
    );
    let detail = Resource::new(
        move || event,
        |seq| async move {
            match seq {
                Some(seq) => event_detail(seq).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let current = state.kind.clone();
    view! {
        <section class="mt-6" aria-labelledby="audit-events-title">
            <form method="get" action="/audit" data-soft class="flex flex-wrap items-end justify-between gap-2">
                <h2 id="audit-events-title" class="text-lg font-semibold">"Events"</h2>
                <label class="text-sm">
                    <span class="mr-2 text-slate-600">"Kind"</span>
                    <select
                        name="kind"
                        data-testid="audit-kind"
                        data-autosubmit
                        class=format!("rounded border border-slate-300 bg-white px-2 py-1.5 text-sm {FOCUS}")
                    >
                        <option value="">"All kinds"</option>
                        {KINDS.iter().map(|k| view! { <option value=*k selected=current == *k>{k.replace('_', " ")}</option> }).collect_view()}
                    </select>
                    <noscript><button type="submit" class=format!("ml-2 {BUTTON}")>"Filter"</button></noscript>
                </label>
            </form>
            <Suspense fallback=|| view! { <p class="mt-4 text-sm text-slate-500" role="status">"Loading events…"</p> }>
                {move || {
                    let state = state.clone();
                    Suspend::new(async move {
                        let shown = match detail.await {
                            Ok(d) => Ok(d),
                            Err(e) => Err(error_text(&e)),
                        };
                        match page.await {
                            Ok(page) => view! { <EventTable page state shown /> }.into_any(),
                            Err(e) => view! { <ErrorBox message=format!("Could not load events: {}", error_text(&e)) /> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

/// The rows of a page, the opened event's JSON beneath its row, and the paging links.
#[component]
fn EventTable(
    page: AuditEvents,
    state: AuditQuery,
    shown: Result<Option<crate::server_fns::audit::EventJson>, String>,
) -> impl IntoView {
    if page.rows.is_empty() {
        return view! {
            <div class="mt-4 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center">
                <h3 class="font-medium">"No events of this kind yet"</h3>
                <p class="mt-2 text-sm text-slate-600">"Events appear here as they are recorded: start a run, or choose “All kinds”."</p>
            </div>
        }
        .into_any();
    }
    let error = shown.as_ref().err().cloned();
    let rows = page
        .rows
        .into_iter()
        .map(|row| {
            // Only the opened event's detail is fetched.
            let json = match &shown {
                Ok(Some(d)) if d.seq == row.seq => Some(d.clone()),
                _ => None,
            };
            view! { <EventRow row state=state.clone() json /> }
        })
        .collect_view();
    view! {
        {error.map(|e| view! { <ErrorBox message=e /> })}
        <div class="mt-3 overflow-x-auto rounded-lg border border-slate-200 bg-white">
            <table class="min-w-full text-left text-sm">
                <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
                    <tr>
                        <th scope="col" class="px-3 py-2">"#"</th>
                        <th scope="col" class="px-3 py-2">"When"</th>
                        <th scope="col" class="px-3 py-2">"What"</th>
                        <th scope="col" class="hidden px-3 py-2 md:table-cell">"Actor"</th>
                        <th scope="col" class="hidden px-3 py-2 lg:table-cell">"Run"</th>
                        <th scope="col" class="hidden px-3 py-2 lg:table-cell">"Hash ← previous"</th>
                    </tr>
                </thead>
                <tbody data-testid="audit-rows" class="divide-y divide-slate-100">{rows}</tbody>
            </table>
        </div>
        <div class="mt-3 flex flex-wrap items-center gap-3 text-sm">
            {state.before.is_some().then(|| view! {
                <a class=format!("{BUTTON} {FOCUS}") href=state.href(|q| { q.before = None; q.event = None; }) data-soft>"Newest"</a>
            })}
            {match page.older {
                Some(before) => view! {
                    <a class=format!("{BUTTON} {FOCUS}") data-testid="audit-older" href=state.href(|q| { q.before = Some(before); q.event = None; }) data-soft>"Older"</a>
                }.into_any(),
                None => view! { <span class="text-slate-500">"This reaches the first event."</span> }.into_any(),
            }}
        </div>
    }
    .into_any()
}

/// One event; its number opens (or closes) its full JSON beneath it.
#[component]
fn EventRow(
    row: AuditRow,
    state: AuditQuery,
    json: Option<crate::server_fns::audit::EventJson>,
) -> impl IntoView {
    let seq = row.seq;
    let open = state.event == Some(seq);
    let href = state.href(|q| q.event = (!open).then_some(seq));
    let time = row.ts.get(11..19).unwrap_or(&row.ts).to_string();
    let run = row.run_id.clone().map(|id| {
        let short: String = id.chars().take(8).collect();
        view! { <a class=format!("rounded text-indigo-700 underline {FOCUS}") href=format!("/runs/{id}")>{short}</a> }
    });
    let chain = if row.prev_hash.is_empty() {
        row.hash.clone()
    } else {
        format!("{} ← {}", row.hash, row.prev_hash)
    };
    view! {
        <tr id=format!("event-{seq}") data-seq=seq data-kind=row.kind.clone() class="align-top hover:bg-slate-50">
            <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">
                <a
                    href=href
                    data-soft
                    class=format!("rounded px-1 text-indigo-700 underline-offset-2 hover:underline {FOCUS}")
                    aria-expanded=open.to_string()
                    aria-label=format!("Show event {seq} in full")
                >
                    {format!("#{seq}")}
                </a>
            </td>
            <td class="whitespace-nowrap px-3 py-2 text-xs text-slate-600" title=row.ts.clone()>{time}</td>
            <td class="px-3 py-2">
                <span class="rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-700">{row.kind.clone()}</span>
                <span class="mt-1 block break-words text-slate-800">{row.summary.clone()}</span>
            </td>
            <td class="hidden whitespace-nowrap px-3 py-2 text-xs text-slate-600 md:table-cell">{row.actor.clone()}</td>
            <td class="hidden whitespace-nowrap px-3 py-2 font-mono text-xs lg:table-cell">{run}</td>
            <td class="hidden whitespace-nowrap px-3 py-2 font-mono text-xs text-slate-500 lg:table-cell">{chain}</td>
        </tr>
        {json.map(|d| view! {
            <tr id=format!("event-{seq}-json") data-detail-for=seq>
                <td colspan="6" class="bg-slate-50 px-3 py-2">
                    <div data-testid="event-detail">
                        {d.truncated.then(|| view! {
                            <p class="mb-2 text-xs text-amber-800">
                                {format!("Shown in part: the event is {} bytes; the rest is left out.", d.bytes)}
                            </p>
                        })}
                        <pre class="max-h-96 overflow-auto whitespace-pre rounded bg-slate-900 p-3 font-mono text-xs text-slate-100">{d.json}</pre>
                    </div>
                </td>
            </tr>
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_filter() {
        let state = AuditQuery {
            kind: "run_created".into(),
            before: Some(40),
            event: None,
        };
        assert_eq!(
            state.href(|q| q.event = Some(3)),
            "/audit?kind=run_created&before=40&event=3"
        );
        assert_eq!(AuditQuery::default().href(|_| {}), "/audit");
    }
}
