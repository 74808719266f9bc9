//! How the dashboard stays live. Pages are rendered on the server; the one piece of each page
//! that runs in the browser for this is the [`LiveLink`] island. It follows `/ws?brief=true`
//! (how many events, their kinds and the newest number; no payloads), and when events the page
//! shows arrive it
//! asks `/live.js` to fetch the page again and morph the new HTML into the old DOM — at most
//! once per animation frame and one request at a time, however fast events come. Morphing
//! keeps what the person is doing: focus, typed text, scroll positions, open `<details>`, and
//! the state of every other island.
//!
//! After a reconnect the link resumes after the last event it saw (`/ws?after=N`), and the
//! server replays what was missed; a client too far behind is told to resync and refreshes.

use leptos::prelude::*;

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

/// The sequence number of the newest event committed when the server began rendering the
/// page: the page shows at least that much, so its live link resumes after it. Provided by
/// the server as context for every page request.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderSeq(pub i64);

/// The render's sequence number (0 outside a server request).
#[cfg(feature = "ssr")]
pub fn render_seq() -> i64 {
    use_context::<RenderSeq>().map_or(0, |s| s.0)
}

/// Which events make a page refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveScope {
    /// Only this run's events (the run page); every event when `None`.
    pub run: Option<String>,
    /// Only events of these kinds; any kind when empty.
    pub kinds: Vec<&'static str>,
}

impl LiveScope {
    /// Every event.
    pub fn all() -> LiveScope {
        LiveScope::default()
    }

    /// One run's events.
    pub fn run(id: &str) -> LiveScope {
        LiveScope {
            run: Some(id.to_string()),
            kinds: Vec::new(),
        }
    }

    /// Events of these kinds.
    pub fn kinds(kinds: &[&'static str]) -> LiveScope {
        LiveScope {
            run: None,
            kinds: kinds.to_vec(),
        }
    }
}

/// The `/ws` query for a link: brief messages, the run filter and where to resume.
pub fn ws_query(run: Option<&str>, after: Option<i64>) -> String {
    let mut query = String::from("?brief=true");
    if let Some(after) = after {
        query.push_str(&format!("&after={after}"));
    }
    if let Some(run) = run {
        query.push_str(&format!("&run={}", crate::dto::safe_run_id(run)));
    }
    query
}

/// Whether an event of `kind` concerns a page that refreshes on `kinds` (any, when empty).
pub fn wanted(kinds: &[String], kind: &str) -> bool {
    kinds.is_empty() || kinds.iter().any(|k| k == kind)
}

/// The page's live link: "● live" while connected. Its props never change on a page, so a
/// refresh keeps it (and its socket) as it is; once its element has left the page, it stops.
#[island]
pub fn LiveLink(
    /// Only this run's events.
    run: Option<String>,
    /// Only events of these kinds refresh the page; any kind when empty.
    kinds: Vec<String>,
) -> impl IntoView {
    let (state, set_state) = signal(LinkState::Connecting);
    let last_seq = RwSignal::new(None::<i64>);
    let element = NodeRef::new();
    #[cfg(feature = "hydrate")]
    client::open(run, kinds, set_state, last_seq, element);
    #[cfg(not(feature = "hydrate"))]
    let _ = (run, kinds, set_state);
    view! {
        <span
            node_ref=element
            data-testid="link"
            data-link=move || state.get().as_str()
            data-last-seq=move || last_seq.get()
            class=move || format!(
                "whitespace-nowrap text-xs {}",
                if state.get() == LinkState::Live { "text-emerald-700" } else { "text-amber-700" },
            )
            title="Whether this page follows the server live"
        >
            {move || match state.get() {
                LinkState::Live => "● live",
                LinkState::Reconnecting => "○ reconnecting…",
                LinkState::Connecting => "○ connecting…",
            }}
        </span>
    }
}

/// Asks the page to refresh now (after a decision or a save made on it), through `/live.js`.
/// Does nothing on the server or before the script has loaded.
pub fn refresh_page() {
    #[cfg(feature = "hydrate")]
    client::call_live("refresh", None);
}

/// Follows an action that changes what the page shows: whether it went through, and the
/// error text when it failed. Once it went through, the page refreshes ([`refresh_page`]).
pub fn refresh_on_success<I, T>(
    action: Action<I, Result<T, ServerFnError>>,
) -> (Signal<bool>, Signal<Option<String>>)
where
    I: 'static,
    T: 'static,
{
    let done = Signal::derive(move || action.value().with(|v| matches!(v, Some(Ok(_)))));
    let error = Signal::derive(move || {
        action.value().with(|v| match v {
            Some(Err(e)) => Some(crate::server_fns::error_text(e)),
            _ => None,
        })
    });
    Effect::new(move |_| {
        if done.get() {
            refresh_page();
        }
    });
    (done, error)
}

/// Shows `href` (a path on this server) without a full reload, through `/live.js`; a full
/// navigation when the script is missing. Does nothing on the server.
pub fn navigate(href: &str) {
    #[cfg(feature = "hydrate")]
    if !client::call_live("navigate", Some(href)) {
        let _ = window().location().set_href(href);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = href;
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::html::Span;
    use leptos::prelude::*;
    use wasm_bindgen::prelude::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::LinkState;
    use crate::protocol::BriefMsg;

    /// Longest pause between reconnection attempts.
    const MAX_BACKOFF_MS: u64 = 30_000;
    /// Shortest pause between two refreshes, so a burst of events costs the server a few page
    /// renders a second, not one per frame.
    const MIN_GAP_MS: f64 = 200.0;
    /// The pause is at least this many times as long as the last refresh took, so a slow
    /// server (or a busy browser) spends at most a fifth of its time on one page's refreshes.
    const GAP_PER_REFRESH: f64 = 4.0;
    /// A page with no events refreshes this often anyway (ages and times stay current).
    const IDLE_REFRESH: Duration = Duration::from_secs(60);

    type Handlers = (
        Closure<dyn FnMut(MessageEvent)>,
        Closure<dyn FnMut(CloseEvent)>,
    );

    struct Link {
        /// The link's `<span>`: once it has left the page, the link stops.
        element: NodeRef<Span>,
        run: Option<String>,
        kinds: Vec<String>,
        set_state: WriteSignal<LinkState>,
        shown_seq: RwSignal<Option<i64>>,
        /// Highest sequence number received (resume point after a reconnect).
        last_seq: Cell<Option<i64>>,
        failures: Cell<u32>,
        /// Connected at least once: a later `Ready` follows a reconnect.
        connected_before: Cell<bool>,
        /// Something the page shows changed since its last refresh.
        dirty: Cell<bool>,
        frame_requested: Cell<bool>,
        refreshing: Cell<bool>,
        /// When the last refresh ended, and how long it took.
        last_refresh: Cell<f64>,
        last_took: Cell<f64>,
        socket: RefCell<Option<WebSocket>>,
        handlers: RefCell<Option<Handlers>>,
        /// The idle refresh's interval.
        idle: Cell<Option<IntervalHandle>>,
    }

    pub(super) fn open(
        run: Option<String>,
        kinds: Vec<String>,
        set_state: WriteSignal<LinkState>,
        shown_seq: RwSignal<Option<i64>>,
        element: NodeRef<Span>,
    ) {
        let link = Rc::new(Link {
            element,
            run,
            kinds,
            set_state,
            shown_seq,
            last_seq: Cell::new(render_seq()),
            failures: Cell::new(0),
            connected_before: Cell::new(false),
            dirty: Cell::new(false),
            frame_requested: Cell::new(false),
            refreshing: Cell::new(false),
            last_refresh: Cell::new(now()),
            last_took: Cell::new(0.0),
            socket: RefCell::new(None),
            handlers: RefCell::new(None),
            idle: Cell::new(None),
        });
        shown_seq.set(link.last_seq.get());
        connect(link.clone());
        let idle = send_wrapper::SendWrapper::new(link.clone());
        let handle = set_interval_with_handle(
            move || {
                if !stop_if_gone(&idle)
                    && now() - idle.last_refresh.get() >= IDLE_REFRESH.as_millis() as f64
                {
                    mark_dirty(&idle);
                }
            },
            IDLE_REFRESH,
        );
        link.idle.set(handle.ok());
    }

    /// The sequence number the server rendered the page at (`data-render-seq` on `<main>`).
    fn render_seq() -> Option<i64> {
        document()
            .query_selector("[data-render-seq]")
            .ok()
            .flatten()?
            .get_attribute("data-render-seq")?
            .parse()
            .ok()
    }

    fn now() -> f64 {
        js_sys::Date::now()
    }

    fn ws_url(link: &Link) -> Option<String> {
        let location = window().location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss:"
        } else {
            "ws:"
        };
        let query = super::ws_query(link.run.as_deref(), link.last_seq.get());
        Some(format!("{scheme}//{}/ws{query}", location.host().ok()?))
    }

    fn detach(link: &Link) {
        if let Some(ws) = link.socket.borrow_mut().take() {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
        link.handlers.borrow_mut().take();
    }

    /// Stops the link once its element has left the page (`/live.js` replaced or removed its
    /// island): closes the socket and ends the idle refresh. True when it did.
    fn stop_if_gone(link: &Link) -> bool {
        // Not yet hydrated counts as present; an element whose owner is gone, as gone.
        let gone = link
            .element
            .try_get_untracked()
            .is_none_or(|span| span.is_some_and(|span| !span.is_connected()));
        if gone {
            detach(link);
            if let Some(idle) = link.idle.take() {
                idle.clear();
            }
        }
        gone
    }

    fn connect(link: Rc<Link>) {
        detach(&link);
        let Some(socket) = ws_url(&link).and_then(|url| WebSocket::new(&url).ok()) else {
            reconnect_later(link);
            return;
        };
        let on_message = {
            let link = link.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                if stop_if_gone(&link) {
                    return;
                }
                let Some(text) = e.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<BriefMsg>(&text) {
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

    fn receive(link: &Rc<Link>, msg: BriefMsg) {
        match msg {
            BriefMsg::Ready { last_seq } => {
                if link.last_seq.get().is_none_or(|seen| last_seq > seen) {
                    link.last_seq.set(Some(last_seq));
                }
                link.failures.set(0);
                link.set_state.set(LinkState::Live);
                // Back after a gap: whatever happened meanwhile was replayed, but a page
                // loaded from a cache may be older still.
                if link.connected_before.replace(true) {
                    mark_dirty(link);
                }
            }
            BriefMsg::Events {
                last_seq, kinds, ..
            } => {
                if link.last_seq.get().is_some_and(|last| last_seq <= last) {
                    return; // already seen (a resume overlaps what arrived before)
                }
                link.last_seq.set(Some(last_seq));
                if kinds.iter().any(|kind| super::wanted(&link.kinds, kind)) {
                    mark_dirty(link);
                } else {
                    request_frame(link);
                }
            }
            BriefMsg::Resync { .. } => mark_dirty(link),
            BriefMsg::Progress { progress } => show_progress(&progress),
        }
    }

    /// Puts a streamed reply's progress into the page's `data-stream-progress` element for
    /// its run, in place: no refresh (the stage's events bring one when the reply is whole).
    fn show_progress(progress: &crate::protocol::StageStream) {
        let selector = format!(
            "[data-stream-progress=\"{}\"]",
            crate::dto::safe_run_id(&progress.run_id)
        );
        if let Ok(Some(element)) = document().query_selector(&selector) {
            let text = (!progress.done).then(|| progress.label());
            element.set_text_content(text.as_deref());
        }
    }

    fn mark_dirty(link: &Rc<Link>) {
        link.dirty.set(true);
        request_frame(link);
    }

    /// Work is done once per animation frame: the shown sequence number is updated and, when
    /// something changed and no refresh is under way, the page is refreshed.
    fn request_frame(link: &Rc<Link>) {
        if link.frame_requested.replace(true) {
            return;
        }
        let link = send_wrapper::SendWrapper::new(link.clone());
        request_animation_frame(move || {
            let link = link.take();
            link.frame_requested.set(false);
            link.shown_seq.set(link.last_seq.get());
            if !link.dirty.get() || link.refreshing.get() {
                return; // a refresh under way looks again when it ends
            }
            let gap = MIN_GAP_MS.max(link.last_took.get() * GAP_PER_REFRESH);
            let wait = link.last_refresh.get() + gap - now();
            if wait > 0.0 {
                let later = send_wrapper::SendWrapper::new(link);
                set_timeout(
                    move || request_frame(&later.take()),
                    Duration::from_millis(wait as u64 + 1),
                );
                return;
            }
            refresh(link);
        });
    }

    fn refresh(link: Rc<Link>) {
        link.dirty.set(false);
        link.refreshing.set(true);
        let started = now();
        let done = send_wrapper::SendWrapper::new(link);
        leptos::task::spawn_local(async move {
            let link = done.take();
            if let Some(promise) = live_promise("refresh", None)
                && let Err(err) = wasm_bindgen_futures::JsFuture::from(promise).await
            {
                leptos::logging::warn!("page refresh failed: {err:?}");
            }
            link.refreshing.set(false);
            link.last_refresh.set(now());
            link.last_took.set(now() - started);
            if link.dirty.get() {
                request_frame(&link);
            }
        });
    }

    fn reconnect_later(link: Rc<Link>) {
        if stop_if_gone(&link) {
            return;
        }
        let failures = link.failures.get().saturating_add(1);
        link.failures.set(failures);
        let delay = (500u64 << failures.min(6)).min(MAX_BACKOFF_MS);
        let link = send_wrapper::SendWrapper::new(link);
        set_timeout(move || connect(link.take()), Duration::from_millis(delay));
    }

    /// `window.factoryLive[name](arg)`, when `/live.js` has loaded and it returns a promise.
    fn live_promise(name: &str, arg: Option<&str>) -> Option<js_sys::Promise> {
        let live = js_sys::Reflect::get(&window(), &JsValue::from_str("factoryLive")).ok()?;
        let function = js_sys::Reflect::get(&live, &JsValue::from_str(name)).ok()?;
        let function = function.dyn_ref::<js_sys::Function>()?;
        let arg = arg.map_or(JsValue::UNDEFINED, JsValue::from_str);
        function.call1(&live, &arg).ok()?.dyn_into().ok()
    }

    /// Calls `window.factoryLive[name](arg)`; false when `/live.js` is not there.
    pub(super) fn call_live(name: &str, arg: Option<&str>) -> bool {
        live_promise(name, arg).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_query_is_brief_resumes_and_filters() {
        assert_eq!(ws_query(None, None), "?brief=true");
        assert_eq!(ws_query(None, Some(42)), "?brief=true&after=42");
        assert_eq!(
            ws_query(Some("0190-ab\"&x"), Some(7)),
            "?brief=true&after=7&run=0190-abx"
        );
    }

    #[test]
    fn kinds_filter_refreshes() {
        let costs = vec!["model_call_finished".to_string()];
        assert!(wanted(&costs, "model_call_finished"));
        assert!(!wanted(&costs, "stage_started"));
        assert!(wanted(&[], "anything"));
    }
}
