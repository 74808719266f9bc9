//! Publishing delivered work orders: their branches pushed to the project's `origin` and pull
//! requests opened. Model output reaches the remote only once a person approved the run's
//! review, unless the operator's policy for the project says at delivery; either way the
//! reason is recorded on the event.
//!
//! Publishing is idempotent. A work order delivered again (a revision, a later engineering
//! stage, a resume after a crash) replaces the branch Factory pushed before
//! (force-with-lease: never a commit someone else pushed) and updates its pull request rather
//! than opening a second. Each side effect is its own event, appended the moment it happened
//! (`branch_pushed`, `pull_request_opened`), so a restart knows what the remote holds; a
//! crash between recording and acting is caught by reading the remote (the branch's head, the
//! open pull requests of the branch) before acting again.

use std::path::{Path, PathBuf};

use app::events::EventData;

use super::super::Engine;
use super::super::state::{DeliveredOrder, RunState};
use crate::delivery::publish::{
    GitHub, PublishError, PullRequest, Pushed, base_branch, delete_remote_branch, push,
    upsert_pull_request,
};
use crate::store::{NewEvent, Store, StoreError};

/// Who appends the publishing events.
const ACTOR: &str = "engine";

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

/// One work order's branch to publish.
pub(super) struct Branch<'a> {
    pub run_id: &'a str,
    pub work_order_id: &'a str,
    pub branch: &'a str,
    pub commit: &'a str,
    /// The pull request's base: a stacked work order's dependency; else the project's branch.
    pub base: Option<&'a str>,
    pub title: &'a str,
    pub body: &'a str,
}

/// What Factory recorded of a work order on the remote.
#[derive(Debug, Default)]
struct OnRemote {
    /// The commit it last pushed to the branch.
    pushed: Option<String>,
    /// The number of the branch's pull request.
    pull_request: Option<u64>,
}

/// Reads the run's log for what was pushed and opened for `work_order_id`.
async fn on_remote(
    store: &Store,
    run_id: &str,
    work_order_id: &str,
) -> Result<OnRemote, StoreError> {
    let mut known = OnRemote::default();
    let mut after = 0;
    loop {
        let page = store.run_events(run_id, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in page {
            match event.data {
                EventData::BranchPushed {
                    work_order_id: w,
                    commit,
                    ..
                } if w == work_order_id => known.pushed = Some(commit),
                EventData::PullRequestOpened {
                    work_order_id: w,
                    number,
                    ..
                } if w == work_order_id => known.pull_request = Some(number),
                _ => {}
            }
        }
    }
    Ok(known)
}

async fn record(store: &Store, data: EventData) -> Result<(), String> {
    store
        .append(NewEvent::new(ACTOR, data))
        .await
        .map(|_| ())
        .map_err(|e| format!("recording the publication failed: {e}"))
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

    /// Pushes the branch (replacing only what Factory pushed there before) and, when the
    /// project names a GitHub repository, opens or updates its pull request. A pull request
    /// that cannot be opened deletes a branch this call created. Nothing to do without a
    /// remote. Each side effect is appended to `store` as it happens.
    pub(super) async fn publish(
        &self,
        store: &Store,
        order: &Branch<'_>,
    ) -> Result<Published, String> {
        if !self.has_remote {
            return Ok(Published {
                pushed: false,
                pull_request: None,
            });
        }
        let known = on_remote(store, order.run_id, order.work_order_id)
            .await
            .map_err(|e| e.to_string())?;
        let pushed = self.push(store, order, &known).await?;
        let Some(owner_repo) = &self.github_repo else {
            return Ok(Published {
                pushed: true,
                pull_request: None,
            });
        };
        match self.pull_request(order, owner_repo, &known).await {
            Ok((pr, base)) => {
                record(
                    store,
                    EventData::PullRequestOpened {
                        run_id: order.run_id.to_string(),
                        work_order_id: order.work_order_id.to_string(),
                        branch: order.branch.to_string(),
                        base,
                        number: pr.number,
                        url: pr.url.clone(),
                        updated: pr.updated,
                    },
                )
                .await?;
                Ok(Published {
                    pushed: true,
                    pull_request: Some(pr.url),
                })
            }
            Err(e) => {
                if pushed == Pushed::Created {
                    let (root, name, token) = (
                        self.root.clone(),
                        order.branch.to_string(),
                        self.github.token.clone(),
                    );
                    let _ = tokio::task::spawn_blocking(move || {
                        delete_remote_branch(&root, &name, token.as_deref())
                    })
                    .await;
                }
                Err(format!("the pull request could not be opened: {e}"))
            }
        }
    }

    /// Pushes the branch, replacing only the commit Factory recorded pushing there before, and
    /// records it (once per commit).
    async fn push(
        &self,
        store: &Store,
        order: &Branch<'_>,
        known: &OnRemote,
    ) -> Result<Pushed, String> {
        let (root, name, token, expected) = (
            self.root.clone(),
            order.branch.to_string(),
            self.github.token.clone(),
            known.pushed.clone(),
        );
        let pushed = tokio::task::spawn_blocking(move || {
            push(&root, &name, expected.as_deref(), token.as_deref())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("push failed: {e}"))?;
        let replaced = match &pushed {
            Pushed::Replaced(old) => Some(old.clone()),
            Pushed::Created | Pushed::AlreadyThere => None,
        };
        if known.pushed.as_deref() != Some(order.commit) {
            record(
                store,
                EventData::BranchPushed {
                    run_id: order.run_id.to_string(),
                    work_order_id: order.work_order_id.to_string(),
                    branch: order.branch.to_string(),
                    commit: order.commit.to_string(),
                    replaced,
                },
            )
            .await?;
        }
        Ok(pushed)
    }

    /// Opens the branch's pull request, or updates the one it has, against its base (the
    /// project's branch unless stacked): the pull request and its base.
    async fn pull_request(
        &self,
        order: &Branch<'_>,
        owner_repo: &str,
        known: &OnRemote,
    ) -> Result<(PullRequest, String), PublishError> {
        let root = self.root.clone();
        let base = match order.base {
            Some(base) => base.to_string(),
            None => tokio::task::spawn_blocking(move || base_branch(&root))
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "main".into()),
        };
        let pr = upsert_pull_request(
            &self.github,
            owner_repo,
            order.branch,
            &base,
            order.title,
            order.body,
            known.pull_request,
        )
        .await?;
        Ok((pr, base))
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
        let (title, body) = reviewed(run, order, root);
        // A work order stacked on exactly one other targets that one's branch.
        let pr_base = match order.stacked_on.as_slice() {
            [one] => delivered
                .iter()
                .find(|d| &d.work_order_id == one)
                .map(|d| d.branch.clone()),
            _ => None,
        };
        let outcome = publisher
            .publish(
                &engine.store,
                &Branch {
                    run_id: &run.run_id,
                    work_order_id: &order.work_order_id,
                    branch: &order.branch,
                    commit: &order.commit,
                    base: pr_base.as_deref(),
                    title: &title,
                    body: &body,
                },
            )
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

/// The title and body of a reviewed work order's pull request: its description, measured and
/// declared risk, model and cost, commit, acceptance checklist and files.
fn reviewed(run: &RunState, order: &DeliveredOrder, root: &Path) -> (String, String) {
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
         **Files changed:** {}\n{}",
        order.work_order_id,
        run.run_id,
        order.model,
        order.cost_usd,
        order.commit,
        order.files.join(", "),
        super::unverified::unverified_note(order.unverified.as_deref())
    );
    (title, body)
}
