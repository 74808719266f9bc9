//! Approvals: every decision waiting for a person, one button per option and a text box where
//! the option needs words. Kept current over the WebSocket; a button is disabled while its
//! decision is on its way, so a double click cannot decide twice.

use leptos::prelude::*;

use super::Frame;
use crate::api::{decide_approval, pending_approvals};
use crate::approval::Approval;
use crate::events::EventData;
use crate::live::use_live_feed;
use crate::protocol::ServerMsg;

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let approvals = Resource::new(|| (), |_| pending_approvals());
    // Any approval that appears or is decided elsewhere refreshes the list.
    let link = use_live_feed(move |msg| {
        if let ServerMsg::Event { event } = msg
            && matches!(
                event.data,
                EventData::ApprovalRequested { .. } | EventData::ApprovalDecided { .. }
            )
        {
            approvals.refetch();
        }
    });
    view! {
        <Frame>
            <h1 class="text-2xl font-semibold">"Approvals"</h1>
            <p class="mt-1 text-sm text-slate-600" data-link=move || link.get().as_str()>
                "Decisions waiting for you. A run continues the moment you decide."
                {move || (link.get().as_str() != "live").then_some(" (connecting…)")}
            </p>
            <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading approvals…"</p> }>
                {move || Suspend::new(async move {
                    match approvals.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="no-approvals">
                                <h2 class="text-lg font-medium">"Nothing waits for you"</h2>
                                <p class="mt-2 text-sm text-slate-600">
                                    "Plans, clarifications, blocked stages, budgets and final reviews appear here when a run needs a person."
                                </p>
                            </div>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="mt-4 space-y-4">
                                {list.into_iter().map(|a| view! { <ApprovalCard approval=a /> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(err) => view! {
                            <p role="alert" class="mt-4 rounded border border-red-200 bg-red-50 px-3 py-2 text-red-800">
                                {format!("Could not load approvals: {err}")}
                            </p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </Frame>
    }
}

#[component]
fn ApprovalCard(approval: Approval) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let decide = Action::new(|(id, option, text): &(String, String, Option<String>)| {
        decide_approval(id.clone(), option.clone(), text.clone())
    });
    let pending = decide.pending();
    let error = move || match decide.value().get() {
        Some(Err(e)) => Some(
            e.to_string()
                .trim_start_matches("error running server function: ")
                .to_string(),
        ),
        _ => None,
    };
    let needs_text = approval.options.iter().any(|o| o.needs_text);
    let id = approval.id.clone();
    let kind = approval.kind.as_str();
    view! {
        <li class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" data-approval-id=approval.id.clone() data-kind=kind>
            <div class="flex flex-wrap items-center gap-2 text-xs text-slate-500">
                <span class="rounded-full bg-amber-100 px-2 py-0.5 font-medium text-amber-800">{kind}</span>
                <span>"run " {approval.run_id.chars().take(8).collect::<String>()}</span>
            </div>
            <p class="mt-2 font-medium">{approval.question.clone()}</p>
            {(!approval.context.is_empty()).then(|| view! {
                <pre class="mt-2 max-h-48 overflow-auto whitespace-pre-wrap rounded bg-slate-50 p-2 text-xs text-slate-700">{approval.context.clone()}</pre>
            })}
            {needs_text.then(|| view! {
                <label class="mt-3 block text-sm">
                    <span class="text-slate-600">"Your words (answer, guidance or feedback)"</span>
                    <textarea
                        class="mt-1 block w-full rounded border border-slate-300 p-2 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                        rows="3"
                        maxlength="4000"
                        prop:value=move || text.get()
                        on:input=move |ev| text.set(event_target_value(&ev))
                    ></textarea>
                </label>
            })}
            <div class="mt-3 flex flex-wrap gap-2">
                {approval.options.into_iter().map(|o| {
                    let id = id.clone();
                    let option = o.id.clone();
                    let needs = o.needs_text;
                    view! {
                        <button
                            type="button"
                            data-option=o.id.clone()
                            class="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2"
                            disabled=move || pending.get() || (needs && text.get().trim().is_empty())
                            on:click=move |_| {
                                if pending.get_untracked() {
                                    return;
                                }
                                let words = text.get_untracked();
                                let words = (!words.trim().is_empty()).then_some(words);
                                decide.dispatch((id.clone(), option.clone(), words));
                            }
                        >
                            {o.label.clone()}
                        </button>
                    }
                }).collect_view()}
            </div>
            {move || error().map(|e| view! {
                <p role="alert" class="mt-2 text-sm text-red-700">{e}</p>
            })}
        </li>
    }
}
