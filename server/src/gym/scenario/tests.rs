//! Scenario files: defaults, every refusal with its message, the built-in ones.

use super::*;

const GOOD: &str = r#"
requirement = "Add a function."
fixture = "rust-crate"
critical = true

[decisions]
clarification = "Use metres."
budget = "stop"

[[checks]]
kind = "artifact"
artifact = "*.md"
regex = "(?i)function"

[[checks]]
kind = "signature"
path = "src/lib.rs"
query = "(function_item name: (identifier) @name (#eq? @name \"add\"))"
offline = false
"#;

#[test]
fn a_scenario_reads_with_its_defaults() {
    let s = parse(GOOD, "add-fn", "test").unwrap();
    assert_eq!(s.name, "add-fn");
    assert!(s.critical);
    assert_eq!(s.limits.wall_secs, 600);
    assert_eq!(
        s.decisions.for_kind(ApprovalKind::Plan),
        Some(("approve".into(), None))
    );
    assert_eq!(
        s.decisions.for_kind(ApprovalKind::Clarification),
        Some(("answer".into(), Some("Use metres.".into())))
    );
    assert_eq!(s.decisions.for_kind(ApprovalKind::Blocked), None);
    assert!(!s.checks[1].offline);
}

#[test]
fn bad_scenarios_say_what_is_wrong_and_what_is_accepted() {
    let cases = [
        (
            GOOD.replace("kind = \"artifact\"", "kind = \"artefact\""),
            "artefact",
        ),
        (GOOD.replace("(?i)function", "(unclosed"), "regex"),
        (GOOD.replace("#eq? @name", "#eq? @nope"), "query"),
        (GOOD.replace("src/lib.rs", "../lib.rs"), "no `..`"),
        (
            GOOD.replace("budget = \"stop\"", "budget = \"spend\""),
            "raise_once",
        ),
        (
            GOOD.replace("budget = \"stop\"", "plan = \"revise\""),
            "needs words",
        ),
        (
            GOOD.replace("fixture = \"rust-crate\"", "fixture = \"../etc\""),
            "fixture",
        ),
        (
            format!("factory_toml = \"[aliases]\"\n{GOOD}"),
            "may not set",
        ),
        (
            GOOD.replace("fixture = \"rust-crate\"", ""),
            "either `fixture`",
        ),
        (
            format!(
                "{}\n[repository]\npath = \"/r\"\ncommit = \"abc\"\n",
                GOOD.replace("fixture = \"rust-crate\"", "")
            ),
            "40-character",
        ),
        (
            GOOD.replace("critical = true", "critical = true\nsurprise = 1"),
            "surprise",
        ),
    ];
    for (text, says) in cases {
        let err = parse(&text, "x", "test.toml").unwrap_err().to_string();
        assert!(err.contains(says), "{says}: {err}");
        assert!(err.contains("test.toml"), "{err}");
    }
}

#[test]
fn the_built_in_scenarios_read() {
    let all = builtin().unwrap();
    assert!(all.len() >= 6, "{}", all.len());
    for s in &all {
        let fixture = s.fixture.as_deref().unwrap_or_default();
        assert!(
            super::super::BUILTIN
                .get_dir(format!("fixtures/{fixture}"))
                .is_some(),
            "{}: fixture {fixture} is missing",
            s.name,
        );
    }
}
