//! The file tree of a checked-out commit, as the map sees it: `.gitignore` honoured, `.git`
//! skipped, symlinks listed but never followed, and reading confined to the root (each path
//! component checked, the file opened without following a link, only regular files, only up to
//! the size cap). Nothing here runs `git`: the tree may have been touched by sandboxed code.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Limits, RepoMapError};

/// Bytes looked at to decide whether a file is binary (a NUL byte among them).
pub const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Why a file of the tree is listed without being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutReason {
    /// Larger than the size cap.
    TooLarge,
    /// Holds a NUL byte near its start.
    Binary,
    /// A symbolic link: never followed.
    Symlink,
    /// Past the file-count limit.
    OverFileLimit,
    /// Could not be read (permissions, vanished, not a regular file).
    Unreadable,
}

impl LeftOutReason {
    /// How the reason reads in the map's summary ("3 binary").
    pub fn describe(self) -> &'static str {
        match self {
            LeftOutReason::TooLarge => "over the size cap",
            LeftOutReason::Binary => "binary",
            LeftOutReason::Symlink => "symlinks",
            LeftOutReason::OverFileLimit => "over the file limit",
            LeftOutReason::Unreadable => "unreadable",
        }
    }
}

/// What walking the tree found: the files to map, in path order, and those left out.
#[derive(Debug, Default)]
pub struct Tree {
    /// Relative, `/`-separated paths of regular files within the size cap.
    pub files: Vec<String>,
    pub left_out: Vec<(String, LeftOutReason)>,
    /// The walk stopped at `max_walk_entries`; files past it are not even listed.
    pub walk_truncated: bool,
}

/// Walks `root` (a worktree at some commit).
pub fn walk(root: &Path, limits: &Limits) -> Result<Tree, RepoMapError> {
    let meta = std::fs::symlink_metadata(root).map_err(|source| RepoMapError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(RepoMapError::Root {
            path: root.to_path_buf(),
            source: std::io::Error::other("not a directory (a symlink is not followed)"),
        });
    }
    // An ignore file at the root that is not a regular file is not read: no ignore rules then
    // (the walk lists the file itself as a symlink or unreadable).
    let odd_root = odd_ignore_file(root);
    // Directories whose ignore files are not regular files are skipped whole (and noted):
    // the walker would open them, and a FIFO would block it, a symlink lead out of the tree.
    let skipped = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let noted = skipped.clone();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .git_ignore(odd_root.is_none())
        .ignore(odd_root.is_none())
        // `.git/info/exclude` may sit outside the tree (a worktree's `.git` is a pointer).
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            if entry.file_name() == ".git" {
                return false;
            }
            if !entry.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            match odd_ignore_file(entry.path()) {
                Some(name) => {
                    let mut noted = noted.lock().unwrap_or_else(|e| e.into_inner());
                    noted.push(entry.path().join(name));
                    false
                }
                None => true,
            }
        })
        .build();

    let mut tree = Tree::default();
    let mut entries = 0usize;
    for entry in walker {
        let Ok(entry) = entry else {
            continue;
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            continue;
        }
        let Some(relative) = relative_path(root, entry.path()) else {
            continue;
        };
        entries += 1;
        if entries > limits.max_walk_entries {
            tree.walk_truncated = true;
            break;
        }
        if file_type.is_symlink() {
            tree.left_out.push((relative, LeftOutReason::Symlink));
        } else if !file_type.is_file() {
            tree.left_out.push((relative, LeftOutReason::Unreadable));
        } else {
            match entry.metadata() {
                Ok(m) if m.len() > limits.max_file_bytes => {
                    tree.left_out.push((relative, LeftOutReason::TooLarge));
                }
                Ok(_) => tree.files.push(relative),
                Err(_) => tree.left_out.push((relative, LeftOutReason::Unreadable)),
            }
        }
    }
    let skipped = std::mem::take(&mut *skipped.lock().unwrap_or_else(|e| e.into_inner()));
    for path in skipped {
        if let Some(relative) = relative_path(root, &path) {
            tree.left_out.push((relative, LeftOutReason::Unreadable));
        }
    }
    Ok(tree)
}

/// The name of an ignore file in `dir` that exists but is not a regular file.
fn odd_ignore_file(dir: &Path) -> Option<&'static str> {
    [".gitignore", ".ignore"].into_iter().find(|name| {
        std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| !m.file_type().is_file())
    })
}

/// `path` relative to `root`, `/`-separated; `None` when it is not valid UTF-8 or not under root.
fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for component in relative.components() {
        let Component::Normal(part) = component else {
            return None;
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part.to_str()?);
    }
    (!out.is_empty()).then_some(out)
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadRefusal {
    TooLarge,
    Unreadable,
}

/// Reads `root/relative` confined to the root: `relative` must be plain names (no `..`, not
/// absolute), no component may be a symlink, the last one is opened without following a link,
/// and it must be a regular file of at most `max` bytes. Reads at most `limit` bytes of it
/// (the whole file when `limit >= max`).
pub fn read_confined(
    root: &Path,
    relative: &str,
    max: u64,
    limit: usize,
) -> Result<Vec<u8>, ReadRefusal> {
    let path = confined_path(root, relative).ok_or(ReadRefusal::Unreadable)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|_| ReadRefusal::Unreadable)?;
    let meta = file.metadata().map_err(|_| ReadRefusal::Unreadable)?;
    if !meta.is_file() {
        return Err(ReadRefusal::Unreadable);
    }
    if meta.len() > max {
        return Err(ReadRefusal::TooLarge);
    }
    // The file may grow after it was measured: never read past the cap.
    let take = (limit as u64).min(max + 1);
    let mut bytes = Vec::with_capacity(meta.len().min(take) as usize);
    file.take(take)
        .read_to_end(&mut bytes)
        .map_err(|_| ReadRefusal::Unreadable)?;
    if bytes.len() as u64 > max {
        return Err(ReadRefusal::TooLarge);
    }
    Ok(bytes)
}

/// `root/relative` when every component is a plain name and none of the directories on the way
/// is a symlink; the last component is left to `O_NOFOLLOW`.
fn confined_path(root: &Path, relative: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = relative.split('/').collect();
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == "." || *part == ".." || part.contains('\\') {
            return None;
        }
        path.push(part);
        if i + 1 < parts.len() {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            if !meta.is_dir() {
                return None;
            }
        }
    }
    Some(path)
}

/// Whether the bytes look binary: a NUL among the first [`BINARY_SNIFF_BYTES`].
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_reads_refuse_escapes_and_links() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join("src")).unwrap();
        std::fs::write(repo.path().join("src/a.rs"), "fn a() {}").unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.path().join("linked")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            repo.path().join("src/secret.rs"),
        )
        .unwrap();
        let read = |p: &str| read_confined(repo.path(), p, 1024, usize::MAX);

        assert_eq!(read("src/a.rs").unwrap(), b"fn a() {}");
        assert!(read("linked/secret.txt").is_err(), "a linked directory");
        assert!(read("src/secret.rs").is_err(), "a linked file");
        assert!(read("../secret.txt").is_err());
        assert!(read("src/../src/a.rs").is_err());
        assert!(read("/etc/passwd").is_err());
        assert!(read("src").is_err(), "a directory");
        assert!(matches!(
            read_confined(repo.path(), "src/a.rs", 4, usize::MAX),
            Err(ReadRefusal::TooLarge)
        ));
    }

    #[test]
    fn nul_bytes_mean_binary() {
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(!looks_binary("fn main() { println!(\"é\"); }".as_bytes()));
    }
}
