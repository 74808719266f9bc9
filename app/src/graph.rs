//! The team graph of a run, laid out as plain geometry (the page draws it as SVG): stages in
//! pipeline order grouped by team with operatives as sub-nodes, work orders under the
//! engineering stage, teams consulted outside the pipeline in a second column, and
//! clarification edges as dashed curves labelled with the question and its cost.

use crate::run_view::{RunView, StageState};

/// Width of the drawing (the SVG's view box); it scales to its container.
pub const WIDTH: f64 = 720.0;
const X0: f64 = 16.0;
const NODE_W: f64 = 340.0;
const HEADER_H: f64 = 26.0;
const STAGE_H: f64 = 42.0;
const PILL_H: f64 = 18.0;
const GAP: f64 = 30.0;
const WO_H: f64 = 44.0;
const SIDE_X: f64 = 516.0;
const SIDE_W: f64 = 188.0;
const SIDE_H: f64 = 44.0;

/// What a click on the graph selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Stage(u32),
    Clarification(String),
    WorkOrder(String),
    Team(String),
}

impl Selection {
    /// The selection as the run page's `sel` query parameter: `stage-2`, `clar-<id>`,
    /// `wo-<id>`, `team-<name>`.
    pub fn to_param(&self) -> String {
        match self {
            Selection::Stage(index) => format!("stage-{index}"),
            Selection::Clarification(id) => format!("clar-{id}"),
            Selection::WorkOrder(id) => format!("wo-{id}"),
            Selection::Team(name) => format!("team-{name}"),
        }
    }

    /// The selection a `sel` parameter names; `None` for anything else.
    pub fn from_param(param: &str) -> Option<Selection> {
        let (kind, value) = param.split_once('-')?;
        if value.is_empty() {
            return None;
        }
        Some(match kind {
            "stage" => Selection::Stage(value.parse().ok()?),
            "clar" => Selection::Clarification(value.to_string()),
            "wo" => Selection::WorkOrder(value.to_string()),
            "team" => Selection::Team(value.to_string()),
            _ => return None,
        })
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A team's box around its consecutive stages.
    Group,
    Stage,
    Operative,
    WorkOrder,
    /// A team asked a question but not in the pipeline.
    Consulted,
}

impl NodeKind {
    /// Stable lower-case name (a `data-kind` attribute for styles and the browser tests).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Group => "group",
            NodeKind::Stage => "stage",
            NodeKind::Operative => "operative",
            NodeKind::WorkOrder => "workorder",
            NodeKind::Consulted => "consulted",
        }
    }
}

/// A box of the drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub label: String,
    pub detail: String,
    /// Status name for the colour (`pending`, `running`, …, or `delivered` / `planned`).
    pub state: String,
    /// What clicking it selects (none for operatives and groups).
    pub select: Option<Selection>,
}

/// A line of the drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// True for a clarification (dashed, curved, labelled); false for the pipeline's flow.
    pub clarification: bool,
    /// SVG path data.
    pub d: String,
    pub label: String,
    pub label_x: f64,
    pub label_y: f64,
    pub state: String,
    pub select: Option<Selection>,
}

/// The laid-out graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub height: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Lays out `view`.
pub fn layout(view: &RunView) -> Graph {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    // Where each stage's row sits (its vertical middle), for edges.
    let mut stage_y: Vec<(String, f64)> = Vec::new();
    let mut y = 12.0;
    let mut previous_bottom: Option<f64> = None;
    let wo_stage = view
        .stages
        .iter()
        .find(|s| s.team == "backend-engineering")
        .or_else(|| {
            view.stages
                .iter()
                .find(|s| s.team.ends_with("-engineering"))
        })
        .map(|s| s.index);

    let mut i = 0;
    while i < view.stages.len() {
        let team = view.stages[i].team.clone();
        let mut j = i;
        while j < view.stages.len() && view.stages[j].team == team {
            j += 1;
        }
        let card = view.teams.iter().find(|t| t.name == team);
        let operatives: Vec<String> = card.map(|c| c.operatives.clone()).unwrap_or_default();
        // Operative pills wrap inside the box.
        let mut pill_rows = Vec::new();
        let mut row: Vec<(String, f64)> = Vec::new();
        let mut used = 0.0;
        for op in &operatives {
            let w = (op.chars().count() as f64 * 5.6 + 14.0).min(NODE_W - 16.0);
            if used + w > NODE_W - 16.0 && !row.is_empty() {
                pill_rows.push(std::mem::take(&mut row));
                used = 0.0;
            }
            row.push((op.clone(), w));
            used += w + 6.0;
        }
        if !row.is_empty() {
            pill_rows.push(row);
        }
        let stages_h = (j - i) as f64 * STAGE_H;
        let pills_h = pill_rows.len() as f64 * (PILL_H + 4.0);
        let group_h = HEADER_H + stages_h + pills_h + 8.0;
        let colour = group_state(view, i, j);
        if let Some(bottom) = previous_bottom {
            edges.push(flow(bottom, y, &colour));
        }
        nodes.push(Node {
            kind: NodeKind::Group,
            x: X0,
            y,
            w: NODE_W,
            h: group_h,
            label: card.map_or(team.clone(), |c| c.title.clone()),
            detail: team.clone(),
            state: colour.clone(),
            select: Some(Selection::Team(team.clone())),
        });
        let mut sy = y + HEADER_H;
        for stage in &view.stages[i..j] {
            let usage = &stage.usage;
            let mut detail = stage.state.as_str().to_string();
            if usage.calls > 0 {
                detail.push_str(&format!(" · ${:.4}", usage.cost_usd));
            }
            if stage.attempts > 0 {
                detail.push_str(&format!(" · {} failed attempts", stage.attempts));
            }
            nodes.push(Node {
                kind: NodeKind::Stage,
                x: X0 + 8.0,
                y: sy,
                w: NODE_W - 16.0,
                h: STAGE_H - 4.0,
                label: stage.name.clone(),
                detail,
                state: stage.state.as_str().to_string(),
                select: Some(Selection::Stage(stage.index)),
            });
            stage_y.push((stage.team.clone(), sy + (STAGE_H - 4.0) / 2.0));
            sy += STAGE_H;
        }
        for row in pill_rows {
            let mut px = X0 + 8.0;
            for (name, w) in row {
                nodes.push(Node {
                    kind: NodeKind::Operative,
                    x: px,
                    y: sy,
                    w,
                    h: PILL_H,
                    label: name,
                    detail: String::new(),
                    state: colour.clone(),
                    select: None,
                });
                px += w + 6.0;
            }
            sy += PILL_H + 4.0;
        }
        y += group_h;
        // Work orders hang under the engineering stage.
        if view.stages[i..j].iter().any(|s| Some(s.index) == wo_stage)
            && !view.work_orders.is_empty()
        {
            y += 8.0;
            for wo in &view.work_orders {
                let mut detail = match (&wo.branch, &wo.commit) {
                    (Some(b), Some(c)) => format!("{b} @ {}", c.get(..8).unwrap_or(c)),
                    _ => wo.state.clone(),
                };
                if wo.commands > 0 {
                    detail.push_str(&format!(" · {} commands", wo.commands));
                }
                if !wo.gates.is_empty() {
                    let passed = wo.gates.iter().filter(|g| g.passed).count();
                    detail.push_str(&format!(" · gates {passed}/{}", wo.gates.len()));
                }
                if wo.pull_request.is_some() {
                    detail.push_str(" · PR");
                }
                nodes.push(Node {
                    kind: NodeKind::WorkOrder,
                    x: X0 + 32.0,
                    y,
                    w: NODE_W - 32.0,
                    h: WO_H - 6.0,
                    label: truncate(&format!("{} · {}", wo.id, wo.title), 48),
                    detail: truncate(&detail, 56),
                    state: wo.state.clone(),
                    select: Some(Selection::WorkOrder(wo.id.clone())),
                });
                edges.push(Edge {
                    clarification: false,
                    d: format!(
                        "M {} {} V {} H {}",
                        X0 + 20.0,
                        y - 8.0,
                        y + (WO_H - 6.0) / 2.0,
                        X0 + 32.0
                    ),
                    label: String::new(),
                    label_x: 0.0,
                    label_y: 0.0,
                    state: wo.state.clone(),
                    select: None,
                });
                y += WO_H;
            }
        }
        previous_bottom = Some(y);
        y += GAP;
        i = j;
    }

    // Teams consulted outside the pipeline, in a second column beside their first asker.
    let mut side: Vec<(String, f64)> = Vec::new();
    let mut side_bottom = 0.0_f64;
    for c in &view.clarifications {
        if stage_y.iter().any(|(t, _)| t == &c.target_team)
            || side.iter().any(|(t, _)| t == &c.target_team)
        {
            continue;
        }
        let ask_y = team_y(&stage_y, &side, &c.asking_team).unwrap_or(y);
        let top = (ask_y - SIDE_H / 2.0).max(side_bottom + 8.0);
        let card = view.teams.iter().find(|t| t.name == c.target_team);
        nodes.push(Node {
            kind: NodeKind::Consulted,
            x: SIDE_X,
            y: top,
            w: SIDE_W,
            h: SIDE_H,
            label: card.map_or(c.target_team.clone(), |t| t.title.clone()),
            detail: "consulted".into(),
            state: "consulted".into(),
            select: Some(Selection::Team(c.target_team.clone())),
        });
        side.push((c.target_team.clone(), top + SIDE_H / 2.0));
        side_bottom = top + SIDE_H;
    }

    // Clarification edges.
    for (k, c) in view.clarifications.iter().enumerate() {
        let Some(y1) = team_y(&stage_y, &side, &c.asking_team) else {
            continue;
        };
        let Some(y2) = team_y(&stage_y, &side, &c.target_team) else {
            continue;
        };
        let x1 = X0 + NODE_W;
        let in_pipeline = stage_y.iter().any(|(t, _)| t == &c.target_team);
        let (d, lx, ly) = if in_pipeline {
            let dx = 70.0 + 26.0 * (k % 4) as f64;
            (
                format!(
                    "M {x1} {y1} C {} {y1}, {} {y2}, {x1} {y2}",
                    x1 + dx,
                    x1 + dx
                ),
                x1 + dx * 0.75 + 4.0,
                (y1 + y2) / 2.0,
            )
        } else {
            let x2 = SIDE_X;
            let mid = (x1 + x2) / 2.0;
            (
                format!("M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}"),
                x1 + 6.0,
                (y1 + y2) / 2.0 - 6.0 - 12.0 * (k % 3) as f64,
            )
        };
        let cost = if c.usage.calls > 0 {
            format!(" · ${:.4}", c.usage.cost_usd)
        } else {
            String::new()
        };
        edges.push(Edge {
            clarification: true,
            d,
            label: format!("{}{cost}", truncate(&c.question, 30)),
            label_x: lx,
            label_y: ly,
            state: c.state.clone(),
            select: Some(Selection::Clarification(c.id.clone())),
        });
    }

    let height = (y - GAP + 12.0).max(side_bottom + 12.0).max(60.0);
    Graph {
        height,
        nodes,
        edges,
    }
}

fn team_y(stages: &[(String, f64)], side: &[(String, f64)], team: &str) -> Option<f64> {
    stages
        .iter()
        .chain(side.iter())
        .find(|(t, _)| t == team)
        .map(|(_, y)| *y)
}

/// A group's colour: its most urgent stage state.
fn group_state(view: &RunView, from: usize, to: usize) -> String {
    let states: Vec<StageState> = view.stages[from..to].iter().map(|s| s.state).collect();
    let order = [
        StageState::Failed,
        StageState::Blocked,
        StageState::Waiting,
        StageState::Running,
        StageState::Pending,
        StageState::Skipped,
        StageState::Complete,
    ];
    let first = order
        .iter()
        .find(|o| states.contains(o))
        .copied()
        .unwrap_or(StageState::Pending);
    // A group is complete only when every stage is; pending wins over complete otherwise.
    if first == StageState::Pending && states.contains(&StageState::Complete) {
        return "running".into();
    }
    first.as_str().to_string()
}

fn flow(from: f64, to: f64, state: &str) -> Edge {
    let x = X0 + NODE_W / 2.0;
    Edge {
        clarification: false,
        d: format!("M {x} {from} V {}", to - 2.0),
        label: String::new(),
        label_x: 0.0,
        label_y: 0.0,
        state: state.to_string(),
        select: None,
    }
}

#[cfg(test)]
mod tests;
