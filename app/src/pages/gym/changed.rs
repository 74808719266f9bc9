//! One recorded gym attempt (`/gym/changed/<event number>`): what changed since its scenario
//! last passed — settings, run status, the checks that flipped — and its checks in full.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::{CHANGES, LINK};
use crate::gym::{CheckOutcome, CheckStatus, GymRecord};
use crate::live::LiveScope;
use crate::pages::{ErrorBox, Frame};
use crate::server_fns::error_text;
use crate::server_fns::gym::{GymChange, gym_change, short_gym_run};
use crate::time::format_minute;

/// The page of one attempt, by its event number.
#[component]
pub fn GymChangedPage() -> impl IntoView {
    let params = use_params_map();
    let given = params.with_untracked(|p| p.get("seq").unwrap_or_default());
    let seq = given.trim().parse::<i64>().ok().filter(|s| *s > 0);
    let change = Resource::new(
        move || seq,
        |seq| async move {
            match seq {
                Some(seq) => gym_change(seq).await,
                None => Ok(None),
            }
        },
    );
    view! {
        <Frame live=LiveScope::kinds(CHANGES)>
            <div data-testid="gym-change">
                <p class="text-xs text-slate-500">
                    <a class="underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500" href="/gym">"Gym"</a>
                    " / event " {given.clone()}
                </p>
                <Suspense fallback=|| view! { <p class="mt-4 text-slate-500" aria-live="polite">"Loading the attempt…"</p> }>
                    {move || {
                        let given = given.clone();
                        Suspend::new(async move {
                            match change.await {
                                Ok(Some(change)) => view! { <Attempt change /> }.into_any(),
                                Ok(None) => view! { <NoSuchRecord given /> }.into_any(),
                                Err(e) => view! {
                                    <h1 class="mt-1 text-2xl font-semibold">"What changed"</h1>
                                    <ErrorBox message=error_text(&e) />
                                }
                                .into_any(),
                            }
                        })
                    }}
                </Suspense>
            </div>
        </Frame>
    }
}

/// The attempt: what changed since the last pass, its checks, what it ran under.
#[component]
fn Attempt(change: GymChange) -> impl IntoView {
    let GymChange {
        seq,
        ts,
        record,
        last_pass,
    } = change;
    let verdict = if record.passed { "passed" } else { "failed" };
    let heading = format!(
        "{} {verdict} in gym run {}",
        record.scenario,
        short_gym_run(&record.gym_run_id)
    );
    let comparison = match (record.passed, last_pass) {
        (_, Some(pass)) => view! {
            <section class="mt-6" aria-labelledby="gym-changed-title">
                <h2 id="gym-changed-title" class="text-base font-medium">"What changed since it last passed"</h2>
                <p class="mt-1 text-xs text-slate-500">
                    {format!(
                        "Compared with event {} (gym run {}, {}).",
                        pass.seq,
                        short_gym_run(&pass.gym_run_id),
                        format_minute(&pass.ts)
                    )}
                </p>
                <pre class="mt-2 overflow-x-auto whitespace-pre-wrap rounded-lg border border-slate-200 bg-white p-4 font-mono text-xs" data-testid="gym-what-changed">{pass.what_changed}</pre>
            </section>
        }
        .into_any(),
        (true, None) => view! {
            <p class="mt-6 text-sm text-slate-600" data-testid="gym-no-comparison">"This attempt passed: there is nothing to compare."</p>
        }
        .into_any(),
        (false, None) => view! {
            <p class="mt-6 text-sm text-slate-600" data-testid="gym-no-comparison">
                "No earlier attempt of this scenario passed, so there is nothing to compare with: the checks below say why it failed."
            </p>
        }
        .into_any(),
    };
    view! {
        <h1 class="mt-1 break-words text-2xl font-semibold" data-seq=seq data-result=verdict>{heading}</h1>
        {comparison}
        <Checks checks=record.checks.clone() />
        <Summary record ts />
    }
}

/// What the attempt ran under and how its run ended.
#[component]
fn Summary(record: GymRecord, ts: String) -> impl IntoView {
    let run = match &record.reason {
        Some(reason) => format!("{} ({reason})", record.run_status),
        None => record.run_status.clone(),
    };
    let served = if record.offline {
        "offline templates (no model)".to_string()
    } else {
        format!(
            "{} model call(s), ${:.4}",
            record.model_calls, record.cost_usd
        )
    };
    let facts = [
        ("Recorded", format_minute(&ts)),
        ("Attempt", record.attempt.to_string()),
        ("Run", run),
        ("Pipeline", record.pipeline.clone()),
        (
            "Team catalogue",
            record.catalogue_hash.chars().take(12).collect(),
        ),
        ("Models", record.models.clone()),
        ("Served by", served),
        (
            "Run time",
            format!("{:.1} s", record.run_ms as f64 / 1000.0),
        ),
        ("Directory", record.dir.clone()),
    ];
    view! {
        <section class="mt-6" aria-labelledby="gym-record-title">
            <h2 id="gym-record-title" class="text-base font-medium">"The attempt"</h2>
            <dl class="mt-2 grid grid-cols-1 gap-x-6 gap-y-1 text-sm sm:grid-cols-[max-content_1fr]" data-testid="gym-record">
                {facts
                    .into_iter()
                    .map(|(label, value)| view! {
                        <dt class="text-slate-500">{label}</dt>
                        <dd class="break-words font-mono text-xs leading-5" data-fact=label>{value}</dd>
                    })
                    .collect_view()}
            </dl>
        </section>
    }
}

/// Every check of the attempt with its outcome and what was found.
#[component]
fn Checks(checks: Vec<CheckOutcome>) -> impl IntoView {
    view! {
        <section class="mt-6 rounded-lg border border-slate-200 bg-white p-4" aria-labelledby="gym-checks-title">
            <h2 id="gym-checks-title" class="text-base font-medium">"Checks"</h2>
            <div class="mt-2 overflow-x-auto">
                <table class="min-w-full text-left text-sm" data-testid="gym-checks">
                    <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-500">
                        <tr>
                            <th scope="col" class="px-2 py-1">"Check"</th>
                            <th scope="col" class="px-2 py-1">"Kind"</th>
                            <th scope="col" class="px-2 py-1">"Status"</th>
                            <th scope="col" class="px-2 py-1">"Detail"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {checks.into_iter().map(|check| view! { <CheckRow check /> }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn CheckRow(check: CheckOutcome) -> impl IntoView {
    let class = match check.status {
        CheckStatus::Passed => "text-emerald-800",
        CheckStatus::Failed => "font-medium text-red-800",
        CheckStatus::Skipped => "text-amber-700",
    };
    view! {
        <tr class="border-t border-slate-100 align-top" data-check-status=check.status.as_str()>
            <td class="px-2 py-1">{check.name}</td>
            <td class="px-2 py-1 font-mono text-xs">{check.kind}</td>
            <td class=format!("px-2 py-1 {class}")>{check.status.as_str()}</td>
            <td class="px-2 py-1"><pre class="max-h-64 overflow-auto whitespace-pre-wrap font-mono text-xs">{check.detail}</pre></td>
        </tr>
    }
}

/// Said for an address whose number is not a recorded gym attempt.
#[component]
fn NoSuchRecord(given: String) -> impl IntoView {
    view! {
        <section data-testid="gym-not-found">
            <h1 class="mt-1 text-2xl font-semibold">"Gym attempt not found"</h1>
            <p class="mt-2 text-slate-600">
                {format!(
                    "No gym attempt was recorded as event {given:?}. The address takes the event number of a recorded attempt, as the Gym page links it. "
                )}
                <a class=LINK href="/gym">"Back to the Gym"</a>
            </p>
        </section>
    }
}
