"""A plan as a DAG: its todos as nodes, ``blocked_by``/``blocking`` as edges.

Edges run from the blocker to the blocked todo (pred -> succ), so a
topological order is an execution order. Only relations *between the plan's
todos* become edges; a blocker outside the plan is either satisfied (a
completed todo, a resolved or closed issue) or recorded as a :class:`Blocker`
that stops a sweep unless the user says ``--ignore-blockers``.

References to ids the catalog does not hold are kept on the side
(``unknown_refs``) rather than raised: a loaded catalog has already refused
them, but library callers may hand us a catalog built in memory, and
validation wants to report every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import TYPE_CHECKING, TypedDict

from coordination.catalog.enums import IssueStatus, TodoStatus
from coordination.errors import NotFoundError
from coordination.planner.digraph import DiGraph

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Todo

_SATISFIED_ISSUE = (IssueStatus.resolved, IssueStatus.closed)


class BlockerDict(TypedDict):
    todo: str
    blocker: str
    reason: str


@dataclass(frozen=True)
class Blocker:
    """One unsatisfied blocker outside the plan (or a completed-excluded one)."""

    todo_id: str
    blocker_id: str
    reason: str

    def to_dict(self) -> BlockerDict:
        return {"todo": self.todo_id, "blocker": self.blocker_id, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.todo_id} is blocked by {self.blocker_id}: {self.reason}"


@dataclass(frozen=True)
class UnknownRef:
    """A reference to an id the catalog does not hold (``field`` says where)."""

    source: str  # the todo or milestone that names it
    ref: str
    field: str  # "blocked_by", "blocking" or "milestones"


@dataclass
class PlanGraph:
    """A plan's DAG plus what did not become part of it.

    ``graph`` nodes are todo ids with the :class:`Todo` in the ``todo``
    attribute; it may hold cycles (validation reports them, analysis refuses
    them).
    """

    plan_id: str
    graph: DiGraph
    skipped_completed: list[str] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    unknown_refs: list[UnknownRef] = field(default_factory=list)

    def todo(self, todo_id: str) -> Todo:
        return self.graph.nodes[todo_id]["todo"]  # type: ignore[no-any-return]

    @property
    def todo_ids(self) -> list[str]:
        return list(self.graph.nodes)


def require_plan(catalog: Catalog, plan_id: str) -> None:
    """Raise :class:`NotFoundError` naming close matches when the plan is unknown."""
    if catalog.plan(plan_id) is not None:
        return
    known = sorted(p.id for p in catalog.coordination.plans)
    close = get_close_matches(plan_id, known, n=1)
    hint = f"did you mean {close[0]}?" if close else "see `coord plan list`"
    raise NotFoundError(f"unknown plan {plan_id!r}", hint=hint)


def build_plan_graph(
    catalog: Catalog, plan_id: str, *, include_completed: bool = False
) -> PlanGraph:
    """The plan's DAG; completed todos are left out unless ``include_completed``."""
    require_plan(catalog, plan_id)
    plan = catalog.plan(plan_id)
    assert plan is not None
    todos = catalog.plan_todos(plan_id)
    pg = PlanGraph(plan_id=plan_id, graph=DiGraph())
    in_plan = {t.id for t in todos}
    nodes: dict[str, Todo] = {}
    for t in todos:
        if t.status == TodoStatus.completed and not include_completed:
            pg.skipped_completed.append(t.id)
        else:
            nodes[t.id] = t
    g = pg.graph
    g.add_nodes_from((tid, {"todo": t}) for tid, t in nodes.items())

    for ms in plan.milestones:
        for ref in ms.todos:
            if catalog.todo(ref) is None:
                pg.unknown_refs.append(UnknownRef(ms.id, ref, "milestones"))

    edges: list[tuple[str, str]] = []
    for tid, t in nodes.items():
        for ref in t.blocked_by:
            if ref in nodes:
                edges.append((ref, tid))
            elif ref in in_plan:
                continue  # a completed todo of this plan: satisfied
            else:
                reason = _outside_reason(catalog, ref)
                if reason == "unknown":
                    pg.unknown_refs.append(UnknownRef(tid, ref, "blocked_by"))
                elif reason is not None:
                    pg.blockers.append(Blocker(tid, ref, reason))
        for ref in t.blocking:
            if ref in nodes:
                edges.append((tid, ref))
            elif catalog.todo(ref) is None:
                pg.unknown_refs.append(UnknownRef(tid, ref, "blocking"))
            # blocking a todo outside the plan does not constrain this plan
    g.add_edges_from(edges)  # the two sides of one relation collapse into one edge
    return pg


def todo_blockers(catalog: Catalog, todo_id: str) -> list[Blocker]:
    """What still blocks one todo run on its own: every ``blocked_by`` that is not a
    completed todo or a resolved/closed issue (an unknown id blocks too)."""
    todo = catalog.todo(todo_id)
    if todo is None:
        return []
    out = []
    for ref in todo.blocked_by:
        reason = _outside_reason(catalog, ref)
        if reason is not None:
            out.append(Blocker(todo_id, ref, "not in the catalog" if reason == "unknown" else reason))
    return out


def _outside_reason(catalog: Catalog, ref: str) -> str | None:
    """Why ``ref`` (outside the plan) still blocks; None when satisfied, 'unknown'."""
    if ref.startswith("ISSUE-"):
        issue = catalog.issue(ref)
        if issue is None:
            return "unknown"
        if issue.status in _SATISFIED_ISSUE:
            return None
        return f"issue is {issue.status.value}, not resolved or closed"
    other = catalog.todo(ref)
    if other is None:
        return "unknown"
    if other.status == TodoStatus.completed:
        return None
    where = f" (plan {other.plan})" if other.plan else " (no plan)"
    return f"todo{where} is {other.status.value}, not completed"
