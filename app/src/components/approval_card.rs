//! One approval as a card: the question, its context, one button per option and a text box
//! where an option needs words. Used by the Approvals page, the run page and the chat.

use leptos::prelude::*;

use crate::approval::{Approval, ApprovalOption};
use crate::server_fns::decide_approval;

/// One approval with a button per option and a text box where an option needs words. The card
/// is rendered on the server; only its buttons and text box ([`Decide`]) run in the browser.
#[component]
pub fn ApprovalCard(
    approval: Approval,
    /// Show which run it belongs to, with a link (the Approvals page; not the run's own page).
    #[prop(optional)]
    show_run: bool,
) -> impl IntoView {
    let kind = approval.kind.as_str();
    view! {
        <li class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" data-approval-id=approval.id.clone() data-kind=kind>
            <div class="flex flex-wrap items-center gap-2 text-xs text-slate-500">
                <span class="rounded-full bg-amber-100 px-2 py-0.5 font-medium text-amber-800">{kind}</span>
                {show_run.then(|| view! {
                    <a class="rounded underline hover:text-indigo-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href=format!("/runs/{}", approval.run_id)>
                        "run " {approval.run_id.chars().take(8).collect::<String>()}
                    </a>
                })}
            </div>
            <p class="mt-2 font-medium">{approval.question.clone()}</p>
            {(!approval.context.is_empty()).then(|| view! {
                <pre class="mt-2 max-h-48 overflow-auto whitespace-pre-wrap rounded bg-slate-50 p-2 text-xs text-slate-700">{approval.context.clone()}</pre>
            })}
            <Decide id=approval.id.clone() options=approval.options.clone() />
        </li>
    }
}

/// The card's controls. After a decision went through, every button stays disabled (a double
/// click cannot decide twice) and the page refreshes, which removes the card.
#[island]
fn Decide(id: String, options: Vec<ApprovalOption>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let decide = Action::new(|(id, option, text): &(String, String, Option<String>)| {
        decide_approval(id.clone(), option.clone(), text.clone())
    });
    let pending = decide.pending();
    let (done, error) = crate::live::refresh_on_success(decide);
    let needs_text = options.iter().any(|o| o.needs_text);
    view! {
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
            {options.into_iter().map(|o| {
                let id = id.clone();
                let option = o.id.clone();
                let needs = o.needs_text;
                view! {
                    <button
                        type="button"
                        data-option=o.id.clone()
                        class="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2"
                        disabled=move || pending.get() || done.get() || (needs && text.get().trim().is_empty())
                        on:click=move |_| {
                            if pending.get_untracked() || done.get_untracked() {
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
        {move || pending.get().then(|| view! {
            <p role="status" class="mt-2 text-sm text-slate-500">"Deciding…"</p>
        })}
        {move || done.get().then(|| view! {
            <p role="status" class="mt-2 text-sm text-emerald-700" data-testid="decided">"Decided — the run continues."</p>
        })}
        {move || error.get().map(|e| view! {
            <p role="alert" class="mt-2 text-sm text-red-700">{e}</p>
        })}
    }
}
