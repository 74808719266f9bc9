//! Real git repositories in temp dirs (a project with one commit, a bare repository as its
//! remote) and the bubblewrap sandbox delivery runs their gates in.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

/// Runs `git args` in `dir`; the test fails if git does. Returns what git printed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A git repository with one commit (the project of a run).
pub fn git_repo() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("README.md"), "# Shop\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(
        dir.path(),
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-q",
            "-m",
            "initial",
        ],
    );
    dir
}

/// Commits everything in `repo`'s working tree.
pub fn commit_all(repo: &Path, message: &str) {
    git(repo, &["add", "-A"]);
    git(
        repo,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            message,
        ],
    );
}

/// Writes `toml` as the repository's own settings, `.factory/project.toml` (not committed).
pub fn project_settings(repo: &Path, toml: &str) {
    std::fs::create_dir_all(repo.join(".factory")).unwrap();
    std::fs::write(repo.join(".factory/project.toml"), toml).unwrap();
}

/// A [`git_repo`] whose `origin` is a new bare repository: `(repo, remote)`.
pub fn repo_with_remote() -> (TempDir, TempDir) {
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let repo = git_repo();
    git(
        repo.path(),
        &["remote", "add", "origin", remote.path().to_str().unwrap()],
    );
    (repo, remote)
}

/// Whether bubblewrap works here; under `CI=true` its absence fails the test instead.
pub fn bubblewrap() -> bool {
    let ok = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    present(
        ok,
        "bwrap cannot start a sandbox here (apt-get install bubblewrap)",
    )
}

/// Whether a docker engine answers here with `image` present; under `CI=true` its absence
/// fails the test (`scripts/test.sh` starts an engine and builds the image).
pub fn docker_image(image: &str) -> bool {
    let ok = Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success());
    present(
        ok,
        &format!("no docker engine with the image {image} answers (scripts/test.sh starts one)"),
    )
}

/// `ok`, after saying why the test skips when it is not; under `CI=true` a missing part fails
/// the test instead of skipping it.
/// Whether `python3` runs here; under `CI=true` its absence fails the test.
pub fn python3() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    present(ok, "python3 is missing (apt-get install python3)")
}

/// The test command's Python with the client library `module` (`FACTORY_PYTHON`, set up by
/// `scripts/test.sh`: the MCP SDK, the Prometheus parser), if it has it; under `CI=true` its
/// absence fails the test.
pub fn client_python(module: &str) -> Option<std::path::PathBuf> {
    let python = std::env::var_os("FACTORY_PYTHON").map(std::path::PathBuf::from);
    let ok = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let missing = format!(
        "FACTORY_PYTHON does not name a python3 with `{module}` (scripts/test.sh sets it up)"
    );
    present(ok, &missing).then(|| python.expect("checked"))
}

fn present(ok: bool, missing: &str) -> bool {
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {missing}"
        );
        eprintln!("skipping: {missing}");
    }
    ok
}
