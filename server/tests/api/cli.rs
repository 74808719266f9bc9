//! The `factory` binary as a user runs it: help, exit codes, first-start token, token
//! creation, audit, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::cli::{factory_command, text};
use crate::support::db::sqlite;
use crate::support::providers::{Reply, serve, serve_ollama};
use crate::support::{Store, cost_report, free_port};

/// `factory args` on `data_dir`, with no admin token or address from the environment.
fn factory(data_dir: &std::path::Path, args: &[&str]) -> Output {
    factory_command(data_dir)
        .args(args)
        .env_remove("FACTORY_ADMIN_TOKEN")
        .env_remove("FACTORY_ADDR")
        .output()
        .unwrap()
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["audit", "--help"],
        &["audit", "verify", "--help"],
        &["audit", "rebuild", "--help"],
        &["token", "--help"],
        &["token", "create", "--help"],
        &["models", "--help"],
    ] {
        let out = factory(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
    let top = text(&factory(dir.path(), &["--help"]).stdout);
    assert!(
        top.contains("FACTORY_DATA_DIR") && top.contains("Exit codes"),
        "{top}"
    );
}

#[test]
fn invalid_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = factory(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unusable_data_dir_exits_3_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let out = factory(&file.join("data"), &["migrate"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is not usable"), "{err}");
}

/// Runs `statements` on the database file at `db` through a connection of the test's own, then
/// closes it (the write-ahead log is folded back into the file).
async fn tamper(db: &std::path::Path, statements: &[&str]) {
    let pool = sqlite(db).await;
    for statement in statements {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn a_newer_schema_exits_3_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(factory(dir.path(), &["migrate"]).status.code(), Some(0));
    let db = dir.path().join("factory.db");
    tamper(
        &db,
        &[
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
           execution_time) VALUES (99990101000000, 'future', 1, x'00', 0)",
        ],
    )
    .await;
    let before = std::fs::read(&db).unwrap();
    let out = factory(dir.path(), &["migrate"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("newer Factory"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[tokio::test]
async fn a_created_token_works_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let out = factory(dir.path(), &["token", "create", "--label", "ci"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(token.starts_with("fct_") && token.len() == 68, "{token}");
    let res = app
        .client
        .get(app.url("/api/runs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
    let audit = factory(dir.path(), &["audit", "verify"]);
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit.stdout));
    assert!(text(&audit.stdout).contains("chain intact"));
}

#[tokio::test]
async fn audit_verify_exits_4_on_a_tampered_log() {
    let dir = tempfile::tempdir().unwrap();
    for label in ["a", "b", "c"] {
        assert_eq!(
            factory(dir.path(), &["token", "create", "--label", label])
                .status
                .code(),
            Some(0)
        );
    }
    let db = dir.path().join("factory.db");
    tamper(
        &db,
        &[
            "DROP TRIGGER events_no_update",
            "UPDATE events SET actor = 'mallory' WHERE seq = 2",
        ],
    )
    .await;
    let out = factory(dir.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stdout).contains("chain broken at event #2"),
        "{}",
        text(&out.stdout)
    );
    let rebuilt = factory(dir.path(), &["audit", "rebuild"]);
    assert_eq!(rebuilt.status.code(), Some(0));
}

#[test]
fn serve_prints_the_first_token_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = factory_command(dir.path())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_remove("FACTORY_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        loop {
            let line = lines
                .next()
                .expect("serve prints until it listens")
                .unwrap();
            let done = line.contains("is listening on");
            seen.push(line);
            if done {
                break;
            }
        }
        (child, seen.join("\n"))
    };
    let (first, out) = start();
    let token_line = out.lines().find(|l| l.trim().starts_with("fct_"));
    assert!(token_line.is_some(), "first start shows a token: {out}");
    assert!(out.contains("/login"), "{out}");
    stop(first);

    let (second, out) = start();
    assert!(!out.contains("fct_"), "the token is shown only once: {out}");
    stop(second);
}

fn stop(mut child: std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("serve did not stop within 5 s of SIGTERM");
}

#[test]
fn models_lists_chains_without_ever_printing_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-test-do-not-print-0123456789";
    let out = factory_command(dir.path())
        .arg("models")
        .env("OPENAI_API_KEY", secret)
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("FACTORY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains(secret) && !text(&out.stderr).contains(secret));
    assert!(stdout.contains("key from $OPENAI_API_KEY"), "{stdout}");
    assert!(stdout.contains("factory/architect"), "{stdout}");
    assert!(stdout.contains("offline (no model)"), "{stdout}");
}

#[test]
fn an_invalid_factory_toml_exits_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("factory.toml"),
        "[budgets.month]\nsoft = 80.0\nhard = 50.0\n",
    )
    .unwrap();
    // `models` and `serve` both refuse it before doing anything else.
    for args in [&["models"][..], &["serve", "--addr", "127.0.0.1:0"][..]] {
        let out = factory_command(dir.path())
            .args(args)
            .env_remove("FACTORY_CONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("[budgets.month]: need soft ≤ hard ≤ emergency"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn models_test_prints_latency_tokens_and_cost_and_records_the_call() {
    let (base, _) = serve(vec![Reply::Ok {
        text: "ready",
        input: 1_000,
        output: 2,
    }])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("custom.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.lab]\nkind = \"openai\"\nbase_url = \"{base}\"\n\
             [models.\"lab:small\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::from(factory_command(dir.path()))
        .arg("--config")
        .arg(&config)
        .args(["models", "test", "lab:small"])
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("answered by  lab:small"), "{stdout}");
    assert!(stdout.contains("reply        ready"), "{stdout}");
    assert!(stdout.contains("tokens       1000 in / 2 out"), "{stdout}");
    assert!(stdout.contains("cost         $0.001004"), "{stdout}");
    assert!(stdout.contains("latency"), "{stdout}");
    let store = Store::open(dir.path()).await.unwrap();
    let report = cost_report(&store).await.unwrap();
    assert_eq!(
        report.total.unwrap().calls,
        1,
        "the test call is in the ledger"
    );

    // The offline provider says what it is; an unknown alias is a usage error.
    let out = factory_command(dir.path())
        .args(["models", "test", "offline:template"])
        .env_remove("FACTORY_CONFIG")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("offline (no model): deterministic template, not an LLM"),
        "{stdout}"
    );
    let out = factory_command(dir.path())
        .args(["models", "test", "factory/nope"])
        .env_remove("FACTORY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown model alias or provider `factory/nope`"),
        "{}",
        text(&out.stderr)
    );

    // A server that refuses the model: exit 1 naming provider and model.
    let (base, _) = serve(vec![Reply::Status {
        status: 404,
        retry_after: None,
    }])
    .await;
    std::fs::write(
        &config,
        format!("[providers.lab]\nkind = \"openai\"\nbase_url = \"{base}\"\n"),
    )
    .unwrap();
    let out = tokio::process::Command::from(factory_command(dir.path()))
        .arg("--config")
        .arg(&config)
        .args(["models", "test", "lab:missing"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("lab:missing answered 404"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn models_reports_whether_an_ollama_answers() {
    let (base, _) = serve_ollama(&["llama3.2:3b"]).await;
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    for (host, expected) in [
        (base, "found: llama3.2:3b".to_string()),
        (
            format!("http://127.0.0.1:{closed}"),
            "not found".to_string(),
        ),
    ] {
        let out = tokio::process::Command::from(factory_command(dir.path()))
            .arg("models")
            .env("OLLAMA_HOST", &host)
            .env_remove("FACTORY_CONFIG")
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(&expected), "{host}: {stdout}");
    }
}

#[test]
fn a_provider_whose_key_is_missing_stops_serve_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("factory.toml"),
        "[providers.corp]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         api_key_env = \"FACTORY_TEST_UNSET_KEY\"\n",
    )
    .unwrap();
    let out = factory_command(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env_remove("FACTORY_CONFIG")
        .env_remove("FACTORY_TEST_UNSET_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "provider `corp` reads its API key from FACTORY_TEST_UNSET_KEY, which is not set"
        ),
        "{err}"
    );
}
