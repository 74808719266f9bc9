//! What Factory tells the outside about itself: logs (stderr), OpenTelemetry traces (OTLP over
//! HTTP, only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set)
//! and Prometheus metrics ([`metrics`]).
//!
//! A run is one trace whose id is derived from the run id, so the stages of a run driven in
//! several sittings (before and after an approval, across a restart) land in the same trace.
//! Its root span, `factory.run`, is sent when the run ends, with the run's start as its start;
//! stages, model calls (GenAI semantic conventions), clarifications, gates and sandboxed
//! commands are `tracing` spans under it; an approval's wait is sent when it is decided.

pub mod metrics;
mod otlp;

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use sha2::{Digest, Sha256};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The tracer spans are sent with, once traces are on.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Flushes and stops the exporter when dropped (at the end of `main`).
#[must_use = "traces are flushed when this is dropped"]
pub struct Guard(Option<SdkTracerProvider>);

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("tracing", &self.0.is_some())
            .finish()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            // The exporter's requests run on this runtime: block only this worker.
            let stop = || {
                if let Err(e) = provider.shutdown() {
                    eprintln!("factory: traces could not all be sent: {e}");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::task::block_in_place(stop),
                Err(_) => stop(),
            }
        }
    }
}

/// Whether the environment asks for traces.
pub fn traces_wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Sets up logging to stderr (`RUST_LOG` overrides `default_level`; `FACTORY_LOG_FORMAT=json`
/// gives one JSON object per line) and, when the environment asks for them, traces. Must be
/// called inside the Tokio runtime (the exporter sends from it).
pub fn init(default_level: &str) -> Guard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn")));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if std::env::var("FACTORY_LOG_FORMAT").as_deref() == Ok("json") {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let provider = traces_wanted()
        .then(|| otlp::provider(None))
        .and_then(|built| {
            built
                .map_err(|e| eprintln!("factory: traces are off: {e}"))
                .ok()
        });
    let layer = provider.as_ref().map(|provider| {
        let tracer = opentelemetry::trace::TracerProvider::tracer(provider, "factory");
        let _ = TRACER.set(tracer.clone());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(span_filter())
    });
    tracing_subscriber::registry().with(fmt).with(layer).init();
    Guard(provider)
}

/// Which spans are traced: Factory's own, at info and above, whatever the log level.
pub fn span_filter() -> EnvFilter {
    EnvFilter::new("factory_server=info")
}

/// A trace layer for `provider`, for benchmarks and tests that install their own subscriber
/// (`init` is for the binary). Sets the process's tracer on first use.
pub fn layer_for<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let tracer = opentelemetry::trace::TracerProvider::tracer(provider, "factory");
    let _ = TRACER.set(tracer.clone());
    tracing_opentelemetry::layer().with_tracer(tracer)
}

pub use otlp::provider;

/// The trace id of run `run_id`: the first 16 bytes of its SHA-256.
pub fn trace_id(run_id: &str) -> TraceId {
    let digest = Sha256::digest(run_id.as_bytes());
    TraceId::from_bytes(digest[..16].try_into().expect("16 bytes"))
}

/// The span id of the run's root span.
fn root_span_id(run_id: &str) -> SpanId {
    let digest = Sha256::digest(format!("root:{run_id}").as_bytes());
    SpanId::from_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The context a run's spans are children of.
pub fn run_context(run_id: &str) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        trace_id(run_id),
        root_span_id(run_id),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// Whether traces are being sent.
pub fn tracing_on() -> bool {
    TRACER.get().is_some()
}

/// Puts `span` (a root `tracing` span) under run `run_id`'s trace. Nothing when traces are off.
pub fn under_run(span: &tracing::Span, run_id: &str) {
    if TRACER.get().is_some() {
        let _ = span.set_parent(run_context(run_id));
    }
}

/// Sends run `run_id`'s root span, from `started` to now. Nothing when traces are off.
pub fn run_ended(run_id: &str, started: SystemTime, attributes: Vec<KeyValue>) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    NEXT_IDS.with(|ids| ids.set(Some((trace_id(run_id), root_span_id(run_id)))));
    let span = tracer
        .span_builder("factory.run")
        .with_start_time(started)
        .with_attributes(
            [KeyValue::new("factory.run.id", run_id.to_string())]
                .into_iter()
                .chain(attributes),
        )
        .start_with_context(tracer, &Context::new());
    NEXT_IDS.with(|ids| ids.set(None));
    opentelemetry::trace::Span::end(&mut { span });
}

/// Sends a span of run `run_id` that began at `started` and ends now (an approval's wait,
/// which outlives the process that asked). Nothing when traces are off.
pub fn run_span(run_id: &str, name: &'static str, started: SystemTime, attributes: Vec<KeyValue>) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let mut span = tracer
        .span_builder(name)
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(tracer, &run_context(run_id));
    opentelemetry::trace::Span::end(&mut span);
}

thread_local! {
    /// The ids the next span built on this thread gets (a run's root span), if set.
    static NEXT_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Random ids, except for a run's root span, whose ids come from its run id.
#[derive(Debug, Default)]
struct RunIds(RandomIdGenerator);

impl IdGenerator for RunIds {
    fn new_trace_id(&self) -> TraceId {
        match NEXT_IDS.with(Cell::get) {
            Some((trace, _)) => trace,
            None => self.0.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match NEXT_IDS.with(Cell::get) {
            Some((_, span)) => span,
            None => self.0.new_span_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_ids_are_stable_valid_and_its_own() {
        assert_eq!(trace_id("r1"), trace_id("r1"));
        assert_ne!(trace_id("r1"), trace_id("r2"));
        assert_ne!(trace_id("r1"), TraceId::INVALID);
        assert_ne!(root_span_id("r1"), SpanId::INVALID);
        let cx = run_context("r1");
        assert!(cx.span().span_context().is_valid());
        assert_eq!(cx.span().span_context().trace_id(), trace_id("r1"));
    }
}
