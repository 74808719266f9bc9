//! Stopping: events committed before the stop are still taken, and what the grace period
//! leaves undelivered is recorded, never lost silently.

use super::*;
use app::events::WebhookDrop;

/// A receiver on loopback that answers nothing for a minute.
async fn hanging_receiver() -> String {
    let hang = || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        axum::http::StatusCode::NO_CONTENT
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(hang));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/hook")
}

fn payload(event: &Event) -> serde_json::Value {
    serde_json::to_value(&event.data).unwrap()["payload"].clone()
}

#[tokio::test]
async fn finishing_records_the_interrupted_delivery_and_what_still_waited() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let url = hanging_receiver().await;
    let mut config = WebhookConfig::new(&url, &["session_started"], "0123456789abcdef");
    config.name = Some("slow".into());
    config.timeout_secs = 60;
    let webhooks = Webhooks::start(&[config], &store).unwrap();
    let sessions = (0..3).map(|i| {
        let token_id = format!("t{i}");
        NewEvent::new("test", EventData::SessionStarted { token_id })
    });
    let committed = store.append_batch(sessions.collect()).await.unwrap();

    let started = tokio::time::Instant::now();
    webhooks.finish(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let log = store.events_after(0, 100).await.unwrap();
    let of = |kind: &str| -> Vec<serde_json::Value> {
        log.iter()
            .filter(|e| e.data.kind() == kind)
            .map(payload)
            .collect()
    };
    let failed = of("webhook_failed");
    assert_eq!(failed.len(), 1, "{log:?}");
    assert_eq!(failed[0]["event_seq"], committed[0].seq);
    assert_eq!(failed[0]["attempts"], 1);
    assert!(failed[0]["status"].is_null());
    assert!(
        failed[0]["error"].as_str().unwrap().contains("stopped"),
        "{failed:?}"
    );
    let dropped = of("webhook_dropped");
    assert_eq!(dropped.len(), 1, "{log:?}");
    assert_eq!(dropped[0]["reason"], WebhookDrop::Shutdown.as_str());
    assert_eq!(dropped[0]["count"], 2);
    assert_eq!(dropped[0]["first_seq"], committed[1].seq);
    assert_eq!(dropped[0]["last_seq"], committed[2].seq);
    assert!(of("webhook_delivered").is_empty());
}

#[tokio::test]
async fn without_webhooks_nothing_runs_and_finishing_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let webhooks = Webhooks::start(&[], &store).unwrap();
    assert!(webhooks.dispatcher.is_none() && webhooks.workers.is_empty());
    webhooks.finish(Duration::ZERO).await;
}
