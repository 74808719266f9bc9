//! Change notifications for resources, from the store's live broadcast (what `/ws` streams):
//! `resources/subscribe` (protocol versions before 2026-07-28: one watcher per connection
//! sends `notifications/resources/updated` for its subscribed URIs) and `subscriptions/listen`
//! (2026-07-28: the listen request's stream carries them). A run's URI changes with every
//! event of the run, its artifacts when a stage completes, a diff when its work order is
//! delivered or published.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use app::events::{Event, EventData, TokenScope};
use rmcp::model::{ResourceUpdatedNotificationParam, SubscriptionFilter};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, Peer, RoleServer};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::FactoryMcp;
use super::access::require;
use super::error::ToolError;
use super::resources::FactoryUri;

/// One connection's subscribed URIs, and whether its watcher runs.
#[derive(Clone, Default)]
pub(super) struct Subscriptions(Arc<Mutex<Watched>>);

#[derive(Default)]
struct Watched {
    uris: BTreeSet<String>,
    watching: bool,
}

impl Subscriptions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `uri`; true when the connection's watcher must be started.
    fn add(&self, uri: String) -> bool {
        let mut watched = self.lock();
        watched.uris.insert(uri);
        !std::mem::replace(&mut watched.watching, true)
    }

    pub(super) fn remove(&self, uri: &str) {
        self.lock().uris.remove(uri);
    }
}

/// The URIs of `requested` this server can watch (its own `factory://` resources).
pub(super) fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let uris: Vec<String> = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|uri| FactoryUri::parse(uri).is_ok())
        .cloned()
        .collect();
    let mut filter = SubscriptionFilter::new();
    if !uris.is_empty() {
        filter.resource_subscriptions = Some(uris);
    }
    filter
}

impl FactoryMcp {
    /// `resources/subscribe`: the URI must name a run the caller may see.
    pub(super) async fn subscribe_uri(
        &self,
        context: &RequestContext<RoleServer>,
        uri: String,
    ) -> Result<(), ToolError> {
        let caller = self.caller(context)?;
        require(&caller, TokenScope::Viewer, "resources/subscribe")?;
        let parsed = FactoryUri::parse(&uri)?;
        self.visible_run(&caller, parsed.run_id()).await?;
        if self.subscriptions.add(uri) {
            let events = self.services.store.subscribe();
            tokio::spawn(watch(
                Arc::downgrade(&self.subscriptions.0),
                events,
                context.peer.clone(),
                self.services.shutdown.clone(),
            ));
        }
        Ok(())
    }

    /// `subscriptions/listen`: notifies the accepted URIs until the client ends the request.
    pub(super) async fn listen_to(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let uris: Vec<String> = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let checked = async {
            let caller = self.caller(context.request_context())?;
            require(&caller, TokenScope::Viewer, "subscriptions/listen")?;
            for uri in &uris {
                self.visible_run(&caller, FactoryUri::parse(uri)?.run_id())
                    .await?;
            }
            Ok::<(), ToolError>(())
        };
        checked
            .await
            .map_err(|e| e.into_error_data("subscriptions/listen"))?;
        let mut events = self.services.store.subscribe();
        let shutdown = &self.services.shutdown;
        loop {
            let batch = tokio::select! {
                () = context.cancelled() => return Ok(()),
                batch = next_batch(&mut events, shutdown) => batch,
            };
            let Some(batch) = batch else {
                return Ok(());
            };
            for uri in affected(&uris, &batch) {
                if let Err(e) = context.sink().notify_resource_updated(uri).await {
                    tracing::debug!(error = %e, "MCP listen stream closed");
                    return Ok(());
                }
            }
        }
    }
}

/// A connection's watcher: runs while the connection's handler lives and its peer listens.
async fn watch(
    subscriptions: Weak<Mutex<Watched>>,
    mut events: broadcast::Receiver<Arc<Event>>,
    peer: Peer<RoleServer>,
    shutdown: CancellationToken,
) {
    while let Some(batch) = next_batch(&mut events, &shutdown).await {
        let Some(subscriptions) = subscriptions.upgrade() else {
            return;
        };
        let uris: Vec<String> = {
            let watched = subscriptions.lock().unwrap_or_else(|p| p.into_inner());
            watched.uris.iter().cloned().collect()
        };
        for uri in affected(&uris, &batch) {
            let note = ResourceUpdatedNotificationParam::new(uri);
            if let Err(e) = peer.notify_resource_updated(note).await {
                tracing::debug!(error = %e, "MCP subscriber gone");
                return;
            }
        }
    }
}

/// The next committed events (everything already broadcast with the first); `None` when the
/// store closes or the server stops. A receiver that fell behind gets an empty batch, which
/// notifies nothing: a lagging subscriber only misses notifications, never blocks the writer.
async fn next_batch(
    events: &mut broadcast::Receiver<Arc<Event>>,
    shutdown: &CancellationToken,
) -> Option<Vec<Arc<Event>>> {
    let first = tokio::select! {
        received = events.recv() => received,
        () = shutdown.cancelled() => return None,
    };
    let mut batch = match first {
        Ok(event) => vec![event],
        Err(RecvError::Lagged(missed)) => {
            tracing::debug!(missed, "MCP subscription fell behind");
            Vec::new()
        }
        Err(RecvError::Closed) => return None,
    };
    while let Ok(event) = events.try_recv() {
        batch.push(event);
    }
    Some(batch)
}

/// Which of `uris` the events changed, each once.
fn affected(uris: &[String], batch: &[Arc<Event>]) -> Vec<String> {
    uris.iter()
        .filter(|uri| {
            FactoryUri::parse(uri).is_ok_and(|parsed| batch.iter().any(|e| changes(&parsed, e)))
        })
        .cloned()
        .collect()
}

fn changes(uri: &FactoryUri, event: &Event) -> bool {
    if event.run_id.as_deref() != Some(uri.run_id()) {
        return false;
    }
    match (uri, &event.data) {
        (FactoryUri::Run(_), _) => true,
        (FactoryUri::Artifact { .. }, EventData::StageCompleted { .. }) => true,
        (
            FactoryUri::Diff { work_order_id, .. },
            EventData::WorkOrderDelivered {
                work_order_id: delivered,
                ..
            }
            | EventData::WorkOrderPublished {
                work_order_id: delivered,
                ..
            },
        ) => delivered == work_order_id,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(run_id: &str, data: EventData) -> Arc<Event> {
        Arc::new(Event {
            seq: 1,
            run_id: Some(run_id.into()),
            ts: String::new(),
            actor: "test".into(),
            data,
            hash: String::new(),
        })
    }

    fn published(run_id: &str, work_order_id: &str) -> Arc<Event> {
        event(
            run_id,
            EventData::WorkOrderPublished {
                run_id: run_id.into(),
                work_order_id: work_order_id.into(),
                branch: "b".into(),
                commit: "c".into(),
                pushed: true,
                pull_request: None,
                policy: "after_review".into(),
                error: None,
            },
        )
    }

    #[test]
    fn each_uri_changes_with_the_events_that_change_it() {
        let uris: Vec<String> = [
            "factory://runs/r1",
            "factory://runs/r1/artifacts/01-a/a.md",
            "factory://runs/r1/diffs/wo-1",
            "factory://runs/r1/diffs/wo-2",
            "factory://runs/r2",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            affected(&uris, &[published("r1", "wo-1")]),
            ["factory://runs/r1", "factory://runs/r1/diffs/wo-1"]
        );
        let skipped = event(
            "r1",
            EventData::StageSkipped {
                run_id: "r1".into(),
                index: 0,
                stage: "qa".into(),
                reason: "a person skipped it".into(),
            },
        );
        assert_eq!(affected(&uris, &[skipped]), ["factory://runs/r1"]);
        assert!(affected(&uris, &[published("r3", "wo-1")]).is_empty());
        assert!(affected(&uris, &[]).is_empty());
    }
}
