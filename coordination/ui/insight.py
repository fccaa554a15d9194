"""The web view's documents across repos: issues, the dependency graph, trends.

``/api/issues``: every cross-repo issue of the catalog with the todos it blocks (a
todo's ``blocked_by`` naming the issue: the work waiting on it) and those todos' plans.
``/api/dependencies``: the inter-repo dependency graph as the catalog holds it (``coord
dep list --json``'s entries as edges, each with its ``type``), laid out for drawing:
providers to the left of their consumers, each edge's path routed between the boxes
(:mod:`coordination.ui.layered`). ``/api/trends``: ``coord history trends
--json``, the same document.

Everything here reads the catalog file or the history; nothing runs a command in a
repository (``dep check`` is the CLI's), so an unauthenticated GET costs a read only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from coordination.catalog.models import Catalog, IssueStatus
from coordination.errors import UsageError
from coordination.history.trends import Trends, trends_document
from coordination.runtime.history import HistoryStore
from coordination.ui.layered import chains, curve, is_dummy, loop, middle, order

#: Room a repo's box takes in the drawing (px), the gaps between them, the margins, and
#: the slot a dependency that skips columns takes in each column it crosses.
NODE_W, NODE_H, GAP_X, GAP_Y, PAD, TOP, DUMMY_H = 150, 28, 90, 18, 12, 16, 10


class IssueTodo(TypedDict):
    id: str
    task: str
    repo: str
    status: str
    plan: str | None


class IssuePlan(TypedDict):
    id: str
    title: str
    status: str


class IssueEntry(TypedDict):
    id: str
    title: str
    status: str
    priority: str
    severity: str
    repos: list[str]
    assignee: str | None
    labels: list[str]
    target: str | None
    dependencies: list[str]
    blocking: list[str]
    todos: list[IssueTodo]
    plans: list[IssuePlan]


def issues(catalog: Catalog, *, status: str | None = None) -> list[IssueEntry]:
    """Every issue (or those of ``status``), in catalog order, with the todos blocked by
    it and their plans."""
    if status is not None and status not in {s.value for s in IssueStatus}:
        raise UsageError(f"unknown issue status {status[:40]!r}",
                         hint="one of " + ", ".join(s.value for s in IssueStatus))
    plans = {p.id: p for p in catalog.coordination.plans}
    out: list[IssueEntry] = []
    for i in catalog.coordination.issues:
        if status is not None and i.status.value != status:
            continue
        todos: list[IssueTodo] = [
            {"id": t.id, "task": t.task, "repo": t.repo, "status": t.status.value, "plan": t.plan}
            for t in catalog.coordination.todos if i.id in t.blocked_by]
        plan_ids = sorted({t["plan"] for t in todos if t["plan"]})
        out.append({
            "id": i.id, "title": i.title, "status": i.status.value,
            "priority": i.priority.value, "severity": i.severity, "repos": list(i.repos),
            "assignee": i.assignee, "labels": list(i.labels),
            "target": i.target.isoformat() if i.target else None,
            "dependencies": list(i.dependencies), "blocking": list(i.blocking),
            "todos": todos,
            "plans": [{"id": p, "title": plans[p].title, "status": plans[p].status.value}
                      for p in plan_ids if p in plans]})
    return out


class DepNode(TypedDict):
    repo: str
    level: int
    x: int
    y: int


class DepEdge(TypedDict):
    id: str
    consumer: str
    provider: str
    type: str
    indirect: bool
    ordering: bool  # its type is one of ``order.by`` and it is not indirect
    status: str
    version_constraint: str | None
    d: str  # its SVG path, provider to consumer (ui/layered.py: never under a box)
    label: list[float]  # where its type is written


class DepGraph(TypedDict):
    """``/api/dependencies``: repos (every repo of the catalog), edges (provider ->
    consumer, each with its type), and where to draw them."""

    nodes: list[DepNode]
    edges: list[DepEdge]
    types: list[str]
    width: int
    height: int
    node_w: int
    node_h: int


def dependencies(catalog: Catalog) -> DepGraph:
    names = [r.name for r in catalog.repos]
    deps = catalog.coordination.dependencies
    for d in deps:  # (the catalog's checks keep these known; a hand edit may not)
        for name in (d.consumer, d.provider):
            if name not in names:
                names.append(name)
    # Columns follow the dependencies, providers left of their consumers: those that
    # order work (``order.by``) first, then the others (never indirect ones); a cycle is
    # cut at its weakest edge (a peer edge before a runtime or build edge it meets, a
    # dependency that orders nothing before either).
    ordering = {t.value for t in catalog.order.by}
    strong: dict[str, set[str]] = {n: set() for n in names}
    weak: dict[str, set[str]] = {n: set() for n in names}
    loose: dict[str, set[str]] = {n: set() for n in names}
    for d in deps:
        if d.consumer == d.provider or d.indirect:
            continue
        if d.type.value not in ordering:
            loose[d.consumer].add(d.provider)
        else:
            (weak if d.type.value == "peer" else strong)[d.consumer].add(d.provider)
    level = _levels(names, strong, weak, loose)
    # Each edge oriented left to right for the layout (a cut cycle's edge is drawn
    # right to left; two repos of one column, by a loop in the gap on their right).
    pairs: list[tuple[str, str]] = []
    for d in deps:
        p, c = d.provider, d.consumer
        if level[c] != level[p]:
            pairs.append((p, c) if level[c] > level[p] else (c, p))
    chain_list, dummies = chains(level, pairs)
    columns: list[list[str]] = [[] for _ in range(max(level.values(), default=0) + 1)]
    for n in sorted(names):
        columns[level[n]].append(n)
    for dummy, col in dummies.items():
        columns[col].append(dummy)
    cols = order(columns, chain_list)
    y_of: dict[str, int] = {}
    tallest = 0
    for stack in cols:
        y = TOP
        for n in stack:
            y_of[n] = y
            y += (DUMMY_H if is_dummy(n) else NODE_H) + GAP_Y
        tallest = max(tallest, y - TOP)

    def x_of(col: int) -> int:
        return PAD + col * (NODE_W + GAP_X)

    nodes: list[DepNode] = [{"repo": n, "level": i, "x": x_of(i), "y": y_of[n]}
                            for i, stack in enumerate(cols) for n in stack if not is_dummy(n)]
    chain_of = dict(zip(pairs, chain_list))
    loops: dict[int, int] = {}
    edges: list[DepEdge] = []
    for d in deps:
        p, c = d.provider, d.consumer
        if level[c] == level[p]:
            k = loops.get(level[p], 0)
            loops[level[p]] = k + 1
            bulge = min(GAP_X - 12, 18 + 10 * k)
            x = x_of(level[p]) + NODE_W
            path = loop(x, y_of[p] + NODE_H / 2, y_of[c] + NODE_H / 2, bulge)
            at = (x + bulge * 0.75, (y_of[p] + y_of[c] + NODE_H) / 2)
        else:
            path, at = _route(chain_of[(p, c) if level[c] > level[p] else (c, p)],
                              level[c] < level[p], level, dummies, y_of, x_of)
        edges.append({
            "id": d.id, "consumer": c, "provider": p, "type": d.type.value,
            "indirect": d.indirect, "ordering": d.type.value in ordering and not d.indirect,
            "status": d.status.value, "version_constraint": d.version_constraint,
            "d": path, "label": [round(at[0], 1), round(at[1], 1)]})
    width = PAD * 2 + len(cols) * (NODE_W + GAP_X)
    height = TOP + PAD + max(tallest, NODE_H)
    return {"nodes": nodes, "edges": edges, "types": sorted({e["type"] for e in edges}),
            "width": width, "height": height, "node_w": NODE_W, "node_h": NODE_H}


def _route(chain: list[str], backwards: bool, level: dict[str, int], dummies: dict[str, int],
           y_of: dict[str, int], x_of: Callable[[int], int]
           ) -> tuple[str, tuple[float, float]]:
    """An edge's path along its chain (left to right), drawn from the provider: a cut
    cycle's edge (``backwards``) leaves its provider on the left and enters its consumer
    from the right. Its path and its label's point."""
    def mid(n: str) -> float:
        return y_of[n] + (DUMMY_H if is_dummy(n) else NODE_H) / 2

    def col(n: str) -> int:
        return dummies[n] if is_dummy(n) else level[n]

    points: list[tuple[float, float]] = [(x_of(col(chain[0])) + NODE_W, mid(chain[0]))]
    for dummy in chain[1:-1]:
        points += [(x_of(col(dummy)), mid(dummy)), (x_of(col(dummy)) + NODE_W, mid(dummy))]
    points.append((x_of(col(chain[-1])), mid(chain[-1])))
    if backwards:
        points.reverse()
    return curve(points), middle(points)


def _levels(names: list[str], strong: dict[str, set[str]], weak: dict[str, set[str]],
            loose: dict[str, set[str]]) -> dict[str, int]:
    """A repo's column: 0 without providers, else one past its furthest provider.

    Cycles are cut first, at their weakest edge: edges are kept class by class, strong
    (runtime, build...) before weak (peer) before loose (those that order no work), each
    unless it closes a cycle with those kept already (then it is drawn right to left).
    So a cycle a peer or loose edge closes is cut there, never at a strong edge."""
    return _longest(names, _acyclic(sorted(names), [strong, weak, loose]))


def _acyclic(order: list[str], edges: list[dict[str, set[str]]]) -> dict[str, set[str]]:
    """``edges`` (repo -> its providers, the strongest map first), kept edge by edge in
    that order unless it would close a cycle: what is kept has none."""
    kept: dict[str, set[str]] = {n: set() for n in order}

    def reaches(a: str, b: str) -> bool:  # a -> ... -> b along kept edges
        seen, stack = {a}, [a]
        while stack:
            n = stack.pop()
            if n == b:
                return True
            for m in kept[n] - seen:
                seen.add(m)
                stack.append(m)
        return False

    for e in edges:
        for n in order:
            for p in sorted(e[n]):
                if p != n and p not in kept[n] and not reaches(p, n):
                    kept[n].add(p)
    return kept


def _longest(names: list[str], providers: dict[str, set[str]]) -> dict[str, int]:
    """Longest chain of providers below each repo (``providers`` has no cycle)."""
    level: dict[str, int] = {}

    def depth(n: str) -> int:
        if n not in level:
            level[n] = max((depth(p) + 1 for p in providers[n]), default=0)
        return level[n]

    for n in names:
        depth(n)
    return level


def trends(history: Callable[[], HistoryStore], days_text: str | None) -> Trends:
    """``coord history trends --json`` over ``?days=`` (30 when absent)."""
    if not days_text:
        return trends_document(history=history, days=30.0)
    try:
        days = float(days_text)
    except ValueError:
        raise UsageError(f"days must be a number, not {days_text[:40]!r}") from None
    return trends_document(history=history, days=days)
