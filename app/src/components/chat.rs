//! The chat: a composer that submits a requirement (project and pipeline chosen beside it) and
//! a run's conversation — the requirement, the teams' messages, questions for a person with
//! their buttons, and the person's answers. The conversation is rendered on the server (and
//! refreshed live by the page that shows it); the composer and the answer box are islands.

use std::sync::Arc;

use leptos::prelude::*;

use crate::approval::{Approval, ApprovalStatus};
use crate::components::approval_card::ApprovalCard;
use crate::run_view::{ApprovalView, RunView, Speaker};
use crate::server_fns::decide_approval;
use crate::server_fns::runs::start_run;

/// Classes of the chat's text fields.
const FIELD: &str = "mt-1 block w-full rounded border border-slate-300 bg-white px-2 py-1.5 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";
/// Classes of its primary buttons.
const SEND: &str = "rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2";

/// The approval as the card shows it.
pub fn approval_of(run_id: &str, a: &ApprovalView) -> Approval {
    Approval {
        id: a.id.clone(),
        run_id: run_id.to_string(),
        kind: a.kind,
        question: a.question.clone(),
        context: a.context.clone(),
        options: a.options.clone(),
        created_at: a.created_at.clone(),
        deadline: None,
        status: if a.is_pending() {
            ApprovalStatus::Pending
        } else {
            ApprovalStatus::Decided
        },
        decision: a.decision.clone(),
    }
}

/// A new requirement: text, project and pipeline. Once the run has started, the page shows
/// its conversation (`/?chat=<run id>`).
#[island]
pub fn Composer(
    /// Registered projects by name.
    projects: Vec<String>,
    /// Pipelines with their stage counts.
    pipelines: Vec<(String, usize)>,
    /// How the models are set up (the offline provider named as such).
    models_note: String,
) -> impl IntoView {
    let goal = RwSignal::new(String::new());
    let project = RwSignal::new(String::new());
    let pipeline = RwSignal::new("default".to_string());
    let submit = Action::new(|(g, p, l): &(String, String, String)| {
        start_run(g.clone(), Some(p.clone()), Some(l.clone()))
    });
    let pending = submit.pending();
    Effect::new(move |_| {
        if let Some(Ok(id)) = submit.value().get() {
            goal.set(String::new());
            crate::live::navigate(&format!("/?chat={id}"));
        }
    });
    let error = move || match submit.value().get() {
        Some(Err(e)) => Some(crate::server_fns::error_text(&e)),
        _ => None,
    };
    let send = move || {
        let text = goal.get_untracked();
        if text.trim().is_empty() || pending.get_untracked() {
            return;
        }
        submit.dispatch((text, project.get_untracked(), pipeline.get_untracked()));
    };
    view! {
        <form
            class="space-y-3"
            data-testid="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <label class="block text-sm">
                <span class="font-medium text-slate-700">"Requirement"</span>
                <textarea
                    name="goal"
                    data-testid="composer-goal"
                    class="mt-1 block w-full rounded border border-slate-300 p-2 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                    rows="3"
                    placeholder="As a shop owner, I want to export orders as CSV"
                    prop:value=move || goal.get()
                    on:input=move |ev| goal.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                            ev.prevent_default();
                            send();
                        }
                    }
                ></textarea>
            </label>
            <div class="grid grid-cols-2 gap-2">
                <label class="block text-sm">
                    <span class="text-slate-600">"Project"</span>
                    <select class=FIELD data-testid="composer-project" on:change=move |ev| project.set(event_target_value(&ev))>
                        <option value="">"None (artifacts only)"</option>
                        {projects.into_iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="block text-sm">
                    <span class="text-slate-600">"Pipeline"</span>
                    <select class=FIELD data-testid="composer-pipeline" on:change=move |ev| pipeline.set(event_target_value(&ev))>
                        {pipelines.into_iter().map(|(name, stages)| {
                            let selected = name == "default";
                            view! { <option value=name.clone() selected=selected>{format!("{name} ({stages} stages)")}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            <p class="text-xs text-slate-500" data-testid="models-note">{models_note}</p>
            <div class="flex items-center justify-between gap-2">
                <span class="text-xs text-slate-500">"Ctrl+Enter sends"</span>
                <button
                    type="submit"
                    data-testid="composer-send"
                    class=SEND
                    disabled=move || pending.get() || goal.get().trim().is_empty()
                >
                    {move || if pending.get() { "Starting…" } else { "Start run" }}
                </button>
            </div>
            {move || error().map(|e| view! { <p role="alert" class="text-sm text-red-700">{e}</p> })}
        </form>
    }
}

/// A run's conversation; a pending question that needs words can be answered from the box.
#[component]
pub fn Conversation(view: Arc<RunView>) -> impl IntoView {
    // The first pending approval that takes words with its `answer`-like option.
    let answerable = view.pending_approvals().find_map(|a| {
        a.options
            .iter()
            .find(|o| o.needs_text && (o.id == "answer" || o.id == "guidance"))
            .map(|o| (a.id.clone(), o.id.clone(), a.question.clone()))
    });
    let run_id = view.id.clone();
    let messages = view.chat.iter().map(|m| {
        let (who, bubble) = match &m.from {
            Speaker::User => ("You".to_string(), "ml-8 bg-indigo-50 border-indigo-200"),
            Speaker::Team(t) => (t.clone(), "mr-8 bg-white border-slate-200"),
            Speaker::Factory => ("Factory".to_string(), "mr-8 bg-amber-50 border-amber-200"),
        };
        let card = m.approval_id.as_ref().and_then(|id| {
            view.approvals
                .iter()
                .find(|a| &a.id == id && a.is_pending())
                .map(|a| approval_of(&run_id, a))
        });
        view! {
            <div role="listitem" class=format!("rounded-lg border px-3 py-2 text-sm {bubble}") data-seq=m.seq>
                <p class="text-xs font-medium text-slate-500">{who}</p>
                <p class="mt-0.5 whitespace-pre-wrap break-words">{m.text.clone()}</p>
                {card.map(|approval| view! { <div class="mt-2"><ApprovalCard approval /></div> })}
            </div>
        }
    }).collect_view();
    view! {
        // Messages are divs with list roles, not <li>: an approval card (itself an <li>) inside
        // an <li> would be split apart by the HTML parser.
        <div role="list" class="max-h-[32rem] space-y-2 overflow-y-auto pr-1" data-testid="chat" aria-live="polite">
            {messages}
        </div>
        {match answerable {
            Some((id, option, question)) => view! { <ChatReply id option question /> }.into_any(),
            None => view! {
                <div class="mt-3 flex gap-2">
                    <input data-testid="chat-reply" disabled placeholder="Nothing to answer right now" aria-label="Answer"
                        class="min-w-0 flex-1 rounded border border-slate-300 bg-slate-100 px-2 py-1.5 text-sm" />
                    <button type="button" data-testid="chat-send" disabled class=SEND>"Send"</button>
                </div>
            }.into_any(),
        }}
    }
}

/// The chat's answer box for the question waiting for words.
#[island]
fn ChatReply(
    /// The approval the answer decides.
    id: String,
    /// Its option that takes words (`answer` or `guidance`).
    option: String,
    question: String,
) -> impl IntoView {
    let reply = RwSignal::new(String::new());
    let decide = Action::new(|(id, option, text): &(String, String, String)| {
        decide_approval(id.clone(), option.clone(), Some(text.clone()))
    });
    let sending = decide.pending();
    let (done, error) = crate::live::refresh_on_success(decide);
    Effect::new(move |_| {
        if done.get() {
            reply.set(String::new());
        }
    });
    let send = move || {
        let text = reply.get_untracked();
        if text.trim().is_empty() || sending.get_untracked() || done.get_untracked() {
            return;
        }
        decide.dispatch((id.clone(), option.clone(), text));
    };
    view! {
        <form
            class="mt-3 flex gap-2"
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <label class="sr-only" for="chat-reply">"Answer"</label>
            <input
                id="chat-reply"
                data-testid="chat-reply"
                class="min-w-0 flex-1 rounded border border-slate-300 px-2 py-1.5 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                maxlength="4000"
                placeholder=format!("Answer: {question}")
                prop:value=move || reply.get()
                on:input=move |ev| reply.set(event_target_value(&ev))
            />
            <button
                type="submit"
                data-testid="chat-send"
                class=SEND
                disabled=move || sending.get() || done.get() || reply.get().trim().is_empty()
            >
                "Send"
            </button>
        </form>
        {move || error.get().map(|e| view! { <p role="alert" class="mt-1 text-sm text-red-700">{e}</p> })}
    }
}
