//! Approvals: every decision waiting for a person, one button per option and a text box where
//! the option needs words. Refreshed live when an approval appears or is decided anywhere; a
//! button is disabled while its decision is on its way, so a double click cannot decide twice.

use leptos::prelude::*;

use super::Frame;
use crate::components::approval_card::ApprovalCard;
use crate::live::LiveScope;
use crate::server_fns::pending_approvals;

/// The events that change this page.
const CHANGES: &[&str] = &["approval_requested", "approval_decided", "run_finished"];

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let approvals = Resource::new(|| (), |_| pending_approvals());
    view! {
        <Frame live=LiveScope::kinds(CHANGES)>
            <h1 class="text-2xl font-semibold">"Approvals"</h1>
            <p class="mt-1 text-sm text-slate-600">
                "Decisions waiting for you. A run continues the moment you decide."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4 text-slate-500">"Loading approvals…"</p> }>
                {move || Suspend::new(async move {
                    match approvals.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="mt-6 rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center" data-testid="no-approvals">
                                <h2 class="text-lg font-medium">"Nothing waits for you"</h2>
                                <p class="mt-2 text-sm text-slate-600">
                                    "Plans, clarifications, blocked stages, budgets and final reviews appear here when a run needs a person."
                                </p>
                            </div>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="mt-4 space-y-4">
                                {list.into_iter().map(|a| view! { <ApprovalCard approval=a show_run=true /> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(err) => view! {
                            <super::ErrorBox message=format!("Could not load approvals: {}", crate::server_fns::error_text(&err)) />
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Frame>
    }
}
