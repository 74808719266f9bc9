//! The Costs page's server function over HTTP, called the way the browser calls it: behind
//! authentication, with priced model calls through the server's own gateway (against the
//! scripted OpenAI-compatible server), every run or one run, and an unknown run refused.

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use crate::support::app::{TOKEN, TestApp};
use crate::support::providers::{Reply, config, request, serve};
use crate::support::{Attribution, Config, NewRun};

/// `POST /api/cost_dashboard` with a form body (`run=<id>`, or empty for every run).
async fn dashboard(app: &TestApp, body: &str, auth: bool) -> reqwest::Response {
    let req = app
        .client
        .post(app.url("/api/cost_dashboard"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.to_string());
    let req = if auth { req.bearer_auth(TOKEN) } else { req };
    req.send().await.unwrap()
}

async fn dashboard_json(app: &TestApp, body: &str) -> Value {
    let res = dashboard(app, body, true).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A server whose gateway prices `p0:gpt-test` at $2 / $8 per million tokens.
async fn priced_app(replies: Vec<Reply>) -> TestApp {
    let (base, _) = serve(replies).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(dir.path().to_path_buf());
    cfg.factory.gateway = config(&[&base], |c| c.budgets.run.soft = Some(0.001));
    let mut app = TestApp::spawn_with(cfg).await;
    app.keep_dir(dir);
    app
}

async fn new_run(app: &TestApp, goal: &str) -> String {
    let run = NewRun {
        goal: goal.into(),
        project: Some("shop".into()),
        request_id: None,
        pipeline: None,
    };
    app.store.create_run(run, "test").await.unwrap().0
}

async fn call(app: &TestApp, run: &str, team: &str) {
    let mut r = request(None);
    r.attribution = Attribution {
        run_id: Some(run.into()),
        project: Some("shop".into()),
        team: Some(team.into()),
        ..Attribution::default()
    };
    app.gateway.complete(&r).await.unwrap();
}

fn chart<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no chart {id} in {body}"))
}

fn option(chart: &Value) -> Value {
    serde_json::from_str(chart["option_json"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_cost_dashboard_charts_teams_time_models_and_budgets() {
    let ok = |input, output| Reply::Ok {
        text: "done",
        input,
        output,
    };
    let app = priced_app(vec![ok(1_000, 100), ok(2_000, 200), ok(500, 50)]).await;
    assert_eq!(dashboard(&app, "", false).await.status(), 401);

    let empty = dashboard_json(&app, "").await;
    assert_eq!(empty["report"]["total"]["calls"], 0, "{empty}");

    let login = new_run(&app, "Add a login page").await;
    let search = new_run(&app, "Add search").await;
    call(&app, &login, "business-analysis").await;
    call(&app, &login, "qa-engineering").await;
    call(&app, &search, "qa-engineering").await;
    app.gateway.flush().await;
    let a = (1_000.0 * 2.0 + 100.0 * 8.0) / 1e6;
    let b = (2_000.0 * 2.0 + 200.0 * 8.0) / 1e6;
    let c = (500.0 * 2.0 + 50.0 * 8.0) / 1e6;

    let all = dashboard_json(&app, "").await;
    assert_eq!(all["run"], Value::Null);
    assert_eq!(all["report"]["total"]["calls"], 3, "{all}");
    let teams = option(chart(&all, "team-cost"));
    let names = teams["xAxis"]["data"].as_array().unwrap();
    let values = teams["series"][0]["data"].as_array().unwrap();
    let value_of = |team: &str| {
        let i = names
            .iter()
            .position(|n| n == team)
            .unwrap_or_else(|| panic!("no bar for {team} in {teams}"));
        values[i].as_f64().unwrap()
    };
    assert!(
        (value_of("qa-engineering") - (b + c)).abs() < 1e-4,
        "{teams}"
    );
    assert!((value_of("business-analysis") - a).abs() < 1e-4, "{teams}");
    // Four kinds of chart: per team, over time, per model, and a budget gauge per scope.
    let ids: Vec<&str> = all["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids[..3],
        ["team-cost", "cost-over-time", "model-tokens"],
        "{ids:?}"
    );
    let month = option(chart(&all, "budget-month"));
    assert_eq!(month["series"][0]["type"], "gauge");
    assert_eq!(
        month["series"][0]["max"], 100.0,
        "the default emergency limit"
    );
    let tokens = option(chart(&all, "model-tokens"));
    assert_eq!(
        tokens["series"][0]["data"][0], 3_500,
        "input tokens of p0:gpt-test"
    );
    // The run selector offers both runs, newest first.
    assert_eq!(all["runs"][0][0], search.as_str());
    assert_eq!(all["runs"][1][1], "Add a login page");

    let one = dashboard_json(&app, &format!("run={login}")).await;
    assert_eq!(one["run"], login.as_str());
    assert_eq!(one["report"]["total"]["calls"], 2, "{one}");
    assert!(
        one["scope_label"]
            .as_str()
            .unwrap()
            .contains("Add a login page")
    );
    let line = option(chart(&one, "cost-over-time"));
    let points = line["series"][0]["data"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{line}");
    assert!(
        (points[1].as_f64().unwrap() - (a + b)).abs() < 1e-4,
        "a running total"
    );
    let gauge = option(chart(&one, "budget-run"));
    assert_eq!(
        gauge["series"][0]["max"], 3.0,
        "the default hard limit per run"
    );
    let stops = &gauge["series"][0]["axisLine"]["lineStyle"]["color"];
    assert_eq!(stops[0][0], 0.0003, "the soft limit, $0.001 of $3: {stops}");
    assert_eq!(one["report"]["budgets"].as_array().unwrap().len(), 1);
    let spent = one["report"]["budgets"][0]["spent_usd"].as_f64().unwrap();
    assert!((spent - (a + b)).abs() < 1e-9);
}

#[tokio::test]
async fn an_unknown_run_is_refused_by_name_and_nothing_changes() {
    let app = priced_app(Vec::new()).await;
    let before = app.store.last_seq().await.unwrap();
    let res = dashboard(&app, "run=no-such-run-42", true).await;
    assert!(res.status().is_server_error() || res.status().is_client_error());
    let text = res.text().await.unwrap();
    assert!(text.contains("no run with id no-such-run-42"), "{text}");
    assert_eq!(
        app.store.last_seq().await.unwrap(),
        before,
        "nothing recorded"
    );
    // Empty means every run, like the selector's "All runs".
    let all = dashboard_json(&app, "run=").await;
    assert_eq!(all["run"], Value::Null, "{all}");
}
