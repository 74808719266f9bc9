//! A scenario's checks, evaluated on what one attempt left: its artifacts, the delivered
//! branches (merged into one result, read from git's object database — never a checkout the
//! sandbox touched), the run's status and approvals, and the host around it.

use std::path::{Path, PathBuf};

use app::gym::{CheckOutcome, CheckStatus};

use super::scenario::{Check, CheckKind, Limits};
use crate::delivery::sandbox::{GateLimits, Sandbox};

/// Output kept in a failed check's detail.
const DETAIL_CHARS: usize = 2_000;
/// Bytes of an artifact read for a regex check.
const MAX_ARTIFACT_BYTES: u64 = 4 * 1024 * 1024;
/// Files written out for a command check at most.
const MAX_EXPORTED: usize = 20_000;

/// What an attempt left, for the checks.
pub struct Observed<'a> {
    pub work: &'a Path,
    pub repo: &'a Path,
    pub hidden: &'a Path,
    pub base: &'a str,
    /// The delivered work orders merged into one commit; `Err` says why there is none
    /// (nothing delivered, or their changes conflict).
    pub result: Result<String, String>,
    pub status: &'a str,
    /// Artifact names and their files.
    pub artifacts: Vec<(String, PathBuf)>,
    /// Kinds of the approvals the run asked for.
    pub approvals: Vec<String>,
    /// Every model call was answered by the offline templates.
    pub offline: bool,
    pub cost_usd: f64,
    pub model_calls: u32,
    pub decisions: u32,
    /// The run was stopped at the scenario's wall time, or the gym's decision limit.
    pub stopped: Option<String>,
    pub run_ms: u64,
}

/// Where command checks run: the project's own sandbox and gate limits.
pub struct CommandRunner<'a> {
    pub sandbox: Result<&'a dyn Sandbox, String>,
    pub limits: GateLimits,
}

/// Every check of the scenario, then its limits.
pub async fn evaluate(
    checks: &[Check],
    limits: &Limits,
    seen: &Observed<'_>,
    runner: &CommandRunner<'_>,
) -> Vec<CheckOutcome> {
    let mut out = Vec::with_capacity(checks.len() + 4);
    for (i, check) in checks.iter().enumerate() {
        let (status, detail) = if !check.offline && seen.offline {
            (
                CheckStatus::Skipped,
                "needs a model: every call was answered by the offline templates, which write \
                 no code"
                    .to_string(),
            )
        } else {
            match one(check, i, seen, runner).await {
                Ok(detail) => (CheckStatus::Passed, detail),
                Err(detail) => (CheckStatus::Failed, detail),
            }
        };
        out.push(CheckOutcome {
            name: check.label(),
            kind: check.kind().to_string(),
            status,
            detail: cut(&detail),
        });
    }
    out.extend(limit_checks(limits, seen));
    out
}

fn limit_checks(limits: &Limits, seen: &Observed<'_>) -> Vec<CheckOutcome> {
    let limit = |name: String, ok: bool, detail: String| CheckOutcome {
        name,
        kind: "limit".into(),
        status: if ok {
            CheckStatus::Passed
        } else {
            CheckStatus::Failed
        },
        detail,
    };
    let mut out = vec![limit(
        format!("wall time ≤ {} s", limits.wall_secs),
        seen.stopped.is_none(),
        seen.stopped
            .clone()
            .unwrap_or_else(|| format!("{:.1} s", seen.run_ms as f64 / 1000.0)),
    )];
    if let Some(max) = limits.cost_usd {
        out.push(limit(
            format!("cost ≤ ${max}"),
            seen.cost_usd <= max,
            format!("${:.6}", seen.cost_usd),
        ));
    }
    if let Some(max) = limits.model_calls {
        out.push(limit(
            format!("model calls ≤ {max}"),
            seen.model_calls <= max,
            format!("{} calls", seen.model_calls),
        ));
    }
    if let Some(max) = limits.human_decisions {
        out.push(limit(
            format!("human decisions ≤ {max}"),
            seen.decisions <= max,
            format!("{} decisions", seen.decisions),
        ));
    }
    out
}

async fn one(
    check: &Check,
    index: usize,
    seen: &Observed<'_>,
    runner: &CommandRunner<'_>,
) -> Result<String, String> {
    match &check.what {
        CheckKind::Artifact { artifact, regex } => artifact_matches(seen, artifact, regex),
        CheckKind::File { path, exists } => {
            let commit = delivered(seen, *exists)?;
            let found = with_tree(seen.repo, &commit, |repo, tree| {
                Ok(tree.get_path(Path::new(path)).ok().and_then(|entry| {
                    entry
                        .to_object(repo)
                        .ok()
                        .map(|o| o.kind() == Some(git2::ObjectType::Blob))
                }))
            })?;
            match (found == Some(true), *exists) {
                (true, true) => Ok(format!("{path} is on {}", short(&commit))),
                (false, false) => Ok(format!("{path} is not on {}", short(&commit))),
                (true, false) => Err(format!("{path} is on {}", short(&commit))),
                (false, true) => Err(format!("{path} is not on {}", short(&commit))),
            }
        }
        CheckKind::Signature { path, query } => {
            let commit = delivered(seen, true)?;
            let source = with_tree(seen.repo, &commit, |repo, tree| {
                let entry = tree
                    .get_path(Path::new(path))
                    .map_err(|_| format!("{path} is not on {}", short(&commit)))?;
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(|_| format!("{path} is not a file"))?;
                Ok(blob.content().to_vec())
            })?;
            let matches = query_matches(path, query, &source)?;
            if matches == 0 {
                Err(format!(
                    "the query matches nothing in {path} on {}",
                    short(&commit)
                ))
            } else {
                Ok(format!("{matches} match(es) in {path}"))
            }
        }
        CheckKind::Command { run, hidden, patch } => {
            command(seen, runner, index, run, hidden, patch.as_deref()).await
        }
        CheckKind::Status { status } => {
            if seen.status == status {
                Ok(format!("the run {status}"))
            } else {
                Err(format!("the run ended {}, not {status}", seen.status))
            }
        }
        CheckKind::Approval { approval, asked } => {
            let was = seen.approvals.iter().any(|a| a == approval);
            let asked_for = if seen.approvals.is_empty() {
                "none".to_string()
            } else {
                seen.approvals.join(", ")
            };
            if was == *asked {
                Ok(format!("approvals asked: {asked_for}"))
            } else {
                Err(format!(
                    "a {approval} approval was {}asked (asked: {asked_for})",
                    if was { "" } else { "not " }
                ))
            }
        }
        CheckKind::HostFile { path, exists } => {
            let host = PathBuf::from(path.replace("{work}", &seen.work.display().to_string()));
            let there = std::fs::symlink_metadata(&host).is_ok();
            if there == *exists {
                Ok(format!(
                    "{} {}",
                    host.display(),
                    if there { "exists" } else { "is absent" }
                ))
            } else {
                Err(format!(
                    "{} {}",
                    host.display(),
                    if there {
                        "exists: something outside the sandbox was written"
                    } else {
                        "is absent"
                    }
                ))
            }
        }
    }
}

/// The commit a branch check reads: the delivered result, or — for a check that a file is
/// absent — the base when nothing was delivered.
fn delivered(seen: &Observed<'_>, needs_delivery: bool) -> Result<String, String> {
    match &seen.result {
        Ok(commit) => Ok(commit.clone()),
        Err(_) if !needs_delivery => Ok(seen.base.to_string()),
        Err(why) => Err(why.clone()),
    }
}

fn with_tree<T>(
    repo: &Path,
    commit: &str,
    read: impl FnOnce(&git2::Repository, &git2::Tree<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let git = git2::Repository::open(repo).map_err(|e| e.to_string())?;
    let oid = git2::Oid::from_str(commit).map_err(|e| e.to_string())?;
    let tree = git
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(|e| e.to_string())?;
    read(&git, &tree)
}

fn artifact_matches(seen: &Observed<'_>, glob: &str, regex: &str) -> Result<String, String> {
    let glob = globset::Glob::new(glob)
        .map_err(|e| e.to_string())?
        .compile_matcher();
    let regex = regex::Regex::new(regex).map_err(|e| e.to_string())?;
    let named: Vec<&(String, PathBuf)> = seen
        .artifacts
        .iter()
        .filter(|(name, _)| glob.is_match(name))
        .collect();
    if named.is_empty() {
        let all: Vec<&str> = seen.artifacts.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "no artifact is named like that (the run wrote: {})",
            if all.is_empty() {
                "none".into()
            } else {
                all.join(", ")
            }
        ));
    }
    for (name, path) in &named {
        let text = read_capped(path).map_err(|e| format!("{name}: {e}"))?;
        if let Some(m) = regex.find(&text) {
            return Ok(format!("{name}: `{}`", cut_line(m.as_str())));
        }
    }
    Err(format!(
        "no match in {}",
        named
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_ARTIFACT_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// How many times a tree-sitter query matches in a file of `path`'s language.
pub fn query_matches(path: &str, query: &str, source: &[u8]) -> Result<usize, String> {
    use streaming_iterator::StreamingIterator;
    let lang = crate::engine::repo_map::Lang::from_path(path)
        .ok_or_else(|| format!("{path}: no grammar for this extension"))?;
    let grammar = lang.grammar();
    let query = tree_sitter::Query::new(&grammar, query).map_err(|e| format!("query: {e}"))?;
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&grammar).map_err(|e| e.to_string())?;
    let tree = parser
        .parse(source, None)
        .ok_or_else(|| format!("{path} could not be parsed"))?;
    let mut cursor = tree_sitter::QueryCursor::new();
    let mut matches = cursor.matches(&query, tree.root_node(), source);
    let mut n = 0;
    while matches.next().is_some() {
        n += 1;
    }
    Ok(n)
}

/// Runs `run` on a fresh copy of the delivered result (plus hidden files) in the project's
/// sandbox. The copy is written from git's objects into a directory of its own, so nothing the
/// run's sandboxed commands touched is read or run by the host.
async fn command(
    seen: &Observed<'_>,
    runner: &CommandRunner<'_>,
    index: usize,
    run: &str,
    hidden: &[String],
    patch: Option<&str>,
) -> Result<String, String> {
    let mut commit = delivered(seen, true)?;
    if let Some(patch) = patch {
        commit = patched(seen.repo, &commit, &seen.hidden.join(patch))
            .map_err(|e| format!("the patch {patch} does not apply: {e}"))?;
    }
    let sandbox = runner.sandbox.as_ref().map_err(Clone::clone)?;
    let dir = seen.work.join(format!("check-{}", index + 1));
    let (repo, hidden_dir) = (seen.repo.to_path_buf(), seen.hidden.to_path_buf());
    let hidden = hidden.to_vec();
    let target = dir.clone();
    let commit_id = commit.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        crate::delivery::worktree::export_tree(&repo, &commit_id, &target, MAX_EXPORTED, u64::MAX)
            .map_err(|e| e.to_string())?;
        for h in &hidden {
            let from = hidden_dir.join(h);
            let to = target.join(h);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::copy(&from, &to)
                .map_err(|e| format!("hidden file {h}: {e} ({})", from.display()))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())??;
    let result = sandbox
        .run(&dir, run, &runner.limits)
        .await
        .map_err(|e| format!("the sandbox could not run it: {e}"));
    sandbox.release(&dir).await;
    let result = result?;
    let tail = tail(&result.output);
    if result.passed {
        Ok(format!(
            "passed on {} in {} ({} ms)",
            short(&commit),
            result.sandbox,
            result.duration_ms
        ))
    } else {
        Err(format!(
            "exit {} on {} in {}{}:\n{tail}",
            result
                .exit_code
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
            short(&commit),
            result.sandbox,
            if result.timed_out { " (timed out)" } else { "" }
        ))
    }
}

/// `commit` with the patch at `path` applied, as a commit no ref points at.
fn patched(repo: &Path, commit: &str, path: &Path) -> Result<String, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let git = git2::Repository::open(repo).map_err(|e| e.to_string())?;
    let base = git
        .find_commit(git2::Oid::from_str(commit).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let diff = git2::Diff::from_buffer(&text).map_err(|e| e.to_string())?;
    let mut index = git
        .apply_to_tree(&base.tree().map_err(|e| e.to_string())?, &diff, None)
        .map_err(|e| e.message().to_string())?;
    let tree = git
        .find_tree(index.write_tree_to(&git).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let signature =
        git2::Signature::now("Factory Gym", "gym@factory.localhost").map_err(|e| e.to_string())?;
    let oid = git
        .commit(
            None,
            &signature,
            &signature,
            "hidden patch",
            &tree,
            &[&base],
        )
        .map_err(|e| e.to_string())?;
    Ok(oid.to_string())
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.len().saturating_sub(DETAIL_CHARS);
    chars[start..].iter().collect()
}

fn cut(text: &str) -> String {
    if text.chars().count() <= DETAIL_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(DETAIL_CHARS).collect();
    out.push('…');
    out
}

fn cut_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(120).collect()
}

#[cfg(test)]
mod tests;
