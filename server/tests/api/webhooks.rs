//! Signed webhooks against receivers on loopback that check signatures themselves: a run's
//! events arrive signed and filtered and are recorded as delivered; a receiver that is down for
//! a while gets them after retries; one that never accepts is recorded as failed while the run
//! finishes regardless; the signature covers the body; a bad configuration stops the command.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::app::{finished, start};
use crate::support::cli::{SHOP_REQUIREMENT, factory_cli, text};
use crate::support::git::git_repo;
use crate::support::webhook::{
    Receiver, SECRET, Script, is_webhook_record, offline_app, recorded, verify, webhook, webhook_to,
};
use crate::support::{Store, free_port};

/// Kinds the first test asks for: a prefix and one kind.
fn asked(kind: &str) -> bool {
    kind.starts_with("run_") || kind == "stage_completed"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_run_delivers_the_kinds_asked_for_signed_and_recorded() {
    let receiver = Receiver::start(SECRET, Script::accept()).await;
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let config = data.path().join("hooks.toml");
    // The secret comes from the environment: factory.toml holds none.
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"ci\"\nurl = \"{}\"\nevents = [\"run_*\", \"stage_completed\"]\n\
             secret_env = \"FACTORY_TEST_HOOK_SECRET\"\n",
            receiver.url()
        ),
    )
    .unwrap();
    let added = factory_cli(data.path())
        .args(["project", "add", "--allow-unverified"])
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(added.status.code(), Some(0), "{added:?}");
    let mut run = factory_cli(data.path());
    run.arg("--config")
        .arg(&config)
        .args(["run", "--json", "--auto-approve", "--project"])
        .arg(repo.path())
        .arg(SHOP_REQUIREMENT)
        .env("FACTORY_TEST_HOOK_SECRET", SECRET);
    let out = tokio::task::spawn_blocking(move || run.output().unwrap())
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(SECRET) && !stdout.contains(SECRET));
    let run: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["status"], "succeeded");
    let run_id = run["id"].as_str().unwrap();

    // What the process committed, read back from its log.
    let store = Store::open(data.path()).await.unwrap();
    let log = store.events_after(0, 100_000).await.unwrap();
    let wanted: Vec<_> = log.iter().filter(|e| asked(e.data.kind())).collect();
    let kinds: Vec<&str> = wanted.iter().map(|e| e.data.kind()).collect();
    for kind in [
        "run_created",
        "run_started",
        "stage_completed",
        "run_finished",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    // Exactly those arrived, once each, in order, signed and shaped like the events API.
    let deliveries = receiver.deliveries();
    let seqs: Vec<i64> = deliveries
        .iter()
        .map(|d| d.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, wanted.iter().map(|e| e.seq).collect::<Vec<_>>());
    for (delivery, event) in deliveries.iter().zip(&wanted) {
        assert!(delivery.verified, "{delivery:?}");
        assert_eq!(delivery.json(), serde_json::to_value(event).unwrap());
        assert_eq!(delivery.event, event.data.kind());
        assert_eq!(delivery.json()["run_id"], run_id);
        for field in ["seq", "kind", "run_id", "ts", "payload"] {
            assert!(!delivery.json()[field].is_null(), "{field}");
        }
        let sent: u64 = delivery.timestamp.parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            sent <= now && now - sent < 600,
            "timestamp {sent}, now {now}"
        );
    }
    let mut ids: Vec<&str> = deliveries.iter().map(|d| d.delivery_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), deliveries.len(), "delivery ids are unique");

    // Each delivery is recorded, tied to the run; the records themselves were never sent.
    let delivered = log.iter().filter(|e| e.data.kind() == "webhook_delivered");
    assert_eq!(delivered.count(), deliveries.len());
    for (record, delivery) in log
        .iter()
        .filter(|e| e.data.kind() == "webhook_delivered")
        .zip(&deliveries)
    {
        let payload = &serde_json::to_value(&record.data).unwrap()["payload"];
        assert_eq!(payload["webhook"], "ci");
        assert_eq!(payload["delivery_id"], delivery.delivery_id.as_str());
        assert_eq!(payload["event_seq"], delivery.json()["seq"]);
        assert_eq!(payload["event_kind"], delivery.event.as_str());
        assert_eq!(
            (payload["attempts"].as_u64(), payload["status"].as_u64()),
            (Some(1), Some(204))
        );
        assert_eq!(record.run_id.as_deref(), Some(run_id));
        assert_eq!(record.actor, "webhooks");
    }
    assert!(deliveries.iter().all(|d| !is_webhook_record(&d.event)));
    assert!(
        log.iter()
            .all(|e| !matches!(e.data.kind(), "webhook_failed" | "webhook_dropped")),
        "nothing failed or was dropped"
    );
}

#[tokio::test]
async fn a_receiver_that_answers_503_at_first_gets_the_event_after_retries() {
    let receiver = Receiver::start(
        SECRET,
        Script {
            first: vec![503, 503],
            ..Script::accept()
        },
    )
    .await;
    let app = offline_app(vec![webhook("flaky", &receiver, &["run_finished"])]).await;
    let run_id = start(&app, json!({"goal": "Export orders as CSV"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let delivered = recorded(&app, "webhook_delivered", |found| !found.is_empty()).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["attempts"], 3);
    assert_eq!(delivered[0]["status"], 204);
    assert_eq!(delivered[0]["event_kind"], "run_finished");
    assert_eq!(delivered[0]["run_id"], run_id.as_str());
    // Three requests for one delivery: the same id, each signed with its own timestamp.
    let deliveries = receiver.deliveries();
    let answers: Vec<u16> = deliveries.iter().map(|d| d.answered).collect();
    assert_eq!(answers, [503, 503, 204]);
    assert!(deliveries.iter().all(|d| d.verified));
    assert!(
        deliveries
            .iter()
            .all(|d| d.delivery_id == delivered[0]["delivery_id"])
    );
}

#[tokio::test]
async fn a_receiver_that_refuses_connections_for_a_while_gets_the_event_once_it_is_up() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut hook = webhook_to("late", &url, &["admin_token_created"]);
    hook.max_attempts = 20;
    let app = offline_app(vec![hook]).await;
    let committed = app
        .store
        .append_batch(crate::support::db::tokens(1, "late"))
        .await
        .unwrap();
    let seq = committed[0].seq;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let receiver = Receiver::start_on(Some(port), SECRET, Script::accept()).await;
    let ours = |found: &[Value]| found.iter().any(|d| d["event_seq"] == seq);
    // The server's own start-up events come first; whichever was first waited for the receiver.
    let delivered = recorded(&app, "webhook_delivered", ours).await;
    assert!(
        delivered[0]["attempts"].as_u64().unwrap() >= 2,
        "{delivered:?}"
    );
    let recorded_seqs: Vec<&Value> = delivered.iter().map(|d| &d["event_seq"]).collect();
    let arrived: Vec<Value> = receiver
        .deliveries()
        .iter()
        .map(|d| d.json()["seq"].clone())
        .collect();
    assert_eq!(
        arrived.iter().collect::<Vec<_>>(),
        recorded_seqs,
        "each once, in order"
    );
    assert!(recorded(&app, "webhook_failed", |_| true).await.is_empty());
}

#[tokio::test]
async fn a_receiver_that_never_accepts_is_recorded_as_failed_and_never_holds_up_the_run() {
    let down = Receiver::start(
        SECRET,
        Script {
            then: 503,
            ..Script::accept()
        },
    )
    .await;
    // Takes every event and answers none for a minute: its queue fills while the run goes on.
    let stuck = Receiver::start(
        SECRET,
        Script {
            hang: Some(Duration::from_secs(60)),
            ..Script::accept()
        },
    )
    .await;
    let mut failing = webhook("down", &down, &["run_finished"]);
    failing.max_attempts = 3;
    let mut slow = webhook("stuck", &stuck, &["*"]);
    slow.timeout_secs = 30;
    slow.queue_size = 2;
    let app = offline_app(vec![failing, slow]).await;

    let started = Instant::now();
    let run_id = start(&app, json!({"goal": "Export orders as CSV"})).await;
    let run = finished(&app, &run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // Without webhooks an offline run takes seconds; one delivery to `stuck` takes 30.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );

    let failed = recorded(&app, "webhook_failed", |found| !found.is_empty()).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["webhook"], "down");
    assert_eq!(failed[0]["attempts"], 3);
    assert_eq!(failed[0]["status"], 503);
    assert_eq!(failed[0]["run_id"], run_id.as_str());
    assert!(
        failed[0]["error"].as_str().unwrap().contains("503"),
        "{failed:?}"
    );
    assert_eq!(down.deliveries().len(), 3);
    // The stuck webhook took one event and queued two; every other was dropped, oldest first,
    // and each drop is recorded.
    assert_eq!(stuck.deliveries().len(), 1, "one request at a time");
    let first = stuck.deliveries()[0].json()["seq"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = app.store.events_after(0, 100_000).await.unwrap();
        // Everything from the first event it took on was offered to it.
        let offered = log
            .iter()
            .filter(|e| e.seq >= first && !is_webhook_record(e.data.kind()))
            .count() as u64;
        let dropped: Vec<Value> = log
            .iter()
            .filter(|e| e.data.kind() == "webhook_dropped")
            .map(|e| serde_json::to_value(&e.data).unwrap()["payload"].clone())
            .collect();
        assert!(
            dropped
                .iter()
                .all(|d| d["webhook"] == "stuck" && d["reason"] == "queue_full")
        );
        let count: u64 = dropped.iter().map(|d| d["count"].as_u64().unwrap()).sum();
        if offered > 10 && count == offered - 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {offered} dropped: {dropped:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_signature_covers_the_body_the_timestamp_and_the_secret() {
    let receiver = Receiver::start(SECRET, Script::accept()).await;
    // A receiver holding another secret refuses every delivery (401), which is not retried.
    let wrong = Receiver::start("another-secret-0123456789abcdef", Script::accept()).await;
    let app = offline_app(vec![
        webhook("right", &receiver, &["admin_token_created"]),
        webhook("wrong", &wrong, &["admin_token_created"]),
    ])
    .await;
    let seq = app
        .store
        .append_batch(crate::support::db::tokens(1, "sig"))
        .await
        .unwrap()[0]
        .seq;
    let ours = |found: &[Value]| found.iter().any(|d| d["event_seq"] == seq);
    let delivered = recorded(&app, "webhook_delivered", ours).await;
    assert!(
        delivered.iter().all(|d| d["webhook"] == "right"),
        "{delivered:?}"
    );
    let failed = recorded(&app, "webhook_failed", ours).await;
    let failed: Vec<&Value> = failed.iter().filter(|d| d["event_seq"] == seq).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["webhook"], "wrong");
    assert_eq!(
        (failed[0]["attempts"].as_u64(), failed[0]["status"].as_u64()),
        (Some(1), Some(401))
    );
    assert!(
        wrong
            .deliveries()
            .iter()
            .all(|d| d.answered == 401 && !d.verified)
    );

    let d = receiver
        .deliveries()
        .into_iter()
        .find(|d| d.json()["seq"] == seq)
        .unwrap();
    let secret = SECRET.as_bytes();
    assert!(verify(secret, &d.timestamp, &d.body, &d.signature));
    let body = String::from_utf8(d.body.to_vec()).unwrap();
    assert!(body.contains("\"sig0\""), "{body}");
    let tampered = body.replace("\"sig0\"", "\"sig1\"").into_bytes();
    assert!(
        !verify(secret, &d.timestamp, &tampered, &d.signature),
        "a changed body"
    );
    let later = (d.timestamp.parse::<u64>().unwrap() + 1).to_string();
    assert!(
        !verify(secret, &later, &d.body, &d.signature),
        "a replayed timestamp"
    );
    assert!(!verify(
        b"another-secret-0123456789abcdef",
        &d.timestamp,
        &d.body,
        &d.signature
    ));
}

#[test]
fn a_webhook_whose_secret_is_not_set_or_that_would_send_in_the_clear_stops_the_run() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("hooks.toml");
    let cases = [
        (
            "url = \"https://hooks.example.com/in\"\nsecret_env = \"FACTORY_TEST_UNSET_SECRET\"",
            "FACTORY_TEST_UNSET_SECRET, which is not set",
        ),
        (
            "url = \"http://hooks.example.com/in\"\nsecret = \"0123456789abcdef0123\"",
            "http:// to a host that is not loopback",
        ),
    ];
    for (entry, needle) in cases {
        std::fs::write(
            &config,
            format!("[[webhooks]]\nevents = [\"*\"]\n{entry}\n"),
        )
        .unwrap();
        let out = factory_cli(data.path())
            .arg("--config")
            .arg(&config)
            .args(["run", "--auto-approve", "Export orders"])
            .env_remove("FACTORY_TEST_UNSET_SECRET")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!stderr.contains("0123456789abcdef0123"), "{stderr}");
    }
}
