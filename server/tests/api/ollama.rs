//! Ollama detection and chat against a loopback server speaking Ollama's native API.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use factory_server::gateway::config::{GatewayConfig, ProviderConfig, ProviderKind};
use factory_server::gateway::types::{Message, ModelRequest};
use factory_server::gateway::{EnvSnapshot, Gateway};
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<Value>>>;

/// An Ollama that lists `models` and answers every chat with "local answer".
pub(crate) async fn serve_ollama(models: &'static [&'static str]) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/tags",
            get(move || async move {
                let list: Vec<Value> = models.iter().map(|m| json!({"name": m, "size": 1})).collect();
                Json(json!({ "models": list }))
            }),
        )
        .route(
            "/api/chat",
            post(|State(seen): State<Seen>, Json(body): Json<Value>| async move {
                let model = body["model"].clone();
                seen.lock().unwrap().push(body);
                Json(json!({
                    "model": model, "done": true,
                    "message": {"role": "assistant", "content": "{\"answer\":\"local answer\"}"},
                    "prompt_eval_count": 21, "eval_count": 7
                }))
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// A gateway with `test/local` = [ollama:auto, offline:template] against `base`.
fn gateway(base: &str) -> Gateway {
    let mut config = GatewayConfig::defaults(&EnvSnapshot::default());
    config.providers.insert(
        "ollama".into(),
        ProviderConfig {
            kind: ProviderKind::Ollama,
            base_url: Some(base.into()),
            api_key_env: None,
        },
    );
    config.aliases.insert(
        "test/local".into(),
        vec!["ollama:auto".into(), "offline:template".into()],
    );
    config.retry.backoff_base_ms = 1;
    config.retry.backoff_max_ms = 5;
    config.validate().unwrap();
    Gateway::new(config)
}

fn request(schema: Option<Value>) -> ModelRequest {
    let mut request =
        ModelRequest::new("test/local", vec![Message::user("Summarise the plan")], 128);
    request.temperature = Some(0.2);
    request.schema = schema;
    request
}

#[tokio::test]
async fn auto_uses_the_first_chat_model_with_the_schema_as_format() {
    let (base, seen) =
        serve_ollama(&["nomic-embed-text:latest", "qwen2.5-coder:7b", "llama3.2:3b"]).await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}});
    let res = gateway(&base)
        .complete(&request(Some(schema.clone())))
        .await
        .unwrap();
    assert_eq!(res.provider, "ollama");
    assert_eq!(
        res.model, "qwen2.5-coder:7b",
        "embedding models are not chat models"
    );
    assert_eq!(res.json, Some(json!({"answer": "local answer"})));
    assert_eq!((res.input_tokens, res.output_tokens), (21, 7));
    assert_eq!(res.cost_usd, 0.0, "local models cost nothing");
    let body = seen.lock().unwrap()[0].clone();
    assert_eq!(body["stream"], false);
    assert_eq!(body["format"], schema);
    assert_eq!(body["options"]["num_predict"], 128);
}

#[tokio::test]
async fn a_missing_ollama_is_skipped_at_once() {
    // Nothing listens on this port: bind, note the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let res = gateway(&format!("http://127.0.0.1:{port}"))
        .complete(&request(None))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no retries against a missing server"
    );
    assert!(
        res.path[0].outcome.contains("no Ollama answers"),
        "{:?}",
        res.path
    );
    assert_eq!(
        res.provider, "offline",
        "the chain ends in the offline provider"
    );
    assert!(res.text.starts_with("[offline (no model)]"), "{}", res.text);
}

#[tokio::test]
async fn an_ollama_without_chat_models_is_skipped_with_advice() {
    let (base, seen) = serve_ollama(&["nomic-embed-text:latest"]).await;
    let res = gateway(&base).complete(&request(None)).await.unwrap();
    assert!(
        res.path[0].outcome.contains("ollama pull"),
        "{:?}",
        res.path
    );
    assert_eq!(res.provider, "offline");
    assert!(seen.lock().unwrap().is_empty());
}
