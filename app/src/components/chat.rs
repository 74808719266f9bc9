//! The chat: a composer that submits a requirement (project and pipeline chosen beside it) and
//! a run's conversation — the requirement, the teams' messages, questions for a person with
//! their buttons, and the person's answers — kept live by the page that owns the run.

use leptos::prelude::*;

use crate::api::decide_approval;
use crate::api::runs::{get_composer_options, start_run};
use crate::approval::Approval;
use crate::components::approval_card::ApprovalCard;
use crate::run_view::{ApprovalView, RunView, Speaker};

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
        status: if a.is_pending() { "pending" } else { "decided" }.into(),
        decision: a.decision.clone(),
    }
}

/// A new requirement: text, project and pipeline. `on_started` receives the new run's id.
#[component]
pub fn Composer(on_started: Callback<String>) -> impl IntoView {
    let options = Resource::new(|| (), |_| get_composer_options());
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
            on_started.run(id);
        }
    });
    let error = move || match submit.value().get() {
        Some(Err(e)) => Some(crate::api::error_text(&e)),
        _ => None,
    };
    let send = move || {
        let text = goal.get_untracked();
        if text.trim().is_empty() || pending.get_untracked() {
            return;
        }
        submit.dispatch((text, project.get_untracked(), pipeline.get_untracked()));
    };
    let select_class = "mt-1 block w-full rounded border border-slate-300 bg-white px-2 py-1.5 text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";
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
            <Suspense fallback=|| view! { <p class="text-xs text-slate-500">"Loading projects and pipelines…"</p> }>
                {move || Suspend::new(async move {
                    match options.await {
                        Ok(o) => view! {
                            <div class="grid grid-cols-2 gap-2">
                                <label class="block text-sm">
                                    <span class="text-slate-600">"Project"</span>
                                    <select class=select_class data-testid="composer-project" on:change=move |ev| project.set(event_target_value(&ev))>
                                        <option value="">"None (artifacts only)"</option>
                                        {o.projects.into_iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                                <label class="block text-sm">
                                    <span class="text-slate-600">"Pipeline"</span>
                                    <select class=select_class data-testid="composer-pipeline" on:change=move |ev| pipeline.set(event_target_value(&ev))>
                                        {o.pipelines.into_iter().map(|(name, stages)| {
                                            let selected = name == "default";
                                            view! { <option value=name.clone() selected=selected>{format!("{name} ({stages} stages)")}</option> }
                                        }).collect_view()}
                                    </select>
                                </label>
                            </div>
                            <p class="text-xs text-slate-500" data-testid="models-note">{o.models_note}</p>
                        }.into_any(),
                        Err(e) => view! { <crate::pages::ErrorBox message=crate::api::error_text(&e) /> }.into_any(),
                    }
                })}
            </Suspense>
            <div class="flex items-center justify-between gap-2">
                <span class="text-xs text-slate-500">"Ctrl+Enter sends"</span>
                <button
                    type="submit"
                    data-testid="composer-send"
                    class="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2"
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
pub fn Conversation(view: RwSignal<RunView>) -> impl IntoView {
    let run_id = view.with_untracked(|v| v.id.clone());
    // The first pending approval that takes words with its `answer`-like option.
    let answerable = move || {
        view.with(|v| {
            v.pending_approvals().find_map(|a| {
                a.options
                    .iter()
                    .find(|o| o.needs_text && (o.id == "answer" || o.id == "guidance"))
                    .map(|o| (a.id.clone(), o.id.clone(), a.question.clone()))
            })
        })
    };
    let reply = RwSignal::new(String::new());
    let decide = Action::new(|(id, option, text): &(String, String, String)| {
        decide_approval(id.clone(), option.clone(), Some(text.clone()))
    });
    let sending = decide.pending();
    Effect::new(move |_| {
        if let Some(Ok(())) = decide.value().get() {
            reply.set(String::new());
        }
    });
    let error = move || match decide.value().get() {
        Some(Err(e)) => Some(crate::api::error_text(&e)),
        _ => None,
    };
    let send = move || {
        let text = reply.get_untracked();
        if text.trim().is_empty() || sending.get_untracked() {
            return;
        }
        if let Some((id, option, _)) = answerable() {
            decide.dispatch((id, option, text));
        }
    };
    view! {
        // Messages are divs with list roles, not <li>: an approval card (itself an <li>) inside
        // an <li> would be split apart by the HTML parser and break hydration.
        <div role="list" class="max-h-[32rem] space-y-2 overflow-y-auto pr-1" data-testid="chat" aria-live="polite">
            <For
                each=move || view.with(|v| v.chat.iter().cloned().collect::<Vec<_>>())
                key=|m| m.seq
                children=move |m| {
                    let run_id = run_id.clone();
                    let approval = m.approval_id.clone();
                    let (who, bubble) = match &m.from {
                        Speaker::User => ("You".to_string(), "ml-8 bg-indigo-50 border-indigo-200"),
                        Speaker::Team(t) => (t.clone(), "mr-8 bg-white border-slate-200"),
                        Speaker::Factory => ("Factory".to_string(), "mr-8 bg-amber-50 border-amber-200"),
                    };
                    view! {
                        <div role="listitem" class=format!("rounded-lg border px-3 py-2 text-sm {bubble}") data-seq=m.seq>
                            <p class="text-xs font-medium text-slate-500">{who}</p>
                            <p class="mt-0.5 whitespace-pre-wrap break-words">{m.text.clone()}</p>
                            {approval.map(|id| {
                                let run_id = run_id.clone();
                                move || {
                                    let pending = view.with(|v| {
                                        v.approvals.iter().find(|a| a.id == id && a.is_pending()).map(|a| approval_of(&run_id, a))
                                    });
                                    pending.map(|a| view! { <div class="mt-2"><ApprovalCard approval=a /></div> })
                                }
                            })}
                        </div>
                    }
                }
            />
        </div>
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
                class="min-w-0 flex-1 rounded border border-slate-300 px-2 py-1.5 text-sm disabled:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                maxlength="4000"
                placeholder=move || match answerable() {
                    Some((_, _, q)) => format!("Answer: {q}"),
                    None => "Nothing to answer right now".to_string(),
                }
                disabled=move || answerable().is_none()
                prop:value=move || reply.get()
                on:input=move |ev| reply.set(event_target_value(&ev))
            />
            <button
                type="submit"
                data-testid="chat-send"
                class="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2"
                disabled=move || answerable().is_none() || sending.get() || reply.get().trim().is_empty()
            >
                "Send"
            </button>
        </form>
        {move || error().map(|e| view! { <p role="alert" class="mt-1 text-sm text-red-700">{e}</p> })}
    }
}
