"""Freezing a sweep's spec from the catalog: a plan's DAG, one todo, or the todos a
resume runs again (no Redis involved).

The spec holds every todo's command, env, timeout and checkout as the user saw
them when the sweep started, so workers run exactly that even if the catalog
changes meanwhile, and need no catalog of their own.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, cast

from coordination.catalog.rules.checks import unknown
from coordination.catalog.model_methods import cache_of, criterion_checks
from coordination.catalog.reads.cached import sweep_catalog
from coordination.catalog.selection.templates import Problems, instances_of, planned, require
from coordination.change.model import ChangePlan, change_of, gate_document
from coordination.errors import PlanError, UsageError
from coordination.keys import Keys, sweep_stem
from coordination.names import some
from coordination.planner.dag import todo_blockers
from coordination.planner.digraph import DiGraph, topological_generations
from coordination.planner.ranking import DEFAULT_RANK, ranks
from coordination.planner.sequence import sequential_order
from coordination.planner.sweepable import prepare_sweep
from coordination.planner.waves import assign, sweep_waves, wave_name
from coordination.sweeps.runlogs.masking import masked_names
from coordination.sweeps.outputs import external_inputs
from coordination.sweeps.pacing import Pacer
from coordination.sweeps.spec import (
    GateSpec,
    STRATEGIES,
    Strategy,
    SweepSpec,
    TITLE_CHARS,
    TodoSpec,
    WaveSpec,
    forward_spec,
)

if TYPE_CHECKING:
    from coordination.catalog.governance import Gate
    from coordination.catalog.models import Catalog, Plan, Todo


def new_sweep_id(plan_id: str) -> str:
    """``PLAN-001-<utc stamp>-<hex>``; of an instance ``TODO-010[api]``,
    ``TODO-010-api-...``: a sweep id goes into URLs and shell lines as it is."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{sweep_stem(plan_id)}-{stamp}-{secrets.token_hex(2)}"


def gate_spec(gate: Gate) -> GateSpec:
    """A catalog gate as a spec freezes it (one definition: the landing rule compares
    the catalog's gates with a spec's)."""
    return cast(GateSpec, gate_document(gate))


def wave_specs(catalog: Catalog, plan: Plan, graph: DiGraph) -> list[WaveSpec]:
    """The plan's waves over the sweep's todos (validated already: each is placed)."""
    wave_of, _ = assign(catalog, plan, list(graph.nodes))
    return [WaveSpec(name=wave_name(plan, i), todos=sorted(t for t, k in wave_of.items() if k == i),
                     max_parallel=w.max_parallel, soak=float(w.soak),
                     success_rate=float(w.require.success_rate))
            for i, w in enumerate(plan.waves)]


def _cache_spec(todo: Todo, catalog: Catalog) -> dict[str, list[str]] | None:
    """A todo's resolved ``cache:`` as its spec keeps it (None: off)."""
    c = cache_of(todo, catalog.repo(todo.repo))
    return None if c is None else {"env": list(c.env), "inputs": list(c.inputs),
                                   "probes": list(c.probes)}


def catalog_preds(catalog: Catalog) -> dict[str, list[str]]:
    """Every todo's predecessors among the catalog's todos (its ``blocked_by`` todos and
    the todos whose ``blocking`` names it)."""
    todos = catalog.coordination.todos
    preds: dict[str, list[str]] = {t.id: [b for b in t.blocked_by if b.startswith("TODO-")]
                                   for t in todos}
    for t in todos:  # `blocking` is the same edge seen from the other end
        for b in t.blocking:
            preds.setdefault(b, []).append(t.id)
    return preds


def make_sequential(spec: SweepSpec) -> None:
    """Make ``spec`` run one todo at a time (`plan sweep --sequential`), through the
    levels machinery it already has: every level one todo, in a topological order whose
    ties go to the todo that starts first anyway (its rank, then its id); the waves'
    order holds (a wave's todos before the next wave's) and each wave sends one todo at
    a time (``max_parallel`` 1, which the queue script counts atomically)."""
    wave_of = spec.wave_of()
    chosen = [t for level in spec.levels for t in level]
    order = sequential_order(chosen, {t: spec.todos[t].preds for t in chosen},
                             key=lambda t: (wave_of.get(t, 0), spec.todos[t].rank, t))
    spec.levels = [[t] for t in order]
    for i, t in enumerate(order):
        spec.todos[t].level = i
    for w in spec.waves:
        w.max_parallel = 1
    spec.sequential = True
    spec.__dict__.pop("_level_of", None)


def chains_of(spec: SweepSpec) -> dict[str, str]:
    """Todo -> the next todo of its chain: ``t -> s`` where ``s`` is ``t``'s only
    successor and ``t`` is ``s``'s only predecessor among the sweep's todos, both in one
    repo, neither a gate (a gate waits for people, not a worker)."""
    todos = spec.todos
    out: dict[str, str] = {}
    for t, ts in todos.items():
        succs = [x for x in ts.succs if x in todos]
        if len(succs) != 1 or ts.gate:
            continue
        s = todos[succs[0]]
        if s.repo == ts.repo and not s.gate and [p for p in s.preds if p in todos] == [t]:
            out[t] = s.id
    return out


def make_merged(spec: SweepSpec) -> None:
    """`plan sweep --merge-chains`: the eager strategy, with each chain's next todo run
    by the worker that ran the one before it (``SweepSpec.chains``)."""
    if spec.sequential:
        raise UsageError("--merge-chains and --sequential together",
                         hint="--sequential runs one todo at a time already; give one")
    if spec.waves:
        raise UsageError("--merge-chains on a plan with waves: its waves send its todos",
                         hint="leave out --merge-chains")
    spec.strategy = Strategy.eager
    spec.chains = chains_of(spec)


class Planning:
    """Specs of one catalog file, for one namespace's queues."""

    def __init__(self, keys: Keys, catalog_path: Path | None) -> None:
        self.keys = keys
        self.catalog_path = catalog_path
        #: what the last :meth:`catalog` could not expand (todo -> its problem)
        self.problems: Problems = {}

    def catalog(self) -> Catalog:
        """The catalog (:func:`sweep_catalog`: a view of the store's cache, or its
        models) as the planner sees it: each template (``for_each:``) replaced by its
        instances, ``TODO-010[api]``... A template that cannot be expanded now (its
        for_each selects nothing) is left out and recorded in :attr:`problems`: a plan
        or todo it concerns is refused where it is planned (:meth:`plan_spec`,
        :meth:`todo_spec`), the others and every read (status, the web view's lists)
        go on."""
        if self.catalog_path is None:
            raise UsageError("no catalog file given", hint="pass --file or set COORD_ECOSYSTEM")
        problems: Problems = {}
        # A view of the cache when it will do (no pydantic): a spec only reads the catalog
        cat = planned(self.catalog_path, problems=problems,
                      raw=sweep_catalog(self.catalog_path))
        self.problems = problems
        return cat

    def _catalog_name(self) -> str | None:
        return str(self.catalog_path.resolve()) if self.catalog_path else None

    def todo_specs(self, catalog: Catalog, graph: DiGraph, ids: list[str],
                   pacer: Pacer | None = None, plan_id: str | None = None
                   ) -> dict[str, TodoSpec]:
        """The frozen specs of ``ids``, their edges from ``graph``; their pace buckets
        gathered in ``pacer`` (``plan_id``: the plan whose ``pace:`` holds)."""
        pacer = pacer or Pacer(catalog)
        base = self.catalog_path.resolve().parent if self.catalog_path else Path.cwd()
        rank = ranks(graph, catalog.todo)
        out: dict[str, TodoSpec] = {}
        paths: dict[str, str] = {}  # resolving a checkout is file system work: once per repo
        changes: dict[str, ChangePlan] | None = None
        before: dict[str, list[str]] | None = None  # todo -> its predecessors in the catalog
        for tid in ids:
            todo = catalog.todo(tid)
            if todo is None:
                raise unknown(tid, [t.id for t in catalog.coordination.todos], "todo")
            if not todo.run and todo.gate is None:
                raise PlanError(f"{tid} has no run command", hint=f"add 'run:' to {tid} in the catalog")
            path = paths.get(todo.repo)
            if path is None:
                repo = catalog.repo(todo.repo)
                if repo is None:
                    raise PlanError(f"{tid} runs in repo {todo.repo!r}, which is not in the catalog")
                path = paths[todo.repo] = str(repo.checkout(base))
            if changes is None:  # todo -> the change of a plan it belongs to, once per call
                changes = {t: cp for p in catalog.coordination.plans if p.change
                           for cp in [change_of(catalog, p.id, base)] for t in cp.todos}
            cp = changes.get(tid)
            change = None if cp is None else dict(cp.todo_change(todo.commit, todo.verify))
            out[tid] = TodoSpec(
                id=tid,
                repo=todo.repo,
                queue=self.keys.repo_queue(todo.repo),
                run=todo.run or "",
                timeout=float(todo.timeout),
                retries=int(todo.retries),
                wait_timeout=todo.wait_timeout,
                env=dict(todo.env),
                path=path,
                preds=sorted(graph.predecessors(tid)),
                succs=sorted(graph.successors(tid)),
                estimated_hours=todo.estimated_hours,
                undo=todo.undo,
                priority=str(getattr(todo.priority, "value", todo.priority)),
                resources=sorted(set(todo.resources)),
                rank=rank[tid][0] if tid in rank else DEFAULT_RANK,
                title=todo.task[:TITLE_CHARS],
                gate=gate_spec(todo.gate) if todo.gate is not None else None,
                change=change,
                cache=_cache_spec(todo, catalog),
                pace=pacer.todo(todo, plan_id, Path(path)),
                checks=[[c.text, c.check] for c in criterion_checks(todo.acceptance_criteria)],
                mask_env=masked_names(catalog, todo.repo, todo.mask_env),
                due=todo.due.timestamp() if todo.due is not None else None,
            )
            if out[tid].cache is not None:
                if before is None:
                    before = catalog_preds(catalog)
                ran = set(out[tid].preds)
                out[tid].upstream = sorted({p for p in before.get(tid, []) if p not in ran})
        return out

    @staticmethod
    def inputs(catalog: Catalog, ids: list[str]
               ) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
        """The results (the catalog's ``outputs:``, kept by an earlier sweep's sync) of
        the todos before ``ids`` that this sweep does not run, and which each of its
        todos gets; nothing to do (and nothing walked) when no todo has results."""
        todos = catalog.coordination.todos
        outputs = {t.id: t.outputs for t in todos if t.outputs}
        if not outputs:
            return {}, {}
        return external_inputs(catalog_preds(catalog), outputs, ids)

    @staticmethod
    def breakers(catalog: Catalog) -> dict[str, list[float]]:
        """The repos' breakers, frozen with a spec."""
        return {r.name: [r.breaker.failures, r.breaker.cooldown]
                for r in catalog.repos if r.breaker is not None}

    @staticmethod
    def capacity(catalog: Catalog) -> dict[str, int]:
        """The shared resources' capacities, frozen with a spec."""
        return {x.name: x.capacity for x in catalog.resources}

    def plan_spec(self, plan_id: str, *, strategy: str, ignore_blockers: bool,
                  again: bool = False, sequential: bool = False,
                  merge_chains: bool = False, repos: list[str] | None = None) -> SweepSpec:
        """Validate and level a plan into a spec: the same checks as the dry run
        (cycles, unknown refs, missing run, blockers). The plan's todos not completed
        in the catalog; with ``again`` every todo of it (`plan sweep --again`);
        ``sequential``: one at a time (:func:`make_sequential`); ``repos``: only the
        todos of these repos (a push's scope, :func:`~coordination.planner.sweepable.
        scope_to_repos`), its levels and waves over them alone."""
        if sequential and strategy != Strategy.levels:
            raise UsageError("--sequential runs one todo at a time through the levels "
                             f"strategy, not {strategy!r}",
                             hint="leave out --strategy (or give --strategy levels)")
        if strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy {strategy!r}", hint="use levels or eager")
        catalog = self.catalog()
        require(self.problems, plan=plan_id)
        pg, analysis = prepare_sweep(catalog, plan_id, ignore_blockers=ignore_blockers,
                                     again=again, repos=repos)
        pacer = Pacer(catalog)
        todos = self.todo_specs(catalog, pg.graph, list(pg.graph.nodes), pacer, plan_id)
        levels = [list(level) for level in analysis.levels]
        plan = catalog.plan(plan_id)
        waves = wave_specs(catalog, plan, pg.graph) if plan is not None and sweep_waves(plan) else []
        if waves:
            # Levelled wave by wave: a wave's levels all come before the next wave's, so
            # the level barrier never waits on a todo a later wave holds back.
            levels = [sorted(lv) for w in waves
                      for lv in topological_generations(pg.graph.subgraph(w.todos))]
        for i, level in enumerate(levels):
            for tid in level:
                todos[tid].level = i
        given, given_of = self.inputs(catalog, list(todos))
        spec = SweepSpec(
            sweep_id="", plan=plan_id, strategy=Strategy(strategy), run=0, todos=todos,
            levels=levels,
            concurrency={r.name: r.concurrency for r in catalog.repos},
            catalog=self._catalog_name(), breakers=self.breakers(catalog),
            capacity=self.capacity(catalog), inputs=given, inputs_of=given_of, waves=waves,
            paces=pacer.paces, again=again,
            plan_due=plan.due.timestamp() if plan is not None and plan.due is not None else None,
        )
        if sequential:
            make_sequential(spec)
        if merge_chains:
            make_merged(spec)
        return spec

    def blocking_todos(self, todo_id: str) -> list[str]:
        """The todos among ``todo_id``'s blockers that the catalog does not say are
        completed (a sweep may have run them and not been synced yet)."""
        return sorted(b.blocker_id for b in todo_blockers(self.catalog(), todo_id)
                      if b.blocker_id.startswith("TODO-"))

    def todo_spec(self, todo_id: str, *, ignore_blockers: bool = False) -> SweepSpec:
        """One todo as a one-todo sweep (``coord todo run``); its blockers must be
        satisfied (todos completed, issues resolved or closed) unless ignored."""
        catalog = self.catalog()
        require(self.problems, todos=[todo_id])
        todo = catalog.todo(todo_id)
        if todo is None:
            inst = instances_of(catalog, todo_id)
            if inst:  # a template: `todo run` runs one todo, an instance of it
                plan = inst[0].plan
                every = (f"every one in order with `coord plan sweep {plan}`" if plan else
                         f"every one in order from a plan's sweep (give {todo_id} a plan:)")
                raise UsageError(
                    f"{todo_id} is a template (for_each), not one todo: its "
                    f"{len(inst):,} instance(s) are {some([i.id for i in inst])}",
                    hint=f"run one instance with `coord todo run '{inst[0].id}'`, or {every}; "
                    f"`coord sweep resume ID --only {todo_id}` re-runs all of a sweep's")
            raise unknown(todo_id, [t.id for t in catalog.coordination.todos], "todo")
        if catalog.repo(todo.repo) is None:
            raise PlanError(f"{todo_id} runs in repo {todo.repo!r}, which is not in the catalog")
        blockers = todo_blockers(catalog, todo_id)
        if blockers and not ignore_blockers:
            raise PlanError(
                f"{todo_id} is blocked: " + "; ".join(str(b) for b in blockers),
                hint="complete or resolve them first, or pass --ignore-blockers")
        g = DiGraph()
        g.add_node(todo_id)
        given, given_of = self.inputs(catalog, [todo_id])
        pacer = Pacer(catalog)
        return SweepSpec(
            sweep_id="", plan=todo.plan or "", strategy=Strategy.levels, run=0,
            todos=self.todo_specs(catalog, g, [todo_id], pacer), levels=[[todo_id]],
            concurrency={r.name: r.concurrency for r in catalog.repos},
            catalog=self._catalog_name(), breakers=self.breakers(catalog),
            capacity=self.capacity(catalog), inputs=given, inputs_of=given_of,
            paces=pacer.paces,
        )

    def resume_spec(self, old: SweepSpec, rerun: list[str], *, adhoc: bool = False
                    ) -> SweepSpec:
        """The next run of ``old``: the todos of ``rerun`` with their commands re-read
        from the catalog (edges as they were), levelled among themselves. ``adhoc``:
        a `coord run` sweep, whose todos are not in the catalog: they run again as
        frozen (the command line the audit log recorded). After a rollback, "as they
        were" is as the run that applied the change had them (:func:`forward_spec`):
        its order, strategy, waves, one at a time or chained, not the undos' order."""
        old = forward_spec(old)
        catalog = self.catalog()
        if not adhoc:
            require(self.problems, todos=rerun)
        g = DiGraph()
        g.add_nodes_from(old.todos)
        for t, s in old.todos.items():
            g.add_edges_from((p, t) for p in s.preds)
        pacer = Pacer(catalog)
        fresh = ({t: old.todos[t] for t in rerun} if adhoc
                 else self.todo_specs(catalog, g, rerun, pacer, old.plan or None))
        todos = dict(old.todos)
        for t in rerun:
            fresh[t].preds, fresh[t].succs = old.todos[t].preds, old.todos[t].succs
            todos[t] = fresh[t]
        if old.waves:  # wave by wave, as plan_spec levels them
            chosen = set(rerun)
            levels = [sorted(lv) for w in old.waves
                      for lv in topological_generations(
                          g.subgraph([t for t in w.todos if t in chosen]))]
        else:
            levels = [sorted(level) for level in topological_generations(g.subgraph(rerun))]
        for i, level in enumerate(levels):
            for t in level:
                todos[t].level = i
        if old.sequential:  # a resume runs one at a time too, in the same order
            levels = [[t] for t in sequential_order(
                [t for lv in levels for t in lv], {t: todos[t].preds for t in rerun},
                key=lambda t: (old.wave_of().get(t, 0), todos[t].rank, t))]
            for i, level in enumerate(levels):
                for t in level:
                    todos[t].level = i
        return SweepSpec(sweep_id=old.sweep_id, plan=old.plan, strategy=old.strategy,
                         run=old.run + 1, todos=todos, levels=levels,
                         concurrency=old.concurrency, catalog=old.catalog,
                         breakers={**old.breakers, **self.breakers(catalog)},
                         capacity={**old.capacity, **self.capacity(catalog)},
                         atomic=old.atomic, inputs=old.inputs, inputs_of=old.inputs_of,
                         waves=old.waves, paces={**old.paces, **pacer.paces},
                         again=old.again, dispatched=old.next_dispatched(old.run + 1, levels),
                         sequential=old.sequential, plan_due=old.plan_due, push=old.push,
                         chains={t: s for t, s in old.chains.items()
                                 if t in rerun and s in rerun})
