//! The dashboard's run pages: the run folded for the page and the chat's start, called as the
//! browser calls them (server functions over HTTP); `/ws` resuming after the last seen event,
//! keeping one run's events, and resyncing a client that missed too many.

use std::time::Duration;

use serde_json::json;

use crate::support::app::TestApp;
use crate::support::db::tokens;
use crate::support::ws::{bearer, connect, next_brief, next_msg, open};
use crate::support::{BriefMsg, EventData, RunView, ServerMsg, Speaker, StageState};

/// A run started through the API, once it waits for its plan to be approved.
async fn waiting_run(app: &TestApp, goal: &str) -> String {
    let res = app.start_run(json!({ "goal": goal })).await;
    let id = res.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_status(app, &id, "waiting_for_human").await;
    id
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str) {
    for _ in 0..200 {
        let run: serde_json::Value = app
            .get(&format!("/api/runs/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if run["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never reached {status}");
}

#[tokio::test]
async fn a_reconnecting_client_gets_exactly_the_events_it_missed() {
    let app = TestApp::spawn().await;
    let committed = app.store.append_batch(tokens(10, "a")).await.unwrap();
    let seen = committed[4].seq;
    let mut socket = connect(&app, &format!("?after={seen}")).await;
    let mut got = Vec::new();
    loop {
        match next_msg(&mut socket).await {
            ServerMsg::Event { event } => got.push(event.seq),
            ServerMsg::Ready => break,
            other => panic!("a resume sends no {other:?}"),
        }
    }
    let expected: Vec<i64> = committed[5..].iter().map(|e| e.seq).collect();
    assert_eq!(got, expected);
    // Live events follow.
    let more = app.store.append_batch(tokens(1, "b")).await.unwrap();
    let ServerMsg::Event { event } = next_msg(&mut socket).await else {
        panic!("expected a live event");
    };
    assert_eq!(event.seq, more[0].seq);
}

#[tokio::test]
async fn a_client_too_far_behind_is_resynced_and_bad_resume_points_are_refused() {
    let app = TestApp::spawn().await;
    app.store.append_batch(tokens(5_200, "f")).await.unwrap();
    let mut socket = connect(&app, "?after=1").await;
    assert!(matches!(
        next_msg(&mut socket).await,
        ServerMsg::Resync { .. }
    ));
    assert!(matches!(
        next_msg(&mut socket).await,
        ServerMsg::Snapshot { .. }
    ));
    assert!(matches!(next_msg(&mut socket).await, ServerMsg::Ready));
    // A resume point beyond the log (another database) is a resync too.
    let mut socket = connect(&app, "?after=999999").await;
    let ServerMsg::Resync { reason } = next_msg(&mut socket).await else {
        panic!("expected a resync");
    };
    assert!(reason.contains("not in this log"), "{reason}");
    // A malformed query is refused before the upgrade, with what is accepted.
    let res = app.get("/ws?after=-3").await;
    assert_eq!(res.status(), 400);
    match open(&app, "?since=3", &[bearer()]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 400);
            let body = String::from_utf8(res.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("accepted"), "{body}");
        }
        other => panic!("an unknown parameter must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn the_run_filter_keeps_one_runs_events() {
    let app = TestApp::spawn().await;
    let a = waiting_run(&app, "first run").await;
    let mut socket = connect(&app, &format!("?after=0&run={a}")).await;
    let b = app.start_run(json!({"goal": "second run"})).await;
    assert!(b.status().is_success());
    let mut replayed = 0;
    loop {
        match next_msg(&mut socket).await {
            ServerMsg::Event { event } => {
                assert_eq!(event.run_id.as_deref(), Some(a.as_str()));
                replayed += 1;
            }
            ServerMsg::Ready => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(replayed >= 5, "the run's history is replayed ({replayed})");
    // Nothing of the second run arrives; a decision on the first does.
    let approvals: serde_json::Value = app
        .get(&format!("/api/approvals?run_id={a}&status=pending"))
        .await
        .json()
        .await
        .unwrap();
    let approval = approvals[0]["id"].as_str().unwrap().to_string();
    let res = app
        .server_fn(
            "decide_approval",
            &[("id", &approval), ("option", "reject")],
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    loop {
        let ServerMsg::Event { event } = next_msg(&mut socket).await else {
            panic!("expected live events");
        };
        assert_eq!(event.run_id.as_deref(), Some(a.as_str()));
        if matches!(event.data, EventData::RunFinished { .. }) {
            break;
        }
    }
}

#[tokio::test]
async fn run_view_folds_a_run_for_the_page_and_refuses_unknown_ids() {
    let app = TestApp::spawn().await;
    let id = waiting_run(&app, "Export orders as CSV").await;

    let res = app.server_fn("run_view", &[("id", &id)]).await;
    assert_eq!(res.status(), 200);
    let view: RunView = res.json().await.unwrap();
    assert_eq!(view.goal, "Export orders as CSV");
    assert_eq!(view.stages.len(), 5);
    assert_eq!(view.stages[0].state, StageState::Complete);
    assert_eq!(view.pending_approvals().count(), 1, "the plan waits");
    assert_eq!(view.chat[0].from, Speaker::User);
    assert_eq!(view.teams.len(), 17);
    assert!(view.teams.iter().all(|t| !t.operatives.is_empty()));
    assert!(view.last_seq > 0);
    // The offline provider is labelled as what it is.
    assert!(
        view.stages[0]
            .usage
            .model
            .as_deref()
            .is_some_and(|m| m.starts_with("offline:"))
    );

    let res = app.server_fn("run_view", &[("id", "no-such-run")]).await;
    assert!(!res.status().is_success());
    assert!(res.text().await.unwrap().contains("no run with id"));
    let res = app
        .client
        .post(app.url("/api/run_view"))
        .form(&[("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_chat_starts_runs_and_refuses_bad_input_storing_nothing() {
    let app = TestApp::spawn().await;
    let res = app.server_fn("composer_options", &[]).await;
    let options: serde_json::Value = res.json().await.unwrap();
    assert!(
        options["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[0] == "full" && p[1] == 17)
    );
    assert!(
        options["models_note"]
            .as_str()
            .unwrap()
            .contains("offline (no model)")
    );

    let res = app.server_fn("start_run", &[("goal", "   ")]).await;
    assert!(!res.status().is_success());
    assert!(res.text().await.unwrap().contains("`goal` is empty"));
    let res = app
        .server_fn(
            "start_run",
            &[("goal", "Add login"), ("pipeline", "nightly")],
        )
        .await;
    assert!(!res.status().is_success());
    assert!(res.text().await.unwrap().contains("nightly"));
    assert!(app.store.list_runs(10).await.unwrap().is_empty());

    let res = app
        .server_fn(
            "start_run",
            &[
                ("goal", "Add login"),
                ("project", ""),
                ("pipeline", "default"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let id: String = res.json().await.unwrap();
    let runs = app.store.list_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, id);
    wait_for_status(&app, &id, "waiting_for_human").await;
    let runs = app.store.list_runs(10).await.unwrap();
    assert!(runs[0].current_stage.is_some(), "{:?}", runs[0]);
}

#[tokio::test]
async fn the_brief_stream_names_events_without_their_payloads() {
    let app = TestApp::spawn().await;
    let committed = app.store.append_batch(tokens(4, "a")).await.unwrap();
    let head = committed.last().unwrap().seq;
    // A first connection starts live from the head, with no snapshot.
    let mut socket = connect(&app, "?brief=true").await;
    assert_eq!(
        next_brief(&mut socket).await,
        BriefMsg::Ready { last_seq: head }
    );
    let more = app.store.append_batch(tokens(1, "b")).await.unwrap();
    assert_eq!(
        next_brief(&mut socket).await,
        BriefMsg::Events {
            last_seq: more[0].seq,
            count: 1,
            kinds: vec!["admin_token_created".into()],
        }
    );
    // A burst arrives in few messages that count every event and end at the newest.
    let burst = app.store.append_batch(tokens(300, "c")).await.unwrap();
    let (mut counted, mut messages) = (0, 0);
    while counted < 300 {
        let BriefMsg::Events {
            last_seq, count, ..
        } = next_brief(&mut socket).await
        else {
            panic!("expected events");
        };
        counted += count;
        messages += 1;
        if counted == 300 {
            assert_eq!(last_seq, burst.last().unwrap().seq);
        }
    }
    assert_eq!(counted, 300);
    assert!(messages < 300, "a burst is batched ({messages} messages)");
    // A resume replays what was missed, briefly, then says where it is.
    let mut socket = connect(&app, &format!("?brief=true&after={}", committed[1].seq)).await;
    let mut replayed = 0;
    loop {
        match next_brief(&mut socket).await {
            BriefMsg::Events { count, .. } => replayed += count,
            BriefMsg::Ready { last_seq } => {
                assert_eq!(last_seq, burst.last().unwrap().seq);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(replayed, 2 + 1 + 300);
    // Too far behind: told to resync, then live.
    let mut socket = connect(&app, "?brief=true&after=999999").await;
    assert!(matches!(
        next_brief(&mut socket).await,
        BriefMsg::Resync { .. }
    ));
    assert!(matches!(
        next_brief(&mut socket).await,
        BriefMsg::Ready { .. }
    ));
}

/// A page of the dashboard as the browser gets it.
async fn page(app: &TestApp, path: &str) -> String {
    let res = app.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn pages_are_rendered_whole_on_the_server_with_their_state_from_the_address() {
    let app = TestApp::spawn().await;
    let id = waiting_run(&app, "Export orders as CSV").await;
    let head = app.store.last_seq().await.unwrap();

    let html = page(&app, &format!("/runs/{id}")).await;
    // Complete HTML (no streamed fallbacks): the graph, the pending plan, the chat, the live
    // link's island and the point it resumes from.
    assert!(html.contains(r#"data-testid="team-graph""#));
    assert!(!html.contains("Loading the run"), "a fallback was sent");
    assert_eq!(html.matches(r#"data-node="stage""#).count(), 5);
    assert!(html.contains(r#"data-kind="plan""#));
    assert!(html.contains("Export orders as CSV"));
    assert!(html.contains(r#"data-component="LiveLink"#), "{html}");
    assert!(html.contains(&format!(r#"data-render-seq="{head}""#)));
    assert!(!html.contains(r#"data-testid="task-result""#));

    // The selection, the feed's filter and the opened artifact come from the address.
    let html = page(
        &app,
        &format!("/runs/{id}?sel=stage-0&kind=stage_completed"),
    )
    .await;
    assert!(html.contains(r#"data-testid="task-result""#));
    assert!(html.contains(r#"aria-current="true""#));
    let feed = html.split(r#"data-testid="feed""#).nth(1).unwrap();
    let feed = feed.split("</ol>").next().unwrap();
    let kinds: Vec<&str> = feed
        .split(r#"data-kind=""#)
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(!kinds.is_empty());
    assert!(kinds.iter().all(|k| *k == "stage_completed"), "{kinds:?}");
    let view: RunView = app
        .server_fn("run_view", &[("id", &id)])
        .await
        .json()
        .await
        .unwrap();
    let stage = &view.stages[0];
    let path = format!(
        "{}/{}",
        stage.artifact_dir.as_deref().unwrap(),
        stage.result.as_ref().unwrap().artifacts[0].0
    );
    let address =
        reqwest::Url::parse_with_params(&app.url(&format!("/runs/{id}")), [("artifact", &path)])
            .unwrap();
    let html = page(&app, &format!("/runs/{id}?{}", address.query().unwrap())).await;
    assert!(
        html.contains(r#"data-testid="artifact""#),
        "the artifact is rendered"
    );
    // Malformed state is ignored, not an error.
    let html = page(
        &app,
        &format!("/runs/{id}?sel=bogus&artifact=../../etc/passwd"),
    )
    .await;
    assert!(html.contains(r#"data-testid="team-graph""#));
    assert!(!html.contains("root:"));

    // The Runs page follows a run's conversation in its chat.
    let html = page(&app, &format!("/?chat={id}")).await;
    assert!(html.contains(r#"data-testid="chat-open-run""#));
    assert!(html.contains(r#"data-testid="chat""#));
    let html = page(&app, "/").await;
    assert!(html.contains(r#"data-component="Composer"#));
}
