//! The dashboard's server side: Leptos server-side rendering, the server functions' ports
//! (one per area: approvals, runs, costs, gym, memory, audit, artifacts, settings; see
//! `app::server_fns`) and the compiled assets, wired into the axum router.

mod approvals;
mod artifacts;
mod audit;
mod costs;
mod failure;
mod gym;
mod memory;
mod runs;
mod settings;
mod site;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Response};
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, file_and_error_handler_with_context, generate_route_list};

pub use site::{leptos_options, site_root};
// Reads the MCP server shares with the pages (`crate::mcp`).
pub(crate) use artifacts::{artifact_text, work_order_diff};
pub(crate) use audit::verify as verify_audit;

use crate::api::{Access, Principal, classify};
use crate::startup::AppState;

/// Page routes and server functions, plus the fallback that serves assets, the dashboard's
/// 404 page, and JSON 404s for unknown API paths.
pub fn routes(state: &AppState) -> Router<AppState> {
    // One port per area of the dashboard (see `app::server_fns`), each provided as context.
    let approvals = approvals::port(state);
    let runs = runs::port(state);
    let costs = costs::port(state);
    let gym = gym::port(state);
    let memory = memory::port(state);
    let audit = audit::port(state);
    let artifacts = artifacts::port(state);
    let settings = settings::port(state);
    let store = state.store.clone();
    let context = move || {
        // The data ports only for a request the middleware authenticated: should any path ever
        // reach a page without credentials, the page renders without data rather than with it.
        let authenticated = leptos::prelude::use_context::<axum::http::request::Parts>()
            .is_some_and(|parts| parts.extensions.get::<Principal>().is_some());
        if !authenticated {
            return;
        }
        // Read before the page: everything up to it is in the rendering, so the page's live
        // link resumes after it.
        provide_context(app::live::RenderSeq(store.head()));
        provide_context(approvals.clone());
        provide_context(runs.clone());
        provide_context(costs.clone());
        provide_context(gym.clone());
        provide_context(memory.clone());
        provide_context(audit.clone());
        provide_context(artifacts.clone());
        provide_context(settings.clone());
    };
    let options = state.leptos_options.clone();
    let pages = generate_route_list(app::App);
    let files = file_and_error_handler_with_context(context.clone(), app::shell);
    Router::new()
        .leptos_routes_with_context(state, pages, context, move || app::shell(options.clone()))
        .fallback(
            move |uri: Uri, state: State<AppState>, req: Request<Body>| {
                let files = files.clone();
                async move { fallback(uri, state, req, files).await }
            },
        )
}

async fn fallback<F, Fut>(
    uri: Uri,
    state: State<AppState>,
    req: Request<Body>,
    files: F,
) -> Response
where
    F: Fn(Uri, State<AppState>, Request<Body>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    match classify(uri.path()) {
        Access::Api => crate::api::api_not_found(uri).await.into_response(),
        // A public path (compiled assets, scripts) is a file or a plain 404, never the app:
        // the app renders pages, and pages are not public.
        Access::Public => {
            // The path has no `.`/`..` or empty segments (the middleware refused those).
            let site = std::path::Path::new(state.leptos_options.site_root.as_ref());
            let file = site.join(uri.path().trim_start_matches('/'));
            if std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
                files(uri, state, req).await
            } else {
                (axum::http::StatusCode::NOT_FOUND, "not found").into_response()
            }
        }
        Access::Page => files(uri, state, req).await,
    }
}
