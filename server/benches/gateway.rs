//! Gateway overhead benchmark: requests through the gateway to a zero-latency OpenAI-compatible
//! server on loopback, at a fixed arrival rate (default 1,000 requests/s for 10 s). Overhead is
//! the total request time minus the time spent waiting on the upstream (request sent to body
//! received, measured inside the provider client), so it covers alias resolution, the budget
//! reservation and settlement, semaphores, request encoding, reply parsing, costing and queueing
//! the two ledger events (committed by the group-commit writer to a real SQLite file).
//!
//! `cargo bench -p server --bench gateway` (`FACTORY_BENCH_RATE`, `FACTORY_BENCH_SECS` change
//! the load; `FACTORY_BENCH_DIR` where the ledger lives).

use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use factory_server::config::gateway::{ModelConfig, ProviderConfig, ProviderKind};
use factory_server::config::{EnvSnapshot, GatewayConfig};
use factory_server::gateway::Gateway;
use factory_server::gateway::types::{Message, ModelRequest};
use factory_server::store::Store;
use factory_server::store::model_calls::cost_report;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn upstream() -> String {
    let reply = json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 24, "completion_tokens": 1, "total_tokens": 25}
    });
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let reply = reply.clone();
            async move { Json(reply) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

async fn run() {
    let rate = env_or("FACTORY_BENCH_RATE", 1_000).max(1);
    let secs = env_or("FACTORY_BENCH_SECS", 10).max(1);
    let base = std::env::var_os("FACTORY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("bench directory");
    let store = Store::open(dir.path()).await.expect("store opens");

    let url = upstream().await;
    let mut config = GatewayConfig::defaults(&EnvSnapshot::default());
    config.providers.insert(
        "bench".into(),
        ProviderConfig {
            kind: ProviderKind::Openai,
            base_url: Some(url),
            api_key_env: None,
            key_stored: false,
        },
    );
    config
        .aliases
        .insert("bench/fast".into(), vec!["bench:bench-model".into()]);
    // Priced, so every call reserves and settles against the budgets.
    config.models.insert(
        "bench:bench-model".into(),
        ModelConfig {
            input_per_mtok: 0.01,
            output_per_mtok: 0.01,
            max_concurrency: 64,
            context_window: Some(8_000),
            ..ModelConfig::default()
        },
    );
    config.budgets.month.soft = None;
    config.budgets.month.hard = Some(1_000_000.0);
    config.budgets.month.emergency = None;
    config.budgets.run.hard = None;
    config.retry.max_in_flight = 64;
    let gateway = std::sync::Arc::new(
        Gateway::with_ledger(config, store.clone())
            .await
            .expect("gateway"),
    );
    let request = |i: u64| {
        let mut r = ModelRequest::new(
            "bench/fast",
            vec![
                Message::system("You are a terse assistant."),
                Message::user(format!("Reply with ok. Request {i}.")),
            ],
            16,
        );
        r.attribution.run_id = Some(format!("bench-run-{}", i % 50));
        r.attribution.team = Some("backend-engineering".into());
        r
    };

    // Warm up connections and caches.
    for i in 0..200 {
        gateway.complete(&request(i)).await.expect("warm-up call");
    }

    let total = rate * secs;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        ticker.tick().await;
        let gateway = gateway.clone();
        let r = request(i);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let reply = gateway.complete(&r).await.expect("bench call");
            let elapsed = t.elapsed();
            let upstream = Duration::from_micros(reply.upstream_us);
            (elapsed.saturating_sub(upstream), upstream)
        }));
    }
    let mut overhead = Vec::with_capacity(tasks.len());
    let mut upstream = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (o, u) = task.await.expect("task");
        overhead.push(o);
        upstream.push(u);
    }
    let elapsed = started.elapsed();
    gateway.flush().await;
    overhead.sort();
    upstream.sort();
    let report = cost_report(&store).await.expect("report");
    let recorded = report.total.map_or(0, |t| t.calls);

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1_000.0);
    println!("gateway overhead (zero-latency loopback upstream, ledger on SQLite)");
    println!("{:<34} {:>14}", "measure", "value");
    println!("{:<34} {:>14}", "requests", total);
    println!(
        "{:<34} {:>14}",
        "achieved rate",
        format!("{:.0} req/s", total as f64 / elapsed.as_secs_f64())
    );
    println!(
        "{:<34} {:>14}",
        "overhead p50",
        ms(percentile(&overhead, 0.50))
    );
    println!(
        "{:<34} {:>14}",
        "overhead p99",
        ms(percentile(&overhead, 0.99))
    );
    println!(
        "{:<34} {:>14}",
        "overhead max",
        ms(*overhead.last().unwrap())
    );
    println!(
        "{:<34} {:>14}",
        "upstream wait p50",
        ms(percentile(&upstream, 0.50))
    );
    println!(
        "{:<34} {:>14}",
        "upstream wait p99",
        ms(percentile(&upstream, 0.99))
    );
    println!("{:<34} {:>14}", "calls in the ledger", recorded);
}
