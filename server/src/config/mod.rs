//! Configuration: the server's own (where data lives, where to listen, the limits every
//! request and socket obeys; filled from the CLI, which reads the `FACTORY_*` environment
//! variables) and `factory.toml` ([`FactoryConfig`]: the gateway's, the engine's, the
//! approvals' and the webhooks' sections, each handed only to its owner).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod engine;
mod env;
mod factory;
pub mod gateway;
mod sign_in;
pub mod webhooks;

pub use engine::{ApprovalsConfig, EngineConfig};
pub use env::EnvSnapshot;
pub use factory::{ConfigError, FactoryConfig};
pub use gateway::{GatewayConfig, ProviderKind};
pub use sign_in::SignInThrottle;
pub use webhooks::WebhookConfig;

/// Everything [`crate::startup::build`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Holds `factory.db` and, later, worktrees and run artifacts.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// Admin token supplied by the operator (`FACTORY_ADMIN_TOKEN`); never logged.
    pub admin_token: Option<String>,
    /// Extra origins allowed to open `/ws` besides the server's own (`FACTORY_ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// How long a browser session lasts.
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (set when serving behind HTTPS).
    pub secure_cookies: bool,
    /// Wrong tokens allowed per client address and window before it gets 429 (5 a minute);
    /// tests shorten the window.
    pub sign_in_throttle: SignInThrottle,
    /// Where the compiled dashboard (`pkg/factory.js`, `.wasm`, `.css`) lives; found
    /// automatically when `None`.
    pub site_root: Option<PathBuf>,
    /// Committed events a WebSocket client may fall behind before it is resynced.
    pub ws_backlog: usize,
    /// Most WebSocket clients served at once (256); one more is refused with 503 before
    /// upgrading, so idle sockets cannot exhaust the server's memory or file descriptors.
    /// Clones share the count, like `sign_in_throttle`.
    pub ws_connections: crate::hub::ConnectionLimit,
    /// How long a WebSocket client may take to accept one message before it is dropped (a
    /// stalled reader must not pin a task and its buffers forever).
    pub ws_send_timeout: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest accepted goal, in characters.
    pub max_goal_chars: usize,
    /// How often the server looks for settings changes another process (the CLI) recorded in
    /// the same data directory (1 s; kept within 50 ms – 60 s).
    pub settings_watch: Duration,
    /// `factory.toml`: the gateway's, the engine's, the approvals' and the webhooks' sections.
    pub factory: FactoryConfig,
}

impl Config {
    /// Defaults for a local server with data in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            admin_token: None,
            allowed_origins: Vec::new(),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            secure_cookies: false,
            sign_in_throttle: SignInThrottle::new(5, Duration::from_secs(60)),
            site_root: None,
            ws_backlog: 4096,
            ws_connections: crate::hub::ConnectionLimit::new(256),
            ws_send_timeout: Duration::from_secs(10),
            max_body_bytes: 1024 * 1024,
            max_goal_chars: 20_000,
            settings_watch: Duration::from_secs(1),
            // Without a factory.toml and without reading the environment: local Ollama when
            // found, then the offline provider. `serve` loads the real configuration.
            factory: FactoryConfig::defaults(&EnvSnapshot::default()),
        }
    }
}

/// The data directory used when none is given: `$XDG_DATA_HOME/factory`, i.e.
/// `~/.local/share/factory` on Linux.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("factory")
}
