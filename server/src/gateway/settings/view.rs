//! What Settings shows: aliases with their chains, each provider's status (where its key comes
//! from — at most a stored key's last four characters, never the key — and whether Ollama
//! answers, with its models), and the editable sections with their sources; plus the mapping
//! between the configuration and the shared DTOs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use app::server_fns::settings::{
    AliasChain, BudgetSettings, OllamaStatus, ProviderStatus, RoutingSettings, SettingsView,
    TierLimits,
};

use crate::config::gateway::{
    BudgetConfig, CANONICAL_ALIASES, ProviderConfig, ProviderKind, RoutingConfig, Tiers,
};
use crate::gateway::Gateway;
use crate::gateway::providers::ollama::OllamaProvider;

/// How long an Ollama server may take to list its models (as `factory models` waits).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long what a probe found is shown before Ollama is asked again: the Settings page is
/// rendered again whenever settings change, and must not wait on Ollama every time.
const PROBE_TTL: Duration = Duration::from_secs(30);

/// The last probe of each Ollama URL, with when it was made. Kept by the gateway, so a
/// server's Settings page asks each Ollama at most once per [`PROBE_TTL`].
#[derive(Debug, Default)]
pub struct OllamaProbes(Mutex<HashMap<String, (Instant, OllamaStatus)>>);

impl OllamaProbes {
    /// Whether the Ollama at `url` answers and with which models.
    async fn status(&self, name: &str, url: &str) -> OllamaStatus {
        let cached = self.0.lock().ok().and_then(|probes| {
            probes
                .get(url)
                .filter(|(at, _)| at.elapsed() < PROBE_TTL)
                .map(|(_, status)| status.clone())
        });
        if let Some(status) = cached {
            return status;
        }
        let models = OllamaProvider::new(name, url, PROBE_TIMEOUT).models().await;
        let status = OllamaStatus {
            reachable: models.is_some(),
            models: models.unwrap_or_default(),
        };
        if let Ok(mut probes) = self.0.lock() {
            probes.insert(url.to_string(), (Instant::now(), status.clone()));
        }
        status
    }
}

/// How the offline provider is shown, so nobody mistakes its output for a model's.
pub const OFFLINE_LABEL: &str = "offline (no model): deterministic templates, not an LLM";

/// The settings in force, with every Ollama provider probed (concurrently).
pub async fn view(gateway: &Gateway) -> SettingsView {
    let settings = super::in_force(gateway).await;
    let config = &settings.config;
    let providers = futures::future::join_all(config.providers.iter().map(|(name, p)| {
        let overlay = settings.overlay.providers.get(name);
        let status = ProviderStatus {
            name: name.to_string(),
            kind: kind_name(p.kind).to_string(),
            label: match p.kind {
                ProviderKind::Offline => OFFLINE_LABEL,
                kind => kind.label(),
            }
            .to_string(),
            base_url: p.base_url.clone(),
            api_key_env: p.api_key_env.clone(),
            key_set: settings.models.key_status(name).is_set(),
            key_status: settings.models.key_status(name).describe(),
            ollama: None,
            model: overlay.map(|o| o.model.clone()),
            test_target: super::test_target(config, &settings.overlay, name)
                .filter(|_| p.kind != ProviderKind::Offline),
            overlay: overlay.is_some(),
        };
        with_ollama(&gateway.ollama_probes, p, status)
    }))
    .await;
    SettingsView {
        aliases: config
            .aliases
            .iter()
            .map(|(alias, chain)| AliasChain {
                alias: alias.clone(),
                chain: chain.clone(),
            })
            .collect(),
        providers,
        budgets: budget_settings(&config.budgets),
        budgets_source: settings.budgets,
        routing: routing_settings(&config.routing),
        routing_source: settings.routing,
        providers_source: settings.providers,
        editable_aliases: CANONICAL_ALIASES.iter().map(|a| a.to_string()).collect(),
    }
}

/// For an Ollama provider, whether it answers and with which models.
async fn with_ollama(
    probes: &OllamaProbes,
    p: &ProviderConfig,
    mut status: ProviderStatus,
) -> ProviderStatus {
    if p.kind == ProviderKind::Ollama {
        let url = p.base_url.as_deref().unwrap_or("http://127.0.0.1:11434");
        status.ollama = Some(probes.status(&status.name, url).await);
    }
    status
}

/// The kind as `factory.toml` spells it.
fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Ollama => "ollama",
        ProviderKind::Offline => "offline",
    }
}

fn limits(t: &Tiers) -> TierLimits {
    TierLimits {
        soft: t.soft,
        hard: t.hard,
        emergency: t.emergency,
    }
}

fn tiers(t: &TierLimits) -> Tiers {
    Tiers {
        soft: t.soft,
        hard: t.hard,
        emergency: t.emergency,
    }
}

/// The budgets as the shared DTO.
pub(super) fn budget_settings(b: &BudgetConfig) -> BudgetSettings {
    BudgetSettings {
        month: limits(&b.month),
        run: limits(&b.run),
        team: limits(&b.team),
        project: limits(&b.project),
        teams: b
            .teams
            .iter()
            .map(|(n, t)| (n.clone(), limits(t)))
            .collect(),
        projects: b
            .projects
            .iter()
            .map(|(n, t)| (n.clone(), limits(t)))
            .collect(),
    }
}

/// The budgets a DTO describes (names trimmed).
pub(super) fn budget_config(b: &BudgetSettings) -> BudgetConfig {
    BudgetConfig {
        month: tiers(&b.month),
        run: tiers(&b.run),
        team: tiers(&b.team),
        project: tiers(&b.project),
        teams: b
            .teams
            .iter()
            .map(|(n, t)| (n.trim().to_string(), tiers(t)))
            .collect(),
        projects: b
            .projects
            .iter()
            .map(|(n, t)| (n.trim().to_string(), tiers(t)))
            .collect(),
    }
}

/// The router's editable part as the shared DTO.
pub(super) fn routing_settings(r: &RoutingConfig) -> RoutingSettings {
    RoutingSettings {
        threshold: r.threshold,
        files_cap: r.files_cap,
        cheap_alias: r.cheap_alias.clone(),
        strong_alias: r.strong_alias.clone(),
        hard_stop_keywords: r.hard_stop_keywords.clone(),
    }
}
