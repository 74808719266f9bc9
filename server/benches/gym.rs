//! Gym benchmark: the built-in scenarios with the offline templates (the gates run in the
//! real sandbox), every scenario twice, two at once. Prints the wall time of the whole gym
//! run, the gym's own overhead per attempt (fixture, setup, checks: everything but the run)
//! beside the runs' own time in the same gym run, and the time to write both reports.
//!
//! `cargo bench -p server --bench gym` (`FACTORY_BENCH_REPEAT` attempts per scenario,
//! `FACTORY_BENCH_JOBS` at once; `FACTORY_BENCH_SMOKE=1` makes one of each).

use std::time::{Duration, Instant};

use factory_server::config::{EnvSnapshot, FactoryConfig};
use factory_server::gym::{self, GymOptions};

#[path = "common/mod.rs"]
mod common;
use common::env_or;

fn ms(d: u64) -> String {
    format!("{d} ms")
}

fn main() {
    let smoke = std::env::var("FACTORY_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let repeat = env_or("FACTORY_BENCH_REPEAT", if smoke { 1 } else { 2 }) as u32;
    let jobs = env_or("FACTORY_BENCH_JOBS", 2) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = FactoryConfig::defaults(&EnvSnapshot::default());
    gym::apply_models(&mut config, &["*=offline:template".to_string()]).expect("offline models");
    let options = GymOptions {
        patterns: Vec::new(),
        dirs: Vec::new(),
        no_builtin: false,
        repeat,
        jobs,
        report_dir: dir.path().join("report"),
    };
    let scenarios = gym::select(&options).expect("the built-in scenarios");
    let started = Instant::now();
    let report = runtime
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(600),
                gym::run(scenarios, &options, &config, None, |_| {}),
            )
            .await
        })
        .expect("the gym run finished within 600 s")
        .expect("the gym ran");
    let wall = started.elapsed();
    let attempts: Vec<_> = report
        .scenarios
        .iter()
        .flat_map(|s| &s.attempts)
        .map(|a| &a.record)
        .collect();
    assert!(
        report.scenarios.iter().all(|s| s.passed),
        "a built-in scenario failed with the offline templates"
    );
    let mut overhead: Vec<u64> = attempts.iter().map(|r| r.overhead_ms).collect();
    let mut runs: Vec<u64> = attempts.iter().map(|r| r.run_ms).collect();
    overhead.sort_unstable();
    runs.sort_unstable();
    let p50 = |v: &[u64]| v[v.len() / 2];
    let again = dir.path().join("again");
    std::fs::create_dir_all(&again).expect("a directory for the reports");
    let written = Instant::now();
    report.write(&again).expect("the reports are written");
    let write_ms = written.elapsed().as_secs_f64() * 1000.0;
    let n = attempts.len();
    println!(
        "gym bench: {n} attempts ({repeat} per scenario), {jobs} at once, offline templates, bubblewrap gates"
    );
    println!("| Measure | Result | Target |");
    println!("|---|---|---|");
    println!(
        "| wall time of the gym run | {:.1} s ({:.1} s per 10 attempts) | ≤ 60 s per 10 |",
        wall.as_secs_f64(),
        wall.as_secs_f64() * 10.0 / n as f64
    );
    println!(
        "| gym overhead per attempt, p50 / max | {} / {} | ≤ 200 ms |",
        ms(p50(&overhead)),
        ms(*overhead.last().unwrap_or(&0))
    );
    println!(
        "| the run itself per attempt, p50 / max (peer) | {} / {} | |",
        ms(p50(&runs)),
        ms(*runs.last().unwrap_or(&0))
    );
    println!("| report.json + report.html written | {write_ms:.1} ms | |");
}
