//! `factory project add|list`.

use std::path::Path;

use super::{Exit, UsageError};
use crate::delivery::project::{NewProject, ProjectPolicy, PublishPolicy, SandboxKind, validate};

/// The operator's policy flags of `project add`: what the repository itself may not decide.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The sandbox for the gates (default: docker when the repository names an image and an
    /// engine answers, else bubblewrap). `process` has no isolation at all.
    #[arg(long, value_name = "docker|bubblewrap|process", value_parser = parse_sandbox)]
    sandbox: Option<SandboxKind>,
    /// Accept `--sandbox process`: gates run with no isolation, as the server's user.
    #[arg(long)]
    allow_unsafe_process: bool,
    /// A host directory mounted read-only in the gates' sandbox (repeatable), e.g. a
    /// toolchain outside /usr.
    #[arg(long = "toolchain-mount", value_name = "PATH")]
    toolchain_mounts: Vec<String>,
    /// Let model edits change CI and Factory files (.factory/**, .git*, .github/**, …).
    #[arg(long)]
    allow_ci_edits: bool,
    /// Commit changes even when the project has no gate to verify them (recorded as
    /// unverified); without it a person is asked first.
    #[arg(long)]
    allow_unverified: bool,
    /// When branches are pushed and pull requests opened: after the run's review is approved
    /// (default) or as soon as a work order's gates pass.
    #[arg(long, value_name = "after-review|on-delivery", value_parser = parse_publish)]
    publish: Option<PublishPolicy>,
}

impl PolicyArgs {
    pub fn into_policy(self) -> ProjectPolicy {
        ProjectPolicy {
            sandbox: self.sandbox,
            allow_unsafe_process: self.allow_unsafe_process,
            toolchain_mounts: self.toolchain_mounts,
            allow_ci_edits: self.allow_ci_edits,
            allow_unverified: self.allow_unverified,
            publish: self.publish.unwrap_or_default(),
        }
    }
}

fn parse_sandbox(text: &str) -> Result<SandboxKind, String> {
    match text {
        "docker" => Ok(SandboxKind::Docker),
        "bubblewrap" => Ok(SandboxKind::Bubblewrap),
        "process" => Ok(SandboxKind::Process),
        other => Err(format!("`{other}`: expected docker, bubblewrap or process")),
    }
}

fn parse_publish(text: &str) -> Result<PublishPolicy, String> {
    match text {
        "after-review" => Ok(PublishPolicy::AfterReview),
        "on-delivery" => Ok(PublishPolicy::OnDelivery),
        other => Err(format!("`{other}`: expected after-review or on-delivery")),
    }
}

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
        let policy = &p.policy;
        if policy != &ProjectPolicy::default() {
            println!(
                "{:<20} policy: sandbox {}{}{}{}{}, publish {}",
                "",
                policy.sandbox.map_or("auto", |s| match s {
                    SandboxKind::Docker => "docker",
                    SandboxKind::Bubblewrap => "bubblewrap",
                    SandboxKind::Process => "process (unsafe: no isolation)",
                }),
                if policy.toolchain_mounts.is_empty() {
                    String::new()
                } else {
                    format!(", mounts {}", policy.toolchain_mounts.join(" "))
                },
                if policy.allow_ci_edits {
                    ", CI edits allowed"
                } else {
                    ""
                },
                if policy.allow_unsafe_process {
                    ", unsafe runner allowed"
                } else {
                    ""
                },
                if policy.allow_unverified {
                    ", unverified commits allowed"
                } else {
                    ""
                },
                policy.publish.as_str()
            );
        }
    }
    Ok(Exit::Success)
}
