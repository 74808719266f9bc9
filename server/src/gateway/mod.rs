//! The model gateway: every team talks to models through it. Configuration (providers,
//! aliases as fallback chains, prices and limits, retry policy, routing and budgets), the
//! provider clients, the call path with retries, fallback and circuit breakers, the complexity
//! router, budgets with reservations, and the cost ledger.

pub mod budget;
pub mod client;
pub mod config;
pub mod ledger;
pub mod providers;
pub mod resilience;
pub mod routing;
pub mod settings;
pub mod types;

pub use client::{Gateway, GatewayError};
pub use config::{ConfigError, EnvSnapshot, GatewayConfig, ProviderKind};
