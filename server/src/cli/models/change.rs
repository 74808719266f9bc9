//! `factory models add` and `factory models remove`: the same checked, recorded change as the
//! dashboard's Settings editors, made on the data directory (the event in its database, a
//! typed key in its secrets file). A `factory serve` on the same directory puts it in force
//! within its settings watcher's tick, without a restart.

use std::io::BufRead;
use std::path::Path;

use clap::Args;

use app::server_fns::settings::{KeyText, ProviderInput, Saved};

use super::super::{Exit, UsageError};
use crate::config::{EnvSnapshot, FactoryConfig};
use crate::gateway::Gateway;
use crate::gateway::settings::{self, SettingsError};
use crate::store::Store;

/// Who a change made with the CLI is recorded as.
const CHANGED_BY: &str = "cli";

/// `factory models add NAME …`.
#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// The provider's name: 1 to 32 lowercase letters, digits and `-`.
    pub name: String,
    /// The wire format it speaks.
    #[arg(long, value_parser = ["openai", "anthropic", "ollama"])]
    pub kind: String,
    /// The model its chains use and `models test` calls (`auto`: the first the server lists).
    #[arg(long)]
    pub model: String,
    /// The server's address (default: the kind's own service, or Ollama on localhost).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Read the key from standard input (one line); it is kept in the data directory's
    /// secrets file (mode 0600), never in the event log.
    #[arg(long, conflicts_with = "key_env")]
    pub key_stdin: bool,
    /// Read the key from this environment variable when Factory runs (its name is recorded,
    /// not its value).
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// Make this model the whole chain of every chat alias (factory/architect, factory/coder,
    /// factory/fast, factory/cheap).
    #[arg(long, conflicts_with = "aliases")]
    pub every_alias: bool,
    /// Make this model the chain of this alias (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// Also make local/embed this embedding model (openai and ollama).
    #[arg(long, value_name = "MODEL")]
    pub embed_model: Option<String>,
    /// Replace a provider of that name instead of refusing it (a key left out stays).
    #[arg(long)]
    pub replace: bool,
}

/// The gateway in force on `data_dir` (no ledger: nothing is spent) and the store to record in.
async fn settled(config_file: Option<&Path>, data_dir: &Path) -> anyhow::Result<(Gateway, Store)> {
    let config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())
        .map_err(|e| UsageError(e.to_string()))?;
    let store = super::super::open_store(data_dir).await?;
    let gateway = Gateway::new(config.gateway);
    settings::replay(&gateway, &store).await?;
    Ok((gateway, store))
}

/// The key typed on standard input (its first line).
fn key_from_stdin() -> anyhow::Result<KeyText> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let key = line.trim().to_string();
    if key.is_empty() {
        return Err(UsageError("--key-stdin: standard input held no key".into()).into());
    }
    Ok(KeyText(key))
}

pub(in crate::cli) async fn add(
    config_file: Option<&Path>,
    data_dir: &Path,
    args: AddArgs,
) -> anyhow::Result<Exit> {
    let api_key = if args.key_stdin {
        Some(key_from_stdin()?)
    } else {
        None
    };
    let (gateway, store) = settled(config_file, data_dir).await?;
    let input = ProviderInput {
        name: args.name.clone(),
        kind: args.kind,
        base_url: args.base_url,
        model: args.model,
        api_key,
        api_key_env: args.key_env,
        every_alias: args.every_alias,
        aliases: args.aliases,
        embed_model: args.embed_model,
    };
    let saved = settings::save_provider(&gateway, &store, input, !args.replace, CHANGED_BY).await;
    let verb = if args.replace { "replaced" } else { "added" };
    done(&gateway, &args.name, verb, saved).await
}

pub(in crate::cli) async fn remove(
    config_file: Option<&Path>,
    data_dir: &Path,
    name: &str,
) -> anyhow::Result<Exit> {
    let (gateway, store) = settled(config_file, data_dir).await?;
    let saved = settings::remove_provider(&gateway, &store, name, CHANGED_BY).await;
    done(&gateway, name, "removed", saved).await
}

/// Prints what was recorded and the chains now in force, or the refusal (exit 2 for bad input).
async fn done(
    gateway: &Gateway,
    name: &str,
    verb: &str,
    saved: Result<Saved, SettingsError>,
) -> anyhow::Result<Exit> {
    match saved {
        Ok(saved) => {
            println!(
                "provider `{name}` {verb}: recorded as event #{} (settings_changed by {}).",
                saved.event_seq, saved.changed_by
            );
            let in_force = settings::in_force(gateway).await;
            if let Some(p) = in_force.config.providers.get(name) {
                println!(
                    "  {} {} — {}",
                    p.kind.label(),
                    p.base_url.as_deref().unwrap_or("(default address)"),
                    in_force.models.key_status(name).describe()
                );
            }
            println!("chains in force:");
            for (alias, chain) in &in_force.config.aliases {
                println!("  {alias:<18} {}", chain.join(" → "));
            }
            println!(
                "A running `factory serve` on this data directory applies it within a few seconds."
            );
            Ok(Exit::Success)
        }
        Err(SettingsError::Invalid(message) | SettingsError::Unknown(message)) => {
            Err(UsageError(message).into())
        }
        Err(SettingsError::Secrets(e)) => Err(e.into()),
        Err(SettingsError::Store(e)) => Err(e.into()),
    }
}
