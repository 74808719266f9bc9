//! The team graph drawn as SVG from [`crate::graph::layout`]: status colours, the running
//! stage pulsing, clarification edges dashed and curved with their labels; every node and edge
//! that has a detail is a link to it (click, or Tab and Enter) with a visible focus ring.

use std::sync::Arc;

use leptos::prelude::*;

use super::RunQuery;
use crate::graph::{Edge, Node, NodeKind, Selection, WIDTH, layout};
use crate::run_view::RunView;

/// Fill and stroke classes per state (full literal class names, so tailwind finds them).
fn colours(state: &str) -> &'static str {
    match state {
        "running" => "fill-blue-50 stroke-blue-500",
        "waiting" => "fill-amber-50 stroke-amber-500",
        "complete" | "delivered" => "fill-emerald-50 stroke-emerald-500",
        "blocked" => "fill-orange-50 stroke-orange-500",
        "failed" => "fill-red-50 stroke-red-500",
        "skipped" => "fill-zinc-100 stroke-zinc-400",
        "consulted" => "fill-violet-50 stroke-violet-500",
        "planned" => "fill-white stroke-slate-400",
        _ => "fill-white stroke-slate-300",
    }
}

fn edge_colour(edge: &Edge) -> &'static str {
    match edge.state.as_str() {
        "answered" => "stroke-violet-500",
        "refused" => "stroke-red-500",
        "asked" => "stroke-amber-500",
        _ if edge.clarification => "stroke-violet-500",
        "complete" | "delivered" => "stroke-emerald-400",
        _ => "stroke-slate-300",
    }
}

#[component]
pub fn TeamGraph(view: Arc<RunView>, state: RunQuery) -> impl IntoView {
    let graph = layout(&view);
    let link = |select: &Option<Selection>| {
        select
            .as_ref()
            .map(|s| state.href(&view.id, |q| q.sel = Some(s.clone())))
    };
    let selected = state.sel.clone();
    let flows = graph
        .edges
        .iter()
        .filter(|e| !e.clarification)
        .map(flow_edge)
        .collect_view();
    let nodes = graph
        .nodes
        .iter()
        .map(|n| {
            node(
                n,
                link(&n.select),
                selected.is_some() && n.select == selected,
            )
        })
        .collect_view();
    let clarifications = graph
        .edges
        .iter()
        .filter(|e| e.clarification)
        .map(|e| {
            clarification_edge(
                e,
                link(&e.select),
                selected.is_some() && e.select == selected,
            )
        })
        .collect_view();
    view! {
        <div class="mt-2 overflow-x-auto">
            <svg
                data-testid="team-graph"
                role="group"
                aria-label="Stages of the run, grouped by team"
                class="min-w-[34rem] w-full select-none"
                viewBox=format!("0 0 {WIDTH} {}", graph.height)
                preserveAspectRatio="xMinYMin meet"
            >
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="fill-slate-400" />
                    </marker>
                    <marker id="arrow-clar" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="fill-violet-500" />
                    </marker>
                </defs>
                {flows}
                {nodes}
                {clarifications}
            </svg>
        </div>
    }
}

fn flow_edge(edge: &Edge) -> impl IntoView + use<> {
    view! {
        <path d=edge.d.clone() class=format!("fill-none stroke-2 {}", edge_colour(edge)) marker-end="url(#arrow)" />
    }
}

/// A clarification: a dashed curve with its question and cost, a link to its detail.
fn clarification_edge(edge: &Edge, href: Option<String>, selected: bool) -> impl IntoView + use<> {
    let label = edge.label.clone();
    let colour = edge_colour(edge);
    let aria = format!("Clarification: {label}");
    view! {
        <a
            href=href.unwrap_or_default()
            data-soft
            class="cursor-pointer outline-none focus-visible:[&>path]:stroke-[4]"
            data-edge="clarification"
            data-state=edge.state.clone()
            aria-label=aria
            aria-current=selected.then_some("true")
        >
            // A wide transparent path makes the thin curve easy to hit.
            <path d=edge.d.clone() class="fill-none stroke-transparent" stroke-width="12" />
            <path
                d=edge.d.clone()
                class=format!("fill-none {colour} {}", if selected { "stroke-[3]" } else { "stroke-2" })
                stroke-dasharray="6 4"
                marker-end="url(#arrow-clar)"
            />
            <text x=edge.label_x y=edge.label_y class="fill-violet-800 text-[10px]" paint-order="stroke" stroke="white" stroke-width="3">
                {label}
            </text>
        </a>
    }
}

/// A node: a link to its detail when it has one (Tab reaches it, Enter opens it).
fn node(n: &Node, href: Option<String>, selected: bool) -> impl IntoView + use<> {
    let Node {
        kind,
        x,
        y,
        w,
        h,
        label,
        detail,
        state,
        select: _,
    } = n.clone();
    let active = state == "running" && kind == NodeKind::Stage;
    let base = colours(&state);
    let (rx, text_class, sub_class) = match kind {
        NodeKind::Group => (10.0, "fill-slate-700 text-[12px] font-semibold", ""),
        NodeKind::Stage => (
            6.0,
            "fill-slate-900 text-[12px] font-medium",
            "fill-slate-500 text-[10px]",
        ),
        NodeKind::Operative => (9.0, "fill-slate-600 text-[9px]", ""),
        NodeKind::WorkOrder => (
            6.0,
            "fill-slate-900 text-[11px] font-medium",
            "fill-slate-500 text-[10px]",
        ),
        NodeKind::Consulted => (
            8.0,
            "fill-violet-900 text-[12px] font-medium",
            "fill-violet-600 text-[10px]",
        ),
    };
    let stroke = match kind {
        NodeKind::Group => "stroke-[1.5]",
        NodeKind::Operative => "stroke-1",
        _ => "stroke-2",
    };
    let label_y = match kind {
        NodeKind::Group => y + 17.0,
        NodeKind::Operative => y + h / 2.0 + 3.0,
        _ if detail.is_empty() => y + h / 2.0 + 4.0,
        _ => y + 15.0,
    };
    let kind_name = kind.as_str();
    let aria = format!(
        "{label}: {}",
        if detail.is_empty() {
            state.as_str()
        } else {
            detail.as_str()
        }
    );
    let has_detail = !detail.is_empty() && kind != NodeKind::Group;
    let detail_y = y + h - 7.0;
    let rect = view! {
        <rect
            x=x
            y=y
            width=w
            height=h
            rx=rx
            class=format!(
                "{base} {stroke} {} {}",
                if active { "animate-pulse" } else { "" },
                if selected { "stroke-indigo-600 stroke-[3]" } else { "" },
            )
        />
    };
    let texts = view! {
        <text x=x + 8.0 y=label_y class=text_class>{label.clone()}</text>
        {has_detail.then(|| view! { <text x=x + 8.0 y=detail_y class=sub_class>{detail.clone()}</text> })}
    };
    match href {
        Some(href) => view! {
            <a
                href=href
                data-soft
                class="cursor-pointer outline-none [&:focus-visible>rect]:stroke-indigo-600 [&:focus-visible>rect]:stroke-[4]"
                aria-label=aria
                aria-current=selected.then_some("true")
                data-node=kind_name
                data-state=state.clone()
                data-label=label.clone()
            >
                {rect}
                {texts}
            </a>
        }
        .into_any(),
        None => view! {
            <g data-node=kind_name data-state=state.clone() data-label=label.clone()>
                {rect}
                {texts}
            </g>
        }
        .into_any(),
    }
}

/// What the colours mean.
#[component]
pub fn Legend() -> impl IntoView {
    let items = [
        ("pending", "bg-white border-slate-300"),
        ("running", "bg-blue-50 border-blue-500"),
        ("waiting", "bg-amber-50 border-amber-500"),
        ("complete", "bg-emerald-50 border-emerald-500"),
        ("blocked", "bg-orange-50 border-orange-500"),
        ("failed", "bg-red-50 border-red-500"),
    ];
    view! {
        <ul class="flex flex-wrap gap-x-3 gap-y-1 text-xs text-slate-600" aria-label="Legend">
            {items.into_iter().map(|(name, class)| view! {
                <li class="flex items-center gap-1">
                    <span class=format!("inline-block h-3 w-3 rounded border-2 {class}")></span>
                    {name}
                </li>
            }).collect_view()}
            <li class="flex items-center gap-1">
                <span class="inline-block w-5 border-t-2 border-dashed border-violet-500"></span>
                "clarification"
            </li>
        </ul>
    }
}
