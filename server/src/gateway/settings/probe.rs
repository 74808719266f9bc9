//! A provider's Test, and `factory models test`: one tiny call through the gateway (recorded in
//! the ledger like any other), reported with who answered, latency, tokens, cost, the path, and
//! the capabilities in force for the model — `[models."…"]` values over the family's defaults.

use std::time::Instant;

use app::server_fns::settings::{CapabilityLine, ProviderTest};

use super::overlay::ModelOverlay;
use super::{SettingsError, in_force};
use crate::config::gateway::{
    CANONICAL_ALIASES, GatewayConfig, OFFLINE_MODEL, ProviderKind, split_model,
};
use crate::gateway::types::{Message, ModelRequest};
use crate::gateway::{Gateway, GatewayError};

/// How the offline provider's answer is named, so nobody takes it for a model's.
pub const OFFLINE_ANSWER: &str = "offline (no model): deterministic template, not an LLM";

/// The `provider:model` a provider's Test calls: the model it was added with, else the first
/// chain entry naming it, else `auto`.
pub fn test_target(config: &GatewayConfig, overlay: &ModelOverlay, name: &str) -> Option<String> {
    let p = config.providers.get(name)?;
    if p.kind == ProviderKind::Offline {
        return Some(OFFLINE_MODEL.to_string());
    }
    if let Some(set) = overlay.providers.get(name) {
        return Some(format!("{name}:{}", set.model));
    }
    let in_chain = CANONICAL_ALIASES
        .iter()
        .filter_map(|a| config.aliases.get(*a))
        .chain(config.aliases.values())
        .flatten()
        .find(|e| split_model(e).is_some_and(|(p, _)| p == name));
    Some(in_chain.cloned().unwrap_or_else(|| format!("{name}:auto")))
}

/// Tests provider `name` (its [`test_target`]).
pub async fn test_provider(gateway: &Gateway, name: &str) -> Result<ProviderTest, SettingsError> {
    let settings = in_force(gateway).await;
    let target = test_target(&settings.config, &settings.overlay, name.trim())
        .ok_or_else(|| SettingsError::Unknown(format!("there is no provider `{}`", name.trim())))?;
    probe(gateway, &target)
        .await
        .map_err(|e| SettingsError::Unknown(e.to_string()))
}

/// One tiny call to `target` (an alias or `provider:model`). Fails only for an unknown target;
/// a model that does not answer is a report with its error.
pub async fn probe(gateway: &Gateway, target: &str) -> Result<ProviderTest, GatewayError> {
    let chain = gateway.resolve(target)?;
    let config = gateway.config();
    let mut request = ModelRequest::new(
        target,
        vec![Message::user(
            "This is a connectivity test. Reply with the single word: ready",
        )],
        16,
    );
    request.temperature = Some(0.0);
    let started = Instant::now();
    let result = gateway.complete(&request).await;
    gateway.flush().await;
    let shown = |path: &[crate::gateway::types::Attempt]| {
        path.iter()
            .map(|a| format!("{} ({})", a.model, a.outcome))
            .collect::<Vec<_>>()
    };
    let mut report = ProviderTest {
        target: target.to_string(),
        answered_by: None,
        reply: None,
        error: None,
        latency_ms: started.elapsed().as_millis() as u64,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        path: Vec::new(),
        capabilities: Vec::new(),
    };
    let entry = match &result {
        Ok(r) => {
            report.answered_by = Some(if r.offline {
                OFFLINE_ANSWER.to_string()
            } else {
                format!("{}:{}", r.provider, r.model)
            });
            report.reply = Some(r.text.trim().chars().take(200).collect());
            report.latency_ms = r.latency_ms;
            report.input_tokens = r.input_tokens;
            report.output_tokens = r.output_tokens;
            report.cost_usd = r.cost_usd;
            report.path = shown(&r.path);
            r.path
                .iter()
                .rev()
                .find(|a| a.outcome == "ok")
                .map(|a| a.model.clone())
        }
        Err(e) => {
            report.error = Some(e.to_string());
            report.path = shown(e.path());
            None
        }
    };
    let entry = entry.or_else(|| chain.first().cloned()).unwrap_or_default();
    report.capabilities = capabilities(&config, &entry);
    Ok(report)
}

/// The capabilities in force for `entry`, one line each, with where each value comes from.
pub fn capabilities(config: &GatewayConfig, entry: &str) -> Vec<CapabilityLine> {
    let caps = config.capabilities(entry);
    let set = config.models.get(entry);
    let from = |configured: bool| {
        if configured {
            "factory.toml".to_string()
        } else {
            "family default".to_string()
        }
    };
    let line = |name: &str, value: String, configured: bool| CapabilityLine {
        name: name.to_string(),
        value,
        from: from(configured),
    };
    let yes_no = |b: bool, yes: &str, no: &str| if b { yes } else { no }.to_string();
    vec![
        line(
            "context_window",
            format!("{} tokens", caps.context_window),
            set.is_some_and(|m| m.context_window.is_some()),
        ),
        line(
            "temperature",
            yes_no(
                caps.temperature,
                "sent",
                "not sent (the model takes only its default)",
            ),
            set.is_some_and(|m| m.temperature.is_some()),
        ),
        line(
            "reasoning_effort",
            match (caps.reasoning, caps.reasoning_effort) {
                (false, _) => "not sent (not a reasoning model)".into(),
                (true, None) => "reasoning model; not set (the model's default)".into(),
                (true, Some(effort)) => format!("{} (reasoning model)", effort.as_str()),
            },
            set.is_some_and(|m| m.reasoning_effort.is_some()),
        ),
        line(
            "tools",
            yes_no(
                caps.tools,
                "native tool calling",
                "described in the prompt (no native tool calling)",
            ),
            set.is_some_and(|m| m.tools.is_some()),
        ),
        line(
            "structured_output",
            yes_no(
                caps.structured_output,
                "JSON Schema sent natively",
                "schema written into the prompt, reply parsed leniently",
            ),
            set.is_some_and(|m| m.structured_output.is_some()),
        ),
        line(
            "max_completion_tokens",
            yes_no(
                caps.max_completion_tokens,
                "output limit sent as max_completion_tokens",
                "output limit sent as max_tokens",
            ),
            set.is_some_and(|m| m.max_completion_tokens.is_some()),
        ),
    ]
}
