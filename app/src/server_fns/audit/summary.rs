//! One short line per event, computed on the server for the audit table's rows
//! ([`audit_row`]) and the run page's activity feed ([`event_summary`]), so both describe an
//! event alike.

use super::{AuditRow, HASH_PREFIX};
use crate::events::{Event, EventData};

/// Characters of free text (goals, questions, errors) kept in a summary.
const TEXT_CHARS: usize = 90;

/// `text` on one line, cut to `max` characters with an ellipsis.
fn clip(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max).collect();
    out.push('…');
    out
}

/// The first [`HASH_PREFIX`] characters of a hash.
pub fn hash_prefix(hash: &str) -> String {
    hash.chars().take(HASH_PREFIX).collect()
}

/// The first eight characters of a commit id.
fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

/// One line saying what the event records, without its payload.
pub fn event_summary(data: &EventData) -> String {
    let t = |s: &str| clip(s, TEXT_CHARS);
    match data {
        EventData::RunCreated { goal, .. } => format!("run created: {}", t(goal)),
        EventData::RunStarted {
            pipeline, stages, ..
        } => format!("pipeline {pipeline} started, {} stages", stages.len()),
        EventData::WorkOrderDelivered {
            work_order_id,
            branch,
            files,
            ..
        } => format!(
            "{work_order_id} delivered on {branch} ({} files)",
            files.len()
        ),
        EventData::WorkOrderPublished {
            work_order_id,
            branch,
            error,
            ..
        } => match error {
            Some(e) => format!("{work_order_id}: publishing {branch} failed: {}", t(e)),
            None => format!("{work_order_id}: {branch} published after review"),
        },
        EventData::BranchPushed {
            work_order_id,
            branch,
            commit,
            replaced,
            ..
        } => match replaced {
            Some(old) => format!(
                "{work_order_id}: {branch} pushed at {}, replacing {}",
                short(commit),
                short(old)
            ),
            None => format!("{work_order_id}: {branch} pushed at {}", short(commit)),
        },
        EventData::DependenciesPrepared {
            tool,
            key,
            cached: true,
            ..
        } => format!("{tool} dependencies for lock {key} already prepared"),
        EventData::DependenciesPrepared {
            tool,
            command,
            exit_code,
            duration_ms,
            ..
        } => {
            let end = match exit_code {
                Some(code) => format!("exit {code}"),
                None => "did not run".to_string(),
            };
            format!(
                "prepare ({tool}) `{}`: {end} in {duration_ms} ms",
                t(command)
            )
        }
        EventData::PullRequestOpened {
            work_order_id,
            url,
            base,
            updated,
            ..
        } => {
            let what = if *updated { "updated" } else { "opened" };
            format!("{work_order_id}: pull request {what} into {base}: {url}")
        }
        EventData::CommandRun {
            team,
            command,
            exit_code,
            timed_out,
            duration_ms,
            ..
        } => {
            let end = match (timed_out, exit_code) {
                (true, _) => "timed out".to_string(),
                (false, Some(code)) => format!("exit {code}"),
                (false, None) => "killed".to_string(),
            };
            format!("{team} ran `{}`: {end} in {duration_ms} ms", t(command))
        }
        EventData::StageStarted {
            index, stage, team, ..
        } => format!("stage {index} {stage} started ({team})"),
        EventData::StageAttemptFailed {
            stage,
            attempt,
            error,
            ..
        } => format!("{stage} attempt {attempt} failed: {}", t(error)),
        EventData::StageCompleted {
            stage,
            team,
            status,
            result,
            cost_usd,
            ..
        } => format!(
            "{stage} ({team}) {}: {} artifacts, ${cost_usd:.4}",
            status.as_str(),
            result.artifacts.len()
        ),
        EventData::RunFinished { status, reason, .. } => {
            format!("run {}: {}", status.as_str(), t(reason))
        }
        EventData::ApprovalRequested { kind, question, .. } => {
            format!("{} approval asked: {}", kind.as_str(), t(question))
        }
        EventData::ApprovalDecided {
            kind,
            option,
            decided_by,
            ..
        } => format!("{} approval: {option} by {decided_by}", kind.as_str()),
        EventData::ClarificationRequested {
            asking_team,
            target_team,
            question,
            ..
        } => format!("{asking_team} asks {target_team}: {}", t(question)),
        EventData::ClarificationAnswered { answered_by, .. } => {
            format!("clarification answered by {answered_by}")
        }
        EventData::ClarificationRefused { reason, .. } => {
            format!("clarification refused: {}", t(reason))
        }
        EventData::BudgetRaised {
            budget, hard_usd, ..
        } => format!("hard limit of {budget} raised to ${hard_usd:.2}"),
        EventData::StageSkipped { stage, reason, .. } => {
            format!("{stage} skipped: {}", t(reason))
        }
        EventData::RunRevised {
            revision, feedback, ..
        } => format!("revision {revision}: {}", t(feedback)),
        EventData::ProjectAdded { project } => {
            format!("project {} added ({})", project.name, project.path)
        }
        EventData::MemoryRetained { kind, bank, .. } => format!("{kind} retained in {bank}"),
        EventData::AdminTokenCreated { token_id, label } => {
            format!("admin token {token_id} created ({})", t(label))
        }
        EventData::SessionStarted { token_id } => format!("session opened with {token_id}"),
        EventData::TokenScoped {
            token_id,
            scope,
            projects,
        } if projects.is_empty() => format!("token {token_id} may act as {scope}"),
        EventData::TokenScoped {
            token_id,
            scope,
            projects,
        } => format!(
            "token {token_id} may act as {scope} on {}",
            t(&projects.join(", "))
        ),
        EventData::TokenRevoked { token_id, reason } => {
            format!("token {token_id} revoked: {}", t(reason))
        }
        EventData::ModelCallStarted {
            target,
            reserved_usd,
            ..
        } => format!("call to {target} started (${reserved_usd:.4} reserved)"),
        EventData::ModelCallFinished {
            provider,
            model,
            input_tokens,
            output_tokens,
            cost_usd,
            latency_ms,
            ..
        } => format!(
            "{provider}:{model} answered: {input_tokens} in / {output_tokens} out, \
             ${cost_usd:.4}, {latency_ms} ms"
        ),
        EventData::ModelCallFailed { target, error, .. } => {
            format!("call to {target} failed: {}", t(error))
        }
        EventData::RoutingDecided { decision, .. } => format!(
            "routed to {} (complexity {:.2})",
            decision.alias, decision.complexity
        ),
        EventData::SettingsChanged {
            section,
            changed_by,
            ..
        } => format!("{section} settings changed by {changed_by}"),
        EventData::GymScenarioFinished { record } => format!(
            "gym scenario `{}` attempt {} {}",
            record.scenario,
            record.attempt,
            if record.passed { "passed" } else { "failed" }
        ),
        EventData::BudgetReached {
            budget,
            tier,
            spent_usd,
            limit_usd,
        } => format!(
            "{} budget of {budget} reached: ${spent_usd:.2} of ${limit_usd:.2}",
            tier.as_str()
        ),
        EventData::WebhookDelivered {
            webhook,
            event_seq,
            event_kind,
            attempts,
            status,
            ..
        } => format!(
            "webhook {webhook} took #{event_seq} {event_kind} ({status}, attempt {attempts})"
        ),
        EventData::WebhookFailed {
            webhook,
            event_seq,
            event_kind,
            attempts,
            error,
            ..
        } => format!(
            "webhook {webhook} did not take #{event_seq} {event_kind} after {attempts} \
             attempt(s): {}",
            t(error)
        ),
        EventData::WebhookDropped {
            webhook,
            reason,
            count,
            ..
        } => format!(
            "webhook {webhook}: {count} event(s) dropped ({})",
            reason.as_str()
        ),
    }
}

/// The audit row of an event; `prev_hash` is the previous event's hash (or its prefix) when
/// known, empty otherwise.
pub fn audit_row(event: &Event, prev_hash: &str) -> AuditRow {
    AuditRow {
        seq: event.seq,
        ts: event.ts.clone(),
        actor: event.actor.clone(),
        kind: event.data.kind().to_string(),
        run_id: event.run_id.clone(),
        summary: event_summary(&event.data),
        hash: hash_prefix(&event.hash),
        prev_hash: hash_prefix(prev_hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, goal: &str) -> Event {
        Event {
            seq,
            run_id: Some("r1".into()),
            ts: "2026-11-22T05:00:00.000Z".into(),
            actor: "api".into(),
            data: EventData::RunCreated {
                run_id: "r1".into(),
                request_id: None,
                goal: goal.into(),
                project: None,
                pipeline: None,
            },
            hash: format!("{seq:0>64}"),
        }
    }

    #[test]
    fn summaries_are_one_short_line() {
        let long = format!("export\norders {}", "x".repeat(500));
        let row = audit_row(&event(3, &long), "abcdef0123456789abcdef");
        assert!(row.summary.starts_with("run created: export orders x"));
        assert!(row.summary.ends_with('…'));
        assert!(row.summary.chars().count() < 120, "{}", row.summary);
        assert_eq!(row.hash.len(), HASH_PREFIX);
        assert_eq!(row.prev_hash, "abcdef012345");
        assert_eq!(row.kind, "run_created");
    }
}
