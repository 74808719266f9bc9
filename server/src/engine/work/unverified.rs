//! A work order with no gate: found out before the model is called, committed only when the
//! project's policy or a person allowed it, and recorded as unverified on the commit (a
//! trailer), the delivery event and the pull request.

use super::Ctx;
use crate::delivery::worktree::Worktree;

/// What the reason of a work order stopped for want of a gate says (the blocked approval then
/// offers to commit it unverified).
pub const NO_GATE: &str = "has no gate to verify it";

/// Whether the work order may be committed without a gate, and why (`None`: it has gates).
/// `Err` when it has none and neither the project's policy nor a person allowed that: the
/// model is not called, and the person asked may allow it.
pub(super) async fn unverified(
    ctx: &Ctx<'_>,
    worktree: &Worktree,
) -> Result<Option<String>, String> {
    if !ctx.gates.is_empty() {
        return Ok(None);
    }
    let path = worktree.path.clone();
    let detected =
        tokio::task::spawn_blocking(move || crate::delivery::sandbox::detect_gates(&path))
            .await
            .unwrap_or_default();
    if !detected.is_empty() {
        return Ok(None);
    }
    if ctx.policy.allow_unverified {
        return Ok(Some("allowed by the project's policy".into()));
    }
    if ctx.run.unverified_allowed {
        return Ok(Some("allowed by a person".into()));
    }
    Err(format!(
        "{NO_GATE}: the project names no gate and none was detected (Cargo.toml, \
         package.json, pyproject.toml or a `test:` make target). Add one (`factory project add \
         --gate CMD`, or `gates` in .factory/project.toml), or commit it unverified (a person's \
         choice here, or `--allow-unverified` for the project)"
    ))
}

/// The commit trailer of a change no gate verified.
pub(super) fn verified_trailer(unverified: Option<&str>) -> String {
    unverified
        .map(|why| format!("Factory-Verified: no (no gate configured or detected; {why})\n"))
        .unwrap_or_default()
}

/// The pull request's note on a change no gate verified.
pub(super) fn unverified_note(unverified: Option<&str>) -> String {
    unverified
        .map(|why| {
            format!(
                "\n> **Unverified:** no gate ran on this change (none configured or detected; \
                 {why}).\n"
            )
        })
        .unwrap_or_default()
}
