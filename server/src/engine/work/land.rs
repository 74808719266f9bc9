//! Publishing delivered work orders: their branches pushed to the project's `origin` and pull
//! requests opened. Model output reaches the remote only once a person approved the run's
//! review, unless the operator's policy for the project says at delivery; either way the
//! reason is recorded on the event.

use std::path::{Path, PathBuf};

use app::events::EventData;

use super::super::Engine;
use super::super::state::RunState;
use crate::delivery::publish::{
    GitHub, base_branch, delete_remote_branch, open_pull_request, push,
};
use crate::store::StoreError;

/// Where a project's work orders are published.
pub(super) struct Publisher {
    root: PathBuf,
    github: GitHub,
    /// `owner/repo` for pull requests, from the project's registration.
    github_repo: Option<String>,
    has_remote: bool,
}

/// What publishing one branch did.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Published {
    pub pushed: bool,
    pub pull_request: Option<String>,
}

impl Publisher {
    /// A publisher for the repository at `root`; `github_repo` from its registration.
    pub(super) async fn new(root: &Path, github_repo: Option<String>) -> Publisher {
        let repo = root.to_path_buf();
        let has_remote = tokio::task::spawn_blocking(move || {
            git2::Repository::open(&repo)
                .map(|r| r.find_remote("origin").is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        Publisher {
            root: root.to_path_buf(),
            github: GitHub::from_env(),
            github_repo,
            has_remote,
        }
    }

    /// Pushes `branch` and, when the project names a GitHub repository, opens its pull request
    /// against `base` (a stacked work order's dependency) or the project's own branch (a
    /// refused pull request deletes the pushed branch again). Nothing to do without a remote.
    pub(super) async fn publish(
        &self,
        branch: &str,
        base: Option<&str>,
        title: &str,
        body: &str,
    ) -> Result<Published, String> {
        if !self.has_remote {
            return Ok(Published {
                pushed: false,
                pull_request: None,
            });
        }
        let (root, name, token) = (
            self.root.clone(),
            branch.to_string(),
            self.github.token.clone(),
        );
        tokio::task::spawn_blocking(move || push(&root, &name, token.as_deref()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("push failed: {e}"))?;
        let Some(owner_repo) = &self.github_repo else {
            return Ok(Published {
                pushed: true,
                pull_request: None,
            });
        };
        let root = self.root.clone();
        let base = match base {
            Some(base) => base.to_string(),
            None => tokio::task::spawn_blocking(move || base_branch(&root))
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "main".into()),
        };
        match open_pull_request(&self.github, owner_repo, branch, &base, title, body).await {
            Ok(url) => Ok(Published {
                pushed: true,
                pull_request: Some(url),
            }),
            Err(e) => {
                let (root, name, token) = (
                    self.root.clone(),
                    branch.to_string(),
                    self.github.token.clone(),
                );
                let _ = tokio::task::spawn_blocking(move || {
                    delete_remote_branch(&root, &name, token.as_deref())
                })
                .await;
                Err(format!("the pull request could not be opened: {e}"))
            }
        }
    }
}

/// Publishes every delivered work order of `run` not yet published (after its review was
/// approved). Returns the events (one per work order, failures included) and, when one failed,
/// why: the run then fails with its branches kept locally.
pub(in crate::engine) async fn publish_run(
    engine: &Engine,
    run: &RunState,
    batch: &[EventData],
) -> Result<(Vec<EventData>, Result<(), String>), StoreError> {
    let delivered = run.delivered_with(batch);
    let pending: Vec<_> = delivered.iter().filter(|d| !d.published).collect();
    let Some(root) = run.project.as_deref().map(Path::new) else {
        return Ok((Vec::new(), Ok(())));
    };
    if pending.is_empty() {
        return Ok((Vec::new(), Ok(())));
    }
    let registered = engine
        .store
        .find_project(&root.display().to_string())
        .await?;
    let publisher = Publisher::new(root, registered.and_then(|p| p.github)).await;
    if !publisher.has_remote {
        return Ok((Vec::new(), Ok(())));
    }
    let mut events = Vec::new();
    for order in pending {
        let spec = run
            .completed
            .iter()
            .rev()
            .flat_map(|(_, _, _, r)| r.work_orders.iter())
            .find(|w| w.id == order.work_order_id);
        let short = super::id8(&run.run_id, &order.work_order_id);
        let title = format!("WO-{short}: {}", order.title);
        let (description, risk, checklist) = match spec {
            Some(w) => (
                w.description.clone(),
                format!(
                    "{:?} (measured; declared {:?})",
                    super::assess(w, Some(root)).risk,
                    w.risk
                ),
                w.acceptance_criteria
                    .iter()
                    .map(|c| format!("- [ ] {c}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            None => (String::new(), "unknown".into(), String::new()),
        };
        let body = format!(
            "Work order **{}** ({short}) of Factory run `{}`, approved in the run's review.\n\n\
             {description}\n\n| | |\n|---|---|\n| Risk | {risk} |\n| Model | {} |\n\
             | Cost | ${:.6} |\n| Commit | `{}` |\n\n**Acceptance checklist**\n\n{checklist}\n\n\
             **Files changed:** {}\n",
            order.work_order_id,
            run.run_id,
            order.model,
            order.cost_usd,
            order.commit,
            order.files.join(", ")
        );
        // A work order stacked on exactly one other targets that one's branch.
        let pr_base = match order.stacked_on.as_slice() {
            [one] => delivered
                .iter()
                .find(|d| &d.work_order_id == one)
                .map(|d| d.branch.clone()),
            _ => None,
        };
        let outcome = publisher
            .publish(&order.branch, pr_base.as_deref(), &title, &body)
            .await;
        let (pushed, pull_request, error) = match &outcome {
            Ok(p) => (p.pushed, p.pull_request.clone(), None),
            Err(e) => (false, None, Some(e.clone())),
        };
        events.push(EventData::WorkOrderPublished {
            run_id: run.run_id.clone(),
            work_order_id: order.work_order_id.clone(),
            branch: order.branch.clone(),
            commit: order.commit.clone(),
            pushed,
            pull_request,
            policy: app::dto::PublishPolicy::AfterReview.as_str().into(),
            error: error.clone(),
        });
        if let Some(e) = error {
            return Ok((
                events,
                Err(format!(
                    "work order `{}` could not be published ({e}); its branch {} is kept locally",
                    order.work_order_id, order.branch
                )),
            ));
        }
    }
    Ok((events, Ok(())))
}
