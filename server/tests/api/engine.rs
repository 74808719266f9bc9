//! The engine end to end: `factory run` with the offline provider in a real git repository,
//! runs against the scripted model over HTTP (malformed results, transient errors), cancel,
//! bad input, the event stream.

use std::process::Command;
use std::time::{Duration, Instant};

use factory_server::config::Config;
use factory_server::gateway::{EnvSnapshot, GatewayConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TOKEN, TestApp, factory_cli};
use crate::model::{CALL_COST, Fault, ModelScript, expected_artifact, factory_toml, serve_model};

type RunRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

/// A git repository with one commit (the project of a run).
pub fn git_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {:?}", out);
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("README.md"), "# Shop\n").unwrap();
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.com",
        "commit",
        "-q",
        "-m",
        "initial",
    ]);
    dir
}

/// A server whose aliases all point at the scripted model.
pub(crate) async fn app_with_model(
    script: ModelScript,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let base = serve_model(script).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    let mut gateway = GatewayConfig::defaults(&EnvSnapshot::default());
    gateway.merge_toml(&factory_toml(&base), "test").unwrap();
    gateway.validate().unwrap();
    config.gateway = gateway;
    tweak(&mut config);
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(dir);
    app
}

pub(crate) async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = app.get(path).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Starts a run and returns its id.
pub(crate) async fn start(app: &TestApp, body: Value) -> String {
    let res = app.start_run(body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls the run until it is terminal or waits for a person (or `within` passes).
pub async fn finished(app: &TestApp, run_id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, run) = get(app, &format!("/supervisor/status/{run_id}")).await;
        let status = run["status"].as_str().unwrap_or_default();
        if ["succeeded", "failed", "canceled", "waiting_for_human"].contains(&status) {
            return run;
        }
        assert!(Instant::now() < deadline, "run did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[test]
fn factory_run_offline_completes_the_default_pipeline_in_a_git_repo() {
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let out = factory_cli(data.path())
        .args(["run", "--json", "--auto-approve", "--project"])
        .arg(repo.path())
        .arg("As a shop owner, I want to export orders as CSV and email the weekly report to accountants.")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["status"], "succeeded");
    let steps = run["steps"].as_array().unwrap();
    let teams: Vec<&str> = steps.iter().map(|s| s["team"].as_str().unwrap()).collect();
    assert_eq!(
        teams,
        [
            "business-analysis",
            "solution-architecture",
            "backend-engineering",
            "qa-engineering",
            "documentation"
        ]
    );
    assert!(steps.iter().all(|s| s["status"] == "complete"), "{run}");
    // Real, readable artifacts derived from the requirement.
    let names: Vec<&str> = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "requirements.md",
            "adr.md",
            "implementation-plan.md",
            "delivery.md",
            "test-plan.md",
            "docs.md"
        ]
    );
    for a in run["artifacts"].as_array().unwrap() {
        if a["name"] == "delivery.md" {
            let text =
                std::fs::read_to_string(data.path().join(a["path"].as_str().unwrap())).unwrap();
            assert!(
                text.contains("`feature/wo-"),
                "work orders delivered: {text}"
            );
            continue;
        }
        let text = std::fs::read_to_string(data.path().join(a["path"].as_str().unwrap())).unwrap();
        assert!(
            text.starts_with("<!-- generated by the offline provider (no model)"),
            "{text}"
        );
        assert!(
            text.contains("export orders as CSV"),
            "{}: {text}",
            a["name"]
        );
    }
    let requirements = std::fs::read_to_string(
        data.path()
            .join(run["artifacts"][0]["path"].as_str().unwrap()),
    )
    .unwrap();
    assert!(
        requirements.contains("As a shop owner, I want \"email the weekly report to accountants\"")
    );
    let adr = std::fs::read_to_string(
        data.path()
            .join(run["artifacts"][1]["path"].as_str().unwrap()),
    )
    .unwrap();
    assert!(adr.contains("Work orders"), "{adr}");
    // Events chained.
    let audit = factory_cli(data.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(audit.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&audit.stdout).contains("chain intact"));
    // Memory was retained and can be searched.
    let memory = factory_cli(data.path())
        .args([
            "memory",
            "search",
            "weekly report accountants",
            "--bank",
            "business-analysis",
        ])
        .output()
        .unwrap();
    let memory = String::from_utf8_lossy(&memory.stdout);
    assert!(
        memory.contains("[business-analysis · artifact_summary]"),
        "{memory}"
    );
}

#[test]
fn factory_run_offline_completes_the_full_pipeline() {
    let data = tempfile::tempdir().unwrap();
    let out = factory_cli(data.path())
        .args([
            "run",
            "--auto-approve",
            "--pipeline",
            "full",
            "Add a dark mode toggle to the settings page",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stdout.contains("all 17 stages of `full` complete"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("/runs/").count(),
        17,
        "one artifact per team: {stdout}"
    );
}

#[test]
fn factory_run_exits_2_while_a_person_is_needed_and_says_how_to_answer() {
    let data = tempfile::tempdir().unwrap();
    let out = factory_cli(data.path())
        .args(["run", "Export orders as CSV"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("waiting_for_human"), "{stdout}");
    assert!(
        stdout.contains("plan approval: Approve the plan"),
        "{stdout}"
    );
    assert!(stdout.contains("factory approvals decide "), "{stdout}");
    let list = factory_cli(data.path())
        .args(["approvals", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("plan") && list.contains("pending"), "{list}");
}

#[test]
fn factory_run_refuses_bad_input_with_exit_2() {
    let data = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["run", "   "], "the requirement is empty"),
        (
            &["run", "--pipeline", "nope", "x y"],
            "unknown pipeline `nope` (available: default, full)",
        ),
        (
            &["run", "--project", "/does/not/exist", "x y"],
            "unknown project /does/not/exist",
        ),
        (&["run", &"x".repeat(20_001)], "the limit is 20000"),
    ];
    for (args, needle) in cases {
        let out = factory_cli(data.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{needle}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
}

#[tokio::test]
async fn a_malformed_result_is_asked_again_and_a_500_is_retried() {
    let script = ModelScript::with_faults(vec![
        Fault::UnknownStatus, // requirements: re-asked with the validation error
        Fault::Status(500),   // requirements (re-ask): transient, retried by the gateway
    ]);
    let app = app_with_model(script.clone(), |_| {}).await;
    let goal = "Export orders as CSV";
    let run_id = start(&app, json!({"goal": goal})).await;
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(script.calls(), 5 + 2, "five stages, one re-ask, one retry");
    for step in run["steps"].as_array().unwrap() {
        let team = step["team"].as_str().unwrap();
        let artifact = app
            .store
            .path()
            .parent()
            .unwrap()
            .join(format!("runs/{run_id}"));
        let found = std::fs::read_dir(&artifact)
            .unwrap()
            .filter_map(Result::ok)
            .any(|d| d.path().join(format!("{team}.md")).is_file());
        assert!(found, "{team}'s artifact is on disk");
    }
    // The re-ask carried the validation error back to the model.
    let (_, page) = get(&app, &format!("/events?run_id={run_id}")).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "run_created");
    assert_eq!(kinds.last(), Some(&"run_finished"));
    assert_eq!(kinds.iter().filter(|k| **k == "stage_completed").count(), 5);
    let failed_calls = kinds
        .iter()
        .filter(|k| **k == "model_call_finished")
        .count();
    assert_eq!(failed_calls, 6, "five answers plus the malformed one");
    // Cost: every call that answered, from the ledger.
    assert!(
        (run["cost_usd"].as_f64().unwrap() - 6.0 * CALL_COST).abs() < 1e-9,
        "{run}"
    );
    let content = std::fs::read_to_string(
        app.store
            .path()
            .parent()
            .unwrap()
            .join(run["artifacts"][0]["path"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(content, expected_artifact("business-analysis", goal));
}

#[tokio::test]
async fn replies_that_stay_malformed_end_blocked_and_ask_a_person() {
    for (fault, needle) in [
        (Fault::Prose, "no JSON object"),
        (
            Fault::UnknownStatus,
            "COMPLETE, NEEDS_CLARIFICATION or BLOCKED",
        ),
        (Fault::MissingField, "missing field `reasoning`"),
    ] {
        // Three bad replies: the first answer and both re-asks.
        let script = ModelScript::with_faults(vec![fault.clone(), fault.clone(), fault.clone()]);
        let app = app_with_model(script, |_| {}).await;
        let run_id = start(&app, json!({"goal": "Anything"})).await;
        let run = finished(&app, &run_id, Duration::from_secs(20)).await;
        assert_eq!(run["status"], "waiting_for_human", "{run}");
        assert_eq!(run["steps"][0]["status"], "blocked");
        assert_eq!(
            run["steps"][1]["status"], "pending",
            "later stages never ran"
        );
        let (_, approvals) = get(&app, &format!("/api/approvals?run_id={run_id}")).await;
        let approval = &approvals[0];
        assert_eq!(approval["kind"], "blocked");
        let question = approval["question"].as_str().unwrap();
        assert!(
            question.contains("is BLOCKED") && question.contains(needle),
            "{fault:?}: {question}"
        );
    }
}

#[tokio::test]
async fn a_question_to_another_team_is_answered_and_the_stage_continues() {
    let script = ModelScript::with_faults(vec![Fault::Ask(
        "solution-architecture",
        "Which export formats besides CSV?",
    )]);
    let app = app_with_model(script.clone(), |_| {}).await;
    let run_id = start(&app, json!({"goal": "A web shop"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // business-analysis asked, solution-architecture answered, business-analysis ran again
    // with the answer in its context.
    let analysis = script.prompts_to("business-analysis");
    assert_eq!(analysis.len(), 2);
    assert!(
        analysis[1].contains("# Answers to your questions"),
        "{}",
        analysis[1]
    );
    assert!(analysis[1].contains("Which export formats besides CSV?"));
    assert!(analysis[1].contains("Scripted deliverable of solution-architecture"));
    let architecture = script.prompts_to("solution-architecture");
    assert!(
        architecture[0]
            .contains("Team `business-analysis` (stage `requirements`) asks: Which export formats")
    );
    let (_, page) = get(&app, &format!("/events?run_id={run_id}&limit=1000")).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"clarification_requested"));
    assert!(kinds.contains(&"clarification_answered"));
}

#[tokio::test]
async fn a_permanent_error_asks_a_person_naming_provider_and_model() {
    let app = app_with_model(ModelScript::with_faults(vec![Fault::Status(400)]), |_| {}).await;
    let run_id = start(&app, json!({"goal": "Anything"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "waiting_for_human", "{run}");
    assert_eq!(run["steps"][0]["attempts"], 1);
    let (_, approvals) = get(
        &app,
        &format!("/api/approvals?run_id={run_id}&status=pending"),
    )
    .await;
    let question = approvals[0]["question"].as_str().unwrap();
    assert!(question.contains("lab:scripted answered 400"), "{question}");
}

#[tokio::test]
async fn cancel_drops_the_call_in_flight_and_is_refused_once_finished() {
    let script = ModelScript::default();
    *script.delay.lock().unwrap() = Duration::from_secs(30);
    let app = app_with_model(script.clone(), |_| {}).await;
    let run_id = start(&app, json!({"goal": "Slow work"})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while script.calls() == 0 {
        assert!(Instant::now() < deadline, "the model was never called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let (status, run) = post(&app, &format!("/supervisor/cancel/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "canceled");
    let run = finished(&app, &run_id, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait for the model"
    );
    assert_eq!(
        run["steps"][0]["status"], "running",
        "the stage never completed"
    );
    assert_eq!(run["reason"], "canceled by api");

    // Nothing more is recorded for the run once the driver has stopped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, page) = get(&app, &format!("/events?run_id={run_id}")).await;
    let last = page["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "run_finished");

    let (status, body) = post(&app, &format!("/supervisor/cancel/{run_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has already finished (canceled)"),
        "{body}"
    );
    let (status, body) = post(&app, "/supervisor/cancel/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"nope\"")
    );
}

#[tokio::test]
async fn runs_beyond_the_concurrency_cap_wait_queued() {
    let script = ModelScript::default();
    *script.delay.lock().unwrap() = Duration::from_millis(300);
    let app = app_with_model(script, |c| c.gateway.engine.max_concurrent_runs = 1).await;
    let first = start(&app, json!({"goal": "first"})).await;
    let second = start(&app, json!({"goal": "second"})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, a) = get(&app, &format!("/supervisor/status/{first}")).await;
    let (_, b) = get(&app, &format!("/supervisor/status/{second}")).await;
    assert_eq!(a["status"], "running");
    assert_eq!(b["status"], "queued", "waits for a slot");
    let (status, _) = post(&app, &format!("/supervisor/cancel/{second}")).await;
    assert_eq!(status, StatusCode::OK, "a queued run can be canceled");
    let (status, _) = post(&app, &format!("/supervisor/cancel/{first}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_starts_are_refused_and_the_event_stream_pages() {
    let app = TestApp::spawn().await;
    for (body, code, needle) in [
        (json!({"goal": ""}), 400, "`goal` is empty"),
        (
            json!({"goal": "x".repeat(20_001)}),
            400,
            "the limit is 20000",
        ),
        (
            json!({"goal": "x", "pipeline": "nope"}),
            422,
            "unknown pipeline `nope`",
        ),
        (
            json!({"goal": "x", "project": "/does/not/exist"}),
            422,
            "unknown project",
        ),
        (
            json!({"goal": "x", "project": "relative/path"}),
            422,
            "absolute path",
        ),
    ] {
        let res = app.start_run(body.clone()).await;
        assert_eq!(res.status().as_u16(), code, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    let (_, runs) = get(&app, "/api/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 0, "nothing was stored");

    let run_id = start(&app, json!({"goal": "Document the API"})).await;
    finished(&app, &run_id, Duration::from_secs(10)).await;
    // The projections maintained batch by batch equal a replay of the log.
    let dump = |store: factory_server::store::Store| async move {
        let runs: Vec<RunRow> = sqlx::query_as(
            "SELECT id, status, steps, artifacts, current_stage, reason, last_seq \
                 FROM supervisor_runs ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let memory: Vec<(String, String, String)> =
            sqlx::query_as("SELECT item_id, bank, text FROM memory_items ORDER BY item_id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        (runs, memory)
    };
    let live = dump(app.store.clone()).await;
    app.store.rebuild_projections().await.unwrap();
    assert_eq!(dump(app.store.clone()).await, live);
    assert!(!live.1.is_empty());
    let (_, all) = get(&app, &format!("/events?run_id={run_id}")).await;
    let total = all["events"].as_array().unwrap().len();
    assert!(total > 10);
    let (_, page) = get(&app, &format!("/events?run_id={run_id}&limit=3")).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    let after = page["next_after"].as_i64().unwrap();
    let (_, rest) = get(
        &app,
        &format!("/events?run_id={run_id}&after={after}&limit=1000"),
    )
    .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), total - 3);
    let (status, _) = get(&app, "/events?run_id=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/events?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, teams) = get(&app, "/api/teams").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(teams.as_array().unwrap().len(), 17);
    assert!(teams[0]["soul"].as_str().unwrap().len() > 500);
    let (_, hits) = get(&app, "/api/memory/search?q=API&bank=business-analysis").await;
    assert!(!hits.as_array().unwrap().is_empty(), "{hits}");
    let (status, _) = get(&app, "/api/memory/search?q=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
