//! Factory's dashboard and the types both sides share: DTOs, the event vocabulary and the
//! WebSocket protocol.
//!
//! The dashboard is built as Leptos *islands*: every page is rendered on the server, and only
//! the parts a person interacts with — the live link, approval buttons, the chat's composer and
//! answer box, the settings forms, the chain check — are compiled to WASM and hydrated in the
//! browser (`#[island]`). Pages stay live by being rendered again when events arrive and
//! morphed into the open page (see [`live`] and `public/live.js`).

// Leptos views are deeply nested types; without cargo-leptos's `erase_components` (turned off
// so every build shares one set of flags) the default limit is too low.
#![recursion_limit = "256"]

pub mod approval;
pub mod components;
pub mod dto;
pub mod events;
pub mod graph;
pub mod gym;
pub mod ledger;
pub mod live;
pub mod pages;
pub mod protocol;
pub mod run_view;
pub mod server_fns;
pub mod task;
pub mod time;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

/// The HTML document the server renders around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HydrationScripts options islands=true />
                <script src="/vendor/idiomorph.min.js" defer></script>
                <script src="/live.js" defer></script>
                <script src="/charts.js" defer></script>
                <MetaTags />
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

/// The dashboard's root component: stylesheet, title and the routes. Every page is rendered
/// whole before it is sent (`SsrMode::Async`): a live refresh morphs complete HTML.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/factory.css" />
        <Title text="Factory" />
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=StaticSegment("") view=pages::RunsPage ssr=SsrMode::Async />
                <Route path=StaticSegment("login") view=pages::LoginPage ssr=SsrMode::Async />
                <Route path=StaticSegment("approvals") view=pages::ApprovalsPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("runs"), ParamSegment("id")) view=pages::RunPage ssr=SsrMode::Async />
                <Route path=StaticSegment("costs") view=pages::CostsPage ssr=SsrMode::Async />
                <Route path=StaticSegment("gym") view=pages::GymPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("gym"), StaticSegment("changed"), ParamSegment("seq")) view=pages::GymChangedPage ssr=SsrMode::Async />
                <Route path=StaticSegment("memory") view=pages::MemoryPage ssr=SsrMode::Async />
                <Route path=StaticSegment("audit") view=pages::AuditPage ssr=SsrMode::Async />
                <Route path=StaticSegment("settings") view=pages::SettingsPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
