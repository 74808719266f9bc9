//! Appending: one writer connection; each append (or batch) holds its new events and the
//! projection updates they cause, fsync'd before `Ok` is returned. Concurrent appends share a
//! commit (group commit, see [`Store::write`]).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use app::events::{Event, EventData};
use futures::future::BoxFuture;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{OwnedMutexGuard, oneshot};

use super::batch::Tx;
use super::seal::{Sealed, insert_and_apply, seal};
use super::writer::{Head, Known, RunRow, Writer};
use super::{Store, StoreError};

/// An event to append; the store assigns sequence number, time and hash.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub run_id: Option<String>,
    pub actor: String,
    pub data: EventData,
}

impl NewEvent {
    /// An event attributed to `actor`, tied to a run when the data names one.
    pub fn new(actor: impl Into<String>, data: EventData) -> NewEvent {
        let run_id = data.run_id().map(str::to_string);
        NewEvent {
            run_id,
            actor: actor.into(),
            data,
        }
    }
}

/// Work done inside a write transaction: reads what it needs, then returns a value and the
/// events to append. It may also write non-projection tables (auth) on the same connection.
pub type WriteFn<T> = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> BoxFuture<'c, Result<(T, Vec<NewEvent>), StoreError>>
        + Send,
>;

impl Store {
    /// Appends one event durably and returns it as committed.
    pub async fn append(&self, event: NewEvent) -> Result<Event, StoreError> {
        let mut events = self.append_batch(vec![event]).await?;
        Ok(events.remove(0))
    }

    /// Appends many events in one transaction: all or none.
    pub async fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let ((), committed) = self
            .write(Box::new(move |_conn| {
                Box::pin(async move { Ok(((), events)) })
            }))
            .await?;
        Ok(committed)
    }

    /// Appends `events` only while run `run_id` exists and has not finished, all or none;
    /// `None` when it has finished. The run's state is read with the transaction's first
    /// statement, so an engine's commit costs two round trips to SQLite: that read, then the
    /// events, their projections and the `COMMIT`.
    pub async fn append_if_active(
        &self,
        run_id: &str,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<Event>>, StoreError> {
        let (value, events) = self
            .submit(Work::IfActive {
                run_id: run_id.to_string(),
                events,
            })
            .await?;
        let active = value
            .downcast::<bool>()
            .map_err(|_| StoreError::Abandoned)?;
        Ok(active.then_some(events))
    }

    /// [`Store::append_if_active`] in two steps, for a caller with work to do meanwhile: the
    /// returned [`Staged`] holds the events as they will be committed (`None`: the run has
    /// finished) once they are written inside the transaction, before its `COMMIT`; its
    /// [`Staged::durable`] says when the `COMMIT` (the fsync) is done. Until then nothing
    /// may rely on the events being stored: subscribers receive them only after it, and a
    /// failed `COMMIT` stores none of them.
    pub async fn append_if_active_staged(
        &self,
        run_id: &str,
        events: Vec<NewEvent>,
    ) -> Result<Staged, StoreError> {
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        let (accepted, written) = oneshot::channel();
        self.pending_writes().push_back(Queued {
            work: Work::IfActive {
                run_id: run_id.to_string(),
                events,
            },
            reply,
            accepted: Some(accepted),
        });
        // Committed in a task of its own: this caller returns before the COMMIT.
        let store = self.clone();
        tokio::spawn(async move {
            let writer = store.writer.clone().lock_owned().await;
            store.commit_queued(writer).await;
        });
        let durable = Durable { answer, started };
        match written.await {
            Ok(events) => Ok(Staged { events, durable }),
            // Not written: the write failed before its COMMIT, and the answer says why.
            Err(_) => {
                durable.wait().await?;
                Err(StoreError::Abandoned)
            }
        }
    }

    /// Runs `work` in a write transaction (`BEGIN IMMEDIATE`), appends the events it returns
    /// with their projection updates, commits (fsync), then publishes them to subscribers.
    /// On any error nothing of this write is stored.
    ///
    /// Group commit: writes that arrive while another commit is in progress queue up, and the
    /// next writer to take the connection runs them all (at most [`MAX_GROUP`]) in one
    /// transaction, each inside its own savepoint, so one fsync serves many callers. Every
    /// caller still returns only after the commit holding its write is durable, and a write that
    /// fails is rolled back to its savepoint without touching the others. A group holding
    /// others' writes runs in its own task, so a caller that goes away (a closed HTTP request)
    /// cannot abandon them; a write found alone is committed in place, with no savepoint.
    pub async fn write<T: Send + 'static>(
        &self,
        work: WriteFn<T>,
    ) -> Result<(T, Vec<Event>), StoreError> {
        let work: QueuedFn = Box::new(move |conn| {
            Box::pin(async move {
                let (value, events) = work(conn).await?;
                Ok((Box::new(value) as Box<dyn Any + Send>, events))
            })
        });
        let (value, events) = self.submit(Work::Fn(work)).await?;
        let value = value.downcast::<T>().map_err(|_| StoreError::Abandoned)?;
        Ok((*value, events))
    }

    /// Queues `work` for the next group commit and waits for the commit holding it.
    async fn submit(&self, work: Work) -> Result<Written, StoreError> {
        let started = std::time::Instant::now();
        let (reply, mut answer) = oneshot::channel();
        self.pending_writes().push_back(Queued {
            work,
            reply,
            accepted: None,
        });
        let writer = self.writer.clone().lock_owned().await;
        let outcome = match answer.try_recv() {
            // Already committed by an earlier group.
            Ok(outcome) => {
                drop(writer);
                outcome
            }
            Err(_) => {
                let alone = {
                    let mut queue = self.pending_writes();
                    if queue.len() == 1 {
                        queue.pop_front()
                    } else {
                        None
                    }
                };
                match alone {
                    // Only this write is waiting: commit it here, as without group commit.
                    Some(queued) => {
                        let mut writer = writer;
                        self.commit_group(&mut writer, vec![queued]).await;
                    }
                    // Others' writes too: commit everything queued in a task of its own.
                    None => {
                        let store = self.clone();
                        let _ =
                            tokio::spawn(async move { store.commit_queued(writer).await }).await;
                    }
                }
                answer.await.map_err(|_| StoreError::Abandoned)?
            }
        };
        let (value, events) = outcome?;
        if !events.is_empty() {
            crate::telemetry::metrics::METRICS
                .event_append_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        Ok((value, events))
    }

    fn pending_writes(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits queued writes, a group at a time, until none is left.
    async fn commit_queued(&self, mut writer: OwnedMutexGuard<Writer>) {
        loop {
            let group: Vec<Queued> = {
                let mut queue = self.pending_writes();
                let n = queue.len().min(MAX_GROUP);
                queue.drain(..n).collect()
            };
            if group.is_empty() {
                return;
            }
            self.commit_group(&mut writer, group).await;
        }
    }

    /// One transaction for a group of writes; answers every caller.
    async fn commit_group(&self, writer: &mut Writer, group: Vec<Queued>) {
        let mut works = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut accepted = Vec::with_capacity(group.len());
        for q in group {
            works.push(q.work);
            replies.push(q.reply);
            accepted.push(q.accepted);
        }
        let outcomes = match run_group(writer, works, &mut accepted).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // Nothing of the group is stored: every caller learns why.
                let reason = err.to_string();
                let mut err = Some(err);
                for reply in replies {
                    let e = err
                        .take()
                        .unwrap_or_else(|| StoreError::GroupFailed(reason.clone()));
                    let _ = reply.send(Err(e));
                }
                return;
            }
        };
        // Published while still holding the writer, so subscribers see sequence order.
        let publish = self.committed.receiver_count() > 0;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let outcome = outcome.map(|(value, sealed)| {
                let events: Vec<Event> = sealed.into_iter().map(|s| s.event).collect();
                if let Some(last) = events.last() {
                    self.head
                        .fetch_max(last.seq, std::sync::atomic::Ordering::AcqRel);
                }
                if publish {
                    for event in &events {
                        let _ = self.committed.send(Arc::new(event.clone()));
                    }
                }
                (value, events)
            });
            let _ = reply.send(outcome);
        }
    }
}

/// Runs a group's writes in one transaction and commits it: one outcome per write, in order.
/// `Err` when the transaction itself failed and nothing was stored.
///
/// A write alone that concerns one run reads the run's row with the transaction's first
/// statement (the engine's commits; in a group, each reads its own). When the writer's last
/// commit was that run's events alone, the head and the row are known already, and the write
/// costs one round trip: the `BEGIN`, the rows and the `COMMIT` together. Should another
/// process have appended since, the first event's sequence number is taken, so the insert fails
/// before the `COMMIT`: nothing is stored, and the write begins again with the reads. The
/// projections change only with an appended event, so an unchanged head means an unchanged row.
///
/// `accepted`, one per write: told the write's events (or that its run has finished) once
/// they are written, before the `COMMIT`. After that a failure is final: the write is not
/// begun anew with other sequence numbers.
async fn run_group(
    writer: &mut Writer,
    mut works: Vec<Work>,
    accepted: &mut [Option<Accepted>],
) -> Result<Vec<Outcome>, StoreError> {
    let run = match works.as_slice() {
        [Work::IfActive { run_id, .. }] => Some(run_id.clone()),
        _ => None,
    };
    if let Some(known) = writer.take_known(run.as_deref())
        && let [Work::IfActive { run_id, events }] = works.as_slice()
    {
        let again = Work::IfActive {
            run_id: run_id.clone(),
            events: events.clone(),
        };
        writer.open = true;
        let mut tx = Tx::new(&mut writer.conn);
        tx.push("BEGIN IMMEDIATE");
        let staged = accepted.iter().any(Option::is_some);
        match in_transaction(&mut tx, known.head, Some(known.run), works, accepted).await {
            Ok(Ended::Committed(outcomes, known)) => {
                writer.open = false;
                writer.remember(known);
                return Ok(outcomes);
            }
            // The events were announced with these sequence numbers: no new attempt.
            Err(e) if staged && accepted.iter().all(Option::is_none) => {
                writer.rollback().await?;
                return Err(e);
            }
            // Whatever failed is found again, with its cause, by the write begun anew.
            Ok(Ended::Failed(_)) | Err(_) => {
                writer.rollback().await?;
                works = vec![again];
            }
        }
    }
    let (head, prefetched) = writer.begin(run.as_deref()).await?;
    match in_transaction(
        &mut Tx::new(&mut writer.conn),
        head,
        prefetched,
        works,
        accepted,
    )
    .await
    {
        Ok(Ended::Committed(outcomes, known)) => {
            writer.open = false;
            writer.remember(known);
            Ok(outcomes)
        }
        Ok(Ended::Failed(outcomes)) => {
            writer.rollback().await?;
            Ok(outcomes)
        }
        Err(e) => {
            if let Err(rollback) = writer.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed write failed too");
            }
            Err(e)
        }
    }
}

/// How a write of a group ended: its work's value and its events, or why it failed.
type Outcome = Result<WrittenSealed, StoreError>;

/// How a group's transaction ended.
enum Ended {
    /// With what it left of a run, when it was that run's events alone.
    Committed(Vec<Outcome>, Option<Known>),
    /// A write alone failed: its error, and the transaction to roll back.
    Failed(Vec<Outcome>),
}

async fn in_transaction(
    tx: &mut Tx<'_>,
    mut head: Head,
    mut prefetched: Option<RunRow>,
    works: Vec<Work>,
    accepted: &mut [Option<Accepted>],
) -> Result<Ended, StoreError> {
    // A write alone needs no savepoint: when it fails, the whole transaction is rolled back.
    let savepoints = works.len() > 1;
    let mut outcomes = Vec::with_capacity(works.len());
    let mut run_after = None;
    for work in works {
        let outcome = if savepoints {
            write_in_savepoint(tx, &head, work).await?
        } else {
            write_body(tx, &head, work, prefetched.take())
                .await
                .map(|(written, run)| {
                    run_after = run;
                    written
                })
        };
        if outcome.is_err() && !savepoints {
            tx.discard();
            return Ok(Ended::Failed(vec![outcome]));
        }
        if let Ok((_, sealed)) = &outcome
            && let Some(last) = sealed.last()
        {
            head = Head {
                seq: last.event.seq,
                hash: last.event.hash.clone(),
            };
        }
        outcomes.push(outcome);
    }
    if accepted.iter().any(Option::is_some) {
        // Written first, so the staged writes learn their events before the fsync.
        tx.flush().await?;
        announce(&outcomes, accepted);
    }
    // The gathered writes and the COMMIT in one round trip; a failing statement stops it
    // before the COMMIT.
    tx.flush_with("COMMIT").await?;
    let known = run_after.map(|run| Known { head, run });
    Ok(Ended::Committed(outcomes, known))
}

/// One write of a group inside its own savepoint, rolled back on error so the group goes on.
/// The outer `Err`: the savepoint itself failed, and with it the group.
async fn write_in_savepoint(
    tx: &mut Tx<'_>,
    head: &Head,
    work: Work,
) -> Result<Outcome, StoreError> {
    tx.push("SAVEPOINT member");
    tx.flush().await?;
    let written = match write_body(tx, head, work, None).await {
        // Its statements are sent now, so a failing one is this write's error alone.
        Ok((written, _)) => tx.flush().await.map(|()| written),
        Err(e) => Err(e),
    };
    match written {
        Ok(written) => {
            // Sent with the next write's statements or the COMMIT.
            tx.push("RELEASE member");
            Ok(Ok(written))
        }
        Err(e) => {
            tx.discard();
            tx.push("ROLLBACK TO member");
            tx.push("RELEASE member");
            tx.flush().await?;
            Ok(Err(e))
        }
    }
}

/// Most writes committed together in one transaction.
pub const MAX_GROUP: usize = 256;

/// Tells each staged write of a group its events as they will be committed (`None`: its run
/// has finished). A write that failed is told nothing; its answer says why.
fn announce(outcomes: &[Outcome], accepted: &mut [Option<Accepted>]) {
    for (outcome, accepted) in outcomes.iter().zip(accepted.iter_mut()) {
        let (Some(sender), Ok((value, sealed))) = (accepted.take(), outcome) else {
            continue;
        };
        let active = value.downcast_ref::<bool>().copied().unwrap_or(true);
        let events = active.then(|| sealed.iter().map(|s| s.event.clone()).collect());
        let _ = sender.send(events);
    }
}

/// A write waiting for its group, with its result type erased.
pub(super) struct Queued {
    work: Work,
    reply: oneshot::Sender<Result<Written, StoreError>>,
    /// A staged write's: told its events before the `COMMIT`.
    accepted: Option<Accepted>,
}

/// Where a staged write learns its events before the `COMMIT` (`None`: its run has finished).
type Accepted = oneshot::Sender<Option<Vec<Event>>>;

/// A staged append ([`Store::append_if_active_staged`]), written but not yet durable.
pub struct Staged {
    /// The events as they will be committed; `None` when the run has finished (nothing is
    /// written).
    pub events: Option<Vec<Event>>,
    pub durable: Durable,
}

/// The `COMMIT` of a staged append.
pub struct Durable {
    answer: oneshot::Receiver<Result<Written, StoreError>>,
    started: std::time::Instant,
}

impl Durable {
    /// Waits until the write is durable (`Ok`) or known not stored (`Err`).
    pub async fn wait(self) -> Result<(), StoreError> {
        let (_, events) = self.answer.await.map_err(|_| StoreError::Abandoned)??;
        if !events.is_empty() {
            crate::telemetry::metrics::METRICS
                .event_append_seconds
                .observe(self.started.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// What a write does inside its transaction.
enum Work {
    /// Work of the caller's: reads what it needs, returns a value and the events to append.
    Fn(QueuedFn),
    /// Events for a run, appended only while it is active ([`Store::append_if_active`]).
    IfActive {
        run_id: String,
        events: Vec<NewEvent>,
    },
}

/// A committed write: its work's value (type-erased) and its events as committed.
type Written = (Box<dyn Any + Send>, Vec<Event>);

/// A write done inside the group's transaction, before the commit.
type WrittenSealed = (Box<dyn Any + Send>, Vec<Sealed>);

type QueuedFn = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
        )
            -> BoxFuture<'c, Result<(Box<dyn Any + Send>, Vec<NewEvent>), StoreError>>
        + Send,
>;

/// One write: its work, then its events and their projection updates, gathered in `tx`.
/// `prefetched`: the run's row read as the transaction began, when this write concerns one.
/// With the write: the run's row as it leaves it, when it is one run's events and the row
/// is known whole.
async fn write_body(
    tx: &mut Tx<'_>,
    head: &Head,
    work: Work,
    prefetched: Option<RunRow>,
) -> Result<(WrittenSealed, Option<RunRow>), StoreError> {
    match work {
        Work::Fn(work) => {
            let (value, events) = work(tx.conn().await?).await?;
            let sealed = seal(head, events)?;
            insert_and_apply(tx, &sealed, None).await?;
            Ok(((value, sealed), None))
        }
        Work::IfActive { run_id, events } => {
            let prefetched = prefetched.filter(|p| p.id == run_id);
            let active = match &prefetched {
                Some(row) => row.active(),
                None => super::runs::is_active(tx.conn().await?, &run_id).await?,
            };
            if !active {
                return Ok(((Box::new(false), vec![]), None));
            }
            // Only its end makes a run inactive.
            let finishes = events.iter().any(
                |e| matches!(&e.data, EventData::RunFinished { run_id: r, .. } if *r == run_id),
            );
            let sealed = seal(head, events)?;
            let plans = insert_and_apply(tx, &sealed, prefetched.and_then(RunRow::plans)).await?;
            let after =
                plans
                    .into_iter()
                    .find(|(id, _, _)| *id == run_id)
                    .map(|(id, steps, artifacts)| RunRow {
                        id,
                        row: Some((!finishes, steps, artifacts)),
                    });
            Ok(((Box::new(true), sealed), after))
        }
    }
}
