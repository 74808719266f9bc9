//! Symbols per language, read from fixture repositories.

use super::*;
use crate::engine::repo_map::{LeftOutReason, Limits, RepoMap, SymbolKind};

#[test]
fn rust_symbols_ranking_ignores_and_symlinks() {
    let repo = rust_repo();
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    use SymbolKind as K;
    assert_eq!(
        symbols(&map, "src/config.rs"),
        vec![
            sym("Config", K::Struct, 2),
            method("load", 7, "Config"),
            sym("parse_config", K::Function, 12),
            sym("Mode", K::Enum, 16),
            sym("Source", K::Trait, 17),
            method("read", 18, "Source"),
            sym("Name", K::Type, 20),
            sym("MAX_NAMES", K::Const, 21),
            sym("inner", K::Module, 22),
            sym("shout", K::Macro, 23),
        ]
    );
    let paths: Vec<&str> = map.files().iter().map(|f| f.path.as_str()).collect();
    for absent in ["secret.rs", "target/debug/generated.rs", "link.rs"] {
        assert!(
            !paths.contains(&absent),
            "{absent} must not be mapped: {paths:?}"
        );
    }
    assert!(!paths.iter().any(|p| p.starts_with(".git/")), "{paths:?}");
    let left_out: Vec<(&str, LeftOutReason)> = map
        .left_out()
        .iter()
        .map(|f| (f.path.as_str(), f.reason))
        .collect();
    assert_eq!(left_out, vec![("link.rs", LeftOutReason::Symlink)]);

    let position = |p: &str| paths.iter().position(|q| *q == p).unwrap();
    assert_eq!(position("src/config.rs"), 0, "{paths:?}");
    assert!(position("src/config.rs") < position("src/lonely.rs"));
    assert_eq!(map.file("src/config.rs").unwrap().referenced_by, 3);
    assert_eq!(map.file("src/lonely.rs").unwrap().referenced_by, 0);

    let text = map.render(10_000);
    for line in [
        "src/config.rs\n  2: struct Config\n  7: fn Config::load(…)\n  12: fn parse_config(…)\n",
        "  21: const MAX_NAMES\n",
        "  23: macro_rules! shout\n",
        "Left out: 1 symlinks.\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(!text.contains("hidden_symbol") && !text.contains("generated_symbol"));
}

#[test]
fn python_symbols() {
    let repo = tempfile::tempdir().unwrap();
    let models = "\"\"\"Models.\"\"\"
import os

MAX_ITEMS = 10
logger = None


class Store:
    def __init__(self):
        self.items = []

    @property
    def size(self):
        return len(self.items)


@dataclass
class Item:
    name: str


def make_store():
    return Store()
";
    write(
        repo.path(),
        &[
            ("app/models.py", models),
            (
                "app/views.py",
                "from app.models import make_store\n\nstore = make_store()\n",
            ),
        ],
    );
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    use SymbolKind as K;
    assert_eq!(
        symbols(&map, "app/models.py"),
        vec![
            sym("MAX_ITEMS", K::Const, 4),
            sym("Store", K::Class, 8),
            method("__init__", 9, "Store"),
            method("size", 13, "Store"),
            sym("Item", K::Class, 18),
            sym("make_store", K::Function, 22),
        ]
    );
    assert_eq!(map.files()[0].path, "app/models.py");
    let text = map.render(10_000);
    assert!(text.contains("  13: def Store.size(…)\n"), "{text}");
    assert!(text.contains("  4: MAX_ITEMS = …\n"), "{text}");
}

#[test]
fn typescript_and_javascript_symbols() {
    let repo = tempfile::tempdir().unwrap();
    let api = "export interface User {
  id: number;
  greet(): string;
}

export type Id = string;

export enum Role { Admin, Guest }

export class Client {
  fetch(id: Id): User { return null as any; }
}

export function connect(url: string): Client {
  return new Client();
}

export const handler = (x: number) => x + 1;
const LIMIT = 5;
namespace Util { export const x = 1; }
";
    let util = "export function slugify(s) { return s; }
export class Cache {
  get(key) { return key; }
}
const helper = function () {};
export const VERSION = \"1\";
function* numbers() {}
";
    let view = "import { connect } from './api';\nexport const View = () => <div>{connect('x').fetch('1').id}</div>;\n";
    write(
        repo.path(),
        &[
            ("src/api.ts", api),
            ("src/util.js", util),
            ("src/view.tsx", view),
        ],
    );
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    use SymbolKind as K;
    assert_eq!(
        symbols(&map, "src/api.ts"),
        vec![
            sym("User", K::Interface, 1),
            method("greet", 3, "User"),
            sym("Id", K::Type, 6),
            sym("Role", K::Enum, 8),
            sym("Client", K::Class, 10),
            method("fetch", 11, "Client"),
            sym("connect", K::Function, 14),
            sym("handler", K::Function, 18),
            sym("LIMIT", K::Const, 19),
            sym("Util", K::Module, 20),
        ]
    );
    assert_eq!(
        symbols(&map, "src/util.js"),
        vec![
            sym("slugify", K::Function, 1),
            sym("Cache", K::Class, 2),
            method("get", 3, "Cache"),
            sym("helper", K::Function, 5),
            sym("VERSION", K::Const, 6),
            sym("numbers", K::Function, 7),
        ]
    );
    assert_eq!(
        symbols(&map, "src/view.tsx"),
        vec![sym("View", K::Function, 2)]
    );
    assert_eq!(
        map.file("src/api.ts").unwrap().referenced_by,
        1,
        "used by view.tsx"
    );
    let text = map.render(10_000);
    assert!(text.contains("  11: method Client.fetch(…)\n"), "{text}");
    assert!(text.contains("  1: interface User\n"), "{text}");
}

#[test]
fn go_symbols() {
    let repo = tempfile::tempdir().unwrap();
    let server = "package server

type Server struct {
\tAddr string
}

type Store interface {
\tGet(id string) string
}

type ID string

const MaxConns = 10

func New(addr string) *Server {
\treturn &Server{Addr: addr}
}

func (s *Server) Start() error {
\treturn nil
}
";
    let main =
        "package main\n\nimport \"x/server\"\n\nfunc main() {\n\tserver.New(\":80\").Start()\n}\n";
    write(
        repo.path(),
        &[("server/server.go", server), ("cmd/main.go", main)],
    );
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    use SymbolKind as K;
    assert_eq!(
        symbols(&map, "server/server.go"),
        vec![
            sym("Server", K::Struct, 3),
            sym("Store", K::Interface, 7),
            sym("ID", K::Type, 11),
            sym("MaxConns", K::Const, 13),
            sym("New", K::Function, 15),
            method("Start", 19, "Server"),
        ]
    );
    assert_eq!(map.files()[0].path, "server/server.go");
    let text = map.render(10_000);
    assert!(text.contains("  3: type Server struct\n"), "{text}");
    assert!(text.contains("  19: func (Server) Start(…)\n"), "{text}");
}
