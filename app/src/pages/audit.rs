//! Audit: the hash chain's verification (on load and on demand) and the event log, newest
//! first, with a kind filter, older pages, each event's full JSON on demand, and a live tail.

use leptos::prelude::*;

use super::{ErrorBox, Frame};
use crate::api::error_text;
use crate::api::insight::{
    AuditEvents, AuditRow, ChainStatus, audit_page, audit_verify, event_detail, prepend_live,
};
use crate::events::Event;
use crate::live::{FeedOptions, use_live_feed};
use crate::protocol::ServerMsg;

/// Most rows the live tail keeps (the oldest go first).
const LIVE_CAP: usize = 500;

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
    "admin_token_created",
    "session_started",
];

/// The Audit page.
#[component]
pub fn AuditPage() -> impl IntoView {
    view! {
        <Frame>
            <h1 class="text-2xl font-semibold">"Audit"</h1>
            <p class="mt-1 text-sm text-slate-600">
                "Every fact Factory recorded, in order. Each event's hash covers the one before it, so any change to the log breaks the chain."
            </p>
            <ChainCheck />
            <EventLog />
        </Frame>
    }
}

/// The chain's verification: run on load, again on request.
#[component]
fn ChainCheck() -> impl IntoView {
    let round = RwSignal::new(0u32);
    let report = Resource::new(move || round.get(), |_| audit_verify());
    let (verifying, set_verifying) = signal(false);
    view! {
        <section class="mt-4 flex flex-col gap-3 rounded-lg border border-slate-200 bg-white p-4 sm:flex-row sm:items-center sm:justify-between" aria-label="Chain verification">
            <div data-testid="audit-status" aria-live="polite" class="min-w-0">
                <Transition
                    fallback=|| view! { <p class="text-sm text-slate-500" role="status" data-state="verifying">"Verifying the chain…"</p> }
                    set_pending=set_verifying
                >
                    {move || Suspend::new(async move {
                        match report.await {
                            Ok(status) => view! { <ChainVerdict status /> }.into_any(),
                            Err(e) => view! { <ErrorBox message=format!("Could not verify the chain: {}", error_text(&e)) /> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
            <button
                type="button"
                class=format!("{BUTTON} shrink-0 {FOCUS}")
                disabled=move || verifying.get()
                on:click=move |_| round.update(|r| *r += 1)
            >
                {move || if verifying.get() { "Verifying…" } else { "Verify again" }}
            </button>
        </section>
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

/// The kind filter and the table of its first page.
#[component]
fn EventLog() -> impl IntoView {
    let kind = RwSignal::new(String::new());
    let first = Resource::new(
        move || kind.get(),
        |kind| async move {
            let page = audit_page(None, Some(kind.clone()), None).await?;
            Ok::<_, ServerFnError>((kind, page))
        },
    );
    view! {
        <section class="mt-6" aria-labelledby="audit-events-title">
            <div class="flex flex-wrap items-end justify-between gap-2">
                <h2 id="audit-events-title" class="text-lg font-semibold">"Events"</h2>
                <label class="text-sm">
                    <span class="mr-2 text-slate-600">"Kind"</span>
                    <select
                        data-testid="audit-kind"
                        class=format!("rounded border border-slate-300 bg-white px-2 py-1.5 text-sm {FOCUS}")
                        on:change=move |ev| kind.set(event_target_value(&ev))
                    >
                        <option value="">"All kinds"</option>
                        {KINDS.iter().map(|k| view! { <option value=*k>{k.replace('_', " ")}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500" role="status">"Loading events…"</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Ok((kind, page)) => view! { <EventTable page kind /> }.into_any(),
                        Err(e) => view! { <ErrorBox message=format!("Could not load events: {}", error_text(&e)) /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The rows: a first page, live events prepended as they are committed, older pages on request.
#[component]
fn EventTable(page: AuditEvents, kind: String) -> impl IntoView {
    let rows = RwSignal::new(page.rows);
    let older = RwSignal::new(page.older);
    let gap = RwSignal::new(false);
    let selected = RwSignal::new(None::<i64>);
    let filter = kind.clone();
    let options = FeedOptions {
        run: None,
        after: Some(page.last_seq),
    };
    let _link = use_live_feed(options, move |batch: Vec<ServerMsg>| {
        if batch.iter().any(|m| matches!(m, ServerMsg::Resync { .. })) {
            gap.set(true);
        }
        let events: Vec<&Event> = batch
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Event { event } => Some(&**event),
                _ => None,
            })
            .collect();
        if events.is_empty() {
            return;
        }
        let keep = |e: &Event| filter.is_empty() || e.data.kind() == filter;
        // One update per batch, and none when nothing on the page changes.
        rows.maybe_update(|r| {
            let changed = prepend_live(r, &events, keep, LIVE_CAP);
            if changed && r.len() == LIVE_CAP {
                older.set(r.last().map(|row| row.seq));
            }
            changed
        });
    });
    let more = Action::new(move |before: &i64| {
        let (before, kind) = (*before, kind.clone());
        async move {
            let page = audit_page(Some(before), Some(kind), None).await?;
            rows.update(|r| r.extend(page.rows));
            older.set(page.older);
            Ok::<_, ServerFnError>(())
        }
    });
    let detail = Action::new(|seq: &i64| event_detail(*seq));
    let toggle = move |seq: i64| {
        if selected.get_untracked() == Some(seq) {
            selected.set(None);
        } else {
            selected.set(Some(seq));
            detail.dispatch(seq);
        }
    };
    view! {
        {move || gap.get().then(|| view! {
            <p class="mt-3 rounded border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900" role="note">
                "The live tail fell behind and skipped events. "
                <a class=format!("underline {FOCUS}") href="/audit">"Reload"</a>
                " to see every event."
            </p>
        })}
        <Show
            when=move || !rows.read().is_empty()
            fallback=|| view! {
                <div class="mt-4 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center">
                    <h3 class="font-medium">"No events of this kind yet"</h3>
                    <p class="mt-2 text-sm text-slate-600">"Events appear here as they are recorded: start a run, or choose “All kinds”."</p>
                </div>
            }
        >
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
                    <tbody data-testid="audit-rows" class="divide-y divide-slate-100">
                        <For each=move || rows.get() key=|row| row.seq let:row>
                            <EventRow row selected detail toggle />
                        </For>
                    </tbody>
                </table>
            </div>
        </Show>
        <div class="mt-3 flex flex-wrap items-center gap-3">
            {move || older.get().map(|before| view! {
                <button
                    type="button"
                    class=format!("{BUTTON} {FOCUS}")
                    disabled=move || more.pending().get()
                    on:click=move |_| { more.dispatch(before); }
                >
                    {move || if more.pending().get() { "Loading…" } else { "Older" }}
                </button>
            })}
            {move || (older.get().is_none() && !rows.read().is_empty()).then(|| view! {
                <span class="text-sm text-slate-500">"This reaches the first event."</span>
            })}
        </div>
        {move || match more.value().get() {
            Some(Err(e)) => Some(view! { <ErrorBox message=format!("Could not load older events: {}", error_text(&e)) /> }),
            _ => None,
        }}
    }
}

/// One event; a click (or Enter on its number) shows its full JSON beneath it.
#[component]
fn EventRow(
    row: AuditRow,
    selected: RwSignal<Option<i64>>,
    detail: Action<i64, Result<crate::api::insight::EventJson, ServerFnError>>,
    toggle: impl Fn(i64) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let seq = row.seq;
    let open = move || selected.get() == Some(seq);
    let time = row.ts.get(11..19).unwrap_or(&row.ts).to_string();
    let run = row.run_id.clone().map(|id| {
        let short: String = id.chars().take(8).collect();
        view! {
            <a class=format!("rounded text-indigo-700 underline {FOCUS}") href=format!("/runs/{id}") on:click=|ev| ev.stop_propagation()>{short}</a>
        }
    });
    let chain = if row.prev_hash.is_empty() {
        row.hash.clone()
    } else {
        format!("{} ← {}", row.hash, row.prev_hash)
    };
    view! {
        <tr data-seq=seq data-kind=row.kind.clone() class="cursor-pointer align-top hover:bg-slate-50" on:click=move |_| toggle(seq)>
            <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">
                <button
                    type="button"
                    class=format!("rounded px-1 text-indigo-700 underline-offset-2 hover:underline {FOCUS}")
                    aria-expanded=move || open().to_string()
                    aria-label=format!("Show event {seq} in full")
                >
                    {format!("#{seq}")}
                </button>
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
        {move || open().then(|| view! {
            <tr data-detail-for=seq>
                <td colspan="6" class="bg-slate-50 px-3 py-2">
                    {move || match detail.value().get() {
                        _ if detail.pending().get() => view! {
                            <p class="text-sm text-slate-500" role="status">{format!("Loading event #{seq}…")}</p>
                        }.into_any(),
                        Some(Ok(d)) if d.seq == seq => view! {
                            <div data-testid="event-detail">
                                {d.truncated.then(|| view! {
                                    <p class="mb-2 text-xs text-amber-800">
                                        {format!("Shown in part: the event is {} bytes; the rest is left out.", d.bytes)}
                                    </p>
                                })}
                                <pre class="max-h-96 overflow-auto whitespace-pre rounded bg-slate-900 p-3 font-mono text-xs text-slate-100">{d.json}</pre>
                            </div>
                        }.into_any(),
                        Some(Err(e)) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                        _ => view! { <p class="text-sm text-slate-500">"…"</p> }.into_any(),
                    }}
                </td>
            </tr>
        })}
    }
}
