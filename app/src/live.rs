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

/// Opens the live link for the current component and returns its state. `on_msg` sees every
/// message in order. The link closes when the component is cleaned up.
pub fn use_live_feed(on_msg: impl Fn(ServerMsg) + 'static) -> ReadSignal<LinkState> {
    let (state, set_state) = signal(LinkState::Connecting);
    #[cfg(feature = "hydrate")]
    client::open(Box::new(on_msg), set_state);
    #[cfg(not(feature = "hydrate"))]
    let _ = (on_msg, set_state);
    state
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
                },
            );
            true
        }
        EventData::RunStarted { run_id, .. } => set_status(runs, run_id, RunStatus::Running),
        EventData::RunFinished { run_id, status, .. } => set_status(runs, run_id, *status),
        EventData::ApprovalRequested { run_id, .. } => {
            set_status(runs, run_id, RunStatus::WaitingForHuman)
        }
        EventData::ApprovalDecided { run_id, .. } | EventData::StageStarted { run_id, .. } => {
            match runs.iter().find(|r| &r.id == run_id) {
                Some(r)
                    if r.status == RunStatus::WaitingForHuman || r.status == RunStatus::Queued =>
                {
                    set_status(runs, run_id, RunStatus::Running)
                }
                _ => false,
            }
        }
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

    use super::LinkState;
    use crate::protocol::ServerMsg;

    /// Longest pause between reconnection attempts.
    const MAX_BACKOFF_MS: u64 = 30_000;

    type Handlers = (
        Closure<dyn FnMut(MessageEvent)>,
        Closure<dyn FnMut(CloseEvent)>,
    );

    struct Link {
        on_msg: Box<dyn Fn(ServerMsg)>,
        set_state: WriteSignal<LinkState>,
        stopped: Cell<bool>,
        failures: Cell<u32>,
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

    pub(super) fn open(on_msg: Box<dyn Fn(ServerMsg)>, set_state: WriteSignal<LinkState>) {
        let link = Rc::new(Link {
            on_msg,
            set_state,
            stopped: Cell::new(false),
            failures: Cell::new(0),
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

    fn ws_url() -> Option<String> {
        let location = window().location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss:"
        } else {
            "ws:"
        };
        Some(format!("{scheme}//{}/ws", location.host().ok()?))
    }

    fn connect(link: Rc<Link>) {
        if link.stopped.get() {
            return;
        }
        link.detach();
        let Some(socket) = ws_url().and_then(|url| WebSocket::new(&url).ok()) else {
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
                    Ok(msg) => {
                        if msg == ServerMsg::Ready {
                            link.failures.set(0);
                            link.set_state.set(LinkState::Live);
                        }
                        (link.on_msg)(msg);
                    }
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
