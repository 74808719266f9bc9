//! A commit against its first parent as a unified diff, read with git2 (call it from
//! `spawn_blocking`). Counts are exact; lines stop once the patch text passes a budget.

use std::path::Path;

use app::server_fns::artifacts::{DiffFile, DiffLine, DiffLineKind};
use git2::{Delta, DiffOptions, Oid, Patch, Repository};

/// Why a diff cannot be shown.
#[derive(Debug, thiserror::Error)]
pub(in crate::dashboard) enum DiffError {
    #[error("the project repository {path} cannot be opened: {reason}")]
    Repository { path: String, reason: String },
    #[error("commit {commit} is not in the project repository {path} (was it removed?)")]
    MissingCommit { commit: String, path: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl DiffError {
    /// True when the message is for the user (a missing repository or commit).
    pub(in crate::dashboard) fn is_refusal(&self) -> bool {
        !matches!(self, DiffError::Git(_))
    }
}

/// The files of a diff and whether lines were left out.
#[derive(Debug)]
pub(super) struct CommitPatch {
    pub parent: Option<String>,
    pub files: Vec<DiffFile>,
    pub truncated: bool,
}

/// `commit` of the repository at `repo` against its first parent (the empty tree for a root
/// commit), with at most `max_bytes` of line text.
pub(super) fn commit_diff(
    repo: &Path,
    commit: &str,
    max_bytes: usize,
) -> Result<CommitPatch, DiffError> {
    let shown = repo.display().to_string();
    let repository = Repository::open(repo).map_err(|e| DiffError::Repository {
        path: shown.clone(),
        reason: e.message().to_string(),
    })?;
    let missing = || DiffError::MissingCommit {
        commit: commit.to_string(),
        path: shown.clone(),
    };
    let oid = Oid::from_str(commit).map_err(|_| missing())?;
    let found = repository.find_commit(oid).map_err(|_| missing())?;
    let parent = found.parent(0).ok();
    let parent_tree = parent.as_ref().map(|p| p.tree()).transpose()?;
    let mut options = DiffOptions::new();
    options.context_lines(3);
    let mut diff = repository.diff_tree_to_tree(
        parent_tree.as_ref(),
        Some(&found.tree()?),
        Some(&mut options),
    )?;
    diff.find_similar(None)?;
    let mut budget = max_bytes;
    let mut truncated = false;
    let mut files = Vec::new();
    for index in 0..diff.deltas().len() {
        let Some(delta) = diff.get_delta(index) else {
            continue;
        };
        let path_of = |f: git2::DiffFile<'_>| f.path().map(|p| p.display().to_string());
        let path = path_of(delta.new_file())
            .or_else(|| path_of(delta.old_file()))
            .unwrap_or_default();
        let old_path = path_of(delta.old_file()).filter(|old| *old != path);
        let mut file = DiffFile {
            path,
            old_path,
            status: status(delta.status()).to_string(),
            additions: 0,
            deletions: 0,
            binary: delta.flags().is_binary(),
            lines: Vec::new(),
        };
        if let Some(patch) = Patch::from_diff(&diff, index)? {
            let (_, additions, deletions) = patch.line_stats()?;
            file.additions = u32::try_from(additions).unwrap_or(u32::MAX);
            file.deletions = u32::try_from(deletions).unwrap_or(u32::MAX);
            file.binary |= patch.delta().flags().is_binary();
            if !truncated {
                truncated = !lines(&patch, &mut file.lines, &mut budget)?;
            }
        } else {
            file.binary = true;
        }
        files.push(file);
    }
    Ok(CommitPatch {
        parent: parent.map(|p| p.id().to_string()),
        files,
        truncated,
    })
}

/// Appends the patch's lines while `budget` lasts; false when it ran out.
fn lines(
    patch: &Patch<'_>,
    out: &mut Vec<DiffLine>,
    budget: &mut usize,
) -> Result<bool, git2::Error> {
    let mut push = |kind, text: String| {
        let cost = text.len() + 1;
        if cost > *budget {
            return false;
        }
        *budget -= cost;
        out.push(DiffLine { kind, text });
        true
    };
    for h in 0..patch.num_hunks() {
        let (hunk, count) = patch.hunk(h)?;
        let header = String::from_utf8_lossy(hunk.header())
            .trim_end()
            .to_string();
        if !push(DiffLineKind::Hunk, header) {
            return Ok(false);
        }
        for l in 0..count {
            let line = patch.line_in_hunk(h, l)?;
            let text = String::from_utf8_lossy(line.content())
                .trim_end_matches(['\n', '\r'])
                .to_string();
            let (kind, text) = match line.origin() {
                '+' => (DiffLineKind::Addition, text),
                '-' => (DiffLineKind::Deletion, text),
                // '=', '>' and '<' mark a missing newline at the end of a file.
                ' ' => (DiffLineKind::Context, text),
                _ => (
                    DiffLineKind::Context,
                    "\\ No newline at end of file".to_string(),
                ),
            };
            if !push(kind, text) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn status(delta: Delta) -> &'static str {
    match delta {
        Delta::Added => "added",
        Delta::Deleted => "deleted",
        Delta::Renamed => "renamed",
        Delta::Copied => "copied",
        Delta::Typechange => "type changed",
        _ => "modified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_all(repo: &Repository, message: &str) -> String {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Test", "test@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    fn repo_with_two_commits() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(dir.path().join("gone.txt"), "bye\n").unwrap();
        let first = commit_all(&repo, "first");
        std::fs::write(dir.path().join("a.txt"), "one\nTWO\nthree\nfour\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "new\nfile").unwrap();
        std::fs::remove_file(dir.path().join("gone.txt")).unwrap();
        let second = commit_all(&repo, "second");
        (dir, first, second)
    }

    #[test]
    fn a_commit_is_diffed_against_its_parent_with_exact_counts() {
        let (dir, first, second) = repo_with_two_commits();
        let diff = commit_diff(dir.path(), &second, 1 << 20).unwrap();
        assert_eq!(diff.parent.as_deref(), Some(first.as_str()));
        assert!(!diff.truncated);
        let by_path = |p: &str| diff.files.iter().find(|f| f.path == p).unwrap();
        let a = by_path("a.txt");
        assert_eq!(
            (a.status.as_str(), a.additions, a.deletions),
            ("modified", 2, 1)
        );
        assert_eq!(a.lines[0].kind, DiffLineKind::Hunk);
        assert!(
            a.lines[0].text.starts_with("@@ -1,3 +1,4 @@"),
            "{:?}",
            a.lines[0]
        );
        let added: Vec<&str> = a
            .lines
            .iter()
            .filter(|l| l.kind == DiffLineKind::Addition)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(added, ["TWO", "four"]);
        assert!(
            a.lines
                .iter()
                .any(|l| l.kind == DiffLineKind::Deletion && l.text == "two")
        );
        let b = by_path("b.txt");
        assert_eq!(
            (b.status.as_str(), b.additions, b.deletions),
            ("added", 2, 0)
        );
        assert!(b.lines.last().unwrap().text.contains("No newline"));
        let gone = by_path("gone.txt");
        assert_eq!(
            (gone.status.as_str(), gone.additions, gone.deletions),
            ("deleted", 0, 1)
        );
        // The root commit is diffed against the empty tree.
        let root = commit_diff(dir.path(), &first, 1 << 20).unwrap();
        assert_eq!(root.parent, None);
        assert_eq!(root.files.len(), 2);
    }

    #[test]
    fn lines_stop_at_the_budget_but_counts_do_not() {
        let (dir, _, second) = repo_with_two_commits();
        let diff = commit_diff(dir.path(), &second, 20).unwrap();
        assert!(diff.truncated);
        let a = diff.files.iter().find(|f| f.path == "a.txt").unwrap();
        assert_eq!((a.additions, a.deletions), (2, 1));
        let shown: usize = diff.files.iter().map(|f| f.lines.len()).sum();
        assert!(shown < 3, "{shown} lines within 20 bytes");
    }

    #[test]
    fn a_missing_repository_or_commit_is_refused_by_name() {
        let (dir, _, _) = repo_with_two_commits();
        let err = commit_diff(dir.path(), &"0".repeat(40), 100).unwrap_err();
        assert!(
            err.is_refusal() && err.to_string().contains("not in the project"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = commit_diff(empty.path(), &"0".repeat(40), 100).unwrap_err();
        assert!(
            err.is_refusal() && err.to_string().contains("cannot be opened"),
            "{err}"
        );
    }
}
