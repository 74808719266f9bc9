use super::*;
use crate::run_view::{ClarificationView, StageView, TeamCard, Usage, WorkOrderView};

fn stage(index: u32, name: &str, team: &str, state: StageState) -> StageView {
    StageView {
        index,
        name: name.into(),
        team: team.into(),
        state,
        attempts: 0,
        error: None,
        result: None,
        artifact_dir: None,
        usage: Usage::default(),
    }
}

fn clar(id: &str, from: &str, to: &str) -> ClarificationView {
    ClarificationView {
        id: id.into(),
        index: 0,
        asking_team: from.into(),
        target_team: to.into(),
        question: "Which columns should the export have, and in which order?".into(),
        depth: 1,
        state: "answered".into(),
        answer: Some("id, total".into()),
        answered_by: Some(to.into()),
        refusal: None,
        usage: Usage {
            calls: 1,
            cost_usd: 0.0125,
            ..Usage::default()
        },
    }
}

fn view() -> RunView {
    let mut v = RunView::new("r");
    v.stages = vec![
        stage(0, "requirements", "business-analysis", StageState::Complete),
        stage(1, "design", "solution-architecture", StageState::Running),
        stage(2, "build", "backend-engineering", StageState::Pending),
    ];
    v.teams = vec![TeamCard {
        name: "business-analysis".into(),
        title: "Business Analysis".into(),
        operatives: vec!["requirements-analyst".into(), "story-writer".into()],
    }];
    v
}

#[test]
fn stages_in_order_with_operatives_and_flow() {
    let g = layout(&view());
    let stages: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Stage)
        .collect();
    assert_eq!(stages.len(), 3);
    assert!(stages[0].y < stages[1].y && stages[1].y < stages[2].y);
    assert_eq!(stages[1].state, "running");
    let ops: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Operative)
        .map(|n| n.label.as_str())
        .collect();
    assert_eq!(ops, ["requirements-analyst", "story-writer"]);
    assert_eq!(g.edges.iter().filter(|e| !e.clarification).count(), 2);
    let group = g.nodes.iter().find(|n| n.kind == NodeKind::Group).unwrap();
    assert_eq!(group.label, "Business Analysis");
}

#[test]
fn clarifications_are_curved_labelled_edges_and_consulted_teams_get_nodes() {
    let mut v = view();
    v.clarifications = vec![
        clar("c1", "business-analysis", "solution-architecture"),
        clar("c2", "solution-architecture", "security-engineering"),
    ];
    let g = layout(&v);
    let edges: Vec<&Edge> = g.edges.iter().filter(|e| e.clarification).collect();
    assert_eq!(edges.len(), 2);
    assert!(edges.iter().all(|e| e.d.contains(" C ")), "curves");
    assert!(edges[0].label.contains("$0.0125"), "{}", edges[0].label);
    assert!(edges[0].label.chars().count() < 45);
    assert_eq!(edges[0].select, Some(Selection::Clarification("c1".into())));
    let consulted: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Consulted)
        .collect();
    assert_eq!(consulted.len(), 1);
    assert_eq!(consulted[0].detail, "consulted");
    assert!(consulted[0].x + consulted[0].w <= WIDTH);
}

#[test]
fn work_orders_hang_under_engineering() {
    let mut v = view();
    v.work_orders = vec![WorkOrderView {
        id: "wo-1".into(),
        title: "CSV export endpoint".into(),
        risk: None,
        state: "delivered".into(),
        branch: Some("feature/wo-abcdef12-csv".into()),
        commit: Some("0123456789abcdef".into()),
        pull_request: Some("https://example.test/pr/1".into()),
        pushed: true,
        files: vec![],
        gates: vec![],
        model: None,
        cost_usd: 0.0,
        commands: 0,
        stacked_on: vec![],
    }];
    let g = layout(&v);
    let wo = g
        .nodes
        .iter()
        .find(|n| n.kind == NodeKind::WorkOrder)
        .unwrap();
    let build = g
        .nodes
        .iter()
        .find(|n| n.kind == NodeKind::Stage && n.label == "build")
        .unwrap();
    assert!(wo.y > build.y);
    assert!(wo.detail.contains("01234567") && wo.detail.contains("PR"));
    assert!(g.height >= wo.y + wo.h);
}

#[test]
fn selections_round_trip_through_the_query() {
    for sel in [
        Selection::Stage(3),
        Selection::Clarification("0190-c1".into()),
        Selection::WorkOrder("wo-1".into()),
        Selection::Team("qa-engineering".into()),
    ] {
        assert_eq!(Selection::from_param(&sel.to_param()), Some(sel));
    }
    assert_eq!(Selection::from_param("stage-x"), None);
    assert_eq!(Selection::from_param("bogus-1"), None);
    assert_eq!(Selection::from_param("team-"), None);
}
