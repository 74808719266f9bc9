//! The docker sandbox (bollard): the project's image, the worktree bind-mounted read-write at
//! `/workspace`, no network, a read-only root file system, a tmpfs `/tmp`, every capability
//! dropped, no-new-privileges, pids/memory/CPU limits, the worktree owner's uid (not root when
//! Factory itself does not run as root); a timeout kills and removes the container. Images are
//! never pulled: the image must exist locally. Host toolchains a gate needs can be mounted
//! read-only with `toolchain_mounts` (e.g. `/usr/local/cargo`).
//!
//! A container never outlives its gate: it is removed when the gate finishes, times out, or is
//! canceled (its future dropped), and shutdown can wait for those removals
//! ([`finish_removals`]). Every container carries the label [`GATE_LABEL`]. Output is read
//! live from the container's attached stdout and stderr and kept up to the cap; dockerd keeps
//! no log of it (log driver `none`), so a chatty gate cannot fill the engine's disk either.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio_util::task::TaskTracker;

use super::sandbox::{GateLimits, GateResult, Sandbox, SandboxError};

/// A docker engine and the image gates run in.
pub struct DockerSandbox {
    docker: Docker,
    image: String,
    /// Host paths mounted read-only at the same path (toolchains).
    pub toolchain_mounts: Vec<String>,
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

/// One gate's container: force-removed when the gate is done with it, or, if the gate's future
/// is dropped first (a canceled run, a shutdown), by a task spawned from `Drop`, which cannot
/// await.
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

impl DockerSandbox {
    /// The locked-down container for `command` on `workdir`.
    fn container_body(&self, workdir: &Path, command: &str) -> ContainerCreateBody {
        let owner = std::fs::metadata(workdir)
            .map(|m| format!("{}:{}", m.uid(), m.gid()))
            .unwrap_or_else(|_| "65534:65534".into());
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
            // Output is read live (attached) and capped here; a log would keep all of it.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["sh".into(), "-c".into(), command.to_string()]),
            working_dir: Some("/workspace".into()),
            user: Some(owner),
            env: Some(vec!["HOME=/tmp".into()]),
            network_disabled: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            labels: Some(HashMap::from([(GATE_LABEL.to_string(), "1".to_string())])),
            host_config: Some(host),
            ..Default::default()
        }
    }

    /// Attaches to the created container, starts it, and collects its output (up to the cap)
    /// until it exits or the timeout kills it.
    async fn execute(
        &self,
        name: &str,
        command: &str,
        limits: &GateLimits,
    ) -> Result<GateResult, SandboxError> {
        let started = Instant::now();
        // Attached before the start, so no early output is missed.
        let attach = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let mut stream = self
            .docker
            .attach_container(name, Some(attach))
            .await
            .map_err(|e| SandboxError(format!("docker could not attach to the container: {e}")))?
            .output;
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| SandboxError(format!("docker could not start the container: {e}")))?;
        let (mut output, mut truncated) = (Vec::new(), false);
        let collect = async {
            while let Some(Ok(chunk)) = stream.next().await {
                let bytes = chunk.into_bytes();
                let room = limits.output_bytes.saturating_sub(output.len());
                if bytes.len() > room {
                    truncated = true;
                }
                // Past the cap the rest is read and dropped: a gate blocked on a full pipe
                // would only run into its timeout.
                output.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        };
        let wait = async {
            match self.docker.wait_container(name, None).next().await {
                Some(Ok(r)) => Some(r.status_code),
                // A non-zero exit is reported as an error by bollard; read it back.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Some(code)
                }
                _ => None,
            }
        };
        let finished =
            tokio::time::timeout(limits.timeout, async { tokio::join!(collect, wait).1 }).await;
        let (exit_code, timed_out) = match finished {
            Ok(code) => (code.map(|c| c as i32), false),
            Err(_) => {
                let _ = self.docker.kill_container(name, None).await;
                (None, true)
            }
        };
        Ok(GateResult::finish(
            command, "docker", exit_code, timed_out, &output, truncated, limits, started,
        ))
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
        let workdir = workdir
            .canonicalize()
            .map_err(|e| SandboxError(format!("worktree {}: {e}", workdir.display())))?;
        let body = self.container_body(&workdir, command);
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
        let outcome = self.execute(&container.name, command, limits).await;
        container.remove().await;
        outcome
    }
}

#[cfg(test)]
mod tests;
