//! The call path: resolve an alias to its chain, then for each `provider:model` in order ask
//! the circuit breaker, call, retry transient failures with backoff, and fall back to the next
//! entry when retries are used up. Every attempt is recorded in the response's path.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::Instrument;

use app::events::EventData;
use app::ledger::Attribution;

use super::budget::{BudgetError, Budgets, Reached, current_month};
use super::ledger::{Ledger, LedgerError};
use super::providers::anthropic::AnthropicProvider;
use super::providers::offline::OfflineProvider;
use super::providers::ollama::OllamaProvider;
use super::providers::openai::OpenAiProvider;
use super::providers::{Provider, ProviderError, ProviderReply, ProviderRequest, Streaming};
use super::resilience::{CircuitBreaker, Next, next_step};
use super::routing::{RoutingDecision, RoutingInput, route};
use super::tools;
use super::types::{Attempt, Message, ModelRequest, ModelResponse, StreamProgress};
use crate::config::gateway::{
    GatewayConfig, ProviderConfig, ProviderKind, RoutingConfig, split_model,
};
use crate::store::{Store, StoreError};

mod call;
mod models;

use models::Endpoint;
pub use models::{KeyStatus, Models};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "unknown model alias or provider `{target}`: use an alias ({known}) or `provider:model` with a configured provider"
    )]
    UnknownTarget { target: String, known: String },
    #[error("{message}")]
    Permanent { message: String, path: Vec<Attempt> },
    #[error("no model in the chain for `{target}` answered: {}", summarise(.path))]
    Exhausted { target: String, path: Vec<Attempt> },
    #[error("{error}")]
    Budget {
        error: BudgetError,
        path: Vec<Attempt>,
    },
    /// The call was made but its cost could not be recorded: its result is withheld rather
    /// than spent un-costed.
    #[error("the call's cost could not be recorded, so its result is withheld: {0}")]
    Ledger(#[from] LedgerError),
}

impl GatewayError {
    /// The attempts made before the call failed.
    pub fn path(&self) -> &[Attempt] {
        match self {
            GatewayError::UnknownTarget { .. } | GatewayError::Ledger(_) => &[],
            GatewayError::Permanent { path, .. }
            | GatewayError::Exhausted { path, .. }
            | GatewayError::Budget { path, .. } => path,
        }
    }

    /// A short name for the kind of failure (metrics label them by it).
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::UnknownTarget { .. } => "unknown_target",
            GatewayError::Permanent { .. } => "permanent",
            GatewayError::Exhausted { .. } => "exhausted",
            GatewayError::Budget { .. } => "budget",
            GatewayError::Ledger(_) => "ledger",
        }
    }
}

fn summarise(path: &[Attempt]) -> String {
    path.iter()
        .map(|a| format!("{}: {}", a.model, a.outcome))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The model gateway. Cheap to share behind an `Arc`.
pub struct Gateway {
    /// The configuration loaded at start-up (`factory.toml` and defaults): what the
    /// providers and chains set from the dashboard or the CLI are applied over.
    base: Arc<GatewayConfig>,
    /// Providers, aliases, models and their clients in force, swapped whole by a Settings
    /// change. Its `routing` and `budgets` are the start-up values: the ones in force live in
    /// `routing` and `budgets` below.
    models: RwLock<Arc<Models>>,
    /// The router's settings in force, swapped whole by a Settings change.
    routing: RwLock<Arc<RoutingConfig>>,
    /// Serialises Settings changes and remembers where each section's values come from.
    pub(super) settings: super::settings::Provenance,
    /// What the Settings page last found at each Ollama.
    pub(super) ollama_probes: super::settings::OllamaProbes,
    /// Calls in flight across all models (`retry.max_in_flight`).
    in_flight: Semaphore,
    /// Calls in flight per `provider:model` (`max_concurrency`), created on first use.
    per_model: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    budgets: Budgets,
    /// Where calls are recorded; `None` for a gateway without a store (unit tests).
    ledger: Option<Ledger>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field(
                "providers",
                &self.models().endpoints.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Gateway {
    /// Builds a client per configured provider. Keys named by `api_key_env` are read from the
    /// environment here and kept only inside the clients; keys typed into the dashboard or the
    /// CLI come with [`crate::gateway::settings::replay`].
    pub fn new(config: GatewayConfig) -> Gateway {
        let models = Models::build(config.clone(), &Ok(Default::default()), None);
        Gateway {
            routing: RwLock::new(Arc::new(config.routing.clone())),
            settings: super::settings::Provenance::default(),
            ollama_probes: super::settings::OllamaProbes::default(),
            in_flight: Semaphore::new(config.retry.max_in_flight),
            per_model: std::sync::Mutex::new(HashMap::new()),
            budgets: Budgets::new(config.budgets.clone()),
            models: RwLock::new(Arc::new(models)),
            base: Arc::new(config),
            ledger: None,
        }
    }

    /// A gateway that records every call in `store`'s ledger, with the budgets' spending
    /// loaded from it.
    pub async fn with_ledger(config: GatewayConfig, store: Store) -> Result<Gateway, StoreError> {
        let mut gateway = Gateway::new(config);
        let ledger = Ledger::start(store);
        ledger.load_budgets(&gateway.budgets).await?;
        gateway.ledger = Some(ledger);
        Ok(gateway)
    }

    /// The providers, aliases and models in force (a snapshot). Its routing and budgets are
    /// the start-up values: [`Gateway::routing`] and [`Budgets::config`] give the ones in
    /// force, and [`Gateway::live_config`] the whole configuration with them.
    pub fn config(&self) -> Arc<GatewayConfig> {
        self.models().config.clone()
    }

    /// The configuration loaded at start-up (`factory.toml` and defaults), before anything a
    /// person set from the dashboard or the CLI.
    pub fn base_config(&self) -> &GatewayConfig {
        &self.base
    }

    /// The routing settings in force.
    pub fn routing(&self) -> Arc<RoutingConfig> {
        self.routing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the routing settings; the next decision uses them. Only
    /// [`super::settings`] calls this, after validating and recording the change.
    pub(super) fn set_routing(&self, routing: RoutingConfig) {
        *self.routing.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(routing);
    }

    /// The configuration with the routing and budgets in force.
    pub fn live_config(&self) -> GatewayConfig {
        let mut config = (*self.config()).clone();
        config.routing = (*self.routing()).clone();
        config.budgets = self.budgets.config();
        config
    }

    /// The budgets (status for the API, raises from approvals).
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Waits until every ledger event of calls made so far is committed.
    pub async fn flush(&self) {
        if let Some(ledger) = &self.ledger {
            ledger.flush().await;
        }
    }

    /// Records events in the ledger (when there is one); returns once they are committed.
    async fn record(&self, data: Vec<EventData>) -> Result<(), LedgerError> {
        match &self.ledger {
            Some(ledger) => ledger.record_all(data).await,
            None => Ok(()),
        }
    }

    fn reached_events(reached: Vec<Reached>, out: &mut Vec<EventData>) {
        for r in reached {
            tracing::warn!(scope = %r.scope, tier = r.tier.as_str(), spent = r.spent, limit = r.limit, "budget tier reached");
            out.push(EventData::BudgetReached {
                budget: r.scope,
                tier: r.tier,
                spent_usd: r.spent,
                limit_usd: r.limit,
            });
        }
    }

    /// Routes a work order by complexity and records the decision with its inputs.
    pub async fn route(
        &self,
        attribution: &Attribution,
        input: &RoutingInput<'_>,
    ) -> RoutingDecision {
        let decision = route(&self.routing(), input);
        let recorded = self
            .record(vec![EventData::RoutingDecided {
                attribution: attribution.clone(),
                decision: decision.clone(),
            }])
            .await;
        // The decision costs nothing: it is still followed, and the failure is logged.
        if let Err(err) = recorded {
            tracing::error!(%err, "a routing decision was not recorded");
        }
        decision
    }

    /// Embeds `texts` with the first model of the `local/embed` chain that answers. `None` when
    /// no embedding model is reachable (memory recall then uses BM25 alone). Local embedding
    /// models cost nothing; calls are not recorded in the ledger.
    pub async fn embed(&self, texts: &[String]) -> Option<(String, Vec<Vec<f32>>)> {
        let models = self.models();
        let chain = models.config.aliases.get("local/embed")?;
        for entry in chain {
            let (provider, model) = split_model(entry)?;
            let Some(endpoint) = models.endpoints.get(provider) else {
                continue;
            };
            if endpoint.breaker.try_acquire().is_err() {
                continue;
            }
            match endpoint.client.embed(model, texts).await {
                Ok(vectors) => {
                    endpoint.breaker.record_success();
                    return Some((entry.clone(), vectors));
                }
                Err(ProviderError::Unavailable { .. }) => {}
                Err(e) => {
                    endpoint.breaker.record_failure();
                    tracing::warn!(model = %entry, error = %e, "embedding failed; recall uses BM25 alone");
                }
            }
        }
        None
    }

    /// The most a call to `entry` can cost: the prompt (estimated at one token per three
    /// bytes, which over- rather than under-counts for English, code and CJK alike, plus four
    /// per message) and `max_tokens` of output, at the model's price.
    pub fn worst_case_cost(&self, request: &ModelRequest, entry: &str) -> f64 {
        worst_case_cost(&self.config(), request, entry)
    }

    /// The fallback chain for an alias or an explicit `provider:model`.
    pub fn resolve(&self, target: &str) -> Result<Vec<String>, GatewayError> {
        resolve(&self.config(), target)
    }

    /// Sends a request along its chain until a model answers, and records the call in the
    /// ledger (started, then finished or failed). When the ledger cannot commit those events
    /// the call fails with [`GatewayError::Ledger`], whatever the model answered.
    pub async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, GatewayError> {
        let (result, events) = self.complete_deferred(request).await;
        self.record(events).await?;
        result
    }

    /// Like [`Gateway::complete`], but returns the ledger events instead of recording them,
    /// so a caller can commit them together with its own (the engine: one commit per stage).
    pub async fn complete_deferred(
        &self,
        request: &ModelRequest,
    ) -> (Result<ModelResponse, GatewayError>, Vec<EventData>) {
        let mut events = Vec::with_capacity(3);
        let call_id = request
            .call_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        // One snapshot for the whole call: a Settings change reaches the next call, never
        // this one half-way.
        let models = self.models();
        let chain = resolve(&models.config, &request.target);
        let reserved = match &chain {
            Ok(chain) => chain
                .first()
                .map_or(0.0, |entry| worst_case_cost(&models.config, request, entry)),
            Err(_) => 0.0,
        };
        events.push(EventData::ModelCallStarted {
            call_id: call_id.clone(),
            attribution: request.attribution.clone(),
            target: request.target.clone(),
            reserved_usd: reserved,
        });
        let first = chain
            .as_ref()
            .ok()
            .and_then(|c| c.first())
            .map_or(request.target.as_str(), String::as_str);
        let model = split_model(first).map_or(first, |(_, model)| model);
        // A model call as the GenAI semantic conventions name it: the model asked first (the
        // chain's head); who answered and what it spent are added when it ends.
        let span = tracing::info_span!(
            "factory.model_call",
            otel.name = format!("chat {model}"),
            otel.status_code = tracing::field::Empty,
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = tracing::field::Empty,
            gen_ai.request.model = model,
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            factory.cost_usd = tracing::field::Empty,
            factory.target = %request.target,
            factory.team = request.attribution.team.as_deref().unwrap_or(""),
            factory.call_id = %call_id,
        );
        let started = std::time::Instant::now();
        let result = match chain {
            Ok(chain) => {
                self.walk(&models, request, &chain, call_id.clone(), &mut events)
                    .instrument(span.clone())
                    .await
            }
            Err(e) => Err(e),
        };
        observe(&span, request, &result, started.elapsed());
        let result = match result {
            Ok(mut r) => {
                r.path = models.redact_path(std::mem::take(&mut r.path));
                Ok(r)
            }
            Err(e) => Err(models.redact_error(e)),
        };
        let event = match &result {
            Ok(r) => EventData::ModelCallFinished {
                call_id,
                attribution: request.attribution.clone(),
                target: request.target.clone(),
                provider: r.provider.clone(),
                model: r.model.clone(),
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cached_tokens: r.cached_tokens,
                offline: r.offline,
                cost_usd: r.cost_usd,
                latency_ms: r.latency_ms,
                upstream_us: r.upstream_us,
                path: r.path.clone(),
            },
            Err(e) => EventData::ModelCallFailed {
                call_id,
                attribution: request.attribution.clone(),
                target: request.target.clone(),
                error: e.to_string(),
                path: e.path().to_vec(),
            },
        };
        events.push(event);
        (result, events)
    }
}

/// Puts what a model call did on its span and in the metrics.
fn observe(
    span: &tracing::Span,
    request: &ModelRequest,
    result: &Result<ModelResponse, GatewayError>,
    took: std::time::Duration,
) {
    let metrics = &crate::telemetry::metrics::METRICS;
    let team = request.attribution.team.as_deref().unwrap_or("");
    match result {
        Ok(r) => {
            let model = format!("{}:{}", r.provider, r.model);
            span.record("gen_ai.provider.name", r.provider.as_str());
            span.record("gen_ai.response.model", r.model.as_str());
            span.record("gen_ai.usage.input_tokens", i64::from(r.input_tokens));
            span.record("gen_ai.usage.output_tokens", i64::from(r.output_tokens));
            span.record("factory.cost_usd", r.cost_usd);
            metrics.model_call(&model, "ok", took);
            metrics.spent(&model, team, r.input_tokens, r.output_tokens, r.cost_usd);
        }
        Err(e) => {
            span.record("otel.status_code", "ERROR");
            metrics.model_call(&request.target, e.kind(), took);
        }
    }
}

/// The most a call to `entry` can cost: the prompt (estimated at one token per three bytes,
/// which over- rather than under-counts for English, code and CJK alike, plus four per
/// message) and `max_tokens` of output, at the model's price.
fn worst_case_cost(config: &GatewayConfig, request: &ModelRequest, entry: &str) -> f64 {
    let price = config.model(entry);
    if price.input_per_mtok == 0.0 && price.output_per_mtok == 0.0 {
        return 0.0;
    }
    let prompt: usize = request
        .messages
        .iter()
        .map(|m| m.content.len().div_ceil(3) + 4)
        .sum::<usize>()
        + request
            .schema
            .as_ref()
            .map_or(0, |s| s.to_string().len().div_ceil(3));
    (prompt as f64 * price.input_per_mtok + f64::from(request.max_tokens) * price.output_per_mtok)
        / 1_000_000.0
}

/// The fallback chain for an alias or an explicit `provider:model` of `config`.
fn resolve(config: &GatewayConfig, target: &str) -> Result<Vec<String>, GatewayError> {
    if let Some(chain) = config.aliases.get(target) {
        return Ok(chain.clone());
    }
    match split_model(target) {
        Some((provider, _)) if config.providers.contains_key(provider) => {
            Ok(vec![target.to_string()])
        }
        _ => Err(GatewayError::UnknownTarget {
            target: target.to_string(),
            known: config
                .aliases
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
