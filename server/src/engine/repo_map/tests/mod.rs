//! The repository map against real fixture repositories in temporary directories: symbols per
//! language, what is skipped, ranking, budgets, the cache and the scope check.

mod behaviour;
mod symbols;

use super::*;
use std::path::Path;
use std::process::Command;

pub(super) fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

pub(super) fn git_init(root: &Path) {
    let status = Command::new("git")
        .args(["init", "-q"])
        .current_dir(root)
        .status()
        .expect("git runs");
    assert!(status.success());
}

/// (name, kind, line, container) of a symbol.
pub(super) type Sym = (String, SymbolKind, u32, Option<String>);

/// The symbols of a mapped file.
pub(super) fn symbols(map: &RepoMap, path: &str) -> Vec<Sym> {
    map.file(path)
        .unwrap_or_else(|| panic!("{path} is mapped"))
        .symbols
        .iter()
        .map(|s| (s.name.clone(), s.kind, s.line, s.container.clone()))
        .collect()
}

pub(super) fn sym(name: &str, kind: SymbolKind, line: u32) -> Sym {
    (name.to_string(), kind, line, None)
}

pub(super) fn method(name: &str, line: u32, of: &str) -> Sym {
    (
        name.to_string(),
        SymbolKind::Method,
        line,
        Some(of.to_string()),
    )
}

const RUST_CONFIG: &str = "//! Settings.
pub struct Config {
    pub name: String,
}

impl Config {
    pub fn load(path: &str) -> Config {
        parse_config(path)
    }
}

pub fn parse_config(text: &str) -> Config {
    Config { name: text.to_string() }
}

pub enum Mode { Fast, Slow }
pub trait Source {
    fn read(&self) -> String;
}
pub type Name = String;
pub const MAX_NAMES: usize = 3;
mod inner {}
macro_rules! shout { () => {} }
";

pub(super) fn user_of_config(name: &str) -> String {
    format!(
        "use crate::config::parse_config;\npub fn {name}() {{ let _c = parse_config(\"x\"); }}\n"
    )
}

/// A Rust crate in a git repository: `config.rs` used by three files, `lonely.rs` by none, an
/// ignored file and directory, and a symlink.
pub(super) fn rust_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git_init(dir.path());
    write(
        dir.path(),
        &[
            (".gitignore", "target/\nsecret.rs\n"),
            ("Cargo.toml", "[package]\nname = \"fixture\"\n"),
            ("src/config.rs", RUST_CONFIG),
            ("src/a.rs", &user_of_config("alpha")),
            ("src/b.rs", &user_of_config("beta")),
            ("src/c.rs", &user_of_config("gamma")),
            ("src/lonely.rs", "pub fn nobody_calls_me() {}\n"),
            ("secret.rs", "pub fn hidden_symbol() {}\n"),
            (
                "target/debug/generated.rs",
                "pub fn generated_symbol() {}\n",
            ),
        ],
    );
    std::os::unix::fs::symlink(dir.path().join("src/config.rs"), dir.path().join("link.rs"))
        .unwrap();
    dir
}
