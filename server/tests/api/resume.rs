//! Crash-safe resume: runs against a slow scripted model while the server is SIGKILLed at
//! random moments and restarted. Every run finishes with the same stage outputs as an
//! uninterrupted run, no stage completes twice, and no model call is counted twice.

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use crate::support::app::TOKEN;
use crate::support::cli::factory_serve;
use crate::support::model::{CALL_COST, ModelScript, factory_toml, serve_model};
use crate::support::{EventData, Store, free_port};
const GOALS: [&str; 3] = [
    "Export orders as CSV for accountants",
    "Let customers reset their password by email",
    "Show a weekly sales chart on the dashboard",
];

fn spawn_server(data: &std::path::Path, config: &std::path::Path, port: u16) -> Child {
    factory_serve(data, Some(config), port)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not come up");
}

/// Stage results per run (by goal), from the log: (index, result JSON) in order.
async fn stage_results(
    store: &Store,
) -> (HashMap<String, Vec<(u32, Value)>>, HashMap<String, String>) {
    let mut goals = HashMap::new();
    let mut results: HashMap<String, Vec<(u32, Value)>> = HashMap::new();
    for event in store.events_after(0, 100_000).await.unwrap() {
        match event.data {
            EventData::RunCreated { run_id, goal, .. } => {
                goals.insert(run_id, goal);
            }
            EventData::StageCompleted {
                run_id,
                index,
                result,
                ..
            } => {
                let goal = goals[&run_id].clone();
                results
                    .entry(goal)
                    .or_default()
                    .push((index, serde_json::to_value(result).unwrap()));
            }
            _ => {}
        }
    }
    (results, goals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_survive_sigkill_and_finish_as_if_uninterrupted() {
    let script = ModelScript::default();
    *script.delay.lock().unwrap() = Duration::from_millis(300);
    let base_url = serve_model(script.clone()).await;
    let client = reqwest::Client::new();

    // The uninterrupted reference.
    let reference = {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("factory.toml");
        std::fs::write(&config, factory_toml(&base_url)).unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = spawn_server(data.path(), &config, port);
        wait_healthy(&client, &base).await;
        for goal in GOALS {
            start(&client, &base, goal).await;
        }
        wait_all_finished(&client, &base, Duration::from_secs(60)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let store = Store::open(data.path()).await.unwrap();
        let (results, _) = stage_results(&store).await;
        store.close().await;
        results
    };

    let reference_calls = script.calls();
    assert_eq!(
        reference_calls, 15,
        "three runs of five stages, one call each"
    );

    // The same runs, with the server killed at random moments.
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml(&base_url)).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_server(data.path(), &config, port);
    wait_healthy(&client, &base).await;
    for goal in GOALS {
        start(&client, &base, goal).await;
    }
    let mut rng = rand::rng();
    let mut kills = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        child = spawn_server(data.path(), &config, port);
        wait_healthy(&client, &base).await;
    }
    let runs = wait_all_finished(&client, &base, Duration::from_secs(90)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(kills, 5);
    let calls = script.calls() - reference_calls;
    assert!(
        calls > 15,
        "calls in flight at a kill were issued again after the restart ({calls} calls)"
    );

    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        let cost = run["cost_usd"].as_f64().unwrap();
        assert!(
            (cost - 5.0 * CALL_COST).abs() < 1e-9,
            "each stage's call counted once: {cost} for {run}"
        );
    }
    let store = Store::open(data.path()).await.unwrap();
    let (results, _) = stage_results(&store).await;
    for goal in GOALS {
        let indexes: Vec<u32> = results[goal].iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [0, 1, 2, 3, 4], "no stage completed twice: {goal}");
        assert_eq!(
            results[goal], reference[goal],
            "same outputs as uninterrupted: {goal}"
        );
    }
    let report = store.verify_chain().await.unwrap();
    assert!(report.broken.is_none(), "chain intact");
}

async fn start(client: &reqwest::Client, base: &str, goal: &str) {
    let res = client
        .post(format!("{base}/supervisor/start"))
        .bearer_auth(TOKEN)
        .json(&json!({"goal": goal, "request_id": goal}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
}

async fn wait_all_finished(client: &reqwest::Client, base: &str, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(res) = client
            .get(format!("{base}/api/runs"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            let runs: Vec<Value> = res.json().await.unwrap_or_default();
            if runs.len() == GOALS.len()
                && runs.iter().all(|r| {
                    ["succeeded", "failed", "canceled"]
                        .contains(&r["status"].as_str().unwrap_or(""))
                })
            {
                let mut details = Vec::new();
                for r in runs {
                    let id = r["id"].as_str().unwrap();
                    let detail: Value = client
                        .get(format!("{base}/supervisor/status/{id}"))
                        .bearer_auth(TOKEN)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    details.push(detail);
                }
                return details;
            }
        }
        assert!(Instant::now() < deadline, "runs did not finish in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
