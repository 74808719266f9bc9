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
    fn ci_and_factory_files_are_refused_unless_the_policy_allows_them() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            ".factory/project.toml",
            ".github/workflows/ci.yml",
            ".gitignore",
            ".gitlab-ci.yml",
            "Jenkinsfile",
            ".circleci/config.yml",
            ".envrc",
        ] {
            let err = apply(dir.path(), &[write(path, "x")], &EditLimits::default()).unwrap_err();
            assert!(
                err.to_string().contains("--allow-ci-edits"),
                "{path}: {err}"
            );
            assert!(!dir.path().join(path).exists(), "{path} was written");
            let allowed = EditLimits {
                allow_protected: true,
                ..EditLimits::default()
            };
            apply(dir.path(), &[write(path, "x")], &allowed).unwrap();
        }
        for path in [
            "src/github.rs",
            "docs/.factory-notes.md",
            "ci/run.sh",
            "a/Jenkinsfile",
        ] {
            assert_eq!(protected(path), None, "{path}");
        }
    }

    #[test]
    fn a_planted_symlink_at_any_temp_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("authorized_keys");
        std::fs::write(&secret, "keep").unwrap();
        std::fs::write(dir.path().join("README.md"), "old\n").unwrap();
        // What a repository could commit: links at the names a writer might choose.
        for name in [".README.md.factory-tmp", ".README.md.tmp", "README.md.tmp"] {
            std::os::unix::fs::symlink(&secret, dir.path().join(name)).unwrap();
        }
        apply(
            dir.path(),
            &[write("README.md", "new\n")],
            &EditLimits::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
            "new\n"
        );
        let meta = std::fs::symlink_metadata(dir.path().join("README.md")).unwrap();
        assert!(meta.is_file());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn the_hint_after_a_missed_replace_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(200_000);
        std::fs::write(dir.path().join("min.js"), format!("{long}\n{long}\n")).unwrap();
        let err = apply(
            dir.path(),
            &[Edit::Replace {
                path: "min.js".into(),
                search: "y".repeat(100_000),
                replace: "z".into(),
            }],
            &EditLimits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.len() < 2_000, "{} bytes of hint", err.len());
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
            allow_protected: false,
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
