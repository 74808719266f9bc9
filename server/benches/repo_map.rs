//! Repository map benchmark: a synthetic repository of mixed languages (Rust, Python,
//! TypeScript, JavaScript, Go, plus docs) with cross references, in a temporary directory.
//! Prints the cold build time (walk, read, parse, rank) and the cached lookup times (memory and
//! disk), each a p50, beside a floor measured in the same run: walking the same tree with the
//! same ignore rules and reading every file.
//!
//! `cargo bench -p server --bench repo_map` (FACTORY_BENCH_FILES sets the file count, default
//! 2,000; FACTORY_BENCH_SMOKE=1: 200 files, two runs of each).

use std::path::Path;
use std::time::{Duration, Instant};

use factory_server::engine::repo_map::{Limits, RepoMap, RepoMapCache, estimate_tokens};

const COMMIT: &str = "5e1f0c4d2b3a49687766554433221100ffeeddcc";
const BUDGET: usize = 4_096;

/// A deterministic pseudo-random sequence (the same repository every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Rust,
    Python,
    Ts,
    Js,
    Go,
    Doc,
}

fn kind_of(i: usize) -> Kind {
    match i % 20 {
        0..=7 => Kind::Rust,
        8..=11 => Kind::Python,
        12..=14 => Kind::Ts,
        15..=16 => Kind::Js,
        17..=18 => Kind::Go,
        _ => Kind::Doc,
    }
}

/// The source of file `i`: a type, a few functions, each calling functions of other files of
/// the same language (most often the low-numbered "core" files, as real code leans on a few).
fn source(i: usize, kind: Kind, rng: &mut Lcg, n: usize) -> (String, String) {
    let mut callee = || {
        let j = if rng.below(3) == 0 {
            rng.below(n)
        } else {
            rng.below(n.min(60))
        };
        let j = j - j % 20 + (i % 20); // same residue: same language
        if j < n { j } else { i }
    };
    let dir = format!("pkg{:02}", i % 37);
    match kind {
        Kind::Rust => {
            let mut s = format!(
                "//! Module {i}.\n\npub struct Item{i} {{\n    pub id: u64,\n    pub name: String,\n}}\n\nimpl Item{i} {{\n    pub fn new(id: u64) -> Self {{\n        Self {{ id, name: String::new() }}\n    }}\n}}\n\n"
            );
            for f in 0..4 {
                let (a, b) = (callee(), callee());
                s.push_str(&format!("pub fn work_{i}_{f}(x: u64) -> u64 {{\n    let v = work_{a}_0(x) + work_{b}_1(x);\n    let _i = Item{a}::new(v);\n    v\n}}\n\n"));
            }
            s.push_str(&format!("pub const LIMIT_{i}: usize = {i};\n"));
            (format!("src/{dir}/mod_{i}.rs"), s)
        }
        Kind::Python => {
            let mut s = format!(
                "\"\"\"Module {i}.\"\"\"\n\nMAX_{i} = {i}\n\n\nclass Model{i}:\n    def __init__(self):\n        self.items = []\n\n    def size(self):\n        return len(self.items)\n\n\n"
            );
            for f in 0..4 {
                let (a, b) = (callee(), callee());
                s.push_str(&format!("def work_{i}_{f}(x):\n    m = Model{a}()\n    return work_{a}_0(x) + work_{b}_2(x) + m.size()\n\n\n"));
            }
            (format!("py/{dir}/mod_{i}.py"), s)
        }
        Kind::Ts | Kind::Js => {
            let ts = matches!(kind, Kind::Ts);
            let ty = if ts { ": number" } else { "" };
            let mut s = String::new();
            if ts {
                s.push_str(&format!("export interface Shape{i} {{\n  id: number;\n  area(): number;\n}}\n\nexport type Id{i} = string;\n\n"));
            }
            s.push_str(&format!("export class Service{i} {{\n  run(x{ty}){ty} {{\n    return work_{i}_0(x);\n  }}\n}}\n\n"));
            for f in 0..4 {
                let (a, b) = (callee(), callee());
                s.push_str(&format!("export function work_{i}_{f}(x{ty}){ty} {{\n  const s = new Service{a}();\n  return work_{a}_1(x) + work_{b}_3(x) + s.run(x);\n}}\n\n"));
            }
            s.push_str(&format!(
                "export const handler_{i} = (x{ty}) => work_{i}_2(x);\n"
            ));
            let ext = if ts { "ts" } else { "js" };
            (format!("web/{dir}/mod_{i}.{ext}"), s)
        }
        Kind::Go => {
            let mut s = format!(
                "package {dir}\n\ntype Server{i} struct {{\n\tAddr string\n}}\n\nfunc (s *Server{i}) Start() error {{\n\treturn nil\n}}\n\nconst Max{i} = {i}\n\n"
            );
            for f in 0..4 {
                let (a, b) = (callee(), callee());
                s.push_str(&format!("func Work_{i}_{f}(x int) int {{\n\treturn Work_{a}_0(x) + Work_{b}_1(x)\n}}\n\n"));
            }
            (format!("go/{dir}/mod_{i}.go"), s)
        }
        Kind::Doc => (
            format!("docs/{dir}/note_{i}.md"),
            format!("# Note {i}\n\nSome prose about module {i}.\n"),
        ),
    }
}

fn generate(root: &Path, n: usize) {
    let mut rng = Lcg(42);
    for i in 0..n {
        let (path, text) = source(i, kind_of(i), &mut rng, n);
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("target/ignored.rs"), "pub fn ignored() {}\n").unwrap();
}

/// The floor: walk with the same rules and read every file (what any map must at least do).
fn walk_and_read(root: &Path) -> usize {
    let mut bytes = 0;
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walker.flatten() {
        if entry.file_type().is_some_and(|t| t.is_file()) {
            bytes += std::fs::read(entry.path()).map_or(0, |b| b.len());
        }
    }
    bytes
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    p50((0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed()
        })
        .collect())
}

fn main() {
    let smoke = std::env::var("FACTORY_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let files: usize = std::env::var("FACTORY_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 200 } else { 2_000 });
    let runs = if smoke { 2 } else { 7 };
    let lookups = if smoke { 5 } else { 200 };

    let repo = tempfile::tempdir().expect("repository directory");
    generate(repo.path(), files);
    let limits = Limits::default();
    let bytes = walk_and_read(repo.path()); // warms the page cache for every measure

    let floor = time(runs, || walk_and_read(repo.path()));
    let cold = time(runs, || {
        RepoMap::build(repo.path(), &limits).expect("map builds")
    });

    let cache_dir = tempfile::tempdir().expect("cache directory");
    let cache = RepoMapCache::new(limits.clone(), Some(cache_dir.path().to_path_buf()));
    let map = cache.for_commit(repo.path(), COMMIT).expect("map builds");
    let memory = time(lookups, || {
        let map = cache.for_commit(repo.path(), COMMIT).unwrap();
        map.render(BUDGET)
    });
    let disk = time(runs, || {
        RepoMapCache::new(limits.clone(), Some(cache_dir.path().to_path_buf()))
            .for_commit(repo.path(), COMMIT)
            .unwrap()
            .render(BUDGET)
    });
    let render = time(lookups, || map.render(BUDGET));

    let symbols: usize = map.files().iter().map(|f| f.symbols.len()).sum();
    let text = map.render(BUDGET);
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "repository map benchmark ({files} generated files, {} KiB, {} mapped, {symbols} symbols; p50 of {runs} runs, lookups of {lookups})",
        bytes / 1024,
        map.files().len()
    );
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| floor: walk (same ignore rules) + read every file | {} | |",
        ms(floor)
    );
    println!(
        "| cold build (walk, read, parse, rank) | {} ({:.1}× floor) | ≤ 1 s |",
        ms(cold),
        cold.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "| cached lookup, memory, + render at {BUDGET} tokens | {} | ≤ 50 ms |",
        ms(memory)
    );
    println!(
        "| cached lookup, disk (new cache), + render | {} | ≤ 50 ms |",
        ms(disk)
    );
    println!("| render alone at {BUDGET} tokens | {} | |", ms(render));
    println!(
        "| rendered map: tokens (estimated) / symbol lines shown | {} / {} | ≤ {BUDGET} |",
        estimate_tokens(&text),
        text.lines().filter(|l| l.starts_with("  ")).count()
    );
    println!("\nthe rendered map's first lines:");
    for line in text.lines().take(14) {
        println!("    {line}");
    }
}
