//! Symbols of one source file: its top-level definitions (with their line) and the names it
//! refers to, found by running the language's tag queries over a tree-sitter parse. Parsing and
//! querying each stop at a per-file deadline, so one pathological file cannot stall the map.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, Query, QueryCursor, QueryCursorOptions};

use super::RepoMapError;
use super::languages::Lang;

/// Definitions kept per file (a generated file can define thousands).
pub const MAX_SYMBOLS_PER_FILE: usize = 500;
/// Distinct referenced names kept per file.
pub const MAX_REFERENCES_PER_FILE: usize = 4_000;
/// Longest name or container kept, in bytes (longer ones are cut at a character boundary).
const MAX_NAME_BYTES: usize = 80;

/// What kind of definition a symbol is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolKind {
    Function,
    Method,
    Struct,
    Class,
    Enum,
    Trait,
    Interface,
    Type,
    Const,
    Module,
    Macro,
}

impl SymbolKind {
    fn from_capture(name: &str) -> Option<SymbolKind> {
        Some(match name.strip_prefix("definition.")? {
            "function" => SymbolKind::Function,
            "method" => SymbolKind::Method,
            "struct" => SymbolKind::Struct,
            "class" => SymbolKind::Class,
            "enum" => SymbolKind::Enum,
            "trait" => SymbolKind::Trait,
            "interface" => SymbolKind::Interface,
            "type" => SymbolKind::Type,
            "const" => SymbolKind::Const,
            "module" => SymbolKind::Module,
            "macro" => SymbolKind::Macro,
            _ => return None,
        })
    }

    /// Functions, methods and macros are rendered with `(…)`.
    pub fn is_callable(self) -> bool {
        matches!(
            self,
            SymbolKind::Function | SymbolKind::Method | SymbolKind::Macro
        )
    }
}

/// One top-level definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// 1-based line of the name.
    pub line: u32,
    /// The type, class or trait a method belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// What one file yielded.
#[derive(Debug, Default)]
pub struct FileSymbols {
    pub definitions: Vec<Symbol>,
    pub references: BTreeSet<String>,
    /// Parsing or querying hit the deadline (what was found before it is kept).
    pub incomplete: bool,
}

/// A language's compiled queries, shared by every worker.
struct Compiled {
    grammar: tree_sitter::Language,
    definitions: Query,
    references: Query,
}

/// The language's queries, compiled on its first use (compiling a grammar's queries is a
/// noticeable cost, so a repository without some language never pays for it).
fn compiled(lang: Lang) -> Result<&'static Compiled, RepoMapError> {
    static QUERIES: [OnceLock<Result<Compiled, String>>; Lang::ALL.len()] =
        [const { OnceLock::new() }; Lang::ALL.len()];
    QUERIES[lang.index()]
        .get_or_init(|| {
            let grammar = lang.grammar();
            let definitions = Query::new(&grammar, &lang.definitions())
                .map_err(|e| format!("definitions: {e}"))?;
            let references =
                Query::new(&grammar, lang.references()).map_err(|e| format!("references: {e}"))?;
            Ok(Compiled {
                grammar,
                definitions,
                references,
            })
        })
        .as_ref()
        .map_err(|message| RepoMapError::Query {
            lang,
            message: message.clone(),
        })
}

/// A worker's parsers, one per language, made on first use.
#[derive(Default)]
pub struct Extractor {
    parsers: [Option<Parser>; Lang::ALL.len()],
    cursor: Option<QueryCursor>,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Extractor")
    }
}

impl Extractor {
    /// Parses `source` as `lang` and runs both queries, within `budget` of wall time.
    pub fn extract(
        &mut self,
        lang: Lang,
        source: &[u8],
        budget: Duration,
    ) -> Result<FileSymbols, RepoMapError> {
        let queries = compiled(lang)?;
        let deadline = Instant::now() + budget;
        let slot = &mut self.parsers[lang.index()];
        if slot.is_none() {
            let mut parser = Parser::new();
            parser
                .set_language(&queries.grammar)
                .map_err(|e| RepoMapError::Query {
                    lang,
                    message: format!("grammar: {e}"),
                })?;
            *slot = Some(parser);
        }
        let parser = slot.as_mut().expect("the parser was just made");
        let mut out = FileSymbols::default();
        let mut past_deadline = |_: &tree_sitter::ParseState| {
            if Instant::now() >= deadline {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let options = tree_sitter::ParseOptions::new().progress_callback(&mut past_deadline);
        let len = source.len();
        let tree = parser.parse_with_options(
            &mut |offset, _| &source[offset.min(len)..],
            None,
            Some(options),
        );
        // A parse stopped by the deadline leaves the parser mid-way: start afresh next time.
        parser.reset();
        let Some(tree) = tree else {
            out.incomplete = true;
            return Ok(out);
        };
        let cursor = self.cursor.get_or_insert_with(QueryCursor::new);
        let root = tree.root_node();
        out.incomplete |= definitions(
            cursor,
            &queries.definitions,
            root,
            source,
            deadline,
            &mut out.definitions,
        );
        out.incomplete |= references(
            cursor,
            &queries.references,
            root,
            source,
            deadline,
            &mut out.references,
        );
        Ok(out)
    }
}

/// A query progress callback that stops the query at `deadline`.
fn until(deadline: Instant) -> impl FnMut(&tree_sitter::QueryCursorState) -> ControlFlow<()> {
    move |_| {
        if Instant::now() >= deadline {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Collects definitions; returns whether the deadline cut the search short.
fn definitions(
    cursor: &mut QueryCursor,
    query: &Query,
    root: Node<'_>,
    source: &[u8],
    deadline: Instant,
    out: &mut Vec<Symbol>,
) -> bool {
    let names = query.capture_names();
    let mut progress = until(deadline);
    let options = QueryCursorOptions::new().progress_callback(&mut progress);
    // (line, name) → (pattern index, symbol): the earliest pattern wins a tie.
    let mut found: std::collections::BTreeMap<(u32, String), (usize, Symbol)> =
        std::collections::BTreeMap::new();
    let mut matches = cursor.matches_with_options(query, root, source, options);
    while let Some(m) = matches.next() {
        let mut name = None;
        let mut kind = None;
        let mut container = None;
        for capture in m.captures() {
            match names[capture.index as usize] {
                "name" => name = Some(capture.node),
                "container" => container = Some(node_text(capture.node, source)),
                other => kind = kind.or(SymbolKind::from_capture(other)),
            }
        }
        let (Some(node), Some(kind)) = (name, kind) else {
            continue;
        };
        let symbol = Symbol {
            name: node_text(node, source),
            kind,
            line: node.start_position().row as u32 + 1,
            container: container.filter(|_| kind == SymbolKind::Method),
        };
        let key = (symbol.line, symbol.name.clone());
        match found.get(&key) {
            Some((index, _)) if *index <= m.pattern_index => {}
            _ => {
                found.insert(key, (m.pattern_index, symbol));
            }
        }
    }
    let cut = Instant::now() >= deadline;
    out.extend(
        found
            .into_values()
            .map(|(_, symbol)| symbol)
            .filter(|s| !s.name.is_empty())
            .take(MAX_SYMBOLS_PER_FILE),
    );
    cut
}

/// Collects referenced names; returns whether the deadline cut the search short.
fn references(
    cursor: &mut QueryCursor,
    query: &Query,
    root: Node<'_>,
    source: &[u8],
    deadline: Instant,
    out: &mut BTreeSet<String>,
) -> bool {
    let mut progress = until(deadline);
    let options = QueryCursorOptions::new().progress_callback(&mut progress);
    let mut matches = cursor.matches_with_options(query, root, source, options);
    while let Some(m) = matches.next() {
        for capture in m.captures() {
            if out.len() >= MAX_REFERENCES_PER_FILE {
                return false;
            }
            let text = source.get(capture.node.byte_range()).unwrap_or_default();
            if text.len() < 2 || text.len() > MAX_NAME_BYTES {
                continue;
            }
            if let Ok(name) = std::str::from_utf8(text)
                && !out.contains(name)
            {
                out.insert(name.to_string());
            }
        }
    }
    Instant::now() >= deadline
}

/// A node's text on one line, cut to [`MAX_NAME_BYTES`].
fn node_text(node: Node<'_>, source: &[u8]) -> String {
    let raw = String::from_utf8_lossy(source.get(node.byte_range()).unwrap_or_default());
    let mut text: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
