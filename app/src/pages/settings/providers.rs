//! The providers table: each provider's kind, address, model, where its key comes from (a
//! stored key only as its last four characters) and whether Ollama answers; and each row's
//! actions — Test (one tiny call, showing who answered and the capabilities in force), Edit
//! (opens it in the form below) and Remove.

use leptos::prelude::*;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{BADGE, Heading};
use crate::pages::ErrorBox;
use crate::server_fns::error_text;
use crate::server_fns::settings::{
    ProviderStatus, ProviderTest, SectionSource, remove_provider, test_provider,
};

/// Classes of the small row buttons.
const ROW_BUTTON: &str = "rounded border border-slate-300 px-2 py-1 text-xs hover:bg-slate-50 \
                          disabled:cursor-not-allowed disabled:opacity-50 focus:outline-none \
                          focus-visible:ring-2 focus-visible:ring-indigo-500";

#[component]
pub fn Providers(providers: Vec<ProviderStatus>, source: SectionSource) -> impl IntoView {
    view! {
        <section aria-labelledby="settings-providers">
            <Heading id="settings-providers" title="Providers" note="Keys come from environment variables or are typed below; a typed key is kept in the data directory's secrets file (readable by its owner only) and shown only by its last four characters." />
            <p class="mt-1 text-xs text-slate-500" data-testid="settings-providers-source">
                "Set from the dashboard or the CLI: " {source.label}
            </p>
            <div class="relative mt-3 overflow-x-auto rounded-lg border border-slate-200 bg-white">
                <table class="min-w-full text-left text-sm" data-testid="settings-providers">
                    <thead class="bg-slate-50 text-xs uppercase text-slate-500">
                        <tr>
                            <th scope="col" class="px-3 py-2">"Provider"</th>
                            <th scope="col" class="px-3 py-2">"Kind"</th>
                            <th scope="col" class="px-3 py-2">"Base URL"</th>
                            <th scope="col" class="px-3 py-2">"Status"</th>
                            <th scope="col" class="px-3 py-2">"Actions"</th>
                        </tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {providers.into_iter().map(|p| {
                            let name = p.name.clone();
                            let key = p.name.clone();
                            let label = p.label.clone();
                            let url = p.base_url.clone().unwrap_or_else(|| "-".into());
                            let model = p.model.clone();
                            let editable = p.kind != "offline";
                            let target = p.test_target.clone();
                            let actions_name = p.name.clone();
                            let overlay = p.overlay.to_string();
                            view! {
                                <tr data-provider=key data-overlay=overlay>
                                    <th scope="row" class="whitespace-nowrap px-3 py-2 font-mono font-normal">
                                        {name}
                                        {model.map(|m| view! { <span class="block text-xs text-slate-500">{m}</span> })}
                                    </th>
                                    <td class="px-3 py-2">{label}</td>
                                    <td class="px-3 py-2 font-mono text-xs">{url}</td>
                                    <td class="px-3 py-2"><ProviderBadges provider=p /></td>
                                    <td class="px-3 py-2">
                                        {editable.then(|| view! { <ProviderActions name=actions_name test_target=target /> })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn ProviderBadges(provider: ProviderStatus) -> impl IntoView {
    let needs_key = provider.api_key_env.is_some() || provider.key_status != "no key needed";
    let key = needs_key.then(|| {
        let class = if provider.key_set {
            "bg-emerald-100 text-emerald-800"
        } else {
            "bg-red-100 text-red-800"
        };
        let text = if provider.key_set { "key set" } else { "no key" };
        view! {
            <span class=format!("{BADGE} {class}")>{text}</span>
            <span class="ml-1 font-mono text-xs text-slate-500" data-testid="provider-key-status">{provider.key_status.clone()}</span>
        }
    });
    let ollama = provider.ollama.map(|o| {
        if o.reachable {
            let models = o.models.join(", ");
            view! {
                <span class=format!("{BADGE} bg-emerald-100 text-emerald-800")>
                    {format!("Ollama found ({} models)", o.models.len())}
                </span>
                <span class="ml-1 text-xs text-slate-500">{models}</span>
            }
            .into_any()
        } else {
            view! {
                <span class=format!("{BADGE} bg-amber-100 text-amber-800")>"not found"</span>
                <span class="ml-1 text-xs text-slate-500">"local models are skipped"</span>
            }
            .into_any()
        }
    });
    let nothing_needed = (key.is_none() && ollama.is_none()).then(|| {
        view! { <span class=format!("{BADGE} bg-slate-100 text-slate-700")>"no key needed"</span> }
    });
    view! { {key} {ollama} {nothing_needed} }
}

/// Test, Edit and Remove for one provider.
#[island]
pub fn ProviderActions(name: String, test_target: Option<String>) -> impl IntoView {
    let test = Action::new(|name: &String| test_provider(name.clone()));
    let remove = Action::new(|name: &String| remove_provider(name.clone()));
    let (_, remove_error) = crate::live::refresh_on_success(remove);
    let confirming = RwSignal::new(false);
    let ready = super::hydrated();
    let testing = test.pending();
    let edit = format!(
        "/settings?edit={}#provider-form",
        utf8_percent_encode(&name, NON_ALPHANUMERIC)
    );
    let (for_test, for_remove) = (name.clone(), name.clone());
    let test_button = test_target.map(|target| {
        view! {
            <button type="button" class=ROW_BUTTON data-testid="provider-test"
                title=format!("Sends one tiny prompt to {target}")
                disabled=move || testing.get() || !ready.get()
                on:click=move |_| { test.dispatch(for_test.clone()); }>
                {move || if testing.get() { "Testing…" } else { "Test" }}
            </button>
        }
    });
    view! {
        <div class="flex flex-wrap items-center gap-2">
            {test_button}
            <a href=edit data-soft class=ROW_BUTTON data-testid="provider-edit">"Edit"</a>
            <button type="button" class=ROW_BUTTON data-testid="provider-remove"
                disabled=move || remove.pending().get() || !ready.get()
                on:click=move |_| {
                    if confirming.get_untracked() {
                        remove.dispatch(for_remove.clone());
                    } else {
                        confirming.set(true);
                    }
                }>
                {move || if confirming.get() { "Confirm remove" } else { "Remove" }}
            </button>
        </div>
        {move || remove_error.get().map(|message| view! { <ErrorBox message /> })}
        {move || test.value().get().map(|result| match result {
            Ok(report) => view! { <TestReport report /> }.into_any(),
            Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
        })}
    }
}

/// What a Test found.
#[component]
fn TestReport(report: ProviderTest) -> impl IntoView {
    let ok = report.answered_by.is_some();
    let headline = match &report.answered_by {
        Some(who) => format!(
            "Answered by {who} in {} ms — {} tokens in, {} out, ${:.6}",
            report.latency_ms, report.input_tokens, report.output_tokens, report.cost_usd
        ),
        None => format!(
            "{} did not answer: {}",
            report.target,
            report.error.clone().unwrap_or_default()
        ),
    };
    let class = if ok {
        "border-emerald-200 bg-emerald-50 text-emerald-900"
    } else {
        "border-red-200 bg-red-50 text-red-800"
    };
    view! {
        <div role="status" data-testid="provider-test-result" data-ok=ok.to_string()
            class=format!("mt-2 max-w-md rounded border px-3 py-2 text-xs {class}")>
            <p class="font-medium" data-testid="provider-test-answer">{headline}</p>
            {report.reply.map(|r| view! { <p class="mt-1">"Reply: " <span class="font-mono">{r}</span></p> })}
            <p class="mt-1 text-slate-600">"Capabilities in force for " <span class="font-mono">{report.target.clone()}</span> ":"</p>
            <ul class="mt-1 space-y-0.5" data-testid="provider-capabilities">
                {report.capabilities.into_iter().map(|c| view! {
                    <li data-capability=c.name.clone()>
                        <span class="font-mono">{c.name.clone()}</span> ": " {c.value}
                        <span class="text-slate-500">{format!(" ({})", c.from)}</span>
                    </li>
                }).collect_view()}
            </ul>
            <p class="mt-1 text-slate-600">"Path: " {report.path.join(" → ")}</p>
        </div>
    }
}
