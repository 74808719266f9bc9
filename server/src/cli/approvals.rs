//! `factory approvals list|decide`.

use std::path::Path;

use super::{Exit, UsageError};
use app::approval::ApprovalStatus;

use crate::engine::{EngineError, record_decision};

pub(super) async fn list(data_dir: &Path, status: &str, run: Option<&str>) -> anyhow::Result<Exit> {
    let filter = match status {
        "all" => None,
        other => Some(ApprovalStatus::parse(other).ok_or_else(|| {
            UsageError(format!(
                "--status must be pending, decided or all, not `{other}`"
            ))
        })?),
    };
    let store = super::open_store(data_dir).await?;
    let approvals = store.list_approvals(filter, run, 1000).await?;
    if approvals.is_empty() {
        println!(
            "no {} approvals",
            filter.map_or("recorded", ApprovalStatus::as_str)
        );
    }
    for a in approvals {
        println!(
            "{}  {:<13} run {}  {}",
            a.id,
            a.kind.as_str(),
            a.run_id,
            a.status
        );
        println!("  {}", a.question);
        match &a.decision {
            Some(d) => println!(
                "  decided: {} by {}{}{}",
                d.option,
                d.decided_by,
                d.text
                    .as_deref()
                    .map(|t| format!(" — {t}"))
                    .unwrap_or_default(),
                d.policy
                    .as_deref()
                    .map(|p| format!(" (policy: {p})"))
                    .unwrap_or_default()
            ),
            None => {
                for o in &a.options {
                    let text = if o.needs_text { " --text \"…\"" } else { "" };
                    println!(
                        "  factory approvals decide {} {}{text}   # {}",
                        a.id, o.id, o.label
                    );
                }
            }
        }
    }
    Ok(Exit::Success)
}

pub(super) async fn decide(
    data_dir: &Path,
    id: &str,
    option: &str,
    text: Option<String>,
) -> anyhow::Result<Exit> {
    let store = super::open_store(data_dir).await?;
    match record_decision(&store, id, option, text, "cli").await {
        Ok(run_id) => {
            println!(
                "decided {id}: {option}. Run {run_id} continues in a running `factory serve` on \
                 this data directory (within seconds), or when one starts."
            );
            Ok(Exit::Success)
        }
        Err(e @ (EngineError::UnknownApproval(_) | EngineError::BadDecision(_))) => {
            Err(UsageError(e.to_string()).into())
        }
        Err(EngineError::Store(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("factory: {e}");
            Ok(Exit::Failure)
        }
    }
}
