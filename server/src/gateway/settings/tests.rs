//! Changes and their replay, against a real SQLite file in a temp directory.

use app::events::EventData;
use app::server_fns::settings::{BudgetSettings, RoutingSettings, TierLimits};

use super::{FROM_FILE, replay, update_budgets, update_routing, view};
use crate::config::{EnvSnapshot, GatewayConfig};
use crate::gateway::Gateway;
use crate::store::Store;

async fn setup(config: GatewayConfig) -> (tempfile::TempDir, Store, Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let gateway = Gateway::with_ledger(config, store.clone()).await.unwrap();
    (dir, store, gateway)
}

fn defaults() -> GatewayConfig {
    GatewayConfig::defaults(&EnvSnapshot::default())
}

fn routing(threshold: f64) -> RoutingSettings {
    RoutingSettings {
        threshold,
        files_cap: 3,
        cheap_alias: "factory/cheap".into(),
        strong_alias: "factory/architect".into(),
        hard_stop_keywords: vec!["security".into()],
    }
}

fn budgets(run_hard: Option<f64>) -> BudgetSettings {
    let mut b = super::view::budget_settings(&defaults().budgets);
    b.run = TierLimits {
        hard: run_hard,
        ..TierLimits::default()
    };
    b
}

#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let (_dir, store, gateway) = setup(defaults()).await;
    let mut soft_above_hard = budgets(Some(3.0));
    soft_above_hard.month.soft = Some(60.0);
    let mut unknown_alias = routing(0.5);
    unknown_alias.cheap_alias = "nope".into();
    let mut phrase = routing(0.5);
    phrase.hard_stop_keywords = vec!["two words".into()];
    let refusals = [
        update_routing(&gateway, &store, routing(1.5), "t").await,
        update_routing(&gateway, &store, unknown_alias, "t").await,
        update_routing(&gateway, &store, phrase, "t").await,
        update_budgets(&gateway, &store, soft_above_hard, "t").await,
    ];
    let needles = [
        "threshold 1.5 must be between 0 and 1",
        "routing.cheap_alias: `nope` is not a configured alias (configured: factory/architect",
        "routing.hard_stop_keywords: `two words` must be one word",
        "[budgets.month]: need soft ≤ hard ≤ emergency",
    ];
    for (result, needle) in refusals.into_iter().zip(needles) {
        let message = result.expect_err("refused").to_string();
        assert!(
            message.contains(needle),
            "{message:?} should say {needle:?}"
        );
    }
    assert_eq!(store.last_seq().await.unwrap(), 0, "nothing is recorded");
    assert_eq!(gateway.routing().threshold, 0.3, "nothing is applied");
    assert_eq!(gateway.budgets().config().month.soft, Some(20.0));
}

#[tokio::test]
async fn a_change_is_recorded_with_before_and_after_then_in_force() {
    let (_dir, store, gateway) = setup(defaults()).await;
    let saved = update_routing(&gateway, &store, routing(0.75), "dashboard")
        .await
        .unwrap();
    assert_eq!(gateway.routing().threshold, 0.75);
    assert_eq!(gateway.routing().hard_stop_keywords, ["security"]);
    assert_eq!(
        gateway.routing().weight_files,
        0.4,
        "weights stay the file's"
    );
    let events = store.events_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, saved.event_seq);
    assert_eq!(events[0].actor, "dashboard");
    match &events[0].data {
        EventData::SettingsChanged {
            section,
            before,
            after,
            changed_by,
        } => {
            assert_eq!(section, "routing");
            assert_eq!(before["threshold"], 0.3);
            assert_eq!(after["threshold"], 0.75);
            assert_eq!(changed_by, "dashboard");
        }
        other => panic!("unexpected {other:?}"),
    }
    let shown = view(&gateway).await;
    assert_eq!(shown.routing.threshold, 0.75);
    assert_eq!(shown.routing_source.event_seq, Some(saved.event_seq));
    assert!(
        shown.routing_source.label.starts_with(&format!(
            "dashboard (event #{} by dashboard at ",
            saved.event_seq
        )),
        "{}",
        shown.routing_source.label
    );
    assert_eq!(shown.budgets_source.label, FROM_FILE);
}

#[tokio::test]
async fn replay_applies_the_newest_change_of_each_section_over_the_file() {
    let (dir, store, gateway) = setup(defaults()).await;
    update_routing(&gateway, &store, routing(0.6), "api")
        .await
        .unwrap();
    update_budgets(&gateway, &store, budgets(Some(7.0)), "api")
        .await
        .unwrap();
    let newest = update_routing(&gateway, &store, routing(0.9), "dashboard")
        .await
        .unwrap();
    // The file changed meanwhile: its weights still count, the person's threshold wins.
    let mut file = defaults();
    file.routing.weight_files = 0.5;
    file.routing.threshold = 0.1;
    let again = Gateway::with_ledger(file, store.clone()).await.unwrap();
    assert_eq!(replay(&again, &store).await.unwrap(), 2);
    assert_eq!(again.routing().threshold, 0.9);
    assert_eq!(again.routing().weight_files, 0.5);
    assert_eq!(again.budgets().config().run.hard, Some(7.0));
    let shown = view(&again).await;
    assert_eq!(shown.routing_source.event_seq, Some(newest.event_seq));
    assert!(shown.budgets_source.label.contains("by api"));
    drop(dir);
}

#[tokio::test]
async fn a_recorded_change_that_no_longer_fits_the_file_is_skipped() {
    let mut with_alias = defaults();
    with_alias
        .aliases
        .insert("team/special".into(), vec!["offline:template".into()]);
    let (_dir, store, gateway) = setup(with_alias).await;
    let mut special = routing(0.5);
    special.strong_alias = "team/special".into();
    update_routing(&gateway, &store, special, "api")
        .await
        .unwrap();
    // The alias is gone from the file: the file's routing stays in force.
    let again = Gateway::with_ledger(defaults(), store.clone())
        .await
        .unwrap();
    assert_eq!(replay(&again, &store).await.unwrap(), 0);
    assert_eq!(again.routing().strong_alias, "factory/architect");
    assert_eq!(view(&again).await.routing_source.label, FROM_FILE);
}

#[tokio::test]
async fn the_view_says_whether_a_key_is_set_and_labels_offline() {
    let (_dir, _store, gateway) = setup(defaults()).await;
    let shown = view(&gateway).await;
    let offline = shown
        .providers
        .iter()
        .find(|p| p.kind == "offline")
        .unwrap();
    assert_eq!(
        offline.label,
        "offline (no model): deterministic templates, not an LLM"
    );
    assert!(!offline.key_set);
    let ollama = shown.providers.iter().find(|p| p.kind == "ollama").unwrap();
    assert!(ollama.ollama.is_some(), "Ollama is probed");
    assert!(
        shown
            .aliases
            .iter()
            .any(|a| a.alias == "factory/fast" && a.chain.last().unwrap() == "offline:template")
    );
}
