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
}

impl Default for EditLimits {
    fn default() -> Self {
        EditLimits {
            max_file_bytes: 1024 * 1024,
            max_edits: 200,
        }
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

/// Writes `content` to `target` atomically: a temp file beside it, then rename.
fn write_atomic(target: &Path, path: &str, content: &[u8]) -> Result<(), EditError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.factory-tmp"));
    std::fs::write(&tmp, content).map_err(io(path))?;
    std::fs::rename(&tmp, target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })
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

/// The three lines of `text` most like the first line of `search`, with line numbers.
fn nearest_lines(text: &str, search: &str) -> String {
    let probe = search
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(search)
        .trim();
    let mut scored: Vec<(f64, usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            (
                strsim::normalized_levenshtein(line.trim(), probe),
                i + 1,
                line,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, n, line)| format!("  {n}: {line}"))
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
mod tests {
    use super::*;

    fn write(path: &str, content: &str) -> Edit {
        Edit::Write {
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn writes_replaces_and_deletes_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let changed = apply(
            root,
            &[
                write("src/lib.rs", "fn a() {}\nfn b() {}\n"),
                Edit::Replace {
                    path: "src/lib.rs".into(),
                    search: "fn b() {}".into(),
                    replace: "fn b() -> u8 { 1 }".into(),
                },
                write("old.txt", "x"),
                Edit::Delete {
                    path: "old.txt".into(),
                },
            ],
            &EditLimits::default(),
        )
        .unwrap();
        assert_eq!(changed, ["old.txt", "src/lib.rs"]);
        assert_eq!(
            std::fs::read_to_string(root.join("src/lib.rs")).unwrap(),
            "fn a() {}\nfn b() -> u8 { 1 }\n"
        );
        assert!(!root.join("old.txt").exists());
    }

    #[test]
    fn bad_paths_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        for (path, needle) in [
            ("/etc/passwd", "absolute"),
            ("../escape", "`..`"),
            ("a/../../escape", "`..`"),
            (".git/config", "`.git`"),
            ("sub/.GIT/hooks/x", "`.git`"),
            ("link/file", "symlink"),
            ("", "empty"),
            ("a//b", "empty or `.`"),
            ("a\\b", "backslashes"),
        ] {
            let err = apply(dir.path(), &[write(path, "x")], &EditLimits::default()).unwrap_err();
            assert!(err.to_string().contains(needle), "{path}: {err}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missed_replace_names_the_file_and_the_nearest_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("app.py"),
            "def total(x):\n    return x\n\ndef main():\n    pass\n",
        )
        .unwrap();
        let err = apply(
            dir.path(),
            &[Edit::Replace {
                path: "app.py".into(),
                search: "def totals(x):".into(),
                replace: "def total(xs):".into(),
            }],
            &EditLimits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("replace in `app.py`: the search text was not found"),
            "{err}"
        );
        assert!(err.contains("  1: def total(x):"), "{err}");
    }

    #[test]
    fn sizes_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = EditLimits {
            max_file_bytes: 10,
            max_edits: 2,
        };
        let err = apply(dir.path(), &[write("a", &"x".repeat(11))], &limits).unwrap_err();
        assert!(err.to_string().contains("at most 10"), "{err}");
        let err = apply(
            dir.path(),
            &[write("a", ""), write("b", ""), write("c", "")],
            &limits,
        )
        .unwrap_err();
        assert!(err.to_string().contains("at most 2 per result"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("..".to_string()),
                Just(".".to_string()),
                Just(".git".to_string()),
                Just("link".to_string()),
                Just(String::new()),
                Just("/".to_string()),
                "[a-z]{1,3}",
            ]
        }

        fn path() -> impl Strategy<Value = String> {
            prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
        }

        fn edit() -> impl Strategy<Value = Edit> {
            prop_oneof![
                (path(), "[a-z]{0,8}").prop_map(|(path, content)| Edit::Write { path, content }),
                (path(), "[a-z]{0,3}", "[a-z]{0,3}").prop_map(|(path, search, replace)| {
                    Edit::Replace {
                        path,
                        search,
                        replace,
                    }
                }),
                path().prop_map(|path| Edit::Delete { path }),
            ]
        }

        fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
            let mut out = Vec::new();
            let mut stack = vec![dir.to_path_buf()];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d).unwrap() {
                    let p = entry.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
                    }
                }
            }
            out.sort();
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn never_panics_and_never_writes_outside_the_root(edits in prop::collection::vec(edit(), 1..6)) {
                let outside = tempfile::tempdir().unwrap();
                std::fs::write(outside.path().join("secret"), "keep").unwrap();
                let parent = tempfile::tempdir().unwrap();
                let root = parent.path().join("repo");
                std::fs::create_dir_all(root.join(".git")).unwrap();
                std::fs::write(root.join(".git/config"), "cfg").unwrap();
                std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
                let before_outside = snapshot(outside.path());
                let before_git = std::fs::read(root.join(".git/config")).unwrap();
                let _ = apply(&root, &edits, &EditLimits::default());
                prop_assert_eq!(snapshot(outside.path()), before_outside);
                prop_assert_eq!(std::fs::read(root.join(".git/config")).unwrap(), before_git);
                // Nothing appeared beside the root either.
                let siblings: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
                prop_assert_eq!(siblings.len(), 1);
            }
        }
    }
}
