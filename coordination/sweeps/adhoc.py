"""`coord run CMD --repos SEL`: a sweep of ad-hoc todos, one per selected repo.

The todos are not in the catalog. Their ids are ``RUN-<repo>`` (``RUN-api``): a
catalog todo id is ``TODO-<digits>``, so they never collide with one, and being
stable across runs they key the result cache and `coord why` per repo. Every sweep
command takes them (``sweep status``, ``resume --only RUN-api``, events, the web view).

The command is the one the user typed, recorded in the audit log before the sweep
starts; it is the same text for every todo: the repo reaches the command only
through the environment (``COORD_REPO``, set by the worker; ``COORD_REPO_PATH``,
``COORD_REPO_TAGS`` here), never pasted into it. The spec is frozen, stored and
signed like every sweep's, so a resume re-runs exactly what the first run ran
(nothing to re-read from the catalog) and a worker refuses a forged one.
"""

from __future__ import annotations

from pathlib import Path

from coordination.catalog.models import Cache, Catalog
from coordination.catalog.selection.ordering import Ordering, order_repos
from coordination.errors import UsageError
from coordination.keys import Keys
from coordination.planner.digraph import DiGraph, topological_generations
from coordination.planner.ranking import DEFAULT_RANK
from coordination.sweeps.runlogs.masking import masked_names
from coordination.sweeps.pacing import buckets_of
from coordination.sweeps.spec import STRATEGIES, TITLE_CHARS, Strategy, SweepSpec, TodoSpec

#: The prefix of an ad-hoc todo's id (a catalog's todo ids are TODO-<digits>).
RUN_PREFIX = "RUN-"
#: The sweep kind `coord run` records (a sweep of a plan is "plan", of a todo "todo").
RUN_KIND = "run"
ORDERS = ("deps", "none")
DEFAULT_TIMEOUT = 3600.0


def run_todo_id(repo: str) -> str:
    return f"{RUN_PREFIX}{repo}"


def run_ordering(catalog: Catalog, repos: list[str], order: str, *,
                 by: str | None = None, cycles: str | None = None) -> Ordering | None:
    """With ``order="deps"`` the one dependency ordering of ``repos``
    (:func:`coordination.catalog.selection.ordering.order_repos`: ``order.by`` edges through the
    whole catalog, a cycle a group run one repo at a time, or refused with
    ``cycles: error``); None with ``order="none"``."""
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}", hint="use deps or none")
    if order != "deps":
        return None
    return order_repos(catalog, repos, by=by, cycles=cycles, hint=CYCLE_HINT)


#: What a `coord run` refused for a cycle may do instead (each works as written).
CYCLE_HINT = ("pass --cycles group to run each cycle as one group, one repo at a time in "
              "name order (or set order: {cycles: group} in the catalog), or --order none")


def run_graph(catalog: Catalog, repos: list[str], order: str, *,
              ordering: Ordering | None = None) -> DiGraph:
    """The todos' graph: with ``order="deps"`` a repo's todo after those of the
    selected repos it runs after (:func:`run_ordering`, or ``ordering`` already made),
    transitively reduced; a cycle's group chained in name order."""
    if ordering is None:
        ordering = run_ordering(catalog, repos, order)
    g = DiGraph()
    g.add_nodes_from(run_todo_id(r) for r in repos)
    if ordering is not None:
        g.add_edges_from((run_todo_id(p), run_todo_id(c))
                         for c, ps in ordering.after.items() for p in ps)
    return g


def run_levels(graph: DiGraph) -> list[list[str]]:
    """The todos of ``graph`` by level (each level's sorted): the ordering made a DAG
    of it (a cycle is a group, chained), so this never meets a cycle."""
    return [sorted(lv) for lv in topological_generations(graph)]


def run_spec(keys: Keys, catalog: Catalog, catalog_path: Path | None, command: str,
             repos: list[str], *, order: str = "deps", strategy: str = "levels",
             cache: bool = False, timeout: float = DEFAULT_TIMEOUT,
             ordering: Ordering | None = None, by: str | None = None,
             cycles: str | None = None) -> SweepSpec:
    """The spec of `coord run`: ``command`` in each of ``repos``' checkouts, ordered by
    ``ordering`` (else :func:`run_ordering` with ``by`` and ``cycles``)."""
    if not command.strip():
        raise UsageError("coord run needs a command", hint="coord run 'make test' --repos tag:python")
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}", hint="use levels or eager")
    if ordering is None:
        ordering = run_ordering(catalog, repos, order, by=by, cycles=cycles)
    graph = run_graph(catalog, repos, order, ordering=ordering)
    levels = run_levels(graph)
    base = catalog_path.resolve().parent if catalog_path else Path.cwd()
    chosen = set(repos)
    todos: dict[str, TodoSpec] = {}
    paces: dict[str, list[float]] = {}
    for r in repos:
        repo = catalog.repo(r)
        if repo is None:
            raise UsageError(f"repo {r!r} is not in the catalog", hint="see `coord repo list`")
        path = repo.checkout(base)
        tid = run_todo_id(r)
        c: Cache | None = None
        if cache:
            c = repo.cache if isinstance(repo.cache, Cache) else Cache()
        pace: list[str] = []
        if repo.pace is not None:
            for name, iv, burst in buckets_of(repo.pace, repo, path):
                old = paces.get(name)
                paces[name] = [iv, burst] if old is None else [max(old[0], iv), min(old[1], burst)]
                pace.append(name)
        todos[tid] = TodoSpec(
            id=tid, repo=r, queue=keys.repo_queue(r), run=command, timeout=float(timeout),
            retries=0, env={"COORD_REPO_PATH": str(path), "COORD_REPO_TAGS": ",".join(repo.tags)},
            path=str(path), preds=sorted(graph.predecessors(tid)),
            succs=sorted(graph.successors(tid)), rank=DEFAULT_RANK,
            title=command[:TITLE_CHARS],
            cache=None if c is None else {"env": list(c.env), "inputs": list(c.inputs),
                                          "probes": list(c.probes)},
            pace=sorted(pace), mask_env=masked_names(catalog, r))
    for i, level in enumerate(levels):
        for t in level:
            todos[t].level = i
    return SweepSpec(
        sweep_id="", plan="", strategy=Strategy(strategy), run=0, todos=todos, levels=levels,
        concurrency={r.name: r.concurrency for r in catalog.repos if r.name in chosen},
        catalog=str(catalog_path.resolve()) if catalog_path else None,
        breakers={r.name: [r.breaker.failures, r.breaker.cooldown]
                  for r in catalog.repos if r.breaker is not None and r.name in chosen},
        paces=paces)


__all__ = ["RUN_KIND", "RUN_PREFIX", "ORDERS", "run_spec", "run_todo_id", "run_graph",
           "run_levels", "run_ordering"]
