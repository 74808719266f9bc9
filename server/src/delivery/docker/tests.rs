//! The docker sandbox against a real engine (skipped with a reason where none answers; CI
//! must have one).

use super::*;

/// The image the test script builds from busybox (`docker import`); nothing is pulled.
const IMAGE: &str = "factory-sandbox:test";

/// The sandbox, or `None` (with the reason printed) where the machine has no engine; CI
/// must have one (`CI=true` turns the skip into a failure).
async fn sandbox() -> Option<DockerSandbox> {
    match DockerSandbox::connect(IMAGE).await {
        Ok(s) => Some(s),
        Err(e) => {
            skip(&e.to_string());
            None
        }
    }
}

fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the docker sandbox tests (scripts/test.sh starts an engine): {why}"
    );
    eprintln!("skipping docker sandbox tests: {why}");
}

/// The containers holding the worktree at `workdir` (by their label), running ones only or all.
async fn containers(
    docker: &Docker,
    workdir: &Path,
    all: bool,
) -> Vec<bollard::models::ContainerSummary> {
    let label = format!(
        "{WORKTREE_LABEL}={}",
        workdir.canonicalize().unwrap().display()
    );
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(all)
        .filters(&filters)
        .build();
    docker.list_containers(Some(options)).await.unwrap()
}

/// Polls `check` every 100 ms for up to `limit`.
async fn within<F: Future<Output = bool>>(limit: Duration, check: impl Fn() -> F) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_gate_leaves_no_container() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let docker = sandbox.docker.clone();
    let dir = tempfile::tempdir().unwrap();
    let gate = tokio::spawn({
        let (workdir, command) = (dir.path().to_path_buf(), "sleep 60".to_string());
        async move {
            let limits = GateLimits {
                timeout: Duration::from_secs(120),
                output_bytes: 1024,
            };
            sandbox.run(&workdir, &command, &limits).await
        }
    });
    let running = within(Duration::from_secs(30), || async {
        !containers(&docker, dir.path(), false).await.is_empty()
    })
    .await;
    assert!(running, "the gate's container started");
    let found = containers(&docker, dir.path(), false).await.remove(0);
    assert_eq!(
        found
            .labels
            .unwrap_or_default()
            .get(GATE_LABEL)
            .map(String::as_str),
        Some("1"),
        "Factory's containers are labelled"
    );
    let inspected = docker
        .inspect_container(found.id.as_deref().unwrap(), None)
        .await
        .unwrap();
    let log = inspected.host_config.and_then(|h| h.log_config);
    assert_eq!(
        log.and_then(|l| l.typ).as_deref(),
        Some("none"),
        "dockerd keeps no log of the output"
    );

    // The run is canceled: the gate's future is dropped mid-sleep.
    gate.abort();
    assert!(gate.await.unwrap_err().is_cancelled());
    let gone = within(Duration::from_secs(10), || async {
        containers(&docker, dir.path(), true).await.is_empty()
    })
    .await;
    assert!(
        gone,
        "the canceled gate's container is removed within seconds"
    );
    assert!(finish_removals(Duration::from_secs(10)).await);
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
        skip("no docker engine answers");
        return;
    }
    let err = DockerSandbox::connect("factory-no-such-image:1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist locally"), "{err}");
}

#[tokio::test]
async fn a_worktree_keeps_one_container_until_released() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let limits = GateLimits {
        timeout: Duration::from_secs(20),
        output_bytes: 4096,
    };
    let run = async |command: &str| sandbox.run(dir.path(), command, &limits).await.unwrap();
    // One container, `exec`'d into: its private /tmp outlives a command.
    let r = run("echo kept > /tmp/mark; sleep 30 & echo started").await;
    assert!(r.passed, "{r:?}");
    let first = containers(&sandbox.docker, dir.path(), true).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let r = run("cat /tmp/mark; ls /proc | grep -c '^[0-9][0-9]*$'").await;
    assert!(r.passed, "{r:?}");
    let mut lines = r.output.lines();
    assert_eq!(lines.next(), Some("kept"), "{r:?}");
    // What the first command left running (`sleep 30`) was killed when it ended: only the
    // container's first process, its sleep, and this command's shells, `ls` and `grep` remain.
    let processes: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(processes <= 6, "leftover processes: {r:?}");
    let again = containers(&sandbox.docker, dir.path(), true).await;
    assert_eq!(again[0].id, first[0].id, "the same container ran both");

    // A worktree made again at the same path is another directory: a new container sees it.
    std::fs::remove_dir_all(dir.path()).unwrap();
    std::fs::create_dir(dir.path()).unwrap();
    std::fs::write(dir.path().join("fresh.txt"), "fresh\n").unwrap();
    let r =
        run("cat fresh.txt; cat /tmp/mark 2>/dev/null || echo no-mark; echo x > /tmp/mark").await;
    assert_eq!(r.output, "fresh\nno-mark\n", "{r:?}");
    let remade = containers(&sandbox.docker, dir.path(), true).await;
    assert_eq!(
        remade.len(),
        1,
        "the stale container was removed: {remade:?}"
    );
    assert_ne!(remade[0].id, first[0].id);

    // A timeout removes the container; the next command gets a new one.
    let quick = GateLimits {
        timeout: Duration::from_secs(2),
        output_bytes: 100,
    };
    let r = sandbox
        .run(dir.path(), "echo before; sleep 30", &quick)
        .await
        .unwrap();
    assert!(r.timed_out && !r.passed, "{r:?}");
    assert!(
        r.output.starts_with("before"),
        "output up to the timeout: {r:?}"
    );
    assert!(
        containers(&sandbox.docker, dir.path(), true)
            .await
            .is_empty()
    );
    let r = run("cat /tmp/mark 2>/dev/null || echo new").await;
    assert_eq!(r.output, "new\n", "{r:?}");

    // Released: removed, and nothing else of the worktree's left.
    sandbox.release(dir.path()).await;
    assert!(
        containers(&sandbox.docker, dir.path(), true)
            .await
            .is_empty()
    );
}
