//! Factory's dashboard (Leptos, rendered on the server and hydrated in the browser) and the
//! types both sides share: DTOs, the event vocabulary and the WebSocket protocol.

// Leptos views are deeply nested types; without cargo-leptos's `erase_components` (turned off
// so every build shares one set of flags) the default limit is too low for the hydrate build.
#![recursion_limit = "256"]

pub mod api;
pub mod approval;
#[cfg(feature = "ssr")]
pub mod backend;
pub mod components;
pub mod events;
pub mod graph;
pub mod ledger;
pub mod live;
pub mod model;
pub mod pages;
pub mod protocol;
pub mod run_view;
pub mod task;
pub mod time;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, ParamSegment, StaticSegment,
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
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

/// The dashboard's root component: stylesheet, title and the routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/factory.css" />
        <Title text="Factory" />
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=StaticSegment("") view=pages::RunsPage />
                <Route path=StaticSegment("login") view=pages::LoginPage />
                <Route path=StaticSegment("approvals") view={Lazy::<pages::ApprovalsRoute>::new()} />
                <Route path=(StaticSegment("runs"), ParamSegment("id")) view={Lazy::<pages::RunRoute>::new()} />
                <Route path=StaticSegment("costs") view={Lazy::<pages::CostsRoute>::new()} />
                <Route path=StaticSegment("memory") view={Lazy::<pages::MemoryRoute>::new()} />
                <Route path=StaticSegment("audit") view={Lazy::<pages::AuditRoute>::new()} />
                <Route path=StaticSegment("settings") view={Lazy::<pages::SettingsRoute>::new()} />
            </Routes>
        </Router>
    }
}
