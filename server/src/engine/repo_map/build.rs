//! Building a map: walk the tree, choose the files within the limit, read and parse them on a
//! few worker threads (each with its own parsers), then rank. The result does not depend on
//! the number of workers or their timing (except for files that hit the parse time bound).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::languages::Lang;
use super::rank::{self, Node};
use super::symbols::{Extractor, FileSymbols};
use super::walk::{self, LeftOutReason, ReadRefusal};
use super::{LeftOutFile, Limits, MappedFile, RepoMap, RepoMapError};

/// Worker threads at most (fewer on a smaller machine).
const MAX_WORKERS: usize = 8;
/// Below this many files one thread does it all: spawning costs more than it saves.
const FILES_PER_WORKER: usize = 64;

/// What reading and parsing one file gave.
enum Outcome {
    Mapped(FileSymbols),
    Listed,
    LeftOut(LeftOutReason),
}

pub fn build(root: &Path, limits: &Limits) -> Result<RepoMap, RepoMapError> {
    let tree = walk::walk(root, limits)?;
    let mut left_out: Vec<LeftOutFile> = tree
        .left_out
        .into_iter()
        .map(|(path, reason)| LeftOutFile { path, reason })
        .collect();
    let (chosen, over) = choose(tree.files, limits.max_files);
    left_out.extend(over.into_iter().map(|path| LeftOutFile {
        path,
        reason: LeftOutReason::OverFileLimit,
    }));

    let outcomes = process(root, &chosen, limits)?;
    let mut files = Vec::with_capacity(chosen.len());
    let mut references = Vec::with_capacity(chosen.len());
    for (path, outcome) in chosen.into_iter().zip(outcomes) {
        let lang = Lang::from_path(&path);
        match outcome {
            Outcome::LeftOut(reason) => left_out.push(LeftOutFile { path, reason }),
            Outcome::Listed => {
                files.push(mapped(path, None, FileSymbols::default()));
                references.push(BTreeSet::new());
            }
            Outcome::Mapped(mut symbols) => {
                references.push(std::mem::take(&mut symbols.references));
                files.push(mapped(path, lang, symbols));
            }
        }
    }
    let files = ranked(files, &references);
    left_out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(RepoMap {
        commit: None,
        files,
        left_out,
        walk_truncated: tree.walk_truncated,
    })
}

fn mapped(path: String, lang: Option<Lang>, symbols: FileSymbols) -> MappedFile {
    MappedFile {
        path,
        lang,
        symbols: symbols.definitions,
        referenced_by: 0,
        incomplete: symbols.incomplete,
    }
}

/// Splits the walked files into those mapped (at most `max`, in path order) and those over the
/// limit: source files in known languages first, shallowest first, then by path.
fn choose(mut files: Vec<String>, max: usize) -> (Vec<String>, Vec<String>) {
    if files.len() <= max {
        return (files, Vec::new());
    }
    files.sort_by_cached_key(|p| {
        (
            Lang::from_path(p).is_none(),
            p.matches('/').count(),
            p.clone(),
        )
    });
    let over = files.split_off(max);
    files.sort();
    (files, over)
}

/// Reads and parses every chosen file; outcomes in the same order.
fn process(root: &Path, paths: &[String], limits: &Limits) -> Result<Vec<Outcome>, RepoMapError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
        .min(paths.len().div_ceil(FILES_PER_WORKER))
        .max(1);
    if workers == 1 {
        let mut extractor = Extractor::default();
        return paths
            .iter()
            .map(|p| one_file(root, p, limits, &mut extractor))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<Outcome, RepoMapError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut extractor = Extractor::default();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            break done;
                        };
                        done.push((i, one_file(root, path, limits, &mut extractor)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a repo-map worker panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, outcome)| outcome).collect()
}

fn one_file(
    root: &Path,
    path: &str,
    limits: &Limits,
    extractor: &mut Extractor,
) -> Result<Outcome, RepoMapError> {
    let lang = Lang::from_path(path);
    // Files in no known language are only listed: their first bytes tell binary from text.
    let limit = match lang {
        Some(_) => usize::MAX,
        None => walk::BINARY_SNIFF_BYTES,
    };
    let bytes = match walk::read_confined(root, path, limits.max_file_bytes, limit) {
        Ok(bytes) => bytes,
        Err(ReadRefusal::TooLarge) => return Ok(Outcome::LeftOut(LeftOutReason::TooLarge)),
        Err(ReadRefusal::Unreadable) => return Ok(Outcome::LeftOut(LeftOutReason::Unreadable)),
    };
    if walk::looks_binary(&bytes) {
        return Ok(Outcome::LeftOut(LeftOutReason::Binary));
    }
    match lang {
        Some(lang) => Ok(Outcome::Mapped(extractor.extract(
            lang,
            &bytes,
            limits.parse_timeout,
        )?)),
        None => Ok(Outcome::Listed),
    }
}

/// The files in rank order, each with its count of referring files.
fn ranked(files: Vec<MappedFile>, references: &[BTreeSet<String>]) -> Vec<MappedFile> {
    let nodes: Vec<Node<'_>> = files
        .iter()
        .zip(references)
        .map(|(file, references)| Node {
            path: &file.path,
            defines: file.symbols.iter().map(|s| s.name.as_str()).collect(),
            references,
        })
        .collect();
    let (order, referenced_by) = rank::rank(&nodes);
    drop(nodes);
    let mut slots: Vec<Option<MappedFile>> = files.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| {
            let mut file = slots[i].take()?;
            file.referenced_by = referenced_by[i];
            Some(file)
        })
        .collect()
}
