//! Toolchains found and shown: a rustup layout made in the test, and the real toolchains of
//! this machine preparing and running a Rust crate, a Node package and a Python requirement
//! in bubblewrap — each also run without the prepared view, which must fail, so the view is
//! what made it work.

use super::*;

use crate::delivery::sandbox::tests::bwrap_here;

#[test]
fn a_rustup_toolchain_is_shown_without_the_rest_of_cargo_home() {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(".cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(home.path().join(".rustup/toolchains")).unwrap();
    std::fs::write(bin.join("rustup"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("rustup", bin.join("cargo")).unwrap();
    std::fs::write(
        home.path().join(".cargo/credentials.toml"),
        "[registry]\ntoken = \"cio_secret\"\n",
    )
    .unwrap();
    let host = HostEnv {
        path: Some(bin.clone().into_os_string()),
        home: Some(home.path().to_path_buf()),
        ..HostEnv::default()
    };
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cache.path().join("cargo-home")).unwrap();
    let lock = LockFiles {
        cargo: Some("k".into()),
        ..LockFiles::default()
    };
    let view = detect(&host, home.path(), cache.path(), &lock);
    let rustup = home.path().join(".rustup");
    assert!(view.binds.contains(&rustup), "{view:?}");
    assert!(view.binds.contains(&bin), "{view:?}");
    assert!(
        !view.binds.contains(&home.path().join(".cargo")),
        "CARGO_HOME itself (credentials) is never shown: {view:?}"
    );
    assert_eq!(view.path.first(), Some(&bin));
    let env: std::collections::HashMap<_, _> = view.env.iter().cloned().collect();
    assert_eq!(env["RUSTUP_HOME"], rustup.display().to_string());
    assert_eq!(
        env["CARGO_HOME"],
        cache.path().join("cargo-home").display().to_string()
    );
    assert_eq!(env["CARGO_NET_OFFLINE"], "true");
}

#[test]
fn lock_files_key_the_cache_and_packages_without_dependencies_need_none() {
    let tree = tempfile::tempdir().unwrap();
    assert_eq!(LockFiles::of(tree.path()), LockFiles::default());
    std::fs::write(tree.path().join("package.json"), "{\"name\":\"x\"}").unwrap();
    std::fs::write(tree.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    let first = LockFiles::of(tree.path());
    assert_eq!(first.node, None, "nothing to fetch for Node");
    let manifest_key = first.cargo.clone().unwrap();
    std::fs::write(tree.path().join("Cargo.lock"), "version = 4\n").unwrap();
    let locked = LockFiles::of(tree.path()).cargo.unwrap();
    assert_ne!(locked, manifest_key, "the lock file, when there is one");
    std::fs::write(tree.path().join("Cargo.lock"), "version = 4\n# changed\n").unwrap();
    assert_ne!(LockFiles::of(tree.path()).cargo.unwrap(), locked);
}

/// Prepares `tree` (a copy of the project at `root`) and returns the view and the steps.
async fn prepared(root: &Path, cache: &Path) -> (ToolchainView, Vec<Prepared>) {
    let tree = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(root.join("."))
        .arg(tree.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let host = HostEnv::current();
    let limits = GateLimits {
        timeout: std::time::Duration::from_secs(300),
        output_bytes: 64 * 1024,
    };
    let lock = LockFiles::of(tree.path());
    let steps = prepare(
        &Bubblewrap::default(),
        &host,
        root,
        tree.path(),
        &lock,
        cache,
        &limits,
    )
    .await;
    let view = detect(&host, root, cache, &lock);
    (view, steps)
}

/// Runs `command` in bubblewrap in `dir`, with `view` or without any.
async fn gate(dir: &Path, view: Option<&ToolchainView>, command: &str) -> (bool, String) {
    let sandbox = Bubblewrap {
        view: view.cloned().unwrap_or_default(),
        ..Bubblewrap::default()
    };
    let limits = GateLimits {
        timeout: std::time::Duration::from_secs(300),
        output_bytes: 64 * 1024,
    };
    let r = sandbox.run(dir, command, &limits).await.unwrap();
    (r.passed, r.output)
}

#[tokio::test]
async fn a_rust_crate_with_a_dependency_runs_cargo_test_offline_in_the_sandbox() {
    if !bwrap_here().await {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("src")).unwrap();
    std::fs::write(
        root.path().join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"=1.0.11\"\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("src/lib.rs"),
        "pub fn show(n: u32) -> String { itoa::Buffer::new().format(n).to_string() }\n\
         #[test] fn shows() { assert_eq!(show(42), \"42\"); }\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (view, steps) = prepared(root.path(), cache.path()).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].tool, "cargo");
    assert_eq!(steps[0].exit_code, Some(0), "{}", steps[0].tail);
    assert!(!steps[0].cached);
    let (passed, output) = gate(root.path(), Some(&view), "cargo test 2>&1").await;
    assert!(passed, "{output}");
    assert!(output.contains("test shows ... ok"), "{output}");
    let (passed, output) = gate(root.path(), None, "rm -rf target; cargo test 2>&1").await;
    assert!(
        !passed,
        "without the prepared view the dependency is missing: {output}"
    );
    // The same lock file again (the one the gates' `cargo test` wrote set aside): nothing runs.
    std::fs::remove_file(root.path().join("Cargo.lock")).unwrap();
    let (_, again) = prepared(root.path(), cache.path()).await;
    assert!(again[0].cached, "{again:?}");
}

#[tokio::test]
async fn a_node_package_gets_its_node_modules_read_only_in_the_worktree() {
    if !bwrap_here().await {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("package.json"),
        r#"{"name":"demo","version":"1.0.0","dependencies":{"is-number":"7.0.0"},
            "scripts":{"test":"node -e \"process.exit(require('is-number')(5) ? 0 : 1)\""}}"#,
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (view, steps) = prepared(root.path(), cache.path()).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].exit_code, Some(0), "{}", steps[0].tail);
    let (passed, output) = gate(root.path(), Some(&view), "npm test 2>&1").await;
    assert!(passed, "{output}");
    let (passed, output) = gate(
        root.path(),
        Some(&view),
        "touch node_modules/x 2>&1 && echo wrote",
    )
    .await;
    assert!(!passed || !output.contains("wrote"), "read-only: {output}");
    let (passed, output) = gate(root.path(), None, "npm test 2>&1").await;
    assert!(!passed, "without the prepared modules: {output}");
}

#[tokio::test]
async fn python_requirements_become_a_prepared_virtualenv() {
    if !bwrap_here().await {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("requirements.txt"), "iniconfig==2.0.0\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (view, steps) = prepared(root.path(), cache.path()).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].exit_code, Some(0), "{}", steps[0].tail);
    let check = "python -c 'import iniconfig, sys; print(sys.prefix)' 2>&1";
    let (passed, output) = gate(root.path(), Some(&view), check).await;
    assert!(passed, "{output}");
    assert!(
        output.contains(&cache.path().display().to_string()),
        "{output}"
    );
    let (passed, output) = gate(root.path(), None, "python3 -c 'import iniconfig' 2>&1").await;
    assert!(!passed, "without the virtualenv: {output}");
}
