//! The clarification broker and approvals, against the scripted model over HTTP: questions
//! between teams, refusals (cycle, hop depth, time-to-live) that become questions for a person,
//! decisions through the API, durable waits across a SIGKILL, review and revision, budgets,
//! the director policy, guidance after a block, and every refused decision.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TOKEN, TestApp, finished, get, start, status_json};
use crate::support::cli::factory_serve;
use crate::support::db::sqlite;
use crate::support::free_port;
use crate::support::git::{commit_all, git, git_repo, project_settings};
use crate::support::model::{Fault, ModelScript, app_with_model, factory_toml_with, serve_model};

async fn decide(app: &TestApp, id: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/approvals/{id}/decide");
    status_json(app.post_json(&path, &body).await).await
}

/// The run's single pending approval.
async fn pending(app: &TestApp, run_id: &str) -> Value {
    let (_, list) = get(
        app,
        &format!("/api/approvals?status=pending&run_id={run_id}"),
    )
    .await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

async fn clarifications(app: &TestApp, run_id: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT status, reason FROM clarifications WHERE run_id = ? ORDER BY depth")
        .bind(run_id)
        .fetch_all(&sqlite(app.store.path()).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cycle_is_refused_and_a_person_answers_instead() {
    let script = ModelScript::with_faults(vec![
        Fault::Ask("solution-architecture", "Which export formats?"),
        Fault::Ask("business-analysis", "What do the users need?"),
    ]);
    let app = app_with_model(script.clone(), |_| {}).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "waiting_for_human", "{run}");
    let approval = pending(&app, &run_id).await;
    assert_eq!(approval["kind"], "clarification");
    assert_eq!(approval["question"], "Which export formats?");
    assert!(
        approval["context"]
            .as_str()
            .unwrap()
            .contains("refused a cycle"),
        "{approval}"
    );
    let refused = clarifications(&app, &run_id).await;
    assert_eq!(refused[0].0, "refused");

    let id = approval["id"].as_str().unwrap();
    let (status, decided) = decide(
        &app,
        id,
        json!({"option": "answer", "text": "CSV and JSON"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["decision"]["option"], "answer");
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let analysis = script.prompts_to("business-analysis");
    let last = analysis.last().unwrap();
    assert!(last.contains("A (a person): CSV and JSON"), "{last}");

    // A second decision is refused with the first.
    let (status, body) = decide(&app, id, json!({"option": "answer", "text": "XML"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("already decided: `answer` by api (CSV and JSON)"),
        "{message}"
    );
}

#[tokio::test]
async fn questions_beyond_the_hop_depth_go_to_a_person_and_bad_decisions_are_refused() {
    let script = ModelScript::with_faults(vec![
        Fault::Ask("solution-architecture", "Q1"),
        Fault::Ask("qa-engineering", "Q2"),
        Fault::Ask("documentation", "Q3"),
    ]);
    let app = app_with_model(script, |_| {}).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let approval = pending(&app, &run_id).await;
    let context = approval["context"].as_str().unwrap();
    assert!(context.contains("beyond the hop depth of 2"), "{context}");
    let states = clarifications(&app, &run_id).await;
    assert_eq!(
        states.len(),
        2,
        "the stage's question and the answering team's (depth 2)"
    );

    let id = approval["id"].as_str().unwrap();
    for (body, code, needle) in [
        (
            json!({"option": "maybe"}),
            400,
            "option `maybe` is not offered by this approval (offered: answer)",
        ),
        (json!({"option": "answer"}), 400, "needs `text`"),
        (
            json!({"option": "answer", "text": "x".repeat(4_001)}),
            400,
            "the limit is 4000",
        ),
    ] {
        let (status, err) = decide(&app, id, body).await;
        assert_eq!(status.as_u16(), code);
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    let (status, _) = decide(&app, "nope", json!({"option": "answer", "text": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/api/approvals/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/api/approvals?status=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        pending(&app, &run_id).await["status"],
        "pending",
        "nothing was decided"
    );
}

#[tokio::test]
async fn a_clarification_that_outlives_its_ttl_goes_to_a_person() {
    let script = ModelScript::with_faults(vec![
        Fault::Ask("solution-architecture", "Which formats?"),
        Fault::Slow(Duration::from_secs(5)),
    ]);
    let app = app_with_model(script, |c| c.factory.approvals.clarification_ttl_ms = 300).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    let started = Instant::now();
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "waiting_for_human");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait for the slow answer"
    );
    let approval = pending(&app, &run_id).await;
    assert!(
        approval["context"]
            .as_str()
            .unwrap()
            .contains("did not answer within the clarification time-to-live of 0.3 s"),
        "{approval}"
    );
}

#[tokio::test]
async fn review_revise_runs_again_with_the_feedback_then_approve_succeeds() {
    let script = ModelScript::default();
    let app = app_with_model(script.clone(), |c| c.factory.approvals.auto_approve = false).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let review = pending(&app, &run_id).await;
    assert_eq!(review["kind"], "review");
    let listed = review["context"].as_str().unwrap();
    assert!(
        listed.contains("- requirements: business-analysis.md"),
        "{listed}"
    );
    assert!(
        listed.contains("- documentation: documentation.md"),
        "the last stage too: {listed}"
    );
    let id = review["id"].as_str().unwrap();
    let (status, _) = decide(
        &app,
        id,
        json!({"option": "revise", "text": "Add an audit log"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let analysis = script.prompts_to("business-analysis");
    assert_eq!(analysis.len(), 2, "business analysis ran again");
    assert!(
        analysis[1].contains("# Review feedback to address\n\n- Add an audit log"),
        "{}",
        analysis[1]
    );
    let second = pending(&app, &run_id).await;
    assert_eq!(second["kind"], "review");
    assert_ne!(second["id"], review["id"]);
    let (status, _) = decide(
        &app,
        second["id"].as_str().unwrap(),
        json!({"option": "approve"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("approved in review")
    );
    assert!(
        run["artifacts"][0]["path"]
            .as_str()
            .unwrap()
            .contains("/r1-01-requirements/"),
        "{run}"
    );
}

#[tokio::test]
async fn a_hard_budget_asks_a_person_and_a_raise_lets_the_run_continue() {
    let app = app_with_model(ModelScript::default(), |c| {
        c.factory.gateway.budgets.run.hard = Some(0.0001);
    })
    .await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let approval = pending(&app, &run_id).await;
    assert_eq!(approval["kind"], "budget");
    assert!(
        approval["question"]
            .as_str()
            .unwrap()
            .contains("hard limit of $0.00 for run"),
        "{approval}"
    );
    let (status, _) = decide(
        &app,
        approval["id"].as_str().unwrap(),
        json!({"option": "raise_once"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(
        run["steps"][0]["status"], "complete",
        "the stage ran after the raise: {run}"
    );
    let again = pending(&app, &run_id).await;
    assert_eq!(again["kind"], "budget", "the next stage needs more");
    let (status, _) = decide(
        &app,
        again["id"].as_str().unwrap(),
        json!({"option": "raise_run", "text": "5"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, costs) = get(&app, "/api/costs").await;
    let budget = costs["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == "run")
        .unwrap()
        .clone();
    assert_eq!(budget["hard_usd"], 5.0);
    let escalations: Vec<(String, String)> =
        sqlx::query_as("SELECT error_type, status FROM escalations WHERE run_id = ?")
            .bind(&run_id)
            .fetch_all(&sqlite(app.store.path()).await)
            .await
            .unwrap();
    assert_eq!(escalations.len(), 2);
    assert!(
        escalations
            .iter()
            .all(|(t, s)| t == "budget" && s == "resolved")
    );
}

#[tokio::test]
async fn the_director_policy_approves_safe_plans_and_holds_risky_ones() {
    // The model's own risk and confidence never make a plan safer than the files it touches:
    // a "low risk, 0.99" plan that edits CI, secrets or many files waits for a person.
    const SRC: &[&str] = &["src/lib.rs"];
    const CI: &[&str] = &[".github/workflows/release.yml"];
    const SECRETS: &[&str] = &["config/credentials.rs"];
    const MANY: &[&str] = &[
        "a.rs", "b.rs", "c.rs", "d.rs", "e.rs", "f.rs", "g.rs", "h.rs", "i.rs", "j.rs", "k.rs",
    ];
    for (risk, confidence, files, waits) in [
        ("low", 0.97, SRC, false),
        ("high", 0.99, SRC, true),
        ("low", 0.5, SRC, true),
        ("low", 0.99, CI, true),
        ("low", 0.99, SECRETS, true),
        ("low", 0.99, MANY, true),
    ] {
        let script = ModelScript::with_faults(vec![
            Fault::Slow(Duration::ZERO),
            Fault::PlanTouching(risk, confidence, files),
            Fault::EditFromShown,
        ]);
        let app = app_with_model(script, |c| c.factory.approvals.auto_approve = false).await;
        // The plan that goes ahead is carried out in a real repository: its gate passes only
        // when the engineer's change, made from the file its prompt showed, is in the worktree.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 1_000_000;
        let repo = git_repo();
        std::fs::create_dir_all(repo.path().join("src")).unwrap();
        std::fs::write(
            repo.path().join("src/lib.rs"),
            format!("pub const SEED: u32 = {seed};\n"),
        )
        .unwrap();
        project_settings(
            repo.path(),
            &format!(
                "gates = [\"grep -q 'DOUBLE: u32 = {}' src/lib.rs\"]\n",
                seed * 2
            ),
        );
        commit_all(repo.path(), "seed");
        let project = repo.path().to_str().unwrap();
        let goal = match waits {
            // A plan that waits never reaches engineering: no project (a plan naming files this
            // repository lacks would be refused before any approval).
            true => json!({"goal": "Export orders"}),
            false => json!({"goal": "Export orders", "project": project}),
        };
        let run_id = start(&app, goal).await;
        finished(&app, &run_id, Duration::from_secs(30)).await;
        let (_, all) = get(&app, &format!("/api/approvals?run_id={run_id}")).await;
        let plan = all
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "plan")
            .unwrap()
            .clone();
        if waits {
            assert_eq!(plan["status"], "pending", "{risk} {confidence} {files:?}");
        } else {
            assert_eq!(plan["decision"]["automatic"], true);
            assert!(
                plan["decision"]["policy"]
                    .as_str()
                    .unwrap()
                    .contains("director policy")
            );
            assert_eq!(
                pending(&app, &run_id).await["kind"],
                "review",
                "the run went on"
            );
            // …and its work order was carried out: delivered on its branch, gate passed.
            let (_, run) = get(&app, &format!("/api/runs/{run_id}")).await;
            let orders = run["work_orders"].as_array().unwrap();
            assert_eq!(orders.len(), 1, "{run}");
            assert_eq!(orders[0]["status"], "delivered", "{run}");
            let branch = orders[0]["branch"].as_str().unwrap();
            assert_eq!(
                git(repo.path(), &["show", &format!("{branch}:src/lib.rs")]),
                format!(
                    "pub const SEED: u32 = {seed};\npub const DOUBLE: u32 = {};\n",
                    seed * 2
                )
            );
        }
    }
}

#[tokio::test]
async fn guidance_after_a_block_reaches_the_team_and_a_canceled_runs_approval_is_refused() {
    let script = ModelScript::with_faults(vec![Fault::Prose, Fault::Prose, Fault::Prose]);
    let app = app_with_model(script.clone(), |_| {}).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let blocked = pending(&app, &run_id).await;
    assert_eq!(blocked["kind"], "blocked");
    let options: Vec<&str> = blocked["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        options,
        ["retry", "retry_strong", "guidance", "skip", "fail"]
    );
    let (status, _) = decide(
        &app,
        blocked["id"].as_str().unwrap(),
        json!({"option": "guidance", "text": "Answer with the JSON object only"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let run = finished(&app, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded");
    let last = script.prompts_to("business-analysis").pop().unwrap();
    assert!(
        last.contains("# Guidance from a person\n\n- Answer with the JSON object only"),
        "{last}"
    );

    // An approval of a canceled run can no longer be decided.
    let app = app_with_model(ModelScript::default(), |c| {
        c.factory.approvals.auto_approve = false
    })
    .await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let review = pending(&app, &run_id).await;
    let res = app.post(&format!("/supervisor/cancel/{run_id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, err) = decide(
        &app,
        review["id"].as_str().unwrap(),
        json!({"option": "approve"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has finished (canceled)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_survives_sigkill_and_deciding_after_the_restart_finishes_the_run() {
    let base_url = serve_model(ModelScript::default()).await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml_with(&base_url, false)).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let spawn = || {
        factory_serve(data.path(), Some(&config), port)
            .spawn()
            .unwrap()
    };
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut req = client.request(method.clone(), &url).bearer_auth(TOKEN);
                if let Some(b) = &body {
                    req = req.json(b);
                }
                if let Ok(res) = req.send().await {
                    let status = res.status();
                    return (status, res.json::<Value>().await.unwrap_or(Value::Null));
                }
                assert!(Instant::now() < deadline, "server unreachable");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    };
    let mut child = spawn();
    let (_, started) = call(
        reqwest::Method::POST,
        "/supervisor/start".into(),
        Some(json!({"goal": "Export orders"})),
    )
    .await;
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let wait_for = |status: &'static str| {
        let run_id = run_id.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (_, run) = call(
                    reqwest::Method::GET,
                    format!("/supervisor/status/{run_id}"),
                    None,
                )
                .await;
                if run["status"] == status {
                    return run;
                }
                assert!(Instant::now() < deadline, "never {status}: {run}");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    };
    wait_for("waiting_for_human").await;
    child.kill().unwrap(); // SIGKILL while the run waits
    child.wait().unwrap();
    let mut child = spawn();
    let (_, list) = call(
        reqwest::Method::GET,
        format!("/api/approvals?status=pending&run_id={run_id}"),
        None,
    )
    .await;
    assert_eq!(
        list[0]["kind"], "review",
        "still pending after the restart: {list}"
    );
    let (_, run) = call(
        reqwest::Method::GET,
        format!("/supervisor/status/{run_id}"),
        None,
    )
    .await;
    assert_eq!(run["status"], "waiting_for_human");
    let id = list[0]["id"].as_str().unwrap();
    let (status, _) = call(
        reqwest::Method::POST,
        format!("/api/approvals/{id}/decide"),
        Some(json!({"option": "approve"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let run = wait_for("succeeded").await;
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("approved in review")
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn asking_oneself_or_past_the_limit_goes_to_a_person() {
    // Asking one's own team.
    let script = ModelScript::with_faults(vec![Fault::Ask("business-analysis", "Me?")]);
    let app = app_with_model(script, |_| {}).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let approval = pending(&app, &run_id).await;
    assert!(
        approval["context"]
            .as_str()
            .unwrap()
            .contains("asked itself"),
        "{approval}"
    );

    // Three questions answered, the fourth refused by the per-objective limit.
    let ask = || Fault::Ask("solution-architecture", "One more thing?");
    let answer = || Fault::Slow(Duration::ZERO);
    let script = ModelScript::with_faults(vec![
        ask(),
        answer(),
        ask(),
        answer(),
        ask(),
        answer(),
        ask(),
    ]);
    let app = app_with_model(script, |_| {}).await;
    let run_id = start(&app, json!({"goal": "Export orders"})).await;
    finished(&app, &run_id, Duration::from_secs(20)).await;
    let approval = pending(&app, &run_id).await;
    assert!(
        approval["context"]
            .as_str()
            .unwrap()
            .contains("already asked 3 questions, its limit"),
        "{approval}"
    );
    let states = clarifications(&app, &run_id).await;
    let answered = states.iter().filter(|(s, _)| s == "answered").count();
    assert_eq!((answered, states.len()), (3, 4));
}
