//! Projects: a user's git repository Factory may deliver into. The validator runs these
//! checks, each failing with its own message: the path exists; it is a git repository
//! with at least one commit; the remote is configured and matches when one is given; the project
//! is active; optionally, the working tree is clean. Per-project settings may also come from
//! `.factory/project.toml` in the repository.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use app::dto::{ProjectPolicy, PublishPolicy, SandboxKind};

/// `.factory/project.toml`: what a repository may say about itself. Only choices that cannot
/// weaken the sandbox: which gates, docker or bubblewrap, an image, and timeouts and output
/// sizes that the operator's maxima clamp. The unsafe runner, host mounts and CI-file edits are
/// the operator's to allow ([`ProjectPolicy`]), never the repository's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// Gate commands (run with `sh -c` in the sandbox), in order.
    #[serde(default)]
    pub gates: Vec<String>,
    /// `docker` or `bubblewrap`; default: docker when an engine answers and an image is named,
    /// else bubblewrap.
    #[serde(default)]
    pub sandbox: Option<SandboxKind>,
    /// Docker image for the gates (must exist locally).
    #[serde(default)]
    pub image: Option<String>,
    /// Seconds a gate may run (clamped to `[engine] gate_timeout_max_secs`).
    #[serde(default)]
    pub gate_timeout_secs: Option<u64>,
    /// Bytes of gate output kept (clamped to `[engine] gate_output_max_bytes`).
    #[serde(default)]
    pub gate_output_bytes: Option<usize>,
}

/// Keys a repository used to be able to set and no longer may: each names where it moved.
const OPERATOR_KEYS: &[(&str, &str)] = &[
    (
        "allow_unsafe_process",
        "the unsafe process runner is the operator's choice: `factory project add --sandbox \
         process --allow-unsafe-process`",
    ),
    (
        "toolchain_mounts",
        "host mounts are the operator's choice: `factory project add --toolchain-mount PATH` or \
         `[engine] toolchain_paths` in factory.toml",
    ),
];

pub use app::dto::Project;

/// What `project add` / `POST /api/projects` asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub path: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub remote: Option<String>,
    #[serde(default)]
    pub github: Option<String>,
    #[serde(default)]
    pub gates: Vec<String>,
    #[serde(default)]
    pub require_clean: bool,
    /// The operator's policy (sandbox, unsafe runner, mounts, CI edits, publishing).
    #[serde(default)]
    pub policy: ProjectPolicy,
}

/// A failed check, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("project check `{check}` failed: {message}")]
pub struct ProjectError {
    pub check: &'static str,
    pub message: String,
}

fn fail(check: &'static str, message: impl Into<String>) -> ProjectError {
    ProjectError {
        check,
        message: message.into(),
    }
}

/// Reads `.factory/project.toml` when the repository has one.
pub fn project_file(root: &Path) -> Result<ProjectFile, ProjectError> {
    let path = root.join(".factory").join("project.toml");
    let text = match super::repo_files::read(
        root,
        &[".factory", "project.toml"],
        super::repo_files::MAX_SETTINGS_BYTES,
    ) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(ProjectFile::default()),
        Err(e) => return Err(fail("settings", e.to_string())),
    };
    let raw: toml::Table = toml::from_str(&text).map_err(|e| {
        fail(
            "settings",
            format!("{} is not valid: {}", path.display(), e.message()),
        )
    })?;
    for (key, moved) in OPERATOR_KEYS {
        if raw.contains_key(*key) {
            return Err(fail(
                "settings",
                format!(
                    "{}: `{key}` is not accepted in a repository's settings; {moved}",
                    path.display()
                ),
            ));
        }
    }
    let file: ProjectFile = toml::from_str(&text).map_err(|e| {
        fail(
            "settings",
            format!("{} is not valid: {}", path.display(), e.message()),
        )
    })?;
    if file.sandbox == Some(SandboxKind::Process) {
        return Err(fail(
            "settings",
            format!(
                "{}: `sandbox = \"process\"` runs gates with no isolation and only the operator \
                 may choose it (`factory project add --sandbox process --allow-unsafe-process`); \
                 a repository may choose docker or bubblewrap",
                path.display()
            ),
        ));
    }
    Ok(file)
}

/// Checks an operator's policy for a project: the unsafe runner needs its explicit opt-in,
/// mounts must be existing absolute paths.
pub fn check_policy(policy: &ProjectPolicy) -> Result<(), ProjectError> {
    for mount in &policy.toolchain_mounts {
        let p = Path::new(mount);
        if !p.is_absolute() || !p.exists() || mount.contains(':') {
            return Err(fail(
                "policy",
                format!("toolchain mount `{mount}` must be an existing absolute path without `:`"),
            ));
        }
    }
    if policy.sandbox == Some(SandboxKind::Process) && !policy.allow_unsafe_process {
        return Err(fail(
            "policy",
            "sandbox `process` runs gates with no isolation; add --allow-unsafe-process \
             (`allow_unsafe_process: true`) to accept that, or use docker or bubblewrap",
        ));
    }
    Ok(())
}

/// Runs the checks on a project to register; returns it with its canonical path and name.
pub fn validate(new: &NewProject, now: &str) -> Result<Project, ProjectError> {
    // 1. The path exists.
    let given = PathBuf::from(new.path.trim());
    if new.path.trim().is_empty() {
        return Err(fail(
            "path",
            "`path` is empty: give the repository's directory",
        ));
    }
    let path = std::fs::canonicalize(&given).map_err(|e| {
        fail(
            "path",
            format!("{} does not exist or cannot be read ({e})", given.display()),
        )
    })?;
    if !path.is_dir() {
        return Err(fail(
            "path",
            format!("{} is not a directory", path.display()),
        ));
    }
    // 2. A git repository with at least one commit.
    let repo = git2::Repository::open(&path).map_err(|_| {
        fail(
            "repository",
            format!(
                "{} is not a git repository (run `git init` and commit first)",
                path.display()
            ),
        )
    })?;
    if repo.is_bare() {
        return Err(fail(
            "repository",
            format!(
                "{} is a bare repository; register a checkout",
                path.display()
            ),
        ));
    }
    if repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .is_none()
    {
        return Err(fail(
            "repository",
            format!(
                "{} has no commit yet: commit something first",
                path.display()
            ),
        ));
    }
    // 3. The remote, when one is given, is configured and matches.
    if let Some(wanted) = new
        .remote
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let remote = repo.find_remote("origin").map_err(|_| {
            fail(
                "remote",
                format!("the repository has no `origin` remote; expected {wanted}"),
            )
        })?;
        let actual = remote.url().unwrap_or_default();
        if actual.trim_end_matches('/').trim_end_matches(".git")
            != wanted.trim_end_matches('/').trim_end_matches(".git")
        {
            return Err(fail(
                "remote",
                format!("`origin` is {actual}, not {wanted}"),
            ));
        }
    }
    // 5. Optionally, a clean working tree.
    if new.require_clean {
        let mut options = git2::StatusOptions::new();
        options.include_untracked(true).include_ignored(false);
        let dirty = repo
            .statuses(Some(&mut options))
            .map_err(|e| fail("clean", e.message().to_string()))?
            .len();
        if dirty > 0 {
            return Err(fail(
                "clean",
                format!("the working tree has {dirty} uncommitted changes"),
            ));
        }
    }
    if let Some(gh) = &new.github {
        let ok = gh.split('/').count() == 2 && gh.split('/').all(|p| !p.is_empty());
        if !ok {
            return Err(fail("github", format!("`{gh}` is not `owner/repo`")));
        }
    }
    for gate in &new.gates {
        if gate.trim().is_empty() {
            return Err(fail("gates", "a gate command is empty"));
        }
    }
    project_file(&path)?;
    check_policy(&new.policy)?;
    let name = new
        .name
        .clone()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "project".into())
        });
    if name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(fail(
            "name",
            format!("`{name}` is not accepted: letters, digits, `-`, `_`, `.`; at most 100"),
        ));
    }
    Ok(Project {
        name,
        path: path.display().to_string(),
        remote: new.remote.clone().filter(|r| !r.trim().is_empty()),
        github: new.github.clone(),
        gates: new.gates.clone(),
        require_clean: new.require_clean,
        active: true,
        created_at: now.to_string(),
        policy: new.policy.clone(),
    })
}

/// 4. The project is active: checked when a run starts, with the repository checks again.
pub fn check_active(project: &Project) -> Result<(), ProjectError> {
    if !project.active {
        return Err(fail(
            "active",
            format!("project `{}` is not active", project.name),
        ));
    }
    let new = NewProject {
        path: project.path.clone(),
        name: Some(project.name.clone()),
        remote: project.remote.clone(),
        github: project.github.clone(),
        gates: project.gates.clone(),
        require_clean: project.require_clean,
        policy: project.policy.clone(),
    };
    validate(&new, &project.created_at).map(|_| ())
}
