//! `factory audit verify` and `factory audit rebuild`.

use std::path::Path;

use super::{Exit, open_store};

pub(super) async fn verify(data_dir: &Path) -> anyhow::Result<Exit> {
    let store = open_store(data_dir).await?;
    let report = store.verify_chain().await?;
    match report.broken {
        None => {
            println!(
                "audit: {} events, chain intact (head #{} {})",
                report.checked, report.head_seq, report.head_hash
            );
            Ok(Exit::Success)
        }
        Some(b) => {
            println!(
                "audit: chain broken at event #{}: {} ({} events checked; last good event #{})",
                b.seq, b.reason, report.checked, report.head_seq
            );
            Ok(Exit::BrokenChain)
        }
    }
}

pub(super) async fn rebuild(data_dir: &Path) -> anyhow::Result<Exit> {
    let store = open_store(data_dir).await?;
    let replayed = store.rebuild_projections().await?;
    println!("audit: projections rebuilt from {replayed} events");
    Ok(Exit::Success)
}
