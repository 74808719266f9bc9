//! Event store benchmark: durable single appends per second, append latency p50/p99, and
//! events per second with batched appends, on a real SQLite file (WAL, fsync on commit).
//!
//! `cargo bench -p server --bench store` (FACTORY_BENCH_DIR picks the directory, default a
//! temporary one under /tmp: use the disk you care about).

use std::time::{Duration, Instant};

use app::events::EventData;
use factory_server::store::runs::NewRun;
use factory_server::store::{NewEvent, Store};

#[path = "common/mod.rs"]
mod common;
use common::percentile;

const SINGLE_APPENDS: usize = 2_000;
const BATCHES: usize = 50;
const BATCH_SIZE: usize = 1_000;

fn event(i: usize) -> NewEvent {
    NewEvent::new(
        "bench",
        EventData::AdminTokenCreated {
            token_id: format!("bench-{i}"),
            label: "a label of typical length for an event payload".into(),
        },
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let base = std::env::var_os("FACTORY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("bench directory");
    let store = Store::open(dir.path()).await.expect("store opens");

    // Warm up: statement cache, WAL file.
    for i in 0..100 {
        store.append(event(i)).await.unwrap();
    }

    let mut latencies = Vec::with_capacity(SINGLE_APPENDS);
    let started = Instant::now();
    for i in 0..SINGLE_APPENDS {
        let t = Instant::now();
        store.append(event(i)).await.unwrap();
        latencies.push(t.elapsed());
    }
    let single_elapsed = started.elapsed();
    latencies.sort();

    let mut runs = Vec::with_capacity(SINGLE_APPENDS / 4);
    let started_runs = Instant::now();
    for i in 0..SINGLE_APPENDS / 4 {
        let t = Instant::now();
        store
            .create_run(
                NewRun {
                    goal: format!("Benchmark goal number {i}"),
                    project: None,
                    request_id: Some(format!("bench-{i}")),
                    pipeline: None,
                },
                "bench",
            )
            .await
            .unwrap();
        runs.push(t.elapsed());
    }
    let runs_elapsed = started_runs.elapsed();
    runs.sort();

    let started = Instant::now();
    for b in 0..BATCHES {
        let batch = (0..BATCH_SIZE).map(|i| event(b * BATCH_SIZE + i)).collect();
        store.append_batch(batch).await.unwrap();
    }
    let batch_elapsed = started.elapsed();

    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("event store benchmark (SQLite WAL, synchronous=FULL: every commit fsync'd)");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| durable single appends/s ({SINGLE_APPENDS}) | {:.0} |",
        per_sec(SINGLE_APPENDS, single_elapsed)
    );
    println!(
        "| append latency p50 | {:.3} ms |",
        ms(percentile(&latencies, 0.50))
    );
    println!(
        "| append latency p99 | {:.3} ms |",
        ms(percentile(&latencies, 0.99))
    );
    println!(
        "| idempotent run creations/s (check + append + projection) | {:.0} |",
        per_sec(runs.len(), runs_elapsed)
    );
    println!(
        "| run creation p99 | {:.3} ms |",
        ms(percentile(&runs, 0.99))
    );
    println!(
        "| batched events/s ({BATCHES} × {BATCH_SIZE}) | {:.0} |",
        per_sec(BATCHES * BATCH_SIZE, batch_elapsed)
    );
    store.close().await;
}
