//! Factory's server: the axum application, the event store, the live hub and the CLI behind
//! the `factory` binary.

pub mod api;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod engine;
pub mod gateway;
pub mod gym;
pub mod hub;
pub mod mcp;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhooks;
