//! Where a work order starts (the run's base, or the delivered change of the work orders it
//! depends on: stacked work orders) and the stage's delivery report.

use app::task::{Artifact, TaskResult, TaskStatus, WorkOrderSpec};

use super::{Ctx, Delivered};

/// Where a work order starts: the run's base, or the delivered work orders it depends on.
pub(super) struct Start {
    /// The commit its branch starts from.
    pub base: String,
    /// The branch its pull request targets: the one work order it depends on (`None`: the
    /// project's own branch).
    pub pr_base: Option<String>,
    /// The work orders it is stacked on.
    pub stacked_on: Vec<String>,
}

/// The start of `wo`: the run's base; the delivered commit of the one work order it depends
/// on; or, for several, their commits merged into a throwaway integration commit (a conflict
/// stops the stage, and a person decides).
pub(super) async fn start_of(
    ctx: &Ctx<'_>,
    wo: &WorkOrderSpec,
    delivered: &[Delivered],
) -> Result<Start, String> {
    let deps: Vec<&Delivered> = wo
        .dependencies
        .iter()
        .filter_map(|d| delivered.iter().find(|x| &x.id == d))
        .collect();
    match deps.as_slice() {
        [] => Ok(Start {
            base: ctx.base.to_string(),
            pr_base: None,
            stacked_on: Vec::new(),
        }),
        [one] => Ok(Start {
            base: one.commit.clone(),
            pr_base: Some(one.branch.clone()),
            stacked_on: vec![one.id.clone()],
        }),
        several => {
            let commits: Vec<String> = several.iter().map(|d| d.commit.clone()).collect();
            let root = ctx.root.to_path_buf();
            let merged = ctx
                .git(move || crate::delivery::worktree::integration_commit(&root, &commits))
                .await?
                .map_err(|e| {
                    format!(
                        "work order `{}` depends on {} whose changes do not merge: {e}; a person \
                         must decide how they fit together",
                        wo.id,
                        wo.dependencies.join(", ")
                    )
                })?;
            Ok(Start {
                base: merged,
                pr_base: None,
                stacked_on: several.iter().map(|d| d.id.clone()).collect(),
            })
        }
    }
}

/// Adds the delivery report to an engineering result, or turns it BLOCKED with the reason.
pub(in crate::engine) fn fold_into(
    result: &mut TaskResult,
    delivered: Result<Vec<Delivered>, String>,
) {
    match delivered {
        Ok(list) if list.is_empty() => {}
        Ok(list) => {
            let mut report = String::from(
                "# Delivery\n\n| Work order | Branch | Commit | Files | Pull request |\n\
                 |---|---|---|---|---|\n",
            );
            for d in &list {
                report.push_str(&format!(
                    "| {} {} | `{}` | `{}` | {} | {} |\n",
                    d.id,
                    d.title,
                    d.branch,
                    &d.commit[..d.commit.len().min(12)],
                    d.files.join(", "),
                    d.pull_request.as_deref().unwrap_or("-")
                ));
            }
            result.artifacts.push(Artifact {
                name: "delivery.md".into(),
                content: report,
            });
        }
        Err(reason) => {
            result.status = TaskStatus::Blocked;
            result.blockers = vec![reason];
        }
    }
}
