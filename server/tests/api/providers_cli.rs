//! `factory models add`, `remove` and `test` as a person runs them: a provider added by the CLI
//! while `factory serve` runs on the same data directory is in force within seconds, without a
//! restart; `models test` against each wire format prints who answered and the capabilities in
//! force; bad input exits 2 and records nothing.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::app::TOKEN;
use crate::support::cli::{factory, factory_serve, factory_with_stdin, text, wait_until_up};
use crate::support::free_port;
use crate::support::keyed::{bearer_headers, serve_anthropic, serve_openai};
use crate::support::providers::serve_ollama;

const KEY: &str = "sk-cli-typed-0b9e8d7c6a5f4e3d2c1b4321";

async fn settings(client: &reqwest::Client, server: &str) -> Value {
    client
        .get(format!("{server}/api/settings"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn has_provider(settings: &Value, name: &str) -> bool {
    settings["providers"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_added_by_the_cli_is_in_force_on_a_running_server_within_seconds() {
    let (base, seen) = serve_openai(KEY).await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = factory_serve(data.path(), None, port)
        .env("OLLAMA_HOST", "http://127.0.0.1:9")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .spawn()
        .unwrap();
    let server = format!("http://127.0.0.1:{port}");
    wait_until_up(&server).await;
    let client = reqwest::Client::new();
    assert!(!has_provider(&settings(&client, &server).await, "acme"));

    let args = [
        "models",
        "add",
        "acme",
        "--kind",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        base.as_str(),
        "--key-stdin",
        "--every-alias",
    ];
    let out = factory_with_stdin(data.path(), &args, &format!("{KEY}\n"));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("provider `acme` added: recorded as event #"),
        "{stdout}"
    );
    assert!(
        stdout.contains("factory/coder      acme:gpt-4o-mini"),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY) && !text(&out.stderr).contains(KEY));

    let added = Instant::now();
    let shown = loop {
        let now = settings(&client, &server).await;
        if has_provider(&now, "acme") {
            break now;
        }
        assert!(
            added.elapsed() < Duration::from_secs(5),
            "not picked up: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("picked up in {} ms", added.elapsed().as_millis());
    assert!(
        shown.to_string().contains("key set, ends in …4321"),
        "{shown}"
    );
    let report: Value = client
        .post(format!("{server}/api/settings/providers/acme/test"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["answered_by"], "acme:gpt-4o-mini", "{report}");
    assert_eq!(bearer_headers(&seen), vec![format!("Bearer {KEY}")]);

    let listed = text(&factory(data.path(), &["models"]).stdout);
    assert!(
        listed.contains("[set from the dashboard or the CLI]"),
        "{listed}"
    );
    assert!(
        listed.contains("key set, ends in …4321") && !listed.contains(KEY),
        "{listed}"
    );

    let out = factory(data.path(), &["models", "remove", "acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let removed = Instant::now();
    while has_provider(&settings(&client, &server).await, "acme") {
        assert!(
            removed.elapsed() < Duration::from_secs(5),
            "removal not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_test_prints_the_capabilities_for_each_wire_format() {
    let (openai, _) = serve_openai(KEY).await;
    let (anthropic, anthropic_seen) = serve_anthropic(KEY).await;
    let (ollama, _) = serve_ollama(&["llama3.1:8b"]).await;
    let data = tempfile::tempdir().unwrap();
    let cases = [
        (
            "oa",
            "openai",
            "gpt-4o-mini",
            openai.as_str(),
            true,
            "128000 tokens",
            "native tool calling",
        ),
        (
            "an",
            "anthropic",
            "claude-sonnet-4-5",
            anthropic.as_str(),
            true,
            "200000 tokens",
            "native tool calling",
        ),
        (
            "ol",
            "ollama",
            "llama3.1:8b",
            ollama.as_str(),
            false,
            "32768 tokens",
            "native tool calling",
        ),
    ];
    for (name, kind, model, base, keyed, window, tools) in cases {
        let mut args = vec![
            "models",
            "add",
            name,
            "--kind",
            kind,
            "--model",
            model,
            "--base-url",
            base,
        ];
        if keyed {
            args.push("--key-stdin");
        }
        let out = factory_with_stdin(data.path(), &args, &format!("{KEY}\n"));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let target = format!("{name}:{model}");
        let out = factory(data.path(), &["models", "test", &target]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("answered by  {target}")),
            "{stdout}"
        );
        assert!(stdout.contains("\ncapabilities\n"), "{stdout}");
        for capability in [
            "context_window",
            "temperature",
            "reasoning_effort",
            "tools",
            "structured_output",
            "max_completion_tokens",
        ] {
            let line = stdout
                .lines()
                .find(|l| l.trim_start().starts_with(capability))
                .unwrap_or_else(|| panic!("{name}: no {capability} line in {stdout}"));
            assert!(line.ends_with("(family default)"), "{line}");
        }
        assert!(stdout.contains(window), "{name}: {stdout}");
        assert!(stdout.contains(tools), "{name}: {stdout}");
        assert!(!stdout.contains(KEY));
    }
    let (headers, _) = anthropic_seen.lock().unwrap()[0].clone();
    assert_eq!(headers["x-api-key"], KEY, "the typed key is the key sent");
}

#[test]
fn bad_input_exits_2_naming_the_field_and_records_nothing() {
    let data = tempfile::tempdir().unwrap();
    let out = factory(
        data.path(),
        &[
            "models",
            "add",
            "acme",
            "--kind",
            "openai",
            "--model",
            "two words",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("model: give the model's name"),
        "{}",
        text(&out.stderr)
    );
    let out = factory(data.path(), &["models", "remove", "ghost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("there is no provider `ghost` to remove"));
    let out = factory(data.path(), &["audit", "verify"]);
    assert!(
        text(&out.stdout).contains("0 events") || text(&out.stdout).contains("intact"),
        "{}",
        text(&out.stdout)
    );
    let listed = text(&factory(data.path(), &["models"]).stdout);
    assert!(!listed.contains("acme"), "{listed}");
}
