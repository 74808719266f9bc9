//! `factory run`: one requirement through a pipeline, headless, with live progress. Exit 0 when
//! the run succeeds, 1 when it fails or is canceled, 2 when it waits for a person.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::dto::{RunDetail, RunStatus, StartRunRequest};
use app::events::EventData;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::{Exit, UsageError};
use crate::config::{EnvSnapshot, FactoryConfig, ProviderKind};
use crate::engine::{Engine, StartError};
use crate::gateway::Gateway;

/// What `factory run` was asked.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub requirement: String,
    pub project: Option<PathBuf>,
    pub pipeline: Option<String>,
    pub json: bool,
    pub auto_approve: bool,
}

pub(super) async fn run(
    data_dir: &Path,
    config_file: Option<&Path>,
    args: RunArgs,
) -> anyhow::Result<Exit> {
    let mut config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())
        .and_then(|c| c.gateway.check_keys(super::serve::env_is_set).map(|()| c))
        .map_err(|e| UsageError(e.to_string()))?;
    if args.auto_approve {
        config.approvals.auto_approve = true;
    }
    let store = super::open_store(data_dir).await?;
    store.reserve_wal().await;
    // A project is a registered name, or a directory (relative to here) made absolute.
    let project = match &args.project {
        Some(p) => match store.find_project(&p.display().to_string()).await? {
            Some(registered) => Some(registered.name),
            None => Some(
                std::fs::canonicalize(p)
                    .map_err(|e| UsageError(format!("unknown project {}: {e}", p.display())))?
                    .display()
                    .to_string(),
            ),
        },
        None => None,
    };
    let gateway = Arc::new(Gateway::with_ledger(config.gateway.clone(), store.clone()).await?);
    // What was set from the dashboard or the CLI applies here as it does in `serve`.
    crate::gateway::settings::replay(&gateway, &store).await?;
    let models = gateway.config();
    let offline = models.aliases["factory/coder"]
        .first()
        .and_then(|e| crate::config::gateway::split_model(e))
        .and_then(|(p, _)| models.providers.get(p))
        .is_some_and(|p| p.kind == ProviderKind::Offline || p.kind == ProviderKind::Ollama);
    let shutdown = CancellationToken::new();
    // Webhooks fire here as in `serve`: for every event this process commits.
    let webhooks = crate::webhooks::Webhooks::start(&config.webhooks, &store)
        .map_err(|e| UsageError(e.to_string()))?;
    let engine = Engine::new(
        store.clone(),
        gateway.clone(),
        config.engine.clone(),
        config.approvals.clone(),
        data_dir.to_path_buf(),
        shutdown.clone(),
    );
    let mut events = store.subscribe();
    let mut streams = engine.progress().subscribe();
    let request = StartRunRequest {
        goal: args.requirement.clone(),
        project,
        request_id: None,
        pipeline: args.pipeline.clone(),
    };
    let max_goal_chars = crate::config::Config::new(data_dir.to_path_buf()).max_goal_chars;
    let run_id = match engine.start(request, max_goal_chars, "cli").await {
        Ok((run_id, _)) => run_id,
        Err(StartError::Store(e)) => return Err(e.into()),
        Err(StartError::Task(e)) => return Err(e.into()),
        Err(StartError::EmptyGoal) => {
            return Err(UsageError(
                "the requirement is empty: describe what you want built".into(),
            )
            .into());
        }
        Err(StartError::GoalTooLong { chars, limit }) => {
            return Err(UsageError(format!(
                "the requirement is {chars} characters; the limit is {limit}"
            ))
            .into());
        }
        Err(refused) => return Err(UsageError(refused.to_string()).into()),
    };
    if offline && !args.json {
        eprintln!(
            "note: no cloud model is configured; teams use a local Ollama model when one answers, \
             otherwise the offline provider (deterministic templates, no model)."
        );
    }
    if !args.json {
        eprintln!(
            "run {run_id} started; artifacts go to {}",
            engine.run_dir(&run_id).display()
        );
    }

    let bar = progress_bar(args.json);
    let started = Instant::now();
    let mut stage = String::from("queued");
    let mut cost = 0.0f64;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut waiting: Option<String> = None;
    // What a model is streaming now, shown on the spinner.
    let mut streaming: Option<String> = None;
    let status = loop {
        let first = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                let _ = engine.cancel(&run_id, "cli").await;
                None
            }
            _ = tick.tick() => None,
            Ok(update) = streams.recv() => {
                if update.run_id == run_id {
                    if update.done {
                        streaming = None;
                        line(
                            &bar,
                            args.json,
                            &format!(
                                "`{}`: {} streamed {} tokens",
                                update.stage, update.model, update.output_tokens
                            ),
                        );
                    } else {
                        streaming = Some(update.label());
                    }
                }
                None
            }
            event = events.recv() => match event {
                Ok(event) => Some(event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                Err(_) => break None,
            },
        };
        // A commit's events arrive together: take them all before deciding the run waits.
        let mut batch: Vec<_> = first.into_iter().collect();
        while let Ok(event) = events.try_recv() {
            batch.push(event);
        }
        let mut finished = None;
        for event in batch {
            if event.run_id.as_deref() != Some(run_id.as_str()) {
                continue;
            }
            match &event.data {
                EventData::ApprovalRequested { approval_id, .. } => {
                    waiting = Some(approval_id.clone());
                }
                EventData::ApprovalDecided {
                    approval_id,
                    automatic,
                    policy,
                    option,
                    ..
                } => {
                    if waiting.as_deref() == Some(approval_id.as_str()) {
                        waiting = None;
                    }
                    if *automatic {
                        line(
                            &bar,
                            args.json,
                            &format!(
                                "approved automatically: {option} ({})",
                                policy.as_deref().unwrap_or("policy")
                            ),
                        );
                    }
                }
                EventData::StageStarted {
                    index,
                    stage: name,
                    team,
                    ..
                } => {
                    stage = format!("stage {} `{name}` ({team})", index + 1);
                    line(&bar, args.json, &format!("{stage} started"));
                }
                EventData::StageCompleted {
                    stage: name,
                    status,
                    ..
                } => {
                    line(&bar, args.json, &format!("`{name}` {}", status.as_str()));
                }
                EventData::StageAttemptFailed {
                    stage: name,
                    attempt,
                    error,
                    ..
                } => {
                    line(
                        &bar,
                        args.json,
                        &format!("`{name}` attempt {attempt} failed: {error}"),
                    );
                }
                EventData::ModelCallFinished { cost_usd, .. } => cost += cost_usd,
                EventData::RunFinished { status, .. } => finished = Some(*status),
                _ => {}
            }
        }
        if finished.is_some() {
            break finished;
        }
        // The projection is committed before events are published: it says whether the run
        // really waits (an automatic decision may be on its way in the same commit).
        if waiting.is_some()
            && store
                .get_run(&run_id)
                .await?
                .is_some_and(|r| r.status == RunStatus::WaitingForHuman)
        {
            break Some(RunStatus::WaitingForHuman);
        }
        if let Some(bar) = &bar {
            let doing = streaming.as_ref().unwrap_or(&stage);
            bar.set_message(format!(
                "{doing} · {}s · ${cost:.4}",
                started.elapsed().as_secs()
            ));
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    shutdown.cancel();
    engine.wait_idle().await;
    webhooks.finish(crate::webhooks::DRAIN_GRACE).await;
    crate::delivery::docker::finish_removals(std::time::Duration::from_secs(15)).await;
    gateway.flush().await;

    let detail = store.get_run_detail(&run_id).await?;
    let Some(detail) = detail else {
        anyhow::bail!("run {run_id} disappeared from the store");
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        print_summary(&detail, data_dir, started.elapsed());
        if detail.summary.status == RunStatus::WaitingForHuman {
            for a in store
                .list_approvals(
                    Some(app::approval::ApprovalStatus::Pending),
                    Some(&run_id),
                    10,
                )
                .await?
            {
                println!("  {} approval: {}", a.kind.as_str(), a.question);
                for o in &a.options {
                    let text = if o.needs_text { " --text \"…\"" } else { "" };
                    println!(
                        "    factory approvals decide {} {}{text}   # {}",
                        a.id, o.id, o.label
                    );
                }
            }
            println!(
                "  then a running `factory serve` on this data directory continues the run \
                 (or start one); `factory run --auto-approve` decides plan and review itself"
            );
        }
    }
    Ok(match status.unwrap_or(detail.summary.status) {
        RunStatus::Succeeded => Exit::Success,
        RunStatus::WaitingForHuman => Exit::Usage,
        _ => Exit::Failure,
    })
}

fn progress_bar(json: bool) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// A progress line: above the spinner on a terminal, plain on stderr otherwise.
fn line(bar: &Option<ProgressBar>, json: bool, text: &str) {
    match bar {
        Some(bar) => bar.println(text),
        None if !json => eprintln!("{text}"),
        None => {}
    }
}

fn print_summary(detail: &RunDetail, data_dir: &Path, elapsed: Duration) {
    println!(
        "run {}: {} in {:.1}s, cost ${:.4}",
        detail.summary.id,
        detail.summary.status,
        elapsed.as_secs_f64(),
        detail.cost_usd
    );
    if let Some(reason) = &detail.reason {
        println!("  {reason}");
    }
    for step in &detail.steps {
        println!("  {:<28} {:<22} {}", step.name, step.team, step.status);
    }
    if !detail.artifacts.is_empty() {
        println!("artifacts:");
        for a in &detail.artifacts {
            println!("  {}", data_dir.join(&a.path).display());
        }
    }
    if detail.summary.status == RunStatus::WaitingForHuman {
        println!("the run waits for a person (answer on the dashboard, or):");
    }
}
