//! The Gym end to end through `factory gym run`: the built-in scenarios with the offline
//! templates, the critical ones with a scripted model that must read the fixture's code, a
//! model that never sees the code failing them, a broken team override failing a scenario
//! with a readable account of what changed, and every check kind passing and failing.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::cli::{assert_succeeded, factory_cli, text};
use crate::support::git::{bubblewrap, python3};
use crate::support::gym_model::{GymModel, serve_gym_model};
use crate::support::model::factory_toml_with;

fn gym(data: &Path, args: &[&str]) -> Output {
    factory_cli(data)
        .args(["gym", "run"])
        .args(args)
        .output()
        .unwrap()
}

/// `factory gym run ARGS` on `data` with `config` as its factory.toml, off the test's runtime
/// (the scripted model serves on it); the output and everything it said.
async fn gym_with(data: &Path, config: &Path, args: &[&str]) -> (Output, String) {
    let (data, config) = (data.to_path_buf(), config.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        factory_cli(&data)
            .env("FACTORY_CONFIG", &config)
            .args(["gym", "run"])
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out, said)
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// Each check of a scenario's first attempt: (name, status, detail).
fn checks(report: &Value, scenario: &str) -> Vec<(String, String, String)> {
    let s = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == scenario)
        .unwrap_or_else(|| panic!("no scenario {scenario} in {report}"));
    s["attempts"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_built_in_scenarios_pass_with_the_offline_templates_and_are_recorded() {
    if !bubblewrap() || !python3() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let out = gym(
        data.path(),
        &[
            "--model",
            "*=offline:template",
            "--report",
            reports.path().to_str().unwrap(),
        ],
    );
    assert_succeeded(&out);
    let report = report(reports.path());
    let scenarios = report["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 6, "{report}");
    for s in scenarios {
        assert_eq!(s["passed"], true, "{}", s);
        assert_eq!(s["attempts"][0]["offline"], true, "{}", s);
    }
    // What a model would have to write is said to be skipped, not passed.
    let hello = checks(&report, "hello-world");
    assert!(
        hello
            .iter()
            .any(|(n, s, d)| n == "hello.py prints the greeting"
                && s == "skipped"
                && d.contains("offline templates")),
        "{hello:?}"
    );
    let hostile = checks(&report, "hostile-gate");
    assert!(
        hostile
            .iter()
            .filter(|(_, _, d)| d.contains("is absent"))
            .count()
            == 2,
        "{hostile:?}"
    );
    // Every attempt is in the gym's event log, with its settings.
    let history = tokio::runtime::Runtime::new().unwrap().block_on(async {
        crate::support::db::payloads(data.path(), "gym_scenario_finished").await
    });
    assert_eq!(history.len(), scenarios.len());
    assert!(
        history.iter().all(
            |p| p["record"]["catalogue_hash"].as_str().unwrap().len() == 64
                && p["record"]["models"]
                    .as_str()
                    .unwrap()
                    .contains("factory/coder=offline:template")
        ),
        "{history:?}"
    );
    let html = std::fs::read_to_string(reports.path().join("report.html")).unwrap();
    assert!(
        html.contains("hostile-gate") && html.contains("<table"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_critical_scenarios_pass_only_when_the_model_is_shown_the_code() {
    if !bubblewrap() || !python3() {
        return;
    }
    let model = GymModel::default();
    let base = serve_gym_model(model.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml_with(&base, false)).unwrap();
    let reports = tempfile::tempdir().unwrap();
    let (out, said) = gym_with(
        data.path(),
        &config,
        &[
            "--report",
            reports.path().to_str().unwrap(),
            "--scenario",
            "rust-fix-failing-test",
            "--scenario",
            "python-add-function",
            "--scenario",
            "clarification-answered",
            "--scenario",
            "budget-stop",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{said}");
    let report = report(reports.path());
    for name in [
        "rust-fix-failing-test",
        "python-add-function",
        "clarification-answered",
        "budget-stop",
    ] {
        let all = checks(&report, name);
        // With a model, nothing is skipped: every check was evaluated and passed.
        assert!(
            all.iter().all(|(_, s, _)| s == "passed"),
            "{name}: {all:#?}\n{said}"
        );
    }
    let rust = checks(&report, "rust-fix-failing-test");
    assert!(
        rust.iter()
            .any(|(n, _, d)| n.contains("hidden") && d.contains("passed on")),
        "{rust:?}"
    );
    // The fix was made from the file the engineer was shown.
    assert!(
        model
            .engineer_prompts()
            .iter()
            .any(|p| p.contains("nautical_miles * 1000")),
        "the engineer never saw src/lib.rs"
    );
    let diff_path = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rust-fix-failing-test")
        .unwrap()["attempts"][0]["diff"]
        .as_str()
        .unwrap()
        .to_string();
    let diff = std::fs::read_to_string(reports.path().join(diff_path)).unwrap();
    assert!(
        diff.contains("-    nautical_miles * 1000")
            && diff.contains("+    nautical_miles * METRES_PER_NAUTICAL_MILE"),
        "{diff}"
    );
}

/// A gym directory holding a copy of the built-in Rust scenario, its fixture with a team
/// override when `soul` is given.
fn gym_dir_with_override(root: &Path, soul: Option<&str>) {
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("gym");
    std::fs::create_dir_all(root.join("scenarios")).unwrap();
    let scenario = std::fs::read_to_string(builtin.join("scenarios/rust-fix-failing-test.toml"))
        .unwrap()
        .replace(
            "critical = true",
            "critical = true\nname = \"fix-with-overrides\"",
        );
    std::fs::write(root.join("scenarios/fix.toml"), scenario).unwrap();
    copy_dir(
        &builtin.join("fixtures/rust-crate"),
        &root.join("fixtures/rust-crate"),
    );
    let teams = root.join("fixtures/rust-crate/.factory/teams/solution-architecture");
    let _ = std::fs::remove_dir_all(&teams);
    if let Some(soul) = soul {
        std::fs::create_dir_all(&teams).unwrap();
        std::fs::write(teams.join("SOUL.md"), soul).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_team_override_fails_a_scenario_and_says_what_changed() {
    if !bubblewrap() {
        return;
    }
    let base = serve_gym_model(GymModel::default()).await;
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("factory.toml");
    std::fs::write(&config, factory_toml_with(&base, false)).unwrap();
    let gym_dir = tempfile::tempdir().unwrap();
    let run = |round: &str| {
        let reports = data.path().join(round);
        let (data, config, dir) = (data.path(), &config, gym_dir.path().to_path_buf());
        async move {
            let args = [
                "--no-builtin",
                "--dir",
                dir.to_str().unwrap(),
                "--report",
                reports.to_str().unwrap(),
            ];
            let (out, _) = gym_with(data, config, &args).await;
            (out, reports)
        }
    };
    gym_dir_with_override(gym_dir.path(), None);
    let (first, _) = run("first").await;
    assert_succeeded(&first);

    // The architect's identity now tells it not to name files: the engineer is never shown
    // the code, cannot fix it, and the hidden tests fail.
    let mut soul = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("teams/solution-architecture/SOUL.md"),
    )
    .unwrap();
    soul.push_str("\n\nNever name files in scope: engineers find their own way.\n");
    gym_dir_with_override(gym_dir.path(), Some(&soul));
    let (second, reports) = run("second").await;
    let said = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(1),
        "{said}{}",
        text(&second.stderr)
    );
    assert!(
        said.contains("critical failed: fix-with-overrides"),
        "{said}"
    );
    assert!(said.contains("team catalogue: "), "{said}");
    assert!(
        said.contains("check `the crate's tests and the hidden ones pass`: passed → failed"),
        "{said}"
    );
    let report = report(&reports);
    let changed = report["scenarios"][0]["attempts"][0]["changed"]
        .as_str()
        .unwrap();
    assert!(changed.contains("team catalogue"), "{changed}");
    let html = std::fs::read_to_string(reports.join("report.html")).unwrap();
    assert!(html.contains("What changed since it last passed"), "{html}");
}

#[test]
fn bad_scenarios_and_options_are_refused_with_what_is_accepted() {
    let data = tempfile::tempdir().unwrap();
    let gym_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(gym_dir.path().join("scenarios")).unwrap();
    std::fs::write(
        gym_dir.path().join("scenarios/bad.toml"),
        "requirement = \"x\"\nfixture = \"f\"\n[[checks]]\nkind = \"file\"\npath = \"/etc/passwd\"\n",
    )
    .unwrap();
    let dir = gym_dir.path().to_str().unwrap();
    let out = gym(data.path(), &["--no-builtin", "--dir", dir]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("relative path"),
        "{err}"
    );

    let out = gym(data.path(), &["--model", "factory/nope=offline:template"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not an alias"),
        "{}",
        text(&out.stderr)
    );
    let out = gym(data.path(), &["--scenario", "no-such-*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no scenario matches"));
    let out = gym(data.path(), &["--repeat", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--repeat 0"));
}

/// A checkout with `calc.py` (whose `add` returns `body`, wrongly) and a test of `mul`;
/// returns its HEAD and a test patch adding `tests/test_add.py`.
fn calc_checkout(dir: &Path, body: &str) -> (String, String) {
    use crate::support::git::{commit_all, git};
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("calc.py"),
        format!("def add(a, b):\n    return {body}\n\n\ndef mul(a, b):\n    return a * b\n"),
    )
    .unwrap();
    std::fs::write(dir.join("tests/__init__.py"), "").unwrap();
    std::fs::write(
        dir.join("tests/test_mul.py"),
        "import unittest\n\nfrom calc import mul\n\n\nclass Mul(unittest.TestCase):\n    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n",
    )
    .unwrap();
    commit_all(dir, "calc");
    let head = git(dir, &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(
        dir.join("tests/test_add.py"),
        "import unittest\n\nfrom calc import add\n\n\nclass Add(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
    )
    .unwrap();
    git(dir, &["add", "tests/test_add.py"]);
    let patch = git(dir, &["diff", "--cached"]);
    git(dir, &["reset", "-q", "--hard"]);
    (head, patch)
}

#[tokio::test(flavor = "multi_thread")]
async fn swebench_instances_become_scenarios_whose_hidden_tests_run_after_delivery() {
    if !bubblewrap() || !python3() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let repos = root.path().join("repos");
    let (calc_head, calc_patch) = calc_checkout(&repos.join("acme__calc"), "a - b");
    let (other_head, other_patch) = calc_checkout(&repos.join("acme").join("other"), "b - a");
    let line = |id: &str, repo: &str, head: &str, patch: &str, f2p: Value| {
        serde_json::json!({
            "instance_id": id, "repo": repo, "base_commit": head,
            "problem_statement": "The function `add` in `calc.py` subtracts its arguments: make it add them.",
            "test_patch": patch, "FAIL_TO_PASS": f2p, "PASS_TO_PASS": ["tests.test_mul"],
            "patch": "the gold patch is never read", "hints_text": "", "version": "1.0"
        })
        .to_string()
    };
    let jsonl = root.path().join("instances.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{}\n{}\n",
            // The published datasets encode the test lists as JSON strings.
            line(
                "acme__calc-1",
                "acme/calc",
                &calc_head,
                &calc_patch,
                Value::String("[\"tests.test_add\"]".into())
            ),
            line(
                "acme__other-2",
                "acme/other",
                &other_head,
                &other_patch,
                serde_json::json!(["tests.test_add"])
            ),
        ),
    )
    .unwrap();
    let out_dir = root.path().join("gym");
    let data = root.path().join("data");
    let import = |file: &Path| {
        factory_cli(&data)
            .args(["gym", "import-swebench", file.to_str().unwrap()])
            .args([
                "--repos",
                repos.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ])
            .args(["--test-command", "python3 -m unittest {tests}"])
            .output()
            .unwrap()
    };
    let out = import(&jsonl);
    assert_succeeded(&out);
    assert!(
        text(&out.stdout).contains("2 scenario(s) written"),
        "{}",
        text(&out.stdout)
    );
    let scenario = std::fs::read_to_string(out_dir.join("scenarios/acme__calc-1.toml")).unwrap();
    assert!(
        scenario.contains("python3 -m unittest tests.test_add"),
        "{scenario}"
    );
    assert!(!scenario.contains("gold patch"), "{scenario}");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("hidden/acme__calc-1/test.patch")).unwrap(),
        calc_patch
    );

    // A bad instance stops the import with its line and what is wrong.
    let bad = root.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        line(
            "x-1",
            "acme/missing",
            &calc_head,
            &calc_patch,
            serde_json::json!(["t"]),
        ),
    )
    .unwrap();
    let out = import(&bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 1: no checkout of acme/missing"),
        "{}",
        text(&out.stderr)
    );

    // The scripted model fixes `a - b` only (acme/calc), not `b - a` (acme/other): one
    // instance resolved, one not, decided by the test patch's test (in neither checkout).
    let model = GymModel::default();
    let base = serve_gym_model(model.clone()).await;
    let config = root.path().join("factory.toml");
    std::fs::write(&config, factory_toml_with(&base, false)).unwrap();
    let reports = root.path().join("reports");
    let args = [
        "--no-builtin",
        "--dir",
        out_dir.to_str().unwrap(),
        "--report",
        reports.to_str().unwrap(),
    ];
    let (out, said) = gym_with(&data, &config, &args).await;
    assert_eq!(out.status.code(), Some(0), "not critical: {said}");
    let report = report(&reports);
    let calc = checks(&report, "acme__calc-1");
    assert!(
        calc.iter().all(|(_, s, _)| s == "passed"),
        "{calc:#?}\n{said}"
    );
    let other = checks(&report, "acme__other-2");
    let f2p = other
        .iter()
        .find(|(n, _, _)| n == "FAIL_TO_PASS tests pass")
        .unwrap();
    assert_eq!(f2p.1, "failed", "{other:#?}");
    assert!(
        f2p.2.contains("FAIL") || f2p.2.contains("no work order"),
        "{f2p:?}"
    );
    assert!(said.contains("1 of 2 scenario(s) passed"), "{said}");
}
