//! The docker sandbox (bollard): the project's image, the worktree bind-mounted read-write at
//! `/workspace`, no network, a read-only root file system, a tmpfs `/tmp`, every capability
//! dropped, no-new-privileges, pids/memory/CPU limits, the worktree owner's uid (not root when
//! Factory itself does not run as root); a timeout kills and removes the container. Images are
//! never pulled: the image must exist locally. Host toolchains a gate needs can be mounted
//! read-only with `toolchain_mounts` (e.g. `/usr/local/cargo`).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;

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
        let owner = std::fs::metadata(&workdir)
            .map(|m| format!("{}:{}", m.uid(), m.gid()))
            .unwrap_or_else(|_| "65534:65534".into());
        let mut binds = vec![format!("{}:/workspace:rw", workdir.display())];
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
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["sh".into(), "-c".into(), command.to_string()]),
            working_dir: Some("/workspace".into()),
            user: Some(owner),
            env: Some(vec!["HOME=/tmp".into()]),
            network_disabled: Some(true),
            host_config: Some(host),
            ..Default::default()
        };
        let name = format!("factory-gate-{}", uuid::Uuid::new_v4().simple());
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let started = Instant::now();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| SandboxError(format!("docker could not create the container: {e}")))?;
        let outcome = async {
            self.docker
                .start_container(&name, None)
                .await
                .map_err(|e| SandboxError(format!("docker could not start the container: {e}")))?;
            let waited = tokio::time::timeout(limits.timeout, async {
                let mut wait = self.docker.wait_container(&name, None);
                match wait.next().await {
                    Some(Ok(r)) => Some(r.status_code),
                    // A non-zero exit is reported as an error by bollard; read it back.
                    Some(Err(bollard::errors::Error::DockerContainerWaitError {
                        code, ..
                    })) => Some(code),
                    _ => None,
                }
            })
            .await;
            let (exit_code, timed_out) = match waited {
                Ok(code) => (code.map(|c| c as i32), false),
                Err(_) => {
                    let _ = self.docker.kill_container(&name, None).await;
                    (None, true)
                }
            };
            let mut output = Vec::new();
            let mut truncated = false;
            let logs = LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build();
            let mut stream = self.docker.logs(&name, Some(logs));
            while let Some(Ok(chunk)) = stream.next().await {
                let bytes = chunk.into_bytes();
                let room = limits.output_bytes.saturating_sub(output.len());
                if bytes.len() > room {
                    truncated = true;
                }
                output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                if truncated {
                    break;
                }
            }
            Ok::<_, SandboxError>(GateResult::finish(
                command, "docker", exit_code, timed_out, &output, truncated, limits, started,
            ))
        }
        .await;
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(&name, Some(remove)).await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image the test script builds from busybox (`docker import`); nothing is pulled.
    const IMAGE: &str = "factory-sandbox:test";

    async fn sandbox() -> Option<DockerSandbox> {
        match DockerSandbox::connect(IMAGE).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("skipping docker sandbox tests: {e}");
                None
            }
        }
    }

    #[tokio::test]
    async fn the_container_is_locked_down() {
        let Some(sandbox) = sandbox().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let limits = GateLimits {
            timeout: std::time::Duration::from_secs(20),
            output_bytes: 4096,
        };
        let r = sandbox
            .run(
                dir.path(),
                "echo hi > /workspace/out.txt && cat out.txt",
                &limits,
            )
            .await
            .unwrap();
        assert!(r.passed, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            "hi\n"
        );
        let r = sandbox
            .run(dir.path(), "touch /etc/x", &limits)
            .await
            .unwrap();
        assert!(!r.passed, "read-only root: {r:?}");
        let r = sandbox
            .run(dir.path(), "touch /tmp/x && echo ok", &limits)
            .await
            .unwrap();
        assert!(r.passed, "/tmp is writable: {r:?}");
        let r = sandbox
            .run(
                dir.path(),
                "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
                &limits,
            )
            .await
            .unwrap();
        assert_eq!(r.output.trim(), "lo", "no network but loopback: {r:?}");
        // A fork bomb is contained: the pids limit (256) refuses the processes it tries to make.
        let bomb = GateLimits {
            timeout: std::time::Duration::from_secs(20),
            output_bytes: 1024,
        };
        let started = Instant::now();
        let r = sandbox
            .run(
                dir.path(),
                "i=0; while [ $i -lt 600 ]; do sleep 5 2>/dev/null & i=$((i+1)); done 2>/dev/null; \
                 ls /proc | grep -c '^[0-9][0-9]*$'",
                &bomb,
            )
            .await
            .unwrap();
        // Without the limit the 600 sleeps and the count would succeed; with it, forks fail
        // and so does the command — inside its container, in seconds.
        assert!(!r.passed && !r.timed_out, "{r:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        // Output cap and exit codes.
        let r = sandbox
            .run(
                dir.path(),
                "yes | head -c 5000; exit 3",
                &GateLimits {
                    output_bytes: 100,
                    ..limits
                },
            )
            .await
            .unwrap();
        assert_eq!(r.exit_code, Some(3), "{r:?}");
        assert!(r.truncated);
        // Timeout kills and removes.
        let quick = GateLimits {
            timeout: std::time::Duration::from_millis(500),
            output_bytes: 100,
        };
        let r = sandbox.run(dir.path(), "sleep 30", &quick).await.unwrap();
        assert!(r.timed_out);
    }

    #[tokio::test]
    async fn a_missing_image_is_named() {
        if !DockerSandbox::engine_answers().await {
            eprintln!("skipping: no docker engine answers");
            return;
        }
        let err = DockerSandbox::connect("factory-no-such-image:1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist locally"), "{err}");
    }
}
