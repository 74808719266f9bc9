//! Helpers every benchmark shares, included by each with `#[path] mod common;` (a bench is
//! its own crate, and not every bench uses every helper).
#![allow(dead_code)]

use std::time::Duration;

/// The variable `name` as a number, or `default` when it is unset or not a number.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0.0–1.0) of `sorted`, which must be sorted and not empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}
