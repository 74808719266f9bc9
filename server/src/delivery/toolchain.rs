//! Toolchains in the sandbox, out of the box. A gate or an agent command runs with an empty
//! environment and no home directory, so a toolchain installed for the operator (rustup under
//! `~/.rustup`, a project's virtualenv, `node_modules`) is invisible there unless it is shown.
//! This module finds what a project needs on this machine ([`detect`]) and fetches its
//! dependencies before the sandbox ([`prepare`]):
//!
//! - **Rust**: the `cargo` on the server's `PATH`. A rustup proxy brings `RUSTUP_HOME` and the
//!   proxies' own `bin` directory (never the rest of `CARGO_HOME`, which may hold registry
//!   credentials), both read-only, with `RUSTUP_HOME` set. Dependencies are fetched into
//!   Factory's own cargo home (`<data>/cache/toolchains/cargo-home`), shown read-only with
//!   `CARGO_HOME` and `CARGO_NET_OFFLINE=true`.
//! - **Python**: a virtualenv in the project's checkout (`.venv/` or `venv/` with a
//!   `pyvenv.cfg`), with the interpreter it was made from, read-only, `VIRTUAL_ENV` set; or a
//!   virtualenv prepared from `requirements.txt` (wheels only).
//! - **Node**: `node_modules` prepared from the lock file (or the checkout's own), shown
//!   read-only inside the worktree; a `node` outside `/usr` (nvm) with its prefix.
//!
//! The prepare step has the network but runs no model-written code and no install scripts:
//! `cargo fetch`, `npm ci --ignore-scripts`, `pip install --only-binary=:all:` (wheels, whose
//! installation runs nothing), each in bubblewrap (its network kept, only its cache
//! writable) on an export of the run's base commit, never a worktree. Each result is cached
//! by the hash of the lock file, so a second work order with the same lock file fetches
//! nothing; each step is reported (tool, command, cached or not, exit code, duration).

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::Digest;

use super::sandbox::{Bubblewrap, GateLimits, Sandbox};

/// What sandboxed commands see of the project's toolchains, besides the system directories.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolchainView {
    /// Host directories shown read-only at their own path.
    pub binds: Vec<PathBuf>,
    /// Host directories shown read-only inside the working directory: `(relative path, host
    /// directory)`, e.g. prepared `node_modules`.
    pub in_worktree: Vec<(String, PathBuf)>,
    /// Directories put first on `PATH`, in order.
    pub path: Vec<PathBuf>,
    /// Variables set; nothing else of the server's environment is passed.
    pub env: Vec<(String, String)>,
    /// What was found, one line each (`rust: rustup (…)`), for reports.
    pub found: Vec<String>,
}

impl ToolchainView {
    fn bind(&mut self, dir: PathBuf) {
        if !is_system(&dir) && !self.binds.contains(&dir) {
            self.binds.push(dir);
        }
    }

    fn set(&mut self, name: &str, value: &Path) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.display().to_string()));
    }
}

/// Directories every sandbox shows anyway.
fn is_system(dir: &Path) -> bool {
    ["/usr", "/bin", "/sbin", "/lib", "/lib64"]
        .iter()
        .any(|s| dir.starts_with(s))
}

/// Where Factory keeps prepared dependencies under its data directory.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cache").join("toolchains")
}

/// The server's environment as far as finding toolchains goes (a test passes its own).
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    pub path: Option<std::ffi::OsString>,
    pub home: Option<PathBuf>,
    pub rustup_home: Option<PathBuf>,
    pub rustup_toolchain: Option<String>,
}

impl HostEnv {
    /// This process's environment.
    pub fn current() -> HostEnv {
        HostEnv {
            path: std::env::var_os("PATH"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            rustup_home: std::env::var_os("RUSTUP_HOME").map(PathBuf::from),
            rustup_toolchain: std::env::var("RUSTUP_TOOLCHAIN").ok(),
        }
    }

    /// The first `name` on `PATH` (not resolved through symlinks).
    fn which(&self, name: &str) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }
}

/// The toolchains the project at `root` (the registered checkout) needs, as this machine has
/// them, with whatever [`prepare`] left in `cache` for `lock` (the base commit's lock files).
pub fn detect(host: &HostEnv, root: &Path, cache: &Path, lock: &LockFiles) -> ToolchainView {
    let mut view = ToolchainView::default();
    rust(host, cache, lock, &mut view);
    python(root, cache, lock, &mut view);
    node(host, root, cache, lock, &mut view);
    view
}

fn rust(host: &HostEnv, cache: &Path, lock: &LockFiles, view: &mut ToolchainView) {
    let Some(cargo) = host.which("cargo") else {
        return;
    };
    let Some(bin) = cargo.parent().map(Path::to_path_buf) else {
        return;
    };
    let proxy = std::fs::canonicalize(&cargo)
        .ok()
        .and_then(|c| c.file_name().map(|n| n == "rustup"))
        .unwrap_or(false);
    if proxy {
        let rustup_home = host
            .rustup_home
            .clone()
            .or_else(|| host.home.as_ref().map(|h| h.join(".rustup")));
        if let Some(home) = rustup_home.filter(|h| h.is_dir()) {
            view.bind(home.clone());
            view.set("RUSTUP_HOME", &home);
            if let Some(t) = &host.rustup_toolchain {
                view.env.push(("RUSTUP_TOOLCHAIN".into(), t.clone()));
            }
            view.found.push(format!(
                "rust: rustup ({}, {})",
                bin.display(),
                home.display()
            ));
        }
        // The proxies' directory only: the rest of CARGO_HOME may hold credentials.
        view.bind(bin.clone());
    } else {
        view.bind(bin.clone());
        view.found.push(format!("rust: cargo in {}", bin.display()));
    }
    if !is_system(&bin) {
        view.path.push(bin);
    }
    if lock.cargo.is_some() {
        let home = cache.join("cargo-home");
        if home.is_dir() {
            view.bind(home.clone());
            view.set("CARGO_HOME", &home);
        }
        view.env.push(("CARGO_NET_OFFLINE".into(), "true".into()));
    }
}

fn python(root: &Path, cache: &Path, lock: &LockFiles, view: &mut ToolchainView) {
    let own = [".venv", "venv"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.join("pyvenv.cfg").is_file());
    let prepared = lock
        .python
        .as_ref()
        .map(|k| cache.join("python").join(k))
        .filter(|d| d.join("pyvenv.cfg").is_file());
    let Some(venv) = own.or(prepared) else {
        return;
    };
    // The interpreter it was made from (`home = /…/bin`), with its prefix.
    if let Ok(cfg) = std::fs::read_to_string(venv.join("pyvenv.cfg"))
        && let Some(home) = cfg
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == "home")
            .map(|(_, v)| PathBuf::from(v.trim()))
        && let Some(prefix) = home.parent()
    {
        view.bind(prefix.to_path_buf());
    }
    view.bind(venv.clone());
    view.path.push(venv.join("bin"));
    view.set("VIRTUAL_ENV", &venv);
    view.found
        .push(format!("python: virtualenv {}", venv.display()));
}

fn node(host: &HostEnv, root: &Path, cache: &Path, lock: &LockFiles, view: &mut ToolchainView) {
    if let Some(node) = host
        .which("node")
        .and_then(|n| std::fs::canonicalize(n).ok())
        && let Some(prefix) = node.parent().and_then(Path::parent)
        && !is_system(prefix)
        && lock.node.is_some()
    {
        view.bind(prefix.to_path_buf());
        view.path.push(prefix.join("bin"));
    }
    let prepared = lock
        .node
        .as_ref()
        .map(|k| cache.join("node").join(k).join("node_modules"))
        .filter(|d| d.is_dir());
    let own = Some(root.join("node_modules")).filter(|d| d.is_dir());
    if let Some(modules) = prepared.or(own) {
        view.found
            .push(format!("node: node_modules {}", modules.display()));
        view.in_worktree.push(("node_modules".into(), modules));
    }
}

/// The lock files of a tree (the run's base commit), each as the key its prepared
/// dependencies are cached under: the SHA-256 of the lock file (or of the manifest, without
/// one), first 16 hex digits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockFiles {
    pub cargo: Option<String>,
    pub node: Option<String>,
    pub python: Option<String>,
}

fn key_of(tool: &str, dir: &Path, files: &[&str]) -> Option<String> {
    let found = files.iter().find_map(|f| std::fs::read(dir.join(f)).ok())?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(tool.as_bytes());
    hasher.update(&found);
    Some(hex::encode(hasher.finalize())[..16].to_string())
}

impl LockFiles {
    /// The lock files in `tree`.
    pub fn of(tree: &Path) -> LockFiles {
        LockFiles {
            cargo: key_of("cargo", tree, &["Cargo.lock", "Cargo.toml"]),
            node: key_of("node", tree, &["package-lock.json", "package.json"])
                .filter(|_| has_node_dependencies(tree)),
            python: key_of("python", tree, &["requirements.txt"]),
        }
    }
}

fn has_node_dependencies(tree: &Path) -> bool {
    std::fs::read(tree.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| {
            ["dependencies", "devDependencies"]
                .iter()
                .any(|k| v[k].as_object().is_some_and(|o| !o.is_empty()))
        })
}

/// One prepare step, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// `cargo`, `npm` or `pip`.
    pub tool: String,
    pub command: String,
    /// The lock file's key.
    pub key: String,
    /// True when an earlier step left it in the cache (nothing ran).
    pub cached: bool,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The end of its output (4 KiB at most).
    pub tail: String,
}

/// Fetches what the tree at `tree` (an export of the base commit; the step may write into it)
/// needs into `cache`, each tool at most once per lock file. `lock` is [`LockFiles::of`] the
/// tree, taken before anything ran in it (a step may write a lock file). `sandbox` is the
/// bubblewrap the gates use; the step runs in a copy of it with the network kept and the
/// cache writable.
pub async fn prepare(
    sandbox: &Bubblewrap,
    host: &HostEnv,
    root: &Path,
    tree: &Path,
    lock: &LockFiles,
    cache: &Path,
    limits: &GateLimits,
) -> Vec<Prepared> {
    let mut steps = Vec::new();
    let view = detect(host, root, cache, &LockFiles::default());
    if let Some(key) = &lock.cargo {
        let home = cache.join("cargo-home");
        let done = cache.join("prepared").join(format!("cargo-{key}"));
        let mut env = view.env.clone();
        env.push(("CARGO_HOME".into(), home.display().to_string()));
        steps.push(
            step(
                sandbox,
                &view,
                tree,
                "cargo",
                key,
                &done,
                &[home],
                env,
                "cargo fetch",
                limits,
            )
            .await,
        );
    }
    if let Some(key) = &lock.node {
        let target = cache.join("node").join(key);
        let done = cache.join("prepared").join(format!("npm-{key}"));
        let npm_cache = cache.join("npm-cache");
        let install = if tree.join("package-lock.json").is_file() {
            "ci"
        } else {
            "install"
        };
        let command = format!(
            "npm {install} --ignore-scripts --no-audit --no-fund --no-update-notifier --cache {} \
             && rm -rf {target} \
             && mkdir -p {target} && mv node_modules {target}/node_modules",
            npm_cache.display(),
            target = target.display(),
        );
        steps.push(
            step(
                sandbox,
                &view,
                tree,
                "npm",
                key,
                &done,
                &[npm_cache, cache.join("node")],
                Vec::new(),
                &command,
                limits,
            )
            .await,
        );
    }
    if let Some(key) = &lock.python {
        let venv = cache.join("python").join(key);
        let done = cache.join("prepared").join(format!("pip-{key}"));
        let command = format!(
            "rm -rf {v}/* && python3 -m venv {v} && {v}/bin/pip install --no-input \
             --disable-pip-version-check --only-binary=:all: -r requirements.txt",
            v = venv.display()
        );
        steps.push(
            step(
                sandbox,
                &view,
                tree,
                "pip",
                key,
                &done,
                &[venv],
                Vec::new(),
                &command,
                limits,
            )
            .await,
        );
    }
    steps
}

#[expect(
    clippy::too_many_arguments,
    reason = "one prepare step: where it runs, what it may write, what it runs"
)]
async fn step(
    sandbox: &Bubblewrap,
    view: &ToolchainView,
    tree: &Path,
    tool: &str,
    key: &str,
    done: &Path,
    writable: &[PathBuf],
    env: Vec<(String, String)>,
    command: &str,
    limits: &GateLimits,
) -> Prepared {
    let mut prepared = Prepared {
        tool: tool.into(),
        command: command.into(),
        key: key.into(),
        cached: done.is_file(),
        exit_code: Some(0),
        duration_ms: 0,
        tail: String::new(),
    };
    if prepared.cached {
        return prepared;
    }
    let started = Instant::now();
    for dir in writable {
        if let Err(e) = std::fs::create_dir_all(dir) {
            prepared.exit_code = None;
            prepared.tail = format!("{}: {e}", dir.display());
            return prepared;
        }
    }
    let mut with_network = sandbox.clone();
    with_network.network = true;
    with_network.writable = writable.to_vec();
    with_network.view = ToolchainView {
        env,
        ..view.clone()
    };
    match with_network.run(tree, command, limits).await {
        Ok(r) => {
            prepared.exit_code = r.exit_code;
            let skip = r.output.len().saturating_sub(4096);
            let start = (skip..=r.output.len())
                .find(|i| r.output.is_char_boundary(*i))
                .unwrap_or(r.output.len());
            prepared.tail = r.output[start..].to_string();
            if r.passed {
                let _ = std::fs::create_dir_all(done.parent().unwrap_or(done));
                let _ = std::fs::write(done, command);
            }
        }
        Err(e) => {
            prepared.exit_code = None;
            prepared.tail = e.to_string();
        }
    }
    prepared.duration_ms = started.elapsed().as_millis() as u64;
    prepared
}

#[cfg(test)]
mod tests;
