//! The dashboard's Gym page over HTTP, behind authentication: what to run when nothing is
//! recorded; then, from attempts recorded in the event log as `factory gym run` records them,
//! the scenarios × gym runs matrix, the pass rate per model (chart and table), and a failure's
//! "what changed" page naming the changed team catalogue and the failing check.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::db::tokens;
use crate::support::{CheckOutcome, CheckStatus, EventData, GymRecord, NewEvent};

const LAB: &str = "factory/coder=lab:m; factory/planner=lab:m";
const OFFLINE: &str = "factory/coder=offline:template; factory/planner=offline:template";

/// An attempt of `scenario` in gym run `gym_run`: its `tests pass` check passes or fails.
fn record(gym_run: &str, scenario: &str, catalogue: &str, models: &str, passed: bool) -> GymRecord {
    let status = |ok| {
        if ok {
            CheckStatus::Passed
        } else {
            CheckStatus::Failed
        }
    };
    GymRecord {
        gym_run_id: gym_run.into(),
        scenario: scenario.into(),
        attempt: 1,
        critical: true,
        passed,
        catalogue_hash: catalogue.into(),
        pipeline: "default".into(),
        models: models.into(),
        offline: models == OFFLINE,
        run_status: if passed { "succeeded" } else { "failed" }.into(),
        reason: (!passed).then(|| "the engineering stage was blocked".into()),
        checks: vec![
            CheckOutcome {
                name: "run succeeded".into(),
                kind: "status".into(),
                status: status(passed),
                detail: String::new(),
            },
            CheckOutcome {
                name: "tests pass".into(),
                kind: "command".into(),
                status: status(passed),
                detail: if passed {
                    "exit 0".into()
                } else {
                    "exit 101:\nassertion failed: total == 42".into()
                },
            },
        ],
        run_ms: 1_200,
        overhead_ms: 300,
        input_tokens: 10,
        output_tokens: 5,
        cost_usd: 0.0,
        model_calls: 3,
        human_decisions: 1,
        run_id: "r1".into(),
        dir: "/tmp/gym/fix-bug-1".into(),
    }
}

/// Records attempts as the gym does: one batch of `gym_scenario_finished` events; their seqs.
async fn recorded(app: &TestApp, records: Vec<GymRecord>) -> Vec<i64> {
    let events = records
        .into_iter()
        .map(|record| NewEvent::new("gym", EventData::GymScenarioFinished { record }))
        .collect();
    let committed = app.store.append_batch(events).await.unwrap();
    committed.iter().map(|e| e.seq).collect()
}

/// A page of the dashboard as the signed-in browser gets it.
async fn page(app: &TestApp, path: &str) -> String {
    let res = app.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

async fn server_fn_json(app: &TestApp, name: &str, form: &[(&str, &str)]) -> Value {
    let res = app.server_fn(name, form).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{name}: {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The row of `scenario` in the matrix.
fn row<'a>(html: &'a str, scenario: &str) -> &'a str {
    let row = html
        .split(&format!(r#"data-scenario="{scenario}""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no row for {scenario} in {html}"));
    row.split("</tr>").next().unwrap()
}

/// The `<td>` of `scenario`'s row that stands for gym run `gym_run`.
fn cell<'a>(html: &'a str, scenario: &str, gym_run: &str) -> &'a str {
    let row = row(html, scenario);
    let cell = row
        .split("<td")
        .find(|c| c.contains(&format!(r#"data-gym-run="{gym_run}""#)))
        .unwrap_or_else(|| panic!("no cell for {gym_run} in {row}"));
    cell.split("</td>").next().unwrap()
}

/// The content of the element marked `data-testid="{testid}"`, up to `end`.
fn element<'a>(html: &'a str, testid: &str, end: &str) -> &'a str {
    let (_, rest) = html
        .split_once(&format!(r#"data-testid="{testid}""#))
        .unwrap_or_else(|| panic!("no {testid} in {html}"));
    let (_, content) = rest.split_once('>').unwrap();
    content.split(end).next().unwrap()
}

/// The pass rate shown in `scenario`'s row.
fn rate<'a>(html: &'a str, scenario: &str) -> &'a str {
    element(row(html, scenario), "gym-pass-rate", "<").trim()
}

#[tokio::test]
async fn the_gym_page_shows_the_matrix_the_pass_rate_and_what_changed() {
    let app = TestApp::spawn().await;

    // Nothing recorded: the page says how to record something.
    let html = page(&app, "/gym").await;
    assert!(html.contains(r#"data-testid="gym-empty""#), "{html}");
    assert!(html.contains("factory gym run"));
    assert!(
        html.contains("=offline:template"),
        "how to run without a model"
    );
    assert!(html.contains(r#"href="/gym""#), "the nav links the page");

    // g1 passes; g2 (the team catalogue changed) fails; g3 runs another scenario offline.
    let pass = recorded(
        &app,
        vec![record("g1", "fix-bug", "aaaaaaaaaaaaaaaa", LAB, true)],
    )
    .await[0];
    let fail = recorded(
        &app,
        vec![record("g2", "fix-bug", "bbbbbbbbbbbbbbbb", LAB, false)],
    )
    .await[0];
    let mut offline = record("g3", "write-docs", "bbbbbbbbbbbbbbbb", OFFLINE, true);
    offline.checks[1].status = CheckStatus::Skipped;
    recorded(&app, vec![offline]).await;

    let html = page(&app, "/gym").await;
    assert!(html.contains(r#"data-testid="gym-matrix""#), "{html}");
    assert!(!html.contains(r#"data-testid="gym-empty""#));
    let passed = cell(&html, "fix-bug", "g1");
    assert!(passed.contains(r#"data-result="pass""#), "{passed}");
    assert!(passed.contains(r#"title="run succeeded""#), "{passed}");
    let failed = cell(&html, "fix-bug", "g2");
    assert!(failed.contains(r#"data-result="fail""#), "{failed}");
    assert!(
        failed.contains("run failed: the engineering stage was blocked"),
        "the run's status on hover: {failed}"
    );
    assert!(
        failed.contains(&format!(r#"href="/gym/changed/{fail}""#))
            && failed.contains("what changed"),
        "{failed}"
    );
    assert!(cell(&html, "fix-bug", "g3").contains(r#"data-result="none""#));
    let docs = cell(&html, "write-docs", "g3");
    assert!(docs.contains("offline · 1 skipped check"), "{docs}");
    assert_eq!(rate(&html, "fix-bug"), "50%", "passed 1 of 2");
    assert_eq!(rate(&html, "write-docs"), "100%");
    // The chart's host and its table of the same numbers.
    assert!(html.contains(r#"data-chart="gym-pass-rate""#));
    assert!(html.contains(r#"data-chart-table="gym-pass-rate""#));

    // The chart's data: one line per models, a point per gym run of theirs.
    let dashboard = server_fn_json(&app, "gym_dashboard", &[]).await;
    assert_eq!(dashboard["records"], 3, "{dashboard}");
    let columns: Vec<&str> = dashboard["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["gym_run_id"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["g3", "g2", "g1"], "newest first");
    let chart = &dashboard["charts"][0];
    assert_eq!(chart["id"], "gym-pass-rate");
    let option: Value = serde_json::from_str(chart["option_json"].as_str().unwrap()).unwrap();
    let series = option["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{option}");
    assert_eq!(series[0]["name"], "every alias: lab:m");
    assert_eq!(series[0]["type"], "line");
    assert_eq!(series[0]["data"], serde_json::json!([100.0, 0.0, null]));
    assert_eq!(series[1]["name"], "every alias: offline:template");
    assert_eq!(series[1]["data"], serde_json::json!([null, null, 100.0]));
    let rows = chart["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][3], "0/1");
    assert_eq!(rows[1][4], "0%");

    // What changed: the catalogue and the failing check, beside the check table.
    let html = page(&app, &format!("/gym/changed/{fail}")).await;
    let pre = element(&html, "gym-what-changed", "</pre>");
    assert!(
        pre.contains("team catalogue: aaaaaaaaaaaa → bbbbbbbbbbbb"),
        "{pre}"
    );
    assert!(pre.contains("check `tests pass`: passed → failed"), "{pre}");
    assert!(pre.contains("assertion failed: total == 42"), "{pre}");
    let checks = element(&html, "gym-checks", "</table>");
    assert!(checks.contains(r#"data-check-status="failed""#), "{checks}");
    assert!(checks.contains("tests pass") && checks.contains("command"));
    assert!(checks.contains("exit 101:"), "the failing check's detail");
    let change = server_fn_json(&app, "gym_change", &[("seq", &fail.to_string())]).await;
    assert_eq!(change["last_pass"]["seq"], pass, "{change}");
    assert_eq!(change["last_pass"]["gym_run_id"], "g1");

    // A passing attempt has nothing to compare; no attempt at all is a clear not-found.
    let html = page(&app, &format!("/gym/changed/{pass}")).await;
    assert!(
        html.contains(r#"data-testid="gym-no-comparison""#),
        "{html}"
    );
    let other = app.store.append_batch(tokens(1, "t")).await.unwrap()[0].seq;
    for path in [
        "/gym/changed/999999".to_string(),
        "/gym/changed/not-a-number".to_string(),
        format!("/gym/changed/{other}"),
    ] {
        let html = page(&app, &path).await;
        assert!(
            html.contains(r#"data-testid="gym-not-found""#),
            "{path}: {html}"
        );
        assert!(html.contains("Gym attempt not found"), "{path}");
    }
    let none = server_fn_json(&app, "gym_change", &[("seq", "999999")]).await;
    assert_eq!(none, Value::Null);
}

#[tokio::test]
async fn the_gym_page_and_its_functions_refuse_without_credentials() {
    let app = TestApp::spawn().await;
    let fail = recorded(
        &app,
        vec![
            record("g1", "fix-bug", "aaaaaaaaaaaaaaaa", LAB, true),
            record("g2", "fix-bug", "bbbbbbbbbbbbbbbb", LAB, false),
        ],
    )
    .await[1];
    for path in ["/gym".to_string(), format!("/gym/changed/{fail}")] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[reqwest::header::LOCATION], "/login");
        let body = res.text().await.unwrap();
        assert!(!body.contains("team catalogue"), "{path}: {body}");
    }
    for (name, form) in [
        ("gym_dashboard", vec![]),
        ("gym_change", vec![("seq", fail.to_string())]),
    ] {
        let res = app
            .client
            .post(app.url(&format!("/api/{name}")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("fix-bug"), "{name}: {body}");
    }
}
