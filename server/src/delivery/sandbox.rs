//! Sandboxes for the project's gates, behind one trait, reported on every gate result.
//!
//! - **bubblewrap**: no network (its own network namespace: loopback only), a read-only root,
//!   only the worktree writable (at its own path, `$WORKSPACE`), a fresh `/tmp`, its own PID
//!   namespace, all capabilities dropped, at most 256 processes (a pids cgroup, where the
//!   machine lets one be made), and it dies with its parent.
//! - **process**: no isolation at all — only when a project opts in explicitly, and labelled
//!   unsafe wherever it is reported.
//!
//! Every run has a timeout (the whole process tree is killed) and an output cap.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::toolchain::ToolchainView;

/// Limits of one gate run.
#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    pub timeout: Duration,
    pub output_bytes: usize,
}

impl Default for GateLimits {
    fn default() -> Self {
        GateLimits {
            timeout: Duration::from_secs(600),
            output_bytes: 64 * 1024,
        }
    }
}

/// What a gate did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub command: String,
    /// `bubblewrap`, `docker`, or `process (unsafe: no isolation)`.
    pub sandbox: String,
    pub exit_code: Option<i32>,
    pub passed: bool,
    pub timed_out: bool,
    /// stdout and stderr, interleaved by arrival, cut at the cap.
    pub output: String,
    pub truncated: bool,
    pub duration_ms: u64,
    /// The resource limits that were in force (which mechanism applied each), e.g.
    /// `memory 4096 MiB (cgroup), 256 processes (cgroup), /tmp 1024 MiB`.
    #[serde(default)]
    pub limits: String,
}

impl GateResult {
    /// The result of a finished (or killed) run, its output marked where it was cut.
    #[expect(
        clippy::too_many_arguments,
        reason = "every field of a gate's result, as its runners measured them"
    )]
    pub(super) fn finish(
        command: &str,
        sandbox: &str,
        exit_code: Option<i32>,
        timed_out: bool,
        output: &[u8],
        truncated: bool,
        limits: &GateLimits,
        started: Instant,
    ) -> GateResult {
        let mut text = String::from_utf8_lossy(output).to_string();
        if truncated {
            text.push_str(&format!("\n[output cut at {} bytes]", limits.output_bytes));
        }
        if timed_out {
            text.push_str(&format!(
                "[killed after {} s]",
                limits.timeout.as_secs_f64()
            ));
        }
        GateResult {
            command: command.to_string(),
            sandbox: sandbox.to_string(),
            exit_code,
            passed: exit_code == Some(0) && !timed_out,
            timed_out,
            output: text,
            truncated,
            duration_ms: started.elapsed().as_millis() as u64,
            limits: String::new(),
        }
    }
}

/// Why a sandbox could not run a command at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(pub String);

/// Somewhere a gate can run against a worktree.
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync {
    /// How results name it.
    fn label(&self) -> &'static str;
    async fn run(
        &self,
        workdir: &Path,
        command: &str,
        limits: &GateLimits,
    ) -> Result<GateResult, SandboxError>;

    /// Lets go of what the sandbox keeps for `workdir` between commands (docker: the work
    /// order's container). Called when a work order is done with its worktree; the next
    /// command on that path starts afresh.
    async fn release(&self, _workdir: &Path) {}
}

/// bubblewrap (`bwrap`): what a gate sees is built up from nothing — the system's programs
/// and libraries read-only, a few `/etc` files, the configured toolchains read-only, the
/// worktree read-write — in new user, network, PID, IPC, UTS and cgroup namespaces with an
/// empty environment. The server's home, data directory, `/run` sockets, keys and tokens are
/// simply not there.
#[derive(Debug, Clone)]
pub struct Bubblewrap {
    /// Host directories shown read-only at their own path (toolchains: `~/.rustup`, a venv);
    /// a `bin/` inside one goes on `PATH`.
    pub toolchains: Vec<PathBuf>,
    /// Host paths covered by an empty tmpfs even when a toolchain bind would show them (the
    /// data directory, with `factory.db`).
    pub hidden: Vec<PathBuf>,
    /// Memory the gate's processes may use together (a memory cgroup where one can be made,
    /// else an address-space limit per process).
    pub memory_bytes: u64,
    /// Size of the gate's private `/tmp`.
    pub tmp_bytes: u64,
    /// The project's toolchains as found on this machine and prepared for it: more read-only
    /// directories, `PATH` entries and variables ([`super::toolchain`]).
    pub view: ToolchainView,
    /// Host directories shown read-write besides the working directory (the prepare step's
    /// caches); empty for gates and agent commands.
    pub writable: Vec<PathBuf>,
    /// Keep the host's network (the prepare step only, which runs no model-written code and
    /// no install scripts). Gates and agent commands never have it.
    pub network: bool,
}

impl Default for Bubblewrap {
    fn default() -> Self {
        Bubblewrap {
            toolchains: Vec::new(),
            hidden: Vec::new(),
            memory_bytes: 4 * 1024 * 1024 * 1024,
            tmp_bytes: 1024 * 1024 * 1024,
            view: ToolchainView::default(),
            writable: Vec::new(),
            network: false,
        }
    }
}

/// Processes a bubblewrap gate may have at once (a pids cgroup, where one can be made).
pub const BWRAP_PIDS_MAX: u32 = 256;

/// The system directories a toolchain needs, shown read-only (or as the same symlink, on a
/// merged-`/usr` system where `/bin` is `usr/bin`).
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The `/etc` entries programs commonly need; nothing with secrets (no `shadow`, no `ssh`).
const ETC_ENTRIES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/mime.types",
];

/// Cgroups for one gate run: pids (and memory, when `memory_bytes` is set) under cgroup v2
/// (`/sys/fs/cgroup`) or v1 (`/sys/fs/cgroup/<controller>`). Empty where none is writable.
struct GateCgroups {
    dirs: Vec<PathBuf>,
    applied: Vec<String>,
}

impl GateCgroups {
    fn create(memory_bytes: u64) -> GateCgroups {
        let mut groups = GateCgroups {
            dirs: Vec::new(),
            applied: Vec::new(),
        };
        let name = format!("factory-gate-{}", uuid::Uuid::new_v4().simple());
        let unified = PathBuf::from("/sys/fs/cgroup");
        let v2 = unified.join("cgroup.controllers").exists();
        // (controller, file, value) for each limit, in the v2 and v1 spellings.
        let limits = [
            ("pids", "pids.max", "pids.max", BWRAP_PIDS_MAX.to_string()),
            (
                "memory",
                "memory.max",
                "memory.limit_in_bytes",
                memory_bytes.to_string(),
            ),
        ];
        if v2 {
            let dir = unified.join(&name);
            if std::fs::create_dir(&dir).is_ok() {
                for (controller, file, _, value) in &limits {
                    if std::fs::write(dir.join(file), value).is_ok() {
                        groups.applied.push((*controller).to_string());
                    }
                }
                if groups.applied.is_empty() {
                    let _ = std::fs::remove_dir(&dir);
                } else {
                    groups.dirs.push(dir);
                }
            }
            return groups;
        }
        for (controller, _, file, value) in &limits {
            let dir = unified.join(controller).join(&name);
            if !unified.join(controller).join("cgroup.procs").exists()
                || std::fs::create_dir(&dir).is_err()
            {
                continue;
            }
            if std::fs::write(dir.join(file), value).is_ok() {
                groups.applied.push((*controller).to_string());
                groups.dirs.push(dir);
            } else {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        groups
    }

    fn limits(&self, what: &str) -> bool {
        self.applied.iter().any(|a| a == what)
    }
}

impl Drop for GateCgroups {
    fn drop(&mut self) {
        // Empty once every process of the gate is gone; retried briefly.
        for dir in &self.dirs {
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Bubblewrap {
    /// True when `bwrap` can start a sandbox on this machine.
    pub async fn available() -> bool {
        tokio::process::Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--unshare-net", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// The bwrap arguments that build the gate's view of the machine, and its `PATH`.
    fn view(&self, workdir: &Path) -> (Vec<std::ffi::OsString>, String) {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let mut push = |items: &[&std::ffi::OsStr]| {
            args.extend(items.iter().map(|i| i.to_os_string()));
        };
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        push(&["--symlink".as_ref(), target.as_os_str(), path.as_os_str()]);
                    }
                }
                Ok(m) if m.is_dir() => push(&["--ro-bind".as_ref(), path.as_ref(), path.as_ref()]),
                _ => {}
            }
        }
        for entry in ETC_ENTRIES {
            push(&["--ro-bind-try".as_ref(), entry.as_ref(), entry.as_ref()]);
        }
        push(&[
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
            "--size".as_ref(),
            self.tmp_bytes.to_string().as_ref(),
            "--tmpfs".as_ref(),
            "/tmp".as_ref(),
        ]);
        let mut path_var: Vec<String> = self
            .view
            .path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        for dir in &self.view.binds {
            push(&["--ro-bind-try".as_ref(), dir.as_os_str(), dir.as_os_str()]);
        }
        if self.network {
            push(&[
                "--ro-bind-try".as_ref(),
                "/etc/resolv.conf".as_ref(),
                "/etc/resolv.conf".as_ref(),
            ]);
        }
        for toolchain in &self.toolchains {
            push(&[
                "--ro-bind-try".as_ref(),
                toolchain.as_os_str(),
                toolchain.as_os_str(),
            ]);
            let bin = toolchain.join("bin");
            if bin.is_dir() {
                path_var.push(bin.display().to_string());
            }
        }
        // Hidden paths go over whatever a toolchain bind showed; only where they would be
        // visible (a tmpfs elsewhere would create empty directories for nothing).
        for hidden in &self.hidden {
            if self.toolchains.iter().any(|t| hidden.starts_with(t)) || hidden.starts_with(workdir)
            {
                push(&["--tmpfs".as_ref(), hidden.as_os_str()]);
            }
        }
        push(&["--bind".as_ref(), workdir.as_os_str(), workdir.as_os_str()]);
        for dir in &self.writable {
            push(&["--bind".as_ref(), dir.as_os_str(), dir.as_os_str()]);
        }
        // Prepared dependencies the worktree expects inside it (`node_modules`), read-only.
        for (inside, host) in &self.view.in_worktree {
            let at = workdir.join(inside);
            push(&["--ro-bind".as_ref(), host.as_os_str(), at.as_os_str()]);
        }
        // The worktree's `.git` file names the repository's git metadata; read-only, and a
        // mount point, so a gate can neither rewrite nor replace it.
        let dot_git = workdir.join(".git");
        if dot_git.exists() {
            push(&[
                "--ro-bind".as_ref(),
                dot_git.as_os_str(),
                dot_git.as_os_str(),
            ]);
        }
        // The root bwrap built the view on is a tmpfs: made read-only once everything is in
        // place, so the worktree and /tmp stay the only writable places.
        push(&["--remount-ro".as_ref(), "/".as_ref()]);
        path_var.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from));
        (args, path_var.join(":"))
    }
}

#[async_trait::async_trait]
impl Sandbox for Bubblewrap {
    fn label(&self) -> &'static str {
        "bubblewrap"
    }

    async fn run(
        &self,
        workdir: &Path,
        command: &str,
        limits: &GateLimits,
    ) -> Result<GateResult, SandboxError> {
        let workdir = workdir
            .canonicalize()
            .map_err(|e| SandboxError(format!("worktree {}: {e}", workdir.display())))?;
        // The gate joins its cgroups before bwrap starts: every process it makes counts.
        let cgroups = GateCgroups::create(self.memory_bytes);
        let mut cmd = if cgroups.dirs.is_empty() {
            tokio::process::Command::new("prlimit")
        } else {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c")
                .arg(
                    "for g in $FACTORY_GATE_CGROUPS; do echo $$ > \"$g/cgroup.procs\" || exit 125; \
                     done; exec \"$@\"",
                )
                .arg("factory-gate");
            if !cgroups.limits("memory") {
                c.arg("prlimit");
            }
            c
        };
        let memory_mib = self.memory_bytes / (1024 * 1024);
        let mut applied = Vec::new();
        if cgroups.limits("memory") {
            applied.push(format!("memory {memory_mib} MiB (cgroup)"));
        } else {
            cmd.arg(format!("--as={}", self.memory_bytes)).arg("--");
            applied.push(format!(
                "address space {memory_mib} MiB per process (prlimit)"
            ));
        }
        if cgroups.limits("pids") {
            applied.push(format!("{BWRAP_PIDS_MAX} processes (cgroup)"));
        } else {
            applied.push("no process limit (no writable pids cgroup)".into());
        }
        applied.push(format!("/tmp {} MiB", self.tmp_bytes / (1024 * 1024)));
        let (view, path_var) = self.view(&workdir);
        cmd.arg("bwrap")
            .arg("--unshare-all")
            .args(self.network.then_some("--share-net"))
            .args([
                "--unshare-user",
                "--disable-userns",
                "--die-with-parent",
                "--new-session",
                "--cap-drop",
                "ALL",
                "--clearenv",
            ])
            .args(view)
            .arg("--chdir")
            .arg(&workdir)
            .args(["--setenv", "PATH"])
            .arg(&path_var)
            .args(["--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8"])
            .args(["--setenv", "WORKSPACE"])
            .arg(&workdir);
        for (name, value) in &self.view.env {
            cmd.args(["--setenv", name, value]);
        }
        cmd.args(["--", "sh", "-c", command]);
        // Nothing of the server's environment reaches even bwrap itself.
        cmd.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin");
        if !cgroups.dirs.is_empty() {
            cmd.env(
                "FACTORY_GATE_CGROUPS",
                cgroups
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let mut result = execute(cmd, self.label(), command, limits).await?;
        drop(cgroups);
        result.limits = applied.join(", ");
        Ok(result)
    }
}

/// No isolation (explicit opt-in only).
#[derive(Debug, Default)]
pub struct Process;

#[async_trait::async_trait]
impl Sandbox for Process {
    fn label(&self) -> &'static str {
        "process (unsafe: no isolation)"
    }

    async fn run(
        &self,
        workdir: &Path,
        command: &str,
        limits: &GateLimits,
    ) -> Result<GateResult, SandboxError> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", command]).current_dir(workdir);
        execute(cmd, self.label(), command, limits).await
    }
}

/// Runs `cmd` in its own process group with the timeout and output cap; a timeout kills the
/// whole group.
async fn execute(
    mut cmd: tokio::process::Command,
    label: &str,
    command: &str,
    limits: &GateLimits,
) -> Result<GateResult, SandboxError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError(format!("{label} could not start `{command}`: {e}")))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let cap = limits.output_bytes;
    let collect = async {
        let mut out = Vec::new();
        let mut truncated = false;
        let (mut a, mut b) = ([0u8; 8192], [0u8; 8192]);
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            let n = tokio::select! {
                r = stdout.read(&mut a), if a_open => match r { Ok(0) | Err(_) => { a_open = false; continue } Ok(n) => (true, n) },
                r = stderr.read(&mut b), if b_open => match r { Ok(0) | Err(_) => { b_open = false; continue } Ok(n) => (false, n) },
            };
            let chunk = if n.0 { &a[..n.1] } else { &b[..n.1] };
            let room = cap.saturating_sub(out.len());
            if chunk.len() > room {
                truncated = true;
            }
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        (out, truncated)
    };
    let outcome = tokio::time::timeout(limits.timeout, async {
        let (output, status) = tokio::join!(collect, child.wait());
        (output, status)
    })
    .await;
    let (output, truncated, exit_code, timed_out) = match outcome {
        Ok(((out, truncated), status)) => {
            let status = status.map_err(|e| SandboxError(e.to_string()))?;
            (out, truncated, status.code(), false)
        }
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
                // The whole process group (the child leads its own), not just the shell.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            (Vec::new(), false, None, true)
        }
    };
    Ok(GateResult::finish(
        command, label, exit_code, timed_out, &output, truncated, limits, started,
    ))
}

/// The gates of a worktree when the project names none: `Cargo.toml` → `cargo test`,
/// `package.json` → `npm test`, `pyproject.toml` → `pytest`, a `test` make target → `make test`.
pub fn detect_gates(root: &Path) -> Vec<String> {
    let mut gates = Vec::new();
    if root.join("Cargo.toml").is_file() {
        gates.push("cargo test".to_string());
    }
    if root.join("package.json").is_file() {
        gates.push("npm test".to_string());
    }
    if root.join("pyproject.toml").is_file() {
        gates.push("pytest".to_string());
    }
    if let Ok(Some(makefile)) =
        super::repo_files::read(root, &["Makefile"], super::repo_files::MAX_SETTINGS_BYTES)
        && makefile.lines().any(|l| l.starts_with("test:"))
    {
        gates.push("make test".to_string());
    }
    gates
}

#[cfg(test)]
pub(crate) mod tests;
