"""Plan validation: every problem at once, each naming the ids involved.

Errors stop a sweep (and make ``coord plan validate`` exit 1); warnings are
advice. Codes are stable strings scripts can match on:

    error    cycle             a blocked_by cycle, with its full path
    error    cycles-truncated  more tangles than reported
    error    unknown-id        a blocked_by/blocking/milestone id the catalog lacks
    error    unknown-repo      a todo whose repo is not in the catalog
    error    no-run            a todo without a run command (nor a gate:)
    error    gate-with-run     a todo with both gate: and run: (a gate runs nothing)
    error    wave-unplaced     a todo of a plan with waves: that no wave names
    error    wave-order        a todo waits for a todo of a later wave
    error    blocked           a blocker outside the plan is unsatisfied
                               (a warning with ignore_blockers=True)
    error    unreachable       a todo that can never run, with its ``chain`` of reasons
                               to the root cause: behind a failed/skipped/blocked todo
                               outside the plan, a deleted id, a cycle, transitively
                               (a warning with ignore_blockers=True; :mod:`.reach`)
    error    landing           a change that could never land: a repo landing before
                               its provider's wave, in no wave, a cycle among its repos,
                               land: command without a land_command (the checks its
                               landing makes, :func:`coordination.planner.landing.landing`)
    warning  redundant-edge    an edge as written in the catalog implied by a longer
                               path (an edge a template's expansion made is not named
                               unless every edge its reference made is implied)
    warning  verify-early      a verify todo of a change that can start before every
                               commit todo of it has finished: it verifies candidates
                               that change after it, so the change never lands
    warning  repo-placeholder  ``{repo}`` in a run:/undo: (it is replaced in commit:
                               messages only; the command gets $COORD_REPO)
    warning  redundancy-skipped the plan is too big for the redundant-edge check
    warning  milestone-other-plan  a todo of this plan sits in another plan's milestone
    warning  empty-plan        nothing left to run
    warning  checkout-outside  a repo's relative checkout path climbs out of the
                               catalog's directory (``../../etc``)
    warning  gate-self-declared  a gate with ``from:`` or ``approvals`` > 1 in a catalog
                               without ``approvers:``: anyone approves it under any name
                               (COORD_USER); ``coord doctor`` calls it a problem and
                               COORD_REQUIRE_APPROVERS=1 refuses to start its sweep
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from coordination.catalog.selection.templates import MAX_CROSS_EDGES, SAME, split_instance
from coordination.errors import PlanError
from coordination.names import some
from coordination.planner.algorithms import (
    REDUNDANCY_MAX_NODES,
    find_cycles,
    redundant_edges,
    topological_levels,
)
from coordination.planner.dag import PlanGraph, build_plan_graph
from coordination.planner.landing import landing
from coordination.planner.reach import Chain, Step, describe, unreachable
from coordination.planner.digraph import DiGraph, is_directed_acyclic_graph
from coordination.planner.waves import assign, backward_edges, sweep_waves, wave_name

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Plan

Severity = Literal["error", "warning"]


class FindingDict(TypedDict):
    severity: Severity
    code: str
    message: str
    ids: list[str]
    #: ``unreachable`` only: each step from the todo to the root cause
    chain: NotRequired[Chain]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    message: str
    ids: list[str] = field(default_factory=list)
    chain: Chain = field(default_factory=list)

    def to_dict(self) -> FindingDict:
        out: FindingDict = {"severity": self.severity, "code": self.code,
                            "message": self.message, "ids": list(self.ids)}
        if self.chain:
            out["chain"] = [Step(id=s["id"], reason=s["reason"]) for s in self.chain]
        return out

    def __str__(self) -> str:
        return f"{self.severity}: [{self.code}] {self.message}"


def validate_plan(
    catalog: Catalog,
    plan_id: str,
    *,
    include_completed: bool = False,
    ignore_blockers: bool = False,
    max_cycles: int = 20,
    pg: PlanGraph | None = None,
    advice: bool = True,
    written: Catalog | None = None,
) -> list[Finding]:
    """All findings of one plan, errors first; pass ``pg`` to reuse a built graph.

    ``advice=False`` skips the warning-only checks (redundant edges, other
    milestones), which a sweep does not need. ``written``: the catalog as written,
    when ``catalog`` is its expansion (:func:`coordination.catalog.selection.templates.expand`):
    advice names what the catalog says, not the edges its templates expanded to.
    """
    if pg is None:
        pg = build_plan_graph(catalog, plan_id, include_completed=include_completed)
    g = pg.graph
    cycles, tangles = find_cycles(g, limit=max_cycles) if _has_cycle(g) else ([], 0)
    out = [*_cycle_findings(cycles, tangles), *_unknown_refs(pg), *_todo_findings(catalog, g)]
    plan = catalog.plan(plan_id)
    if plan is not None and sweep_waves(plan):  # a per-wave change's: change_of checks them
        out.extend(_wave_findings(catalog, plan_id, plan, g))
    if plan is not None and plan.change is not None:
        out.extend(_landing(catalog, plan_id))
    severity: Severity = "warning" if ignore_blockers else "error"
    out.extend(Finding(severity, "blocked", str(b), [b.todo_id, b.blocker_id])
               for b in pg.blockers)
    if advice or not ignore_blockers:  # (a sweep's own check: what `blocked` says is enough)
        out.extend(_unreachable(catalog, pg, severity))
    if advice:
        out.extend(_advice(catalog, plan_id, pg, written, cycles=bool(cycles)))
    if g.number_of_nodes() == 0:
        out.append(Finding("warning", "empty-plan",
                           f"plan {plan_id} has no todo left to run "
                           f"({len(pg.skipped_completed)} completed)"))
    out.sort(key=lambda f: 0 if f.severity == "error" else 1)  # stable: keeps code order
    return out


def _cycle_findings(cycles: list[list[str]], tangles: int) -> list[Finding]:
    out = [Finding("error", "cycle", "cycle: " + " -> ".join([*c, c[0]]), list(c))
           for c in cycles]
    if tangles > len(cycles):
        out.append(Finding("error", "cycles-truncated",
                           f"{tangles - len(cycles)} more cycle(s) not shown "
                           f"(showing {len(cycles)} of {tangles})"))
    return out


def _unknown_refs(pg: PlanGraph) -> list[Finding]:
    return [Finding("error", "unknown-id",
                    f"{u.source}.{u.field} names {u.ref}, which is not in the catalog",
                    [u.source, u.ref]) for u in pg.unknown_refs]


def _todo_findings(catalog: Catalog, g: DiGraph) -> list[Finding]:
    """Each todo's own errors: a repo the catalog lacks, a gate with a command, no command."""
    out = []
    for tid in g.nodes:
        todo = g.nodes[tid]["todo"]
        if catalog.repo(todo.repo) is None:
            out.append(Finding("error", "unknown-repo",
                               f"{tid} runs in repo {todo.repo!r}, which is not in the catalog",
                               [tid]))
        if todo.gate is not None:
            if (todo.run or "").strip():
                out.append(Finding("error", "gate-with-run",
                                   f"{tid} has both gate: and run:; a gate runs nothing "
                                   "(put the command in a todo it blocks)", [tid]))
        elif not (todo.run or "").strip():
            out.append(Finding("error", "no-run",
                               f"{tid} has no run command; add `run:` or complete it by hand",
                               [tid]))
    return out


def _wave_findings(catalog: Catalog, plan_id: str, plan: Plan, g: DiGraph) -> list[Finding]:
    wave_of, unplaced = assign(catalog, plan, list(g.nodes))
    out = [Finding("error", "wave-unplaced",
                   f"{tid} (repo {g.nodes[tid]['todo'].repo}) is in no wave of "
                   f"{plan_id}; name its repo or a tag of it in a wave", [tid])
           for tid in unplaced]
    for blocker, todo_id in backward_edges(g, wave_of):
        out.append(Finding("error", "wave-order",
                           f"{todo_id} (wave {wave_name(plan, wave_of[todo_id])}) waits for "
                           f"{blocker} of a later wave ({wave_name(plan, wave_of[blocker])}); "
                           "reorder the waves or the edge", [todo_id, blocker]))
    return out


def _unreachable(catalog: Catalog, pg: PlanGraph, severity: Severity) -> list[Finding]:
    return [Finding(severity, "unreachable", describe(tid, chain),
                    list(dict.fromkeys([tid, *(s["id"] for s in chain if s["id"] != "...")])),
                    chain=chain)
            for tid, chain in unreachable(catalog, pg).items()]


def _advice(catalog: Catalog, plan_id: str, pg: PlanGraph, written: Catalog | None, *,
            cycles: bool) -> list[Finding]:
    """The warning-only checks, which a sweep does not need."""
    out = [] if cycles else _redundancy(pg, written or catalog)
    out.extend(_other_milestones(catalog, pg))
    out.extend(_checkouts_outside(catalog, pg))
    out.extend(Finding("warning", "gate-self-declared", f"{tid}: {why}; {APPROVERS_FIX}",
                       [tid]) for tid, why in unproven_gates(catalog, pg.graph.nodes))
    out.extend(_change_fields_outside_a_change(catalog, plan_id, pg))
    out.extend(sweep_advice(catalog, plan_id, pg, written=written, cycles=cycles))
    return out


def _has_cycle(g: DiGraph) -> bool:
    return not is_directed_acyclic_graph(g)


def _landing(catalog: Catalog, plan_id: str) -> list[Finding]:
    """A change's plan that its landing would refuse: the landing's own check."""
    try:
        landing(catalog, plan_id)
    except PlanError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        return [Finding("error", "landing", f"{exc.message}{hint}", [plan_id])]
    return []


#: A written reference: (the todo that names it, its field, the id it names).
Written = tuple[str, str, str]


def _written_refs(written: Catalog, u: str, v: str) -> list[Written]:
    """The references of the catalog as written that make the edge ``u -> v`` (``v``
    waits for ``u``): ``v``'s ``blocked_by`` naming ``u``, its template or
    ``[same]``; else ``u``'s ``blocking`` naming ``v`` the same ways. None for an
    edge of ``deps: follow`` (between instances of one template: nobody wrote it)."""
    (ut, ur), (vt, vr) = split_instance(u), split_instance(v)
    if ut == vt:
        return []

    def names(ref: str, other: str, ot: str, orepo: str | None, repo: str | None) -> bool:
        tid, which = split_instance(ref)
        if ref == other:
            return True
        if tid != ot or orepo is None:
            return False
        return which is None or (which == SAME and repo == orepo)

    owner = written.todo(vt)
    refs: list[Written] = [(vt, "blocked_by", r) for r in (owner.blocked_by if owner else ())
                           if names(r, u, ut, ur, vr)]
    if refs:
        return refs
    first = written.todo(ut)
    return [(ut, "blocking", r) for r in (first.blocking if first else ())
            if names(r, v, vt, vr, ur)]


def _redundancy(pg: PlanGraph, written: Catalog) -> list[Finding]:
    """Edges as written that a longer path implies: a reference a template's
    expansion made several edges of is named only when every one of them is implied
    (then the reference can go); edges nobody wrote (``deps: follow``) never."""
    g = pg.graph
    n = g.number_of_nodes()
    if n > REDUNDANCY_MAX_NODES:
        return [Finding("warning", "redundancy-skipped",
                        f"redundant-edge check skipped: {n} todos (limit {REDUNDANCY_MAX_NODES})")]
    order = [t for level in topological_levels(g) for t in level]
    implied = redundant_edges(g, order)
    if not implied:
        return []
    if not any("[" in t for t in g.nodes):  # no template: every edge is as written
        return [Finding("warning", "redundant-edge",
                        f"{v} blocked_by {u} is implied by a longer path; the edge can go",
                        [u, v]) for u, v in implied]
    made: dict[Written, int] = {}  # each written reference -> the edges it made
    for u, v in g.edges:
        for said in _written_refs(written, u, v):
            made[said] = made.get(said, 0) + 1
    gone: dict[Written, int] = {}
    for u, v in implied:
        for said in _written_refs(written, u, v):
            gone[said] = gone.get(said, 0) + 1
    out: list[Finding] = []
    for (owner, fld, ref), k in gone.items():
        if k == made[(owner, fld, ref)]:
            edges = f" (all {k} edges it makes)" if k > 1 else ""
            out.append(Finding("warning", "redundant-edge",
                               f"{owner} {fld} {ref} is implied by a longer path{edges}; "
                               "the edge can go", [ref, owner] if fld == "blocked_by"
                               else [owner, ref]))
    return out


def _other_milestones(catalog: Catalog, pg: PlanGraph) -> list[Finding]:
    nodes = pg.graph.nodes
    out: list[Finding] = []
    for plan in catalog.coordination.plans:
        if plan.id == pg.plan_id:
            continue
        for ms in plan.milestones:
            for tid in ms.todos:
                if tid in nodes:
                    out.append(Finding(
                        "warning", "milestone-other-plan",
                        f"{tid} belongs to {pg.plan_id} but is in milestone {ms.id} of {plan.id}",
                        [tid, ms.id, plan.id]))
    return out


def _checkouts_outside(catalog: Catalog, pg: PlanGraph) -> list[Finding]:
    """Relative checkout paths that leave the catalog's tree: allowed (absolute
    paths are normal), but worth a look, since a typo or a hostile catalog can
    point a todo's shell at any directory."""
    repos = sorted({pg.graph.nodes[t]["todo"].repo for t in pg.graph.nodes})
    out: list[Finding] = []
    for name in repos:
        repo = catalog.repo(name)
        raw = (repo.path if repo is not None else None) or ""
        if not raw or raw.startswith(("/", "~")):
            continue
        norm = os.path.normpath(raw)
        if norm == ".." or norm.startswith(".." + os.sep):
            out.append(Finding(
                "warning", "checkout-outside",
                f"repo {name}: checkout path {raw!r} climbs out of the catalog's directory "
                f"(to {norm}); write it as an absolute path if that is meant", [name]))
    return out


#: How a self-declared gate is fixed.
APPROVERS_FIX = ("add `approvers: {allowed_signers: FILE}` (git's allowed-signers format) to "
                 "the catalog, so approvals are proven by SSH signatures")


def unproven_gates(catalog: Catalog, ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """The gates (of the todos ``ids``; default every todo) that ask for particular or
    several people (``from:``, ``approvals`` > 1) in a catalog without ``approvers:``,
    where a name is whatever COORD_USER says: (todo id, what it asks and why that is
    not proven)."""
    if catalog.approvers is not None:
        return []
    wanted = None if ids is None else set(ids)
    out: list[tuple[str, str]] = []
    for t in catalog.coordination.todos:
        g = t.gate
        if g is None or (wanted is not None and t.id not in wanted):
            continue
        if not g.from_ and g.approvals <= 1:
            continue
        asks = " and ".join(x for x in (
            f"from: [{', '.join(g.from_)}]" if g.from_ else "",
            f"approvals: {g.approvals}" if g.approvals > 1 else "") if x)
        out.append((t.id, f"its gate says {asks} but the catalog has no approvers:, so "
                          "anyone approves it under any name (COORD_USER is self-declared)"))
    return out


def _change_fields_outside_a_change(catalog: Catalog, plan_id: str,
                                    pg: PlanGraph) -> list[Finding]:
    """``commit:`` and ``verify:`` act only in a change's plan: elsewhere they would be
    ignored without a word."""
    plan = catalog.plan(plan_id)
    if plan is None or plan.change is not None:
        return []
    return [Finding("warning", "not-a-change",
                    f"{tid} has commit:/verify:, which only a change's plan uses: add "
                    f"change: {{branch: NAME}} to {plan_id}, or drop them", [tid])
            for tid in pg.graph.nodes
            if pg.graph.nodes[tid]["todo"].commit or pg.graph.nodes[tid]["todo"].verify]


def sweep_advice(catalog: Catalog, plan_id: str, pg: PlanGraph, *,
                 written: Catalog | None = None, cycles: bool = False) -> list[Finding]:
    """The warnings a sweep of the plan would run into, which `plan validate` and the
    dry run both print: verify todos that can start before the change's commits,
    and ``{repo}`` in a command."""
    out = [] if cycles else _verify_early(catalog, plan_id, pg)
    return out + _repo_placeholders(written or catalog, plan_id)


def _verify_early(catalog: Catalog, plan_id: str, pg: PlanGraph) -> list[Finding]:
    """Each verify todo of a change's plan that can start before some commit todo of it
    (not completed) has finished, and what it should wait for.

    A verify todo checks every repo's candidate; a commit after it moves a candidate,
    which makes its verdict stale, and the landing rule wants every verify todo to
    have succeeded on exactly the current candidates: the change could never land.
    Which commits come before each todo is one big-int bitset per todo, ORed along
    the edges in topological order (as :func:`redundant_edges` reaches)."""
    plan = catalog.plan(plan_id)
    g = pg.graph
    if plan is None or plan.change is None:
        return []
    commits = [t for t in g.nodes if pg.todo(t).commit]
    checks = [t for t in g.nodes if pg.todo(t).verify]
    if not commits or not checks:
        return []
    bit = {t: 1 << i for i, t in enumerate(commits)}
    every = (1 << len(commits)) - 1
    before: dict[str, int] = {}
    pred = g._pred  # adjacency dicts: no view object per node
    for level in topological_levels(g):
        for t in level:
            bits = 0
            for p in pred[t]:
                bits |= before[p] | bit.get(p, 0)
            before[t] = bits
    early: dict[str, list[str]] = {}  # catalog id (a template's) -> its early todos
    missing: dict[str, dict[str, None]] = {}  # ... -> the commit todos they may precede
    for t in checks:
        left = every & ~(before[t] | bit.get(t, 0))
        if not left:
            continue
        owner = split_instance(t)[0]
        early.setdefault(owner, []).append(t)
        got = missing.setdefault(owner, {})
        for c in commits:
            if left & bit[c]:
                got.setdefault(split_instance(c)[0], None)
    out: list[Finding] = []
    for owner, ids in early.items():
        wants = list(missing[owner])
        n_owner = sum(1 for t in checks if split_instance(t)[0] == owner)
        n_wants = sum(1 for c in commits if split_instance(c)[0] in missing[owner])
        who = (f"{owner} (verify)" if ids == [owner] else
               f"{len(ids):,} of {owner}'s {n_owner:,} verify instances ({some(ids, 3)})")
        fix = f"write blocked_by: [{', '.join(wants)}] on {owner}"
        if n_owner * n_wants > MAX_CROSS_EDGES:
            fix = (f"put a plain todo between them (blocked_by: [{', '.join(wants)}], "
                   f"blocking: [{owner}]): {n_owner + n_wants:,} edges")
        out.append(Finding(
            "warning", "verify-early",
            f"{who} can start while commits of {', '.join(wants)} are still to come: a "
            f"verify todo checks "
            f"every repo's candidate, a commit after it makes its verdict stale, and "
            f"{plan_id} could never land; {fix}", [owner, *wants]))
    return out


def _repo_placeholders(written: Catalog, plan_id: str) -> list[Finding]:
    """``{repo}`` is replaced in a template's ``commit:`` message only: in a command
    it would reach the shell as it is written."""
    out: list[Finding] = []
    seen: set[str] = set()  # (given an expanded catalog: one finding per template)
    for t in written.plan_todos(plan_id):
        fields = [f for f, text in (("run", t.run), ("undo", t.undo)) if "{repo}" in (text or "")]
        tid = split_instance(t.id)[0]
        if fields and tid not in seen:
            seen.add(tid)
            out.append(Finding(
                "warning", "repo-placeholder",
                f"{tid}'s {'/'.join(fields)} has {{repo}}, which is replaced in commit: "
                "messages only and reaches the shell as written: use \"$COORD_REPO\" (values "
                "are never pasted into command text)", [tid]))
    return out


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
