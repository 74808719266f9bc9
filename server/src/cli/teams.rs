//! `factory teams`: the catalogue, with a project's overrides.

use std::path::Path;

use super::{Exit, UsageError};
use crate::engine::Catalogue;

pub(super) fn list(project: Option<&Path>) -> anyhow::Result<Exit> {
    let catalogue = Catalogue::load(project).map_err(|e| UsageError(e.to_string()))?;
    println!(
        "{:<24} {:<18} {:<12} {:<26} operatives",
        "team", "alias", "kind", "delivers"
    );
    for team in catalogue.teams() {
        let s = &team.settings;
        let delivers = s
            .deliverables
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let kind = format!("{:?}", s.kind).to_lowercase();
        let overridden = if team.overridden.is_empty() {
            String::new()
        } else {
            format!("  (project overrides: {})", team.overridden.join(", "))
        };
        println!(
            "{:<24} {:<18} {:<12} {:<26} {}{overridden}",
            s.name,
            s.alias,
            kind,
            delivers,
            s.operatives.join(", ")
        );
    }
    Ok(Exit::Success)
}
