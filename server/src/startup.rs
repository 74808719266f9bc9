//! Building the server: one [`AppState`], one router, one listener. `main` and the tests call
//! the same [`build`]; tests pass port 0 and read the bound port back.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::Request;
use axum::serve::ListenerExt;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::engine::Engine;
use crate::gateway::Gateway;
use crate::store::{Store, StoreError, auth::validate_token};

/// Everything a handler may need; cloned per request (all fields are cheap handles).
#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub leptos_options: LeptosOptions,
    /// Cancelled on SIGINT/SIGTERM; long-lived connections end with it.
    pub shutdown: CancellationToken,
    /// Every model call goes through it.
    pub gateway: Arc<Gateway>,
    /// Drives runs through their pipelines.
    pub engine: Arc<Engine>,
}

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    /// A token generated on this start because none existed; shown once by `main`.
    pub new_admin_token: Option<String>,
    /// True when no compiled dashboard assets were found (pages render without hydration).
    pub missing_site: bool,
    pub store: Store,
    pub gateway: Arc<Gateway>,
    pub engine: Arc<Engine>,
    shutdown: CancellationToken,
    /// Deliveries to `[[webhooks]]`; finished after the engine stops, so a run's last events
    /// still go out.
    webhooks: crate::webhooks::Webhooks,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Opens the store, makes sure an admin token exists, binds the listener and builds the router.
pub async fn build(
    config: Config,
    shutdown: CancellationToken,
) -> Result<Application, StartupError> {
    if let Some(token) = &config.admin_token {
        validate_token(token).map_err(StartupError::Config)?;
    }
    config
        .factory
        .validate()
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let store = Store::open_with_capacity(&config.data_dir, config.ws_backlog).await?;
    store.reserve_wal().await;
    let gateway =
        Arc::new(Gateway::with_ledger(config.factory.gateway.clone(), store.clone()).await?);
    // What a person set in Settings wins over factory.toml (the newest change of each section),
    // and what the CLI records while the server runs is put in force within a tick.
    crate::gateway::settings::replay(&gateway, &store).await?;
    crate::gateway::settings::watch(
        gateway.clone(),
        store.clone(),
        config.settings_watch,
        shutdown.child_token(),
    );
    let engine = Engine::new(
        store.clone(),
        gateway.clone(),
        config.factory.engine.clone(),
        config.factory.approvals.clone(),
        config.data_dir.clone(),
        shutdown.child_token(),
    );
    let repos: Vec<std::path::PathBuf> = store
        .list_projects()
        .await?
        .into_iter()
        .map(|p| std::path::PathBuf::from(p.path))
        .collect();
    let worktrees = config.data_dir.join("worktrees");
    let retention = std::time::Duration::from_secs(config.factory.engine.worktree_retention_secs);
    let leftovers = tokio::task::spawn_blocking(move || {
        crate::delivery::worktree::collect_leftovers(&worktrees, retention, &repos)
    })
    .await
    .unwrap_or(0);
    if leftovers > 0 {
        tracing::info!(leftovers, "removed worktrees left by an interrupted run");
    }
    // Before anything is resumed: every event a resumed run commits is considered.
    let webhooks = crate::webhooks::Webhooks::start(&config.factory.webhooks, &store)
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let resumed = engine.resume_all().await?;
    engine.watch_decisions(std::time::Duration::from_secs(2));
    if resumed > 0 {
        tracing::info!(resumed, "resuming unfinished runs");
    }
    let new_admin_token = ensure_admin_token(&store, config.admin_token.as_deref()).await?;

    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: config.addr,
        source,
    })?;

    let site = crate::dashboard::site_root(config.site_root.as_deref());
    let missing_site = site.is_none();
    let site = site.unwrap_or_else(|| config.data_dir.join("site-missing"));
    let state = AppState {
        store: store.clone(),
        leptos_options: crate::dashboard::leptos_options(&site, addr),
        config: Arc::new(config),
        shutdown: shutdown.clone(),
        gateway: gateway.clone(),
        engine: engine.clone(),
    };
    Ok(Application {
        webhooks,
        gateway,
        engine,
        listener,
        router: router(state),
        addr,
        new_admin_token,
        missing_site,
        store,
        shutdown,
    })
}

/// With `FACTORY_ADMIN_TOKEN`, registers it; otherwise, on first start, generates one and
/// returns it so it can be shown once.
async fn ensure_admin_token(
    store: &Store,
    supplied: Option<&str>,
) -> Result<Option<String>, StoreError> {
    if let Some(token) = supplied {
        store
            .ensure_admin_token(token, "FACTORY_ADMIN_TOKEN", "system")
            .await?;
        return Ok(None);
    }
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let issued = store.create_admin_token("first start", "system").await?;
    Ok(Some(issued.secret))
}

/// The whole router: API, pages, authentication, request ids and tracing.
pub fn router(state: AppState) -> Router {
    let request_span = |req: &Request<_>| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The path only: query strings may carry things that do not belong in logs.
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    };
    crate::api::routes(&state)
        .merge(crate::dashboard::routes(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::require_auth,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

impl Application {
    /// The address actually bound (tests bind port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the shutdown token is cancelled, then drains in-flight requests.
    pub async fn run(self) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        // No Nagle delay: streamed answers (MCP's and the event streams) are written in
        // several small parts, and each part after the first would otherwise wait for the
        // client's delayed ACK (40 ms on Linux).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let served = axum::serve(
            listener,
            // The peer address: failed sign-ins are counted per client address.
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
        // Drivers stop at the shutdown signal without changing their runs (they resume on the
        // next start); wait for them so nothing is mid-commit when the process exits.
        self.engine.wait_idle().await;
        self.webhooks.finish(crate::webhooks::DRAIN_GRACE).await;
        // Containers of gates stopped by the shutdown are being removed; let that finish.
        crate::delivery::docker::finish_removals(std::time::Duration::from_secs(15)).await;
        self.gateway.flush().await;
        served
    }
}
