//! The docker sandbox (bollard): the project's image, the worktree bind-mounted read-write at
//! `/workspace`, no network, a read-only root file system, a tmpfs `/tmp`, every capability
//! dropped, no-new-privileges, pids/memory/CPU limits, the worktree owner's uid (not root when
//! Factory itself does not run as root); a timeout kills and removes the container. Images are
//! never pulled: the image must exist locally. Host toolchains a gate needs can be mounted
//! read-only with `toolchain_mounts` (e.g. `/usr/local/cargo`).
//!
//! One container per worktree (a work order's): its first command starts it, every command
//! after is `exec`'d into it (tens of milliseconds instead of a container's start), and each
//! command's leftover processes are killed when it ends. The container is removed when the
//! work order releases its worktree ([`Sandbox::release`]), when a command times out (the next
//! one gets a new container), when a command is canceled (its future dropped), when the
//! worktree is made again (another directory at the same path), or when the sandbox is
//! dropped; shutdown can wait for those removals ([`finish_removals`]). Every container carries
//! the labels [`GATE_LABEL`] and [`WORKTREE_LABEL`]. Output is read live from each command's
//! attached stdout and stderr and kept up to the cap; dockerd keeps no log of it (log driver
//! `none`), so a chatty gate cannot fill the engine's disk either.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::StartExecResults;
use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures::StreamExt;
use tokio_util::task::TaskTracker;

use super::sandbox::{GateLimits, GateResult, Sandbox, SandboxError};

/// A docker engine and the image gates run in.
pub struct DockerSandbox {
    docker: Docker,
    image: String,
    /// Host paths mounted read-only at the same path (toolchains).
    pub toolchain_mounts: Vec<String>,
    /// The container held for each worktree (by canonical path).
    held: Mutex<HashMap<PathBuf, Slot>>,
}

impl std::fmt::Debug for DockerSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerSandbox")
            .field("image", &self.image)
            .finish()
    }
}

impl DockerSandbox {
    /// Connects (honouring `DOCKER_HOST`) and checks the engine answers and the image exists
    /// locally; each failure with its own message.
    pub async fn connect(image: &str) -> Result<DockerSandbox, SandboxError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| SandboxError(format!("no docker engine: {e}")))?;
        tokio::time::timeout(std::time::Duration::from_secs(3), docker.ping())
            .await
            .map_err(|_| SandboxError("the docker engine did not answer within 3 s".into()))?
            .map_err(|e| SandboxError(format!("no docker engine answers: {e}")))?;
        docker.inspect_image(image).await.map_err(|_| {
            SandboxError(format!(
                "image `{image}` does not exist locally (Factory never pulls): build or load it first"
            ))
        })?;
        Ok(DockerSandbox {
            docker,
            image: image.to_string(),
            toolchain_mounts: Vec::new(),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// True when an engine answers (for choosing the default sandbox).
    pub async fn engine_answers() -> bool {
        match Docker::connect_with_local_defaults() {
            Ok(d) => tokio::time::timeout(std::time::Duration::from_secs(2), d.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
            Err(_) => false,
        }
    }
}

/// The label (value `1`) on every container Factory starts, to find them by.
pub const GATE_LABEL: &str = "factory.gate";

/// Removals of containers whose gate was canceled, so shutdown can wait for them.
static REMOVALS: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Waits up to `limit` for the containers of canceled gates to be removed; true when none is
/// left pending. For shutdown, after the drivers stopped: the runtime would drop the removal
/// tasks when it ends.
pub async fn finish_removals(limit: Duration) -> bool {
    REMOVALS.close();
    let done = tokio::time::timeout(limit, REMOVALS.wait()).await.is_ok();
    REMOVALS.reopen();
    done
}

/// A worktree's container: force-removed when its worktree is released, or, when it is dropped
/// first (a canceled command, a dropped sandbox, a shutdown), by a task spawned from `Drop`,
/// which cannot await.
struct Container {
    docker: Docker,
    name: String,
    /// The engine confirmed the creation. Until then a removal may overtake the creation it
    /// cancels, so it is tried again a moment later.
    created: bool,
    removed: bool,
}

impl Container {
    fn new(docker: Docker) -> Container {
        Container {
            docker,
            name: format!("factory-gate-{}", uuid::Uuid::new_v4().simple()),
            created: false,
            removed: false,
        }
    }

    async fn remove(mut self) {
        remove(&self.docker, &self.name, self.created).await;
        // Only now: a removal cut short by a cancel is finished by `Drop`.
        self.removed = true;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let (docker, name, created) = (self.docker.clone(), self.name.clone(), self.created);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                REMOVALS.spawn_on(
                    async move { remove(&docker, &name, created).await },
                    &runtime,
                );
            }
            Err(_) => tracing::warn!(
                container = %self.name,
                "no runtime left to remove a gate's container; `docker rm -f` it"
            ),
        }
    }
}

async fn remove(docker: &Docker, name: &str, created: bool) {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    let first = docker.remove_container(name, Some(options.clone())).await;
    if first.is_err() && !created {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = docker.remove_container(name, Some(options)).await;
    } else if let Err(err) = first {
        tracing::warn!(container = name, %err, "a gate's container could not be removed");
    }
}

/// The label on every container, naming the worktree it mounts (for operators and tests).
pub const WORKTREE_LABEL: &str = "factory.worktree";

/// What the held container runs as its first process: a shell that only sleeps, so commands
/// can be `exec`'d beside it, and that reaps the processes they leave behind (`wait`s on any
/// child, adopted ones too).
const HOLD: &str = "while :; do sleep 60; done";

/// How each command runs in the held container: in a shell of its own, then every process it
/// left behind (a background job, a fork bomb's survivors) is killed — all but the first
/// process and this shell — so the next command starts as clean as in a fresh container.
const WRAP: &str = "sh -c \"$1\"; s=$?; kill -9 -1 2>/dev/null; exit $s";

/// A work order's container: started by its first command, `exec`'d into by the next ones.
struct Held {
    container: Container,
    /// The mounted worktree directory's (device, inode): a worktree made again at the same
    /// path is another directory, which the container does not see.
    mounted: (u64, u64),
    /// The worktree owner's `uid:gid`, which every command runs as.
    user: String,
}

/// What one command did in the held container.
struct Ran {
    exit_code: Option<i32>,
    output: Vec<u8>,
    truncated: bool,
    timed_out: bool,
}

/// The held container for one worktree, if any; locked while a command runs in it.
type Slot = Arc<tokio::sync::Mutex<Option<Held>>>;

/// Drops (and so removes) the held container unless disarmed: a command whose future is
/// dropped (a canceled run) may still be running in it.
struct Poisoned<'a> {
    slot: tokio::sync::MutexGuard<'a, Option<Held>>,
    armed: bool,
}

impl Drop for Poisoned<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.slot.take();
        }
    }
}

impl DockerSandbox {
    /// The locked-down container for the worktree at `workdir`, owned by `user`.
    fn container_body(&self, workdir: &Path, user: &str) -> ContainerCreateBody {
        let mut binds = vec![format!("{}:/workspace:rw", workdir.display())];
        // The worktree's `.git` file names the repository's git metadata: read-only over
        // itself, so a gate can neither rewrite nor replace it (a mount point cannot be moved).
        let dot_git = workdir.join(".git");
        if dot_git.is_file() {
            binds.push(format!("{}:/workspace/.git:ro", dot_git.display()));
        }
        binds.extend(self.toolchain_mounts.iter().map(|p| format!("{p}:{p}:ro")));
        let host = HostConfig {
            binds: Some(binds),
            network_mode: Some("none".into()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,size=64m".to_string(),
            )])),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            pids_limit: Some(256),
            memory: Some(1024 * 1024 * 1024),
            nano_cpus: Some(1_000_000_000),
            // Output is read from each `exec` and capped there; a log would keep all of it.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["sh".into(), "-c".into(), HOLD.into()]),
            working_dir: Some("/workspace".into()),
            user: Some(user.to_string()),
            env: Some(vec!["HOME=/tmp".into()]),
            network_disabled: Some(true),
            labels: Some(HashMap::from([
                (GATE_LABEL.to_string(), "1".to_string()),
                (WORKTREE_LABEL.to_string(), workdir.display().to_string()),
            ])),
            host_config: Some(host),
            ..Default::default()
        }
    }

    /// Creates and starts the container a worktree's commands will run in.
    async fn hold(
        &self,
        workdir: &Path,
        mounted: (u64, u64),
        user: String,
    ) -> Result<Held, SandboxError> {
        let body = self.container_body(workdir, &user);
        // Armed before the creation: a cancel during it still removes what it made.
        let mut container = Container::new(self.docker.clone());
        let options = CreateContainerOptionsBuilder::default()
            .name(&container.name)
            .build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| SandboxError(format!("docker could not create the container: {e}")))?;
        container.created = true;
        if let Err(e) = self.docker.start_container(&container.name, None).await {
            container.remove().await;
            return Err(SandboxError(format!(
                "docker could not start the container: {e}"
            )));
        }
        Ok(Held {
            container,
            mounted,
            user,
        })
    }

    /// Runs `command` in the held container and collects its output (up to the cap) until it
    /// exits or the timeout comes.
    async fn exec(
        &self,
        held: &Held,
        command: &str,
        limits: &GateLimits,
    ) -> Result<Ran, SandboxError> {
        let config = ExecConfig {
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                WRAP.into(),
                "factory".into(),
                command.into(),
            ]),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            user: Some(held.user.clone()),
            working_dir: Some("/workspace".into()),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(&held.container.name, config)
            .await
            .map_err(|e| SandboxError(format!("docker could not exec in the container: {e}")))?
            .id;
        let started = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(|e| SandboxError(format!("docker could not start the command: {e}")))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(SandboxError("docker started the command detached".into()));
        };
        let (mut collected, mut truncated) = (Vec::new(), false);
        let collect = async {
            while let Some(Ok(chunk)) = output.next().await {
                let bytes = chunk.into_bytes();
                let room = limits.output_bytes.saturating_sub(collected.len());
                if bytes.len() > room {
                    truncated = true;
                }
                // Past the cap the rest is read and dropped: a command blocked on a full pipe
                // would only run into its timeout.
                collected.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        };
        let timed_out = tokio::time::timeout(limits.timeout, collect).await.is_err();
        let exit_code = match timed_out {
            true => None,
            false => self
                .docker
                .inspect_exec(&exec)
                .await
                .ok()
                .and_then(|i| i.exit_code)
                .map(|c| c as i32),
        };
        Ok(Ran {
            exit_code,
            output: collected,
            truncated,
            timed_out,
        })
    }

    /// The slot of the worktree at `workdir` (canonical), made on first use.
    fn slot(&self, workdir: &Path) -> Slot {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.entry(workdir.to_path_buf()).or_default().clone()
    }
}

#[async_trait::async_trait]
impl Sandbox for DockerSandbox {
    fn label(&self) -> &'static str {
        "docker"
    }

    async fn run(
        &self,
        workdir: &Path,
        command: &str,
        limits: &GateLimits,
    ) -> Result<GateResult, SandboxError> {
        let started = Instant::now();
        let workdir = workdir
            .canonicalize()
            .map_err(|e| SandboxError(format!("worktree {}: {e}", workdir.display())))?;
        let meta = std::fs::metadata(&workdir)
            .map_err(|e| SandboxError(format!("worktree {}: {e}", workdir.display())))?;
        let mounted = (meta.dev(), meta.ino());
        let slot = self.slot(&workdir);
        let mut guard = Poisoned {
            slot: slot.lock().await,
            armed: true,
        };
        let held = match guard.slot.take() {
            Some(held) if held.mounted == mounted => held,
            stale => {
                if let Some(stale) = stale {
                    stale.container.remove().await;
                }
                let user = format!("{}:{}", meta.uid(), meta.gid());
                self.hold(&workdir, mounted, user).await?
            }
        };
        let held = guard.slot.insert(held);
        let ran = self.exec(held, command, limits).await?;
        // A command past its timeout is still running: the container goes with it (every
        // process in it killed), and the next command gets a new one.
        if ran.timed_out
            && let Some(held) = guard.slot.take()
        {
            held.container.remove().await;
        }
        guard.armed = false;
        Ok(GateResult::finish(
            command,
            "docker",
            ran.exit_code,
            ran.timed_out,
            &ran.output,
            ran.truncated,
            limits,
            started,
        ))
    }

    async fn release(&self, workdir: &Path) {
        // Keyed by the canonical path; a worktree already removed is found by the one given.
        let workdir = workdir
            .canonicalize()
            .unwrap_or_else(|_| workdir.to_path_buf());
        let slot = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&workdir);
        if let Some(slot) = slot
            && let Some(held) = slot.lock().await.take()
        {
            held.container.remove().await;
        }
    }
}

#[cfg(test)]
mod tests;
