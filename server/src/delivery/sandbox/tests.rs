//! Tests of the sandboxes against real bubblewrap (failing under `CI=true` when it is missing).
use super::*;

async fn sandboxes() -> Vec<Box<dyn Sandbox>> {
    let mut out: Vec<Box<dyn Sandbox>> = vec![Box::new(Process)];
    if bwrap_here().await {
        out.push(Box::new(Bubblewrap::default()));
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
    if !bwrap_here().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let limits = GateLimits {
        timeout: Duration::from_secs(10),
        output_bytes: 4096,
    };
    let run = |cmd: &'static str| {
        let path = dir.path().to_path_buf();
        async move {
            Bubblewrap::default()
                .run(&path, cmd, &limits)
                .await
                .unwrap()
        }
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
    if !bwrap_here().await {
        return;
    }
    let probe = GateCgroups::create(1 << 30);
    if !probe.limits("pids") {
        eprintln!(
            "skipping: no writable pids cgroup on this machine (the timeout still bounds a gate)"
        );
        return;
    }
    drop(probe);
    let dir = tempfile::tempdir().unwrap();
    let limits = GateLimits {
        timeout: Duration::from_secs(20),
        output_bytes: 4096,
    };
    let started = Instant::now();
    let r = Bubblewrap::default()
        .run(
            dir.path(),
            "i=0; while [ $i -lt 600 ]; do sleep 3 & i=$((i+1)); done 2>/dev/null; echo spawned",
            &limits,
        )
        .await
        .unwrap();
    // Without the limit 600 sleeps start and the echo runs; with it, forks fail.
    assert!(!r.passed || !r.output.contains("spawned"), "{r:?}");
    assert!(r.limits.contains("256 processes (cgroup)"), "{}", r.limits);
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Whether bubblewrap works here; under `CI=true` its absence fails the test instead.
pub(crate) async fn bwrap_here() -> bool {
    if Bubblewrap::available().await {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but bwrap cannot start a sandbox on this machine (apt-get install bubblewrap)"
    );
    eprintln!("skipping: bwrap cannot start a sandbox on this machine");
    false
}

#[tokio::test]
async fn a_gate_sees_no_secret_no_home_and_no_data_directory() {
    if !bwrap_here().await {
        return;
    }
    // A data directory with a database, inside a "home" that a toolchain lives in too.
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("factory.db"), "secret rows").unwrap();
    let toolchain = home.path().to_path_buf();
    std::fs::create_dir_all(toolchain.join("bin")).unwrap();
    std::fs::write(toolchain.join("bin/tool"), "#!/bin/sh\necho tool-ran\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        toolchain.join("bin/tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let sandbox = Bubblewrap {
        toolchains: vec![toolchain.clone()],
        hidden: vec![data.clone()],
        memory_bytes: 512 * 1024 * 1024,
        tmp_bytes: 8 * 1024 * 1024,
        ..Bubblewrap::default()
    };
    let limits = GateLimits {
        timeout: Duration::from_secs(20),
        output_bytes: 64 * 1024,
    };
    // The test process's environment (cargo sets CARGO_*, RUST_*) stands for the server's,
    // which holds keys and tokens: none of it may reach the gate.
    let probe = format!(
        "env; echo ---; ls -a {home} {data} /root /run 2>&1; echo ---; tool; \
         cat {data}/factory.db 2>&1; echo ---; head -c 16000000 /dev/zero > /tmp/fill; echo fill=$?",
        home = home.path().display(),
        data = data.display()
    );
    let r = sandbox.run(work.path(), &probe, &limits).await.unwrap();
    let env_part = r.output.split("---").next().unwrap_or_default();
    for name in [
        "GITHUB_TOKEN",
        "OPENAI_API_KEY",
        "FACTORY_ADMIN_TOKEN",
        "CARGO_",
        "RUST",
    ] {
        assert!(!env_part.contains(name), "{name} leaked: {env_part}");
    }
    let allowed = [
        "HOME",
        "LANG",
        "PATH",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "WORKSPACE",
        "_",
    ];
    for var in env_part.lines().filter_map(|l| l.split('=').next()) {
        assert!(
            var.is_empty() || allowed.contains(&var),
            "`{var}` reached the gate: {env_part}"
        );
    }
    assert!(
        r.output.contains("tool-ran"),
        "toolchain bin on PATH: {}",
        r.output
    );
    assert!(!r.output.contains("secret rows"), "{}", r.output);
    assert!(r.output.contains("fill=1"), "/tmp is capped: {}", r.output);
    assert!(
        r.limits.contains("/tmp 8 MiB") && r.limits.contains("512 MiB"),
        "{}",
        r.limits
    );
    // Nothing of /root or /run exists in the gate's view.
    assert!(r.output.contains("'/root': No such file"), "{}", r.output);
    assert!(r.output.contains("'/run': No such file"), "{}", r.output);
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
