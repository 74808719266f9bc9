//! One webhook's waiting events: bounded, never blocking the side that adds (the oldest waiting
//! event makes room), and counting what it had to drop so the worker can record it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use app::events::{Event, WebhookDrop};
use tokio::sync::Notify;

/// Events dropped for one reason, gathered until the worker records them.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub reason: WebhookDrop,
    pub count: u64,
    /// The range of their sequence numbers, when known (a lag says only how many).
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

/// What the worker gets next.
#[derive(Debug)]
pub enum Next {
    /// An event to deliver.
    Event(Arc<Event>),
    /// No more will come.
    Closed,
}

/// A bounded queue with one consumer (the webhook's worker).
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    /// Wakes the worker; a wake-up with nobody waiting is kept for the next wait.
    ready: Notify,
    /// Wakes the reporter of drops, the same way.
    dropped: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Arc<Event>>,
    dropped: Vec<Dropped>,
    closed: bool,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            ready: Notify::new(),
            dropped: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an event; when full, the oldest waiting one is dropped (and counted) instead of
    /// waiting, so the caller is never held up.
    pub fn push(&self, event: Arc<Event>) {
        let mut state = self.lock();
        if state.items.len() >= self.capacity
            && let Some(oldest) = state.items.pop_front()
        {
            state.note(WebhookDrop::QueueFull, 1, Some(oldest.seq));
            self.dropped.notify_one();
        }
        state.items.push_back(event);
        drop(state);
        self.ready.notify_one();
    }

    /// Counts `count` events that never reached the queue (the process fell behind the log).
    pub fn lagged(&self, count: u64) {
        self.lock().note(WebhookDrop::Lagged, count, None);
        self.dropped.notify_one();
    }

    /// No more events will be added; the worker finishes what is waiting.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Drops everything still waiting (the process is stopping), counted as `shutdown`, with
    /// `taken`, the sequence number of an event the worker took but will not attempt.
    pub fn abandon(&self, taken: Option<i64>) {
        let mut state = self.lock();
        let items = std::mem::take(&mut state.items);
        let seqs = taken.into_iter().chain(items.iter().map(|e| e.seq));
        for seq in seqs.collect::<Vec<_>>() {
            state.note(WebhookDrop::Shutdown, 1, Some(seq));
        }
        state.closed = true;
        drop(state);
        self.dropped.notify_one();
    }

    /// Waits until something was dropped since the last wait.
    pub async fn dropped(&self) {
        self.dropped.notified().await;
    }

    /// Drops recorded since the last call.
    pub fn take_dropped(&self) -> Vec<Dropped> {
        std::mem::take(&mut self.lock().dropped)
    }

    /// The next event, waiting for one; [`Next::Closed`] once closed and empty.
    pub async fn next(&self) -> Next {
        loop {
            {
                let mut state = self.lock();
                if let Some(event) = state.items.pop_front() {
                    return Next::Event(event);
                }
                if state.closed {
                    return Next::Closed;
                }
            }
            self.ready.notified().await;
        }
    }
}

impl State {
    /// Adds to the newest tally when it has the same reason, else starts one.
    fn note(&mut self, reason: WebhookDrop, count: u64, seq: Option<i64>) {
        match self.dropped.last_mut() {
            Some(last) if last.reason == reason => {
                last.count += count;
                last.first_seq = last.first_seq.or(seq);
                last.last_seq = seq.or(last.last_seq);
            }
            _ => self.dropped.push(Dropped {
                reason,
                count,
                first_seq: seq,
                last_seq: seq,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::events::EventData;

    fn event(seq: i64) -> Arc<Event> {
        Arc::new(Event {
            seq,
            run_id: None,
            ts: "2026-01-01T00:00:00.000Z".into(),
            actor: "test".into(),
            data: EventData::SessionStarted {
                token_id: "t".into(),
            },
            hash: String::new(),
        })
    }

    async fn seq(queue: &Queue) -> Option<i64> {
        match queue.next().await {
            Next::Event(e) => Some(e.seq),
            Next::Closed => None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_and_counts_them() {
        let queue = Queue::new(2);
        for s in 1..=5 {
            queue.push(event(s));
        }
        assert_eq!(
            queue.take_dropped(),
            [Dropped {
                reason: WebhookDrop::QueueFull,
                count: 3,
                first_seq: Some(1),
                last_seq: Some(3),
            }]
        );
        assert!(
            queue.take_dropped().is_empty(),
            "each drop is reported once"
        );
        queue.close();
        assert_eq!(seq(&queue).await, Some(4));
        assert_eq!(seq(&queue).await, Some(5));
        assert_eq!(seq(&queue).await, None);
    }

    #[tokio::test]
    async fn abandoning_counts_what_waited_as_shutdown() {
        let queue = Queue::new(10);
        queue.lagged(7);
        queue.push(event(8));
        queue.push(event(9));
        queue.abandon(Some(7));
        let dropped = queue.take_dropped();
        assert_eq!(dropped.len(), 2);
        assert_eq!(
            (dropped[0].reason, dropped[0].count),
            (WebhookDrop::Lagged, 7)
        );
        assert_eq!(
            dropped[1],
            Dropped {
                reason: WebhookDrop::Shutdown,
                count: 3,
                first_seq: Some(7),
                last_seq: Some(9),
            }
        );
        assert_eq!(seq(&queue).await, None);
    }

    #[tokio::test]
    async fn the_worker_wakes_for_an_event_added_while_it_waits() {
        let queue = Arc::new(Queue::new(4));
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { seq(&queue).await }
        });
        tokio::task::yield_now().await;
        queue.push(event(42));
        assert_eq!(waiting.await.unwrap(), Some(42));
    }
}
