//! `factory memory search`: BM25 search over memory items, fused with vector similarity when
//! a local embedding model answers.

use std::path::Path;

use super::{Exit, UsageError};
use crate::config::{EnvSnapshot, FactoryConfig};
use crate::gateway::Gateway;
use crate::store::memory::{MAX_RECALL, RecallScope};

pub(super) async fn search(
    data_dir: &Path,
    config_file: Option<&Path>,
    query: &str,
    bank: Option<String>,
    project: Option<String>,
    limit: u32,
) -> anyhow::Result<Exit> {
    if limit == 0 || limit > MAX_RECALL {
        return Err(UsageError(format!("--limit must be between 1 and {MAX_RECALL}")).into());
    }
    let config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())
        .map_err(|e| UsageError(e.to_string()))?;
    let gateway = Gateway::new(config.gateway);
    let store = super::open_store(data_dir).await?;
    // An embedding model set from the dashboard or the CLI is used here as `serve` uses it.
    crate::gateway::settings::replay(&gateway, &store).await?;
    let banks: Vec<&str> = bank.as_deref().into_iter().collect();
    let scope = RecallScope {
        banks: &banks,
        project: project.as_deref(),
        run_id: None,
        exclude_run: None,
    };
    let hits = crate::engine::memory::recall(&store, &gateway, query, &scope, limit).await?;
    if hits.is_empty() {
        println!("no memory matches {query:?}");
    }
    for hit in hits {
        let text: String = hit.text.chars().take(300).collect();
        println!(
            "{:>6.2}  [{} · {}] {}",
            hit.score,
            hit.bank,
            hit.kind,
            text.replace('\n', " ")
        );
    }
    Ok(Exit::Success)
}
