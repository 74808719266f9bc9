//! What a work order asks of engineering (its objective anchor), and how risky a plan is as
//! the server measures it from the files it touches — not as the model says it is.

use std::path::Path;

use app::ledger::Risk;
use app::task::WorkOrderSpec;

use super::super::state::RunState;
use crate::delivery::edits::protected;

/// The work order's anchor: the requirement, the work order, the files in scope as `shown`
/// (their text, see `shown`), the criteria and how to work and answer.
pub(super) fn anchor(run: &RunState, wo: &WorkOrderSpec, shown: &str) -> String {
    let criteria = wo
        .acceptance_criteria
        .iter()
        .map(|c| format!("- {c}"))
        .collect::<Vec<_>>()
        .join("\n");
    let files = if wo.files_in_scope.is_empty() {
        "(not given: keep the change small and local)".to_string()
    } else {
        wo.files_in_scope.join(", ")
    };
    format!(
        "# Requirement\n\n{}\n\n# Your work order `{}`: {}\n\n{}\n\nRisk: {:?}. Files in scope: \
         {files}{shown}\n\n# Acceptance criteria\n\n{criteria}\n\n# How to work\n\nYou work in \
         the repository's working tree. Where you have the `run` tool, use it to look around, \
         change files and run the tests, one shell command per call; the working tree's change \
         is your change. Where you do not, put the change in `edits`.\n\n# How to answer\n\n\
         When the change is made, reply with one TaskResult JSON object: `status` COMPLETE, a \
         short artifact describing the change and, optionally, `edits` applied on top of the \
         working tree (write {{path, content}}, replace {{path, search, replace}} with an exact \
         search text, delete {{path}}; paths relative to the repository root). The project's \
         gates then run; if one fails you see its output and continue.",
        run.goal.trim(),
        wo.id,
        wo.title,
        wo.description,
        wo.risk
    )
}

/// Files in scope above which a work order is at least medium risk.
const LOW_RISK_MAX_FILES: usize = 3;
/// Files in scope above which a work order is high risk.
const HIGH_RISK_MIN_FILES: usize = 10;
/// An existing file larger than this makes a work order at least medium risk.
const LOW_RISK_MAX_FILE_BYTES: u64 = 64 * 1024;

/// Path fragments that mark code whose mistakes are expensive: secrets, authentication,
/// payments, schema migrations, dependency manifests and build scripts.
const SENSITIVE: &[&str] = &[
    ".env",
    "secret",
    "credential",
    "password",
    "auth",
    "token",
    "crypto",
    "payment",
    "billing",
    "migration",
    "dockerfile",
    "cargo.toml",
    "cargo.lock",
    "build.rs",
    "package.json",
    "package-lock.json",
    "pyproject.toml",
    "setup.py",
    "requirements",
    "go.mod",
    "makefile",
];

/// A work order's risk as the server sees it, with the reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    pub risk: Risk,
    pub reasons: Vec<String>,
}

/// Measures a work order's risk from its files in scope against the repository at `root`:
/// high for CI or Factory files, sensitive paths or many files; medium for an unknown scope,
/// several files or a large file; low otherwise. Never lower than what the model declared.
pub fn assess(wo: &WorkOrderSpec, root: Option<&Path>) -> Assessed {
    let mut risk = wo.risk;
    let mut reasons = Vec::new();
    let mut raise = |to: Risk, why: String, risk: &mut Risk| {
        if to.score() > risk.score() {
            *risk = to;
        }
        reasons.push(why);
    };
    let files = &wo.files_in_scope;
    if files.is_empty() {
        raise(
            Risk::Medium,
            "no files in scope: the change is not bounded".into(),
            &mut risk,
        );
    }
    if files.len() > HIGH_RISK_MIN_FILES {
        raise(
            Risk::High,
            format!("{} files in scope", files.len()),
            &mut risk,
        );
    } else if files.len() > LOW_RISK_MAX_FILES {
        raise(
            Risk::Medium,
            format!("{} files in scope", files.len()),
            &mut risk,
        );
    }
    for file in files {
        let lower = file.to_ascii_lowercase();
        if let Some(what) = protected(file) {
            raise(Risk::High, format!("`{file}` is {what}"), &mut risk);
        } else if let Some(word) = SENSITIVE.iter().find(|w| lower.contains(*w)) {
            raise(
                Risk::High,
                format!("`{file}` is sensitive ({word})"),
                &mut risk,
            );
        }
        let size = root
            .and_then(|r| std::fs::symlink_metadata(r.join(file)).ok())
            .map(|m| m.len());
        if let Some(size) = size.filter(|s| *s > LOW_RISK_MAX_FILE_BYTES) {
            raise(
                Risk::Medium,
                format!("`{file}` is {} KiB", size / 1024),
                &mut risk,
            );
        }
    }
    Assessed { risk, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wo(risk: Risk, files: &[&str]) -> WorkOrderSpec {
        WorkOrderSpec {
            id: "wo-1".into(),
            title: "t".into(),
            description: String::new(),
            risk,
            files_in_scope: files.iter().map(|f| f.to_string()).collect(),
            acceptance_criteria: vec![],
            dependencies: vec![],
            confidence: 1.0,
        }
    }

    #[test]
    fn the_server_measures_risk_whatever_the_model_claims() {
        assert_eq!(
            assess(&wo(Risk::Low, &["src/report.rs"]), None).risk,
            Risk::Low
        );
        for files in [
            &[".github/workflows/ci.yml"][..],
            &["src/auth/session.rs"][..],
            &["Cargo.toml"][..],
            &[".factory/project.toml"][..],
            &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"][..],
        ] {
            let a = assess(&wo(Risk::Low, files), None);
            assert_eq!(a.risk, Risk::High, "{files:?}: {:?}", a.reasons);
            assert!(!a.reasons.is_empty());
        }
        assert_eq!(assess(&wo(Risk::Low, &[]), None).risk, Risk::Medium);
        assert_eq!(
            assess(&wo(Risk::Low, &["a.rs", "b.rs", "c.rs", "d.rs"]), None).risk,
            Risk::Medium
        );
        // Never lower than declared.
        assert_eq!(
            assess(&wo(Risk::High, &["src/report.rs"]), None).risk,
            Risk::High
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.rs"), vec![b'x'; 100_000]).unwrap();
        assert_eq!(
            assess(&wo(Risk::Low, &["big.rs"]), Some(dir.path())).risk,
            Risk::Medium
        );
    }
}
