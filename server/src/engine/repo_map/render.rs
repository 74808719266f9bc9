//! The text form of a map, cut to a token budget: a header (what the map holds and what it
//! left out), then ranked files with their symbols (`  12: fn parse_config(…)`), then further
//! paths alone, then `… N more files not shown`. Room for that last line is kept from the
//! start, so the whole text never estimates over the budget.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::languages::Lang;
use super::symbols::{Symbol, SymbolKind};
use super::{MappedFile, RepoMap, estimate_tokens};

/// Symbols shown per file; the rest are counted on one line.
pub const MAX_RENDERED_SYMBOLS: usize = 40;

pub fn render(map: &RepoMap, budget: usize) -> String {
    let total = map.files.len();
    let reserve = estimate_tokens(&more_line(total));
    let mut out = String::new();
    let fits = |out: &str| estimate_tokens(out) + reserve <= budget;

    push_if_fits(&mut out, &header(map), fits);
    let mut shown = vec![false; total];
    for (i, file) in map.files.iter().enumerate() {
        if file.symbols.is_empty() {
            continue;
        }
        if !push_if_fits(&mut out, &file_block(file), fits) {
            break;
        }
        shown[i] = true;
    }
    for (i, file) in map.files.iter().enumerate() {
        if shown[i] {
            continue;
        }
        if !push_if_fits(&mut out, &path_line(file), fits) {
            break;
        }
        shown[i] = true;
    }
    let hidden = shown.iter().filter(|s| !**s).count();
    if hidden > 0 {
        let line = more_line(hidden);
        if estimate_tokens(&out) + estimate_tokens(&line) <= budget {
            out.push_str(&line);
        }
    }
    out
}

/// Appends `text` when the result still fits; says whether it did.
fn push_if_fits(out: &mut String, text: &str, fits: impl Fn(&str) -> bool) -> bool {
    let before = out.len();
    out.push_str(text);
    if fits(out) {
        true
    } else {
        out.truncate(before);
        false
    }
}

fn more_line(n: usize) -> String {
    format!("… {n} more files not shown\n")
}

fn header(map: &RepoMap) -> String {
    let mut text = String::from("Repository map");
    if let Some(commit) = &map.commit {
        let _ = write!(text, " at {}", commit.get(..12).unwrap_or(commit));
    }
    let with_symbols = map.files.iter().filter(|f| !f.symbols.is_empty()).count();
    let _ = writeln!(
        text,
        ": {} files ({with_symbols} with symbols), those other files use most first.",
        map.files.len()
    );
    let mut reasons: BTreeMap<super::LeftOutReason, usize> = BTreeMap::new();
    for file in &map.left_out {
        *reasons.entry(file.reason).or_default() += 1;
    }
    if !reasons.is_empty() || map.walk_truncated {
        let parts: Vec<String> = reasons
            .iter()
            .map(|(reason, n)| format!("{n} {}", reason.describe()))
            .collect();
        let _ = write!(text, "Left out: {}", parts.join(", "));
        if map.walk_truncated {
            if !parts.is_empty() {
                text.push_str("; ");
            }
            text.push_str("the tree has more files than were walked");
        }
        text.push_str(".\n");
    }
    text
}

/// The file's path on its own line, noting a parse cut short.
fn path_line(file: &MappedFile) -> String {
    if file.incomplete {
        format!("{} (parse cut short by the time limit)\n", file.path)
    } else {
        format!("{}\n", file.path)
    }
}

fn file_block(file: &MappedFile) -> String {
    let mut block = path_line(file);
    let lang = file.lang.unwrap_or(Lang::Rust);
    for symbol in file.symbols.iter().take(MAX_RENDERED_SYMBOLS) {
        let _ = writeln!(block, "  {}: {}", symbol.line, signature(lang, symbol));
    }
    if file.symbols.len() > MAX_RENDERED_SYMBOLS {
        let _ = writeln!(
            block,
            "  … {} more symbols",
            file.symbols.len() - MAX_RENDERED_SYMBOLS
        );
    }
    block
}

/// How a symbol reads in the map: `fn Config::load(…)`, `class Foo`, `type Store interface`.
pub fn signature(lang: Lang, symbol: &Symbol) -> String {
    let name = match &symbol.container {
        Some(container) => format!("{container}{}{}", lang.member_separator(), symbol.name),
        None => symbol.name.clone(),
    };
    let call = if symbol.kind.is_callable() {
        "(…)"
    } else {
        ""
    };
    match (lang, symbol.kind) {
        (Lang::Go, SymbolKind::Method) => match &symbol.container {
            Some(container) => format!("func ({container}) {}(…)", symbol.name),
            None => format!("func {}(…)", symbol.name),
        },
        (Lang::Go, SymbolKind::Struct) => format!("type {name} struct"),
        (Lang::Go, SymbolKind::Interface) => format!("type {name} interface"),
        (Lang::Python, SymbolKind::Const) => format!("{name} = …"),
        (Lang::Rust, SymbolKind::Macro) => format!("macro_rules! {name}"),
        _ => format!("{} {name}{call}", keyword(lang, symbol.kind)),
    }
}

fn keyword(lang: Lang, kind: SymbolKind) -> &'static str {
    use SymbolKind as K;
    match (lang, kind) {
        (Lang::Rust, K::Function | K::Method) => "fn",
        (Lang::Rust, K::Module) => "mod",
        (Lang::Python, K::Function | K::Method) => "def",
        (Lang::Go, K::Function | K::Method) => "func",
        (Lang::JavaScript | Lang::TypeScript | Lang::Tsx, K::Function) => "function",
        (Lang::JavaScript | Lang::TypeScript | Lang::Tsx, K::Method) => "method",
        (Lang::TypeScript | Lang::Tsx, K::Module) => "namespace",
        (_, K::Macro) => "macro",
        (_, K::Struct) => "struct",
        (_, K::Class) => "class",
        (_, K::Enum) => "enum",
        (_, K::Trait) => "trait",
        (_, K::Interface) => "interface",
        (_, K::Type) => "type",
        (_, K::Const) => "const",
        (_, K::Module) => "module",
    }
}
