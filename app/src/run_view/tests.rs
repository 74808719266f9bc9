use super::*;
use crate::events::PlannedStage;
use crate::ledger::Attribution;
use crate::task::{Artifact, Clarification};

fn ev(seq: i64, data: EventData) -> Event {
    Event {
        seq,
        run_id: data.run_id().map(str::to_string),
        ts: format!("2026-12-02T04:00:{:02}.000Z", seq % 60),
        actor: "engine".into(),
        data,
        hash: String::new(),
    }
}

fn result(status: TaskStatus, ask: Option<(&str, &str)>) -> TaskResult {
    TaskResult {
        status,
        reasoning: "because".into(),
        blockers: if status == TaskStatus::Blocked {
            vec!["no data".into()]
        } else {
            vec![]
        },
        assumptions_made: vec![],
        verified_facts: vec!["fact".into()],
        clarification_needed: ask.map(|(t, q)| Clarification {
            target_team: t.into(),
            question: q.into(),
        }),
        artifacts: vec![Artifact {
            name: "brief.md".into(),
            content: "# Brief\nsecret contents".into(),
        }],
        edits: vec![],
        work_orders: vec![],
    }
}

fn call(seq: i64, call_id: &str, team: &str, index: u32, cost: f64) -> Event {
    ev(
        seq,
        EventData::ModelCallFinished {
            call_id: call_id.into(),
            attribution: Attribution {
                run_id: Some("r1".into()),
                team: Some(team.into()),
                objective_id: Some(format!("r1/{index}")),
                ..Attribution::default()
            },
            target: "factory/fast".into(),
            provider: "script".into(),
            model: "gpt-4o-mini".into(),
            input_tokens: 100,
            output_tokens: 50,
            cached_tokens: 0,
            offline: false,
            cost_usd: cost,
            latency_ms: 3,
            upstream_us: 0,
            path: vec![],
        },
    )
}

/// A run whose first stage asks a question no team can answer, a person answers it, and the
/// stage completes.
fn clarified_run() -> Vec<Event> {
    use crate::approval::ApprovalKind;
    vec![
        ev(
            1,
            EventData::RunCreated {
                run_id: "r1".into(),
                request_id: None,
                goal: "Export orders as CSV".into(),
                project: None,
                pipeline: None,
            },
        ),
        ev(
            2,
            EventData::RunStarted {
                run_id: "r1".into(),
                pipeline: "default".into(),
                stages: vec![
                    PlannedStage {
                        name: "requirements".into(),
                        team: "business-analysis".into(),
                    },
                    PlannedStage {
                        name: "design".into(),
                        team: "solution-architecture".into(),
                    },
                ],
                base_commit: None,
            },
        ),
        ev(
            3,
            EventData::StageStarted {
                run_id: "r1".into(),
                index: 0,
                stage: "requirements".into(),
                team: "business-analysis".into(),
            },
        ),
        call(4, "r1/2/0/0", "business-analysis", 0, 0.01),
        ev(
            5,
            EventData::StageCompleted {
                run_id: "r1".into(),
                index: 0,
                stage: "requirements".into(),
                team: "business-analysis".into(),
                status: TaskStatus::NeedsClarification,
                result: result(
                    TaskStatus::NeedsClarification,
                    Some(("solution-architecture", "Which columns?")),
                ),
                artifact_dir: "runs/r1/00-requirements".into(),
                cost_usd: 0.01,
            },
        ),
        ev(
            6,
            EventData::ClarificationRequested {
                clarification_id: "c1".into(),
                run_id: "r1".into(),
                index: 0,
                asking_team: "business-analysis".into(),
                target_team: "solution-architecture".into(),
                question: "Which columns?".into(),
                depth: 1,
                parent: None,
            },
        ),
        call(7, "r1/2/0/c1/0/0", "solution-architecture", 0, 0.002),
        ev(
            8,
            EventData::ClarificationRefused {
                clarification_id: "c1".into(),
                run_id: "r1".into(),
                index: 0,
                reason: "`solution-architecture` could not answer: no data".into(),
            },
        ),
        ev(
            9,
            EventData::ApprovalRequested {
                approval_id: "a1".into(),
                run_id: "r1".into(),
                index: 0,
                kind: ApprovalKind::Clarification,
                question: "Which columns?".into(),
                context: String::new(),
                options: ApprovalKind::Clarification.options(),
                deadline: None,
                escalation: None,
                detail: serde_json::json!({"clarification_id": "c1"}),
            },
        ),
        ev(
            10,
            EventData::ApprovalDecided {
                approval_id: "a1".into(),
                run_id: "r1".into(),
                kind: ApprovalKind::Clarification,
                option: "answer".into(),
                text: Some("id, total, date".into()),
                decided_by: "dashboard".into(),
                automatic: false,
                policy: None,
            },
        ),
        ev(
            11,
            EventData::StageStarted {
                run_id: "r1".into(),
                index: 0,
                stage: "requirements".into(),
                team: "business-analysis".into(),
            },
        ),
        call(12, "r1/2/0/1", "business-analysis", 0, 0.01),
        ev(
            13,
            EventData::StageCompleted {
                run_id: "r1".into(),
                index: 0,
                stage: "requirements".into(),
                team: "business-analysis".into(),
                status: TaskStatus::Complete,
                result: result(TaskStatus::Complete, None),
                artifact_dir: "runs/r1/00-requirements".into(),
                cost_usd: 0.01,
            },
        ),
        ev(
            14,
            EventData::StageStarted {
                run_id: "r1".into(),
                index: 1,
                stage: "design".into(),
                team: "solution-architecture".into(),
            },
        ),
    ]
}

#[test]
fn a_clarified_run_folds_into_stages_edges_and_chat() {
    let events = clarified_run();
    let view = RunView::fold("r1", &events);
    assert_eq!(view.goal, "Export orders as CSV");
    assert_eq!(view.status, RunStatus::Running);
    assert_eq!(view.stages[0].state, StageState::Complete);
    assert_eq!(view.stages[1].state, StageState::Running);
    assert_eq!(view.current_stage().unwrap().name, "design");
    // The answering team's call is the edge's cost, not the stage's.
    let c = &view.clarifications[0];
    assert_eq!(c.state, "refused");
    assert!((c.usage.cost_usd - 0.002).abs() < 1e-9);
    assert_eq!(view.stages[0].usage.calls, 2);
    assert!((view.stages[0].usage.cost_usd - 0.02).abs() < 1e-9);
    assert!((view.usage.cost_usd - 0.022).abs() < 1e-9);
    assert_eq!(view.served_by.label(), "model: script:gpt-4o-mini");
    // Artifact contents stay out of the view; names and sizes are kept.
    let r = view.stages[0].result.as_ref().unwrap();
    assert_eq!(r.artifacts, vec![("brief.md".to_string(), 23)]);
    assert!(
        !serde_json::to_string(&view)
            .unwrap()
            .contains("secret contents")
    );
    // The approval was decided by a person; the chat says so in order.
    assert!(view.pending_approvals().next().is_none());
    let speakers: Vec<&Speaker> = view.chat.iter().map(|m| &m.from).collect();
    assert_eq!(speakers[0], &Speaker::User);
    assert!(
        view.chat
            .iter()
            .any(|m| m.approval_id.as_deref() == Some("a1"))
    );
    let answer = view
        .chat
        .iter()
        .find(|m| m.text.contains("id, total, date"))
        .unwrap();
    assert_eq!(answer.from, Speaker::User);
    assert_eq!(view.feed.len(), events.len());
    assert_eq!(view.last_seq, 14);
}

#[test]
fn waiting_shows_while_a_person_is_asked() {
    let events = clarified_run();
    let view = RunView::fold("r1", &events[..9]);
    assert_eq!(view.status, RunStatus::WaitingForHuman);
    assert_eq!(view.stages[0].state, StageState::Waiting);
    assert_eq!(view.pending_approvals().count(), 1);
}

#[test]
fn replayed_and_foreign_events_are_ignored() {
    let events = clarified_run();
    let mut view = RunView::fold("r1", &events);
    let before = view.clone();
    assert!(!view.apply(&events[3]), "an event already folded");
    let mut other = events[2].clone();
    other.seq = 99;
    other.data = EventData::StageStarted {
        run_id: "r2".into(),
        index: 1,
        stage: "design".into(),
        team: "solution-architecture".into(),
    };
    assert!(!view.apply(&other), "another run's event");
    assert_eq!(view, before);
}

#[test]
fn feed_and_chat_are_capped_and_filterable() {
    let events = clarified_run();
    let mut view = RunView::fold("r1", &events);
    for i in 0..(FEED_CAP as i64 + 50) {
        view.apply(&call(100 + i, &format!("x/{i}"), "qa-engineering", 1, 0.0));
    }
    assert_eq!(view.feed.len(), FEED_CAP);
    assert_eq!(view.feed.back().unwrap().seq, 100 + FEED_CAP as i64 + 49);
    let (teams, kinds) = view.feed_filters();
    assert!(teams.contains(&"qa-engineering".to_string()));
    assert!(kinds.contains(&"model_call_finished".to_string()));
    assert!(view.chat.len() <= CHAT_CAP);
}

#[test]
fn a_failed_run_marks_the_running_stage_failed() {
    let mut events = clarified_run();
    events.push(ev(
        15,
        EventData::RunFinished {
            run_id: "r1".into(),
            status: RunStatus::Failed,
            reason: "model refused".into(),
        },
    ));
    let view = RunView::fold("r1", &events);
    assert_eq!(view.stages[1].state, StageState::Failed);
    assert_eq!(view.status, RunStatus::Failed);
    assert!(view.chat.back().unwrap().text.contains("model refused"));
}
