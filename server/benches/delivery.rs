//! Delivery benchmark: worktree create + remove with git2 against `git worktree add` +
//! `remove` on the same repository; a bubblewrap run; and, when a Docker engine with the test
//! image answers, the docker sandbox: a work order's first command (its container created,
//! started, `exec`'d into, removed) against `docker run --rm IMAGE true`, and a later command
//! `exec`'d into the held container against `docker exec CONTAINER true`.
//!
//! `cargo bench -p server --bench delivery` (`FACTORY_BENCH_ROUNDS`, default 30).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use factory_server::delivery::docker::DockerSandbox;
use factory_server::delivery::sandbox::{Bubblewrap, GateLimits, Sandbox};
use factory_server::delivery::worktree::{Worktree, head_commit};

const IMAGE: &str = "factory-sandbox:test";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git")
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// A repository with 200 files in 20 directories (a small real project).
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    for d in 0..20 {
        let sub = dir.path().join(format!("src/module{d}"));
        std::fs::create_dir_all(&sub).expect("dir");
        for f in 0..10 {
            std::fs::write(sub.join(format!("file{f}.rs")), "fn main() {}\n".repeat(40))
                .expect("file");
        }
    }
    git(dir.path(), &["add", "."]);
    git(
        dir.path(),
        &[
            "-c",
            "user.name=B",
            "-c",
            "user.email=b@e",
            "commit",
            "-qm",
            "init",
        ],
    );
    dir
}

fn main() {
    let rounds = std::env::var("FACTORY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize);
    let repo = repository();
    let base = head_commit(repo.path()).expect("head");
    let scratch = tempfile::tempdir().expect("scratch");

    let mut with_git2 = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let wt = Worktree::create(
            repo.path(),
            scratch.path(),
            &format!("b{i}"),
            &base,
            &format!("bench/b{i}"),
        )
        .expect("create");
        wt.remove().expect("remove");
        with_git2.push(t.elapsed());
    }
    let mut with_cli = Vec::new();
    for i in 0..rounds {
        let path = scratch.path().join(format!("c{i}"));
        let t = Instant::now();
        git(
            repo.path(),
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &format!("bench/c{i}"),
                path.to_str().unwrap(),
                &base,
            ],
        );
        git(
            repo.path(),
            &["worktree", "remove", "--force", path.to_str().unwrap()],
        );
        with_cli.push(t.elapsed());
    }
    let (g2, cli) = (median(with_git2), median(with_cli));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let limits = GateLimits::default();
    let workdir = tempfile::tempdir().expect("workdir");
    let bwrap = runtime.block_on(async {
        if !Bubblewrap::available().await {
            return None;
        }
        let mut runs = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let r = Bubblewrap::default()
                .run(workdir.path(), "true", &limits)
                .await
                .expect("bwrap");
            assert!(r.passed);
            runs.push(t.elapsed());
        }
        Some(median(runs))
    });
    let docker = runtime.block_on(async {
        let sandbox = DockerSandbox::connect(IMAGE).await.ok()?;
        let n = rounds.min(10);
        let run = async |sandbox: &DockerSandbox| {
            let r = sandbox
                .run(workdir.path(), "true", &limits)
                .await
                .expect("docker");
            assert!(r.passed, "{r:?}");
        };
        // Cold: the work order's first command starts its container; releasing removes it.
        let mut cold = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            run(&sandbox).await;
            sandbox.release(workdir.path()).await;
            cold.push(t.elapsed());
        }
        let mut cli = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let ok = Command::new("docker")
                .args([
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--read-only",
                    IMAGE,
                    "true",
                ])
                .output()
                .expect("docker run")
                .status
                .success();
            assert!(ok);
            cli.push(t.elapsed());
        }
        // Warm: every later command is `exec`'d into the held container.
        run(&sandbox).await;
        let mut exec = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            run(&sandbox).await;
            exec.push(t.elapsed());
        }
        let label = format!(
            "label=factory.worktree={}",
            workdir.path().canonicalize().expect("workdir").display()
        );
        let held = docker_cli(&["ps", "-q", "--filter", &label]);
        let mut exec_cli = Vec::new();
        if let Some(id) = held.lines().next() {
            for _ in 0..n {
                let t = Instant::now();
                docker_cli(&["exec", id, "true"]);
                exec_cli.push(t.elapsed());
            }
        }
        sandbox.release(workdir.path()).await;
        Some(Docker {
            cold: median(cold),
            run_cli: median(cli),
            exec: median(exec),
            exec_cli: (!exec_cli.is_empty()).then(|| median(exec_cli)),
        })
    });

    println!("delivery benchmark (medians of {rounds} rounds)");
    println!("{:<58} {:>14}", "measure", "value");
    println!(
        "{:<58} {:>14}",
        "worktree create + remove, git2 (200-file repository)",
        ms(g2)
    );
    println!("{:<58} {:>14}", "worktree add + remove, git CLI", ms(cli));
    println!(
        "{:<58} {:>14}",
        "ratio git2 / CLI",
        format!("{:.2}×", g2.as_secs_f64() / cli.as_secs_f64())
    );
    match bwrap {
        Some(b) => println!("{:<58} {:>14}", "bubblewrap run of `true`", ms(b)),
        None => println!(
            "{:<58} {:>14}",
            "bubblewrap run of `true`", "skipped (no bwrap)"
        ),
    }
    match docker {
        Some(d) => {
            println!(
                "{:<58} {:>14}",
                "docker first command (create, start, exec, remove)",
                ms(d.cold)
            );
            println!("{:<58} {:>14}", "docker run --rm IMAGE true", ms(d.run_cli));
            println!(
                "{:<58} {:>14}",
                "ratio first command / docker run",
                format!("{:.2}×", d.cold.as_secs_f64() / d.run_cli.as_secs_f64())
            );
            println!(
                "{:<58} {:>14}",
                "docker exec of `true` into the work order's container",
                ms(d.exec)
            );
            if let Some(cli) = d.exec_cli {
                println!("{:<58} {:>14}", "docker exec CONTAINER true (CLI)", ms(cli));
            }
        }
        None => println!("{:<58} {:>14}", "docker", "skipped (no engine or image)"),
    }
}

/// The docker sandbox's figures.
struct Docker {
    cold: Duration,
    run_cli: Duration,
    exec: Duration,
    exec_cli: Option<Duration>,
}

/// Runs the docker CLI; its stdout.
fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}
