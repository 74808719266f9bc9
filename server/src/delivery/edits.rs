//! Applying a team's edits to a worktree — and never outside it. A path is refused when it is
//! empty, absolute, has a `..`, `.` or empty component, names anything under `.git`, or passes
//! through a symlink (checked on disk, component by component). Writes are atomic (a temp file
//! in the same directory, then rename). A `replace` whose search text is not found exactly once
//! is refused with the nearest lines of the file, to go back to the model as feedback.

use std::path::{Component, Path, PathBuf};

use app::task::Edit;

/// Bounds on one set of edits.
#[derive(Debug, Clone, Copy)]
pub struct EditLimits {
    /// Largest file written or edited, in bytes.
    pub max_file_bytes: usize,
    /// Most edits in one result.
    pub max_edits: usize,
    /// Edits may change CI and Factory files ([`protected`]); the project's policy decides.
    pub allow_protected: bool,
}

impl Default for EditLimits {
    fn default() -> Self {
        EditLimits {
            max_file_bytes: 1024 * 1024,
            max_edits: 200,
            allow_protected: false,
        }
    }
}

/// Why `path` is a file model edits may not change unless the project's policy allows it:
/// Factory's own settings (`.factory/**`: gates, pipelines, teams), git's (`.gitignore`,
/// `.gitattributes`, `.gitmodules`), and CI definitions, which run later with CI's secrets.
/// `None` for any other path.
pub fn protected(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let first = lower.split('/').next().unwrap_or_default();
    const CI_FILES: &[&str] = &[
        ".gitlab-ci.yml",
        ".travis.yml",
        "jenkinsfile",
        "azure-pipelines.yml",
        "bitbucket-pipelines.yml",
        ".drone.yml",
        "appveyor.yml",
        ".appveyor.yml",
        "cloudbuild.yaml",
        ".envrc",
    ];
    const CI_DIRS: &[&str] = &[
        ".github",
        ".circleci",
        ".buildkite",
        ".gitlab",
        ".woodpecker",
        ".ci",
        ".azure-pipelines",
        ".forgejo",
        ".gitea",
    ];
    if first == ".factory" {
        Some("Factory's settings for the project (.factory/)")
    } else if first.starts_with(".git") && !CI_DIRS.contains(&first) {
        Some("git's own settings (.git*)")
    } else if CI_DIRS.contains(&first) || (lower == first && CI_FILES.contains(&first)) {
        Some("a CI definition")
    } else {
        None
    }
}

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("path `{path}` is refused: {reason}")]
    Path { path: String, reason: String },
    #[error(
        "replace in `{path}`: the search text {found}; the nearest lines are:\n{nearest}\nsearch \
         for text that appears exactly once, copied from the file"
    )]
    Miss {
        path: String,
        found: String,
        nearest: String,
    },
    #[error("`{path}`: {reason}")]
    Target { path: String, reason: String },
    #[error("{0}")]
    Limit(String),
    #[error("`{path}`: {message}")]
    Io { path: String, message: String },
}

fn path_error(path: &str, reason: &str) -> EditError {
    EditError::Path {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks a relative path lexically and returns its components.
fn components(path: &str) -> Result<Vec<String>, EditError> {
    if path.is_empty() {
        return Err(path_error(path, "it is empty"));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(path_error(
            path,
            "NUL bytes and backslashes are not accepted",
        ));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(path_error(
            path,
            "absolute paths are not accepted; give a path relative to the repository root",
        ));
    }
    let mut out = Vec::new();
    for raw in path.split('/') {
        if raw.is_empty() || raw == "." {
            return Err(path_error(path, "empty or `.` components are not accepted"));
        }
        if raw == ".." {
            return Err(path_error(path, "`..` is not accepted"));
        }
        if raw.eq_ignore_ascii_case(".git") {
            return Err(path_error(path, "nothing under `.git` may be edited"));
        }
        out.push(raw.to_string());
    }
    // Belt and braces: the standard library must agree that every component is normal.
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(path_error(path, "only plain relative paths are accepted"));
    }
    Ok(out)
}

/// Resolves `path` under `root`, refusing any existing component that is a symlink (or, for
/// directories, not a directory). `create_dirs` creates missing parent directories.
fn resolve(root: &Path, path: &str, create_dirs: bool) -> Result<PathBuf, EditError> {
    let parts = components(path)?;
    let mut current = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        current.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(path_error(path, "it passes through a symlink"));
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(path_error(path, "a parent of it is a file"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !last && create_dirs {
                    std::fs::create_dir(&current).map_err(|e| EditError::Io {
                        path: path.to_string(),
                        message: e.to_string(),
                    })?;
                }
            }
            Err(e) => {
                return Err(EditError::Io {
                    path: path.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(current)
}

fn io(path: &str) -> impl Fn(std::io::Error) -> EditError + '_ {
    move |e| EditError::Io {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// Writes `content` to `target` atomically: a new temp file with a random name beside it
/// (created exclusively, so a symlink the repository planted at any name is never followed),
/// then renamed over the target. The target keeps its mode; a new file gets 0644.
fn write_atomic(target: &Path, path: &str, content: &[u8]) -> Result<(), EditError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = target.parent().ok_or_else(|| EditError::Io {
        path: path.to_string(),
        message: "it has no parent directory".into(),
    })?;
    let mode = std::fs::symlink_metadata(target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mut tmp = tempfile::Builder::new()
        .prefix(".factory-edit-")
        .tempfile_in(dir)
        .map_err(io(path))?;
    tmp.write_all(content).map_err(io(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    tmp.persist(target).map_err(|e| io(path)(e.error))?;
    Ok(())
}

/// A regular file's text (not a symlink, within the size cap).
fn read_regular(target: &Path, path: &str, limits: &EditLimits) -> Result<String, EditError> {
    let meta = std::fs::symlink_metadata(target).map_err(|e| EditError::Target {
        path: path.to_string(),
        reason: format!("does not exist or cannot be read ({e})"),
    })?;
    if !meta.is_file() {
        return Err(EditError::Target {
            path: path.to_string(),
            reason: "is not a regular file".into(),
        });
    }
    if meta.len() as usize > limits.max_file_bytes {
        return Err(EditError::Limit(format!(
            "`{path}` is {} bytes; files over {} bytes are not edited",
            meta.len(),
            limits.max_file_bytes
        )));
    }
    std::fs::read_to_string(target).map_err(io(path))
}

/// Characters of each line quoted back after a missed `replace` (a minified file's one line
/// could be a megabyte).
const NEAREST_LINE_CHARS: usize = 200;

/// Lines compared with the search text after a missed `replace`: the similarity is quadratic
/// in line length, so a huge file is not scanned whole.
const NEAREST_MAX_LINES: usize = 5_000;

fn clip(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// The three lines of `text` most like the first line of `search`, with line numbers; each
/// line cut to [`NEAREST_LINE_CHARS`], only the first [`NEAREST_MAX_LINES`] lines compared.
fn nearest_lines(text: &str, search: &str) -> String {
    let probe = search
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(search)
        .trim();
    let probe = clip(probe, NEAREST_LINE_CHARS);
    let probe = probe.as_str();
    let mut scored: Vec<(f64, usize, &str)> = text
        .lines()
        .take(NEAREST_MAX_LINES)
        .enumerate()
        .map(|(i, line)| {
            (
                strsim::normalized_levenshtein(&clip(line.trim(), NEAREST_LINE_CHARS), probe),
                i + 1,
                line,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, n, line)| format!("  {n}: {}", clip(line, NEAREST_LINE_CHARS)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Applies `edits` under `root` in order. Returns the paths changed. On an error, earlier edits
/// stay applied: callers work in a disposable worktree and discard it.
pub fn apply(root: &Path, edits: &[Edit], limits: &EditLimits) -> Result<Vec<String>, EditError> {
    if edits.len() > limits.max_edits {
        return Err(EditError::Limit(format!(
            "{} edits; at most {} per result",
            edits.len(),
            limits.max_edits
        )));
    }
    // Refuse bad paths before touching anything.
    for edit in edits {
        let path = match edit {
            Edit::Write { path, .. } | Edit::Replace { path, .. } | Edit::Delete { path } => path,
        };
        components(path)?;
        if let Some(what) = protected(path).filter(|_| !limits.allow_protected) {
            return Err(path_error(
                path,
                &format!(
                    "it is {what}; the project's policy does not let model edits change it \
                     (the operator may allow it: `factory project add --allow-ci-edits`)"
                ),
            ));
        }
    }
    let mut changed = Vec::new();
    for edit in edits {
        match edit {
            Edit::Write { path, content } => {
                if content.len() > limits.max_file_bytes {
                    return Err(EditError::Limit(format!(
                        "`{path}` would be {} bytes; at most {}",
                        content.len(),
                        limits.max_file_bytes
                    )));
                }
                let target = resolve(root, path, true)?;
                if let Ok(meta) = std::fs::symlink_metadata(&target)
                    && !meta.is_file()
                {
                    return Err(EditError::Target {
                        path: path.clone(),
                        reason: "exists and is not a regular file".into(),
                    });
                }
                write_atomic(&target, path, content.as_bytes())?;
                changed.push(path.clone());
            }
            Edit::Replace {
                path,
                search,
                replace,
            } => {
                let target = resolve(root, path, false)?;
                let text = read_regular(&target, path, limits)?;
                let count = if search.is_empty() {
                    0
                } else {
                    text.matches(search.as_str()).count()
                };
                if count != 1 {
                    let found = if count == 0 {
                        "was not found".to_string()
                    } else {
                        format!("appears {count} times")
                    };
                    return Err(EditError::Miss {
                        path: path.clone(),
                        found,
                        nearest: nearest_lines(&text, search),
                    });
                }
                let updated = text.replacen(search.as_str(), replace, 1);
                if updated.len() > limits.max_file_bytes {
                    return Err(EditError::Limit(format!(
                        "`{path}` would be {} bytes; at most {}",
                        updated.len(),
                        limits.max_file_bytes
                    )));
                }
                write_atomic(&target, path, updated.as_bytes())?;
                changed.push(path.clone());
            }
            Edit::Delete { path } => {
                let target = resolve(root, path, false)?;
                read_regular(
                    &target,
                    path,
                    &EditLimits {
                        max_file_bytes: usize::MAX,
                        ..*limits
                    },
                )
                .map(|_| ())
                .or_else(|e| match e {
                    // Binary files cannot be read as text but may still be deleted.
                    EditError::Io { .. } => Ok(()),
                    other => Err(other),
                })?;
                std::fs::remove_file(&target).map_err(io(path))?;
                changed.push(path.clone());
            }
        }
    }
    changed.sort();
    changed.dedup();
    Ok(changed)
}

#[cfg(test)]
mod tests;
