//! Integration tests: a real server on a loopback port, a real SQLite file, real clients.

mod anthropic;
mod approvals;
mod auth;
mod cli;
mod costs_page;
mod crash;
mod dashboard;
mod delivery;
mod engine;
mod gateway;
mod grounded;
mod ledger;
mod memory;
mod ollama;
mod progress;
mod projects;
mod resume;
mod runs;
mod security;
mod server_fns;
mod settings;
mod store;
mod streaming;
mod support;
mod tools;
mod ws;
