//! `factory project add|list`.

use std::path::Path;

use super::{Exit, UsageError};
use crate::delivery::project::{NewProject, validate};

pub(super) async fn add(data_dir: &Path, new: NewProject) -> anyhow::Result<Exit> {
    let project =
        validate(&new, &crate::store::now_rfc3339()).map_err(|e| UsageError(e.to_string()))?;
    let store = super::open_store(data_dir).await?;
    if let Err(message) = store.add_project(project.clone(), "cli").await? {
        return Err(UsageError(message).into());
    }
    println!("registered project `{}` at {}", project.name, project.path);
    Ok(Exit::Success)
}

pub(super) async fn list(data_dir: &Path) -> anyhow::Result<Exit> {
    let store = super::open_store(data_dir).await?;
    let projects = store.list_projects().await?;
    if projects.is_empty() {
        println!("no projects: `factory project add PATH` registers one");
    }
    for p in projects {
        println!(
            "{:<20} {}{}{}{}",
            p.name,
            p.path,
            p.remote
                .as_deref()
                .map(|r| format!("  remote {r}"))
                .unwrap_or_default(),
            p.github
                .as_deref()
                .map(|g| format!("  github {g}"))
                .unwrap_or_default(),
            if p.gates.is_empty() {
                String::new()
            } else {
                format!("  gates: {}", p.gates.join(" && "))
            }
        );
    }
    Ok(Exit::Success)
}
