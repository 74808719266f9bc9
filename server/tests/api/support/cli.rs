//! The `factory` binary as a person runs it: on a data directory, offline, registering and
//! running projects, and as a server in its own process.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::app::TOKEN;

/// The `factory` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_factory");

/// The requirement of the offline reference run ([`offline_run`]).
pub const SHOP_REQUIREMENT: &str =
    "As a shop owner, I want to export orders as CSV and email the weekly report to accountants.";

/// The `factory` binary on `data_dir`, with the environment as it is.
pub fn factory_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data_dir);
    cmd
}

/// The `factory` binary on `data_dir`, offline: no config file from the environment and an
/// Ollama address nothing answers, so only the built-in template provider serves calls.
pub fn factory_cli(data_dir: &Path) -> Command {
    let mut cmd = factory_command(data_dir);
    cmd.env_remove("FACTORY_CONFIG")
        .env("OLLAMA_HOST", "http://127.0.0.1:9");
    cmd
}

/// Runs `factory args` offline on `data` to the end.
pub fn factory(data: &Path, args: &[&str]) -> Output {
    factory_cli(data).args(args).output().unwrap()
}

/// Text a process wrote.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Registers `repo` as the project `shop`, with `extra` options; the test fails if refused.
pub fn add_project(data: &Path, repo: &Path, extra: &[&str]) {
    let mut args = vec!["project", "add", repo.to_str().unwrap(), "--name", "shop"];
    args.extend_from_slice(extra);
    let out = factory(data, &args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// Fails the test, printing what the command said, unless it exited 0.
pub fn assert_succeeded(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `factory run --auto-approve --project <project> <goal>` offline on `data`: a run that
/// delivers without waiting for a person to approve its plan or review.
pub fn auto_run(data: &Path, project: &str, goal: &str) -> Command {
    let mut cmd = factory_cli(data);
    cmd.args(["run", "--auto-approve", "--project", project, goal]);
    cmd
}

/// [`auto_run`] with the settings file `config` (`--config`, before the subcommand).
pub fn auto_run_with_config(data: &Path, config: &Path, project: &str, goal: &str) -> Command {
    let mut cmd = factory_cli(data);
    cmd.arg("--config").arg(config);
    cmd.args(["run", "--auto-approve", "--project", project, goal]);
    cmd
}

/// The default pipeline run offline on `repo` with [`SHOP_REQUIREMENT`], approvals automatic;
/// the test fails unless it succeeds. Returns the run as `--json` prints it.
pub fn offline_run(data: &Path, repo: &Path) -> Value {
    // The repository has no gate: its project lets changes be committed unverified.
    let added = factory_cli(data)
        .args(["project", "add", "--allow-unverified"])
        .arg(repo)
        .output()
        .unwrap();
    assert_eq!(added.status.code(), Some(0), "{added:?}");
    let out = factory_cli(data)
        .args(["run", "--json", "--auto-approve", "--project"])
        .arg(repo)
        .arg(SHOP_REQUIREMENT)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

/// `factory serve` on `data` at `127.0.0.1:<port>` with the test admin token, its output
/// discarded: a server in its own process, for tests that kill it.
pub fn factory_serve(data: &Path, config: Option<&Path>, port: u16) -> Command {
    let mut cmd = factory_command(data);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("FACTORY_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// `factory serve` on `data` at `127.0.0.1:<port>` with everything it logs (at `debug`) in
/// `log`, offline but for what a test configures: for tests that read the server's log.
pub fn factory_serve_logged(data: &Path, port: u16, log: &Path) -> Command {
    let mut cmd = factory_serve(data, None, port);
    let file = std::fs::File::create(log).unwrap();
    cmd.env_remove("FACTORY_CONFIG")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("OLLAMA_HOST", "http://127.0.0.1:9")
        .env("RUST_LOG", "debug")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    cmd
}

/// Waits until the server at `base` answers `/healthz` (20 s at most).
pub async fn wait_until_up(base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "server unreachable");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs `factory args` on `data` with `stdin` as its standard input, offline otherwise.
pub fn factory_with_stdin(data: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = factory_cli(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
