//! What follows a stage: the next stage, the plan approval (or the director policy's automatic
//! decision), the final review, and carrying out a decision on an approval.

use super::*;
use app::task::WorkOrderSpec;

/// What follows a COMPLETE stage: the plan approval after solution architecture (unless the
/// director policy approves it), the next stage, or what follows the last stage.
pub(super) fn after_stage(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
    index: u32,
    team: &Team,
    result: &TaskResult,
) -> Vec<EventData> {
    let next = |run: &RunState| -> Vec<EventData> {
        if (index as usize + 1) < pipeline.stages.len() {
            return after_stage_index(engine, run, pipeline, index);
        }
        // The stage completing now belongs in the review's list too.
        let mut done = run.clone();
        done.completed.push((
            index,
            pipeline.stages[index as usize].name.clone(),
            team.name().to_string(),
            result.clone(),
        ));
        after_stage_index(engine, &done, pipeline, index)
    };
    if team.name() != "solution-architecture" || result.work_orders.is_empty() {
        return next(run);
    }
    let orders = &result.work_orders;
    // Risk as the server measures it from what each work order touches; the model's own
    // risk and confidence can only make a plan look riskier, never safer.
    let root = run.project.as_deref().map(Path::new);
    let assessed: Vec<_> = orders
        .iter()
        .map(|w| (w, crate::engine::work::assess(w, root)))
        .collect();
    let plan = plan_text(&assessed);
    let auto = plan_auto_decision(engine, &assessed);
    let id = uuid::Uuid::now_v7().to_string();
    let mut events = vec![approval(
        run,
        &id,
        index,
        ApprovalKind::Plan,
        format!(
            "Approve the plan of {} work order{}?",
            orders.len(),
            if orders.len() == 1 { "" } else { "s" }
        ),
        plan,
        None,
        serde_json::json!({
            "measured_risk": assessed
                .iter()
                .map(|(w, a)| serde_json::json!({
                    "work_order": w.id,
                    "risk": a.risk,
                    "reasons": a.reasons,
                }))
                .collect::<Vec<_>>(),
        }),
    )];
    if let Some(policy) = auto {
        events.push(auto_decision(
            run,
            &id,
            ApprovalKind::Plan,
            "approve",
            policy,
        ));
        events.extend(next(run));
    }
    events
}

/// The plan as a person reads it: each work order with its measured and declared risk, its
/// confidence and why it measured as it did.
fn plan_text(assessed: &[(&WorkOrderSpec, crate::engine::work::Assessed)]) -> String {
    assessed
        .iter()
        .map(|(w, a)| {
            let why = if a.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", a.reasons.join("; "))
            };
            format!(
                "- {} {} (measured risk {:?}, declared {:?}, confidence {:.2}){why}",
                w.id, w.title, a.risk, w.risk, w.confidence
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why the plan is approved without a person, if it is: every work order measured low risk
/// with enough confidence (the director policy), or auto-approve is on.
fn plan_auto_decision(
    engine: &Engine,
    assessed: &[(&WorkOrderSpec, crate::engine::work::Assessed)],
) -> Option<String> {
    let policy = &engine.approvals;
    let safe = assessed
        .iter()
        .all(|(w, a)| a.risk == Risk::Low && w.confidence >= policy.plan_auto_min_confidence);
    if safe {
        Some(format!(
            "director policy: every work order measured low risk (at most a few files in scope, \
             none sensitive, CI or settings) with confidence ≥ {}",
            policy.plan_auto_min_confidence
        ))
    } else if policy.auto_approve {
        Some("auto-approve (factory run --auto-approve or [approvals] auto_approve)".into())
    } else {
        None
    }
}

/// What follows stage `index`: the next stage's start, or what follows the last stage.
pub(super) fn after_stage_index(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
    index: u32,
) -> Vec<EventData> {
    if (index as usize + 1) < pipeline.stages.len() {
        return vec![stage_started(run, pipeline, index + 1)];
    }
    let mut done = run.clone();
    done.next_index = index + 1;
    after_last_stage(engine, &done, pipeline)
}

/// After the last stage: the final review (decided automatically when configured), or success.
pub(super) fn after_last_stage(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
) -> Vec<EventData> {
    let policy = &engine.approvals;
    let succeeded = EventData::RunFinished {
        run_id: run.run_id.clone(),
        status: RunStatus::Succeeded,
        reason: format!(
            "all {} stages of `{}` complete{}",
            pipeline.stages.len(),
            pipeline.name,
            if run.revision > 0 {
                format!(" (revision {})", run.revision)
            } else {
                String::new()
            }
        ),
    };
    if !policy.final_review {
        return vec![succeeded];
    }
    let id = uuid::Uuid::now_v7().to_string();
    let artifacts = run
        .completed
        .iter()
        .flat_map(|(_, stage, _, r)| {
            r.artifacts
                .iter()
                .map(move |a| format!("- {stage}: {}", a.name))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let index = pipeline.stages.len().saturating_sub(1) as u32;
    let mut events = vec![approval(
        run,
        &id,
        index,
        ApprovalKind::Review,
        "Review the run's artifacts: approve, or revise with feedback?".into(),
        artifacts,
        None,
        serde_json::Value::Null,
    )];
    if policy.auto_approve {
        events.push(auto_decision(
            run,
            &id,
            ApprovalKind::Review,
            "approve",
            "auto-approve (factory run --auto-approve or [approvals] auto_approve)".into(),
        ));
        events.push(succeeded);
    }
    events
}

#[expect(
    clippy::too_many_arguments,
    reason = "the fields of an approval request, each distinct"
)]
pub(super) fn approval(
    run: &RunState,
    id: &str,
    index: u32,
    kind: ApprovalKind,
    question: String,
    context: String,
    escalation: Option<EscalationInfo>,
    detail: serde_json::Value,
) -> EventData {
    EventData::ApprovalRequested {
        approval_id: id.to_string(),
        run_id: run.run_id.clone(),
        index,
        kind,
        question,
        context,
        options: kind.options(),
        deadline: None,
        escalation,
        detail,
    }
}

pub(super) fn auto_decision(
    run: &RunState,
    id: &str,
    kind: ApprovalKind,
    option: &str,
    policy: String,
) -> EventData {
    EventData::ApprovalDecided {
        approval_id: id.to_string(),
        run_id: run.run_id.clone(),
        kind,
        option: option.into(),
        text: None,
        decided_by: "policy".into(),
        automatic: true,
        policy: Some(policy),
    }
}

pub(super) fn blocked_approval(
    run: &RunState,
    index: u32,
    stage: &Stage,
    team: &Team,
    question: String,
    context: String,
    error_type: ErrorType,
) -> EventData {
    let id = uuid::Uuid::now_v7().to_string();
    let unverified = question.contains(super::super::work::NO_GATE);
    let mut event = approval(
        run,
        &id,
        index,
        ApprovalKind::Blocked,
        question.clone(),
        context,
        Some(EscalationInfo {
            severity: Severity::High,
            error_type,
            message: question,
        }),
        serde_json::json!({"stage": stage.name, "team": team.name()}),
    );
    // A work order with no gate: a person may let it be committed unverified.
    if unverified && let EventData::ApprovalRequested { options, .. } = &mut event {
        options.insert(
            0,
            app::approval::ApprovalOption {
                id: "commit_unverified".into(),
                label: "Commit without a gate (recorded as unverified)".into(),
                needs_text: false,
            },
        );
    }
    event
}

pub(super) fn budget_approval(
    run: &RunState,
    index: u32,
    stage: &Stage,
    team: &Team,
    error: &BudgetError,
) -> EventData {
    let id = uuid::Uuid::now_v7().to_string();
    let (scope, limit, amount, severity) = match error {
        BudgetError::Hard {
            scope,
            limit,
            spent,
            reserved,
            amount,
        } => (
            scope.clone(),
            *limit,
            spent + reserved + amount - limit,
            Severity::High,
        ),
        BudgetError::Emergency { scope, limit } => (scope.clone(), *limit, 0.0, Severity::Critical),
    };
    approval(
        run,
        &id,
        index,
        ApprovalKind::Budget,
        format!(
            "Stage `{}` ({}) was stopped by a budget: {error}",
            stage.name,
            team.name()
        ),
        error.to_string(),
        Some(EscalationInfo {
            severity,
            error_type: ErrorType::Budget,
            message: error.to_string(),
        }),
        serde_json::json!({"scope": scope, "limit": limit, "shortfall": amount.max(0.0)}),
    )
}

/// The events that carry out a person's (or a policy's) decision.
pub(super) fn apply_decision(
    engine: &Engine,
    run: &RunState,
    pipeline: &Pipeline,
    awaiting: &crate::engine::state::Awaiting,
    option: &str,
    text: Option<&str>,
) -> Vec<EventData> {
    let index = awaiting.index;
    let failed = |reason: String| {
        vec![EventData::RunFinished {
            run_id: run.run_id.clone(),
            status: RunStatus::Failed,
            reason,
        }]
    };
    let stage_name = pipeline
        .stages
        .get(index as usize)
        .map_or("?", |s| s.name.as_str());
    match (awaiting.kind, option) {
        (ApprovalKind::Clarification, _) => answered_by_a_person(run, pipeline, awaiting, text),
        (ApprovalKind::Blocked, "skip") => {
            let mut events = vec![EventData::StageSkipped {
                run_id: run.run_id.clone(),
                index,
                stage: stage_name.to_string(),
                reason: "skipped by a person".into(),
            }];
            events.extend(after_stage_index(engine, run, pipeline, index));
            events
        }
        (ApprovalKind::Blocked, "fail") => failed(format!(
            "stage `{stage_name}` was blocked and a person failed the run"
        )),
        (ApprovalKind::Blocked, _) => vec![stage_started(run, pipeline, index)],
        (ApprovalKind::Plan, "approve") => after_stage_index(engine, run, pipeline, index),
        (ApprovalKind::Plan, "revise") => vec![stage_started(run, pipeline, index)],
        (ApprovalKind::Plan, _) => failed("a person rejected the plan".into()),
        (ApprovalKind::Budget, "stop") => failed(format!(
            "stage `{stage_name}` stopped at a budget limit by a person"
        )),
        (ApprovalKind::Budget, option) => raised(run, pipeline, awaiting, option, text),
        (ApprovalKind::Review, "approve") => vec![EventData::RunFinished {
            run_id: run.run_id.clone(),
            status: RunStatus::Succeeded,
            reason: format!(
                "all {} stages of `{}` complete and approved in review",
                pipeline.stages.len(),
                pipeline.name
            ),
        }],
        (ApprovalKind::Review, _) => {
            let revision = run.revision + 1;
            let mut revised = run.clone();
            revised.next_index = 0;
            vec![
                EventData::RunRevised {
                    run_id: run.run_id.clone(),
                    revision,
                    feedback: text.unwrap_or_default().to_string(),
                },
                stage_started(&revised, pipeline, 0),
            ]
        }
    }
}

/// A person's answer to a question no team could settle, and the stage started again.
fn answered_by_a_person(
    run: &RunState,
    pipeline: &Pipeline,
    awaiting: &crate::engine::state::Awaiting,
    text: Option<&str>,
) -> Vec<EventData> {
    let mut events = Vec::new();
    if let Some(id) = awaiting.detail["clarification_id"].as_str() {
        events.push(EventData::ClarificationAnswered {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index: awaiting.index,
            question: awaiting.question.clone(),
            answer: text.unwrap_or_default().to_string(),
            answered_by: "a person".into(),
        });
    }
    events.push(stage_started(run, pipeline, awaiting.index));
    events
}

/// A budget raised by a person (`raise_once`: just past the shortfall; otherwise the amount
/// they typed, or double the limit plus the shortfall), and the stage started again.
fn raised(
    run: &RunState,
    pipeline: &Pipeline,
    awaiting: &crate::engine::state::Awaiting,
    option: &str,
    text: Option<&str>,
) -> Vec<EventData> {
    let mut events = Vec::new();
    if let Ok(scope) = serde_json::from_value::<BudgetScope>(awaiting.detail["scope"].clone()) {
        let limit = awaiting.detail["limit"].as_f64().unwrap_or(0.0);
        let shortfall = awaiting.detail["shortfall"].as_f64().unwrap_or(0.0);
        let hard = if option == "raise_once" {
            // A millionth of a dollar over, so rounding cannot refuse the same call.
            limit + shortfall + 1e-6
        } else {
            text.and_then(|t| t.trim().trim_start_matches('$').parse::<f64>().ok())
                .filter(|v| *v > limit)
                .unwrap_or(limit * 2.0 + shortfall)
        };
        events.push(EventData::BudgetRaised {
            run_id: Some(run.run_id.clone()),
            budget: scope,
            hard_usd: hard,
        });
    }
    events.push(stage_started(run, pipeline, awaiting.index));
    events
}
