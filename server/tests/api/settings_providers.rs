//! Providers and chains from the dashboard's API: a provider added with a key serves the next
//! call with that key (no restart), is recorded without it, shown only by its last four
//! characters, replayed after a restart, tested with its capabilities, edited and removed;
//! refused input records and stores nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TestApp, status_json};
use crate::support::keyed::{bearer_headers, serve_openai};
use crate::support::{EventData, Message, ModelRequest, Store};

const KEY: &str = "sk-acme-live-7f3a9c2e5b1d4a8f6e0c9b7a1234";

async fn events_json(store: &Store) -> String {
    let events = store.events_after(0, 10_000).await.unwrap();
    serde_json::to_string(&events.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap()
}

fn provider(base: &str) -> Value {
    json!({
        "name": "acme",
        "kind": "openai",
        "base_url": base,
        "model": "gpt-4o-mini",
        "api_key": KEY,
        "every_alias": true
    })
}

async fn add(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    status_json(app.post_json("/api/settings/providers", body).await).await
}

/// A one-line call to `factory/coder`, as a team would make it.
async fn call_coder(app: &TestApp) -> Result<(String, String), String> {
    let request = ModelRequest::new("factory/coder", vec![Message::user("Say ready")], 32);
    app.gateway
        .complete(&request)
        .await
        .map(|r| (format!("{}:{}", r.provider, r.model), r.text))
        .map_err(|e| e.to_string())
}

fn acme(settings: &Value) -> Value {
    settings["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_provider_added_with_a_key_serves_the_next_call_and_is_recorded_without_it() {
    let (base, seen) = serve_openai(KEY).await;
    let app = TestApp::spawn().await;
    // Before: no model configured, the templates answer.
    let (who, _) = call_coder(&app).await.unwrap();
    assert_eq!(who, "offline:template");

    let (status, saved) = add(&app, &provider(&base)).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (who, text) = call_coder(&app).await.expect("the new provider answers");
    assert_eq!(who, "acme:gpt-4o-mini");
    assert_eq!(text, "ready (gpt-4o-mini on the keyed server)");
    assert_eq!(bearer_headers(&seen), vec![format!("Bearer {KEY}")]);

    // The event says the key changed, and holds no key.
    let events = app.store.events_after(0, 100).await.unwrap();
    let change = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::SettingsChanged { section, after, .. } if section == "providers" => {
                Some(after.clone())
            }
            _ => None,
        })
        .expect("recorded");
    assert_eq!(change["providers"]["acme"]["key"], "changed", "{change}");
    assert_eq!(
        change["aliases"]["factory/coder"],
        json!(["acme:gpt-4o-mini"])
    );
    assert!(!events_json(&app.store).await.contains(KEY));

    // GET shows where the key is and its last four characters, never the key.
    let res = app.get("/api/settings").await;
    let text = res.text().await.unwrap();
    assert!(
        !text.contains(KEY) && !text.contains(&KEY[..12]),
        "the key leaked"
    );
    let settings: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(acme(&settings)["key_status"], "key set, ends in …1234");
    assert_eq!(acme(&settings)["overlay"], true);
    let page = app.get("/settings").await.text().await.unwrap();
    assert!(page.contains("key set, ends in …1234") && !page.contains(KEY));
    // The secrets file holds it, for its owner only.
    let secrets = app.store.path().parent().unwrap().join("secrets");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&secrets).unwrap().contains(KEY));
}

#[tokio::test]
async fn a_restart_replays_the_provider_with_its_stored_key() {
    let (base, seen) = serve_openai(KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let (status, saved) = add(&app, &provider(&base)).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    app.stop().await;
    drop(app);

    let again = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let (who, _) = call_coder(&again).await.expect("replayed with its key");
    assert_eq!(who, "acme:gpt-4o-mini");
    assert_eq!(bearer_headers(&seen), vec![format!("Bearer {KEY}")]);
    let settings: Value = again.get("/api/settings").await.json().await.unwrap();
    assert_eq!(
        settings["providers_source"]["event_seq"], saved["event_seq"],
        "{settings}"
    );
}

#[tokio::test]
async fn refused_input_names_the_field_and_records_and_stores_nothing() {
    let (base, _) = serve_openai(KEY).await;
    let app = TestApp::spawn().await;
    // The admin token's own events come first.
    let start = app.store.last_seq().await.unwrap();
    let with = |change: fn(&mut Value)| {
        let mut body = provider(&base);
        change(&mut body);
        body
    };
    let cases = [
        (
            with(|b| b["name"] = json!("Acme Inc")),
            "name: `Acme Inc` is not a provider name",
        ),
        (
            with(|b| b["kind"] = json!("gemini")),
            "kind: `gemini` is not a provider kind (accepted: openai, anthropic, ollama)",
        ),
        (
            with(|b| b["base_url"] = json!("file:///etc/passwd")),
            "base_url: `file:///etc/passwd` is not an http:// or https:// address",
        ),
        (
            with(|b| b["base_url"] = json!("not a url")),
            "base_url: `not a url` is not an http:// or https:// address",
        ),
        (
            with(|b| b["model"] = json!("")),
            "model: give the model's name",
        ),
        (
            with(|b| b["api_key"] = json!("x".repeat(5000))),
            "api_key: a key has 1 to 4096 characters",
        ),
        (
            with(|b| b["api_key"] = json!("sk-a\r\nX-Injected: 1")),
            "api_key: a key is visible ASCII characters only",
        ),
        (
            with(|b| b["api_key_env"] = json!("OPENAI_API_KEY")),
            "give the key or the variable holding it, not both",
        ),
        (
            with(|b| {
                b["every_alias"] = json!(false);
                b["aliases"] = json!(["local/embed"]);
            }),
            "aliases: `local/embed` cannot be pointed at a chat model",
        ),
        (
            with(|b| b["aliases"] = json!(["factory/coder"])),
            "every_alias, aliases: use the model for every alias or name the aliases, not both",
        ),
        (
            with(|b| b["colour"] = json!("red")),
            "provider: unknown field `colour`",
        ),
        (
            with(|b| b["name"] = json!("offline")),
            "name: a provider `offline` already exists",
        ),
        (json!([1, 2]), "provider: invalid type"),
    ];
    for (body, needle) in cases {
        let (status, error) = add(&app, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{needle}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should say {needle:?}"
        );
        assert!(
            !message.contains("sk-a"),
            "a refusal never repeats a key: {message}"
        );
    }
    // A body over the limit is refused before it is read.
    let huge =
        json!({"name": "acme", "kind": "openai", "model": "m", "api_key": "k".repeat(2 << 20)});
    let res = app.post_json("/api/settings/providers", &huge).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        app.store.last_seq().await.unwrap(),
        start,
        "nothing is recorded"
    );
    assert!(
        !app.store.path().parent().unwrap().join("secrets").exists(),
        "no key is stored"
    );
    let (who, _) = call_coder(&app).await.unwrap();
    assert_eq!(who, "offline:template", "nothing is applied");
}

#[tokio::test]
async fn editing_keeps_the_key_and_removing_gives_the_chains_back_to_the_file() {
    let (base, seen) = serve_openai(KEY).await;
    let app = TestApp::spawn().await;
    let (status, _) = add(&app, &provider(&base)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = add(&app, &provider(&base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        again.to_string().contains("already exists: edit it"),
        "{again}"
    );

    // An edit without a key keeps the stored one; the model changes.
    let edit =
        json!({"kind": "openai", "base_url": base, "model": "gpt-4.1-mini", "every_alias": true});
    let (status, saved) =
        status_json(app.put_json("/api/settings/providers/acme", &edit).await).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (who, _) = call_coder(&app).await.unwrap();
    assert_eq!(who, "acme:gpt-4.1-mini");
    assert_eq!(
        bearer_headers(&seen).last().unwrap(),
        &format!("Bearer {KEY}")
    );
    let after = app.store.events_after(0, 100).await.unwrap();
    let last = after
        .iter()
        .rev()
        .find(|e| matches!(e.data, EventData::SettingsChanged { .. }))
        .map(|e| serde_json::to_value(&e.data).unwrap())
        .unwrap();
    assert_eq!(
        last["payload"]["after"]["providers"]["acme"]["key"], "stored",
        "{last}"
    );

    // Chains edited by hand: an unknown provider is refused with the file's words.
    let bad = json!({"chains": {"factory/fast": ["ghost:model"]}});
    let (status, error) = status_json(app.put_json("/api/settings/aliases", &bad).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error
            .to_string()
            .contains("provider `ghost` in `ghost:model` is not configured"),
        "{error}"
    );
    let good = json!({"chains": {"factory/fast": ["acme:gpt-4o-mini", "offline:template"]}});
    let (status, _) = status_json(app.put_json("/api/settings/aliases", &good).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.gateway.resolve("factory/fast").unwrap(),
        vec!["acme:gpt-4o-mini", "offline:template"]
    );

    // Removed: out of every chain, the file's chains back, the key gone from the file.
    let res = app
        .client
        .delete(app.url("/api/settings/providers/acme"))
        .bearer_auth(crate::support::app::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.gateway.resolve("factory/coder").unwrap(),
        vec!["ollama:auto", "offline:template"]
    );
    assert_eq!(
        app.gateway.resolve("factory/fast").unwrap(),
        vec!["offline:template"]
    );
    let secrets =
        std::fs::read_to_string(app.store.path().parent().unwrap().join("secrets")).unwrap();
    assert!(!secrets.contains(KEY), "{secrets}");
    let (status, _) = status_json(app.post("/api/settings/providers/acme/test").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_test_button_shows_what_answered_and_the_capabilities_in_force() {
    let (base, seen) = serve_openai(KEY).await;
    let app = TestApp::spawn().await;
    let (status, _) = add(&app, &provider(&base)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, report) = status_json(app.post("/api/settings/providers/acme/test").await).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["answered_by"], "acme:gpt-4o-mini", "{report}");
    assert_eq!(report["reply"], "ready (gpt-4o-mini on the keyed server)");
    assert_eq!(report["input_tokens"], 17);
    let caps: Vec<(String, String)> = report["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let names: Vec<&str> = caps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "context_window",
            "temperature",
            "reasoning_effort",
            "tools",
            "structured_output",
            "max_completion_tokens"
        ]
    );
    assert_eq!(caps[0].1, "128000 tokens", "gpt-4o's family");
    assert_eq!(caps[3].1, "native tool calling");
    assert_eq!(seen.lock().unwrap().len(), 1, "one tiny call");

    // A wrong key: the provider's own error, never the key.
    let wrong = json!({"kind": "openai", "base_url": base, "model": "gpt-4o-mini", "api_key": "sk-wrong-key-000000009999"});
    let (status, _) = status_json(app.put_json("/api/settings/providers/acme", &wrong).await).await;
    assert_eq!(status, StatusCode::OK);
    let (_, report) = status_json(app.post("/api/settings/providers/acme/test").await).await;
    assert!(report["answered_by"].is_null(), "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("Incorrect API key provided") && error.contains("acme"),
        "{error}"
    );
    assert!(!report.to_string().contains("sk-wrong-key"), "{report}");
}
