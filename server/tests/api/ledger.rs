//! Budgets and the cost ledger, against the scripted OpenAI-compatible server and a real
//! SQLite file.

use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::providers::{Reply, config, request, serve};
use crate::support::{
    Attribution, BudgetScope, BudgetTier, CostLine, EventData, Gateway, Risk, RoutingInput, Store,
    cost_report,
};

fn attributed(run: &str, team: &str) -> Attribution {
    Attribution {
        run_id: Some(run.into()),
        project: Some("shop".into()),
        team: Some(team.into()),
        objective_id: Some(format!("{run}/{team}/1")),
        work_order_id: None,
    }
}

async fn kinds(store: &Store) -> Vec<String> {
    store
        .events_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.data.kind().to_string())
        .collect()
}

#[tokio::test]
async fn fifty_concurrent_calls_against_a_budget_for_ten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let replies = (0..50)
        .map(|_| Reply::Delayed {
            delay: Duration::from_millis(150),
            input: 20,
            output: 64,
        })
        .collect();
    let (base, script) = serve(replies).await;
    let probe = Gateway::new(config(&[&base], |_| {}));
    let worst = probe.worst_case_cost(&request(None), "p0:gpt-test");
    assert!(worst > 0.0);
    let limit = worst * 10.5;
    let gateway = Gateway::with_ledger(
        config(&[&base], |c| {
            c.budgets.run.hard = Some(limit);
            c.models.get_mut("p0:gpt-test").unwrap().max_concurrency = 50;
        }),
        store.clone(),
    )
    .await
    .unwrap();
    let gateway = std::sync::Arc::new(gateway);
    let calls = (0..50).map(|_| {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut r = request(None);
            r.attribution = attributed("run-1", "backend-engineering");
            gateway.complete(&r).await
        })
    });
    let results = futures::future::join_all(calls).await;
    let mut ok = 0;
    for result in results {
        match result.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains("hard limit") && message.contains("run run-1"),
                    "{message}"
                );
            }
        }
    }
    assert_eq!(ok, 10, "exactly the ten calls the budget holds go through");
    assert_eq!(script.calls(), 10, "refused calls never reach the model");
    gateway.flush().await;
    let report = cost_report(&store).await.unwrap();
    let total = report.total.unwrap();
    assert_eq!(total.calls, 10);
    assert!(
        total.cost_usd <= limit,
        "ledger {} > limit {limit}",
        total.cost_usd
    );
    let expected = 10.0 * (20.0 * 2.0 + 64.0 * 8.0) / 1e6;
    assert!((total.cost_usd - expected).abs() < 1e-9);
    let events = store.events_after(0, 10_000).await.unwrap();
    let refused = events
        .iter()
        .filter(|e| matches!(&e.data, EventData::ModelCallFailed { error, .. } if error.contains("hard limit")))
        .count();
    assert_eq!(refused, 40);
    let reached: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::BudgetReached { budget, tier, .. } => Some((budget.clone(), *tier)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reached,
        [(
            BudgetScope::Run {
                run_id: "run-1".into()
            },
            BudgetTier::Hard
        )],
        "the hard tier is recorded once"
    );
}

#[tokio::test]
async fn every_call_is_recorded_with_attribution_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (base, _) = serve(vec![
        Reply::Ok {
            text: "a",
            input: 1_000,
            output: 100,
        },
        Reply::Ok {
            text: "b",
            input: 2_000,
            output: 200,
        },
        Reply::Status {
            status: 400,
            retry_after: None,
        },
    ])
    .await;
    let gateway = Gateway::with_ledger(config(&[&base], |_| {}), store.clone())
        .await
        .unwrap();
    let mut r = request(None);
    r.attribution = attributed("run-a", "business-analysis");
    let first = gateway.complete(&r).await.unwrap();
    r.attribution = attributed("run-a", "qa-engineering");
    gateway.complete(&r).await.unwrap();
    r.attribution = attributed("run-b", "qa-engineering");
    let failed = gateway.complete(&r).await.unwrap_err();
    assert!(failed.to_string().contains("400"), "{failed}");
    gateway.flush().await;

    assert_eq!(
        kinds(&store).await,
        [
            "model_call_started",
            "model_call_finished",
            "model_call_started",
            "model_call_finished",
            "model_call_started",
            "model_call_failed"
        ]
    );
    let events = store.events_after(0, 100).await.unwrap();
    match &events[1].data {
        EventData::ModelCallFinished {
            call_id,
            attribution,
            provider,
            model,
            input_tokens,
            cost_usd,
            path,
            target,
            ..
        } => {
            assert_eq!(call_id, &first.call_id);
            assert_eq!(attribution, &attributed("run-a", "business-analysis"));
            assert_eq!((provider.as_str(), model.as_str()), ("p0", "gpt-test"));
            assert_eq!(target, "test/chain");
            assert_eq!(*input_tokens, 1_000);
            assert!((cost_usd - first.cost_usd).abs() < 1e-12);
            assert_eq!(path.len(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(events[1].run_id.as_deref(), Some("run-a"));

    let report = cost_report(&store).await.unwrap();
    let cost = |lines: &[CostLine], key: &str| {
        lines
            .iter()
            .find(|l| l.key == key)
            .map(|l| (l.calls, l.cost_usd))
    };
    let a = (1_000.0 * 2.0 + 100.0 * 8.0) / 1e6;
    let b = (2_000.0 * 2.0 + 200.0 * 8.0) / 1e6;
    assert_eq!(cost(&report.by_run, "run-a"), Some((2, a + b)));
    assert_eq!(
        cost(&report.by_run, "run-b"),
        None,
        "failed calls cost nothing"
    );
    assert_eq!(cost(&report.by_team, "qa-engineering"), Some((1, b)));
    assert_eq!(cost(&report.by_model, "p0:gpt-test"), Some((2, a + b)));
    assert_eq!(cost(&report.by_project, "shop"), Some((2, a + b)));
    assert_eq!(report.by_day.len(), 1);

    // A gateway started later on the same ledger knows what run-a already spent.
    let again = Gateway::with_ledger(config(&[&base], |_| {}), store.clone())
        .await
        .unwrap();
    let status = again
        .budgets()
        .status(&chrono::Utc::now().format("%Y-%m").to_string());
    let run_a = status
        .iter()
        .find(|s| {
            s.scope
                == BudgetScope::Run {
                    run_id: "run-a".into(),
                }
        })
        .unwrap();
    assert!((run_a.spent_usd - (a + b)).abs() < 1e-12);
}

#[tokio::test]
async fn a_call_issued_again_with_its_id_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let reply = Reply::Ok {
        text: "same",
        input: 500,
        output: 50,
    };
    let (base, script) = serve(vec![reply.clone(), reply]).await;
    let gateway = Gateway::with_ledger(config(&[&base], |_| {}), store.clone())
        .await
        .unwrap();
    let mut r = request(None);
    r.call_id = Some("run-x/stage-1/attempt-1".into());
    r.attribution = attributed("run-x", "documentation");
    let once = gateway.complete(&r).await.unwrap();
    let twice = gateway.complete(&r).await.unwrap();
    assert_eq!(once.call_id, twice.call_id);
    assert_eq!(script.calls(), 2);
    gateway.flush().await;
    let total = cost_report(&store).await.unwrap().total.unwrap();
    assert_eq!(total.calls, 1);
    assert!((total.cost_usd - once.cost_usd).abs() < 1e-12);
    // The projection is rebuilt from the log to the same answer.
    store.rebuild_projections().await.unwrap();
    let rebuilt = cost_report(&store).await.unwrap().total.unwrap();
    assert_eq!(rebuilt, total);
}

#[tokio::test]
async fn routing_decisions_are_recorded_with_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let gateway = Gateway::with_ledger(config(&["http://127.0.0.1:9/v1"], |_| {}), store.clone())
        .await
        .unwrap();
    let attribution = Attribution {
        run_id: Some("run-r".into()),
        work_order_id: Some("wo-1".into()),
        ..Attribution::default()
    };
    let input = RoutingInput {
        files_in_scope: 1,
        risk: Risk::Low,
        has_acceptance_criteria: true,
        text: "Add payment retries",
    };
    let decision = gateway.route(&attribution, &input).await;
    assert_eq!(decision.alias, "factory/architect");
    gateway.flush().await;
    let events = store.events_after(0, 10).await.unwrap();
    match &events[0].data {
        EventData::RoutingDecided {
            attribution: a,
            decision: d,
        } => {
            assert_eq!(a, &attribution);
            assert_eq!(d.hard_stop.as_deref(), Some("payment"));
            assert_eq!(d.files_in_scope, 1);
            assert!(d.reason.contains("payment"), "{}", d.reason);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_costs_api_reports_totals_and_budgets_behind_auth() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/api/costs")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // A call through the server's own gateway (offline: $0, still recorded).
    let mut r = request(None);
    r.target = "factory/fast".into();
    r.attribution = attributed("run-o", "documentation");
    let reply = app.gateway.complete(&r).await.unwrap();
    assert_eq!(reply.provider, "offline");
    app.gateway.flush().await;
    let body: serde_json::Value = app.get("/api/costs").await.json().await.unwrap();
    assert_eq!(body["total"]["calls"], 1, "{body}");
    assert_eq!(body["by_model"][0]["key"], "offline:template", "{body}");
    assert_eq!(body["by_team"][0]["key"], "documentation");
    assert_eq!(body["emergency_stop"], false);
    let month = &body["budgets"][0];
    assert_eq!(month["scope"], "month", "{body}");
    assert_eq!(month["hard_usd"], 50.0);
}
