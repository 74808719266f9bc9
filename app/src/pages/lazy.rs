//! The pages that are fetched when first visited. Built with `cargo leptos build --split`, each
//! page's code is cut out of the main WASM into its own chunk, so the first page a browser opens
//! downloads the shared framework and that page only. Without `--split` (debug builds, tests)
//! they are ordinary routes that render the same HTML.

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

/// A route whose view is one page component, loaded on demand; the page fetches its own data.
macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident => $page:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                view! { <$page /> }.into_any()
            }
        }
    };
}

lazy_page!(
    /// `/runs/{id}`: the team graph, detail, feed, artifacts and costs of one run.
    RunRoute => super::RunPage
);
lazy_page!(
    /// `/approvals`: decisions waiting for a person.
    ApprovalsRoute => super::ApprovalsPage
);
lazy_page!(
    /// `/costs`: the charts and budget gauges.
    CostsRoute => super::CostsPage
);
lazy_page!(
    /// `/memory`: memory search.
    MemoryRoute => super::MemoryPage
);
lazy_page!(
    /// `/audit`: the event log and its chain check.
    AuditRoute => super::AuditPage
);
lazy_page!(
    /// `/settings`: aliases, providers, budgets and routing.
    SettingsRoute => super::SettingsPage
);
