//! An engineer whose commands try to escape: they are contained, recorded, and the run goes on.

use super::*;

/// The hostile engineer: each turn one way out of the sandbox, then a plain change.
pub(super) fn engineer(body: &Value, host_port: u16, nonce: u64) -> Step {
    let team = "backend-engineering";
    let commands = [
        format!(
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {host_port}), \
             timeout=3); print('connected')\""
        ),
        format!("echo pwned > /tmp/factory-escape-{nonce}; echo pwned > ../escape-{nonce}; echo tried"),
        // The system outside the worktree (which is the team's own to ruin) is read-only.
        "rm -rf /usr/bin/python3 /etc/passwd /bin/sh 2>/dev/null; test -x /usr/bin/python3 && echo still-here"
            .to_string(),
        "i=0; while [ $i -lt 600 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null; echo spawned"
            .to_string(),
        "head -c 10000000 /dev/zero | tr '\\0' x".to_string(),
        "sleep 60".to_string(),
        format!("echo contained-{nonce} > NOTE.txt"),
    ];
    let n = said(body, "assistant").len();
    match commands.get(n) {
        Some(command) => Step::Run(command.clone()),
        None => Step::Answer(result(team, "COMPLETE", json!({}))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commands_are_contained_and_recorded_and_the_run_goes_on() {
    if !bubblewrap() {
        return;
    }
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007;
    let repo = git_repo();
    package(repo.path(), "pricing_plain", "0.9");
    // The project tightens the engineers' command limits (its own copy of the team file).
    let team = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("teams/backend-engineering/team.toml"),
    )
    .unwrap();
    let dir = repo.path().join(".factory/teams/backend-engineering");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("team.toml"),
        format!("{team}\n[agent]\ncommand_timeout_secs = 3\ncommand_output_bytes = 4096\n"),
    )
    .unwrap();
    commit_all(repo.path(), "tighter limits");
    let (base, seen) = serve(|host_port| Script::Hostile { host_port, nonce }).await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml_with_tools(&base)).unwrap();
    add_project(
        data.path(),
        repo.path(),
        &["--gate", &format!("grep -q contained-{nonce} NOTE.txt")],
    );
    let out = tokio::process::Command::from(auto_run_with_config(
        data.path(),
        &config,
        "shop",
        "Leave a note",
    ))
    .output()
    .await
    .unwrap();
    assert_succeeded(&out);
    // Nothing reached the host: its loopback, its /tmp, the directory above the worktree.
    assert!(!Path::new(&format!("/tmp/factory-escape-{nonce}")).exists());
    assert!(!data.path().join(format!("escape-{nonce}")).exists());
    assert!(
        !data
            .path()
            .join(format!("worktrees/escape-{nonce}"))
            .exists()
    );
    assert!(repo.path().join("shop/pricing_plain.py").exists());
    let commands: Vec<Value> = command_runs(data.path())
        .await
        .into_iter()
        .filter(|c| c["team"] == "backend-engineering")
        .collect();
    assert_eq!(commands.len(), 7, "{commands:?}");
    let tail = |i: usize| commands[i]["output_tail"].as_str().unwrap().to_string();
    assert!(
        commands[0]["exit_code"] != 0 && !tail(0).contains("connected"),
        "{:?}",
        commands[0]
    );
    assert!(tail(1).contains("tried"), "{:?}", commands[1]);
    assert!(tail(2).contains("still-here"), "{:?}", commands[2]);
    // Many processes: refused past the pids limit where a cgroup can be made, and gone with the
    // sandbox's PID namespace either way; the run is not held up by them.
    assert!(commands[3]["duration_ms"].as_u64().unwrap() < 30_000);
    assert!(
        commands[4]["output_bytes"].as_u64().unwrap() < 8_192,
        "10 MB of output is cut: {:?}",
        commands[4]["output_bytes"]
    );
    assert_eq!(commands[5]["timed_out"], true, "{:?}", commands[5]);
    assert!(commands[5]["duration_ms"].as_u64().unwrap() < 30_000);
    // The model saw the cut output, not 10 MB of it.
    let seen = seen.lock().unwrap();
    let largest = seen
        .iter()
        .flat_map(|b| said(b, "tool"))
        .map(|t| t.len())
        .max()
        .unwrap();
    assert!(largest < 8_192, "a tool result of {largest} bytes");
}
