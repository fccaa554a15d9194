"""The one dependency ordering of a set of repos: ``coord run --order deps``,
``for_each`` with ``deps: follow`` (so `plan sweep`'s levels), ``repo list --order``.

Which edges order: the catalog's ``dependencies:`` whose type is in ``order.by``
(default runtime, build, peer) and that are not ``indirect`` (Nx's and Turborepo's
``dependsOn``: a library's tests wait for what it imports, not for the linter it is
checked with). Edges pass through repos not selected (``web -> api -> db`` with api
left out still puts db before web).

A strongly connected set of selected repos (a cycle among ordering edges) is one
*group* (pnpm and Lerna run a cyclic workspace's members together): its repos run one
at a time, the first after everything any member depends on, everything that depends
on a member after the last. Inside it the ordering edges that close no cycle still
order: the edges among its members are taken strongest type first (runtime, build,
peer, optional, dev; one through unselected repos last), then by consumer and provider
name, each kept unless the ones kept already close a cycle with it; the members run in
a topological order of the kept edges (name order where they leave a choice), and the
edges dropped (``cycle_edges_dropped``) are the ones that close cycles (with
``--order-by runtime,dev``, a family's dev edges, never ``comparator -> diff``'s
runtime one). Each group gets a warning naming one cycle
through it in ``coord dep list``'s direction (consumer -> provider), each edge with its
id, type and ``file:line`` (its ``source``); ``order.cycles: error`` refuses (exit 2)
with the same text.

Pure: the catalog in, the order out. It lives in the catalog layer (not the planner)
because template expansion (:mod:`coordination.catalog.selection.templates`) orders ``deps:
follow`` instances with it. A command's ``--order-by``/``--cycles`` reach expansion
deep inside the sweep's planning through :func:`overriding` (a context variable set for
the command's duration) rather than through every signature in between.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coordination.catalog.enums import DependencyType
from coordination.errors import PlanError, UsageError

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Dependency, Order

CYCLES = ("group", "error")

#: ``--order-by``/``--cycles`` of the running command, over the catalog's ``order:``.
_OVERRIDE: ContextVar[Order | None] = ContextVar("coord_order_override", default=None)


def parse_types(text: str) -> list[DependencyType]:
    """``--order-by runtime,dev`` -> the types; an unknown one is a UsageError naming it."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    known = [t.value for t in DependencyType]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UsageError(f"--order-by {text!r}: unknown dependency type {', '.join(bad) or '(none)'}",
                         hint=f"a comma-separated list of {', '.join(known)} "
                         "(e.g. --order-by runtime,build,peer)")
    return [DependencyType(n) for n in dict.fromkeys(names)]


def effective(catalog: Catalog, by: Sequence[DependencyType] | str | None = None,
              cycles: str | None = None) -> Order:
    """The catalog's ``order:`` with what the command (its flags, or :func:`overriding`) says
    (of the catalog's own kind: a model, or a view of one, :mod:`coordination.catalog.reads.views`)."""
    base = _OVERRIDE.get() or catalog.order
    if isinstance(by, str):
        by = parse_types(by)
    if cycles is not None and cycles not in CYCLES:
        raise UsageError(f"--cycles {cycles!r}", hint="use group or error")
    return type(catalog.order)(by=list(by) if by is not None else list(base.by),
                               cycles="error" if (cycles or base.cycles) == "error" else "group")


@contextmanager
def overriding(catalog: Catalog, by: str | None, cycles: str | None) -> Iterator[Order]:
    """For the command's duration, every ordering (template expansion too) uses ``by``
    and ``cycles`` when given (``--order-by``, ``--cycles``) over the catalog's."""
    order = effective(catalog, by, cycles)
    token = _OVERRIDE.set(order if (by is not None or cycles is not None) else None)
    try:
        yield order
    finally:
        _OVERRIDE.reset(token)


@dataclass
class Ordering:
    """The run order of a selection.

    ``after``: repo -> the selected repos it runs after (a group chained in name order,
    transitively reduced); ``levels``: the groups by level (a level's groups sorted by
    their first name; a repo outside any cycle is a group of one); ``groups``: the
    cycles' groups (two repos or more); ``warnings``: one per group."""

    after: dict[str, list[str]]
    levels: list[list[list[str]]]
    groups: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The edges among a group's members dropped because they close a cycle (each:
    #: consumer, provider, and the catalog dependency's id and type when it is direct);
    #: the group runs in the order its other edges give.
    dropped: list[dict[str, str | None]] = field(default_factory=list)

    def run_order(self) -> list[str]:
        """Every repo in the order it runs: level, then group, a group's in name order."""
        return [r for level in self.levels for g in level for r in g]

    def group_of(self) -> dict[str, int]:
        """Repo -> the 1-based number of its cycle group (repos in none are absent)."""
        return {r: i for i, g in enumerate(self.groups, 1) for r in g}

    def level_of(self) -> dict[str, int]:
        """Repo -> the 0-based level of its group."""
        return {r: i for i, level in enumerate(self.levels) for g in level for r in g}


def ordering_edges(catalog: Catalog, by: Sequence[DependencyType]) -> dict[str, list[Dependency]]:
    """Consumer -> its dependencies that order (type in ``by``, not indirect), catalog order."""
    wanted = set(by)
    out: dict[str, list[Dependency]] = {}
    for d in catalog.coordination.dependencies:
        if d.type in wanted and not d.indirect and d.consumer != d.provider:
            out.setdefault(d.consumer, []).append(d)
    return out


def order_repos(catalog: Catalog, selected: Sequence[str], *,
                by: Sequence[DependencyType] | str | None = None,
                cycles: str | None = None, hint: str | None = None) -> Ordering:
    """The run order of ``selected`` (see the module). ``by``/``cycles`` over the
    catalog's ``order:``; with ``cycles: error`` a cycle is a PlanError (exit 2) whose
    message is the warnings' text and whose hint is ``hint`` (what the caller's
    command accepts) or a general one."""
    order = effective(catalog, by, cycles)
    edges = ordering_edges(catalog, order.by)
    providers = {c: [d.provider for d in ds] for c, ds in edges.items()}
    chosen = list(dict.fromkeys(selected))
    induced = _induced(providers, chosen)
    comps = _components(chosen, induced)
    comp_of = {r: i for i, members in enumerate(comps) for r in members}
    groups = [m for m in comps if len(m) > 1]
    named = [_cycle_text(edges, g) for g in groups]
    runs: list[list[str]] = []  # each component in the order its members run
    dropped: list[dict[str, str | None]] = []
    said: list[str] = []
    for members in comps:
        if len(members) == 1:
            runs.append(members)
            continue
        run, cut = _inside(members, induced, edges)
        runs.append(run)
        dropped.extend(cut)
        said.append(f"{', then '.join(run)} (the edges closing no cycle order them; "
                    f"dropped as closing one: {', '.join(_dropped_text(d) for d in cut)})")
    warnings = [f"{n}; they run as one group, one at a time: {how}"
                for n, how in zip(named, said)]
    if named and order.cycles == "error":
        raise PlanError(" | ".join(named), hint=hint or (
            "pass --cycles group to run each cycle as one group, one repo at a time "
            "(or set order: {cycles: group} in the catalog), or --order none"))
    # The groups' DAG, by level (Kahn by generations, each level sorted by first name).
    needs: dict[int, set[int]] = {i: set() for i in range(len(comps))}
    for r in chosen:
        for p in induced[r]:
            if comp_of[p] != comp_of[r]:
                needs[comp_of[r]].add(comp_of[p])
    levels_idx = _generations(needs, key=lambda i: comps[i][0])
    levels = [[runs[i] for i in lv] for lv in levels_idx]
    # Chained: a group's first member after the last member of every group it needs.
    raw: dict[str, set[str]] = {}
    for i, members in enumerate(runs):
        ext = {runs[j][-1] for j in needs[i]}
        raw[members[0]] = ext
        for a, b in zip(members, members[1:]):
            raw[b] = {a}
    flat = [r for lv in levels for g in lv for r in g]
    return Ordering(after=_reduced(flat, raw), levels=levels, groups=groups, warnings=warnings,
                    dropped=dropped)


#: How strongly an edge orders inside a cycle's group: the strongest kept first.
_STRENGTH = {"runtime": 0, "api": 0, "build": 1, "peer": 2, "optional": 3, "dev": 4,
             "test": 5}
_THROUGH = 9  # an edge through repos not selected: its types are several, kept last


def _inside(members: list[str], induced: Mapping[str, set[str]],
            edges: Mapping[str, list[Dependency]]
            ) -> tuple[list[str], list[dict[str, str | None]]]:
    """One cycle group: the order its members run in, and the edges dropped as closing
    a cycle (see the module). Greedy, strongest first: an edge is dropped when its
    provider already needs its consumer through the edges kept."""
    inside = set(members)
    direct: dict[tuple[str, str], Dependency] = {}
    for c in members:
        for d in edges.get(c, ()):
            if d.provider in inside:
                held = direct.get((c, d.provider))
                if held is None or _STRENGTH.get(d.type.value, 8) < _STRENGTH.get(
                        held.type.value, 8):
                    direct[(c, d.provider)] = d
    pairs = sorted(((c, p) for c in members for p in induced[c] if p in inside),
                   key=lambda e: (_STRENGTH.get(direct[e].type.value, 8) if e in direct
                                  else _THROUGH, e))
    kept: dict[str, set[str]] = {m: set() for m in members}  # consumer -> providers
    cut: list[dict[str, str | None]] = []
    for c, p in pairs:
        if _reaches(kept, p, c):
            dep = direct.get((c, p))
            cut.append({"consumer": c, "provider": p, "id": dep.id if dep else None,
                        "type": dep.type.value if dep else None})
        else:
            kept[c].add(p)
    # Kahn over the kept edges, providers first, name order among those ready.
    waiting = {m: len(kept[m]) for m in members}
    then: dict[str, list[str]] = {}
    for c, ps in kept.items():
        for p in ps:
            then.setdefault(p, []).append(c)
    ready = sorted(m for m in members if not waiting[m])
    run: list[str] = []
    while ready:
        n = ready.pop(0)
        run.append(n)
        for m in then.get(n, ()):
            waiting[m] -= 1
            if not waiting[m]:
                ready.append(m)
        ready.sort()
    assert len(run) == len(members), "the kept edges close no cycle"
    return run, cut


def _reaches(needs: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """Does ``start`` need ``goal`` through ``needs`` (itself included)?"""
    seen = {start}
    stack = [start]
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        for p in needs[n]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return False


def _dropped_text(d: Mapping[str, str | None]) -> str:
    what = f" ({d['id']} {d['type']})" if d["id"] else " (through repos not selected)"
    return f"{d['consumer']} -> {d['provider']}{what}"


def _induced(providers: Mapping[str, Sequence[str]], selected: Sequence[str]
             ) -> dict[str, set[str]]:
    """Selected repo -> the selected repos it depends on, directly or through unselected ones."""
    keep = set(selected)
    return {s: {p for p in reachable(providers, s, through=lambda p: p not in keep)
                if p in keep and p != s}
            for s in selected}


def reachable(edges: Mapping[str, Iterable[str]], start: str,
              through: Callable[[str], bool] = lambda _: True) -> set[str]:
    """Every node an edge path from ``start`` reaches (``start`` itself only by a cycle),
    in a graph given as node -> the nodes its edges go to; a path goes on past a node
    only where ``through`` says so."""
    seen: set[str] = set()
    stack = list(edges.get(start, ()))
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if through(n):
            stack.extend(edges.get(n, ()))
    return seen


def _components(nodes: Sequence[str], after: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative), each sorted by name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(after[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(after[nxt]))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def _generations(needs: Mapping[int, set[int]], key: Callable[[int], str]) -> list[list[int]]:
    waiting = {n: len(ps) for n, ps in needs.items()}
    then: dict[int, list[int]] = {}
    for n, ps in needs.items():
        for p in ps:
            then.setdefault(p, []).append(n)
    level = [n for n, w in waiting.items() if not w]
    out: list[list[int]] = []
    while level:
        out.append(sorted(level, key=key))
        nxt: list[int] = []
        for n in level:
            for m in then.get(n, ()):
                waiting[m] -= 1
                if not waiting[m]:
                    nxt.append(m)
        level = nxt
    assert sum(map(len, out)) == len(needs), "the components' graph has no cycle"
    return out


def _reduced(order: Sequence[str], after: Mapping[str, set[str]]) -> dict[str, list[str]]:
    """``after`` transitively reduced (``order`` is a topological order of it): one
    big-int OR per edge."""
    index = {n: i for i, n in enumerate(order)}
    reach: dict[str, int] = {}
    out: dict[str, list[str]] = {}
    for n in order:
        below = direct = 0
        for p in after[n]:
            below |= reach[p]
            direct |= 1 << index[p]
        reach[n] = below | direct
        out[n] = sorted(p for p in after[n] if not (below >> index[p]) & 1)
    return out


def _edge_text(d: Dependency) -> str:
    where = f", {d.source.file}:{d.source.line}" if d.source is not None else ""
    return f"{d.consumer} -> {d.provider} ({d.id} {d.type.value}{where})"


def _cycle_text(edges: Mapping[str, list[Dependency]], group: list[str]) -> str:
    """What names one group's cycle: its repos, and the shortest cycle through its first
    repo along ordering edges (through unselected repos too), consumer -> provider; then,
    for each member that cycle does not pass through, the shortest one through it
    (``and through lib-b: ...``), so that every member's place in the group is said."""
    members = set(group)
    path = _shortest_cycle(edges, group[0], members)
    covered = {d.consumer for d in path} | {d.provider for d in path}
    shown = ["; ".join(_edge_text(d) for d in path)]
    for member in group[1:]:
        if member in covered:
            continue
        more = _shortest_cycle(edges, member, members)
        covered |= {d.consumer for d in more} | {d.provider for d in more}
        shown.append(f"and through {member}: " + "; ".join(_edge_text(d) for d in more))
    return f"dependency cycle among {', '.join(group)}: {'; '.join(shown)}"


def _shortest_cycle(edges: Mapping[str, list[Dependency]], start: str, group: set[str]
                    ) -> list[Dependency]:
    """The shortest consumer -> provider path from ``start`` back to it (BFS, edges in
    catalog order), preferring one that stays among ``group``."""
    for allowed in (group, None):
        came: dict[str, Dependency] = {}
        queue = deque([start])
        while queue:
            n = queue.popleft()
            for d in edges.get(n, ()):
                p = d.provider
                if allowed is not None and p not in allowed:
                    continue
                if p == start:
                    path = [d]
                    while path[0].consumer != start:
                        path.insert(0, came[path[0].consumer])
                    return path
                if p not in came:
                    came[p] = d
                    queue.append(p)
    raise AssertionError("a group of a cycle always closes one")


__all__ = ["CYCLES", "Ordering", "effective", "order_repos", "ordering_edges", "overriding",
           "parse_types"]
