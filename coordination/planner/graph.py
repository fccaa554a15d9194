"""Drawings of a plan graph: Mermaid, Graphviz dot, plain text, and JSON data.

Todos are grouped by repo (a subgraph/cluster per repo), styled by status,
and the critical path is marked (thick red edges, bold nodes, ``*`` in text).
``analysis`` may be None for a graph with a cycle: it is still drawn, without
levels or critical path, because seeing the cycle is the point.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TypedDict

from coordination.planner.analysis import Analysis
from coordination.planner.dag import PlanGraph

# status -> (fill, stroke) shared by mermaid and dot
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "pending": ("#f5f5f5", "#888888"),
    "in_progress": ("#fff3cd", "#b8860b"),
    "completed": ("#d4edda", "#2e7d32"),
    "failed": ("#f8d7da", "#c62828"),
    "skipped": ("#e0e0e0", "#9e9e9e"),
    "blocked": ("#e8d5f0", "#7b1fa2"),
}
CRITICAL = "#d32f2f"


class GraphNode(TypedDict):
    id: str
    repo: str
    status: str
    task: str
    estimated_hours: float | None
    level: int | None
    critical: bool


# "from" is a keyword: this TypedDict is declared the functional way.
GraphEdge = TypedDict("GraphEdge", {"from": str, "to": str, "critical": bool})


class GraphData(TypedDict):
    """``coord plan graph --json``."""

    plan: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    critical_path: list[str] | None


def _by_repo(pg: PlanGraph) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for tid in pg.graph.nodes:
        groups[pg.graph.nodes[tid]["todo"].repo].append(tid)
    return {r: sorted(ids) for r, ids in sorted(groups.items())}


def _critical_edges(analysis: Analysis | None) -> set[tuple[str, str]]:
    if analysis is None:
        return set()
    p = analysis.critical_path
    return set(zip(p, p[1:]))


def graph_data(pg: PlanGraph, analysis: Analysis | None) -> GraphData:
    """Nodes and edges as JSON types (``coord plan graph --json``)."""
    crit = set(analysis.critical_path) if analysis else set()
    crit_edges = _critical_edges(analysis)
    nodes: list[GraphNode] = []
    for tid in sorted(pg.graph.nodes):
        t = pg.graph.nodes[tid]["todo"]
        nodes.append({
            "id": tid, "repo": t.repo, "status": t.status.value, "task": t.task,
            "estimated_hours": t.estimated_hours,
            "level": analysis.level_of.get(tid) if analysis else None,
            "critical": tid in crit,
        })
    edges: list[GraphEdge] = [{"from": u, "to": v, "critical": (u, v) in crit_edges}
             for u, v in sorted(pg.graph.edges)]
    return {"plan": pg.plan_id, "nodes": nodes, "edges": edges,
            "critical_path": analysis.critical_path if analysis else None}


def _mid(tid: str) -> str:
    return tid.replace("-", "_")


def _mlabel(text: str) -> str:
    # Mermaid labels are quoted; quotes and brackets become HTML entities.
    return (text.replace("&", "&amp;").replace('"', "#quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def render_mermaid(pg: PlanGraph, analysis: Analysis | None) -> str:
    crit_edges = _critical_edges(analysis)
    lines = ["flowchart LR"]
    for repo, ids in _by_repo(pg).items():
        lines.append(f'  subgraph repo_{_mid(repo).replace(".", "_")}["{_mlabel(repo)}"]')
        for tid in ids:
            t = pg.graph.nodes[tid]["todo"]
            lines.append(f'    {_mid(tid)}["{tid}: {_mlabel(t.task)}"]')
        lines.append("  end")
    marked: list[int] = []
    for i, (u, v) in enumerate(sorted(pg.graph.edges)):
        lines.append(f"  {_mid(u)} --> {_mid(v)}")
        if (u, v) in crit_edges:
            marked.append(i)
    for status, (fill, stroke) in STATUS_COLORS.items():
        lines.append(f"  classDef {status} fill:{fill},stroke:{stroke}")
    lines.append(f"  classDef critical stroke:{CRITICAL},stroke-width:3px")
    by_status: dict[str, list[str]] = defaultdict(list)
    for tid in sorted(pg.graph.nodes):
        by_status[pg.graph.nodes[tid]["todo"].status.value].append(_mid(tid))
    for status, ids in by_status.items():
        lines.append(f"  class {','.join(ids)} {status}")
    if analysis is not None and analysis.critical_path:
        lines.append(f"  class {','.join(_mid(t) for t in analysis.critical_path)} critical")
    if marked:
        lines.append(f"  linkStyle {','.join(map(str, marked))} "
                     f"stroke:{CRITICAL},stroke-width:3px")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return json.dumps(text)  # a valid dot string: double quotes, escaped


def render_dot(pg: PlanGraph, analysis: Analysis | None) -> str:
    crit = set(analysis.critical_path) if analysis else set()
    crit_edges = _critical_edges(analysis)
    lines = [f"digraph {_q(pg.plan_id)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for repo, ids in _by_repo(pg).items():
        lines.append(f"  subgraph {_q('cluster_' + repo)} {{")
        lines.append(f"    label={_q(repo)};")
        for tid in ids:
            t = pg.graph.nodes[tid]["todo"]
            fill, stroke = STATUS_COLORS.get(t.status.value, ("#ffffff", "#000000"))
            extra = f', penwidth=3, color="{CRITICAL}"' if tid in crit else f', color="{stroke}"'
            lines.append(f'    {_q(tid)} [label={_q(tid + chr(10) + t.task)}, '
                         f'fillcolor="{fill}"{extra}];')
        lines.append("  }")
    for u, v in sorted(pg.graph.edges):
        style = f' [color="{CRITICAL}", penwidth=3]' if (u, v) in crit_edges else ""
        lines.append(f"  {_q(u)} -> {_q(v)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_text(pg: PlanGraph, analysis: Analysis | None) -> str:
    """Repo by repo: ``* TODO-3  L1  pending  6h  task  <- TODO-2`` (``*`` = critical)."""
    crit = set(analysis.critical_path) if analysis else set()
    lines = [f"{pg.plan_id}"]
    if analysis is not None:
        path = " -> ".join(analysis.critical_path) or "(empty)"
        lines.append(f"critical path ({analysis.critical_hours:g}h): {path}")
    else:
        lines.append("critical path: unavailable (the graph has a cycle)")
    for repo, ids in _by_repo(pg).items():
        lines.append(f"[{repo}]")
        for tid in ids:
            t = pg.graph.nodes[tid]["todo"]
            mark = "*" if tid in crit else " "
            level = f"L{analysis.level_of[tid]}" if analysis else "L?"
            hours = "-" if t.estimated_hours is None else f"{t.estimated_hours:g}h"
            preds = sorted(pg.graph.predecessors(tid))
            after = f"  <- {', '.join(preds)}" if preds else ""
            lines.append(f"  {mark} {tid}  {level}  {t.status.value}  {hours}  {t.task}{after}")
    return "\n".join(lines) + "\n"


RENDERERS = {"mermaid": render_mermaid, "dot": render_dot, "text": render_text}
