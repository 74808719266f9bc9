//! Maps cached per commit: a commit's tree never changes, so its map is built once. The newest
//! few are kept in memory (least recently used dropped first); with a cache directory each is
//! also written to disk (temp file + rename, so a reader never sees half a file), prefixed by
//! the SHA-256 of its body. A file whose digest, format or commit does not match is rebuilt and
//! replaced, never trusted.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{Limits, RepoMap, RepoMapError};

/// Maps kept in memory by default.
pub const DEFAULT_MEMORY_ENTRIES: usize = 8;
/// The on-disk format; part of the file name, so a new format never reads an old file.
const FORMAT: u32 = 1;
/// The first line of a cache file: this, a space, the body's SHA-256 in hex.
const MAGIC: &str = "factory-repo-map";

/// Builds maps at commits and remembers them. Shared behind an `Arc`; lookups of different
/// commits may run at once (a commit asked for twice at the same moment may be built twice).
#[derive(Debug)]
pub struct RepoMapCache {
    limits: Limits,
    dir: Option<PathBuf>,
    capacity: usize,
    /// Most recently used last.
    memory: Mutex<VecDeque<(String, Arc<RepoMap>)>>,
}

impl RepoMapCache {
    /// A cache building within `limits`, keeping maps on disk under `dir` when given (created
    /// on first write).
    pub fn new(limits: Limits, dir: Option<PathBuf>) -> RepoMapCache {
        RepoMapCache {
            limits,
            dir,
            capacity: DEFAULT_MEMORY_ENTRIES,
            memory: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps at most `entries` maps in memory (at least one).
    pub fn with_memory_entries(mut self, entries: usize) -> RepoMapCache {
        self.capacity = entries.max(1);
        self
    }

    /// The map of `commit`, whose tree `worktree` holds (the caller's promise: the tree is
    /// read, `git` is never run in it). Built on the first call for the commit; later calls
    /// answer from memory or disk. Blocking.
    pub fn for_commit(&self, worktree: &Path, commit: &str) -> Result<Arc<RepoMap>, RepoMapError> {
        check_commit(commit)?;
        if let Some(map) = self.remembered(commit) {
            return Ok(map);
        }
        if let Some(map) = self.read_disk(commit) {
            return Ok(self.remember(commit, map));
        }
        let mut map = RepoMap::build(worktree, &self.limits)?;
        map.commit = Some(commit.to_string());
        self.write_disk(commit, &map);
        Ok(self.remember(commit, map))
    }

    /// The map of `commit` of the repository at `repo`, with no worktree at hand: on a miss
    /// the commit's files are written from the object database into a scratch directory under
    /// `scratch` (removed after), and mapped there. Blocking.
    pub fn for_repo_commit(
        &self,
        repo: &Path,
        commit: &str,
        scratch: &Path,
    ) -> Result<Arc<RepoMap>, RepoMapError> {
        check_commit(commit)?;
        if let Some(map) = self.remembered(commit) {
            return Ok(map);
        }
        if let Some(map) = self.read_disk(commit) {
            return Ok(self.remember(commit, map));
        }
        let failed = |message: String| RepoMapError::Export {
            commit: commit.to_string(),
            message,
        };
        std::fs::create_dir_all(scratch).map_err(|e| failed(e.to_string()))?;
        let dir = tempfile::Builder::new()
            .prefix("repo-map-")
            .tempdir_in(scratch)
            .map_err(|e| failed(e.to_string()))?;
        crate::delivery::worktree::export_tree(
            repo,
            commit,
            dir.path(),
            self.limits.max_walk_entries,
            self.limits.max_file_bytes,
        )
        .map_err(|e| failed(e.to_string()))?;
        self.for_commit(dir.path(), commit)
    }

    fn remembered(&self, commit: &str) -> Option<Arc<RepoMap>> {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let at = memory.iter().position(|(c, _)| c == commit)?;
        let entry = memory.remove(at)?;
        let map = entry.1.clone();
        memory.push_back(entry);
        Some(map)
    }

    fn remember(&self, commit: &str, map: RepoMap) -> Arc<RepoMap> {
        let map = Arc::new(map);
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.retain(|(c, _)| c != commit);
        memory.push_back((commit.to_string(), map.clone()));
        while memory.len() > self.capacity {
            memory.pop_front();
        }
        map
    }

    /// The cache file of `commit` under these limits.
    fn file(&self, commit: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!(
            "repo-map-v{FORMAT}-{}-{commit}.json",
            fingerprint(&self.limits)
        )))
    }

    fn read_disk(&self, commit: &str) -> Option<RepoMap> {
        let path = self.file(commit)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "repo map cache unreadable; rebuilding");
                return None;
            }
        };
        match decode(&bytes, commit) {
            Ok(map) => Some(map),
            Err(why) => {
                tracing::warn!(path = %path.display(), why, "repo map cache file refused; rebuilding");
                None
            }
        }
    }

    /// Writes the map's file; a failure only costs the next process a rebuild, so it is logged.
    fn write_disk(&self, commit: &str, map: &RepoMap) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.file(commit)) else {
            return;
        };
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&encode(map))?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "repo map cache not written");
        }
    }
}

/// `MAGIC digest\n` then the JSON body.
fn encode(map: &RepoMap) -> Vec<u8> {
    let body = serde_json::to_vec(map).expect("a repo map serialises");
    let digest = hex::encode(Sha256::digest(&body));
    let mut out = format!("{MAGIC} {digest}\n").into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The map in a cache file, if the file is whole and of `commit`.
fn decode(bytes: &[u8], commit: &str) -> Result<RepoMap, &'static str> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "header is not text")?;
    let digest = header
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or("not a repo map file")?;
    let body = &bytes[newline + 1..];
    if hex::encode(Sha256::digest(body)) != digest {
        return Err("digest does not match the content");
    }
    let map: RepoMap = serde_json::from_slice(body).map_err(|_| "content is not a map")?;
    if map.commit.as_deref() != Some(commit) {
        return Err("the file holds another commit's map");
    }
    Ok(map)
}

/// A short digest of the limits: maps built within other limits live in other files.
fn fingerprint(limits: &Limits) -> String {
    let key = format!(
        "{}|{}|{}|{}",
        limits.max_files,
        limits.max_file_bytes,
        limits.parse_timeout.as_micros(),
        limits.max_walk_entries
    );
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex characters. It names a cache file,
/// so nothing else is accepted.
fn check_commit(commit: &str) -> Result<(), RepoMapError> {
    let hex = commit
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && (commit.len() == 40 || commit.len() == 64) {
        Ok(())
    } else {
        Err(RepoMapError::BadCommit {
            commit: commit.chars().take(80).collect(),
        })
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn only_commit_ids_are_accepted() {
        assert!(check_commit(&"a".repeat(40)).is_ok());
        assert!(check_commit(&"0123456789abcdef".repeat(4)).is_ok());
        for bad in [
            "",
            "HEAD",
            "main",
            &"A".repeat(40),
            &format!("../{}", "a".repeat(37)),
        ] {
            let err = check_commit(bad).unwrap_err().to_string();
            assert!(err.contains("40 or 64"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_tampered_file_is_refused() {
        let mut map = RepoMap {
            commit: Some("a".repeat(40)),
            files: Vec::new(),
            left_out: Vec::new(),
            walk_truncated: false,
        };
        let bytes = encode(&map);
        assert_eq!(decode(&bytes, &"a".repeat(40)).unwrap(), map);
        assert!(decode(&bytes, &"b".repeat(40)).is_err(), "another commit");
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() = b' ';
        assert!(decode(&tampered, &"a".repeat(40)).is_err());
        assert!(decode(&bytes[..bytes.len() / 2], &"a".repeat(40)).is_err());
        map.walk_truncated = true;
        assert_ne!(encode(&map), bytes);
    }
}
