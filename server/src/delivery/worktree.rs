//! Worktrees with git2: one per work order, on its own branch from the run's base commit, kept
//! under the data directory — never inside the user's checkout, whose working tree and current
//! branch are never touched. Leftovers of a crash are collected on start.
//!
//! Sandboxed code (gates) writes in a worktree, so after a gate ran nothing in it is trusted:
//! every git operation goes through the repository itself (its `.git` directory, which the
//! sandbox never sees), never through the worktree's `.git` file, which a gate could point at a
//! repository of its own whose config runs commands (`core.fsmonitor`, hooks). The change is
//! read from the worktree and written to the object database *before* any gate runs; a
//! worktree that a gate touched is never cleaned, only removed and made again.

use std::path::{Path, PathBuf};

mod change;
mod export;

pub use change::{ALWAYS_IGNORED, SnapshotLimits};
pub use export::{export_tree, integration_commit};

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
#[error("git: {0}")]
pub struct GitError(pub String);

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        GitError(e.message().to_string())
    }
}

/// A worktree made by Factory.
#[derive(Debug, Clone)]
pub struct Worktree {
    pub path: PathBuf,
    pub name: String,
    pub branch: String,
    /// The repository (the user's checkout); git runs only through it.
    repo: PathBuf,
}

/// The commit `HEAD` points to (the base of a run).
pub fn head_commit(repo: &Path) -> Result<String, GitError> {
    let repo = git2::Repository::open(repo)?;
    Ok(repo.head()?.peel_to_commit()?.id().to_string())
}

/// A branch-safe slug of a title: lowercase words joined by `-`, at most 40 characters.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for word in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if out.len() + word.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() { "change".into() } else { out }
}

/// The paths an index holds conflicts for (after a merge or cherry-pick).
fn conflicted_files(index: &git2::Index) -> Result<Vec<String>, GitError> {
    Ok(index
        .conflicts()?
        .flatten()
        .filter_map(|c| c.our.or(c.their).or(c.ancestor))
        .map(|e| String::from_utf8_lossy(&e.path).to_string())
        .collect())
}

fn io_error(e: std::io::Error) -> GitError {
    GitError(e.to_string())
}

impl Worktree {
    /// Creates branch `branch` at `base` and a worktree for it under `root/<name>`.
    pub fn create(
        repo_path: &Path,
        root: &Path,
        name: &str,
        base: &str,
        branch: &str,
    ) -> Result<Worktree, GitError> {
        std::fs::create_dir_all(root).map_err(io_error)?;
        let worktree = Worktree {
            path: root.join(name),
            name: name.to_string(),
            branch: branch.to_string(),
            repo: repo_path.to_path_buf(),
        };
        worktree.check_out(base)?;
        Ok(worktree)
    }

    /// Points the branch at `commit` and makes a fresh worktree of it, removing whatever was
    /// at the worktree's place first (without reading it: it may hold anything a gate left).
    fn check_out(&self, commit: &str) -> Result<(), GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        let commit = repo.find_commit(git2::Oid::from_str(commit)?)?;
        Worktree::discard(&repo, &self.name, &self.path);
        let reference = match repo.find_branch(&self.branch, git2::BranchType::Local) {
            Ok(existing) => {
                let mut r = existing.into_reference();
                r.set_target(commit.id(), "factory: reset the work-order branch")?
            }
            Err(_) => repo.branch(&self.branch, &commit, false)?.into_reference(),
        };
        let mut options = git2::WorktreeAddOptions::new();
        options.reference(Some(&reference));
        repo.worktree(&self.name, &self.path, Some(&options))?;
        Ok(())
    }

    /// Makes the worktree again at `commit` (after a failed attempt, the branch back at the
    /// base): the old directory is removed, never cleaned with git.
    pub fn recreate(&self, commit: &str) -> Result<(), GitError> {
        self.check_out(commit)
    }

    fn discard(repo: &git2::Repository, name: &str, path: &Path) {
        // `remove_dir_all` does not follow symlinks: a link a gate planted is removed, not its
        // target.
        let _ = std::fs::remove_dir_all(path);
        if let Ok(wt) = repo.find_worktree(name) {
            let mut prune = git2::WorktreePruneOptions::new();
            prune.valid(true).working_tree(false).locked(true);
            let _ = wt.prune(Some(&mut prune));
        }
        // libgit2 leaves the metadata folder when the working tree is already gone.
        let _ = std::fs::remove_dir_all(repo.path().join("worktrees").join(name));
    }

    /// A digest of the worktree's git metadata as the repository keeps it
    /// (`.git/worktrees/<name>`: `HEAD`, `commondir`, `gitdir`) and of the worktree's own
    /// `.git` file. The sandbox never sees the first and sees the second read-only; a digest
    /// that changed across a gate means the isolation failed, and the work order stops.
    pub fn metadata_digest(&self) -> Result<String, GitError> {
        use sha2::Digest;
        let repo = git2::Repository::open(&self.repo)?;
        let admin = repo.path().join("worktrees").join(&self.name);
        let mut hash = sha2::Sha256::new();
        for file in [
            admin.join("HEAD"),
            admin.join("commondir"),
            admin.join("gitdir"),
            self.path.join(".git"),
        ] {
            let meta = std::fs::symlink_metadata(&file).map_err(io_error)?;
            if !meta.is_file() {
                return Err(GitError(format!(
                    "{} is not a regular file",
                    file.display()
                )));
            }
            hash.update(file.as_os_str().as_encoded_bytes());
            hash.update([0]);
            hash.update(std::fs::read(&file).map_err(io_error)?);
            hash.update([0]);
        }
        Ok(hex::encode(hash.finalize()))
    }

    /// The tree of the change: the branch head's tree with `paths` (repository-relative, as
    /// the edits named them) taken from the worktree's files, or removed where the file is
    /// gone. Read by the host from files only the host wrote, before any gate ran; written to
    /// the repository's object database. `None` when nothing differs from the branch head.
    pub fn snapshot(&self, paths: &[String]) -> Result<Option<git2::Oid>, GitError> {
        use std::os::unix::fs::PermissionsExt;
        let repo = git2::Repository::open(&self.repo)?;
        let head = self.head(&repo)?;
        let baseline = head.tree()?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        for path in paths {
            let file = self.path.join(path);
            match std::fs::symlink_metadata(&file) {
                Ok(meta) if meta.is_file() => {
                    let blob = repo.blob(&std::fs::read(&file).map_err(io_error)?)?;
                    let mode = if meta.permissions().mode() & 0o111 != 0 {
                        git2::FileMode::BlobExecutable
                    } else {
                        git2::FileMode::Blob
                    };
                    update.upsert(path.as_str(), blob, mode);
                }
                Ok(_) => {
                    return Err(GitError(format!(
                        "`{path}` is not a regular file in the worktree"
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if baseline.get_path(Path::new(path)).is_ok() {
                        update.remove(path.as_str());
                    }
                }
                Err(e) => return Err(io_error(e)),
            }
        }
        let tree = update.create_updated(&repo, &baseline)?;
        Ok((tree != baseline.id()).then_some(tree))
    }

    fn head<'r>(&self, repo: &'r git2::Repository) -> Result<git2::Commit<'r>, GitError> {
        Ok(repo
            .find_branch(&self.branch, git2::BranchType::Local)?
            .get()
            .peel_to_commit()?)
    }

    /// Commits `tree` (from [`Worktree::snapshot`]) on the branch, in the repository.
    pub fn commit_tree(&self, tree: git2::Oid, message: &str) -> Result<String, GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        let parent = self.head(&repo)?;
        let tree = repo.find_tree(tree)?;
        let signature = git2::Signature::now("Factory", "factory@localhost")?;
        let oid = repo.commit(
            Some(&format!("refs/heads/{}", self.branch)),
            &signature,
            &signature,
            message,
            &tree,
            &[&parent],
        )?;
        Ok(oid.to_string())
    }

    /// Replays the branch's last commit onto `onto` (the project's branch moved since the
    /// base), in the repository, and makes the worktree again at the result so the gates can
    /// run on it. `Ok(new commit)`, or an error naming the conflicting files when it does not
    /// apply cleanly (nothing is changed then).
    pub fn rebase_onto(&self, onto: &str) -> Result<String, GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        let ours = self.head(&repo)?;
        let onto = repo.find_commit(git2::Oid::from_str(onto)?)?;
        let mut index = repo.cherrypick_commit(&ours, &onto, 0, None)?;
        if index.has_conflicts() {
            return Err(GitError(format!(
                "the change does not apply cleanly on the moved branch (conflicts in {})",
                conflicted_files(&index)?.join(", ")
            )));
        }
        let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
        let message = ours.message().unwrap_or_default().to_string();
        let signature = git2::Signature::now("Factory", "factory@localhost")?;
        let new = repo.commit(None, &signature, &signature, &message, &tree, &[&onto])?;
        drop(tree);
        drop(ours);
        self.check_out(&new.to_string())?;
        Ok(new.to_string())
    }

    /// Files changed by the branch's last commit (a work order's one commit).
    pub fn changed_files(&self) -> Result<Vec<String>, GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        let commit = self.head(&repo)?;
        let base = commit.parent(0)?.tree()?;
        let head = commit.tree()?;
        let diff = repo.diff_tree_to_tree(Some(&base), Some(&head), None)?;
        let mut files = Vec::new();
        for delta in diff.deltas() {
            if let Some(p) = delta.new_file().path().or(delta.old_file().path()) {
                files.push(p.display().to_string());
            }
        }
        Ok(files)
    }

    /// Removes the worktree (the branch stays).
    pub fn remove(self) -> Result<(), GitError> {
        let repo = git2::Repository::open(&self.repo)?;
        Worktree::discard(&repo, &self.name, &self.path);
        Ok(())
    }

    /// Deletes a branch (rollback of a failed work order).
    pub fn delete_branch(repo_path: &Path, branch: &str) -> Result<(), GitError> {
        let repo = git2::Repository::open(repo_path)?;
        if let Ok(mut b) = repo.find_branch(branch, git2::BranchType::Local) {
            b.delete()?;
        }
        Ok(())
    }
}

/// Removes worktree directories under `root` (left by a crash, or kept for inspection) last
/// changed more than `older_than` ago, without reading anything inside them, then prunes the
/// git metadata of every worktree of `repos` whose directory is gone.
pub fn collect_leftovers(root: &Path, older_than: std::time::Duration, repos: &[PathBuf]) -> usize {
    let mut removed = 0;
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let path = entry.path();
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if age < older_than {
                continue;
            }
            if std::fs::remove_dir_all(&path).is_ok() || !path.exists() {
                removed += 1;
            }
        }
    }
    for repo in repos {
        prune_missing(repo);
    }
    removed
}

/// Prunes the metadata of `repo`'s worktrees whose directory no longer exists.
fn prune_missing(repo: &Path) {
    let Ok(repo) = git2::Repository::open(repo) else {
        return;
    };
    let Ok(names) = repo.worktrees() else {
        return;
    };
    for name in names.iter().flatten() {
        let Ok(wt) = repo.find_worktree(name) else {
            continue;
        };
        if !wt.path().exists() {
            let mut prune = git2::WorktreePruneOptions::new();
            prune.working_tree(false);
            let _ = wt.prune(Some(&mut prune));
            let _ = std::fs::remove_dir_all(repo.path().join("worktrees").join(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with one commit of `README.md`.
    pub(super) fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("README.md"), "# Shop\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("README.md")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("T", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
            .unwrap();
        dir
    }

    #[test]
    fn a_worktree_commits_on_its_branch_and_leaves_the_checkout_alone() {
        let user = repo();
        let data = tempfile::tempdir().unwrap();
        let base = head_commit(user.path()).unwrap();
        let head_before = std::fs::read_to_string(user.path().join(".git/HEAD")).unwrap();
        let wt =
            Worktree::create(user.path(), data.path(), "wo-1", &base, "feature/wo-1-x").unwrap();
        assert!(wt.path.starts_with(data.path()));
        std::fs::write(wt.path.join("NOTES.md"), "notes\n").unwrap();
        let tree = wt
            .snapshot(&["NOTES.md".to_string()])
            .unwrap()
            .expect("a change");
        let commit = wt.commit_tree(tree, "WO-1: notes").unwrap();
        assert_eq!(wt.changed_files().unwrap(), ["NOTES.md"]);
        assert_eq!(
            wt.snapshot(&["NOTES.md".to_string()]).unwrap(),
            None,
            "nothing new to commit"
        );
        wt.remove().unwrap();
        assert!(!data.path().join("wo-1").exists());
        let repo = git2::Repository::open(user.path()).unwrap();
        let branch = repo
            .find_branch("feature/wo-1-x", git2::BranchType::Local)
            .unwrap();
        assert_eq!(branch.get().target().unwrap().to_string(), commit);
        assert!(
            !user.path().join("NOTES.md").exists(),
            "the checkout is untouched"
        );
        assert_eq!(
            std::fs::read_to_string(user.path().join(".git/HEAD")).unwrap(),
            head_before
        );
        // A second worktree of the same name (a retry) starts again from the base.
        let again =
            Worktree::create(user.path(), data.path(), "wo-1", &base, "feature/wo-1-x").unwrap();
        assert!(!again.path.join("NOTES.md").exists());
        again.remove().unwrap();
    }

    #[test]
    fn leftovers_are_collected() {
        let user = repo();
        let data = tempfile::tempdir().unwrap();
        let base = head_commit(user.path()).unwrap();
        let wt = Worktree::create(user.path(), data.path(), "wo-9", &base, "feature/wo-9").unwrap();
        std::mem::forget(wt); // as if the process died
        let repos = [user.path().to_path_buf()];
        assert_eq!(
            collect_leftovers(data.path(), std::time::Duration::from_secs(3600), &repos),
            0,
            "young ones are kept"
        );
        assert_eq!(
            collect_leftovers(data.path(), std::time::Duration::ZERO, &repos),
            1
        );
        assert!(!data.path().join("wo-9").exists());
        let repo = git2::Repository::open(user.path()).unwrap();
        assert!(
            repo.find_worktree("wo-9").is_err(),
            "git's metadata is pruned too"
        );
    }

    #[test]
    fn slugs_are_branch_safe() {
        assert_eq!(slug("Export orders as CSV!"), "export-orders-as-csv");
        assert_eq!(slug("…"), "change");
    }
}
