//! The budgets form: soft, hard and emergency limits for the month, each run, every team and
//! project by default, and per-name overrides. An empty field is "no limit".

use std::collections::BTreeMap;

use leptos::prelude::*;

use super::{FIELD, Heading, Outcome, SAVE, SourceLine, number_text};
use crate::server_fns::error_text;
use crate::server_fns::settings::{BudgetSettings, SectionSource, TierLimits, update_budgets};

/// Classes of a limit field in the table: a fixed width, so the table scrolls on a phone
/// instead of squeezing the fields.
const CELL_FIELD: &str = "w-24 rounded border border-slate-300 px-2 py-1 text-sm focus:outline-none \
                          focus-visible:ring-2 focus-visible:ring-indigo-500";

/// The three fields of one scope, as typed.
#[derive(Debug, Clone, Copy)]
struct TierInputs {
    soft: RwSignal<String>,
    hard: RwSignal<String>,
    emergency: RwSignal<String>,
}

impl TierInputs {
    fn new(t: &TierLimits) -> TierInputs {
        TierInputs {
            soft: RwSignal::new(number_text(t.soft)),
            hard: RwSignal::new(number_text(t.hard)),
            emergency: RwSignal::new(number_text(t.emergency)),
        }
    }

    /// The limits typed, or a message naming the field that is not an amount.
    fn read(&self, scope: &str) -> Result<TierLimits, String> {
        Ok(TierLimits {
            soft: limit(&format!("{scope}.soft"), &self.soft.get_untracked())?,
            hard: limit(&format!("{scope}.hard"), &self.hard.get_untracked())?,
            emergency: limit(
                &format!("{scope}.emergency"),
                &self.emergency.get_untracked(),
            )?,
        })
    }
}

fn limit(field: &str, text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!(
            "{field}: `{text}` is not an amount in USD (leave it empty for no limit)"
        )),
    }
}

/// A per-team or per-project override.
#[derive(Debug, Clone)]
struct Override {
    id: usize,
    /// `team` or `project`.
    kind: String,
    name: String,
    tiers: TierInputs,
}

#[island]
pub fn BudgetsForm(budgets: BudgetSettings, source: SectionSource) -> impl IntoView {
    let scopes = [
        (
            "month",
            "This month, everything",
            TierInputs::new(&budgets.month),
        ),
        ("run", "Each run", TierInputs::new(&budgets.run)),
        (
            "team",
            "Every team, monthly",
            TierInputs::new(&budgets.team),
        ),
        (
            "project",
            "Every project, monthly",
            TierInputs::new(&budgets.project),
        ),
    ];
    let named = budgets
        .teams
        .iter()
        .map(|(n, t)| ("team", n, t))
        .chain(budgets.projects.iter().map(|(n, t)| ("project", n, t)));
    let overrides = RwSignal::new(
        named
            .enumerate()
            .map(|(id, (kind, name, t))| Override {
                id,
                kind: kind.to_string(),
                name: name.clone(),
                tiers: TierInputs::new(t),
            })
            .collect::<Vec<_>>(),
    );
    let next_id = StoredValue::new(overrides.with_untracked(Vec::len));
    let new_kind = RwSignal::new("team".to_string());
    let new_name = RwSignal::new(String::new());
    let source = RwSignal::new(source);
    let local_error = RwSignal::new(None::<String>);
    let save = Action::new(|b: &BudgetSettings| update_budgets(b.clone()));
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
    let add = move |_| {
        let name = new_name.get_untracked().trim().to_string();
        let kind = new_kind.get_untracked();
        if name.is_empty() {
            local_error.set(Some(format!("Name the {kind} the override is for.")));
            return;
        }
        if overrides.with_untracked(|o| o.iter().any(|r| r.kind == kind && r.name == name)) {
            local_error.set(Some(format!(
                "The {kind} `{name}` already has an override."
            )));
            return;
        }
        local_error.set(None);
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        let tiers = TierInputs::new(&TierLimits::default());
        overrides.update(|o| {
            o.push(Override {
                id,
                kind,
                name,
                tiers,
            })
        });
        new_name.set(String::new());
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let read = || -> Result<BudgetSettings, String> {
            let mut teams = BTreeMap::new();
            let mut projects = BTreeMap::new();
            for o in overrides.get_untracked() {
                let field = format!("budgets.{}s.{}", o.kind, o.name);
                let map = if o.kind == "team" {
                    &mut teams
                } else {
                    &mut projects
                };
                map.insert(o.name.clone(), o.tiers.read(&field)?);
            }
            Ok(BudgetSettings {
                month: scopes[0].2.read("budgets.month")?,
                run: scopes[1].2.read("budgets.run")?,
                team: scopes[2].2.read("budgets.team")?,
                project: scopes[3].2.read("budgets.project")?,
                teams,
                projects,
            })
        };
        match read() {
            Ok(budgets) => {
                local_error.set(None);
                save.dispatch(budgets);
            }
            Err(message) => local_error.set(Some(message)),
        }
    };
    view! {
        <section aria-labelledby="settings-budgets" class="rounded-lg border border-slate-200 bg-white p-4">
            <Heading id="settings-budgets" title="Budgets" note="USD. Soft warns, hard stops paid calls in the scope, emergency stops every paid call. Empty means no limit; soft ≤ hard ≤ emergency." />
            <SourceLine source testid="settings-budgets-source" />
            <form novalidate on:submit=submit data-ready=move || ready.get().then_some("true") class="mt-3">
                <div class="relative overflow-x-auto">
                    <table class="min-w-full text-left text-sm">
                        <thead class="text-xs uppercase text-slate-500">
                            <tr>
                                <th scope="col" class="py-1 pr-3">"Scope"</th>
                                <th scope="col" class="px-1 py-1">"Soft"</th>
                                <th scope="col" class="px-1 py-1">"Hard"</th>
                                <th scope="col" class="px-1 py-1">"Emergency"</th>
                                <th scope="col" class="py-1"><span class="sr-only">"Remove"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            {scopes.into_iter().map(|(key, label, tiers)| view! {
                                <TierRow label=label.to_string() testid=key tiers />
                            }).collect_view()}
                            <For each=move || overrides.get() key=|o| o.id let:o>
                                <TierRow
                                    label=format!("{} {}, monthly", if o.kind == "team" { "Team" } else { "Project" }, o.name)
                                    testid="override"
                                    tiers=o.tiers
                                    on_remove=Callback::new(move |()| overrides.update(|list| list.retain(|r| r.id != o.id)))
                                />
                            </For>
                        </tbody>
                    </table>
                </div>
                <div class="mt-3 flex flex-wrap items-end gap-2 text-sm">
                    <label class="block">
                        <span class="text-slate-600">"Override for"</span>
                        <select class=FIELD prop:value=move || new_kind.get() on:change=move |ev| new_kind.set(event_target_value(&ev))>
                            <option value="team">"team"</option>
                            <option value="project">"project"</option>
                        </select>
                    </label>
                    <label class="block">
                        <span class="text-slate-600">"Name"</span>
                        <input type="text" class=FIELD placeholder="qa-engineering" maxlength="100"
                            prop:value=move || new_name.get() on:input=move |ev| new_name.set(event_target_value(&ev)) />
                    </label>
                    <button type="button" on:click=add class="rounded border border-slate-300 px-3 py-1.5 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500">
                        "Add override"
                    </button>
                </div>
                <div class="mt-4">
                    <button type="submit" class=SAVE disabled=move || pending.get() || !ready.get() data-testid="settings-budgets-save">
                        {move || if pending.get() { "Saving…" } else { "Save budgets" }}
                    </button>
                </div>
            </form>
            <Outcome result testid="settings-budgets-saved" />
        </section>
    }
}

/// One scope's three limits in a table row.
#[component]
fn TierRow(
    label: String,
    testid: &'static str,
    tiers: TierInputs,
    #[prop(optional)] on_remove: Option<Callback<()>>,
) -> impl IntoView {
    let scope = label.clone();
    let field = move |tier: &'static str, value: RwSignal<String>| {
        let aria = format!("{scope} — {tier} limit, USD");
        view! {
            <td class="px-1 py-1">
                <input type="number" min="0" step="0.01" inputmode="decimal" class=CELL_FIELD
                    aria-label=aria data-testid=format!("settings-budgets-{testid}-{tier}")
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
            </td>
        }
    };
    view! {
        <tr>
            <th scope="row" class="whitespace-nowrap py-1 pr-3 font-normal">{label.clone()}</th>
            {field("soft", tiers.soft)}
            {field("hard", tiers.hard)}
            {field("emergency", tiers.emergency)}
            <td class="py-1">
                {on_remove.map(|remove| view! {
                    <button type="button" on:click=move |_| remove.run(()) aria-label=format!("Remove the override for {label}") class="rounded px-2 py-1 text-sm text-red-700 hover:bg-red-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500">
                        "Remove"
                    </button>
                })}
            </td>
        </tr>
    }
}
