//! Ollama detection and chat against a loopback server speaking Ollama's native API.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::providers::serve_ollama;
use crate::support::{
    EnvSnapshot, Gateway, GatewayConfig, Message, ModelRequest, ProviderConfig, ProviderKind,
    free_port,
};

/// A gateway with `test/local` = [ollama:auto, offline:template] against `base`.
fn gateway(base: &str) -> Gateway {
    let mut config = GatewayConfig::defaults(&EnvSnapshot::default());
    config.providers.insert(
        "ollama".into(),
        ProviderConfig {
            kind: ProviderKind::Ollama,
            base_url: Some(base.into()),
            api_key_env: None,
            key_stored: false,
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
    // Nothing listens on this port.
    let port = free_port();
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
