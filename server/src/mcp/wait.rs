//! Waiting for a run on a tool call (`wait: true`): until it finishes or waits for a person, a
//! timeout passes or the caller gives up, reporting each step as an MCP progress notification
//! when the request carried a `progressToken`. Subscribed to the store's broadcast before the
//! tool acts, so nothing the action causes is missed; a lagging receiver re-reads the run.

use std::sync::Arc;
use std::time::Duration;

use app::dto::RunStatus;
use app::events::{Event, EventData};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use serde::Serialize;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::ToolError;
use super::{WAIT_DEFAULT_SECS, WAIT_MAX_SECS};
use crate::store::Store;

/// How often a quiet wait still reports, so clients that reset their timeout on progress
/// (and people watching) know the run is alive.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Settled {
    /// Succeeded, failed or was canceled.
    Finished,
    /// A person must decide an approval (see `pending_approvals`).
    WaitingForHuman,
    /// `timeout_secs` passed with the run still working.
    TimedOut,
    /// The caller cancelled the request, or the server is stopping.
    Interrupted,
}

/// Where progress goes: the request's progress token, on its peer.
pub(super) struct Progress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
    /// Notifications sent; the progress value (it must grow with each one).
    sent: u32,
}

impl Progress {
    /// The request's progress token, if it sent one.
    pub(super) fn of(context: &RequestContext<RoleServer>) -> Option<Progress> {
        Some(Progress {
            peer: context.peer.clone(),
            token: context.meta.get_progress_token()?,
            sent: 0,
        })
    }

    async fn send(&mut self, message: String) {
        self.sent += 1;
        let note = ProgressNotificationParam::new(self.token.clone(), f64::from(self.sent))
            .with_message(message);
        if let Err(e) = self.peer.notify_progress(note).await {
            tracing::debug!(error = %e, "MCP progress notification not delivered");
        }
    }
}

/// The wait asked for: `timeout_secs` (1–[`WAIT_MAX_SECS`]) or [`WAIT_DEFAULT_SECS`].
pub(super) fn timeout(timeout_secs: Option<u64>) -> Result<Duration, ToolError> {
    match timeout_secs.unwrap_or(WAIT_DEFAULT_SECS) {
        secs @ 1..=WAIT_MAX_SECS => Ok(Duration::from_secs(secs)),
        other => Err(ToolError::BadInput(format!(
            "`timeout_secs` is {other}; give 1 to {WAIT_MAX_SECS} seconds (default \
             {WAIT_DEFAULT_SECS})"
        ))),
    }
}

/// The store's broadcast, subscribed before a tool acts so a wait misses nothing it causes.
pub(super) struct Watch {
    events: broadcast::Receiver<Arc<Event>>,
    /// The last event committed before: what a wait has no news of.
    since: i64,
}

impl Watch {
    pub(super) fn start(store: &Store) -> Watch {
        let events = store.subscribe();
        Watch {
            since: store.head(),
            events,
        }
    }
}

/// What a wait watches and for how long.
pub(super) struct Wait {
    pub watch: Watch,
    pub timeout: Duration,
    pub progress: Option<Progress>,
    /// The request's cancellation and the server's shutdown.
    pub cancel: [CancellationToken; 2],
}

/// Waits until `run_id` finishes or waits for a person (at once, when it already does),
/// reporting its events as progress, each once and in order.
pub(super) async fn until_settled(
    store: &Store,
    run_id: &str,
    wait: Wait,
) -> Result<Settled, ToolError> {
    let Wait {
        watch: Watch { mut events, since },
        timeout,
        progress,
        cancel: [request, shutdown],
    } = wait;
    let mut news = News {
        run_id,
        progress,
        reported: since,
    };
    let deadline = Instant::now() + timeout;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    // Whether the run may have changed since it was last read: at first, after news of it,
    // after missed events, and now and then.
    let mut check = true;
    loop {
        // Everything already broadcast, then the run as the store has it.
        loop {
            match events.try_recv() {
                Ok(event) => check |= news.report(&event).await,
                Err(TryRecvError::Lagged(_)) => check = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return Ok(Settled::Interrupted),
            }
        }
        if std::mem::take(&mut check)
            && let Some(settled) = settled(store, run_id).await?
        {
            // A run's state is committed before its events are broadcast: the last of them
            // (and any a lagging receiver dropped) are read from the store.
            for event in store.run_events(run_id, news.reported, 1000).await? {
                news.report(&event).await;
            }
            return Ok(settled);
        }
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => check = news.report(&event).await,
                Err(RecvError::Lagged(_)) => check = true,
                Err(RecvError::Closed) => return Ok(Settled::Interrupted),
            },
            () = tokio::time::sleep_until(deadline) => return Ok(Settled::TimedOut),
            () = request.cancelled() => return Ok(Settled::Interrupted),
            () = shutdown.cancelled() => return Ok(Settled::Interrupted),
            _ = heartbeat.tick() => {
                news.heartbeat(store).await?;
                check = true;
            }
        }
    }
}

/// The run's events reported so far.
struct News<'a> {
    run_id: &'a str,
    progress: Option<Progress>,
    /// The last event reported (or known before the wait began).
    reported: i64,
}

impl News<'_> {
    /// Reports `event` if it is news of the run; true when it was.
    async fn report(&mut self, event: &Event) -> bool {
        if event.run_id.as_deref() != Some(self.run_id) || event.seq <= self.reported {
            return false;
        }
        self.reported = event.seq;
        if let (Some(progress), Some(message)) = (&mut self.progress, describe(&event.data)) {
            progress.send(message).await;
        }
        true
    }

    /// Tells a quiet wait's client the run is alive.
    async fn heartbeat(&mut self, store: &Store) -> Result<(), ToolError> {
        if let Some(progress) = &mut self.progress {
            let status = store.get_run(self.run_id).await?.map(|r| r.status);
            let shown = status.map_or("gone", RunStatus::as_str);
            progress
                .send(format!("run {} is still {shown}", self.run_id))
                .await;
        }
        Ok(())
    }
}

/// Whether the run has settled: finished, or waiting for a person (a decision turns it back
/// to running in the same commit, so a run just decided does not count as waiting).
async fn settled(store: &Store, run_id: &str) -> Result<Option<Settled>, ToolError> {
    Ok(match store.get_run(run_id).await?.map(|r| r.status) {
        Some(status) if status.is_terminal() => Some(Settled::Finished),
        Some(RunStatus::WaitingForHuman) => Some(Settled::WaitingForHuman),
        Some(_) => None,
        None => Some(Settled::Finished),
    })
}

/// A progress message for the events a person following a run cares about.
fn describe(data: &EventData) -> Option<String> {
    Some(match data {
        EventData::RunStarted {
            pipeline, stages, ..
        } => format!(
            "run started: pipeline `{pipeline}`, {} stages",
            stages.len()
        ),
        EventData::StageStarted {
            index, stage, team, ..
        } => format!("stage {} `{stage}` ({team}) started", index + 1),
        EventData::StageCompleted { stage, status, .. } => {
            format!("stage `{stage}`: {}", status.as_str())
        }
        EventData::StageAttemptFailed {
            stage,
            attempt,
            error,
            ..
        } => format!("stage `{stage}` attempt {attempt} failed: {error}"),
        EventData::StageSkipped { stage, .. } => format!("stage `{stage}` skipped"),
        EventData::WorkOrderDelivered { title, branch, .. } => {
            format!("work order `{title}` delivered on {branch}")
        }
        EventData::ClarificationRequested {
            asking_team,
            target_team,
            question,
            ..
        } => format!("{asking_team} asks {target_team}: {question}"),
        EventData::ApprovalRequested { kind, question, .. } => {
            format!(
                "waiting for a person ({} approval): {question}",
                kind.as_str()
            )
        }
        EventData::ApprovalDecided {
            kind,
            option,
            automatic,
            ..
        } => format!(
            "{} approval decided{}: {option}",
            kind.as_str(),
            if *automatic { " automatically" } else { "" }
        ),
        EventData::RunRevised { revision, .. } => format!("revision {revision} started"),
        EventData::RunFinished { status, reason, .. } => format!("run {status}: {reason}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_bounded_and_a_bad_one_says_what_is_accepted() {
        assert_eq!(
            timeout(None).unwrap(),
            Duration::from_secs(WAIT_DEFAULT_SECS)
        );
        assert_eq!(timeout(Some(1)).unwrap(), Duration::from_secs(1));
        assert_eq!(
            timeout(Some(WAIT_MAX_SECS)).unwrap(),
            Duration::from_secs(WAIT_MAX_SECS)
        );
        for bad in [0, WAIT_MAX_SECS + 1] {
            let message = timeout(Some(bad)).unwrap_err().to_string();
            assert!(
                message.contains(&format!("is {bad}")) && message.contains("1 to 1800"),
                "{message}"
            );
        }
    }
}
