//! One attempt of one scenario: a real run in a data directory of its own, on the fixture's
//! repository, with the gym deciding approvals as the scenario says, then its checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::approval::ApprovalStatus;
use app::dto::{RunStatus, StartRunRequest};
use app::events::EventData;
use app::gym::{CheckStatus, GymRecord};
use tokio_util::sync::CancellationToken;

use super::GymError;
use super::checks::{self, CommandRunner, Observed};
use super::fixture;
use super::scenario::{CheckKind, Scenario};
use crate::config::FactoryConfig;
use crate::delivery::project::{NewProject, validate};
use crate::engine::Engine;
use crate::engine::catalogue::Catalogue;
use crate::gateway::Gateway;
use crate::store::Store;

/// How often the gym looks at a run between events (a decision recorded while it was not
/// listening is still seen).
const POLL: Duration = Duration::from_millis(500);

/// One attempt to make.
pub struct Attempt<'a> {
    pub scenario: &'a Scenario,
    pub number: u32,
    /// The attempt's own directory (created).
    pub work: PathBuf,
    pub config: &'a FactoryConfig,
    pub gym_run_id: &'a str,
    pub models: &'a str,
}

/// What an attempt left besides its record: links for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Files {
    /// Artifact names and their paths, relative to the report directory.
    pub artifacts: Vec<(String, String)>,
    /// The delivered change as a patch, relative to the report directory.
    pub diff: Option<String>,
}

/// Makes the attempt. `Err` only when it could not be made at all (the fixture or the store);
/// a run that fails is a record with failed checks.
pub async fn run(a: Attempt<'_>, report_dir: &Path) -> Result<(GymRecord, Files), GymError> {
    let began = Instant::now();
    let s = a.scenario;
    std::fs::create_dir_all(&a.work).map_err(GymError::io(&a.work))?;
    let work = std::fs::canonicalize(&a.work).map_err(GymError::io(&a.work))?;
    let fixture = {
        let (scenario, work) = (s.clone(), work.clone());
        tokio::task::spawn_blocking(move || fixture::prepare(&scenario, &work))
            .await
            .map_err(|e| GymError::Fixture(e.to_string()))??
    };
    let repo = fixture.repo.clone();
    let mut config = a.config.clone();
    if let Some(text) = &s.factory_toml {
        config
            .merge_toml(text, &format!("{} factory_toml", s.source))
            .map_err(|e| GymError::Config(e.to_string()))?;
    }
    // The scenario decides in a person's place; no policy decides for it.
    config.approvals.auto_approve = false;
    config
        .validate()
        .map_err(|e| GymError::Config(e.to_string()))?;
    let catalogue_hash = Catalogue::load(Some(&repo))
        .map_err(|e| GymError::Fixture(format!("the fixture's teams: {e}")))?
        .content_hash();

    let data = work.join("data");
    let store = Store::open(&data).await?;
    let project = validate(
        &NewProject {
            path: repo.display().to_string(),
            name: Some(s.name.clone()),
            remote: None,
            github: None,
            gates: s.gates.clone(),
            require_clean: false,
            policy: app::dto::ProjectPolicy {
                allow_unverified: s.unverified,
                ..Default::default()
            },
        },
        &crate::store::now_rfc3339(),
    )
    .map_err(|e| GymError::Fixture(e.to_string()))?;
    if let Err(message) = store.add_project(project, "gym").await? {
        return Err(GymError::Fixture(message));
    }
    let gateway = Arc::new(Gateway::with_ledger(config.gateway.clone(), store.clone()).await?);
    let shutdown = CancellationToken::new();
    let engine = Engine::new(
        store.clone(),
        gateway.clone(),
        config.engine.clone(),
        config.approvals.clone(),
        data.clone(),
        shutdown.clone(),
    );
    let request = StartRunRequest {
        goal: s.requirement.clone(),
        project: Some(s.name.clone()),
        request_id: None,
        pipeline: s.pipeline.clone(),
    };
    let mut events = store.subscribe();
    let setup_ms = began.elapsed();
    let run_started = Instant::now();
    let max_goal = crate::config::Config::new(data.clone()).max_goal_chars;
    let run_id = match engine.start(request, max_goal, "gym").await {
        Ok((id, _)) => id,
        Err(e) => {
            shutdown.cancel();
            engine.wait_idle().await;
            return Err(GymError::Start(format!("{}: {e}", s.name)));
        }
    };
    let driven = drive(&engine, s, &run_id, &mut events).await?;
    let run_ms = run_started.elapsed().as_millis() as u64;
    let after = Instant::now();
    shutdown.cancel();
    engine.wait_idle().await;
    crate::delivery::docker::finish_removals(Duration::from_secs(15)).await;
    gateway.flush().await;

    let detail = store
        .get_run_detail(&run_id)
        .await?
        .ok_or_else(|| GymError::Start(format!("run {run_id} is not in its store")))?;
    let state = crate::engine::state::RunState::load(&store, &run_id).await?;
    let base = state
        .as_ref()
        .and_then(|r| r.base_commit.clone())
        .unwrap_or_default();
    let mut usage = Usage::default();
    let mut delivered = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = store.run_events(&run_id, after_seq, 1000).await?;
        let Some(last) = page.last() else { break };
        after_seq = last.seq;
        for event in &page {
            match &event.data {
                EventData::ModelCallFinished {
                    input_tokens,
                    output_tokens,
                    cost_usd,
                    offline,
                    ..
                } => usage.add(*input_tokens, *output_tokens, *cost_usd, *offline),
                EventData::WorkOrderDelivered { commit, .. } => delivered.push(commit.clone()),
                _ => {}
            }
        }
    }
    let asked = store.list_approvals(None, Some(&run_id), 1000).await?;
    let approvals: Vec<String> = asked.iter().map(|a| a.kind.as_str().to_string()).collect();
    // A run left waiting says for what: the question no decision of the scenario answered.
    let reason = detail.reason.clone().or_else(|| {
        asked
            .iter()
            .find(|a| a.status == ApprovalStatus::Pending)
            .map(|a| {
                format!(
                    "waits for a person ({} approval): {}",
                    a.kind.as_str(),
                    a.question
                )
            })
    });

    let (result, diff) = {
        let (repo, base, delivered, work) =
            (repo.clone(), base.clone(), delivered.clone(), work.clone());
        tokio::task::spawn_blocking(move || result_and_diff(&repo, &base, &delivered, &work))
            .await
            .map_err(|e| GymError::Fixture(e.to_string()))?
    };
    let needs_sandbox = s.checks.iter().any(|c| {
        matches!(c.what, CheckKind::Command { .. }) && (c.offline || !usage.all_offline())
    });
    let sandbox = if needs_sandbox {
        let commit = result.as_deref().unwrap_or(&base);
        crate::engine::work::sandbox_for(&engine, &run_id, &repo, commit).await
    } else {
        Err("no command check runs".into())
    };
    let runner = CommandRunner {
        sandbox: sandbox
            .as_ref()
            .map(|(s, _)| s.as_ref())
            .map_err(Clone::clone),
        limits: sandbox.as_ref().map(|(_, l)| *l).unwrap_or_default(),
    };
    let artifacts: Vec<(String, PathBuf)> = detail
        .artifacts
        .iter()
        .map(|a| (a.name.clone(), data.join(&a.path)))
        .collect();
    let status = detail.summary.status.as_str();
    let seen = Observed {
        work: &work,
        repo: &repo,
        hidden: &fixture.hidden,
        base: &base,
        result,
        status,
        artifacts: artifacts.clone(),
        approvals,
        offline: usage.all_offline(),
        cost_usd: usage.cost_usd,
        model_calls: usage.calls,
        decisions: driven.decisions,
        stopped: driven.stopped.clone(),
        run_ms,
    };
    let outcomes = checks::evaluate(&s.checks, &s.limits, &seen, &runner).await;
    store.close().await;
    let passed = outcomes.iter().all(|c| c.status != CheckStatus::Failed);
    let overhead_ms = (setup_ms + after.elapsed()).as_millis() as u64;
    let relative = |p: &Path| {
        p.strip_prefix(report_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let files = Files {
        artifacts: artifacts
            .iter()
            .map(|(name, path)| (name.clone(), relative(path)))
            .collect(),
        diff: diff.map(|d| relative(&d)),
    };
    let record = GymRecord {
        gym_run_id: a.gym_run_id.to_string(),
        scenario: s.name.clone(),
        attempt: a.number,
        critical: s.critical,
        passed,
        catalogue_hash,
        pipeline: s.pipeline.clone().unwrap_or_else(|| "default".into()),
        models: a.models.to_string(),
        offline: usage.all_offline(),
        run_status: status.to_string(),
        reason,
        checks: outcomes,
        run_ms,
        overhead_ms,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_usd: usage.cost_usd,
        model_calls: usage.calls,
        human_decisions: driven.decisions,
        run_id,
        dir: work.display().to_string(),
    };
    Ok((record, files))
}

#[derive(Debug, Default)]
struct Usage {
    calls: u32,
    offline_calls: u32,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

impl Usage {
    fn add(&mut self, input: u32, output: u32, cost: f64, offline: bool) {
        self.calls += 1;
        self.offline_calls += u32::from(offline);
        self.input_tokens += u64::from(input);
        self.output_tokens += u64::from(output);
        self.cost_usd += cost;
    }

    fn all_offline(&self) -> bool {
        self.calls > 0 && self.offline_calls == self.calls
    }
}

/// How driving the run went.
struct Driven {
    decisions: u32,
    /// Why the gym stopped the run, when it did.
    stopped: Option<String>,
}

/// Follows the run to its end (or to a wait no decision answers), deciding its approvals as
/// the scenario says; cancels it past the scenario's wall time or decision limit.
async fn drive(
    engine: &Arc<Engine>,
    s: &Scenario,
    run_id: &str,
    events: &mut tokio::sync::broadcast::Receiver<Arc<app::events::Event>>,
) -> Result<Driven, GymError> {
    let store = engine.store();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(s.limits.wall_secs);
    let mut decisions = 0u32;
    loop {
        // Wait for something that may change what to do: an approval, the end, or time.
        let woke = tokio::select! {
            () = tokio::time::sleep_until(deadline) => None,
            () = tokio::time::sleep(POLL) => Some(()),
            event = events.recv() => match event {
                Ok(e) if e.run_id.as_deref() == Some(run_id) => match &e.data {
                    EventData::ApprovalRequested { .. } | EventData::RunFinished { .. } => Some(()),
                    _ => continue,
                },
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(()),
                Err(_) => Some(()),
            },
        };
        if woke.is_none() {
            let _ = engine.cancel(run_id, "gym").await;
            return Ok(Driven {
                decisions,
                stopped: Some(format!(
                    "stopped: the run took longer than {} s",
                    s.limits.wall_secs
                )),
            });
        }
        let status = store.get_run(run_id).await?.map(|r| r.status);
        if status.is_some_and(RunStatus::is_terminal) {
            return Ok(Driven {
                decisions,
                stopped: None,
            });
        }
        let pending = store
            .list_approvals(Some(ApprovalStatus::Pending), Some(run_id), 10)
            .await?;
        let mut undecided = false;
        for approval in pending {
            let Some((option, text)) = s.decisions.for_kind(approval.kind) else {
                undecided = true;
                continue;
            };
            if decisions >= s.decisions.max {
                let _ = engine.cancel(run_id, "gym").await;
                return Ok(Driven {
                    decisions,
                    stopped: Some(format!(
                        "stopped: the run asked for more than {} decisions",
                        s.decisions.max
                    )),
                });
            }
            match engine.decide(&approval.id, &option, text, "gym").await {
                Ok(_) => decisions += 1,
                Err(e) => tracing::warn!(approval = approval.id, %e, "the gym could not decide"),
            }
        }
        // A wait the scenario does not answer ends the attempt (a check may expect it).
        if undecided && status == Some(RunStatus::WaitingForHuman) {
            return Ok(Driven {
                decisions,
                stopped: None,
            });
        }
    }
}

/// The delivered work orders merged into one commit (or why there is none), and the patch
/// from the base to it written to `work/diff.patch`. Read from git's objects only.
fn result_and_diff(
    repo: &Path,
    base: &str,
    delivered: &[String],
    work: &Path,
) -> (Result<String, String>, Option<PathBuf>) {
    if delivered.is_empty() {
        return (Err("no work order was delivered".into()), None);
    }
    let result = crate::delivery::worktree::integration_commit(repo, delivered)
        .map_err(|e| format!("the delivered work orders do not merge: {e}"));
    let Ok(commit) = &result else {
        return (result, None);
    };
    let patch = (|| -> Result<PathBuf, git2::Error> {
        let git = git2::Repository::open(repo)?;
        let old = git.find_commit(git2::Oid::from_str(base)?)?.tree()?;
        let new = git.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
        let diff = git.diff_tree_to_tree(Some(&old), Some(&new), None)?;
        let mut text = Vec::new();
        diff.print(git2::DiffFormat::Patch, |_, _, line| {
            if matches!(line.origin(), '+' | '-' | ' ') {
                text.push(line.origin() as u8);
            }
            text.extend_from_slice(line.content());
            true
        })?;
        let path = work.join("diff.patch");
        std::fs::write(&path, text).map_err(|e| git2::Error::from_str(&e.to_string()))?;
        Ok(path)
    })();
    (result, patch.ok())
}
