//! The repository map: what a team that plans or changes code is shown of the repository — its
//! file tree (gitignore-aware) and each source file's top-level symbols, files most relied on
//! first, cut to a token budget.
//!
//! - [`RepoMap::build`] walks a directory holding a commit (a worktree) and parses Rust,
//!   Python, JavaScript, TypeScript and Go with tree-sitter; everything else is listed by path.
//!   It only reads files — it never runs `git`, since sandboxed code may have touched the tree —
//!   and every limit ([`Limits`]) leaves a note in the map of what it left out.
//! - [`RepoMap::render`] gives the compact text map within a token budget (never over it).
//! - [`RepoMapCache::for_commit`] builds once per commit id and keeps the result in memory
//!   (bounded LRU) and, when given a directory, on disk.
//! - [`RepoMap::check_files_in_scope`] sorts the paths a planner named into existing,
//!   plausibly new and invalid ones.
//!
//! Building reads and parses many files: call it from `spawn_blocking`.

mod build;
mod cache;
mod languages;
mod rank;
mod render;
mod scope;
mod symbols;
mod walk;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cache::RepoMapCache;
pub use languages::Lang;
pub use scope::{InvalidPath, ScopeCheck};
pub use symbols::{Symbol, SymbolKind};
pub use walk::LeftOutReason;

/// Files mapped at most (read, and parsed when in a known language); the rest of the tree is
/// listed as left out. Source files in known languages are chosen first, shallowest first.
pub const DEFAULT_MAX_FILES: usize = 5_000;
/// Files larger than this are listed but never read.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024;
/// Wall time allowed to parse and query one file.
pub const DEFAULT_PARSE_TIMEOUT: Duration = Duration::from_millis(250);
/// Tree entries walked at most; past this the walk stops and the map says so.
pub const DEFAULT_MAX_WALK_ENTRIES: usize = 100_000;

/// The bounds a map is built within. Part of the cache key: a map built with other limits is
/// another map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub parse_timeout: Duration,
    pub max_walk_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: DEFAULT_MAX_FILES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            parse_timeout: DEFAULT_PARSE_TIMEOUT,
            max_walk_entries: DEFAULT_MAX_WALK_ENTRIES,
        }
    }
}

/// Why a map could not be built or looked up.
#[derive(Debug, thiserror::Error)]
pub enum RepoMapError {
    #[error("cannot map {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("\"{commit}\" is not a commit id: expected 40 or 64 lowercase hexadecimal characters")]
    BadCommit { commit: String },
    /// A built-in tag query does not fit its grammar (a defect, caught by the unit tests).
    #[error("the {lang:?} tag query does not compile: {message}")]
    Query { lang: Lang, message: String },
    /// The commit's files could not be written out to be mapped.
    #[error("cannot read commit {commit} to map it: {message}")]
    Export { commit: String, message: String },
}

/// A repository's map: every file of the tree that was mapped, most relied-on first, with its
/// symbols; and what was left out and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoMap {
    /// The commit the tree holds, when built through the cache.
    pub commit: Option<String>,
    /// Ranked: the files other files refer to most come first; ties by path.
    files: Vec<MappedFile>,
    left_out: Vec<LeftOutFile>,
    /// The walk stopped at [`Limits::max_walk_entries`]: more files exist than are listed.
    walk_truncated: bool,
}

/// One mapped file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedFile {
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// The language its symbols were read in; `None` for other files (listed by path only).
    pub lang: Option<Lang>,
    /// Top-level definitions in line order.
    pub symbols: Vec<Symbol>,
    /// How many other files use a name this file defines.
    pub referenced_by: u32,
    /// Parsing stopped at the time bound: the symbols may be partial.
    #[serde(default)]
    pub incomplete: bool,
}

/// A file of the tree the map lists without its symbols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOutFile {
    pub path: String,
    pub reason: LeftOutReason,
}

impl RepoMap {
    /// Builds the map of the tree under `root` (a directory holding one commit). Blocking.
    pub fn build(root: &std::path::Path, limits: &Limits) -> Result<RepoMap, RepoMapError> {
        build::build(root, limits)
    }

    /// Mapped files, most relied-on first.
    pub fn files(&self) -> &[MappedFile] {
        &self.files
    }

    /// The file at `path`, if mapped.
    pub fn file(&self, path: &str) -> Option<&MappedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Files of the tree listed without being mapped, in path order.
    pub fn left_out(&self) -> &[LeftOutFile] {
        &self.left_out
    }

    /// Whether the walk stopped at its entry limit (the tree holds more than is listed).
    pub fn walk_truncated(&self) -> bool {
        self.walk_truncated
    }

    /// The text map within `budget_tokens` (estimated as [`estimate_tokens`] does): a header,
    /// ranked files with their symbols, then further paths only, then how many were not shown.
    pub fn render(&self, budget_tokens: usize) -> String {
        render::render(self, budget_tokens)
    }

    /// Sorts the paths a planner named into existing, plausibly new and invalid ones.
    pub fn check_files_in_scope<S: AsRef<str>>(&self, paths: &[S]) -> ScopeCheck {
        scope::check(self, paths)
    }
}

/// Tokens estimated from text: the engine's context estimator, so a map rendered for a budget
/// counts the same when context is packed.
pub fn estimate_tokens(text: &str) -> usize {
    super::context::estimate_tokens(text)
}
