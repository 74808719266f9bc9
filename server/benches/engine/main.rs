//! Engine benchmark, against a scripted OpenAI-compatible model on loopback (no sandbox):
//!
//! 1. per-stage orchestration overhead over 200 sequential five-stage runs with an instant
//!    model: the time from one stage's commit to the next, minus the time spent waiting on the
//!    model server (context packing, recall, the gate, artifacts on disk, the durable commit),
//!    beside the machine's floor measured in the same run after it (one fsync'd SQLite commit,
//!    into a new WAL and into one that already has its full length, as the store's does);
//! 2. 1,000 concurrent runs against a model that takes 500 ms per call: runs per second and
//!    the peak resident memory of the whole process (engine, store and the scripted model);
//! 3. the engineering agent loop's overhead per turn: a work order whose engineer runs
//!    `true` for 20 turns before it answers, in a real git repository (the `process` runner,
//!    so the sandbox is not what is measured). A turn's overhead is the time from the model's
//!    answer leaving the model server to the next request arriving, minus the command's own
//!    time (measured alone in the same run): parsing the action, recording the command,
//!    building and sending the next request;
//! 4. section 1 again on the same engine with traces exported over OTLP/HTTP to a loopback
//!    receiver (the `tracing` subscriber with the OpenTelemetry layer that
//!    `OTEL_EXPORTER_OTLP_ENDPOINT` sets up), and what that adds per stage at p50. It runs last:
//!    the subscriber, once installed, stays for the process.
//!
//! `cargo bench -p server --bench engine` (`FACTORY_BENCH_RUNS`, `FACTORY_BENCH_CONCURRENT`,
//! `FACTORY_BENCH_DELAY_MS`, `FACTORY_BENCH_AGENT_RUNS` change the load; `FACTORY_BENCH_DIR` where the data lives).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::events::EventData;
use factory_server::config::{EnvSnapshot, FactoryConfig};
use factory_server::engine::Engine;
use factory_server::gateway::Gateway;
use factory_server::store::Store;
use factory_server::store::runs::NewRun;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use tokio_util::sync::CancellationToken;

mod agent;
mod loopback;

use agent::agent_loop;
use loopback::{AGENT_TURNS, model, otlp_receiver};

#[path = "../common/mod.rs"]
mod common;
use common::{env_or, percentile};

/// Longest a run may go without an event before the bench fails (rather than hang: a run
/// that waits for a person never finishes).
const QUIET_LIMIT: Duration = Duration::from_secs(60);
/// Longest the concurrent runs may take together.
const CONCURRENT_LIMIT: Duration = Duration::from_secs(600);

/// One line of the results table: what was measured, and its value.
fn row(measure: impl std::fmt::Display, value: impl std::fmt::Display) {
    println!("{measure:<52} {value:>16}");
}

fn main() {
    let _ = rlimit::increase_nofile_limit(65_536);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
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
             [approvals]\nfinal_review = false\nauto_approve = true\n"
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
    // As the server does when it starts.
    store.reserve_wal().await;
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

/// The machine's floor for a stage: one small durable commit (a row inserted, WAL,
/// `synchronous = FULL`, as the store commits) on the bench's own disk, 200 times; sorted.
/// `grown`: into a WAL that already has its length (as the store's, which reserves it), rather
/// than one that each commit extends.
async fn fsync_floor(dir: &std::path::Path, grown: bool) -> Vec<Duration> {
    use sqlx::Connection;
    let name = if grown { "floor-grown.db" } else { "floor.db" };
    let options = SqliteConnectOptions::new()
        .filename(dir.join(name))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("wal_autocheckpoint", "0");
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("floor db");
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("floor table");
    if grown {
        // About 40 MB of frames, then a checkpoint that starts the WAL over: the file keeps
        // its length and the commits below overwrite it.
        let page = "x".repeat(4_000);
        for _ in 0..100 {
            let mut tx = conn.begin().await.expect("grow");
            for _ in 0..100 {
                sqlx::query("INSERT INTO t (payload) VALUES (?)")
                    .bind(&page)
                    .execute(&mut *tx)
                    .await
                    .expect("grow");
            }
            tx.commit().await.expect("grow");
        }
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .execute(&mut conn)
            .await
            .expect("checkpoint");
    }
    let mut commits = Vec::with_capacity(200);
    for i in 0..200 {
        let started = Instant::now();
        sqlx::query("INSERT INTO t (payload) VALUES (?)")
            .bind(format!("commit {i}"))
            .execute(&mut conn)
            .await
            .expect("floor commit");
        commits.push(started.elapsed());
    }
    commits.sort();
    commits
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

    // 1. Per-stage overhead, sequential runs, instant model, without a trace subscriber
    // (section 4 repeats it with traces exported).
    let base = model(Duration::ZERO).await;
    let (quick, quick_store, dir) = engine_for(&base, 4).await;
    let overheads = stage_overheads(&quick, &quick_store, sequential).await;
    // The floors after the stages: growing a WAL writes 80 MB, which must not disturb them.
    let floors = fsync_floor(dir.path(), false).await;
    let floor = percentile(&floors, 0.50);
    let grown_floors = fsync_floor(dir.path(), true).await;

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
    // Measured before the agent loop's engine adds its own.
    let peak_mib = peak_rss_mib();

    // 3. The agent loop's overhead per turn.
    let (turn_overheads, command_p50) =
        agent_loop(env_or("FACTORY_BENCH_AGENT_RUNS", 5) as usize).await;

    // 4. Section 1 again with traces exported (last: the subscriber stays for the process).
    let (receiver, exported) = otlp_receiver().await;
    let provider = factory_server::telemetry::provider(Some(&format!("{receiver}/v1/traces")))
        .expect("OTLP exporter");
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        let layer = factory_server::telemetry::layer_for(&provider)
            .with_filter(factory_server::telemetry::span_filter());
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the bench's only subscriber");
    }
    let traced = stage_overheads(&quick, &quick_store, sequential).await;
    let _ = provider.force_flush();
    let exported = exported.load(std::sync::atomic::Ordering::Relaxed);
    assert!(exported > 0, "the traced runs sent their spans");
    let _ = provider.shutdown();

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1_000.0);
    println!("engine benchmark (scripted model on loopback, durable SQLite commits)");
    row("measure", "value");
    row("sequential five-stage runs", sequential);
    // A p50 row and a p99 row; `label` holds `{p}` where the percentile's name goes.
    let percentiles = |label: &str, samples: &[Duration]| {
        for (name, p) in [("p50", 0.50), ("p99", 0.99)] {
            row(label.replace("{p}", name), ms(percentile(samples, p)));
        }
    };
    let to_floor = |label: &str, floor: Duration| {
        let ratio = percentile(&overheads, 0.50).as_secs_f64() / floor.as_secs_f64();
        row(label, format!("{ratio:.1}×"));
    };
    percentiles("per-stage overhead {p}", &overheads);
    percentiles("per-stage overhead {p}, traces exported", &traced);
    row(
        "traces: added per stage p50 (target <= 0.2 ms)",
        ms(percentile(&traced, 0.50).saturating_sub(percentile(&overheads, 0.50))),
    );
    row("OTLP requests received", exported);
    percentiles("floor: one fsync'd SQLite commit (WAL, FULL) {p}", &floors);
    percentiles("floor, into a WAL of its full size: {p}", &grown_floors);
    to_floor("per-stage overhead p50 / floor", floor);
    to_floor(
        "per-stage overhead p50 / floor into a full-size WAL",
        percentile(&grown_floors, 0.50),
    );
    row("per-stage overhead max", ms(*overheads.last().unwrap()));
    row(
        format!("agent loop turns ({AGENT_TURNS} per work order)"),
        turn_overheads.len(),
    );
    row(
        "a command alone (`true`, process runner) p50",
        ms(command_p50),
    );
    row(
        "agent loop overhead per turn p50",
        ms(percentile(&turn_overheads, 0.50)),
    );
    row(
        "agent loop overhead per turn p99",
        ms(percentile(&turn_overheads, 0.99)),
    );
    row(
        format!("concurrent runs ({} ms per model call)", delay.as_millis()),
        concurrent,
    );
    row("all finished in", format!("{:.2} s", elapsed.as_secs_f64()));
    row(
        "runs/s",
        format!("{:.1}", concurrent as f64 / elapsed.as_secs_f64()),
    );
    row("succeeded", statuses.get("succeeded").copied().unwrap_or(0));
    row(
        "peak resident memory (whole process, sections 1 and 2)",
        format!("{peak_mib:.0} MiB"),
    );
}

/// The time from each stage's commit to the next, minus the model server's own time, over
/// `sequential` five-stage runs (after five to warm up), sorted.
async fn stage_overheads(engine: &Arc<Engine>, store: &Store, sequential: usize) -> Vec<Duration> {
    let mut overheads = Vec::with_capacity(sequential * 5);
    let mut events = store.subscribe();
    for i in 0..sequential + 5 {
        let run_id = create(
            store,
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
    overheads
}
