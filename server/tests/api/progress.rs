//! A slow model's progress while it streams a stage's reply: the engine asks to stream (with
//! usage in the stream, so costs stay exact), the run page shows how far the model has got,
//! its live link gets `progress` messages for that run only, and `factory run` prints what
//! each stage streamed. The scripted model streams only when asked, in the pieces the real API
//! sends, so none of this shows unless Factory really streamed.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::app::{finished, start};
use crate::support::cli::{factory_cli, text};
use crate::support::model::{CALL_COST, ModelScript, app_with_model, factory_toml, serve_model};
use crate::support::ws::{connect, next_brief};
use crate::support::{BriefMsg, StageStream};

/// A script whose replies arrive in pieces `gap` apart.
fn slow_stream(gap: Duration) -> ModelScript {
    let script = ModelScript::default();
    *script.stream_gap.lock().unwrap() = gap;
    script
}

#[tokio::test]
async fn a_streaming_stage_shows_its_progress_on_the_run_page_and_its_live_link() {
    let script = slow_stream(Duration::from_millis(40));
    let app = app_with_model(script.clone(), |_| {}).await;
    // Another run's link must not hear about this run.
    let mut elsewhere = connect(&app, "?brief=true&run=some-other-run").await;
    let run_id = start(&app, json!({"goal": "Export orders as CSV"})).await;
    let mut link = connect(&app, &format!("?brief=true&run={run_id}")).await;

    let mut updates: Vec<StageStream> = Vec::new();
    let mut shown_on_page = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while updates.iter().filter(|u| u.done).count() < 5 {
        assert!(
            Instant::now() < deadline,
            "five streamed stages: {updates:?}"
        );
        let BriefMsg::Progress { progress } = next_brief(&mut link).await else {
            continue;
        };
        assert_eq!(progress.run_id, run_id);
        if !progress.done && shown_on_page.is_none() {
            // A page rendered now shows the stream in progress.
            let html = app
                .get(&format!("/runs/{run_id}"))
                .await
                .text()
                .await
                .unwrap();
            if html.contains("is answering") {
                shown_on_page = Some(html);
            }
        }
        updates.push(progress);
    }
    let html = shown_on_page.expect("the run page showed a stage streaming");
    assert!(html.contains("data-stream-progress"), "{html}");
    assert!(
        html.contains("lab:scripted is answering"),
        "the model answering is named"
    );

    // Each stage reported counts that grow, ending in a final count.
    for stage in [
        "requirements",
        "architecture",
        "backend",
        "qa",
        "documentation",
    ] {
        let seen: Vec<&StageStream> = updates.iter().filter(|u| u.stage == stage).collect();
        let last = seen
            .last()
            .unwrap_or_else(|| panic!("{stage}: {updates:?}"));
        assert!(last.done, "{stage} ends with its final count: {seen:?}");
        assert!(last.output_tokens > 1, "{seen:?}");
        assert!(
            seen.windows(2)
                .all(|w| w[0].output_tokens <= w[1].output_tokens),
            "{seen:?}"
        );
        assert_eq!(last.model, "lab:scripted");
    }

    let run = finished(&app, &run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // Streamed with usage asked for: the cost is the usage the model reported.
    assert!(
        (run["cost_usd"].as_f64().unwrap() - 5.0 * CALL_COST).abs() < 1e-9,
        "{run}"
    );
    for body in script.requests.lock().unwrap().iter() {
        assert_eq!(body["stream"], true, "{body}");
        assert_eq!(body["stream_options"]["include_usage"], true, "{body}");
    }
    // The other run's link heard nothing of this one.
    let quiet = tokio::time::timeout(Duration::from_millis(300), next_brief(&mut elsewhere)).await;
    if let Ok(BriefMsg::Progress { progress }) = quiet {
        panic!("progress of another run: {progress:?}");
    }
    // Nothing streams now: the page shows no progress.
    let html = app
        .get(&format!("/runs/{run_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("is answering"));
}

#[tokio::test]
async fn replies_are_whole_when_streaming_is_turned_off() {
    let script = ModelScript::default();
    let app = app_with_model(script.clone(), |config| {
        config.factory.engine.stream_replies = false;
    })
    .await;
    let run_id = start(&app, json!({"goal": "Export orders as CSV"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    for body in script.requests.lock().unwrap().iter() {
        assert!(body.get("stream").is_none_or(|s| s == false), "{body}");
    }
}

#[tokio::test]
async fn factory_run_prints_what_each_stage_streamed() {
    let base = serve_model(slow_stream(Duration::from_millis(5))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("factory.toml");
    std::fs::write(&config, factory_toml(&base)).unwrap();
    let out = tokio::process::Command::from(factory_cli(dir.path()))
        .arg("--config")
        .arg(&config)
        .args(["run", "--auto-approve", "Export orders as CSV"])
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for stage in [
        "requirements",
        "architecture",
        "backend",
        "qa",
        "documentation",
    ] {
        let said = format!("`{stage}`: lab:scripted streamed ");
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&said))
            .unwrap_or_else(|| panic!("{said}…: {stderr}"));
        let tokens: u32 = line[said.len()..]
            .trim_end_matches(" tokens")
            .parse()
            .unwrap();
        assert!(tokens > 1, "{line}");
    }
}
