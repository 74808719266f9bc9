//! Worktrees with git2: one per work order, on its own branch from the run's base commit, kept
//! under the data directory — never inside the user's checkout, whose working tree and current
//! branch are never touched. Leftovers of a crash are collected on start.

use std::path::{Path, PathBuf};

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
#[derive(Debug)]
pub struct Worktree {
    pub path: PathBuf,
    pub name: String,
    pub branch: String,
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

impl Worktree {
    /// Creates branch `branch` at `base` and a worktree for it under `root/<name>`.
    pub fn create(
        repo_path: &Path,
        root: &Path,
        name: &str,
        base: &str,
        branch: &str,
    ) -> Result<Worktree, GitError> {
        let repo = git2::Repository::open(repo_path)?;
        let commit = repo.find_commit(git2::Oid::from_str(base)?)?;
        std::fs::create_dir_all(root).map_err(|e| GitError(e.to_string()))?;
        let path = root.join(name);
        // A leftover of an interrupted attempt with the same name goes first.
        if path.exists() || repo.find_worktree(name).is_ok() {
            Worktree::discard(&repo, name, &path);
        }
        let reference = match repo.find_branch(branch, git2::BranchType::Local) {
            Ok(existing) => {
                let mut r = existing.into_reference();
                r.set_target(commit.id(), "factory: reset work-order branch to the base")?;
                r
            }
            Err(_) => repo.branch(branch, &commit, false)?.into_reference(),
        };
        let mut options = git2::WorktreeAddOptions::new();
        options.reference(Some(&reference));
        repo.worktree(name, &path, Some(&options))?;
        Ok(Worktree {
            path,
            name: name.to_string(),
            branch: branch.to_string(),
            repo: repo_path.to_path_buf(),
        })
    }

    fn discard(repo: &git2::Repository, name: &str, path: &Path) {
        let _ = std::fs::remove_dir_all(path);
        if let Ok(wt) = repo.find_worktree(name) {
            let mut prune = git2::WorktreePruneOptions::new();
            prune.valid(true).working_tree(true).locked(true);
            let _ = wt.prune(Some(&mut prune));
        }
    }

    /// Commits every change in the worktree on its branch. `None` when nothing changed.
    pub fn commit(&self, message: &str) -> Result<Option<String>, GitError> {
        let repo = git2::Repository::open(&self.path)?;
        let mut index = repo.index()?;
        index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
        index.update_all(["*"].iter(), None)?;
        index.write()?;
        let tree_id = index.write_tree()?;
        let parent = repo.head()?.peel_to_commit()?;
        if parent.tree_id() == tree_id {
            return Ok(None);
        }
        let tree = repo.find_tree(tree_id)?;
        let signature = git2::Signature::now("Factory", "factory@localhost")?;
        let oid = repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &[&parent],
        )?;
        Ok(Some(oid.to_string()))
    }

    /// Replays the branch's last commit onto `onto` (the project's branch moved since the
    /// base) and checks the result out in the worktree. `Ok(new commit)`, or an error naming
    /// the conflicting files when it does not apply cleanly (nothing is changed then).
    pub fn rebase_onto(&self, onto: &str) -> Result<String, GitError> {
        let repo = git2::Repository::open(&self.path)?;
        let ours = repo.head()?.peel_to_commit()?;
        let onto = repo.find_commit(git2::Oid::from_str(onto)?)?;
        let mut index = repo.cherrypick_commit(&ours, &onto, 0, None)?;
        if index.has_conflicts() {
            let files: Vec<String> = index
                .conflicts()?
                .flatten()
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|e| String::from_utf8_lossy(&e.path).to_string())
                .collect();
            return Err(GitError(format!(
                "the change does not apply cleanly on the moved branch (conflicts in {})",
                files.join(", ")
            )));
        }
        let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
        let message = ours.message().unwrap_or_default().to_string();
        let signature = git2::Signature::now("Factory", "factory@localhost")?;
        let new = repo.commit(None, &signature, &signature, &message, &tree, &[&onto])?;
        repo.head()?
            .set_target(new, "factory: rebase the work order onto the moved branch")?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force();
        repo.checkout_head(Some(&mut checkout))?;
        Ok(new.to_string())
    }

    /// Files changed by the branch's last commit (a work order's one commit).
    pub fn changed_files(&self) -> Result<Vec<String>, GitError> {
        let repo = git2::Repository::open(&self.path)?;
        let commit = repo.head()?.peel_to_commit()?;
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
/// changed more than `older_than` ago, with their git metadata.
pub fn collect_leftovers(root: &Path, older_than: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
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
        if let Ok(repo) = git2::Repository::open(&path)
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            // The main repository of a worktree: its common dir's parent.
            let main = repo.commondir().parent().map(Path::to_path_buf);
            drop(repo);
            if let Some(main) = main
                && let Ok(main) = git2::Repository::open(main)
            {
                Worktree::discard(&main, name, &path);
            }
        }
        if std::fs::remove_dir_all(&path).is_ok() || !path.exists() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
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
        let commit = wt.commit("WO-1: notes").unwrap().expect("a commit");
        assert_eq!(wt.changed_files().unwrap(), ["NOTES.md"]);
        assert_eq!(wt.commit("again").unwrap(), None, "nothing new to commit");
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
        assert_eq!(
            collect_leftovers(data.path(), std::time::Duration::from_secs(3600)),
            0,
            "young ones are kept"
        );
        assert_eq!(collect_leftovers(data.path(), std::time::Duration::ZERO), 1);
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
