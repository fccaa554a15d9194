"""Todos of a plan that can never run, and why (`plan validate`'s ``unreachable``).

A todo can never run when something it waits for never ends ``completed``: a todo
outside the plan that ended ``failed``, ``skipped`` or ``blocked`` (no sweep of this
plan runs it again), an id the catalog no longer holds (deleted), a cycle; and,
transitively, every todo behind one of those, inside the plan or outside it (a
pending todo of another plan behind a failed one is as dead as the failed one).

Each unreachable todo gets its chain: one step per todo walked, from itself to the
root cause, each ``{"id", "reason"}``. Linear in todos and edges (pure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from coordination.catalog.enums import TodoStatus
from coordination.planner.dag import PlanGraph

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Todo

#: Statuses of a todo outside the plan that never turn ``completed`` by themselves.
DEAD_STATUSES = (TodoStatus.failed, TodoStatus.skipped, TodoStatus.blocked)

#: Steps a chain keeps: its first ones and its root cause (the middle counted).
MAX_CHAIN = 20


class Step(TypedDict):
    id: str
    reason: str


Chain = list[Step]


def _where(todo: Todo) -> str:
    return f" (plan {todo.plan})" if todo.plan else " (no plan)"


class _Outside:
    """Whether a todo or issue outside the plan never completes, memoised over the
    catalog (many todos of a plan share one dead blocker)."""

    def __init__(self, catalog: Catalog, plan_nodes: set[str]) -> None:
        self.catalog = catalog
        self.plan_nodes = plan_nodes
        self.memo: dict[str, Chain | None] = {}
        self._blocking: dict[str, list[str]] | None = None

    def blockers(self, todo: Todo) -> list[str]:
        """What a todo waits for: its ``blocked_by`` and the todos whose ``blocking``
        names it (the same edge seen from the other end)."""
        if self._blocking is None:
            self._blocking = {}
            for t in self.catalog.coordination.todos:
                for b in t.blocking:
                    self._blocking.setdefault(b, []).append(t.id)
        return [*todo.blocked_by, *self._blocking.get(todo.id, ())]

    def dead(self, ref: str) -> Chain | None:
        """The chain by which ``ref`` never completes; None when it may. Walked without
        recursion (a chain of 10,000 pending todos); a cycle among todos outside the
        plan counts as dead too, named."""
        if ref in self.memo:
            return self.memo[ref]
        stack = [ref]
        on_stack: dict[str, int] = {}
        while stack:
            cur = stack[-1]
            if cur in self.memo:
                stack.pop()
                continue
            on_stack.setdefault(cur, len(on_stack))
            decided, own = self._own(cur)
            if decided:
                self.memo[cur] = own
                stack.pop()
                continue
            todo = self.catalog.todo(cur)
            assert todo is not None
            waiting = [b for b in self.blockers(todo) if b not in self.plan_nodes]
            pushed = False
            found: Chain | None = None
            for b in waiting:
                if b in self.memo:
                    if self.memo[b] is not None and found is None:
                        found = [{"id": cur, "reason": f"todo{_where(todo)} is "
                                  f"{todo.status.value} and waits for {b}"}, *(self.memo[b] or [])]
                    continue
                if b in on_stack:  # a cycle among todos outside the plan
                    found = found or [{"id": cur, "reason": f"todo{_where(todo)} is on a "
                                       f"cycle through {b}"}]
                    continue
                stack.append(b)
                pushed = True
                break
            if pushed:
                continue
            self.memo[cur] = found
            stack.pop()
        return self.memo[ref]

    def _own(self, ref: str) -> tuple[bool, Chain | None]:
        """``(True, verdict)``: ``ref``'s own (a chain, or None: it may complete);
        ``(False, None)``: it waits on its blockers' verdicts."""
        if ref.startswith("ISSUE-"):
            if self.catalog.issue(ref) is None:
                return True, [{"id": ref, "reason": "issue not in the catalog (deleted?)"}]
            return True, None  # open: someone may resolve it (the `blocked` finding says so)
        todo = self.catalog.todo(ref)
        if todo is None:
            return True, [{"id": ref, "reason": "not in the catalog (deleted?)"}]
        if todo.status == TodoStatus.completed:
            return True, None
        if todo.status in DEAD_STATUSES:
            return True, [{"id": ref, "reason": f"todo{_where(todo)} is {todo.status.value}, "
                           "and no sweep of this plan runs it"}]
        return False, None


def unreachable(catalog: Catalog, pg: PlanGraph) -> dict[str, Chain]:
    """Todo of the plan's graph -> the chain by which it can never run (absent: it can),
    in a topological order of the plan (then the todos on or behind a cycle)."""
    g = pg.graph
    nodes = set(g.nodes)
    in_plan = {t.id for t in catalog.plan_todos(pg.plan_id)}
    outside = _Outside(catalog, nodes)
    pred = g._pred  # adjacency dicts: no view object per node
    waiting = {v: len(pred[v]) for v in g.nodes}
    order = [v for v, n in waiting.items() if not n]
    for v in order:  # Kahn's walk: grows while it is walked
        for s in g._succ[v]:
            waiting[s] -= 1
            if not waiting[s]:
                order.append(s)
    out: dict[str, Chain] = {}
    for v in order:
        chain: Chain | None = None
        for ref in pg.todo(v).blocked_by:
            if ref in nodes or (ref in in_plan and catalog.todo(ref) is not None):
                continue  # an edge of the plan, or a completed todo of it (satisfied)
            got = outside.dead(ref)
            if got is not None:
                chain = [{"id": v, "reason": f"waits for {ref}"}, *got]
                break
        if chain is None:
            for p in sorted(pred[v]):
                if p in out:
                    chain = [{"id": v, "reason": f"waits for {p}"}, *out[p]]
                    break
        if chain is not None:
            out[v] = chain
    done = set(order)
    for v in g.nodes:  # left by the walk: on a cycle, or behind one
        if v in done:
            continue
        chain, seen, cur = [], {}, v
        while cur not in seen:
            seen[cur] = len(chain)
            nxt = min(p for p in pred[cur] if p not in done)
            chain.append({"id": cur, "reason": f"waits for {nxt}"})
            cur = nxt
        loop = [s["id"] for s in chain[seen[cur]:]]
        chain = chain[:seen[cur]] + [{"id": cur, "reason": "is on the cycle "
                                      + " -> ".join([*reversed(loop), loop[-1]])}]
        out[v] = chain
    return {v: _cut(c) for v, c in out.items()}


def _cut(chain: Chain) -> Chain:
    """A chain of at most :data:`MAX_CHAIN` steps: its first ones, a step counting
    those left out, and its last (the root cause)."""
    if len(chain) <= MAX_CHAIN:
        return chain
    head, tail = chain[:MAX_CHAIN - 3], chain[-2:]
    left = len(chain) - len(head) - len(tail)
    return [*head, {"id": "...", "reason": f"{left:,} more step(s)"}, *tail]


def describe(todo_id: str, chain: Chain) -> str:
    """One line: the todo, then each step of its chain to the root cause."""
    steps = [f"{s['id']} {s['reason']}" for s in chain[1:]]
    first = chain[0]["reason"] if chain and chain[0]["id"] == todo_id else ""
    text = f"{todo_id} can never run: {first}" if first else f"{todo_id} can never run"
    return "; ".join([text, *steps])
