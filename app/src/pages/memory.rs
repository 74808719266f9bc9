//! Memory: search what the teams retained (facts and artifact summaries) by words and bank.
//! The form is a plain GET form (`/memory?q=…&bank=…`), so it works without scripts; with
//! them the results replace the old ones without a reload. They are rendered on the server.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{ErrorBox, Frame};
use crate::live::LiveScope;
use crate::server_fns::error_text;
use crate::server_fns::memory::{MAX_QUERY_BYTES, MemoryResult, memory_banks, search_memory};

const FOCUS: &str = "focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-1";

/// The Memory page: search form, then the hits or what to do when there are none.
#[component]
pub fn MemoryPage() -> impl IntoView {
    let query = use_query_map();
    let (q, bank) = query.with_untracked(|query| {
        (
            query.get("q").unwrap_or_default().trim().to_string(),
            query.get("bank").filter(|b| !b.trim().is_empty()),
        )
    });
    let banks = Resource::new(|| (), |_| memory_banks());
    let (shown_q, shown_bank) = (q.clone(), bank.clone());
    let hits = Resource::new(
        move || (q.clone(), bank.clone()),
        |(q, bank)| async move {
            if q.is_empty() {
                return Ok(None);
            }
            let list = search_memory(q.clone(), bank.clone(), None).await?;
            Ok(Some((q, bank, list)))
        },
    );
    view! {
        <Frame live=LiveScope::kinds(&["memory_retained"])>
            <h1 class="text-2xl font-semibold">"Memory"</h1>
            <p class="mt-1 text-sm text-slate-600">
                "What the teams learnt in earlier runs: verified facts and artifact summaries, one bank per team plus a shared one."
            </p>
            <form method="get" action="/memory" data-soft>
                <div class="mt-4 flex flex-col gap-2 sm:flex-row sm:items-end" role="search">
                    <label class="block flex-1 text-sm">
                        <span class="text-slate-600">"Words to look for"</span>
                        <input
                            type="search"
                            name="q"
                            required
                            maxlength=MAX_QUERY_BYTES
                            placeholder="e.g. CSV export"
                            value=shown_q
                            data-testid="memory-q"
                            class=format!("mt-1 block w-full rounded border border-slate-300 px-3 py-2 text-sm {FOCUS}")
                        />
                    </label>
                    <Suspense fallback=|| view! { <BankSelect banks=Vec::new() current=None /> }>
                        {move || {
                            let current = shown_bank.clone();
                            Suspend::new(async move {
                                let names = banks.await.unwrap_or_default();
                                view! { <BankSelect banks=names current /> }
                            })
                        }}
                    </Suspense>
                    <button
                        type="submit"
                        class=format!("rounded bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-700 {FOCUS}")
                    >
                        "Search"
                    </button>
                </div>
            </form>
            <div class="mt-4" aria-live="polite">
                <Suspense fallback=|| view! { <p class="text-sm text-slate-500" role="status">"Searching memory…"</p> }>
                    {move || Suspend::new(async move {
                        match hits.await {
                            Ok(None) => view! { <EmptyMemory searched=None /> }.into_any(),
                            Ok(Some((q, bank, list))) if list.is_empty() => {
                                view! { <EmptyMemory searched=Some((q, bank)) /> }.into_any()
                            }
                            Ok(Some((_, _, list))) => view! {
                                <p class="text-sm text-slate-600">{match list.len() { 1 => "1 match, best first".to_string(), n => format!("{n} matches, best first") }}</p>
                                <ul class="mt-2 space-y-3" data-testid="memory-results">
                                    {list.into_iter().map(|hit| view! { <Hit hit /> }).collect_view()}
                                </ul>
                            }
                            .into_any(),
                            Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </Frame>
    }
}

/// The bank chooser: every bank, or all of them (the form's `bank` field).
#[component]
fn BankSelect(banks: Vec<String>, current: Option<String>) -> impl IntoView {
    view! {
        <label class="block text-sm sm:w-64">
            <span class="text-slate-600">"Bank"</span>
            <select
                name="bank"
                data-testid="memory-bank"
                class=format!("mt-1 block w-full rounded border border-slate-300 bg-white px-3 py-2 text-sm {FOCUS}")
            >
                <option value="">"All banks"</option>
                {banks.into_iter().map(|name| {
                    let selected = current.as_deref() == Some(name.as_str());
                    view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

/// What to do when there is nothing to show: before a search, or when nothing matched.
#[component]
fn EmptyMemory(searched: Option<(String, Option<String>)>) -> impl IntoView {
    let heading = match &searched {
        None => "Search the teams' memory".to_string(),
        Some((q, bank)) => format!(
            "Nothing in {} matches “{q}”",
            bank.as_deref().unwrap_or("any bank")
        ),
    };
    view! {
        <div class="rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="memory-empty">
            <h2 class="text-lg font-medium">{heading}</h2>
            <p class="mt-2 text-sm text-slate-600">
                "Memory fills as runs complete: facts and artifact summaries are retained per team and in the shared bank. "
                "Type a few words above; try other words or “All banks” when nothing is found."
            </p>
        </div>
    }
}

/// Characters of a hit shown before the rest is folded away.
const PREVIEW_CHARS: usize = 400;

/// One memory item with its bank and kind; long text is folded until opened.
#[component]
fn Hit(hit: MemoryResult) -> impl IntoView {
    let kind = match hit.kind.as_str() {
        "artifact_summary" => "artifact summary".to_string(),
        other => other.to_string(),
    };
    let long = hit.text.chars().count() > PREVIEW_CHARS;
    let preview: String = hit.text.chars().take(PREVIEW_CHARS).collect::<String>() + "…";
    let text = if long {
        view! {
            <details class="mt-2 text-sm text-slate-800">
                <summary class=format!("cursor-pointer whitespace-pre-wrap break-words rounded {FOCUS}")>
                    {preview}
                    <span class="ml-1 text-indigo-700 underline">"Show all"</span>
                </summary>
                <p class="mt-2 whitespace-pre-wrap break-words">{hit.text.clone()}</p>
            </details>
        }
        .into_any()
    } else {
        view! { <p class="mt-2 whitespace-pre-wrap break-words text-sm text-slate-800">{hit.text.clone()}</p> }.into_any()
    };
    view! {
        <li class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" data-item-id=hit.item_id.clone() data-bank=hit.bank.clone()>
            <div class="flex flex-wrap items-center gap-2 text-xs">
                <span class="rounded-full bg-indigo-100 px-2 py-0.5 font-medium text-indigo-800">{hit.bank.clone()}</span>
                <span class="rounded-full bg-slate-100 px-2 py-0.5 font-medium text-slate-700">{kind}</span>
                {hit.run_id.clone().map(|run| {
                    let short: String = run.chars().take(8).collect();
                    view! {
                        <a class=format!("rounded text-indigo-700 underline {FOCUS}") href=format!("/runs/{run}")>{format!("run {short}")}</a>
                    }
                })}
                <span class="text-slate-500">{hit.created_at.chars().take(10).collect::<String>()}</span>
            </div>
            {text}
        </li>
    }
}
