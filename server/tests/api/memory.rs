//! Memory recall: BM25 alone, and fused with vectors from a local embedding model (a scripted
//! Ollama on loopback that embeds words by meaning: "car" and "automobile" share a dimension).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::{
    EnvSnapshot, EventData, Gateway, GatewayConfig, NewEvent, RecallScope, Store, loopback, recall,
};

fn embed(text: &str) -> Vec<f32> {
    let groups: [&[&str]; 4] = [
        &["car", "automobile", "vehicle"],
        &["tyre", "tyres", "wheel", "wheels"],
        &["password", "login", "credential"],
        &["invoice", "invoices", "bill"],
    ];
    let mut v = vec![0.0f32; 5];
    for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
        match groups.iter().position(|g| g.contains(&word)) {
            Some(i) => v[i] += 1.0,
            None if !word.is_empty() => v[4] += 0.1,
            None => {}
        }
    }
    v
}

async fn serve_embeddings(calls: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new()
        .route(
            "/api/tags",
            get(|| async { Json(json!({"models": [{"name": "nomic-embed-text:latest"}]})) }),
        )
        .route(
            "/api/embed",
            post(move |Json(body): Json<Value>| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let vectors: Vec<Vec<f32>> = body["input"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| embed(t.as_str().unwrap()))
                        .collect();
                    Json(json!({"model": body["model"], "embeddings": vectors}))
                }
            }),
        );
    let addr = loopback(app).await;
    format!("http://{addr}")
}

fn gateway(ollama: &str) -> Gateway {
    let mut config = GatewayConfig::defaults(&EnvSnapshot::default());
    config.providers.get_mut("ollama").unwrap().base_url = Some(ollama.to_string());
    Gateway::new(config)
}

async fn remember(store: &Store, id: &str, text: &str) {
    store
        .append(NewEvent::new(
            "test",
            EventData::MemoryRetained {
                item_id: id.into(),
                bank: "backend-engineering".into(),
                project: Some("/repo".into()),
                run_id: Some("earlier-run".into()),
                kind: "fact".into(),
                text: text.into(),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn vectors_find_what_words_miss_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    remember(&store, "a", "The automobile needs new tyres").await;
    remember(&store, "b", "Invoices are sent monthly").await;
    remember(&store, "c", "Password reset emails expire after an hour").await;
    let banks = ["backend-engineering"];
    let scope = RecallScope {
        banks: &banks,
        project: Some("/repo"),
        ..RecallScope::default()
    };

    // Without an embedding model: BM25 alone, and no item contains "car".
    let closed = gateway("http://127.0.0.1:9");
    assert!(
        recall(&store, &closed, "car", &scope, 3)
            .await
            .unwrap()
            .is_empty()
    );
    let words = recall(&store, &closed, "monthly invoices", &scope, 3)
        .await
        .unwrap();
    assert_eq!(words[0].item_id, "b");

    // With one: the automobile item is found for "car", ranked first.
    let calls = Arc::new(AtomicUsize::new(0));
    let with_vectors = gateway(&serve_embeddings(calls.clone()).await);
    let hits = recall(&store, &with_vectors, "car", &scope, 3)
        .await
        .unwrap();
    assert_eq!(hits[0].item_id, "a", "{hits:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the query, then the items once"
    );
    let hits = recall(&store, &with_vectors, "wheels", &scope, 1)
        .await
        .unwrap();
    assert_eq!(hits[0].item_id, "a");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "item vectors come from the cache"
    );
    // A project's memory stays in its project.
    let other = RecallScope {
        banks: &banks,
        project: Some("/other"),
        ..RecallScope::default()
    };
    assert!(
        recall(&store, &with_vectors, "car", &other, 3)
            .await
            .unwrap()
            .is_empty()
    );
}
