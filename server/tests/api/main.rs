//! Integration tests: a real server on a loopback port, a real SQLite file, real clients.

mod anthropic;
mod auth;
mod cli;
mod crash;
mod gateway;
mod helpers;
mod ledger;
mod ollama;
mod runs;
mod store;
mod ws;
