//! The routing form: the complexity threshold, the files cap, the cheap and strong aliases and
//! the hard-stop keywords (the weights stay in `factory.toml`).

use leptos::prelude::*;

use super::{FIELD, Heading, Outcome, SAVE, SourceLine};
use crate::server_fns::error_text;
use crate::server_fns::settings::{RoutingSettings, SectionSource, update_routing};

#[island]
pub fn RoutingForm(
    routing: RoutingSettings,
    aliases: Vec<String>,
    source: SectionSource,
) -> impl IntoView {
    let threshold = RwSignal::new(routing.threshold.to_string());
    let files_cap = RwSignal::new(routing.files_cap.to_string());
    let cheap = RwSignal::new(routing.cheap_alias.clone());
    let strong = RwSignal::new(routing.strong_alias.clone());
    let keywords = RwSignal::new(routing.hard_stop_keywords.join(", "));
    let source = RwSignal::new(source);
    let local_error = RwSignal::new(None::<String>);
    let save = Action::new(|r: &RoutingSettings| update_routing(r.clone()));
    let pending = save.pending();
    let ready = super::hydrated();
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            source.set(saved.source);
        }
    });
    let result = Signal::derive(move || {
        local_error
            .get()
            .map(Err)
            .or_else(|| save.value().get().map(|r| r.map_err(|e| error_text(&e))))
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let read = || -> Result<RoutingSettings, String> {
            let text = threshold.get_untracked();
            let threshold = text.trim().parse::<f64>().map_err(|_| {
                format!("routing.threshold: `{text}` is not a number (accepted: 0 to 1)")
            })?;
            let text = files_cap.get_untracked();
            let files_cap = text.trim().parse::<u32>().map_err(|_| {
                format!("routing.files_cap: `{text}` is not a whole number (accepted: 1 or more)")
            })?;
            Ok(RoutingSettings {
                threshold,
                files_cap,
                cheap_alias: cheap.get_untracked(),
                strong_alias: strong.get_untracked(),
                hard_stop_keywords: keywords
                    .get_untracked()
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        };
        match read() {
            Ok(routing) => {
                local_error.set(None);
                save.dispatch(routing);
            }
            Err(message) => local_error.set(Some(message)),
        }
    };
    let alias_select = move |label: &'static str, hint: &'static str, value: RwSignal<String>| {
        let current = value.get_untracked();
        view! {
            <label class="block text-sm">
                <span class="font-medium">{label}</span>
                <span class="block text-xs text-slate-500">{hint}</span>
                <select class=FIELD prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
                    {aliases.iter().map(|a| view! {
                        <option value=a.clone() selected=*a == current>{a.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
        }
    };
    let cheap_select = alias_select("Cheap alias", "Used below the threshold.", cheap);
    let strong_select = alias_select(
        "Strong alias",
        "Used at or above it, and for hard-stop keywords.",
        strong,
    );
    view! {
        <section aria-labelledby="settings-routing" class="rounded-lg border border-slate-200 bg-white p-4">
            <Heading id="settings-routing" title="Routing" note="Each work order's complexity (0–1, from files in scope, risk and acceptance criteria) picks the cheap or the strong alias." />
            <SourceLine source testid="settings-routing-source" />
            <form novalidate on:submit=submit data-ready=move || ready.get().then_some("true") class="mt-3 grid gap-4 sm:grid-cols-2">
                <label class="block text-sm">
                    <span class="font-medium">"Threshold"</span>
                    <span class="block text-xs text-slate-500">"0 to 1: below it, the cheap alias."</span>
                    <input type="number" min="0" max="1" step="0.01" inputmode="decimal" class=FIELD required
                        data-testid="settings-routing-threshold"
                        prop:value=move || threshold.get() on:input=move |ev| threshold.set(event_target_value(&ev)) />
                </label>
                <label class="block text-sm">
                    <span class="font-medium">"Files cap"</span>
                    <span class="block text-xs text-slate-500">"This many files in scope or more count as many (1 or more)."</span>
                    <input type="number" min="1" step="1" inputmode="numeric" class=FIELD required
                        data-testid="settings-routing-files-cap"
                        prop:value=move || files_cap.get() on:input=move |ev| files_cap.set(event_target_value(&ev)) />
                </label>
                {cheap_select}
                {strong_select}
                <label class="block text-sm sm:col-span-2">
                    <span class="font-medium">"Hard-stop keywords"</span>
                    <span class="block text-xs text-slate-500">"Comma-separated words; a work order mentioning one gets the strong alias."</span>
                    <input type="text" class=FIELD maxlength="2000" data-testid="settings-routing-keywords"
                        prop:value=move || keywords.get() on:input=move |ev| keywords.set(event_target_value(&ev)) />
                </label>
                <div class="sm:col-span-2">
                    <button type="submit" class=SAVE disabled=move || pending.get() || !ready.get() data-testid="settings-routing-save">
                        {move || if pending.get() { "Saving…" } else { "Save routing" }}
                    </button>
                </div>
            </form>
            <Outcome result testid="settings-saved" />
        </section>
    }
}
