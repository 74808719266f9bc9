//! Checking the files a planner put in scope against the map: each path exists, is plausibly
//! new (its directory exists, or is one new directory under an existing one, and its kind of
//! file is known), or is invalid — with a message that says what was wrong and what is
//! accepted, so it can be sent back to the model as it is.

use std::collections::BTreeSet;

use super::languages::Lang;
use super::{LeftOutReason, RepoMap};

/// Extensions accepted for new files besides the mapped languages' and those already in the
/// tree.
const COMMON_EXTENSIONS: &[&str] = &[
    "md", "txt", "toml", "json", "yaml", "yml", "sql", "html", "css", "scss", "sh", "cfg", "ini",
    "xml", "proto", "graphql", "csv", "lock", "rst",
];

/// File names without an extension accepted for new files besides those already in the tree.
const COMMON_NAMES: &[&str] = &["Makefile", "Dockerfile", "LICENSE", "README", "Justfile"];

/// What was accepted.
const ACCEPTED: &str = "accepted: an existing file, or a new file with a known extension \
     in an existing directory or in one new directory directly under an existing one, named \
     relative to the repository root with `/` (e.g. `src/lib.rs`)";

/// The verdict on a list of paths. Each path appears once, in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeCheck {
    /// Files of the tree (mapped or left out of the map, such as a large or binary file).
    pub existing: Vec<String>,
    /// Files that do not exist yet and may be created.
    pub new: Vec<String>,
    /// Paths refused, each with why and what is accepted.
    pub invalid: Vec<InvalidPath>,
}

/// A refused path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath {
    pub path: String,
    pub message: String,
}

impl ScopeCheck {
    /// Whether every path was accepted.
    pub fn is_valid(&self) -> bool {
        self.invalid.is_empty()
    }
}

/// What a map knows of the tree: its files and directories, extensions and extensionless names.
struct Known<'a> {
    files: BTreeSet<&'a str>,
    symlinks: BTreeSet<&'a str>,
    dirs: BTreeSet<&'a str>,
    extensions: BTreeSet<&'a str>,
    names: BTreeSet<&'a str>,
}

impl<'a> Known<'a> {
    fn of(map: &'a RepoMap) -> Known<'a> {
        let mut known = Known {
            files: BTreeSet::new(),
            symlinks: BTreeSet::new(),
            dirs: BTreeSet::from([""]),
            extensions: COMMON_EXTENSIONS.iter().copied().collect(),
            names: COMMON_NAMES.iter().copied().collect(),
        };
        let left_out = map
            .left_out
            .iter()
            .map(|f| (f.path.as_str(), Some(f.reason)));
        let mapped = map.files.iter().map(|f| (f.path.as_str(), None));
        for (path, reason) in mapped.chain(left_out) {
            if reason == Some(LeftOutReason::Symlink) {
                known.symlinks.insert(path);
            } else {
                known.files.insert(path);
            }
            let name = file_name(path);
            match name.rsplit_once('.') {
                Some((_, ext)) => known.extensions.insert(ext),
                None => known.names.insert(name),
            };
            let mut dir = parent(path);
            while known.dirs.insert(dir) {
                dir = parent(dir);
            }
        }
        known
    }

    fn known_kind(&self, path: &str) -> bool {
        let name = file_name(path);
        match name.rsplit_once('.') {
            Some(("", _)) => false,
            Some((_, ext)) => Lang::from_path(path).is_some() || self.extensions.contains(ext),
            None => self.names.contains(name),
        }
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

pub fn check<S: AsRef<str>>(map: &RepoMap, paths: &[S]) -> ScopeCheck {
    let known = Known::of(map);
    let mut seen = BTreeSet::new();
    let mut out = ScopeCheck::default();
    for raw in paths {
        let raw = raw.as_ref();
        if !seen.insert(raw) {
            continue;
        }
        match verdict(&known, raw) {
            Ok(Verdict::Existing(path)) => out.existing.push(path),
            Ok(Verdict::New(path)) => out.new.push(path),
            Err(why) => out.invalid.push(InvalidPath {
                path: raw.to_string(),
                message: format!("`{raw}` {why}; {ACCEPTED}"),
            }),
        }
    }
    out
}

enum Verdict {
    Existing(String),
    New(String),
}

fn verdict(known: &Known<'_>, raw: &str) -> Result<Verdict, String> {
    let path = normalise(raw)?;
    if known.files.contains(path) {
        return Ok(Verdict::Existing(path.to_string()));
    }
    if known.symlinks.contains(path) {
        return Err("is a symbolic link, which is never read or edited".into());
    }
    if known.dirs.contains(path) {
        return Err("is a directory, not a file".into());
    }
    let mut ancestor = parent(path);
    while !ancestor.is_empty() {
        if known.files.contains(ancestor) || known.symlinks.contains(ancestor) {
            return Err(format!("is under `{ancestor}`, which is a file"));
        }
        ancestor = parent(ancestor);
    }
    let dir = parent(path);
    if !known.dirs.contains(dir) && !known.dirs.contains(parent(dir)) {
        return Err(format!(
            "does not exist, and neither does its directory `{dir}` nor the one above it"
        ));
    }
    if !known.known_kind(path) {
        return Err(
            "does not exist, and its kind of file (extension) is not one this \
                    repository or Factory knows"
                .into(),
        );
    }
    Ok(Verdict::New(path.to_string()))
}

/// The path as the map names files: relative, `/`-separated, no `.`/`..`/empty components
/// (a leading `./` is dropped), nothing under `.git`.
fn normalise(raw: &str) -> Result<&str, String> {
    let path = raw.trim();
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.starts_with('/') || path.starts_with('~') || path.get(1..2) == Some(":") {
        return Err("is absolute".into());
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("contains a backslash or a control character".into());
    }
    if path.ends_with('/') {
        return Err("names a directory, not a file".into());
    }
    for part in path.split('/') {
        match part {
            "" => return Err("has an empty component (`//`)".into()),
            "." | ".." => return Err(format!("has a `{part}` component")),
            ".git" => return Err("is inside `.git`, which is never in scope".into()),
            _ => {}
        }
    }
    Ok(path)
}
