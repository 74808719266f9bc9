//! Engine benchmark, against a scripted OpenAI-compatible model on loopback (no sandbox):
//!
//! 1. per-stage orchestration overhead over 200 sequential five-stage runs with an instant
//!    model: the time from one stage's commit to the next, minus the time spent waiting on the
//!    model server (context packing, recall, the gate, artifacts on disk, the durable commit);
//! 2. 1,000 concurrent runs against a model that takes 500 ms per call: runs per second and
//!    the peak resident memory of the whole process (engine, store and the scripted model).
//!
//! `cargo bench -p server --bench engine` (`FACTORY_BENCH_RUNS`, `FACTORY_BENCH_CONCURRENT`,
//! `FACTORY_BENCH_DELAY_MS` change the load; `FACTORY_BENCH_DIR` where the data lives).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::events::EventData;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use factory_server::config::{EnvSnapshot, FactoryConfig};
use factory_server::engine::Engine;
use factory_server::gateway::Gateway;
use factory_server::store::Store;
use factory_server::store::runs::NewRun;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use tokio_util::sync::CancellationToken;

/// Longest a run may go without an event before the bench fails (rather than hang: a run
/// that waits for a person never finishes).
const QUIET_LIMIT: Duration = Duration::from_secs(60);
/// Longest the concurrent runs may take together.
const CONCURRENT_LIMIT: Duration = Duration::from_secs(600);

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
    let _ = rlimit::increase_nofile_limit(65_536);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// Answers every team with a valid TaskResult after `delay`.
async fn model(delay: Duration) -> String {
    async fn chat(State(delay): State<Duration>, Json(body): Json<Value>) -> Response {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let system = body["messages"][0]["content"].as_str().unwrap_or_default();
        let team = system
            .lines()
            .next()
            .and_then(|l| l.rsplit_once('('))
            .and_then(|(_, r)| r.split_once(')'))
            .map_or("team", |(t, _)| t);
        let result = json!({
            "status": "COMPLETE",
            "reasoning": format!("{team} is done"),
            "blockers": [], "assumptions_made": [],
            "verified_facts": [format!("{team} checked the requirement")],
            "clarification_needed": null,
            "artifacts": [{"name": format!("{team}.md"), "content": format!("# {team}\n\nDone.\n")}]
        });
        let usage = json!({"prompt_tokens": 800, "completion_tokens": 80});
        if body["stream"] != true {
            return Json(json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result.to_string()}, "finish_reason": "stop"}],
                "usage": usage
            }))
            .into_response();
        }
        // Streamed as the API streams (the engine asks for it by default).
        let chunk = |delta: Value, finish: Value| json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let mut frames = [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": result.to_string()}), Value::Null),
            chunk(json!({}), json!("stop")),
            json!({"choices": [], "usage": usage}),
        ]
        .iter()
        .map(|f| format!("data: {f}\n\n"))
        .collect::<String>();
        frames.push_str("data: [DONE]\n\n");
        ([("content-type", "text/event-stream")], frames).into_response()
    }
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(delay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

fn config(base: &str, concurrency: usize) -> FactoryConfig {
    let mut c = FactoryConfig::defaults(&EnvSnapshot::default());
    let chain = "[\"lab:bench\"]";
    c.merge_toml(
        &format!(
            "[providers.lab]\nkind = \"openai\"\nbase_url = \"{base}\"\n\
             [aliases]\n\"factory/architect\" = {chain}\n\"factory/coder\" = {chain}\n\
             \"factory/fast\" = {chain}\n\"factory/cheap\" = {chain}\n\
             [models.\"lab:bench\"]\nmax_concurrency = {concurrency}\n\
             [retry]\nmax_in_flight = {concurrency}\ntimeout_secs = 60\n\
             [engine]\nmax_concurrent_runs = {concurrency}\n\
             [approvals]\nfinal_review = false\n"
        ),
        "bench",
    )
    .expect("bench config");
    c.validate().expect("valid bench config");
    c
}

async fn engine_for(base: &str, concurrency: usize) -> (Arc<Engine>, Store, tempfile::TempDir) {
    let root = std::env::var_os("FACTORY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(root).expect("bench directory");
    let store = Store::open_with_capacity(dir.path(), 1 << 17)
        .await
        .expect("store");
    let config = config(base, concurrency);
    let gateway = Arc::new(
        Gateway::with_ledger(config.gateway.clone(), store.clone())
            .await
            .expect("gateway"),
    );
    let engine = Engine::new(
        store.clone(),
        gateway,
        config.engine,
        config.approvals,
        dir.path().to_path_buf(),
        CancellationToken::new(),
    );
    (engine, store, dir)
}

/// A pool of the benchmark's own on the store's file, for counting runs by status (the store
/// keeps its pool to itself). WAL, like the store, so it reads what the engine committed.
async fn read_pool(store: &Store) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(store.path())
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal);
    SqlitePool::connect_with(options)
        .await
        .expect("open the database")
}

async fn create(store: &Store, goal: String) -> String {
    store
        .create_run(
            NewRun {
                goal,
                project: None,
                request_id: None,
                pipeline: None,
            },
            "bench",
        )
        .await
        .expect("run")
        .0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn run() {
    let sequential = env_or("FACTORY_BENCH_RUNS", 200) as usize;
    let concurrent = env_or("FACTORY_BENCH_CONCURRENT", 1_000) as usize;
    let delay = Duration::from_millis(env_or("FACTORY_BENCH_DELAY_MS", 500));

    // 1. Per-stage overhead, sequential runs, instant model.
    let base = model(Duration::ZERO).await;
    let (engine, store, _dir) = engine_for(&base, 4).await;
    let mut overheads = Vec::with_capacity(sequential * 5);
    let mut events = store.subscribe();
    for i in 0..sequential + 5 {
        let run_id = create(
            &store,
            format!("Benchmark requirement number {i}: export orders as CSV"),
        )
        .await;
        engine.submit(run_id.clone());
        let mut last = Instant::now();
        let mut upstream = Duration::ZERO;
        let mut seen = "none";
        loop {
            let Ok(event) = tokio::time::timeout(QUIET_LIMIT, events.recv()).await else {
                panic!(
                    "run {run_id} recorded nothing for {} s (its last event: {seen}); does it wait \
                     for a person?",
                    QUIET_LIMIT.as_secs()
                );
            };
            let event = event.expect("events");
            if event.run_id.as_deref() != Some(run_id.as_str()) {
                continue;
            }
            seen = event.data.kind();
            match &event.data {
                EventData::RunStarted { .. } => last = Instant::now(),
                EventData::ModelCallFinished { upstream_us, .. } => {
                    upstream += Duration::from_micros(*upstream_us);
                }
                EventData::StageCompleted { .. } => {
                    let now = Instant::now();
                    // The first five runs warm caches and connections.
                    if i >= 5 {
                        overheads.push((now - last).saturating_sub(upstream));
                    }
                    last = now;
                    upstream = Duration::ZERO;
                }
                EventData::RunFinished { status, .. } => {
                    assert_eq!(status.as_str(), "succeeded");
                    break;
                }
                _ => {}
            }
        }
    }
    overheads.sort();

    // 2. Concurrent runs, slow model.
    let slow = model(delay).await;
    let (engine, store, _dir2) = engine_for(&slow, concurrent).await;
    let mut ids = Vec::with_capacity(concurrent);
    for i in 0..concurrent {
        ids.push(
            create(
                &store,
                format!("Concurrent requirement {i}: add a report page"),
            )
            .await,
        );
    }
    let db = read_pool(&store).await;
    let started = Instant::now();
    for id in &ids {
        engine.submit(id.clone());
    }
    let mut done = 0i64;
    while done < concurrent as i64 {
        assert!(
            started.elapsed() < CONCURRENT_LIMIT,
            "{done} of {concurrent} concurrent runs finished in {} s",
            CONCURRENT_LIMIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        done = sqlx::query_scalar(
            "SELECT COUNT(*) FROM supervisor_runs WHERE status IN ('succeeded', 'failed', 'canceled')",
        )
        .fetch_one(&db)
        .await
        .expect("count");
    }
    let elapsed = started.elapsed();
    let statuses: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM supervisor_runs GROUP BY status",
    )
    .fetch_all(&db)
    .await
    .expect("statuses")
    .into_iter()
    .collect();

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1_000.0);
    println!("engine benchmark (scripted model on loopback, durable SQLite commits)");
    println!("{:<52} {:>16}", "measure", "value");
    println!("{:<52} {:>16}", "sequential five-stage runs", sequential);
    println!(
        "{:<52} {:>16}",
        "per-stage overhead p50",
        ms(percentile(&overheads, 0.50))
    );
    println!(
        "{:<52} {:>16}",
        "per-stage overhead p99",
        ms(percentile(&overheads, 0.99))
    );
    println!(
        "{:<52} {:>16}",
        "per-stage overhead max",
        ms(*overheads.last().unwrap())
    );
    println!(
        "{:<52} {:>16}",
        format!("concurrent runs ({} ms per model call)", delay.as_millis()),
        concurrent
    );
    println!(
        "{:<52} {:>16}",
        "all finished in",
        format!("{:.2} s", elapsed.as_secs_f64())
    );
    println!(
        "{:<52} {:>16}",
        "runs/s",
        format!("{:.1}", concurrent as f64 / elapsed.as_secs_f64())
    );
    println!(
        "{:<52} {:>16}",
        "succeeded",
        statuses.get("succeeded").copied().unwrap_or(0)
    );
    println!(
        "{:<52} {:>16}",
        "peak resident memory (whole process)",
        format!("{:.0} MiB", peak_rss_mib())
    );
}
