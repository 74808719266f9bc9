//! The chains editor: for each canonical alias, the ordered `provider:model` entries it tries
//! (comma-separated). Saved chains are applied over `factory.toml` by alias; a chain equal to
//! the file's is the file's again.

use std::collections::BTreeMap;

use leptos::prelude::*;

use super::{FIELD, Heading, Outcome, SAVE, SourceLine};
use crate::server_fns::error_text;
use crate::server_fns::settings::{AliasChain, AliasSettings, SectionSource, update_aliases};

#[island]
pub fn ChainsForm(chains: Vec<AliasChain>, source: SectionSource) -> impl IntoView {
    let rows: Vec<(String, RwSignal<String>)> = chains
        .into_iter()
        .map(|c| (c.alias, RwSignal::new(c.chain.join(", "))))
        .collect();
    let source = RwSignal::new(source);
    let save = Action::new(|a: &AliasSettings| update_aliases(a.clone()));
    let _ = crate::live::refresh_on_success(save);
    let pending = save.pending();
    let ready = super::hydrated();
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            source.set(saved.source);
        }
    });
    let result = Signal::derive(move || save.value().get().map(|r| r.map_err(|e| error_text(&e))));
    let typed = rows.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let chains: BTreeMap<String, Vec<String>> = typed
            .iter()
            .map(|(alias, text)| {
                let chain = text
                    .get_untracked()
                    .split([',', '\n'])
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
                (alias.clone(), chain)
            })
            .collect();
        save.dispatch(AliasSettings { chains });
    };
    view! {
        <section aria-labelledby="settings-chains" class="rounded-lg border border-slate-200 bg-white p-4">
            <Heading id="settings-chains" title="Chains" note="Each alias's models, tried in order, as provider:model separated by commas. End a chain with offline:template only if its templates may stand in." />
            <SourceLine source testid="settings-chains-source" />
            <form novalidate on:submit=submit data-ready=move || ready.get().then_some("true") class="mt-3 space-y-3">
                {rows.into_iter().map(|(alias, text)| view! {
                    <label class="block text-sm">
                        <span class="font-mono">{alias.clone()}</span>
                        <input type="text" class=FIELD maxlength="4000" data-testid=format!("chain-{alias}")
                            prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) />
                    </label>
                }).collect_view()}
                <button type="submit" class=SAVE disabled=move || pending.get() || !ready.get() data-testid="settings-chains-save">
                    {move || if pending.get() { "Saving…" } else { "Save chains" }}
                </button>
            </form>
            <Outcome result testid="settings-chains-saved" />
        </section>
    }
}
