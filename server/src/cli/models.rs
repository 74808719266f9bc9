//! `factory models`: the aliases, their resolved fallback chains and the providers behind
//! them, with whether each provider's key is set — never the key itself.

use std::path::Path;

use std::time::Duration;

use super::Exit;
use crate::config::gateway::{GatewayConfig, ProviderKind, split_model};
use crate::config::{ConfigError, EnvSnapshot, FactoryConfig};
use crate::gateway::Gateway;
use crate::gateway::providers::ollama::OllamaProvider;
use crate::gateway::types::{Message, ModelRequest};

/// The configuration file used: `--config`/`FACTORY_CONFIG`, else `factory.toml` in the data
/// directory when it exists, else none (built-in defaults).
pub fn config_path(explicit: Option<&Path>, data_dir: &Path) -> Option<std::path::PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let in_data = data_dir.join("factory.toml");
    in_data.is_file().then_some(in_data)
}

/// The configuration in force: the file's, with the newest change of each section made in the
/// dashboard's Settings applied over it (as `serve` applies them), and where budgets and
/// routing come from. The database is opened only when it exists, and no event is recorded.
async fn in_force(config: GatewayConfig, data_dir: &Path) -> (GatewayConfig, String, String) {
    let from_file = || crate::gateway::settings::FROM_FILE.to_string();
    if !data_dir.join(crate::store::DB_FILE).is_file() {
        return (config, from_file(), from_file());
    }
    let applied = async {
        let store = crate::store::Store::open(data_dir).await?;
        // No ledger: nothing is spent here, so the budgets' spending need not be loaded.
        let gateway = Gateway::new(config.clone());
        crate::gateway::settings::replay(&gateway, &store).await?;
        let (config, budgets, routing) = crate::gateway::settings::in_force(&gateway).await;
        anyhow::Ok((config, budgets.label, routing.label))
    };
    match applied.await {
        Ok(found) => found,
        Err(e) => {
            println!(
                "(the dashboard's settings could not be read from {}: {e})",
                data_dir.display()
            );
            (config, from_file(), from_file())
        }
    }
}

pub(super) async fn list(config_file: Option<&Path>, data_dir: &Path) -> Result<Exit, ConfigError> {
    let config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())?.gateway;
    match config_file {
        Some(path) => println!("configuration: {}", path.display()),
        None => println!("configuration: built-in defaults (no factory.toml)"),
    }
    let (config, budgets_source, routing_source) = in_force(config, data_dir).await;
    println!("\nproviders:");
    for (name, p) in &config.providers {
        let key = match &p.api_key_env {
            Some(var) if std::env::var(var).is_ok_and(|v| !v.trim().is_empty()) => {
                format!("key set ({var})")
            }
            Some(var) => format!("key MISSING: set {var}"),
            None => "no key needed".to_string(),
        };
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
        println!("  {name:<12} {:<20} {url:<34} {status}", p.kind.label());
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

/// `factory models test ALIAS`: one tiny call through the gateway, recorded in the ledger.
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
    let gateway = Gateway::with_ledger(config, store).await?;
    if let Err(e) = gateway.resolve(target) {
        return Err(super::UsageError(e.to_string()).into());
    }
    let mut request = ModelRequest::new(
        target,
        vec![Message::user(
            "This is a connectivity test. Reply with the single word: ready",
        )],
        16,
    );
    request.temperature = Some(0.0);
    let result = gateway.complete(&request).await;
    gateway.flush().await;
    match result {
        Ok(r) => {
            let offline = gateway
                .config()
                .providers
                .get(&r.provider)
                .is_some_and(|p| p.kind == ProviderKind::Offline);
            let who = if offline {
                "offline (no model): deterministic template, not an LLM".to_string()
            } else {
                format!("{}:{}", r.provider, r.model)
            };
            println!("answered by  {who}");
            println!(
                "reply        {}",
                r.text.trim().chars().take(200).collect::<String>()
            );
            println!("latency      {} ms", r.latency_ms);
            println!(
                "tokens       {} in / {} out",
                r.input_tokens, r.output_tokens
            );
            println!("cost         ${:.6}", r.cost_usd);
            println!("path         {}", describe_path(&r.path));
            Ok(Exit::Success)
        }
        Err(e) => {
            eprintln!("factory: {target} did not answer: {e}");
            if !e.path().is_empty() {
                eprintln!("path: {}", describe_path(e.path()));
            }
            Ok(Exit::Failure)
        }
    }
}

fn describe_path(path: &[crate::gateway::types::Attempt]) -> String {
    path.iter()
        .map(|a| format!("{} ({})", a.model, a.outcome))
        .collect::<Vec<_>>()
        .join(" → ")
}
