//! A worktree's change taken whole: every file the branch head tracks compared with the
//! worktree by content, and every new file the repository's ignore rules let through — read by
//! the host as data, never through a symlink, with no git run in the tree.

use std::path::Path;

use super::{GitError, Worktree, io_error};

impl Worktree {
    /// The tree of the change as the worktree holds it now, whoever wrote it (a team's
    /// commands in the sandbox, its edits): each file the branch head tracks taken from the
    /// worktree (removed where gone), and each new file that the repository's ignore files and
    /// [`ALWAYS_IGNORED`] do not exclude. Files are read as data, never through a symlink; git
    /// never runs in the tree. `None` when nothing differs from the branch head.
    pub fn snapshot_all(&self, limits: &SnapshotLimits) -> Result<Option<git2::Oid>, GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        let baseline = self.head(&repo)?.tree()?;
        let mut tracked = std::collections::HashMap::new();
        baseline.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if let Some(name) = entry.name() {
                tracked.insert(format!("{dir}{name}"), (entry.id(), entry.filemode()));
            }
            git2::TreeWalkResult::Ok
        })?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, (id, mode)) in &tracked {
            let blob_modes = [
                i32::from(git2::FileMode::Blob),
                i32::from(git2::FileMode::BlobExecutable),
            ];
            if !blob_modes.contains(mode) {
                continue; // directories, and tracked symlinks and submodules, stay as they are
            }
            match read_regular(&self.path.join(path), path, limits)? {
                Some((bytes, file_mode)) => {
                    let same = git2::Oid::hash_object(git2::ObjectType::Blob, &bytes)? == *id
                        && i32::from(file_mode) == *mode;
                    if !same {
                        update.upsert(path.as_str(), repo.blob(&bytes)?, file_mode);
                    }
                }
                None => {
                    update.remove(path.as_str());
                }
            }
        }
        let mut added = 0usize;
        for path in untracked_files(&self.path, &tracked)? {
            added += 1;
            if added > limits.max_new_files {
                return Err(GitError(format!(
                    "more than {} new files in the worktree (e.g. `{path}`): remove build \
                     outputs or list them in .gitignore",
                    limits.max_new_files
                )));
            }
            if let Some((bytes, file_mode)) = read_regular(&self.path.join(&path), &path, limits)? {
                update.upsert(path.as_str(), repo.blob(&bytes)?, file_mode);
            }
        }
        let tree = update.create_updated(&repo, &baseline)?;
        Ok((tree != baseline.id()).then_some(tree))
    }

    /// Paths that `tree` changes against the branch head.
    pub fn tree_changes(&self, tree: git2::Oid) -> Result<Vec<String>, GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        let base = self.head(&repo)?.tree()?;
        let new = repo.find_tree(tree)?;
        let diff = repo.diff_tree_to_tree(Some(&base), Some(&new), None)?;
        Ok(diff
            .deltas()
            .filter_map(|d| d.new_file().path().or(d.old_file().path()))
            .map(|p| p.display().to_string())
            .collect())
    }
}

/// Build outputs and caches a snapshot of the whole worktree never takes, whatever the
/// repository's ignore files say: tools write them while they run.
pub const ALWAYS_IGNORED: &[&str] = &[
    "target/",
    "node_modules/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".venv/",
];

/// Bounds of [`Worktree::snapshot_all`].
#[derive(Debug, Clone, Copy)]
pub struct SnapshotLimits {
    /// New files a change may add.
    pub max_new_files: usize,
    /// Largest file a change may hold.
    pub max_file_bytes: u64,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        SnapshotLimits {
            max_new_files: 2_000,
            max_file_bytes: 10 * 1024 * 1024,
        }
    }
}

/// A worktree file's bytes and mode; `None` when it is gone. Refused: a symlink or anything
/// else that is not a regular file, and a file over the size limit.
fn read_regular(
    file: &Path,
    path: &str,
    limits: &SnapshotLimits,
) -> Result<Option<(Vec<u8>, git2::FileMode)>, GitError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    if !meta.is_file() {
        return Err(GitError(format!(
            "`{path}` is not a regular file in the worktree (symlinks and special files are not \
             accepted in a change)"
        )));
    }
    if meta.len() > limits.max_file_bytes {
        return Err(GitError(format!(
            "`{path}` is {} bytes; a change may hold files up to {} bytes",
            meta.len(),
            limits.max_file_bytes
        )));
    }
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        git2::FileMode::BlobExecutable
    } else {
        git2::FileMode::Blob
    };
    Ok(Some((std::fs::read(file).map_err(io_error)?, mode)))
}

/// Files under `root` that `tracked` does not hold and no ignore rule excludes, `/`-separated.
/// Symlinks are not followed (a new one is returned, and refused when read).
fn untracked_files(
    root: &Path,
    tracked: &std::collections::HashMap<String, (git2::Oid, i32)>,
) -> Result<Vec<String>, GitError> {
    let mut overrides = ignore::overrides::OverrideBuilder::new(root);
    for glob in ALWAYS_IGNORED {
        overrides
            .add(&format!("!{glob}"))
            .map_err(|e| GitError(e.to_string()))?;
    }
    let overrides = overrides.build().map_err(|e| GitError(e.to_string()))?;
    let walk = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"))
        .build();
    let mut out = Vec::new();
    for entry in walk {
        let entry = entry.map_err(|e| GitError(e.to_string()))?;
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !tracked.contains_key(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::repo;
    use super::*;
    use crate::delivery::worktree::head_commit;

    fn worktree(user: &Path, data: &Path) -> Worktree {
        let base = head_commit(user).unwrap();
        Worktree::create(user, data, "wo-1", &base, "feature/wo-1").unwrap()
    }

    #[test]
    fn the_whole_change_is_taken_and_build_outputs_are_not() {
        let (user, data) = (repo(), tempfile::tempdir().unwrap());
        let wt = worktree(user.path(), data.path());
        let limits = SnapshotLimits::default();
        assert_eq!(wt.snapshot_all(&limits).unwrap(), None, "nothing changed");
        std::fs::write(wt.path.join("README.md"), "# Shop, changed\n").unwrap();
        std::fs::create_dir_all(wt.path.join("src/__pycache__")).unwrap();
        std::fs::write(wt.path.join("src/new.py"), "x = 1\n").unwrap();
        std::fs::write(wt.path.join("src/__pycache__/new.pyc"), "bytecode").unwrap();
        std::fs::create_dir_all(wt.path.join("target/debug")).unwrap();
        std::fs::write(wt.path.join("target/debug/app"), "binary").unwrap();
        std::fs::write(wt.path.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(wt.path.join("run.log"), "noise").unwrap();
        let tree = wt.snapshot_all(&limits).unwrap().expect("a change");
        let mut changed = wt.tree_changes(tree).unwrap();
        changed.sort();
        assert_eq!(changed, [".gitignore", "README.md", "src/new.py"]);
        // A tracked file removed is a removal.
        std::fs::remove_file(wt.path.join("README.md")).unwrap();
        let tree = wt.snapshot_all(&limits).unwrap().expect("a change");
        assert!(wt.tree_changes(tree).unwrap().contains(&"README.md".into()));
    }

    #[test]
    fn symlinks_and_oversize_files_are_refused() {
        let (user, data) = (repo(), tempfile::tempdir().unwrap());
        let wt = worktree(user.path(), data.path());
        std::os::unix::fs::symlink("/etc/passwd", wt.path.join("passwd")).unwrap();
        let refused = wt.snapshot_all(&SnapshotLimits::default()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("`passwd` is not a regular file"),
            "{refused}"
        );
        std::fs::remove_file(wt.path.join("passwd")).unwrap();
        std::fs::write(wt.path.join("big.bin"), vec![b'x'; 2048]).unwrap();
        let small = SnapshotLimits {
            max_file_bytes: 1024,
            ..SnapshotLimits::default()
        };
        let refused = wt.snapshot_all(&small).unwrap_err();
        assert!(
            refused.to_string().contains("`big.bin` is 2048 bytes"),
            "{refused}"
        );
        let few = SnapshotLimits {
            max_new_files: 0,
            ..SnapshotLimits::default()
        };
        assert!(
            wt.snapshot_all(&few)
                .unwrap_err()
                .to_string()
                .contains("new files")
        );
    }
}
