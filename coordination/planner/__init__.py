"""The planner: plan DAGs validated, levelled, costed and drawn. Pure: no Redis,
no Celery (messages are :mod:`coordination.dispatch`'s).

Names are re-exported lazily (PEP 562) so that importing this package costs
nothing: the graph modules (and the catalog models) load on first use of a graph
function. ``coord todo list`` must never pay for them. Plans are graphs of
:mod:`.digraph` (networkx is imported only to report a plan's cycles).

    pg = build_plan_graph(catalog, "PLAN-001")            # dag.py
    findings = validate_plan(catalog, "PLAN-001")          # validate.py
    analysis = analyze(pg)                                 # analysis.py
    pg, analysis = prepare_sweep(catalog, "PLAN-001")      # raises what stops a sweep
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Blocker": "dag",
    "PlanGraph": "dag",
    "UnknownRef": "dag",
    "build_plan_graph": "dag",
    "require_plan": "dag",
    "Finding": "validate",
    "validate_plan": "validate",
    "Analysis": "analysis",
    "RepoLoad": "analysis",
    "analyze": "analysis",
    "find_cycles": "algorithms",
    "prepare_sweep": "sweepable",
    "graph_data": "graph",
    "render_mermaid": "graph",
    "render_dot": "graph",
    "render_text": "graph",
    "dry_run_document": "documents",
    "show_document": "documents",
    "list_plans": "listing",
    "strategy_estimate": "estimate",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from coordination.planner.algorithms import find_cycles
    from coordination.planner.analysis import Analysis, RepoLoad, analyze
    from coordination.planner.dag import (
        Blocker,
        PlanGraph,
        UnknownRef,
        build_plan_graph,
        require_plan,
    )
    from coordination.planner.documents import dry_run_document, show_document
    from coordination.planner.estimate import strategy_estimate
    from coordination.planner.listing import list_plans
    from coordination.planner.graph import graph_data, render_dot, render_mermaid, render_text
    from coordination.planner.sweepable import prepare_sweep
    from coordination.planner.validate import Finding, validate_plan


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
