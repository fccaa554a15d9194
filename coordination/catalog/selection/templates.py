"""Todo templates (``for_each: SELECTOR``): one todo of the catalog, one instance per
selected repo at plan time.

The catalog keeps the template once; :func:`expand` turns a catalog into the catalog
the planner sees, where each template is replaced by its instances ``TODO-010[api]``,
``TODO-010[web]``... (catalog order of the repos). Everything downstream (levels,
specs, `todo run`, `resume --only`, `why`, events) then handles an instance as any
todo: its id is the only thing that says it came from a template.

An instance is the template with, for its repo:

- ``repo``: the repo; ``env``: the template's plus ``COORD_REPO_PATH`` (its checkout)
  and ``COORD_REPO_TAGS`` (the worker sets ``COORD_REPO``): values reach the command
  through the environment only, never pasted into its text;
- ``commit``: ``{repo}`` replaced by the repo's name (a commit message, not a command);
- ``status``: what a sync recorded for it under the template's ``instances:``, else
  the template's own when it was completed by hand, else ``pending``;
- ``blocked_by``: a template named plainly is every one of its instances;
  ``TODO-009[same]`` is the same repo's instance (none when TODO-009 does not select
  that repo); ``TODO-009[api]`` is that instance; with ``deps: follow`` also the
  instances of the repos its repo runs after in the one dependency ordering
  (:mod:`coordination.catalog.selection.ordering`: ``order.by`` edges, through repos the
  template does not select, a cycle one group chained in name order, transitively
  reduced), as ``coord run --order deps`` orders.

A template that cannot be expanded (its ``for_each`` selects nothing now, or a
reference to it names no instance) is refused by a command that plans it, naming it
(exit 2). Listing is not planning: given ``problems``, :func:`expand` gives such a
template no instances and records why (:class:`TemplateProblem`, with the plans it
concerns), and drops the references that need it (their todo's problem too), so
that a list of every plan, a plan's status, the web view or MCP show one plan's
problem beside the others instead of failing for all; :func:`plan_problems` and
:func:`require` are what a command about one plan or todo checks.

Pure: catalog in, catalog out; a ``changed:`` selector asks git through the selector's
probe (injectable). A catalog without templates is returned as it is, and an
instance holds nothing but its own repo's values: the work is proportional to the
instances, never instances x repos.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from coordination.catalog.enums import TodoStatus
from coordination.catalog.selection.ordering import order_repos
from coordination.catalog.selection.selectors import ChangedProbe, git_changed, select
from coordination.errors import UsageError

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Milestone, Plan, Repo, Todo

#: ``TODO-010[api]`` -> (``TODO-010``, ``api``)
INSTANCE = re.compile(r"^(TODO-\d+)\[([a-z0-9][a-z0-9._-]*)\]$")
SAME = "same"


def instance_id(template_id: str, repo: str) -> str:
    return f"{template_id}[{repo}]"


def split_instance(todo_id: str) -> tuple[str, str | None]:
    """``TODO-010[api]`` -> ``("TODO-010", "api")``; any other id -> ``(id, None)``."""
    m = INSTANCE.match(todo_id)
    return (m.group(1), m.group(2)) if m else (todo_id, None)


def has_templates(catalog: Catalog) -> bool:
    return any(t.for_each is not None for t in catalog.coordination.todos)


@dataclass(frozen=True)
class TemplateProblem:
    """Why a todo of the catalog has no place (or not all of it) in the expansion: a
    template whose ``for_each`` cannot be expanded now, or a todo whose reference
    needs one (or names no instance)."""

    todo: str
    plans: tuple[str, ...]  # the plans the todo is in (its plan:, milestones listing it)
    error: UsageError  # what a command planning it says (exit 2)
    summary: str  # one line, for lists: "TODO-010: 0 instances: ..."
    #: `plan validate`'s finding code: ``dependency-cycle`` for a cycle refused
    #: (``cycles: error``), ``template`` for the rest
    code: str = "template"

    def line(self) -> str:
        """The summary with the error's hint, if any."""
        return self.summary + (f" ({self.error.hint})" if self.error.hint else "")


#: A todo's id -> its problem (see :func:`expand`).
Problems = dict[str, TemplateProblem]


def _plans_of(catalog: Catalog, todo: Todo) -> tuple[str, ...]:
    listed = [p.id for p in catalog.coordination.plans
              if any(todo.id in ms.todos for ms in p.milestones)]
    return tuple(dict.fromkeys([*([todo.plan] if todo.plan else []), *listed]))


def selections(catalog: Catalog, base_dir: Path, changed: ChangedProbe = git_changed,
               problems: Problems | None = None) -> dict[str, list[str]]:
    """Each template's id -> the repos its ``for_each`` selects (catalog order). A
    selector that fails (selects nothing, cannot tell) is a UsageError naming the
    template; with ``problems``, recorded there and the template selects none."""
    out: dict[str, list[str]] = {}
    for t in catalog.coordination.todos:
        if t.for_each is not None:
            try:
                out[t.id] = select(catalog, t.for_each, base_dir, changed).names
            except UsageError as exc:
                err = UsageError(f"{t.id}.for_each: {exc.message}", hint=exc.hint)
                if problems is None:
                    raise err from None
                why = exc.message.removeprefix(f"repo selector {t.for_each!r}: ")
                problems[t.id] = TemplateProblem(
                    t.id, _plans_of(catalog, t), err,
                    f"{t.id}: 0 instances: for_each {t.for_each!r}: {why}")
                out[t.id] = []
    return out


#: A template blocked by (or blocking) every instance of another template makes n x m
#: edges in the sweep's spec; past this many, a catalog is refused with the barrier
#: that makes them n + m.
MAX_CROSS_EDGES = 250_000


def _instance_status(template: Todo, repo: str) -> TodoStatus:
    got = (template.instances or {}).get(repo)
    if got is not None:
        return got
    if template.status == TodoStatus.completed and not template.instances:
        return TodoStatus.completed  # the template was completed by hand: all of it
    return TodoStatus.pending


#: What a plan refused for a cycle among a ``deps: follow`` template's repos may do
#: instead (each works as written).
CYCLE_HINT = ("pass --cycles group to `coord plan sweep` (or set order: {cycles: group} in "
              "the catalog) to run each cycle as one group, one repo at a time in name order")


def expand(catalog: Catalog, base_dir: Path, changed: ChangedProbe = git_changed,
           problems: Problems | None = None, warnings: list[str] | None = None) -> Catalog:
    """The catalog with every template replaced by its instances (see the module). A
    template that cannot be expanded is a UsageError naming it; with ``problems``
    (for lists, which must not fail for one plan's problem), each such template gets
    no instances, each reference needing it is left out, and every todo concerned
    is recorded there (:class:`TemplateProblem`). ``warnings``: where each ``deps:
    follow`` template's cycle groups are named (:mod:`coordination.catalog.selection.ordering`)."""
    if not has_templates(catalog):
        return catalog
    expansion = _Expansion(catalog, selections(catalog, base_dir, changed, problems), problems)
    expansion.follow_dependencies(warnings)
    expansion.limit_cross_edges()
    todos = expansion.todos(base_dir)
    plans = [_plan_with_instances(p, expansion.chosen) for p in catalog.coordination.plans]
    out = catalog.model_copy(update={"coordination": catalog.coordination.model_copy(
        update={"todos": todos, "plans": plans})})
    # model_copy keeps the private lookups, built over the old lists: rebuild on use
    out._repos = out._issues = out._plans = out._todos = out._deps = None
    return out


class _Expansion:
    """One :func:`expand`: each template's selected repos (``chosen``), and with
    ``problems``, what cannot be expanded recorded there instead of refused."""

    def __init__(self, catalog: Catalog, chosen: dict[str, list[str]],
                 problems: Problems | None) -> None:
        self.catalog = catalog
        self.chosen = chosen
        self.chosen_sets = {t: set(rs) for t, rs in chosen.items()}
        self.problems = problems
        self.dropped: set[tuple[str, str]] = set()  # (todo, ref): too many edges, left out
        #: a ``deps: follow`` template -> its repo -> the repos its instance waits for
        self.follows: dict[str, dict[str, list[str]]] = {}

    def record(self, owner: Todo, exc: UsageError, summary: str, code: str = "template") -> None:
        assert self.problems is not None
        if owner.id not in self.problems:
            self.problems[owner.id] = TemplateProblem(
                owner.id, _plans_of(self.catalog, owner), exc, summary, code)

    def follow_dependencies(self, warnings: list[str] | None) -> None:
        """deps: follow: an instance after those of the repos its repo runs after in the
        one ordering (`coord run --order deps`'s): order.by edges through repos the
        template does not select, a cycle one group chained in name order (or refused
        with cycles: error), transitively reduced."""
        for t in self.catalog.coordination.todos:
            if t.deps != "follow" or t.id not in self.chosen:
                continue
            try:
                got = order_repos(self.catalog, self.chosen[t.id], hint=CYCLE_HINT)
            except UsageError as cyc:
                err = UsageError(f"{t.id} (deps: follow): {cyc.message}", hint=cyc.hint)
                if self.problems is None:
                    raise err from None
                self.record(t, err, err.message, "dependency-cycle")
                self.chosen[t.id], self.chosen_sets[t.id] = [], set()
                continue
            self.follows[t.id] = got.after
            if warnings is not None:
                warnings.extend(f"{t.id} (deps: follow): {w}" for w in got.warnings)

    def limit_cross_edges(self) -> None:
        """Refuse (or, with ``problems``, drop) a template waiting on every instance of
        another, or blocking them, past :data:`MAX_CROSS_EDGES` edges (n x m)."""
        chosen = self.chosen
        for t in self.catalog.coordination.todos:
            if t.for_each is None:
                continue
            for ref in (*t.blocked_by, *t.blocking):
                tid, which = split_instance(ref)
                edges = len(chosen[t.id]) * len(chosen.get(tid, ()))
                if which is None and tid in chosen and edges > MAX_CROSS_EDGES:
                    field = "blocked_by" if ref in t.blocked_by else "blocking"
                    exc = UsageError(
                        f"{t.id}.{field}: {ref} makes each of {t.id}'s {len(chosen[t.id])} "
                        f"instances wait on each of {tid}'s {len(chosen[tid])}: {edges:,} "
                        f"edges (at most {MAX_CROSS_EDGES:,})",
                        hint=f"write {tid}[same] to wait for the same repo's instance only, or "
                             f"put a plain todo between them (blocked_by: [{tid}], blocking: "
                             f"[{t.id}]): {len(chosen[t.id]) + len(chosen[tid]):,} edges")
                    if self.problems is None:
                        raise exc
                    self.record(t, exc, exc.message)
                    self.dropped.add((t.id, ref))

    def todos(self, base_dir: Path) -> list[Todo]:
        """The catalog's todos, each template replaced by its instances (catalog order
        of the repos), every reference to a template by the instances it names."""
        paths: dict[str, str] = {}  # a repo -> its checkout, once per repo
        todos: list[Todo] = []
        for t in self.catalog.coordination.todos:
            if t.for_each is None:
                if t.blocked_by or t.blocking:
                    t = t.model_copy(update={"blocked_by": self.all_refs(t, t.blocked_by, None),
                                             "blocking": self.all_refs(t, t.blocking, None)})
                todos.append(t)
                continue
            for r in self.chosen[t.id]:
                repo = self.catalog.repo(r)
                assert repo is not None  # select() names catalog repos only
                path = paths.get(r)
                if path is None:
                    path = paths[r] = str(repo.checkout(base_dir))
                todos.append(self.instance(t, repo, path))
        return todos

    def instance(self, t: Todo, repo: Repo, path: str) -> Todo:
        """The template ``t``'s instance for ``repo`` (checked out at ``path``)."""
        r = repo.name
        blocked = self.all_refs(t, t.blocked_by, r)
        seen = set(blocked)
        blocked += [i for i in (instance_id(t.id, p) for p in self.follows.get(t.id, {}).get(r, ()))
                    if i not in seen]
        return t.model_copy(update={
            "id": instance_id(t.id, r), "repo": r, "for_each": None, "deps": None,
            "instances": None, "status": _instance_status(t, r), "outputs": {},
            "env": {**t.env, "COORD_REPO_PATH": path, "COORD_REPO_TAGS": ",".join(repo.tags)},
            "commit": None if t.commit is None else t.commit.replace("{repo}", r),
            "blocked_by": blocked, "blocking": self.all_refs(t, t.blocking, r),
            "actual_hours": None})

    def all_refs(self, owner: Todo, items: list[str], repo: str | None) -> list[str]:
        out: dict[str, None] = {}  # ordered, and a membership test in O(1)
        for ref in items:
            out.update(dict.fromkeys(self.refs(owner, ref, repo)))
        return list(out)

    def refs(self, owner: Todo, ref: str, repo: str | None) -> list[str]:
        """What ``ref`` (in ``owner``'s blocked_by/blocking) names, for an instance of
        ``repo`` (None: ``owner`` is no template); with ``problems``, what cannot be
        said is recorded and names nothing."""
        if self.problems is None:
            return self.named(owner, ref, repo)
        tid = split_instance(ref)[0]
        broken = self.problems.get(tid)
        if broken is not None and not self.chosen.get(tid, True):
            self.record(owner, broken.error, f"{owner.id}: waits for {ref}, and {broken.summary}")
            return []
        if (owner.id, ref) in self.dropped:
            return []
        try:
            return self.named(owner, ref, repo)
        except UsageError as exc:
            self.record(owner, exc, exc.message)
            return []

    def named(self, owner: Todo, ref: str, repo: str | None) -> list[str]:
        tid, which = split_instance(ref)
        if tid not in self.chosen:
            return [ref]
        if which is None:
            return [instance_id(tid, r) for r in self.chosen[tid]]
        if which == SAME:
            if repo is None:
                raise UsageError(f"{owner.id}.blocked_by: {ref} means the same repo's "
                                 f"instance and {owner.id} is not a template",
                                 hint=f"write {tid} or {tid}[{owner.repo}]")
            return [instance_id(tid, repo)] if repo in self.chosen_sets[tid] else []
        if which not in self.chosen_sets[tid]:
            raise UsageError(f"{owner.id}: {ref} is no instance: {tid}'s for_each "
                             f"{_for_each(self.catalog, tid)!r} does not select {which!r}",
                             hint=f"write {tid}[REPO] for one of: {', '.join(self.chosen[tid])}")
        return [ref]


def load_planned(path: Path, *, problems: Problems | None = None,
                 warnings: list[str] | None = None, raw: Catalog | None = None
                 ) -> tuple[Catalog, Catalog]:
    """The catalog file at ``path`` as written, and as the planner sees it (each template
    replaced by its instances, :func:`expand`): what every command that plans, shows
    or runs a plan reads (the CLI's plan commands, a sweep's spec, MCP's tools), so
    that they all see the same todos. ``problems``: what cannot be expanded is
    recorded there instead of refused (:func:`expand`). ``raw``: the file as written,
    when the caller has read it (a command that only reads it may have a view of the
    cache, :func:`coordination.catalog.reads.cached.sweep_catalog`, which has no template)."""
    if raw is None:
        # lazy: the store imports the models (pydantic), which a view does without
        from coordination.catalog.file.store import CatalogStore

        raw = CatalogStore(path).load()
    return raw, expand(raw, path.resolve().parent, problems=problems, warnings=warnings)


def planned(path: Path, *, problems: Problems | None = None, raw: Catalog | None = None
            ) -> Catalog:
    """The catalog file at ``path`` as the planner sees it (:func:`load_planned`; ``raw``
    as its)."""
    return load_planned(path, problems=problems, raw=raw)[1]


def plan_problems(problems: Mapping[str, TemplateProblem], plan_id: str
                  ) -> list[TemplateProblem]:
    """The problems of ``plan_id``'s todos (catalog order)."""
    return [p for p in problems.values() if plan_id in p.plans]


def require(problems: Mapping[str, TemplateProblem], *, plan: str | None = None,
            todos: Iterable[str] = ()) -> None:
    """Refuse (the first problem's UsageError, exit 2) planning ``plan`` or ``todos``
    (ids, instances included) when a problem concerns them."""
    if plan is not None:
        found = plan_problems(problems, plan)
        if found:
            raise found[0].error
    for t in todos:
        got = problems.get(split_instance(t)[0])
        if got is not None:
            raise got.error


def planned_for(path: Path, plan_id: str, *, warnings: list[str] | None = None,
                raw: Catalog | None = None) -> tuple[Catalog, Catalog]:
    """:func:`load_planned` for a command about one plan: refused only for that plan's
    own problems (:func:`require`), never another plan's. ``warnings``: the cycle
    groups of the plan's ``deps: follow`` templates (:func:`expand`), its own only.
    ``raw``: as :func:`load_planned`'s."""
    problems: Problems = {}
    every: list[str] = []
    raw, cat = load_planned(path, problems=problems, warnings=every, raw=raw)
    require(problems, plan=plan_id)
    if warnings is not None:
        warnings.extend(plan_warnings(raw, every, plan_id))
    return raw, cat


def plan_warnings(raw: Catalog, warnings: Iterable[str], plan_id: str) -> list[str]:
    """Of the warnings :func:`expand` gave for ``raw`` (the catalog as written), those
    of ``plan_id``'s own ``deps: follow`` templates."""
    mine = {t.id for t in raw.coordination.todos
            if t.deps == "follow" and plan_id in _plans_of(raw, t)}
    return [w for w in warnings if w.split(" ", 1)[0] in mine]


def selected_repos(catalog: Catalog, template: Todo, base_dir: Path) -> list[str]:
    """The repos a template's ``for_each`` selects now (catalog order); a UsageError
    naming the template when it selects none."""
    assert template.for_each is not None
    try:
        return select(catalog, template.for_each, base_dir, git_changed).names
    except UsageError as exc:
        raise UsageError(f"{template.id}.for_each: {exc.message}", hint=exc.hint) from None


def template_repos(catalog: Catalog, todo: Todo, base_dir: Path) -> list[str]:
    """The repos a todo concerns: its repo, or a template's selected repos (catalog
    order; none when its selector selects nothing now)."""
    if todo.for_each is None:
        return [todo.repo]
    try:
        return selected_repos(catalog, todo, base_dir)
    except UsageError:
        return []


def instances_of(expanded: Catalog, template_id: str) -> list[Todo]:
    """The instances of ``template_id`` in an expanded catalog (catalog order of repos)."""
    prefix = template_id + "["
    return [t for t in expanded.coordination.todos if t.id.startswith(prefix)]


def _for_each(catalog: Catalog, tid: str) -> str:
    t = catalog.todo(tid)
    return "" if t is None else str(t.for_each)


def _plan_with_instances(plan: Plan, chosen: Mapping[str, list[str]]) -> Plan:
    """A plan whose milestones list a template: listing its instances instead."""
    if not any(t in chosen for ms in plan.milestones for t in ms.todos):
        return plan
    milestones: list[Milestone] = []
    for ms in plan.milestones:
        ids: list[str] = []
        for t in ms.todos:
            ids.extend([instance_id(t, r) for r in chosen[t]] if t in chosen else [t])
        milestones.append(ms.model_copy(update={"todos": ids}))
    return plan.model_copy(update={"milestones": milestones})


class InstanceDoc(TypedDict):
    id: str
    repo: str
    status: str
    commit: str | None  # in a change's plan: the message its repo's commit gets
    after: list[str]  # the instances of the same template it waits for


class TemplateDoc(TypedDict):
    """A template of a plan as a dry run shows it."""

    id: str
    for_each: str
    deps: str | None
    repos: list[str]  # what the selector selects, catalog order
    count: int
    branch: str | None  # the plan's change branch: each repo's commit goes there
    instances: list[InstanceDoc]


def plan_templates(catalog: Catalog, expanded: Catalog, plan_id: str) -> list[TemplateDoc]:
    """The templates of ``plan_id`` (``catalog`` as written) and their instances (as
    ``expanded`` by :func:`expand`): what each selected repo will get. Reads no
    checkout."""
    plan = catalog.plan(plan_id)
    branch = plan.change.branch if plan is not None and plan.change is not None else None
    out: list[TemplateDoc] = []
    for t in catalog.plan_todos(plan_id):
        if t.for_each is None:
            continue
        prefix = t.id + "["
        inst = [i for i in expanded.coordination.todos if i.id.startswith(prefix)]
        out.append(TemplateDoc(
            id=t.id, for_each=t.for_each, deps=t.deps, repos=[i.repo for i in inst],
            count=len(inst), branch=branch,
            instances=[InstanceDoc(id=i.id, repo=i.repo, status=i.status.value,
                                   commit=i.commit if branch else None,
                                   after=[b for b in i.blocked_by if b.startswith(prefix)])
                       for i in inst]))
    return out


def template_outcome(instances: Mapping[str, str], selected: list[str]) -> str:
    """A template's own status from its instances' (``selected``: the repos its
    ``for_each`` selects now): ``completed`` when every selected repo's instance is,
    ``failed`` when one failed, else ``pending``."""
    if any(v == "failed" for v in instances.values()):
        return "failed"
    if selected and all(instances.get(r) == "completed" for r in selected):
        return "completed"
    return "pending"


__all__ = ["INSTANCE", "InstanceDoc", "Problems", "TemplateDoc", "TemplateProblem", "expand",
           "has_templates", "instance_id", "instances_of", "load_planned", "plan_problems",
           "plan_templates", "planned", "planned_for", "require", "selected_repos", "selections",
           "split_instance", "template_outcome", "template_repos"]
