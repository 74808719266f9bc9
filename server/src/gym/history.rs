//! Regressions: when a scenario that passed before fails now, what differs between the two
//! attempts — the settings they ran under (team catalogue, pipeline, models) and the outcome
//! of each check — written so a person sees at once what broke.

use app::gym::{CheckStatus, GymRecord};

/// How `after` differs from `before` (its last passing attempt), one line per difference;
/// the failing checks' details follow.
pub fn what_changed(before: &GymRecord, after: &GymRecord) -> String {
    let mut lines = vec![format!(
        "`{}` passed in gym run {} and fails in gym run {}:",
        after.scenario, before.gym_run_id, after.gym_run_id
    )];
    let short = |h: &str| h[..h.len().min(12)].to_string();
    let mut settings = 0;
    if before.catalogue_hash != after.catalogue_hash {
        settings += 1;
        lines.push(format!(
            "  team catalogue: {} → {} (a team's files changed)",
            short(&before.catalogue_hash),
            short(&after.catalogue_hash)
        ));
    }
    if before.pipeline != after.pipeline {
        settings += 1;
        lines.push(format!(
            "  pipeline: {} → {}",
            before.pipeline, after.pipeline
        ));
    }
    if before.models != after.models {
        settings += 1;
        lines.push(format!("  models: {} → {}", before.models, after.models));
    }
    if settings == 0 {
        lines.push("  settings: the same catalogue, pipeline and models".into());
    }
    if before.run_status != after.run_status {
        lines.push(format!(
            "  run: {} → {}{}",
            before.run_status,
            after.run_status,
            after
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    for check in &after.checks {
        let was = before
            .checks
            .iter()
            .find(|c| c.name == check.name)
            .map(|c| c.status);
        if was == Some(check.status) {
            continue;
        }
        let was = was.map_or("absent", CheckStatus::as_str);
        lines.push(format!(
            "  check `{}`: {was} → {}",
            check.name,
            check.status.as_str()
        ));
        if check.status == CheckStatus::Failed {
            for l in check.detail.lines().take(12) {
                lines.push(format!("      {l}"));
            }
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::gym::CheckOutcome;

    fn record(run: &str, hash: &str, status: CheckStatus, detail: &str) -> GymRecord {
        GymRecord {
            gym_run_id: run.into(),
            scenario: "fix".into(),
            attempt: 1,
            critical: true,
            passed: status == CheckStatus::Passed,
            catalogue_hash: hash.into(),
            pipeline: "default".into(),
            models: "factory/coder=lab:m".into(),
            offline: false,
            run_status: "succeeded".into(),
            reason: None,
            checks: vec![
                CheckOutcome {
                    name: "run succeeded".into(),
                    kind: "status".into(),
                    status: CheckStatus::Passed,
                    detail: String::new(),
                },
                CheckOutcome {
                    name: "tests pass".into(),
                    kind: "command".into(),
                    status,
                    detail: detail.into(),
                },
            ],
            run_ms: 1,
            overhead_ms: 1,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            model_calls: 1,
            human_decisions: 0,
            run_id: "r".into(),
            dir: "d".into(),
        }
    }

    #[test]
    fn a_regression_names_the_changed_settings_and_the_flipped_checks() {
        let before = record("g1", "aaaaaaaaaaaaaaaa", CheckStatus::Passed, "");
        let after = record(
            "g2",
            "bbbbbbbbbbbbbbbb",
            CheckStatus::Failed,
            "exit 101:\nassert failed",
        );
        let text = what_changed(&before, &after);
        assert!(
            text.contains("team catalogue: aaaaaaaaaaaa → bbbbbbbbbbbb"),
            "{text}"
        );
        assert!(
            text.contains("check `tests pass`: passed → failed"),
            "{text}"
        );
        assert!(text.contains("      assert failed"), "{text}");
        assert!(
            !text.contains("run succeeded`"),
            "unchanged checks are left out: {text}"
        );
        assert!(!text.contains("models:"), "{text}");
    }
}
