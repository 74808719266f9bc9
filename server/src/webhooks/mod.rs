//! Signed webhooks: every event this process commits whose kind a `[[webhooks]]` entry asks for
//! is POSTed to it, signed with HMAC-SHA256, retried with backoff, and the outcome recorded
//! (`webhook_delivered`, `webhook_failed`, `webhook_dropped`) — never in the way of a run.
//!
//! One dispatcher follows the store's live stream and copies each wanted event into the queue
//! of each webhook that wants it (bounded: the oldest waiting event is dropped when full, and
//! that is recorded). One worker per webhook delivers its queue in order. Nothing here can
//! hold up an append: the stream never blocks its sender, and the queues never block the
//! dispatcher. The records of deliveries are never delivered themselves.
//!
//! Stopping is in two steps, because the last events of a run are committed just before the
//! process stops: [`Webhooks::finish`] stops taking events, lets the workers deliver what waits
//! for up to a grace period, then abandons the rest (recorded as failed or dropped).

mod deliver;
mod queue;
mod sign;

pub use deliver::{AttemptError, Outcome};
pub use sign::signature;

use std::sync::Arc;
use std::time::Duration;

use app::events::{Event, EventData};
use reqwest::Url;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, WebhookConfig};
use crate::store::{NewEvent, Store};
use deliver::Hook;
use queue::{Dropped, Next, Queue};

/// How long a stopping process keeps delivering what waits before it gives up on it.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Who the records of deliveries are attributed to.
const ACTOR: &str = "webhooks";

/// Drops are gathered this long into one `webhook_dropped` record.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Why webhook delivery could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A secret is missing or too short, or an entry is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[[webhooks]] `{name}`: url `{url}` is not a URL: {reason}")]
    Url {
        name: String,
        url: String,
        reason: String,
    },
    #[error("cannot build the webhooks' HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The running deliveries; [`Webhooks::finish`] stops them. Dropped without it, they stop at
/// once (what waits is recorded as dropped).
#[derive(Debug, Default)]
pub struct Webhooks {
    /// Cancelled to stop taking new events.
    intake: CancellationToken,
    /// Cancelled to stop delivering (after the grace period).
    abort: CancellationToken,
    dispatcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

/// A webhook's filter and its queue, as the dispatcher sees them.
struct Route {
    config: WebhookConfig,
    queue: Arc<Queue>,
}

impl Webhooks {
    /// Starts delivering to `configs` (checked already), with secrets from the environment.
    /// Subscribes now: every event committed after this returns is considered.
    pub fn start(configs: &[WebhookConfig], store: &Store) -> Result<Webhooks, WebhookError> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Webhooks::start_with(configs, store, from_env)
    }

    /// [`Webhooks::start`] with secrets named by `secret_env` read through `lookup`.
    pub fn start_with(
        configs: &[WebhookConfig],
        store: &Store,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Webhooks, WebhookError> {
        let mut webhooks = Webhooks::default();
        if configs.is_empty() {
            return Ok(webhooks);
        }
        let client = reqwest::Client::builder()
            // A redirect could carry a signed event somewhere else (or down to http).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Factory-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WebhookError::Client)?;
        let mut routes = Vec::with_capacity(configs.len());
        for config in configs {
            let secret = config.secret(&lookup)?;
            let url = Url::parse(&config.url).map_err(|e| WebhookError::Url {
                name: config.label(),
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
            if url.scheme() == "http" && config.allow_http {
                tracing::warn!(webhook = %config.label(), "webhook over plain http (allow_http): events are signed but readable on the way");
            }
            let hook = Hook::new(config, url, secret, client.clone());
            let queue = Arc::new(Queue::new(config.queue_size));
            webhooks.workers.push(tokio::spawn(work(
                hook,
                queue.clone(),
                store.clone(),
                webhooks.abort.clone(),
            )));
            routes.push(Route {
                config: config.clone(),
                queue,
            });
        }
        let names: Vec<String> = configs.iter().map(WebhookConfig::label).collect();
        tracing::info!(webhooks = %names.join(", "), "delivering events to webhooks");
        webhooks.dispatcher = Some(tokio::spawn(dispatch(
            store.subscribe(),
            routes,
            webhooks.intake.clone(),
        )));
        Ok(webhooks)
    }

    /// Stops taking events (those committed so far are still queued), waits up to `grace` for
    /// the queues to be delivered, then abandons the rest: an interrupted delivery is recorded
    /// as `webhook_failed`, what still waited as `webhook_dropped` (`shutdown`).
    pub async fn finish(mut self, grace: Duration) {
        self.intake.cancel();
        if let Some(dispatcher) = self.dispatcher.take() {
            report_exit("dispatcher", dispatcher.await);
        }
        let workers = futures::future::join_all(std::mem::take(&mut self.workers));
        tokio::pin!(workers);
        if tokio::time::timeout(grace, &mut workers).await.is_err() {
            tracing::warn!(
                ?grace,
                "webhook deliveries still pending at shutdown: abandoning them (recorded)"
            );
            self.abort.cancel();
            for exit in workers.await {
                report_exit("worker", exit);
            }
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.intake.cancel();
        self.abort.cancel();
    }
}

/// Logs a task that ended by panicking (their normal end says nothing).
fn report_exit(task: &str, exit: Result<(), tokio::task::JoinError>) {
    if let Err(e) = exit {
        tracing::error!(task, error = %e, "a webhook task ended abnormally");
    }
}

/// Copies each committed event into the queues of the webhooks that want it, until `intake`
/// is cancelled; then takes what was committed before that, and closes the queues.
async fn dispatch(
    mut events: broadcast::Receiver<Arc<Event>>,
    routes: Vec<Route>,
    intake: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            () = intake.cancelled() => break,
            received = events.recv() => match received {
                Ok(event) => route(&routes, event),
                Err(RecvError::Lagged(missed)) => lagged(&routes, missed),
                Err(RecvError::Closed) => break,
            },
        }
    }
    loop {
        match events.try_recv() {
            Ok(event) => route(&routes, event),
            Err(TryRecvError::Lagged(missed)) => lagged(&routes, missed),
            Err(_) => break,
        }
    }
    for r in &routes {
        r.queue.close();
    }
}

fn route(routes: &[Route], event: Arc<Event>) {
    let kind = event.data.kind();
    for r in routes.iter().filter(|r| r.config.wants(kind)) {
        r.queue.push(event.clone());
    }
}

/// Events the stream no longer held when the dispatcher got to them: which kinds they were
/// is unknown, so every webhook is told.
fn lagged(routes: &[Route], missed: u64) {
    tracing::warn!(missed, "webhooks fell behind the event stream");
    for r in routes {
        r.queue.lagged(missed);
    }
}

/// One webhook's worker: delivers its queue in order and records each outcome, until the
/// queue is closed and empty or `abort` is cancelled; beside it, drops are recorded as they
/// happen (a delivery in progress can take long).
async fn work(hook: Hook, queue: Arc<Queue>, store: Store, abort: CancellationToken) {
    let done = CancellationToken::new();
    let deliveries = async {
        deliver_queue(&hook, &queue, &store, &abort).await;
        done.cancel();
    };
    tokio::join!(deliveries, report_drops(&hook.name, &queue, &store, &done));
}

async fn deliver_queue(hook: &Hook, queue: &Queue, store: &Store, abort: &CancellationToken) {
    loop {
        let next = tokio::select! {
            next = queue.next() => next,
            () = abort.cancelled() => Next::Closed,
        };
        let event = match next {
            Next::Event(event) if !abort.is_cancelled() => event,
            Next::Event(event) => return queue.abandon(Some(event.seq)),
            Next::Closed if abort.is_cancelled() => return queue.abandon(None),
            Next::Closed => return,
        };
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let outcome = hook.deliver(&event, &delivery_id, abort).await;
        record_outcome(store, &hook.name, &event, delivery_id, outcome).await;
    }
}

/// Records what the queue dropped, at most once per [`DROP_REPORT_EVERY`] (a full queue drops
/// an event for every one committed), until `done`; then once more.
async fn report_drops(webhook: &str, queue: &Queue, store: &Store, done: &CancellationToken) {
    loop {
        let finished = tokio::select! {
            () = queue.dropped() => false,
            () = done.cancelled() => true,
        };
        for dropped in queue.take_dropped() {
            record_dropped(store, webhook, dropped).await;
        }
        if finished {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(DROP_REPORT_EVERY) => {}
            () = done.cancelled() => {}
        }
    }
}

async fn record_outcome(
    store: &Store,
    webhook: &str,
    event: &Event,
    delivery_id: String,
    outcome: Outcome,
) {
    let (webhook, event_kind, run_id) = (
        webhook.to_string(),
        event.data.kind().to_string(),
        event.run_id.clone(),
    );
    let data = match outcome {
        Outcome::Delivered {
            attempts,
            status,
            duration_ms,
        } => EventData::WebhookDelivered {
            webhook,
            delivery_id,
            event_seq: event.seq,
            event_kind,
            run_id,
            attempts,
            status,
            duration_ms,
        },
        Outcome::Failed {
            attempts,
            status,
            error,
        } => {
            tracing::warn!(%webhook, seq = event.seq, kind = %event_kind, attempts, %error, "webhook delivery failed");
            EventData::WebhookFailed {
                webhook,
                delivery_id,
                event_seq: event.seq,
                event_kind,
                run_id,
                attempts,
                status,
                error,
            }
        }
    };
    record(store, data).await;
}

async fn record_dropped(store: &Store, webhook: &str, dropped: Dropped) {
    tracing::warn!(
        webhook,
        count = dropped.count,
        reason = dropped.reason.as_str(),
        "webhook events dropped"
    );
    record(
        store,
        EventData::WebhookDropped {
            webhook: webhook.to_string(),
            reason: dropped.reason,
            count: dropped.count,
            first_seq: dropped.first_seq,
            last_seq: dropped.last_seq,
        },
    )
    .await;
}

/// Appends a record; a failure is logged, never passed on (it must not touch a run).
async fn record(store: &Store, data: EventData) {
    let kind = data.kind();
    if let Err(e) = store.append(NewEvent::new(ACTOR, data)).await {
        tracing::warn!(kind, error = %e, "could not record a webhook outcome");
    }
}

#[cfg(test)]
mod tests;
