//! A work order's gates: which sandbox runs them (the operator's policy first, then what the
//! repository may choose), their limits (the repository's wishes clamped to the operator's
//! maxima), and running them with the worktrees' disk budget watched while they run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::Instrument;

use app::dto::GateSummary;

use crate::config::EngineConfig;
use crate::delivery::docker::DockerSandbox;
use crate::delivery::project::{ProjectFile, ProjectPolicy, SandboxKind};
use crate::delivery::sandbox::{Bubblewrap, GateLimits, Process, Sandbox, detect_gates};
use crate::delivery::toolchain::ToolchainView;

/// The bubblewrap sandbox gates and agent commands run in: the operator's toolchain paths,
/// the project's toolchains as `view` shows them, the server's home, data directory and
/// `/run` hidden.
pub(super) fn bubblewrap(
    config: &EngineConfig,
    policy: &ProjectPolicy,
    data_dir: &Path,
    view: ToolchainView,
) -> Bubblewrap {
    let mut hidden = vec![data_dir.to_path_buf()];
    hidden.extend(std::env::var_os("HOME").map(PathBuf::from));
    hidden.push(PathBuf::from("/run"));
    Bubblewrap {
        toolchains: operator_mounts(config, policy)
            .iter()
            .map(PathBuf::from)
            .collect(),
        hidden,
        memory_bytes: config.sandbox_memory_mb.saturating_mul(1024 * 1024),
        tmp_bytes: config.sandbox_tmp_mb.saturating_mul(1024 * 1024),
        view,
        ..Bubblewrap::default()
    }
}

/// The toolchain paths the operator configured, for every project and for this one.
fn operator_mounts(config: &EngineConfig, policy: &ProjectPolicy) -> Vec<String> {
    let mut mounts: Vec<String> = config.toolchain_paths.clone();
    mounts.extend(policy.toolchain_mounts.iter().cloned());
    mounts
}

/// The sandbox for a project's gates, or why none can run them. Bubblewrap shows the
/// project's toolchains as `view` says; a docker image brings its own.
pub(super) async fn choose(
    config: &EngineConfig,
    policy: &ProjectPolicy,
    settings: &ProjectFile,
    data_dir: &Path,
    view: ToolchainView,
) -> Result<Box<dyn Sandbox>, String> {
    let mounts = operator_mounts(config, policy);
    // The operator's choice wins; a repository may only pick between the two sandboxes.
    let kind = policy.sandbox.or(settings.sandbox);
    let docker = |image: &str| {
        let image = image.to_string();
        let mounts = mounts.clone();
        async move {
            match DockerSandbox::connect(&image).await {
                Ok(mut d) => {
                    d.toolchain_mounts = mounts;
                    Ok(Box::new(d) as Box<dyn Sandbox>)
                }
                Err(e) => Err(format!("the docker sandbox is not available: {e}")),
            }
        }
    };
    match (kind, settings.image.as_deref()) {
        (Some(SandboxKind::Process), _) if policy.allow_unsafe_process => Ok(Box::new(Process)),
        (Some(SandboxKind::Process), _) => Err(
            "sandbox `process` has no isolation and needs the operator's explicit opt-in \
             (`factory project add --sandbox process --allow-unsafe-process`)"
                .into(),
        ),
        (Some(SandboxKind::Docker), None) => Err(
            "sandbox = \"docker\" needs `image` in .factory/project.toml (an image that exists \
             locally; Factory never pulls)"
                .into(),
        ),
        (Some(SandboxKind::Docker), Some(image)) => docker(image).await,
        (None, Some(image)) if DockerSandbox::engine_answers().await => docker(image).await,
        (Some(SandboxKind::Bubblewrap) | None, _) => {
            if !Bubblewrap::available().await {
                return Err(
                    "no sandbox is available for the gates: install bubblewrap (`apt-get install \
                     bubblewrap`) or configure a docker image in .factory/project.toml"
                        .into(),
                );
            }
            Ok(Box::new(bubblewrap(config, policy, data_dir, view)))
        }
    }
}

/// A gate's time and output limits: what the repository asks (or the defaults), never more
/// than the operator's maxima.
pub(super) fn limits(config: &EngineConfig, settings: &ProjectFile) -> GateLimits {
    let seconds = settings
        .gate_timeout_secs
        .unwrap_or(600)
        .clamp(1, config.gate_timeout_max_secs);
    let bytes = settings
        .gate_output_bytes
        .unwrap_or(64 * 1024)
        .clamp(1, config.gate_output_max_bytes);
    GateLimits {
        timeout: Duration::from_secs(seconds),
        output_bytes: bytes,
    }
}

/// Where the worktrees' disk budget is checked while a gate runs.
pub(super) struct DiskWatch<'a> {
    pub root: &'a Path,
    pub budget_bytes: u64,
}

/// How often a running gate's disk use is measured.
const DISK_POLL: Duration = Duration::from_millis(500);

/// Runs the project's gates (or the detected ones) in order, stopping at the first failure.
/// Returns what ran and, on a failure, the feedback for the team (with the output's tail). A
/// gate that pushes the worktrees over their disk budget is stopped and fails.
pub(super) async fn run(
    sandbox: &dyn Sandbox,
    worktree: &Path,
    gates: &[String],
    limits: &GateLimits,
    disk: &DiskWatch<'_>,
    suffix: &str,
) -> (Vec<GateSummary>, Option<String>) {
    let commands = if gates.is_empty() {
        let root = worktree.to_path_buf();
        tokio::task::spawn_blocking(move || detect_gates(&root))
            .await
            .unwrap_or_default()
    } else {
        gates.to_vec()
    };
    let mut summaries = Vec::new();
    for command in &commands {
        let span = tracing::info_span!("factory.gate", factory.command = %command);
        let g = match run_one(sandbox, worktree, command, limits, disk)
            .instrument(span)
            .await
        {
            Ok(g) => g,
            Err(why) => return (summaries, Some(format!("gate {why}"))),
        };
        summaries.push(GateSummary {
            command: format!("{}{suffix}", g.command),
            sandbox: g.sandbox.clone(),
            passed: g.passed,
            exit_code: g.exit_code,
            duration_ms: g.duration_ms,
            limits: g.limits.clone(),
        });
        if !g.passed {
            let skip = g.output.chars().count().saturating_sub(4_000);
            let tail: String = g.output.chars().skip(skip).collect();
            let how = match (g.timed_out, g.exit_code) {
                (true, _) => "timed out".to_string(),
                (false, Some(code)) => format!("exit {code}"),
                (false, None) => "killed by a signal".to_string(),
            };
            let failed = format!("gate `{command}` failed ({how}) in {}:\n{tail}", g.sandbox);
            return (summaries, Some(failed));
        }
    }
    (summaries, None)
}

/// Runs one command in the sandbox with the worktrees' disk budget watched. `Err` says why it
/// did not finish (`` `cmd` was stopped: … `` or `` `cmd` could not run: … ``).
pub(super) async fn run_one(
    sandbox: &dyn Sandbox,
    worktree: &Path,
    command: &str,
    limits: &GateLimits,
    disk: &DiskWatch<'_>,
) -> Result<crate::delivery::sandbox::GateResult, String> {
    let span = tracing::info_span!(
        "factory.sandbox",
        factory.sandbox = sandbox.label(),
        factory.command = %command,
        factory.exit_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let ran = run_watched(sandbox, worktree, command, limits, disk)
        .instrument(span.clone())
        .await;
    let outcome = match &ran {
        Ok(g) if g.timed_out => "timed_out",
        Ok(g) if g.passed => "passed",
        Ok(_) => "failed",
        Err(_) => "error",
    };
    if let Ok(Some(code)) = ran.as_ref().map(|g| g.exit_code) {
        span.record("factory.exit_code", code);
    }
    if outcome != "passed" {
        span.record("otel.status_code", "ERROR");
    }
    crate::telemetry::metrics::METRICS.sandbox_run(sandbox.label(), outcome);
    ran
}

/// [`run_one`] without its span and count.
async fn run_watched(
    sandbox: &dyn Sandbox,
    worktree: &Path,
    command: &str,
    limits: &GateLimits,
    disk: &DiskWatch<'_>,
) -> Result<crate::delivery::sandbox::GateResult, String> {
    let ran = tokio::select! {
        ran = sandbox.run(worktree, command, limits) => ran,
        over = over_budget(disk) => {
            return Err(format!(
                "`{command}` was stopped: the worktrees grew to {} MiB, over their budget of \
                 {} MiB ([engine] worktree_disk_budget_mb)",
                over / (1024 * 1024),
                disk.budget_bytes / (1024 * 1024)
            ));
        }
    };
    ran.map_err(|e| format!("`{command}` could not run: {e}"))
}

/// Resolves (with the bytes used) once the worktrees exceed their budget; never otherwise.
async fn over_budget(disk: &DiskWatch<'_>) -> u64 {
    loop {
        tokio::time::sleep(DISK_POLL).await;
        let root = disk.root.to_path_buf();
        let used = tokio::task::spawn_blocking(move || disk_usage(&root))
            .await
            .unwrap_or(0);
        if used > disk.budget_bytes {
            return used;
        }
    }
}

/// Bytes under `dir` (symlinks not followed).
pub(super) fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_cannot_raise_its_limits_past_the_operators() {
        let config = EngineConfig::default();
        let greedy = ProjectFile {
            gate_timeout_secs: Some(u64::MAX),
            gate_output_bytes: Some(usize::MAX),
            ..ProjectFile::default()
        };
        let l = limits(&config, &greedy);
        assert_eq!(l.timeout, Duration::from_secs(config.gate_timeout_max_secs));
        assert_eq!(l.output_bytes, config.gate_output_max_bytes);
        let modest = ProjectFile {
            gate_timeout_secs: Some(30),
            ..ProjectFile::default()
        };
        assert_eq!(limits(&config, &modest).timeout, Duration::from_secs(30));
    }
}
