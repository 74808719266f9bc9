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

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

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
}

impl GateResult {
    /// The result of a finished (or killed) run, its output marked where it was cut.
    #[allow(clippy::too_many_arguments)]
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
}

/// bubblewrap (`bwrap`).
#[derive(Debug, Default)]
pub struct Bubblewrap;

/// Processes a bubblewrap gate may have at once (a pids cgroup, where one can be made).
pub const BWRAP_PIDS_MAX: u32 = 256;

/// A pids cgroup for one gate run: cgroup v2 (`/sys/fs/cgroup`, with the pids controller) or
/// v1 (`/sys/fs/cgroup/pids`). `None` where none is writable (the timeout still bounds the run).
struct PidsCgroup(std::path::PathBuf);

impl PidsCgroup {
    fn create() -> Option<PidsCgroup> {
        let roots = [
            std::path::PathBuf::from("/sys/fs/cgroup/pids"),
            std::path::PathBuf::from("/sys/fs/cgroup"),
        ];
        for root in roots {
            if !root.join("cgroup.procs").exists() {
                continue;
            }
            let dir = root.join(format!("factory-gate-{}", uuid::Uuid::new_v4().simple()));
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if std::fs::write(dir.join("pids.max"), BWRAP_PIDS_MAX.to_string()).is_ok() {
                return Some(PidsCgroup(dir));
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty once every process of the gate is gone; retried briefly.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
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
        // The gate joins its pids cgroup before bwrap starts: every process it makes counts.
        let cgroup = PidsCgroup::create();
        let mut cmd = match &cgroup {
            Some(group) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c")
                    .arg("echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"")
                    .arg("factory-gate")
                    .arg(&group.0)
                    .arg("bwrap");
                c
            }
            None => tokio::process::Command::new("bwrap"),
        };
        cmd.args([
            "--unshare-net",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--bind",
        ])
        // Bound at its own path (the read-only root has no `/workspace` to mount on); it is
        // the only writable place besides the private /tmp.
        .arg(&workdir)
        .arg(&workdir)
        .arg("--chdir")
        .arg(&workdir)
        .args(["--setenv", "HOME", "/tmp", "--setenv", "WORKSPACE"])
        .arg(&workdir)
        .args(["--", "sh", "-c", command]);
        let result = execute(cmd, self.label(), command, limits).await;
        drop(cgroup);
        result
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
    if let Ok(makefile) = std::fs::read_to_string(root.join("Makefile"))
        && makefile.lines().any(|l| l.starts_with("test:"))
    {
        gates.push("make test".to_string());
    }
    gates
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sandboxes() -> Vec<Box<dyn Sandbox>> {
        let mut out: Vec<Box<dyn Sandbox>> = vec![Box::new(Process)];
        if Bubblewrap::available().await {
            out.push(Box::new(Bubblewrap));
        } else {
            eprintln!("skipping bubblewrap: bwrap cannot start a sandbox on this machine");
        }
        out
    }

    #[tokio::test]
    async fn output_is_capped_and_timeouts_kill_the_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        for sandbox in sandboxes().await {
            let limits = GateLimits {
                timeout: Duration::from_secs(10),
                output_bytes: 100,
            };
            let r = sandbox
                .run(dir.path(), "yes | head -c 5000; exit 3", &limits)
                .await
                .unwrap();
            assert_eq!(r.exit_code, Some(3), "{r:?}");
            assert!(!r.passed && r.truncated, "{}", sandbox.label());
            assert!(r.output.ends_with("[output cut at 100 bytes]"));
            let limits = GateLimits {
                timeout: Duration::from_millis(300),
                output_bytes: 100,
            };
            let started = Instant::now();
            let r = sandbox
                .run(dir.path(), "sleep 30 & sleep 30; wait", &limits)
                .await
                .unwrap();
            assert!(r.timed_out && !r.passed);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{}",
                sandbox.label()
            );
        }
    }

    #[tokio::test]
    async fn bubblewrap_has_no_network_a_read_only_root_and_only_the_worktree_writable() {
        if !Bubblewrap::available().await {
            eprintln!("skipping: bwrap cannot start a sandbox on this machine");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let limits = GateLimits {
            timeout: Duration::from_secs(10),
            output_bytes: 4096,
        };
        let run = |cmd: &'static str| {
            let path = dir.path().to_path_buf();
            async move { Bubblewrap.run(&path, cmd, &limits).await.unwrap() }
        };
        let r = run("echo hi > \"$WORKSPACE/out.txt\" && cat out.txt").await;
        assert!(r.passed, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            "hi\n"
        );
        let r = run("touch /etc/factory-test 2>&1").await;
        assert!(!r.passed, "the root is read-only: {r:?}");
        let outside = std::env::temp_dir().join(format!("factory-bwrap-{}", std::process::id()));
        let r = run("touch /tmp/x && ls /tmp").await;
        assert!(r.passed, "/tmp is a private tmpfs: {r:?}");
        assert!(!outside.exists());
        // Only loopback: no interface but `lo`, so nothing outside is reachable.
        let r = run("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '").await;
        assert_eq!(r.output.trim(), "lo", "{r:?}");
        let r = run("wget -q -T 2 -O - http://1.1.1.1 2>&1 || echo unreachable").await;
        assert!(r.output.contains("unreachable") || !r.passed, "{r:?}");
    }

    #[tokio::test]
    async fn a_fork_bomb_in_bubblewrap_is_refused_by_the_pids_limit() {
        if !Bubblewrap::available().await {
            eprintln!("skipping: bwrap cannot start a sandbox on this machine");
            return;
        }
        let Some(probe) = PidsCgroup::create() else {
            eprintln!(
                "skipping: no writable pids cgroup on this machine (the timeout still bounds a gate)"
            );
            return;
        };
        drop(probe);
        let dir = tempfile::tempdir().unwrap();
        let limits = GateLimits {
            timeout: Duration::from_secs(20),
            output_bytes: 4096,
        };
        let started = Instant::now();
        let r = Bubblewrap
            .run(
                dir.path(),
                "i=0; while [ $i -lt 600 ]; do sleep 3 & i=$((i+1)); done 2>/dev/null; echo spawned",
                &limits,
            )
            .await
            .unwrap();
        // Without the limit 600 sleeps start and the echo runs; with it, forks fail.
        assert!(!r.passed || !r.output.contains("spawned"), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn gates_are_detected_from_the_project_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detect_gates(dir.path()).is_empty());
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        std::fs::write(
            dir.path().join("Makefile"),
            "build:\n\ttrue\ntest:\n\ttrue\n",
        )
        .unwrap();
        assert_eq!(detect_gates(dir.path()), ["cargo test", "make test"]);
    }
}
