//! The model gateway: every team talks to models through it. Its configuration (providers,
//! aliases as fallback chains, prices and limits, retry policy, routing and budgets) is
//! [`crate::config::GatewayConfig`]; here are the provider clients, the call path with retries,
//! fallback and circuit breakers, the complexity router, budgets with reservations, and the
//! cost ledger.

pub mod budget;
pub mod client;
pub mod ledger;
pub mod providers;
pub mod resilience;
pub mod routing;
pub mod schema;
pub mod secrets;
pub mod settings;
pub mod tools;
pub mod types;

pub use client::{Gateway, GatewayError};
