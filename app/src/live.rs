//! The dashboard's live link to `/ws`: connects after hydration, hands every [`ServerMsg`] to
//! the page, and reconnects with bounded exponential backoff. On the server it does nothing.

use leptos::prelude::*;

use crate::events::{Event, EventData};
use crate::model::{RunStatus, RunSummary};
use crate::protocol::ServerMsg;

/// State of the live link, shown to the user so a stale page is never mistaken for a live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Live,
    Reconnecting,
}

impl LinkState {
    /// Stable name, also used as a `data-link` attribute by the browser tests.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Live => "live",
            LinkState::Reconnecting => "reconnecting",
        }
    }
}

/// What a page wants from the live link.
#[derive(Debug, Clone, Default)]
pub struct FeedOptions {
    /// Only this run's events (the run page); every event when `None`.
    pub run: Option<String>,
    /// The sequence number the page's server-rendered state is consistent with: the first
    /// connection asks for the events after it instead of a snapshot.
    pub after: Option<i64>,
}

/// Opens the live link for the current component and returns its state. Messages are queued
/// as they arrive and handed to `on_batch` once per animation frame, in order, so a page
/// re-renders at most once a frame however fast events come. After a reconnect the link asks
/// for the events after the last one it saw (`/ws?after=N`), so nothing is missed; when too
/// many were missed the server answers with `Resync` and a fresh `Snapshot` instead. The link
/// closes when the component is cleaned up.
pub fn use_live_feed(
    options: FeedOptions,
    on_batch: impl Fn(Vec<ServerMsg>) + 'static,
) -> ReadSignal<LinkState> {
    let (state, set_state) = signal(LinkState::Connecting);
    #[cfg(feature = "hydrate")]
    client::open(options, Box::new(on_batch), set_state);
    #[cfg(not(feature = "hydrate"))]
    let _ = (options, on_batch, set_state);
    state
}

/// The `/ws` query for a link: the run filter and where to resume.
pub fn ws_query(options: &FeedOptions, after: Option<i64>) -> String {
    let mut parts = Vec::new();
    if let Some(after) = after {
        parts.push(format!("after={after}"));
    }
    if let Some(run) = &options.run {
        let safe: String = run
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        parts.push(format!("run={safe}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The current time in milliseconds, refreshed every `period` in the browser (ages stay
/// current without a reload); fixed at render time on the server.
pub fn use_clock(period: std::time::Duration) -> RwSignal<i64> {
    let now = RwSignal::new(crate::time::now_ms());
    #[cfg(feature = "hydrate")]
    if let Ok(handle) = set_interval_with_handle(move || now.set(crate::time::now_ms()), period) {
        on_cleanup(move || handle.clear());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = period;
    now
}

/// Folds one event into a list of runs (newest first). Returns true when the list changed.
pub fn apply_event(runs: &mut Vec<RunSummary>, event: &Event) -> bool {
    match &event.data {
        EventData::RunCreated {
            run_id,
            request_id,
            goal,
            project,
            ..
        } => {
            if runs.iter().any(|r| &r.id == run_id) {
                return false;
            }
            runs.insert(
                0,
                RunSummary {
                    id: run_id.clone(),
                    request_id: request_id.clone(),
                    goal: goal.clone(),
                    project: project.clone(),
                    status: RunStatus::Queued,
                    created_at: event.ts.clone(),
                    created_ms: crate::time::parse_rfc3339_ms(&event.ts)
                        .unwrap_or_else(crate::time::now_ms),
                    current_stage: None,
                    cost_usd: 0.0,
                },
            );
            true
        }
        EventData::RunStarted { run_id, .. } => set_status(runs, run_id, RunStatus::Running),
        EventData::RunFinished { run_id, status, .. } => {
            if let Some(run) = runs.iter_mut().find(|r| &r.id == run_id) {
                run.current_stage = None;
            }
            set_status(runs, run_id, *status)
        }
        EventData::ModelCallFinished {
            attribution,
            cost_usd,
            ..
        } if *cost_usd > 0.0 => match attribution
            .run_id
            .as_deref()
            .and_then(|id| runs.iter_mut().find(|r| r.id == id))
        {
            Some(run) => {
                run.cost_usd += cost_usd;
                true
            }
            None => false,
        },
        EventData::ApprovalRequested { run_id, .. } => {
            set_status(runs, run_id, RunStatus::WaitingForHuman)
        }
        EventData::StageStarted { run_id, stage, .. } => {
            let Some(run) = runs.iter_mut().find(|r| &r.id == run_id) else {
                return false;
            };
            run.current_stage = Some(stage.clone());
            if run.status == RunStatus::WaitingForHuman || run.status == RunStatus::Queued {
                run.status = RunStatus::Running;
            }
            true
        }
        EventData::ApprovalDecided { run_id, .. } => match runs.iter().find(|r| &r.id == run_id) {
            Some(r) if r.status == RunStatus::WaitingForHuman || r.status == RunStatus::Queued => {
                set_status(runs, run_id, RunStatus::Running)
            }
            _ => false,
        },
        _ => false,
    }
}

fn set_status(runs: &mut [RunSummary], run_id: &str, status: RunStatus) -> bool {
    match runs.iter_mut().find(|r| r.id == run_id) {
        Some(run) if run.status != status => {
            run.status = status;
            true
        }
        _ => false,
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::Closure;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::{FeedOptions, LinkState};
    use crate::protocol::ServerMsg;

    /// Longest pause between reconnection attempts.
    const MAX_BACKOFF_MS: u64 = 30_000;
    /// Most messages held for the next frame; past it the link asks for a resync rather than
    /// grow without bound (a tab in the background gets no animation frames).
    const MAX_QUEUED: usize = 20_000;

    type Handlers = (
        Closure<dyn FnMut(MessageEvent)>,
        Closure<dyn FnMut(CloseEvent)>,
    );

    struct Link {
        options: FeedOptions,
        on_batch: Box<dyn Fn(Vec<ServerMsg>)>,
        set_state: WriteSignal<LinkState>,
        stopped: Cell<bool>,
        failures: Cell<u32>,
        /// Highest sequence number received (resume point after a reconnect).
        last_seq: Cell<Option<i64>>,
        queue: RefCell<Vec<ServerMsg>>,
        frame_requested: Cell<bool>,
        socket: RefCell<Option<WebSocket>>,
        handlers: RefCell<Option<Handlers>>,
    }

    impl Link {
        fn detach(&self) {
            if let Some(ws) = self.socket.borrow_mut().take() {
                ws.set_onmessage(None);
                ws.set_onclose(None);
                let _ = ws.close();
            }
            self.handlers.borrow_mut().take();
        }
    }

    pub(super) fn open(
        options: FeedOptions,
        on_batch: Box<dyn Fn(Vec<ServerMsg>)>,
        set_state: WriteSignal<LinkState>,
    ) {
        let after = options.after;
        let link = Rc::new(Link {
            options,
            on_batch,
            set_state,
            stopped: Cell::new(false),
            failures: Cell::new(0),
            last_seq: Cell::new(after),
            queue: RefCell::new(Vec::new()),
            frame_requested: Cell::new(false),
            socket: RefCell::new(None),
            handlers: RefCell::new(None),
        });
        connect(link.clone());
        let guard = send_wrapper::SendWrapper::new(link);
        on_cleanup(move || {
            guard.stopped.set(true);
            guard.detach();
        });
    }

    fn ws_url(link: &Link) -> Option<String> {
        let location = window().location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss:"
        } else {
            "ws:"
        };
        let query = super::ws_query(&link.options, link.last_seq.get());
        Some(format!("{scheme}//{}/ws{query}", location.host().ok()?))
    }

    fn connect(link: Rc<Link>) {
        if link.stopped.get() {
            return;
        }
        link.detach();
        let Some(socket) = ws_url(&link).and_then(|url| WebSocket::new(&url).ok()) else {
            reconnect_later(link);
            return;
        };
        let on_message = {
            let link = link.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let Some(text) = e.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<ServerMsg>(&text) {
                    Ok(msg) => receive(&link, msg),
                    Err(err) => leptos::logging::warn!("ignored a malformed /ws message: {err}"),
                }
            })
        };
        let on_close = {
            let link = link.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
                link.set_state.set(LinkState::Reconnecting);
                reconnect_later(link.clone());
            })
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *link.socket.borrow_mut() = Some(socket);
        *link.handlers.borrow_mut() = Some((on_message, on_close));
    }

    fn receive(link: &Rc<Link>, msg: ServerMsg) {
        match &msg {
            ServerMsg::Snapshot { last_seq, .. } => link.last_seq.set(Some(*last_seq)),
            ServerMsg::Event { event } => {
                let seq = event.seq;
                if link.last_seq.get().is_some_and(|last| seq <= last) {
                    return; // already seen (a resume overlaps what was queued)
                }
                link.last_seq.set(Some(seq));
            }
            ServerMsg::Ready => {
                link.failures.set(0);
                link.set_state.set(LinkState::Live);
            }
            ServerMsg::Resync { .. } => {}
        }
        {
            let mut queue = link.queue.borrow_mut();
            if queue.len() >= MAX_QUEUED {
                // Too far behind to catch up message by message: start again from a snapshot.
                queue.clear();
                link.last_seq.set(None);
                drop(queue);
                link.detach();
                connect(link.clone());
                return;
            }
            queue.push(msg);
        }
        if !link.frame_requested.replace(true) {
            let link = send_wrapper::SendWrapper::new(link.clone());
            request_animation_frame(move || {
                let link = link.take();
                link.frame_requested.set(false);
                let batch = std::mem::take(&mut *link.queue.borrow_mut());
                if !batch.is_empty() && !link.stopped.get() {
                    (link.on_batch)(batch);
                }
            });
        }
    }

    fn reconnect_later(link: Rc<Link>) {
        if link.stopped.get() {
            return;
        }
        let failures = link.failures.get().saturating_add(1);
        link.failures.set(failures);
        let delay = (500u64 << failures.min(6)).min(MAX_BACKOFF_MS);
        let link = send_wrapper::SendWrapper::new(link);
        set_timeout(move || connect(link.take()), Duration::from_millis(delay));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(seq: i64, id: &str) -> Event {
        Event {
            seq,
            run_id: Some(id.into()),
            ts: "2026-11-22T05:00:00.000Z".into(),
            actor: "api".into(),
            data: EventData::RunCreated {
                run_id: id.into(),
                request_id: None,
                goal: format!("goal {id}"),
                project: None,
                pipeline: None,
            },
            hash: String::new(),
        }
    }

    #[test]
    fn ws_query_resumes_and_filters() {
        let all = FeedOptions::default();
        assert_eq!(ws_query(&all, None), "");
        assert_eq!(ws_query(&all, Some(42)), "?after=42");
        let run = FeedOptions {
            run: Some("0190-ab\"&x".into()),
            after: None,
        };
        assert_eq!(ws_query(&run, Some(7)), "?after=7&run=0190-abx");
    }

    #[test]
    fn run_created_prepends_once() {
        let mut runs = Vec::new();
        assert!(apply_event(&mut runs, &created(1, "a")));
        assert!(apply_event(&mut runs, &created(2, "b")));
        assert!(!apply_event(&mut runs, &created(2, "b")));
        let ids: Vec<_> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(runs[0].status, RunStatus::Queued);
    }
}
