//! The engineering agent loop on real parts: a Python package in a real repository, a
//! `python3 -m unittest` gate in bubblewrap, and a scripted model over HTTP that works the way
//! a coding agent does. Architecture names the file to change from the repository map alone
//! (its name is made up by the test), after one plan refused for a path the repository cannot
//! have. Engineering greps the test for a factor the test made up, makes a wrong change and
//! answers; the gate's failure comes back in the same conversation; it reads the file again
//! (still holding its wrong change), fixes it with the factor it read, and answers again. The
//! branch holds only the final change, and every command is a `command_run` event.
//!
//! Run with the model's native tool calls (OpenAI `tools`) and with the plain-text action
//! format a model without them gets; on a Rust crate (`cargo test`); and on a shell project in
//! the docker sandbox, one container per work order.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::cli::{add_project, assert_succeeded, auto_run_with_config, factory};
use crate::support::db::payloads;
use crate::support::git::{bubblewrap, commit_all, docker_image, git, git_repo, project_settings};
pub(crate) use crate::support::model::team_of;
use crate::support::model::{factory_toml, factory_toml_with_tools};
use crate::support::stream::openai_stream;
use crate::support::wire::openai_refusal;

/// Every request the model saw.
type Seen = Arc<Mutex<Vec<Value>>>;

/// The project the scripted agent works on: where the pricing module lives and what a
/// failing test prints.
#[derive(Clone, Copy)]
struct Lang {
    /// The module's directory (`shop` for Python, `src` for Rust).
    dir: &'static str,
    ext: &'static str,
    /// What the architect runs to find the module.
    find: &'static str,
    /// What a failed test's output holds.
    failure: &'static str,
}

const PYTHON: Lang = Lang {
    dir: "shop",
    ext: ".py",
    find: "grep -rl 'def discount' shop",
    failure: "AssertionError",
};

const RUST: Lang = Lang {
    dir: "src",
    ext: ".rs",
    find: "grep -rl 'fn discount' src",
    failure: "panicked",
};

/// A shell project, for the docker sandbox (the test image is busybox).
const SHELL: Lang = Lang {
    dir: "shop",
    ext: ".sh",
    find: "grep -rl 'discount()' shop",
    failure: "AssertionError",
};

impl Lang {
    /// The pricing module's path, if `word` is one.
    fn is_module(&self, word: &str) -> bool {
        word.starts_with(&format!("{}/pricing_", self.dir)) && word.ends_with(self.ext)
    }
}

/// How the scripted engineer behaves.
#[derive(Clone, Copy)]
enum Script {
    /// Reads, makes a wrong change, sees the gate fail, reads again and fixes it.
    Fixes(Lang),
    /// Tries to escape the sandbox in every way it can, then makes a plain change.
    Hostile { host_port: u16, nonce: u64 },
}

pub(crate) fn result(team: &str, status: &str, extra: Value) -> Value {
    let mut r = json!({
        "status": status,
        "reasoning": format!("{team} did its part"),
        "blockers": [], "assumptions_made": [], "verified_facts": [],
        "clarification_needed": null,
        "artifacts": [{"name": format!("{team}.md"), "content": format!("# {team}\n")}]
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

/// Text of every message of `role` (`tool` results in either wire form count as `tool`).
pub(crate) fn said(body: &Value, role: &str) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let content = m["content"].as_str().unwrap_or_default().to_string();
            let is_tool = m["role"] == "tool"
                || (m["role"] == "user" && content.starts_with("Result of tool call"));
            let matches = match role {
                "tool" => is_tool,
                "user" => m["role"] == "user" && !is_tool,
                other => m["role"] == other,
            };
            matches.then_some(content)
        })
        .collect()
}

/// The architect: looks for the pricing module with a command (in its throwaway copy of the
/// repository), checks the repository map names the same file, and plans; its first plan also
/// names a path no repository may hold, and is corrected when that is refused.
fn architect(body: &Value, lang: Lang) -> Step {
    let team = "solution-architecture";
    let Some(found) = said(body, "tool").first().cloned() else {
        return Step::Run(lang.find.into());
    };
    let Some(file) = found
        .lines()
        .map(str::trim)
        .find(|l| lang.is_module(l))
        .map(str::to_string)
    else {
        return Step::Answer(result(team, "BLOCKED", json!({"blockers": [found]})));
    };
    if !said(body, "system").join("\n").contains(&file) {
        return Step::Answer(result(
            team,
            "BLOCKED",
            json!({"blockers": ["not in the map"]}),
        ));
    }
    let refused = said(body, "user")
        .iter()
        .any(|m| m.contains("files_in_scope names files"));
    let mut files = vec![file];
    if !refused {
        files.push("../outside/secrets.py".into());
    }
    Step::Answer(result(
        team,
        "COMPLETE",
        json!({"work_orders": [{
            "id": "wo-1", "title": "Apply the agreed discount",
            "description": "discount() must use the factor the tests expect", "risk": "low",
            "files_in_scope": files, "acceptance_criteria": ["the unit tests pass"],
            "dependencies": [], "confidence": 0.9
        }]}),
    ))
}

/// What the engineer does next: a command to run, or its answer.
enum Step {
    Run(String),
    Answer(Value),
}

/// The engineer, one step per assistant turn so far.
fn engineer(body: &Value, lang: Lang) -> Step {
    let team = "backend-engineering";
    let prompt = said(body, "user").first().cloned().unwrap_or_default();
    let Some(file) = prompt
        .split(|c: char| c.is_whitespace() || c == ',' || c == '`')
        .find(|w| lang.is_module(w))
        .map(str::to_string)
    else {
        return Step::Answer(result(
            team,
            "BLOCKED",
            json!({"blockers": ["no file in scope"]}),
        ));
    };
    let tools = said(body, "tool");
    let blocked = |why: &str| Step::Answer(result(team, "BLOCKED", json!({"blockers": [why]})));
    match said(body, "assistant").len() {
        0 => Step::Run("grep -rn EXPECTED_FACTOR tests".into()),
        1 => Step::Run(format!("sed -i 's/total \\* 0.9/total * 0.5/' {file}")),
        2 => Step::Answer(result(team, "COMPLETE", json!({}))),
        3 => {
            let feedback = said(body, "user").last().cloned().unwrap_or_default();
            if !(feedback.contains("gate `") && feedback.contains(lang.failure)) {
                return blocked("the gate's output did not come back");
            }
            Step::Run(format!("cat {file}"))
        }
        4 => {
            if !tools.last().is_some_and(|t| t.contains("total * 0.5")) {
                return blocked("the worktree lost the change");
            }
            // Only the grep's output can tell the factor (`EXPECTED_FACTOR = 0.1234` in
            // Python, `EXPECTED_FACTOR: f64 = 0.1234;` in Rust).
            let factor: String = tools
                .first()
                .and_then(|t| {
                    t.split("EXPECTED_FACTOR")
                        .find_map(|rest| rest.split_once("= ").map(|(_, v)| v.to_string()))
                })
                .unwrap_or_else(|| "0.1".into())
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            Step::Run(format!("sed -i 's/total \\* 0.5/total * {factor}/' {file}"))
        }
        5 => Step::Answer(result(team, "COMPLETE", json!({}))),
        _ => blocked("too many turns"),
    }
}

async fn model(State((seen, script)): State<(Seen, Script)>, Json(body): Json<Value>) -> Response {
    if let Some(error) = openai_refusal(&body) {
        return (axum::http::StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    seen.lock().unwrap().push(body.clone());
    let team = team_of(&body);
    let step = match team.as_str() {
        "solution-architecture" => architect(
            &body,
            match script {
                Script::Fixes(lang) => lang,
                Script::Hostile { .. } => PYTHON,
            },
        ),
        "backend-engineering" if said(&body, "user")[0].contains("Your work order `wo-1`") => {
            match script {
                Script::Fixes(lang) => engineer(&body, lang),
                Script::Hostile { host_port, nonce } => hostile::engineer(&body, host_port, nonce),
            }
        }
        other => Step::Answer(result(other, "COMPLETE", json!({}))),
    };
    let native = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let n = seen.lock().unwrap().len();
    let (message, finish) = match step {
        Step::Answer(r) => (
            json!({"role": "assistant", "content": r.to_string()}),
            "stop",
        ),
        Step::Run(command) if native => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{n}"), "type": "function",
                "function": {"name": "run", "arguments": json!({"command": command}).to_string()}
            }]}),
            "tool_calls",
        ),
        Step::Run(command) => (
            json!({"role": "assistant", "content": json!({"tool_calls": [
                {"name": "run", "arguments": {"command": command}}
            ]}).to_string()}),
            "stop",
        ),
    };
    let whole = json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 500, "completion_tokens": 50, "total_tokens": 550}
    });
    if body["stream"] == true {
        return openai_stream(&body, &whole, std::time::Duration::ZERO);
    }
    Json(whole).into_response()
}

async fn serve(script: impl FnOnce(u16) -> Script) -> (String, Seen) {
    let seen = Seen::default();
    let port = crate::support::free_port();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(model))
        .with_state((seen.clone(), script(port)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}/v1"), seen)
}

/// The `command_run` events of the data directory's log, in order.
async fn command_runs(data: &Path) -> Vec<Value> {
    payloads(data, "command_run").await
}

/// A Python package whose test expects a factor only the test file states.
fn package(repo: &Path, module: &str, factor: &str) {
    std::fs::create_dir_all(repo.join("shop")).unwrap();
    std::fs::create_dir_all(repo.join("tests")).unwrap();
    std::fs::write(repo.join("shop/__init__.py"), "").unwrap();
    std::fs::write(
        repo.join(format!("shop/{module}.py")),
        "\"\"\"Prices.\"\"\"\n\n\ndef discount(total):\n    return total * 0.9\n",
    )
    .unwrap();
    std::fs::write(repo.join("tests/__init__.py"), "").unwrap();
    std::fs::write(
        repo.join("tests/test_pricing.py"),
        format!(
            "import unittest\n\nfrom shop.{module} import discount\n\nEXPECTED_FACTOR = {factor}\n\n\n\
             class Discount(unittest.TestCase):\n    def test_factor(self):\n        \
             self.assertAlmostEqual(discount(100), 100 * EXPECTED_FACTOR)\n"
        ),
    )
    .unwrap();
    commit_all(repo, "pricing");
}

/// A Rust crate with a dependency from crates.io (fetched by the prepare step, used offline
/// in the sandbox), whose integration test expects a factor only the test file states.
fn crate_(repo: &Path, module: &str, factor: &str) {
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::create_dir_all(repo.join("tests")).unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        "[package]\nname = \"shop\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"=1.0.11\"\n",
    )
    .unwrap();
    std::fs::write(repo.join(".gitignore"), "target/\nCargo.lock\n").unwrap();
    std::fs::write(
        repo.join("src/lib.rs"),
        format!(
            "pub mod {module};\n\npub fn shown(n: u32) -> String {{\n    \
             itoa::Buffer::new().format(n).to_string()\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join(format!("src/{module}.rs")),
        "//! Prices.\n\npub fn discount(total: f64) -> f64 {\n    total * 0.9\n}\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("tests/pricing.rs"),
        format!(
            "use shop::{module}::discount;\n\nconst EXPECTED_FACTOR: f64 = {factor};\n\n\
             #[test]\nfn factor() {{\n    assert!((discount(100.0) - 100.0 * EXPECTED_FACTOR).abs() \
             < 1e-9, \"discount(100.0) = {{}}\", discount(100.0));\n}}\n\n\
             #[test]\nfn shows() {{\n    assert_eq!(shop::shown(7), \"7\");\n}}\n"
        ),
    )
    .unwrap();
    commit_all(repo, "pricing");
}

async fn the_agent_loop(native_tools: bool) {
    the_agent_loop_in(native_tools, PYTHON).await;
}

/// A busybox shell project whose test expects a factor only the test file states; its gate
/// and its commands run in docker, in the test image.
fn shell_package(repo: &Path, module: &str, factor: &str) {
    std::fs::create_dir_all(repo.join("shop")).unwrap();
    std::fs::create_dir_all(repo.join("tests")).unwrap();
    std::fs::write(
        repo.join(format!("shop/{module}.sh")),
        "# Prices.\n\ndiscount() {\n    echo \"total * 0.9\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("tests/test_pricing.sh"),
        format!(
            "# EXPECTED_FACTOR = {factor}\n. ./shop/{module}.sh\ngot=\"$(discount)\"\n\
             [ \"$got\" = \"total * {factor}\" ] || \
             {{ echo \"AssertionError: discount says $got\"; exit 1; }}\necho ok\n"
        ),
    )
    .unwrap();
    project_settings(
        repo,
        "sandbox = \"docker\"\nimage = \"factory-sandbox:test\"\ngates = [\"sh tests/test_pricing.sh\"]\n",
    );
    commit_all(repo, "pricing");
}

async fn the_agent_loop_in(native_tools: bool, lang: Lang) {
    let docker = lang.ext == SHELL.ext;
    let present = match docker {
        true => docker_image("factory-sandbox:test"),
        false => bubblewrap(),
    };
    if !present {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let module = format!("pricing_{}", nanos % 1_000_000);
    let factor = format!("0.{}", 1_000 + nanos % 8_999);
    let repo = git_repo();
    let rust = lang.dir == RUST.dir;
    match (rust, docker) {
        (true, _) => crate_(repo.path(), &module, &factor),
        (false, true) => shell_package(repo.path(), &module, &factor),
        (false, false) => package(repo.path(), &module, &factor),
    }
    let (base, seen) = serve(|_| Script::Fixes(lang)).await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    let toml = if native_tools {
        factory_toml_with_tools(&base)
    } else {
        factory_toml(&base)
    };
    std::fs::write(&config, toml).unwrap();
    // The Rust crate's gate is the one detected from Cargo.toml (`cargo test`); the shell
    // project's is in its `.factory/project.toml`.
    let gate: &[&str] = if rust || docker {
        &[]
    } else {
        &["--gate", "python3 -m unittest discover -s tests -t ."]
    };
    add_project(data.path(), repo.path(), gate);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let out = tokio::process::Command::from(auto_run_with_config(
        data.path(),
        &config,
        "shop",
        "Apply the agreed discount",
    ))
    .output()
    .await
    .unwrap();
    assert_succeeded(&out);
    let seen = seen.lock().unwrap().clone();
    // The model was offered the tool natively only when it has native tool calling.
    let engineer: Vec<&Value> = seen
        .iter()
        .filter(|b| team_of(b) == "backend-engineering")
        .filter(|b| said(b, "user")[0].contains("Your work order `wo-1`"))
        .collect();
    assert_eq!(engineer.len(), 6, "six engineering turns");
    assert_eq!(
        engineer.iter().all(|b| b["tools"].is_array()),
        native_tools,
        "tools offered natively"
    );
    // The architect was refused once for the path outside the repository.
    let architect: Vec<&Value> = seen
        .iter()
        .filter(|b| team_of(b) == "solution-architecture")
        .collect();
    assert!(
        architect.iter().any(|b| said(b, "user")
            .iter()
            .any(|m| m.contains("files_in_scope names files") && m.contains("../outside"))),
        "the invalid path was sent back"
    );

    let file = format!("{}/{module}{}", lang.dir, lang.ext);
    let branches = git(
        repo.path(),
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    );
    let branch = branches.lines().find(|b| *b != "main").expect("a branch");
    let expected = match (rust, docker) {
        (true, _) => format!(
            "//! Prices.\n\npub fn discount(total: f64) -> f64 {{\n    total * {factor}\n}}\n"
        ),
        (false, true) => format!("# Prices.\n\ndiscount() {{\n    echo \"total * {factor}\"\n}}\n"),
        (false, false) => {
            format!("\"\"\"Prices.\"\"\"\n\n\ndef discount(total):\n    return total * {factor}\n")
        }
    };
    assert_eq!(
        git(repo.path(), &["show", &format!("{branch}:{file}")]),
        expected
    );
    // Only the final change: no wrong factor, no bytecode the gate or the commands wrote.
    assert_eq!(
        git(repo.path(), &["diff", "--name-only", "main", branch]).trim(),
        file
    );

    // Every command is in the event log (and so the audit chain), with its exit code and
    // output.
    let all = command_runs(data.path()).await;
    // The architect looked once, in its copy (no work order).
    let looked: Vec<&Value> = all
        .iter()
        .filter(|c| c["team"] == "solution-architecture")
        .collect();
    assert_eq!(looked.len(), 1, "{all:?}");
    assert!(looked[0]["work_order_id"].is_null() && looked[0]["exit_code"] == 0);
    let commands: Vec<&Value> = all
        .iter()
        .filter(|c| c["team"] == "backend-engineering")
        .collect();
    assert_eq!(commands.len(), 4, "{commands:?}");
    let sandbox = if docker { "docker" } else { "bubblewrap" };
    assert!(
        commands
            .iter()
            .all(|c| c["exit_code"] == 0 && c["sandbox"] == sandbox),
        "{commands:?}"
    );
    let tail = commands[0]["output_tail"].as_str().unwrap();
    assert!(
        tail.contains("EXPECTED_FACTOR") && tail.contains(&factor),
        "{commands:?}"
    );
    if rust {
        // The dependency came from the prepare step, which ran before any sandbox.
        let prepared = payloads(data.path(), "dependencies_prepared").await;
        assert_eq!(prepared.len(), 1, "{prepared:?}");
        assert_eq!(prepared[0]["tool"], "cargo");
        assert_eq!(prepared[0]["exit_code"], 0, "{prepared:?}");
    }
    if docker {
        one_container_per_work_order(data.path(), started);
    }
    let verify = factory(data.path(), &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
}

/// The work order's four commands and its two gate runs all ran in one container (`exec`'d
/// into it), and no container of the run is left.
fn one_container_per_work_order(data: &Path, since: u64) {
    let worktrees = data.canonicalize().unwrap().join("worktrees");
    let label = |format: &str, args: &[&str]| -> Vec<String> {
        let out = std::process::Command::new("docker")
            .args(args)
            .args(["--filter", "label=factory.gate", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(worktrees.to_str().unwrap()))
            .map(str::to_string)
            .collect()
    };
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let (since, until) = (since.to_string(), until.to_string());
    let created = label(
        "{{index .Actor.Attributes \"factory.worktree\"}}",
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
            "--filter",
            "event=create",
        ],
    );
    assert_eq!(
        created.len(),
        1,
        "containers made for work orders: {created:?}"
    );
    let left = label("{{.Label \"factory.worktree\"}}", &["ps", "-a"]);
    assert!(left.is_empty(), "containers left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_native_tool_calls_reads_fails_a_gate_and_fixes_it() {
    the_agent_loop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_tool_calls_works_through_the_text_action_format() {
    the_agent_loop(false).await;
}

/// The same loop with the project's gates and the agent's commands in docker: one container
/// for the work order, every command `exec`'d into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_in_one_docker_container_per_work_order() {
    the_agent_loop_in(true, SHELL).await;
}

/// The same loop on a Rust crate, its gate `cargo test` as detected, run with the toolchain
/// that builds Factory (rustup's, when that is how this machine has it) and a dependency the
/// prepare step fetched: nothing configured for either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fixes_a_rust_crate_with_cargo_test_as_its_gate() {
    the_agent_loop_in(true, RUST).await;
}

mod hostile;
