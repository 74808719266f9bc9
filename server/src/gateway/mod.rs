//! The model gateway: every team talks to models through it. This first part holds its
//! configuration (providers, aliases as fallback chains, prices and limits, retry policy,
//! routing and budgets), the complexity router and the retry/circuit-breaker policy; the
//! provider clients, budgets and the cost ledger build on them.

pub mod client;
pub mod config;
pub mod providers;
pub mod resilience;
pub mod routing;
pub mod types;

pub use client::{Gateway, GatewayError};
pub use config::{ConfigError, EnvSnapshot, GatewayConfig, ProviderKind};
