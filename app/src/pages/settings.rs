//! Settings: the aliases and the chains they try, every provider's status (where its key comes
//! from, whether Ollama answers — never a secret), and what a person may change while Factory
//! runs: providers (added, edited, tested, removed), the aliases' chains, budgets and routing.
//! Each save applies to the next model call and is recorded as a `settings_changed` event,
//! named in the note that confirms it.

mod budgets;
mod chains;
mod provider_form;
mod providers;
mod routing;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{ErrorBox, Frame};
use crate::live::LiveScope;
use crate::server_fns::error_text;
use crate::server_fns::settings::{AliasChain, Saved, SectionSource, SettingsView, get_settings};
use budgets::BudgetsForm;
use chains::ChainsForm;
use provider_form::ProviderForm;
use providers::Providers;
use routing::RoutingForm;

/// Classes of every text, number and select field: visible focus ring, full width on phones.
const FIELD: &str = "mt-1 block w-full rounded border border-slate-300 px-2 py-1 text-sm \
                     focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500";

/// Classes of the Save buttons.
const SAVE: &str = "rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white \
                    hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50 \
                    focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 \
                    focus-visible:ring-offset-2";

const BADGE: &str = "inline-block rounded-full px-2 py-0.5 text-xs font-medium";

#[component]
pub fn SettingsPage() -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_settings());
    // `?edit=NAME` opens a provider in the form (the page's state is in its address).
    let editing = use_query_map().with_untracked(|q| q.get("edit"));
    view! {
        <Frame live=LiveScope::kinds(&["settings_changed"])>
            <h1 class="text-2xl font-semibold">"Settings"</h1>
            <p class="mt-1 text-sm text-slate-600">
                "Models, providers and the limits Factory works within. Every change applies to the next model call, without a restart, and is recorded in the audit log."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4 text-slate-500">"Loading settings…"</p> }>
                {move || {
                    let editing = editing.clone();
                    Suspend::new(async move {
                    match settings.await {
                        Ok(view) => view! { <Sections view editing /> }.into_any(),
                        Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                    }
                    })
                }}
            </Suspense>
        </Frame>
    }
}

#[component]
fn Sections(view: SettingsView, editing: Option<String>) -> impl IntoView {
    let alias_names: Vec<String> = view.aliases.iter().map(|a| a.alias.clone()).collect();
    let chat_aliases: Vec<String> = view
        .editable_aliases
        .iter()
        .filter(|a| *a != "local/embed")
        .cloned()
        .collect();
    let editable: Vec<AliasChain> = view
        .aliases
        .iter()
        .filter(|a| view.editable_aliases.contains(&a.alias))
        .cloned()
        .collect();
    let edited = editing.and_then(|name| {
        view.providers
            .iter()
            .find(|p| p.name == name && p.kind != "offline")
            .cloned()
    });
    view! {
        <div class="mt-6 space-y-8" data-testid="settings">
            <Aliases aliases=view.aliases />
            <ChainsForm chains=editable source=view.providers_source.clone() />
            <Providers providers=view.providers source=view.providers_source />
            <ProviderForm editing=edited chat_aliases />
            // The forms keep what the person typed across live refreshes (data-keep); the
            // source line inside each says where the values in force come from.
            <div data-keep class="contents">
                <BudgetsForm budgets=view.budgets source=view.budgets_source />
            </div>
            <div data-keep class="contents">
                <RoutingForm routing=view.routing aliases=alias_names source=view.routing_source />
            </div>
        </div>
    }
}

/// A section's heading with an optional line beneath it.
#[component]
fn Heading(id: &'static str, title: &'static str, note: &'static str) -> impl IntoView {
    view! {
        <h2 id=id class="text-lg font-semibold">{title}</h2>
        <p class="mt-1 text-sm text-slate-600">{note}</p>
    }
}

#[component]
fn Aliases(aliases: Vec<AliasChain>) -> impl IntoView {
    view! {
        <section aria-labelledby="settings-aliases">
            <Heading id="settings-aliases" title="Aliases" note="Teams ask for an alias; its models are tried in order until one answers. Set in factory.toml, or below." />
            <div class="relative mt-3 overflow-x-auto rounded-lg border border-slate-200 bg-white">
                <table class="min-w-full text-left text-sm" data-testid="settings-aliases">
                    <thead class="bg-slate-50 text-xs uppercase text-slate-500">
                        <tr><th scope="col" class="px-3 py-2">"Alias"</th><th scope="col" class="px-3 py-2">"Chain (tried in order)"</th></tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {aliases.into_iter().map(|a| view! {
                            <tr>
                                <th scope="row" class="whitespace-nowrap px-3 py-2 font-mono font-normal">{a.alias}</th>
                                <td class="px-3 py-2">
                                    <ol class="flex flex-wrap gap-1 font-mono text-xs">
                                        {a.chain.into_iter().enumerate().map(|(i, entry)| view! {
                                            <li class="whitespace-nowrap">
                                                {(i > 0).then_some("→ ")}
                                                <span class="rounded bg-slate-100 px-1.5 py-0.5">{entry}</span>
                                            </li>
                                        }).collect_view()}
                                    </ol>
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// Where a section's values come from.
#[component]
fn SourceLine(source: RwSignal<SectionSource>, testid: &'static str) -> impl IntoView {
    view! {
        <p class="mt-1 text-xs text-slate-500" data-testid=testid>
            "Source: " {move || source.get().label}
        </p>
    }
}

/// The outcome of a save: the recording event, or the server's message.
#[component]
fn Outcome(result: Signal<Option<Result<Saved, String>>>, testid: &'static str) -> impl IntoView {
    move || {
        match result.get() {
        Some(Ok(saved)) => view! {
            <p role="status" class="mt-3 rounded border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800" data-testid=testid data-event=saved.event_seq>
                {format!(
                    "Saved: in force from the next model call. Recorded as event #{} (settings_changed by {} at {}).",
                    saved.event_seq, saved.changed_by, saved.ts
                )}
            </p>
        }
        .into_any(),
        Some(Err(message)) => view! { <ErrorBox message /> }.into_any(),
        None => ().into_any(),
    }
    }
}

/// True once the page runs in the browser: Save stays disabled until then, so a click before
/// hydration cannot submit the form as a plain page request.
fn hydrated() -> RwSignal<bool> {
    let ready = RwSignal::new(false);
    Effect::new(move |_| ready.set(true));
    ready
}

/// The text of a limit or number field: empty for none.
fn number_text(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}
