//! Streamed replies in progress, for the pages and the CLI that show them. Nothing here is
//! recorded: the stage's events say what the model answered once its reply is whole; this is
//! only how far it has got meanwhile.
//!
//! The engine asks for a [`Progress`] reporter per stage call. Each report updates the run's
//! entry (what a page rendered now shows) and is passed on to subscribers (the WebSocket hub,
//! `factory run`) at most once per `min_gap` per stage, plus the first and the last, so a fast
//! stream costs a few messages a second however many pieces it arrives in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::protocol::StageStream;
use tokio::sync::broadcast;

use crate::gateway::types::{Progress, StreamProgress};

/// Updates kept for a subscriber that reads slowly; one that falls further behind skips to
/// the newest (progress is only ever superseded).
const CHANNEL: usize = 256;

/// Shortest gap between two updates of one stage sent to subscribers.
pub const DEFAULT_MIN_GAP: Duration = Duration::from_millis(250);

/// Runs whose model is streaming now, and the channel their progress goes out on.
#[derive(Debug)]
pub struct LiveProgress {
    current: Mutex<HashMap<String, StageStream>>,
    tx: broadcast::Sender<StageStream>,
    min_gap: Duration,
}

impl Default for LiveProgress {
    fn default() -> Self {
        LiveProgress::new(DEFAULT_MIN_GAP)
    }
}

impl LiveProgress {
    pub fn new(min_gap: Duration) -> LiveProgress {
        LiveProgress {
            current: Mutex::new(HashMap::new()),
            tx: broadcast::channel(CHANNEL).0,
            min_gap,
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, HashMap<String, StageStream>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every update from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StageStream> {
        self.tx.subscribe()
    }

    /// What `run`'s model is streaming now, if anything.
    pub fn of_run(&self, run: &str) -> Option<StageStream> {
        self.current().get(run).cloned()
    }

    /// A reporter for one call of `run`'s `stage`: put it in the request's `progress`, and
    /// call [`LiveProgress::finish`] once the call has returned.
    pub fn reporter(self: &Arc<Self>, run: &str, stage: &str) -> Progress {
        let live = self.clone();
        let (run, stage) = (run.to_string(), stage.to_string());
        let last_sent = Mutex::new(None::<(Instant, String)>);
        Progress::new(move |p: StreamProgress| {
            let update = StageStream {
                run_id: run.clone(),
                stage: stage.clone(),
                model: p.model,
                output_tokens: p.output_tokens,
                done: false,
            };
            live.current().insert(run.clone(), update.clone());
            let mut last = last_sent.lock().unwrap_or_else(|p| p.into_inner());
            // The first report of each model tried is always sent; then one per gap.
            let due = match &*last {
                None => true,
                Some((at, model)) => *model != update.model || at.elapsed() >= live.min_gap,
            };
            if due {
                *last = Some((Instant::now(), update.model.clone()));
                // No subscriber is fine: nobody is watching.
                let _ = live.tx.send(update);
            }
        })
    }

    /// The call of `run`'s `stage` has returned: its entry goes, and subscribers are told the
    /// final count (when anything was streamed).
    pub fn finish(&self, run: &str, stage: &str) {
        let removed = {
            let mut current = self.current();
            match current.get(run) {
                Some(s) if s.stage == stage => current.remove(run),
                _ => None,
            }
        };
        if let Some(mut last) = removed {
            last.done = true;
            let _ = self.tx.send(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(model: &str, tokens: u32) -> StreamProgress {
        StreamProgress {
            model: model.into(),
            output_tokens: tokens,
        }
    }

    #[test]
    fn reports_are_kept_per_run_and_sent_at_most_once_per_gap() {
        let live = Arc::new(LiveProgress::new(Duration::from_secs(3600)));
        let mut rx = live.subscribe();
        let report = live.reporter("r1", "plan");
        for tokens in 1..=50 {
            report.report(piece("p0:m", tokens));
        }
        // The newest count is what a page rendered now shows…
        assert_eq!(live.of_run("r1").unwrap().output_tokens, 50);
        // …but only the first went out within the gap.
        assert_eq!(rx.try_recv().unwrap().output_tokens, 1);
        assert!(rx.try_recv().is_err());
        // A fallback model's first report is sent at once.
        report.report(piece("p1:m", 3));
        assert_eq!(rx.try_recv().unwrap().model, "p1:m");
        live.finish("r1", "plan");
        let last = rx.try_recv().unwrap();
        assert!(last.done);
        assert_eq!(last.output_tokens, 3);
        assert!(live.of_run("r1").is_none());
    }

    #[test]
    fn finishing_another_stage_leaves_the_current_one() {
        let live = Arc::new(LiveProgress::default());
        live.reporter("r1", "build").report(piece("p0:m", 9));
        live.finish("r1", "plan");
        assert_eq!(live.of_run("r1").unwrap().stage, "build");
        live.finish("r2", "build");
        assert!(live.of_run("r1").is_some());
    }
}
