//! Every check kind, passing and failing, on a real repository (a base commit and a delivered
//! one), artifact files, and bubblewrap for commands.

use std::path::Path;

use super::*;
use crate::gym::scenario::parse;

/// A repository with `src/lib.rs` at the base and `src/lib.rs` changed plus `NEW.md` in the
/// delivered commit; returns (base, delivered).
fn repo(dir: &Path) -> (String, String) {
    let git = git2::Repository::init(dir).unwrap();
    let sig = git2::Signature::now("T", "t@example.com").unwrap();
    let commit = |files: &[(&str, &str)], parents: &[&git2::Commit<'_>]| {
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut index = git.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        git.commit(Some("HEAD"), &sig, &sig, "c", &tree, parents)
            .unwrap()
    };
    let base = commit(&[("src/lib.rs", "pub fn add(a: u32) -> u32 { a }\n")], &[]);
    let parent = git.find_commit(base).unwrap();
    let delivered = commit(
        &[
            (
                "src/lib.rs",
                "pub fn add(a: u32, b: u32) -> u32 { a + b }\n",
            ),
            ("NEW.md", "new\n"),
        ],
        &[&parent],
    );
    (base.to_string(), delivered.to_string())
}

fn scenario_with(checks: &str) -> Vec<Check> {
    let text = format!("requirement = \"r\"\nfixture = \"f\"\n{checks}");
    parse(&text, "t", "test").unwrap().checks
}

#[tokio::test]
async fn each_check_kind_passes_and_fails() {
    if !crate::delivery::sandbox::tests::bwrap_here().await {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo_dir = work.path().join("repo");
    let (base, delivered) = repo(&repo_dir);
    let hidden = work.path().join("hidden");
    std::fs::create_dir_all(hidden.join("t")).unwrap();
    std::fs::write(hidden.join("t/check.sh"), "grep -q 'a + b' src/lib.rs\n").unwrap();
    let artifact = work.path().join("requirements.md");
    std::fs::write(&artifact, "# Requirements\n\nThe unit is nautical miles.\n").unwrap();
    std::fs::write(work.path().join("marker"), "").unwrap();
    let seen = Observed {
        work: work.path(),
        repo: &repo_dir,
        hidden: &hidden,
        base: &base,
        result: Ok(delivered),
        status: "succeeded",
        artifacts: vec![("requirements.md".into(), artifact)],
        approvals: vec!["plan".into(), "review".into()],
        offline: false,
        cost_usd: 0.01,
        model_calls: 4,
        decisions: 2,
        stopped: None,
        run_ms: 10,
    };
    let bwrap = crate::delivery::sandbox::Bubblewrap::default();
    let runner = CommandRunner {
        sandbox: Ok(&bwrap),
        limits: GateLimits::default(),
    };
    // Each pair: a check that must pass, then its twin that must fail.
    let pairs = [
        (
            "kind = \"artifact\"\nartifact = \"req*.md\"\nregex = \"nautical miles\"",
            "kind = \"artifact\"\nartifact = \"req*.md\"\nregex = \"kilometres\"",
        ),
        (
            "kind = \"file\"\npath = \"NEW.md\"",
            "kind = \"file\"\npath = \"NEW.md\"\nexists = false",
        ),
        (
            "kind = \"signature\"\npath = \"src/lib.rs\"\nquery = \"(function_item name: (identifier) @n (#eq? @n \\\"add\\\") parameters: (parameters (parameter) (parameter)))\"",
            "kind = \"signature\"\npath = \"src/lib.rs\"\nquery = \"(function_item name: (identifier) @n (#eq? @n \\\"sub\\\"))\"",
        ),
        (
            "kind = \"command\"\nrun = \"sh t/check.sh\"\nhidden = [\"t/check.sh\"]",
            "kind = \"command\"\nrun = \"grep -q 'a - b' src/lib.rs\"",
        ),
        (
            "kind = \"status\"\nstatus = \"succeeded\"",
            "kind = \"status\"\nstatus = \"failed\"",
        ),
        (
            "kind = \"approval\"\napproval = \"plan\"",
            "kind = \"approval\"\napproval = \"budget\"",
        ),
        (
            "kind = \"host_file\"\npath = \"{work}/marker\"\nexists = true",
            "kind = \"host_file\"\npath = \"{work}/escaped\"\nexists = true",
        ),
    ];
    let limits = crate::gym::scenario::Limits::default();
    for (pass, fail) in pairs {
        let text = format!("[[checks]]\n{pass}\n[[checks]]\n{fail}\n");
        let checks = scenario_with(&text);
        let out = evaluate(&checks, &limits, &seen, &runner).await;
        assert_eq!(out[0].status, CheckStatus::Passed, "{pass}: {:?}", out[0]);
        assert_eq!(out[1].status, CheckStatus::Failed, "{fail}: {:?}", out[1]);
        assert!(!out[1].detail.is_empty(), "a failure says why: {fail}");
    }
    // Limits are checks too.
    let strict = crate::gym::scenario::Limits {
        cost_usd: Some(0.001),
        model_calls: Some(10),
        human_decisions: Some(1),
        ..Default::default()
    };
    let out = evaluate(&[], &strict, &seen, &runner).await;
    let status: Vec<(&str, CheckStatus)> =
        out.iter().map(|c| (c.name.as_str(), c.status)).collect();
    assert_eq!(
        status,
        [
            ("wall time ≤ 600 s", CheckStatus::Passed),
            ("cost ≤ $0.001", CheckStatus::Failed),
            ("model calls ≤ 10", CheckStatus::Passed),
            ("human decisions ≤ 1", CheckStatus::Failed),
        ]
    );
    // A check that needs a model is skipped, and says so, when only templates answered.
    let offline = Observed {
        offline: true,
        ..seen
    };
    let checks = scenario_with("[[checks]]\nkind = \"file\"\npath = \"gone\"\noffline = false\n");
    let out = evaluate(&checks, &limits, &offline, &runner).await;
    assert_eq!(out[0].status, CheckStatus::Skipped);
    assert!(out[0].detail.contains("offline templates"), "{:?}", out[0]);
}

#[test]
fn a_query_counts_its_matches() {
    let src = b"pub fn add(a: i32, b: i32) -> i32 { a + b }\nfn sub() {}\n";
    let q = "(function_item name: (identifier) @n (#eq? @n \"add\"))";
    assert_eq!(query_matches("src/lib.rs", q, src).unwrap(), 1);
    let q = "(function_item name: (identifier) @n (#eq? @n \"mul\"))";
    assert_eq!(query_matches("src/lib.rs", q, src).unwrap(), 0);
    let py = b"def greet(name):\n    return name\n";
    let q = "(function_definition name: (identifier) @n (#eq? @n \"greet\") \
             parameters: (parameters (identifier) @p))";
    assert_eq!(query_matches("pkg/m.py", q, py).unwrap(), 1);
}
