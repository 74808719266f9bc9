//! The provider form: a newcomer's one form (name, kind, address, model, key, and "use for
//! every alias"), and the same form for editing a provider opened with `?edit=NAME`. A typed
//! key is sent once and the field is cleared when it is saved; editing leaves the key as it
//! was unless a new one is typed.

use leptos::prelude::*;

use super::{FIELD, Heading, Outcome, SAVE};
use crate::server_fns::error_text;
use crate::server_fns::settings::{
    KeyText, ProviderInput, ProviderStatus, add_provider, edit_provider,
};

/// The text of an optional field: `None` when left empty.
fn given(text: String) -> Option<String> {
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

#[island]
pub fn ProviderForm(editing: Option<ProviderStatus>, chat_aliases: Vec<String>) -> impl IntoView {
    let adding = editing.is_none();
    let old = editing.clone();
    let name = RwSignal::new(old.as_ref().map(|p| p.name.clone()).unwrap_or_default());
    let kind = RwSignal::new(
        old.as_ref()
            .map(|p| p.kind.clone())
            .unwrap_or_else(|| "openai".into()),
    );
    let base_url = RwSignal::new(
        old.as_ref()
            .and_then(|p| p.base_url.clone())
            .unwrap_or_default(),
    );
    let model = RwSignal::new(
        old.as_ref()
            .and_then(|p| p.model.clone())
            .unwrap_or_default(),
    );
    let key = RwSignal::new(String::new());
    let key_env = RwSignal::new(
        old.as_ref()
            .and_then(|p| p.api_key_env.clone())
            .unwrap_or_default(),
    );
    let every_alias = RwSignal::new(adding);
    let chosen: Vec<(String, RwSignal<bool>)> = chat_aliases
        .iter()
        .map(|a| (a.clone(), RwSignal::new(false)))
        .collect();
    let embed = RwSignal::new(String::new());
    let save = Action::new(move |input: &ProviderInput| {
        let input = input.clone();
        async move {
            if adding {
                add_provider(input).await
            } else {
                edit_provider(input).await
            }
        }
    });
    let (done, _) = crate::live::refresh_on_success(save);
    let pending = save.pending();
    let ready = super::hydrated();
    // A key is sent once: the field does not keep it after it is saved.
    Effect::new(move |_| {
        if done.get() {
            key.set(String::new());
        }
    });
    let result = Signal::derive(move || save.value().get().map(|r| r.map_err(|e| error_text(&e))));
    let picked = chosen.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        save.dispatch(ProviderInput {
            name: name.get_untracked().trim().to_string(),
            kind: kind.get_untracked(),
            base_url: given(base_url.get_untracked()),
            model: model.get_untracked().trim().to_string(),
            api_key: given(key.get_untracked()).map(KeyText),
            api_key_env: given(key_env.get_untracked()),
            every_alias: every_alias.get_untracked(),
            aliases: picked
                .iter()
                .filter(|(_, on)| on.get_untracked())
                .map(|(a, _)| a.clone())
                .collect(),
            embed_model: given(embed.get_untracked()),
        });
    };
    let title = if adding {
        "Add a provider"
    } else {
        "Edit a provider"
    };
    let key_hint = match &old {
        Some(p) => format!(
            "Now: {}. Leave empty to keep it; type a new key to replace it.",
            p.key_status
        ),
        None => "Kept in the data directory's secrets file (0600), never in the log or shown again. Not needed for Ollama or a local server.".into(),
    };
    let field = |label: &'static str, hint: String, input: AnyView| {
        view! {
            <label class="block text-sm">
                <span class="font-medium">{label}</span>
                <span class="block text-xs text-slate-500">{hint}</span>
                {input}
            </label>
        }
    };
    view! {
        <section id="provider-form" aria-labelledby="settings-provider-form" class="rounded-lg border border-slate-200 bg-white p-4">
            <Heading id="settings-provider-form" title=title note="A model of your own: name it, say which API it speaks and where, give its key, and use it for every alias. It applies to the next model call, without a restart." />
            {(!adding).then(|| view! { <a href="/settings#provider-form" data-soft class="mt-1 inline-block text-xs text-indigo-700 underline">"Add a new provider instead"</a> })}
            <form novalidate on:submit=submit data-ready=move || ready.get().then_some("true") class="mt-3 grid gap-4 sm:grid-cols-2" autocomplete="off">
                {field("Name", "Lowercase letters, digits and -, e.g. acme.".into(), view! {
                    <input type="text" class=FIELD maxlength="32" required data-testid="provider-name" readonly=!adding
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                }.into_any())}
                {field("Kind", "The API it speaks.".into(), view! {
                    <select class=FIELD data-testid="provider-kind" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="openai">"OpenAI-compatible (OpenAI, vLLM, llama.cpp, LiteLLM)"</option>
                        <option value="anthropic">"Anthropic"</option>
                        <option value="ollama">"Ollama"</option>
                    </select>
                }.into_any())}
                {field("Base URL", "Empty for the kind's own service, e.g. http://127.0.0.1:8000/v1.".into(), view! {
                    <input type="url" class=FIELD maxlength="2048" data-testid="provider-base-url" placeholder="https://api.openai.com/v1"
                        prop:value=move || base_url.get() on:input=move |ev| base_url.set(event_target_value(&ev)) />
                }.into_any())}
                {field("Model", "As the provider names it (auto: the first the server lists).".into(), view! {
                    <input type="text" class=FIELD maxlength="200" required data-testid="provider-model" placeholder="gpt-4o-mini"
                        prop:value=move || model.get() on:input=move |ev| model.set(event_target_value(&ev)) />
                }.into_any())}
                {field("API key", key_hint, view! {
                    <input type="password" class=FIELD maxlength="4096" autocomplete="new-password" data-testid="provider-key"
                        prop:value=move || key.get() on:input=move |ev| key.set(event_target_value(&ev)) />
                }.into_any())}
                {field("Or the key's environment variable", "Its name, e.g. OPENAI_API_KEY (read when Factory calls).".into(), view! {
                    <input type="text" class=FIELD maxlength="128" data-testid="provider-key-env"
                        prop:value=move || key_env.get() on:input=move |ev| key_env.set(event_target_value(&ev)) />
                }.into_any())}
                <fieldset class="sm:col-span-2 text-sm">
                    <label class="flex items-center gap-2 font-medium">
                        <input type="checkbox" data-testid="provider-every-alias"
                            prop:checked=move || every_alias.get() on:change=move |ev| every_alias.set(event_target_checked(&ev)) />
                        "Use for every alias (" {chat_aliases.join(", ")} ")"
                    </label>
                    <div class="mt-2 flex flex-wrap gap-3" class:hidden=move || every_alias.get()>
                        <span class="text-xs text-slate-500">"Or only for:"</span>
                        {chosen.into_iter().map(|(alias, on)| view! {
                            <label class="flex items-center gap-1 text-xs font-mono">
                                <input type="checkbox" prop:checked=move || on.get() on:change=move |ev| on.set(event_target_checked(&ev)) />
                                {alias}
                            </label>
                        }).collect_view()}
                    </div>
                </fieldset>
                {field("Embedding model (optional)", "Also use this model for local/embed (memory search); OpenAI-compatible and Ollama only.".into(), view! {
                    <input type="text" class=FIELD maxlength="200" data-testid="provider-embed"
                        prop:value=move || embed.get() on:input=move |ev| embed.set(event_target_value(&ev)) />
                }.into_any())}
                <div class="sm:col-span-2">
                    <button type="submit" class=SAVE disabled=move || pending.get() || !ready.get() data-testid="provider-save">
                        {move || match (pending.get(), adding) {
                            (true, _) => "Saving…",
                            (false, true) => "Add provider",
                            (false, false) => "Save provider",
                        }}
                    </button>
                </div>
            </form>
            <Outcome result testid="provider-saved" />
        </section>
    }
}
