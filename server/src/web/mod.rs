//! The dashboard: Leptos server-side rendering, server functions and the compiled assets,
//! wired into the axum router with the server's [`Backend`](app::backend::Backend).

mod costs;
mod insight;
mod runs;
mod settings;
mod site;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Response};
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, file_and_error_handler_with_context, generate_route_list};

use app::approval::Approval;
use app::backend::{Backend, BackendError, SharedBackend};
use app::model::RunSummary;

pub use site::{leptos_options, site_root};

use crate::api::{Access, Principal, classify};
use crate::startup::AppState;
use crate::store::Store;

/// The server's side of the dashboard port.
struct StoreBackend {
    store: Store,
    engine: Arc<crate::engine::Engine>,
}

#[async_trait::async_trait]
impl Backend for StoreBackend {
    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, BackendError> {
        self.store.list_runs(limit).await.map_err(|e| {
            tracing::error!(error = %e, "list_runs failed");
            BackendError::Internal
        })
    }

    async fn pending_approvals(&self) -> Result<Vec<Approval>, BackendError> {
        self.store
            .list_approvals(Some("pending"), None, 500)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "pending_approvals failed");
                BackendError::Internal
            })
    }

    async fn decide_approval(
        &self,
        id: String,
        option: String,
        text: Option<String>,
    ) -> Result<(), BackendError> {
        use crate::engine::EngineError;
        match self.engine.decide(&id, &option, text, "dashboard").await {
            Ok(_) => Ok(()),
            Err(EngineError::Store(e)) => {
                tracing::error!(error = %e, "decide_approval failed");
                Err(BackendError::Internal)
            }
            Err(refused) => Err(BackendError::Refused(refused.to_string())),
        }
    }
}

/// Page routes and server functions, plus the fallback that serves assets, the dashboard's
/// 404 page, and JSON 404s for unknown API paths.
pub fn routes(state: &AppState) -> Router<AppState> {
    let backend: SharedBackend = Arc::new(StoreBackend {
        store: state.store.clone(),
        engine: state.engine.clone(),
    });
    // One port per area of the dashboard (see `app::api`), each provided as context.
    let runs = runs::port(state);
    let costs = costs::port(state);
    let insight = insight::port(state);
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
        provide_context(backend.clone());
        provide_context(runs.clone());
        provide_context(costs.clone());
        provide_context(insight.clone());
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
