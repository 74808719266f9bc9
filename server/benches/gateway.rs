//! Gateway overhead benchmark: requests through the gateway to a zero-latency OpenAI-compatible
//! server on loopback, at a fixed arrival rate (default 1,000 requests/s for 10 s). Overhead is
//! the total request time minus the time spent waiting on the upstream (request sent to body
//! received, measured inside the provider client), so it covers alias resolution, the budget
//! reservation and settlement, semaphores, request encoding, reply parsing, costing and queueing
//! the two ledger events (committed by the group-commit writer to a real SQLite file). It runs
//! twice, with whole replies and with streamed ones (server-sent events reassembled, progress
//! reported), and prints next to them the machine's floor for what every call waits on: one
//! durable SQLite commit.
//!
//! `cargo bench -p server --bench gateway` (`FACTORY_BENCH_RATE`, `FACTORY_BENCH_SECS` change
//! the load; `FACTORY_BENCH_DIR` where the ledger lives).

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::events::EventData;
use axum::Json;
use axum::response::IntoResponse;
use axum::routing::post;
use factory_server::config::gateway::{ModelConfig, ProviderConfig, ProviderKind};
use factory_server::config::{EnvSnapshot, GatewayConfig};
use factory_server::gateway::Gateway;
use factory_server::gateway::types::{Message, ModelRequest, Progress};
use factory_server::store::model_calls::cost_report;
use factory_server::store::{NewEvent, Store};
use serde_json::{Value, json};

#[path = "common/mod.rs"]
mod common;
use common::{env_or, percentile};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// A zero-latency OpenAI-compatible server: a whole reply, or the same reply streamed the way
/// the API streams it (role, content, finish, usage, `[DONE]`) when the request asks.
async fn upstream() -> String {
    let whole = json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 24, "completion_tokens": 1, "total_tokens": 25}
    });
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench-model",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut frames = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "ok"}), Value::Null),
        chunk(json!({}), json!("stop")),
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 24, "completion_tokens": 1, "total_tokens": 25}}),
    ]
    .iter()
    .map(|f| format!("data: {f}\n\n"))
    .collect::<String>();
    frames.push_str("data: [DONE]\n\n");
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<Value>| {
            let (whole, frames) = (whole.clone(), frames.clone());
            async move {
                if body["stream"] == true {
                    ([("content-type", "text/event-stream")], frames).into_response()
                } else {
                    Json(whole).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

/// One phase's figures.
struct Phase {
    rate: f64,
    overhead: Vec<Duration>,
    upstream: Vec<Duration>,
}

/// How a phase's calls reach the ledger.
#[derive(Clone, Copy, PartialEq)]
enum Ledger {
    /// `complete`: each call answers once its ledger events are durably committed (the REST
    /// API's and the CLI's calls).
    PerCall,
    /// `complete_deferred`: each call hands back its ledger events, committed later with the
    /// step that made the call (the engine's calls: one commit per stage). Here they are
    /// committed in one batch after the phase, outside the measured time.
    WithTheStep,
}

/// `total` requests at `rate` per second, streamed or whole; overhead and upstream sorted.
async fn phase(
    gateway: &Arc<Gateway>,
    store: &Store,
    rate: u64,
    total: u64,
    streamed: bool,
    ledger: Ledger,
) -> Phase {
    let request = move |i: u64| {
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
        if streamed {
            r.progress = Some(Progress::new(|p| {
                std::hint::black_box(p);
            }));
        }
        r
    };
    // Warm up connections and caches.
    for i in 0..200 {
        gateway.complete(&request(i)).await.expect("warm-up call");
    }
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
            let (reply, events) = match ledger {
                Ledger::PerCall => (gateway.complete(&r).await, Vec::new()),
                Ledger::WithTheStep => gateway.complete_deferred(&r).await,
            };
            let elapsed = t.elapsed();
            let reply = reply.expect("bench call");
            let upstream = Duration::from_micros(reply.upstream_us);
            (elapsed.saturating_sub(upstream), upstream, events)
        }));
    }
    let mut overhead = Vec::with_capacity(tasks.len());
    let mut upstream = Vec::with_capacity(tasks.len());
    let mut deferred = Vec::new();
    for task in tasks {
        let (o, u, events) = task.await.expect("task");
        overhead.push(o);
        upstream.push(u);
        deferred.extend(events.into_iter().map(|e| NewEvent::new("bench", e)));
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    for batch in deferred.chunks(500) {
        store
            .append_batch(batch.to_vec())
            .await
            .expect("deferred ledger events commit");
    }
    overhead.sort();
    upstream.sort();
    Phase {
        rate,
        overhead,
        upstream,
    }
}

/// The machine's floor for what the gateway waits on: one durable commit of a small event to
/// the same kind of SQLite file, sequentially (p50 of `n`).
async fn commit_floor(dir: &std::path::Path, n: usize) -> Duration {
    let store = Store::open(dir).await.expect("floor store opens");
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        store
            .append(NewEvent::new(
                "bench",
                EventData::TokenRevoked {
                    token_id: format!("floor-{i}"),
                    reason: "commit floor".into(),
                },
            ))
            .await
            .expect("floor append");
        times.push(t.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

async fn run() {
    let rate = env_or("FACTORY_BENCH_RATE", 1_000).max(1);
    let secs = env_or("FACTORY_BENCH_SECS", 10).max(1);
    let base = std::env::var_os("FACTORY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).expect("bench directory");
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
    let gateway = Arc::new(
        Gateway::with_ledger(config, store.clone())
            .await
            .expect("gateway"),
    );

    let total = rate * secs;
    let whole = phase(&gateway, &store, rate, total, false, Ledger::PerCall).await;
    let streamed = phase(&gateway, &store, rate, total, true, Ledger::PerCall).await;
    let engine_path = phase(&gateway, &store, rate, total, true, Ledger::WithTheStep).await;
    gateway.flush().await;
    let report = cost_report(&store).await.expect("report");
    let recorded = report.total.map_or(0, |t| t.calls);
    let floor_dir = tempfile::tempdir_in(&base).expect("floor directory");
    let floor = commit_floor(floor_dir.path(), if smoke() { 20 } else { 500 }).await;

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1_000.0);
    let row = |name: &str, f: &dyn Fn(&Phase) -> String| {
        println!(
            "{name:<28} {:>14} {:>14} {:>18}",
            f(&whole),
            f(&streamed),
            f(&engine_path)
        );
    };
    println!("gateway overhead (zero-latency loopback upstream, ledger on SQLite)");
    println!(
        "{:<28} {:>14} {:>14} {:>18}",
        "measure", "whole reply", "streamed", "streamed, ledger"
    );
    println!(
        "{:<28} {:>14} {:>14} {:>18}",
        "", "(per call)", "(per call)", "with the step"
    );
    row("requests", &|_| total.to_string());
    row("achieved rate", &|p| format!("{:.0} req/s", p.rate));
    row("overhead p50", &|p| ms(percentile(&p.overhead, 0.50)));
    row("overhead p99", &|p| ms(percentile(&p.overhead, 0.99)));
    row("overhead max", &|p| ms(*p.overhead.last().unwrap()));
    row("upstream wait p50", &|p| ms(percentile(&p.upstream, 0.50)));
    row("upstream wait p99", &|p| ms(percentile(&p.upstream, 0.99)));
    println!("{:<28} {:>14}", "calls in the ledger", recorded);
    println!(
        "{:<28} {:>14}   (floor: one durable commit, sequential, p50)",
        "machine commit floor",
        ms(floor)
    );
}

fn smoke() -> bool {
    std::env::var_os("FACTORY_BENCH_SMOKE").is_some()
}
