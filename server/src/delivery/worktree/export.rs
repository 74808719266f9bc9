//! Commits made or read without a worktree: a commit's files written out for mapping, and the
//! integration commit of several delivered work orders.

use std::path::Path;

use super::{GitError, conflicted_files, io_error};

/// Writes the files of `commit`'s tree under `dest` (an empty directory of the host's), from
/// the repository's object database: regular and executable files only (symlinks and
/// submodules are left out), at most `max_entries` of them. A blob larger than `max_bytes` is
/// written as a sparse file of its size, so a reader sees how large it is without the bytes.
/// Used to map a commit without a worktree; nothing is checked out and no ref moves.
pub fn export_tree(
    repo_path: &Path,
    commit: &str,
    dest: &Path,
    max_entries: usize,
    max_bytes: u64,
) -> Result<usize, GitError> {
    let repo = git2::Repository::open(repo_path)?;
    let tree = repo.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
    let mut written = 0usize;
    let mut failure = None;
    let walked = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if written >= max_entries {
            return git2::TreeWalkResult::Abort;
        }
        let mode = entry.filemode();
        if mode != i32::from(git2::FileMode::Blob)
            && mode != i32::from(git2::FileMode::BlobExecutable)
        {
            return git2::TreeWalkResult::Ok;
        }
        let Some(name) = entry.name() else {
            return git2::TreeWalkResult::Ok;
        };
        // A crafted tree may name `..` or `.git`; such an entry is never written.
        let unsafe_part = |c: &str| matches!(c, "." | ".." | ".git") || c.contains('\\');
        if unsafe_part(name) || name.contains('/') || dir.split('/').any(unsafe_part) {
            return git2::TreeWalkResult::Ok;
        }
        let path = dest.join(dir).join(name);
        let result = (|| -> Result<(), GitError> {
            let blob = repo.find_blob(entry.id())?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error)?;
            }
            if blob.size() as u64 > max_bytes {
                let file = std::fs::File::create(&path).map_err(io_error)?;
                file.set_len(blob.size() as u64).map_err(io_error)?;
            } else {
                std::fs::write(&path, blob.content()).map_err(io_error)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                written += 1;
                git2::TreeWalkResult::Ok
            }
            Err(e) => {
                failure = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    });
    match (failure, walked) {
        (Some(e), _) => Err(e),
        // Stopped on purpose at `max_entries`.
        (None, Err(_)) if written >= max_entries => Ok(written),
        (None, Err(e)) => Err(e.into()),
        (None, Ok(())) => Ok(written),
    }
}

/// The commit a work order that depends on several others starts from: their delivered
/// commits merged, in the order given, into throwaway integration commits (no ref points at
/// them). `Err` names the conflicting files when two of them do not merge cleanly.
pub fn integration_commit(repo_path: &Path, commits: &[String]) -> Result<String, GitError> {
    let repo = git2::Repository::open(repo_path)?;
    let Some((first, rest)) = commits.split_first() else {
        return Err(GitError("no commits to integrate".into()));
    };
    let mut ours = repo.find_commit(git2::Oid::from_str(first)?)?;
    let signature = git2::Signature::now("Factory", "factory@localhost")?;
    for theirs in rest {
        let theirs = repo.find_commit(git2::Oid::from_str(theirs)?)?;
        let mut index = repo.merge_commits(&ours, &theirs, None)?;
        if index.has_conflicts() {
            return Err(GitError(format!(
                "the changes of {} and {} conflict in {}",
                &ours.id().to_string()[..8],
                &theirs.id().to_string()[..8],
                conflicted_files(&index)?.join(", ")
            )));
        }
        let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
        let merged = repo.commit(
            None,
            &signature,
            &signature,
            "Factory: integration of the work orders this one depends on",
            &tree,
            &[&ours, &theirs],
        )?;
        ours = repo.find_commit(merged)?;
    }
    Ok(ours.id().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::tests::repo;
    use super::*;
    use crate::delivery::worktree::{Worktree, head_commit};

    #[test]
    fn a_commit_is_written_out_without_its_symlinks() {
        let user = repo();
        let git = git2::Repository::open(user.path()).unwrap();
        std::fs::create_dir(user.path().join("src")).unwrap();
        std::fs::write(user.path().join("src/lib.rs"), "pub fn f() {}\n").unwrap();
        std::fs::write(user.path().join("big.bin"), vec![b'x'; 4096]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", user.path().join("link")).unwrap();
        let mut index = git.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("T", "t@example.com").unwrap();
        let parent = git.head().unwrap().peel_to_commit().unwrap();
        let commit = git
            .commit(Some("HEAD"), &sig, &sig, "more", &tree, &[&parent])
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let written = export_tree(user.path(), &commit.to_string(), out.path(), 100, 1024).unwrap();
        assert_eq!(written, 3, "README.md, src/lib.rs, big.bin");
        assert_eq!(
            std::fs::read_to_string(out.path().join("src/lib.rs")).unwrap(),
            "pub fn f() {}\n"
        );
        assert_eq!(
            std::fs::metadata(out.path().join("big.bin")).unwrap().len(),
            4096
        );
        assert!(std::fs::symlink_metadata(out.path().join("link")).is_err());
        let capped = tempfile::tempdir().unwrap();
        assert_eq!(
            export_tree(user.path(), &commit.to_string(), capped.path(), 1, 1024).unwrap(),
            1
        );
    }

    #[test]
    fn dependencies_merge_into_an_integration_commit_or_name_their_conflict() {
        let (user, data) = (repo(), tempfile::tempdir().unwrap());
        let base = head_commit(user.path()).unwrap();
        let deliver = |name: &str, file: &str, text: &str| {
            let wt = Worktree::create(user.path(), data.path(), name, &base, name).unwrap();
            std::fs::write(wt.path.join(file), text).unwrap();
            let tree = wt.snapshot(&[file.to_string()]).unwrap().unwrap();
            let commit = wt.commit_tree(tree, name).unwrap();
            wt.remove().unwrap();
            commit
        };
        let a = deliver("a", "a.txt", "a\n");
        let b = deliver("b", "b.txt", "b\n");
        let c = deliver("c", "a.txt", "c\n");
        let merged = integration_commit(user.path(), &[a.clone(), b.clone()]).unwrap();
        let git = git2::Repository::open(user.path()).unwrap();
        let commit = git
            .find_commit(git2::Oid::from_str(&merged).unwrap())
            .unwrap();
        let tree = commit.tree().unwrap();
        assert!(
            tree.get_path(Path::new("a.txt")).is_ok() && tree.get_path(Path::new("b.txt")).is_ok()
        );
        assert_eq!(commit.parent_count(), 2);
        let conflict = integration_commit(user.path(), &[a, c]).unwrap_err();
        assert!(
            conflict.to_string().contains("conflict in a.txt"),
            "{conflict}"
        );
    }
}
