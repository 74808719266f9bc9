//! `factory serve`: builds the application, shows a first-start token once, and serves until
//! SIGINT or SIGTERM.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::{Exit, ServeArgs};
use crate::config::Config;
use crate::config::{EnvSnapshot, FactoryConfig};
use crate::startup::build;

pub(super) async fn run(
    data_dir: PathBuf,
    config_file: Option<PathBuf>,
    args: ServeArgs,
) -> anyhow::Result<Exit> {
    let mut config = Config::new(data_dir);
    let config_file = super::models::config_path(config_file.as_deref(), &config.data_dir);
    config.factory = FactoryConfig::load(config_file.as_deref(), &EnvSnapshot::from_env())
        .and_then(|c| c.gateway.check_keys(env_is_set).map(|()| c))
        .map_err(|e| super::UsageError(e.to_string()))?;
    config.addr = args.addr;
    config.allowed_origins = args.allowed_origins;
    config.secure_cookies = args.secure_cookies;
    config.site_root = args.site_root;
    config.admin_token = std::env::var("FACTORY_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());

    let shutdown = CancellationToken::new();
    let app = build(config.clone(), shutdown.clone()).await?;
    // Handlers are registered before anything is printed, so a SIGTERM sent the moment the
    // server says it listens is always a graceful stop.
    tokio::spawn(cancel_on_signal(shutdown.clone(), signals()));
    let shown = match app.addr().ip().is_unspecified() {
        true => format!("http://127.0.0.1:{}", app.addr().port()),
        false => format!("http://{}", app.addr()),
    };
    if let Some(token) = &app.new_admin_token {
        // Printed to the terminal once, deliberately not through the logger.
        println!(
            "\nFactory created an admin token. It is shown only this once; store it safely:\n"
        );
        println!("    {token}\n");
        println!(
            "Sign in at {shown}/login with it, or send it as `Authorization: Bearer <token>`.\n"
        );
    }
    if app.missing_site {
        tracing::warn!(
            "compiled dashboard assets not found (build with `cargo leptos build` or set \
             FACTORY_SITE_ROOT): pages render but are not interactive"
        );
    }
    println!("Models (fallback chains; `factory models` for details):");
    // The chains in force: factory.toml with what was set from the dashboard or the CLI.
    let models = app.gateway.config();
    for alias in ["factory/architect", "factory/coder", "factory/cheap"] {
        let chain = models.aliases[alias].join(" → ");
        println!("  {alias:<18} {chain}");
    }
    let coder = &models.aliases["factory/coder"][0];
    if coder == crate::config::gateway::OFFLINE_MODEL || coder.starts_with("ollama:") {
        println!(
            "  No cloud model configured: local Ollama models are used when found, otherwise \
             the offline provider (deterministic templates, no model). See `factory models`."
        );
    }
    println!(
        "Factory is listening on {shown} (data in {})",
        config.data_dir.display()
    );
    tracing::info!(addr = %app.addr(), data_dir = %config.data_dir.display(), "listening");

    app.run().await?;
    tracing::info!("stopped");
    Ok(Exit::Success)
}

/// True when the environment variable is set to something non-blank.
pub(super) fn env_is_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

/// SIGTERM and SIGINT streams, registered now.
fn signals() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken, signals: Signals) {
    let Some((mut term, mut int)) = signals else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    token.cancel();
}
