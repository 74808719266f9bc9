//! Settings: `GET /api/settings` behind auth and without secrets, `PUT` of budgets and routing
//! applied to the next call and recorded as `settings_changed` events, bad input refused with
//! nothing recorded, and a restart keeping what was set.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TOKEN, TestApp, status_json};
use crate::support::cli::{factory_cli, factory_serve};
use crate::support::providers::{Reply, config, request, serve};
use crate::support::{Attribution, Config, EventData, Risk, RoutingInput, Store, free_port};

async fn get_settings(app: &TestApp) -> Value {
    let res = app.get("/api/settings").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn put(app: &TestApp, section: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/settings/{section}");
    status_json(app.put_json(&path, &body).await).await
}

/// The routing section as `GET` shows it, with `change` applied.
async fn routing_with(app: &TestApp, change: impl FnOnce(&mut Value)) -> Value {
    let mut routing = get_settings(app).await["routing"].clone();
    change(&mut routing);
    routing
}

async fn settings_events(store: &Store) -> Vec<(String, Value, Value, String)> {
    store
        .events_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::SettingsChanged {
                section,
                before,
                after,
                changed_by,
            } => Some((section, before, after, changed_by)),
            _ => None,
        })
        .collect()
}

fn small_task() -> RoutingInput<'static> {
    // complexity (1/3 · 0.4 + 0.2 · 0.3) / 3 ≈ 0.064
    RoutingInput {
        files_in_scope: 1,
        risk: Risk::Low,
        has_acceptance_criteria: false,
        text: "Fix a typo",
    }
}

#[tokio::test]
async fn settings_need_credentials() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/settings"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .put(app.url("/api/settings/routing"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(settings_events(&app.store).await.is_empty());
}

#[tokio::test]
async fn a_routing_change_applies_to_the_next_decision_and_is_recorded() {
    let app = TestApp::spawn().await;
    let attribution = Attribution::default();
    let before = app.gateway.route(&attribution, &small_task()).await;
    assert_eq!(before.alias, "factory/cheap", "{}", before.reason);

    let body = routing_with(&app, |r| r["threshold"] = json!(0.05)).await;
    let (status, saved) = put(&app, "routing", body).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let after = app.gateway.route(&attribution, &small_task()).await;
    assert_eq!(after.threshold, 0.05);
    assert_eq!(after.alias, "factory/architect", "{}", after.reason);

    let events = settings_events(&app.store).await;
    assert_eq!(events.len(), 1);
    let (section, before, after, changed_by) = &events[0];
    assert_eq!(section, "routing");
    assert_eq!(before["threshold"], 0.3);
    assert_eq!(after["threshold"], 0.05);
    assert_eq!(changed_by, "api");
    let shown = get_settings(&app).await;
    assert_eq!(shown["routing"]["threshold"], 0.05);
    assert_eq!(shown["routing_source"]["event_seq"], saved["event_seq"]);
    assert!(
        shown["routing_source"]["label"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "dashboard (event #{} by api at",
                saved["event_seq"]
            )),
        "{shown}"
    );
    assert_eq!(shown["budgets_source"]["label"], "factory.toml/defaults");
}

#[tokio::test]
async fn a_budget_change_refuses_or_allows_the_next_paid_call() {
    let reply = Reply::Ok {
        text: "hi",
        input: 10,
        output: 10,
    };
    let (base, script) = serve(vec![reply.clone(), reply]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Config::new(dir.path().to_path_buf());
    server.factory.gateway = config(&[&base], |_| {});
    let mut app = TestApp::spawn_with(server).await;
    app.keep_dir(dir);
    let mut call = request(None);
    call.attribution.run_id = Some("run-b".into());
    app.gateway
        .complete(&call)
        .await
        .expect("within the $3 run default");

    let mut budgets = get_settings(&app).await["budgets"].clone();
    budgets["run"] = json!({"hard": 0.0001});
    let (status, body) = put(&app, "budgets", budgets.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = app.gateway.complete(&call).await.unwrap_err().to_string();
    assert!(refused.contains("hard limit of $0.00"), "{refused}");
    assert_eq!(
        script.calls(),
        1,
        "the refused call never reached the model"
    );

    budgets["run"] = json!({"soft": 1.0, "hard": 2.0});
    let (status, body) = put(&app, "budgets", budgets).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.gateway.complete(&call).await.expect("allowed again");
    assert_eq!(script.calls(), 2);

    let events = settings_events(&app.store).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].1["run"]["hard"], 3.0, "before: the default");
    assert_eq!(events[0].2["run"]["hard"], 0.0001);
    assert_eq!(
        events[1].2["run"],
        json!({"soft": 1.0, "hard": 2.0, "emergency": null})
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_message_and_nothing_is_recorded() {
    let app = TestApp::spawn().await;
    let mut budgets = get_settings(&app).await["budgets"].clone();
    budgets["month"] = json!({"soft": 60.0, "hard": 50.0, "emergency": 100.0});
    let high = routing_with(&app, |r| r["threshold"] = json!(1.5)).await;
    let alias = routing_with(&app, |r| r["cheap_alias"] = json!("nope")).await;
    let extra = routing_with(&app, |r| r["colour"] = json!("blue")).await;
    let missing = routing_with(&app, |r| {
        r.as_object_mut().unwrap().remove("files_cap");
    })
    .await;
    let cases = [
        (
            "budgets",
            budgets,
            "[budgets.month]: need soft ≤ hard ≤ emergency",
        ),
        ("routing", high, "threshold 1.5 must be between 0 and 1"),
        (
            "routing",
            alias,
            "routing.cheap_alias: `nope` is not a configured alias (configured: ",
        ),
        ("routing", extra, "unknown field `colour`, expected one of"),
        ("routing", missing, "missing field `files_cap`"),
    ];
    for (section, body, needle) in cases {
        let (status, err) = put(&app, section, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{needle}: {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{message:?} should say {needle:?}"
        );
    }
    assert!(settings_events(&app.store).await.is_empty());
    let shown = get_settings(&app).await;
    assert_eq!(shown["routing"]["threshold"], 0.3, "nothing applied");
    assert_eq!(shown["budgets"]["month"]["soft"], 20.0);
}

#[tokio::test]
async fn a_restart_keeps_what_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let body = routing_with(&app, |r| {
        r["threshold"] = json!(0.8);
        r["hard_stop_keywords"] = json!(["billing"]);
    })
    .await;
    let (status, saved) = put(&app, "routing", body).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    app.stop().await;
    drop(app);

    let again = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let shown = get_settings(&again).await;
    assert_eq!(shown["routing"]["threshold"], 0.8);
    assert_eq!(shown["routing"]["hard_stop_keywords"], json!(["billing"]));
    assert_eq!(shown["routing_source"]["event_seq"], saved["event_seq"]);
    assert_eq!(again.gateway.routing().threshold, 0.8);
    let billing = RoutingInput {
        text: "Billing export",
        ..small_task()
    };
    let decision = again.gateway.route(&Attribution::default(), &billing).await;
    assert_eq!(decision.hard_stop.as_deref(), Some("billing"));
    again.stop().await;
    drop(again);

    // `factory models` shows the same settings in force, and where they come from.
    let out = factory_cli(dir.path()).arg("models").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("below complexity 0.8"), "{stdout}");
    assert!(
        stdout.contains("hard-stop keywords (always factory/architect): billing"),
        "{stdout}"
    );
    let seq = saved["event_seq"].as_i64().unwrap();
    assert!(
        stdout.contains(&format!("routing (from dashboard (event #{seq} by ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("budgets (USD, from factory.toml/defaults"),
        "{stdout}"
    );
}

/// The real binary with a (fake) key in its environment: the key's variable shows as set, its
/// value appears nowhere — not in the API, not in the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_key_is_reported_but_never_shown() {
    const SECRET: &str = "sk-test-do-not-show-0123456789abcdef";
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = factory_serve(data.path(), None, port)
        .env("OPENAI_API_KEY", SECRET)
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env_remove("ANTHROPIC_API_KEY")
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let api = loop {
        let res = client
            .get(format!("{base}/api/settings"))
            .bearer_auth(TOKEN)
            .send()
            .await;
        if let Ok(res) = res {
            break res.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "server unreachable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let page = client
        .get(format!("{base}/settings"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !api.contains(SECRET) && !page.contains(SECRET),
        "the key leaked"
    );
    let body: Value = serde_json::from_str(&api).unwrap();
    let providers = body["providers"].as_array().unwrap();
    let openai = providers.iter().find(|p| p["name"] == "openai").unwrap();
    assert_eq!(openai["key_set"], true, "{openai}");
    assert_eq!(openai["api_key_env"], "OPENAI_API_KEY");
    assert_eq!(openai["base_url"], "http://127.0.0.1:9/v1");
    let offline = providers.iter().find(|p| p["kind"] == "offline").unwrap();
    assert_eq!(
        offline["label"],
        "offline (no model): deterministic templates, not an LLM"
    );
    let ollama = providers.iter().find(|p| p["kind"] == "ollama").unwrap();
    assert!(ollama["ollama"]["reachable"].is_boolean(), "{ollama}");
    let architect = body["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "factory/architect")
        .unwrap();
    assert_eq!(architect["chain"][0], "openai:auto", "{architect}");
    assert!(page.contains("key set"), "the page shows the badge");
}
