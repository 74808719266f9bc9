//! What the graph's selection shows: a stage's TaskResult with its model, tokens and cost; a
//! clarification's question and answer with the answering calls; a work order's branch,
//! commit, pull request and gates; a team's operatives.

use std::sync::Arc;

use leptos::prelude::*;

use super::RunQuery;
use crate::components::artifact::DiffView;
use crate::graph::Selection;
use crate::run_view::{RunView, Usage};

fn list(title: &'static str, items: Vec<String>) -> impl IntoView {
    (!items.is_empty()).then(|| {
        view! {
            <div class="mt-2">
                <h4 class="text-xs font-medium uppercase tracking-wide text-slate-500">{title}</h4>
                <ul class="mt-1 list-disc space-y-0.5 pl-5 text-sm">
                    {items.into_iter().map(|i| view! { <li class="break-words">{i}</li> }).collect_view()}
                </ul>
            </div>
        }
    })
}

fn usage(u: &Usage) -> impl IntoView + use<> {
    let model = u
        .model
        .clone()
        .unwrap_or_else(|| "no model call yet".into());
    let offline = model.starts_with("offline:");
    view! {
        <dl class="mt-2 grid grid-cols-2 gap-x-4 gap-y-1 text-sm sm:grid-cols-4" data-testid="usage">
            <div><dt class="text-xs text-slate-500">"Model"</dt><dd class="break-all">{model} {offline.then_some(" (offline templates, not an LLM)")}</dd></div>
            <div><dt class="text-xs text-slate-500">"Calls"</dt><dd class="tabular-nums">{u.calls}</dd></div>
            <div><dt class="text-xs text-slate-500">"Tokens in / out"</dt><dd class="tabular-nums">{format!("{} / {}", u.input_tokens, u.output_tokens)}</dd></div>
            <div><dt class="text-xs text-slate-500">"Cost"</dt><dd class="tabular-nums">{format!("${:.4}", u.cost_usd)}</dd></div>
        </dl>
    }
}

#[component]
pub fn Detail(view: Arc<RunView>, state: RunQuery) -> impl IntoView {
    view! {
        <section class="rounded-lg border border-slate-200 bg-white p-4" aria-label="Detail" aria-live="polite" data-testid="detail">
            {selected(&view, state.sel)}
        </section>
    }
}

/// What the panel shows for `selection` in `run`, or how to choose something.
fn selected(run: &RunView, selection: Option<Selection>) -> AnyView {
    let Some(selection) = selection else {
        return view! {
            <p class="text-sm text-slate-500">"Select a team, stage, work order or clarification on the graph to see its detail (Tab to reach them, Enter to open)."</p>
        }
        .into_any();
    };
    match selection {
        Selection::Stage(index) => match run.stages.iter().find(|s| s.index == index) {
            Some(stage) => {
                let result = stage.result.clone();
                view! {
                    <h3 class="font-medium">{format!("{} · {}", stage.name, stage.team)}</h3>
                    <p class="text-sm text-slate-600">{format!("State: {}{}", stage.state.as_str(), if stage.attempts > 0 { format!(" · {} failed attempts", stage.attempts) } else { String::new() })}</p>
                    {stage.error.clone().map(|e| view! { <p class="mt-1 text-sm text-red-700">{e}</p> })}
                    {usage(&stage.usage)}
                    {match result {
                        Some(r) => view! {
                            <div class="mt-3 rounded border border-slate-200 p-3" data-testid="task-result">
                                <p class="text-sm"><span class="rounded bg-slate-100 px-1.5 py-0.5 font-mono text-xs">{r.status.as_str()}</span></p>
                                <p class="mt-2 whitespace-pre-wrap text-sm">{r.reasoning.clone()}</p>
                                {r.question.clone().map(|q| view! { <p class="mt-2 text-sm text-violet-800">"Asked " {q}</p> })}
                                {list("Blockers", r.blockers.clone())}
                                {list("Assumptions made", r.assumptions_made.clone())}
                                {list("Verified facts", r.verified_facts.clone())}
                                {list("Artifacts", r.artifacts.iter().map(|(n, b)| format!("{n} ({b} bytes)")).collect())}
                                {list("Edited files", r.edited_paths.clone())}
                                {list("Work orders planned", r.work_orders.iter().map(|w| format!("{} · {} ({} risk, confidence {:.2})", w.id, w.title, w.risk.as_str(), w.confidence)).collect())}
                            </div>
                        }.into_any(),
                        None => view! { <p class="mt-2 text-sm text-slate-500">"No result yet."</p> }.into_any(),
                    }}
                }
                .into_any()
            }
            None => view! { <p class="text-sm text-slate-500">"That stage is not in this run."</p> }.into_any(),
        },
        Selection::Clarification(id) => match run.clarifications.iter().find(|c| c.id == id) {
            Some(c) => view! {
                <h3 class="font-medium">{format!("{} asked {}", c.asking_team, c.target_team)}</h3>
                <p class="text-sm text-slate-600">{format!("State: {} · hop depth {}", c.state, c.depth)}</p>
                <div class="mt-2 text-sm" data-testid="clarification-detail">
                    <h4 class="text-xs font-medium uppercase tracking-wide text-slate-500">"Question"</h4>
                    <p class="whitespace-pre-wrap">{c.question.clone()}</p>
                    {c.answer.clone().map(|a| view! {
                        <h4 class="mt-2 text-xs font-medium uppercase tracking-wide text-slate-500">{format!("Answer ({})", c.answered_by.clone().unwrap_or_default())}</h4>
                        <p class="whitespace-pre-wrap">{a}</p>
                    })}
                    {c.refusal.clone().map(|r| view! {
                        <h4 class="mt-2 text-xs font-medium uppercase tracking-wide text-slate-500">"Refused"</h4>
                        <p class="whitespace-pre-wrap text-red-700">{r}</p>
                    })}
                </div>
                {usage(&c.usage)}
            }
            .into_any(),
            None => view! { <p class="text-sm text-slate-500">"That clarification is not in this run."</p> }.into_any(),
        },
        Selection::WorkOrder(id) => match run.work_orders.iter().find(|w| w.id == id) {
            Some(w) => {
                let delivered = w.commit.is_some();
                let run_id = run.id.clone();
                let wo_id = w.id.clone();
                view! {
                    <h3 class="font-medium">{format!("{} · {}", w.id, w.title)}</h3>
                    <dl class="mt-2 grid grid-cols-1 gap-1 text-sm sm:grid-cols-2">
                        <div><dt class="text-xs text-slate-500">"State"</dt><dd>{w.state.clone()}</dd></div>
                        <div><dt class="text-xs text-slate-500">"Branch"</dt><dd class="break-all font-mono text-xs">{w.branch.clone().unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt class="text-xs text-slate-500">"Commit"</dt><dd class="break-all font-mono text-xs">{w.commit.clone().unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt class="text-xs text-slate-500">"Pull request"</dt><dd>{match w.pull_request.clone() {
                            Some(url) => view! { <a class="break-all text-indigo-700 underline" href=url.clone() rel="noopener noreferrer" target="_blank">{url.clone()}</a> }.into_any(),
                            None => view! { <span>{if w.pushed { "pushed, no pull request" } else { "—" }}</span> }.into_any(),
                        }}</dd></div>
                        <div><dt class="text-xs text-slate-500">"Model / cost"</dt><dd>{format!("{} · ${:.4}", w.model.clone().unwrap_or_else(|| "—".into()), w.cost_usd)}</dd></div>
                    </dl>
                    {(!w.gates.is_empty()).then(|| view! {
                        <div class="mt-2 overflow-x-auto">
                            <table class="min-w-full text-left text-sm" data-testid="gates">
                                <thead class="text-xs text-slate-500"><tr><th class="pr-3">"Gate"</th><th class="pr-3">"Sandbox"</th><th class="pr-3">"Result"</th><th>"Time"</th></tr></thead>
                                <tbody>
                                    {w.gates.iter().map(|g| view! {
                                        <tr>
                                            <td class="pr-3 font-mono text-xs">{g.command.clone()}</td>
                                            <td class="pr-3">{g.sandbox.clone()}</td>
                                            <td class={if g.passed { "pr-3 text-emerald-700" } else { "pr-3 text-red-700" }}>{if g.passed { "passed".to_string() } else { match g.exit_code { Some(code) => format!("failed (exit {code})"), None => "failed (no exit code)".to_string() } }}</td>
                                            <td class="tabular-nums">{format!("{} ms", g.duration_ms)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    })}
                    {list("Files", w.files.clone())}
                    {delivered.then(|| view! { <div class="mt-3"><DiffView run_id=run_id work_order_id=wo_id /></div> })}
                }
                .into_any()
            }
            None => view! { <p class="text-sm text-slate-500">"That work order is not in this run."</p> }.into_any(),
        },
        Selection::Team(name) => {
            let card = run.teams.iter().find(|t| t.name == name).cloned();
            view! {
                <h3 class="font-medium">{card.as_ref().map_or(name.clone(), |c| format!("{} ({})", c.title, c.name))}</h3>
                {list("Operatives", card.map(|c| c.operatives).unwrap_or_default())}
                {list("Stages in this run", run.stages.iter().filter(|s| s.team == name).map(|s| format!("{} — {}", s.name, s.state.as_str())).collect())}
            }
            .into_any()
        }
    }
}
