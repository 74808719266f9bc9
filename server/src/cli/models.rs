//! `factory models`: the aliases, their resolved fallback chains and the providers behind
//! them, with where each provider's key comes from — never the key itself; `models test`;
//! `models add` and `models remove` (in [`change`]).

use std::path::Path;

use std::time::Duration;

mod change;

pub use change::AddArgs;
pub(super) use change::{add, remove};

use super::Exit;
use crate::config::gateway::{GatewayConfig, ProviderKind, split_model};
use crate::config::{ConfigError, EnvSnapshot, FactoryConfig};
use crate::gateway::Gateway;
use crate::gateway::providers::ollama::OllamaProvider;
use crate::gateway::settings;

/// The configuration file used: `--config`/`FACTORY_CONFIG`, else `factory.toml` in the data
/// directory when it exists, else none (built-in defaults).
pub fn config_path(explicit: Option<&Path>, data_dir: &Path) -> Option<std::path::PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let in_data = data_dir.join("factory.toml");
    in_data.is_file().then_some(in_data)
}

/// A gateway (without a ledger: it spends nothing) on the configuration in force: the file's,
/// with the newest change of each section made from the dashboard or the CLI applied over it,
/// as `serve` applies them. The database is opened only when it exists, and nothing is
/// recorded.
async fn settled(config: GatewayConfig, data_dir: &Path) -> Gateway {
    let gateway = Gateway::new(config);
    if !data_dir.join(crate::store::DB_FILE).is_file() {
        return gateway;
    }
    let applied = async {
        let store = crate::store::Store::open(data_dir).await?;
        settings::replay(&gateway, &store).await?;
        anyhow::Ok(())
    };
    if let Err(e) = applied.await {
        println!(
            "(the dashboard's settings could not be read from {}: {e})",
            data_dir.display()
        );
    }
    gateway
}

pub(super) async fn list(config_file: Option<&Path>, data_dir: &Path) -> Result<Exit, ConfigError> {
    let config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())?.gateway;
    match config_file {
        Some(path) => println!("configuration: {}", path.display()),
        None => println!("configuration: built-in defaults (no factory.toml)"),
    }
    let gateway = settled(config, data_dir).await;
    let in_force = settings::in_force(&gateway).await;
    let config = in_force.config;
    let budgets_source = in_force.budgets.label;
    let routing_source = in_force.routing.label;
    println!("\nproviders (from {}):", in_force.providers.label);
    for (name, p) in &config.providers {
        let key = in_force.models.key_status(name).describe();
        let url = p.base_url.as_deref().unwrap_or("-");
        let status = match p.kind {
            ProviderKind::Ollama => {
                let probe = OllamaProvider::new(name, url, Duration::from_secs(2));
                match probe.models().await {
                    Some(models) if models.is_empty() => "found, no models pulled".to_string(),
                    Some(models) => format!("found: {}", models.join(", ")),
                    None => "not found (local fallbacks are skipped)".to_string(),
                }
            }
            _ => key,
        };
        let set_here = if in_force.overlay.providers.contains_key(name) {
            "  [set from the dashboard or the CLI]"
        } else {
            ""
        };
        println!(
            "  {name:<12} {:<20} {url:<34} {status}{set_here}",
            p.kind.label()
        );
    }
    println!("\naliases (tried in order):");
    for (alias, chain) in &config.aliases {
        println!("  {alias}");
        for entry in chain {
            let m = config.model(entry);
            let kind = split_model(entry)
                .and_then(|(p, _)| config.providers.get(p))
                .map(|p| p.kind);
            let price = match kind {
                Some(ProviderKind::Offline) => "offline (no model), $0".to_string(),
                Some(ProviderKind::Ollama) => "local, $0".to_string(),
                _ if config.models.contains_key(entry) => format!(
                    "${:.2} / ${:.2} per 1M tokens in/out, {} at a time",
                    m.input_per_mtok, m.output_per_mtok, m.max_concurrency
                ),
                _ => "no price configured: costed at $0".to_string(),
            };
            println!("    → {entry:<34} {price}");
        }
    }
    let r = &config.routing;
    println!("\nrouting (from {routing_source}):");
    println!(
        "  below complexity {} → {}; otherwise → {} (files cap {})",
        r.threshold, r.cheap_alias, r.strong_alias, r.files_cap
    );
    println!(
        "  hard-stop keywords (always {}): {}",
        r.strong_alias,
        r.hard_stop_keywords.join(", ")
    );
    let b = &config.budgets;
    println!(
        "\nbudgets (USD, from {budgets_source}; soft warns, hard stops paid calls in the scope, emergency stops all):"
    );
    let scopes = [
        ("month", &b.month),
        ("run", &b.run),
        ("every team, monthly", &b.team),
        ("every project, monthly", &b.project),
    ];
    let named = b
        .teams
        .iter()
        .map(|(n, t)| (format!("team {n}, monthly"), t))
        .chain(
            b.projects
                .iter()
                .map(|(n, t)| (format!("project {n}, monthly"), t)),
        );
    for (scope, tiers) in scopes
        .into_iter()
        .map(|(s, t)| (s.to_string(), t))
        .chain(named)
    {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("${v:.2}"));
        println!(
            "  {scope:<28} soft {:<9} hard {:<9} emergency {}",
            show(tiers.soft),
            show(tiers.hard),
            show(tiers.emergency)
        );
    }
    Ok(Exit::Success)
}

/// `factory models test ALIAS`: one tiny call through the gateway, recorded in the ledger, and
/// the capabilities in force for the model that answered.
pub(super) async fn test(
    config_file: Option<&Path>,
    data_dir: &Path,
    target: &str,
) -> anyhow::Result<Exit> {
    let config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())
        .map(|c| c.gateway)
        .and_then(|c| c.check_keys(super::serve::env_is_set).map(|()| c))
        .map_err(|e| super::UsageError(e.to_string()))?;
    let store = super::open_store(data_dir).await?;
    let gateway = Gateway::with_ledger(config, store.clone()).await?;
    // Providers and chains set from the dashboard or the CLI are tested as `serve` uses them.
    settings::replay(&gateway, &store).await?;
    let report = settings::probe(&gateway, target)
        .await
        .map_err(|e| super::UsageError(e.to_string()))?;
    let path = report.path.join(" → ");
    let Some(who) = &report.answered_by else {
        eprintln!(
            "factory: {target} did not answer: {}",
            report.error.as_deref().unwrap_or("no reason given")
        );
        if !path.is_empty() {
            eprintln!("path: {path}");
        }
        return Ok(Exit::Failure);
    };
    println!("answered by  {who}");
    println!(
        "reply        {}",
        report.reply.as_deref().unwrap_or_default()
    );
    println!("latency      {} ms", report.latency_ms);
    println!(
        "tokens       {} in / {} out",
        report.input_tokens, report.output_tokens
    );
    println!("cost         ${:.6}", report.cost_usd);
    println!("path         {path}");
    println!("capabilities");
    for c in &report.capabilities {
        println!("  {:<22} {} ({})", c.name, c.value, c.from);
    }
    Ok(Exit::Success)
}
