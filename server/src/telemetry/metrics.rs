//! Prometheus metrics: one process-wide registry, counted where things happen (model calls,
//! stages, sandbox commands, event appends, WebSocket clients, the gateway's queue) and, for
//! what the store already knows (runs by status, approvals waiting) or the gateway holds
//! (breaker states), read at scrape time. Served in the OpenMetrics text format at `/metrics`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type One = [(&'static str, String); 1];
type Two = [(&'static str, String); 2];
type Three = [(&'static str, String); 3];
type Timings = Family<Two, Histogram, fn() -> Histogram>;

/// Every metric Factory exposes.
pub struct Metrics {
    registry: Registry,
    /// Runs by status (read from the store at scrape time).
    pub runs: Family<One, Gauge>,
    /// Approvals waiting for a person (read at scrape time).
    pub approvals_waiting: Gauge,
    /// Seconds per stage attempt, by team and how it ended.
    pub stage_seconds: Timings,
    /// Seconds per model call (the whole fallback chain), by model and outcome.
    pub model_call_seconds: Timings,
    /// Tokens by model, team and direction (`input` / `output`).
    pub tokens: Family<Three, Counter>,
    /// US dollars by model and team.
    pub cost_usd: Family<Two, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Model calls waiting for a concurrency slot in the gateway.
    pub gateway_queue: Gauge,
    /// Each endpoint's circuit breaker: 0 closed, 1 half-open, 2 open (read at scrape time).
    pub breaker_state: Family<One, Gauge>,
    /// Sandboxed commands by sandbox (`bubblewrap`, `docker`, …) and outcome.
    pub sandbox_runs: Family<Two, Counter>,
    /// Seconds to append (commit) events to the store.
    pub event_append_seconds: Histogram,
    /// Open WebSocket connections.
    pub websocket_clients: Gauge,
}

fn seconds() -> Histogram {
    // 1 ms to about 9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.5, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("factory");
        let m = Metrics {
            runs: Family::default(),
            approvals_waiting: Gauge::default(),
            stage_seconds: Family::new_with_constructor(seconds),
            model_call_seconds: Family::new_with_constructor(seconds),
            tokens: Family::default(),
            cost_usd: Family::default(),
            gateway_queue: Gauge::default(),
            breaker_state: Family::default(),
            sandbox_runs: Family::default(),
            event_append_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            websocket_clients: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("runs", "Runs by status", m.runs.clone());
        r.register(
            "approvals_waiting",
            "Approvals waiting for a person",
            m.approvals_waiting.clone(),
        );
        r.register(
            "stage_duration_seconds",
            "Seconds per stage attempt, by team and outcome",
            m.stage_seconds.clone(),
        );
        r.register(
            "model_call_duration_seconds",
            "Seconds per model call (its whole fallback chain), by model and outcome",
            m.model_call_seconds.clone(),
        );
        r.register(
            "model_tokens",
            "Tokens by model, team and direction",
            m.tokens.clone(),
        );
        r.register(
            "model_cost_usd",
            "US dollars spent by model and team",
            m.cost_usd.clone(),
        );
        r.register(
            "gateway_queue_depth",
            "Model calls waiting for a concurrency slot",
            m.gateway_queue.clone(),
        );
        r.register(
            "gateway_breaker_state",
            "Circuit breaker per provider: 0 closed, 1 half-open, 2 open",
            m.breaker_state.clone(),
        );
        r.register(
            "sandbox_runs",
            "Sandboxed commands by sandbox and outcome",
            m.sandbox_runs.clone(),
        );
        r.register(
            "event_append_duration_seconds",
            "Seconds to commit events to the store",
            m.event_append_seconds.clone(),
        );
        r.register(
            "websocket_clients",
            "Open WebSocket connections",
            m.websocket_clients.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The exposition (OpenMetrics text, ending with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// A model call ended: its latency by model and outcome.
    pub fn model_call(&self, model: &str, outcome: &str, took: Duration) {
        self.model_call_seconds
            .get_or_create(&[("model", model.into()), ("outcome", outcome.into())])
            .observe(took.as_secs_f64());
    }

    /// What a successful model call spent.
    pub fn spent(&self, model: &str, team: &str, input: u32, output: u32, cost_usd: f64) {
        for (direction, n) in [("input", input), ("output", output)] {
            self.tokens
                .get_or_create(&[
                    ("model", model.into()),
                    ("team", team.into()),
                    ("direction", direction.into()),
                ])
                .inc_by(u64::from(n));
        }
        self.cost_usd
            .get_or_create(&[("model", model.into()), ("team", team.into())])
            .inc_by(cost_usd);
    }

    /// A stage attempt ended.
    pub fn stage(&self, team: &str, outcome: &str, took: Duration) {
        self.stage_seconds
            .get_or_create(&[("team", team.into()), ("outcome", outcome.into())])
            .observe(took.as_secs_f64());
    }

    /// A sandboxed command ended (`outcome`: passed, failed, timed_out or error).
    pub fn sandbox_run(&self, sandbox: &str, outcome: &str) {
        self.sandbox_runs
            .get_or_create(&[("sandbox", sandbox.into()), ("outcome", outcome.into())])
            .inc();
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Holds one count on a gauge (a WebSocket client, a queued call) until dropped.
pub struct Held(&'static Gauge);

impl Held {
    pub fn on(gauge: &'static Gauge) -> Held {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_and_ends_with_eof() {
        let m = Metrics::new();
        m.spent("offline:template", "ba", 10, 5, 0.25);
        m.stage("ba", "complete", Duration::from_millis(3));
        m.sandbox_run("bubblewrap", "passed");
        let text = m.render();
        assert!(
            text.contains(
                "factory_model_tokens_total{model=\"offline:template\",team=\"ba\",direction=\"input\"} 10"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "factory_model_cost_usd_total{model=\"offline:template\",team=\"ba\"} 0.25"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "factory_stage_duration_seconds_count{team=\"ba\",outcome=\"complete\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "factory_sandbox_runs_total{sandbox=\"bubblewrap\",outcome=\"passed\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
