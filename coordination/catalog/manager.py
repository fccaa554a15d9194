"""CoordinationManager: the library API over one catalog file.

The CLI is a thin layer over this class; tests and other programs call it
directly. Reads go through :meth:`CatalogStore.load` (validated models).
Edits go through :meth:`CatalogStore.update`, mutating the round-trip
document in place so the user's comments and key order survive; the store
validates the result and writes nothing when it is invalid. Checks that can
give a better message than the schema (unknown repo, unknown id, bad enum
value) are made inside the edit function, against the document being edited,
so they cannot race with a concurrent writer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from coordination.catalog.models import (
    Catalog,
    Dependency,
    DependencyStatus,
    DependencyType,
    Issue,
    IssueStatus,
    NotifyTarget,
    Plan,
    PlanStatus,
    Priority,
    Repo,
    Todo,
    TodoStatus,
    kind_of,
)
from coordination.catalog.edits import (
    ISSUE_KEYS,
    NOTIFY_KEYS,
    TODO_KEYS,
    DEP_KEYS,
    section,
    ids_in,
    find_item,
    new_id_in,
    new_item,
    append_item,
    put,
    put_field,
    put_list,
    put_entries,
    remove_index,
    append_unique,
    references,
    drop_references,
    remove_from,
    remove_item,
    remove_key,
    Reference,
    ReferenceDict,
    StillReferenced,
)
from coordination.catalog.edits import PLAN_KEYS, plan_todo_items, put_instances
from coordination.catalog.edits import MilestoneChange, milestone_changes, milestones_done
from coordination.catalog import loader, reports
from coordination.catalog.checks import unknown
from coordination.catalog.store import CatalogStore
from coordination.catalog.templates import expand, selected_repos, split_instance
from coordination.catalog.structure import StructureEdits
from coordination.catalog.inputs import choice, criteria_items, require_repos as _require_repos, \
    today as _today, uniq as _uniq
from coordination.catalog.audit import operations
from coordination.catalog.depcheck import SATISFIED, SKIPPED, UNSATISFIED, CheckResult, run_check
from coordination.errors import Problem, UsageError
from coordination.jsonable import JSONObject

M = TypeVar("M")
ISSUE_OPEN = {IssueStatus.open, IssueStatus.in_progress}
TODO_DONE = {TodoStatus.completed, TodoStatus.skipped}
# Fields `update_issue` may change; ids and the blocking mirrors are not among them.
ISSUE_EDITABLE = {
    "title", "description", "status", "priority", "severity", "repos", "target", "assignee",
    "labels",
}
# Fields `update_todo` may change; id, repo, plan and the blocking mirrors are not among them.
TODO_EDITABLE = {
    "task", "description", "run", "undo", "status", "priority", "assignee", "blocked_by",
    "timeout", "retries", "resources", "estimated_hours", "labels", "env",
    "commit", "verify", "gate", "cache", "acceptance_criteria",
}
#: Todo fields the loader validates, set as given (see ``put_field``).
TODO_FIELDS = ("commit", "verify", "gate", "cache")
TODO_MAX_TIMEOUT = 7 * 24 * 3600  # as the Todo model allows
TODO_MAX_RETRIES = 100


class IssueChanges(TypedDict, total=False):
    """What :meth:`CoordinationManager.update_issue` takes (``ISSUE_EDITABLE``)."""

    title: str | None
    description: str | None
    status: str | None
    priority: str | None
    severity: str | None
    repos: Iterable[str] | None
    target: dt.date | None
    assignee: str | None
    labels: Iterable[str] | None


#: (completed, reopened) milestones of one edit
Milestones = tuple[list[MilestoneChange], list[MilestoneChange]]


class TodoChanges(TypedDict, total=False):
    """What :meth:`CoordinationManager.update_todo` takes (``TODO_EDITABLE``)."""

    task: str | None
    description: str | None
    run: str | None
    undo: str | None
    status: str | None
    priority: str | None
    assignee: str | None
    blocked_by: Iterable[str] | None
    timeout: float | None
    retries: int | None
    resources: Iterable[str] | None
    estimated_hours: float | None
    labels: Iterable[str] | None
    # Entries of the todo's environment: KEY -> value sets it, KEY -> None removes it,
    # the others stay; None for the whole mapping removes them all.
    env: Mapping[str, str | None] | None
    commit: str | None  # '' or None removes it
    verify: bool | None  # False or None: the default, the key removed
    gate: Mapping[str, object] | None
    # True, False (off even when its repo caches) or the mapping; None removes it.
    cache: bool | Mapping[str, object] | None
    # Replaces them: texts, or {text, check} (the command that checks it)
    acceptance_criteria: Iterable[str | Mapping[str, str]] | None


class NotifyRemoved(TypedDict):
    """``coord notify remove --json``: the webhook removed, and where it was (1-based)."""

    removed: JSONObject
    index: int


class IssueDeleted(TypedDict):
    """``coord issue delete --json``."""

    deleted: str
    issue: JSONObject
    dropped: list[ReferenceDict]


class TodoDeleted(TypedDict):
    """``coord todo delete --json``."""

    deleted: str
    todo: JSONObject
    dropped: list[ReferenceDict]


class PlanReset(TypedDict):
    """What :meth:`CoordinationManager.reset_plan` changed (or, dry, would change):
    `coord plan reset --json`."""

    plan: str
    dry_run: bool
    reset: list[str]  # todos set back to pending, in catalog order
    was: dict[str, str]  # each of them -> its status before
    already_pending: list[str]  # asked for and pending already: left alone
    plan_was: str
    plan_status: str  # always "active"


class RepoBlocker(TypedDict):
    """One thing a repo waits on (``coord repo blocking``)."""

    kind: str  # "dependency", "issue" or "todo"
    id: str
    waits_on: list[str]
    reason: str


class BlockingDocument(TypedDict):
    """``coord repo blocking NAME --json``."""

    repo: str
    blocked: bool
    blockers: list[RepoBlocker]


class OpenIssue(TypedDict):
    id: str
    title: str
    status: str
    priority: str


class Consumed(TypedDict):
    id: str
    provider: str
    type: str
    status: str


class Provided(TypedDict):
    id: str
    consumer: str
    type: str
    status: str


class RepoStatus(TypedDict):
    """``coord repo status NAME --json``."""

    repo: JSONObject
    checkout: str
    checkout_exists: bool
    open_issues: list[OpenIssue]
    todos: dict[str, list[str]]
    consumes: list[Consumed]
    provides: list[Provided]
    blocked_by: list[RepoBlocker]


@operations  # each edit's audit entry is named after the method called (audit.py)
class CoordinationManager(StructureEdits):
    """Issues, todos, plans, dependencies and repos of one ``ecosystem.yaml``."""

    def __init__(self, path: str | Path) -> None:
        self.store = CatalogStore(path)
        #: the milestones the last todo edit completed and reopened (by hand: `todo
        #: complete`, `todo update --status`), for the caller to announce
        self.milestones: Milestones = ([], [])

    # -- reads ------------------------------------------------------------------
    def catalog(self) -> Catalog:
        return self.store.load()


    def _repo(self, cat: Catalog, name: str | None) -> Repo | None:
        if name is None:
            return None
        repo = cat.repo(name)
        if repo is None:
            raise unknown(name, [r.name for r in cat.repos], "repo")
        return repo

    def checkout(self, repo: Repo) -> Path:
        """A repo's checkout: ``path`` relative to the catalog's directory, default its name."""
        return repo.checkout(self.store.base_dir)

    def list_repos(self) -> list[Repo]:
        return list(self.catalog().repos)

    def get_repo(self, name: str) -> Repo:
        repo = self._repo(self.catalog(), name)
        assert repo is not None
        return repo

    def list_issues(
        self, *, status: str | None = None, priority: str | None = None,
        repo: str | None = None, assignee: str | None = None,
    ) -> list[Issue]:
        choice(status, IssueStatus, "issue status")
        choice(priority, Priority, "priority")
        cat = self.catalog()
        self._repo(cat, repo)
        return [
            i for i in cat.coordination.issues
            if (status is None or i.status.value == status)
            and (priority is None or i.priority.value == priority)
            and (repo is None or repo in i.repos)
            and (assignee is None or i.assignee == assignee)
        ]

    def get_issue(self, id_: str) -> Issue:
        cat = self.catalog()
        return _found(cat.issue(id_), cat, "issue", id_)

    def list_todos(
        self, *, status: str | None = None, repo: str | None = None,
        assignee: str | None = None, plan: str | None = None,
    ) -> list[Todo]:
        choice(status, TodoStatus, "todo status")
        cat = self.catalog()
        self._repo(cat, repo)
        if repo is not None and any(t.for_each is not None for t in cat.coordination.todos):
            # a repo's instances of templates too (one that selects nothing now has none:
            # a list never fails for it, `plan status` says it)
            cat = expand(cat, self.store.base_dir, problems={})
        todos = cat.coordination.todos
        if plan is not None:
            _found(cat.plan(plan), cat, "plan", plan)
            todos = cat.plan_todos(plan)
        return [
            t for t in todos
            if (status is None or t.status.value == status)
            and (repo is None or t.repo == repo)
            and (assignee is None or t.assignee == assignee)
        ]

    def get_todo(self, id_: str) -> Todo:
        """A todo, or a template's instance (``TODO-010[api]``) as a sweep runs it.
        (:meth:`list_todos` with a repo lists that repo's instances.)"""
        cat = self.catalog()
        if "[" in id_:
            cat = expand(cat, self.store.path.resolve().parent)
        return _found(cat.todo(id_), cat, "todo", id_)

    def list_plans(self, *, status: str | None = None, repo: str | None = None) -> list[Plan]:
        choice(status, PlanStatus, "plan status")
        cat = self.catalog()
        self._repo(cat, repo)

        def touches(p: Plan) -> bool:
            return repo in p.repos or any(t.repo == repo for t in cat.plan_todos(p.id))

        return [
            p for p in cat.coordination.plans
            if (status is None or p.status.value == status) and (repo is None or touches(p))
        ]

    def get_plan(self, id_: str) -> Plan:
        cat = self.catalog()
        return _found(cat.plan(id_), cat, "plan", id_)

    def plan_todos(self, id_: str) -> list[Todo]:
        cat = self.catalog()
        _found(cat.plan(id_), cat, "plan", id_)
        return cat.plan_todos(id_)

    def plan_status(self, id_: str, *, today: dt.date | None = None) -> reports.PlanStatus:
        """The ``coord plan status`` document: todos by status, milestones
        done/open/overdue as of ``today``, criteria, ``complete`` (see
        :func:`coordination.catalog.reports.plan_status`)."""
        from coordination.catalog.criteria import read_results  # lazy: its runner, status only

        return reports.plan_status(self.catalog(), id_, today=today,
                                   results=read_results(self.store.path).get(id_, []))

    def reset_plan(self, id_: str, todos: Iterable[str] | None = None, *,
                   dry_run: bool = False) -> PlanReset:
        """Set the plan's todos (every one, or those of ``todos``, which must be the
        plan's) back to ``pending`` and the plan to ``active``, in one edit and so one
        audit entry: the next ``plan sweep`` runs them again (`coord plan reset`). An
        unknown plan or todo, or a todo of another plan: UsageError, nothing written.
        ``dry_run``: what it would change; nothing is written or logged."""
        wanted = None if todos is None else _uniq(todos)
        if wanted is not None and not wanted:
            raise UsageError("no todos given", hint="name them (--todos TODO-1,TODO-2) or "
                             "leave --todos out to reset every todo of the plan")
        # Instances asked for (TODO-010[api]): their entries under their template go.
        asked = [w for w in wanted or () if split_instance(w)[1] is not None]
        was: dict[str, str] = {}  # instance -> its status before
        selected: dict[str, list[str]] = {}  # their templates -> the repos each selects
        if asked:
            cat = self.catalog()
            _found(cat.plan(id_), cat, "plan", id_)
            mine = {t.id for t in cat.plan_todos(id_)}
            wide = expand(cat, self.store.base_dir)
            for w in asked:
                template, _, selected[template.id] = self._template_of(cat, w)
                if template.id not in mine:
                    raise UsageError(f"{w} is not a todo of plan {id_}: its template "
                                     f"{template.id} is not",
                                     hint=f"`coord todo list --plan {id_}` lists its todos")
                found = wide.todo(w)
                assert found is not None
                was[w] = found.status.value
            wanted = [w for w in wanted or () if w not in was]

        def with_instances(result: PlanReset) -> PlanReset:
            for w, status in was.items():
                if status == TodoStatus.pending.value:
                    result["already_pending"].append(w)
                else:
                    result["reset"].append(w)
                    result["was"][w] = status
            return result

        if dry_run:
            cat = self.catalog()
            plan = _found(cat.plan(id_), cat, "plan", id_)
            return with_instances(_plan_reset(
                id_, plan.status.value, [(t.id, t.status.value) for t in cat.plan_todos(id_)],
                wanted, [t.id for t in cat.coordination.todos], dry_run=True))

        def edit(doc: CommentedMap) -> PlanReset:
            plan = find_item(doc, "plans", id_, "plan")
            items = plan_todo_items(doc, id_)
            result = with_instances(_plan_reset(
                id_, str(plan.get("status") or PlanStatus.draft.value),
                [(str(i.get("id")), str(i.get("status") or TodoStatus.pending.value))
                 for i in items], wanted, ids_in(doc, "todos"), dry_run=False))
            for tid, repos in selected.items():
                pending = {split_instance(w)[1] or "": TodoStatus.pending.value
                           for w in was if split_instance(w)[0] == tid}
                item = find_item(doc, "todos", tid, "todo")
                put_instances(item, _instances_after(item, pending, repos), repos)
            reset = set(result["reset"])
            for item in items:
                if item.get("id") in reset:
                    put(item, "status", TodoStatus.pending.value, TODO_KEYS)
                if item.get("instances") and (item.get("id") in reset
                                              or item.get("id") in result["already_pending"]):
                    put(item, "instances", {}, TODO_KEYS)  # a template: every instance again
            if result["plan_was"] != PlanStatus.active.value:
                put(plan, "status", PlanStatus.active.value, PLAN_KEYS)
            return result

        return self.store.update(edit)

    def list_dependencies(
        self, *, consumer: str | None = None, provider: str | None = None, type: str | None = None,
    ) -> list[Dependency]:
        choice(type, DependencyType, "dependency type")
        cat = self.catalog()
        self._repo(cat, consumer)
        self._repo(cat, provider)
        return [
            d for d in cat.coordination.dependencies
            if (consumer is None or d.consumer == consumer)
            and (provider is None or d.provider == provider)
            and (type is None or d.type.value == type)
        ]

    # -- issue edits -------------------------------------------------------------
    def create_issue(
        self, title: str, *, description: str = "", repos: Iterable[str] = (),
        priority: str = "medium", severity: str = "", assignee: str | None = None,
        labels: Iterable[str] = (), target: dt.date | None = None, status: str = "open",
        dependencies: Iterable[str] = (),
    ) -> Issue:
        """Append a new issue; ``dependencies`` also get it in their ``blocking``."""
        if not title.strip():
            raise UsageError("an issue needs a non-empty title")
        choice(priority, Priority, "priority")
        choice(status, IssueStatus, "issue status")
        repos, labels, deps = _uniq(repos), _uniq(labels), _uniq(dependencies)

        def edit(doc: CommentedMap) -> str:
            _require_repos(doc, repos)
            for d in deps:
                find_item(doc, "issues", d, "issue")
            new_id = new_id_in(doc, "issue", self.store.path)
            append_item(section(doc, "issues", create=True), new_item(
                ISSUE_KEYS, id=new_id, title=title, description=description, status=status,
                priority=priority, severity=severity, repos=repos, created=_today(),
                updated=_today(), target=target, dependencies=deps, assignee=assignee, labels=labels,
            ))
            for d in deps:
                append_unique(find_item(doc, "issues", d, "issue"), "blocking", new_id, ISSUE_KEYS)
            return new_id

        return self.get_issue(self.store.update(edit))

    def update_issue(self, id_: str, **changes: Unpack[IssueChanges]) -> Issue:
        """Change some fields; None or an empty value removes the field. Sets ``updated``."""
        bad = sorted(set(changes) - ISSUE_EDITABLE)
        if bad:
            raise UsageError(
                f"cannot update {', '.join(bad)} of an issue; "
                f"editable: {', '.join(sorted(ISSUE_EDITABLE))}"
            )
        if not changes:
            raise UsageError("nothing to update", hint="pass at least one field to change")
        if "title" in changes and not (changes["title"] or "").strip():
            raise UsageError("an issue needs a non-empty title")
        if changes.get("status") is None:
            changes.pop("status", None)  # removing would silently reset to the default
        if changes.get("priority") is None:
            changes.pop("priority", None)
        choice(changes.get("status"), IssueStatus, "issue status")
        choice(changes.get("priority"), Priority, "priority")
        for key in ("repos", "labels"):
            if key in changes:
                changes[key] = _uniq(changes[key] or ())

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "issues", id_, "issue")
            if "repos" in changes:
                _require_repos(doc, changes["repos"] or ())
            for key, value in changes.items():
                put(item, key, value, ISSUE_KEYS)
            put(item, "updated", _today(), ISSUE_KEYS)

        self.store.update(edit)
        return self.get_issue(id_)

    def close_issue(self, id_: str) -> Issue:
        return self.update_issue(id_, status=IssueStatus.closed.value)

    def delete_issue(self, id_: str, *, force: bool = False) -> IssueDeleted:
        """Remove an issue. While other issues (``dependencies``, ``blocking``) or todos
        (``blocked_by``) name it, refused with :class:`StillReferenced` listing every
        referrer; with ``force`` those references are dropped in the same edit. The
        ``blocking`` entries mirroring its own ``dependencies`` always go with it.

        Returns ``{"deleted": ID, "issue": {...}, "dropped": [{"id", "kind", "field",
        "mirror"}]}``: every list the id was taken out of.
        """
        before = self.get_issue(id_)  # unknown id: "did you mean"
        return {"deleted": id_, "issue": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in self._delete("issue", id_, force)]}

    def _delete(self, kind: str, id_: str, force: bool) -> list[Reference]:
        """Take the item out in one edit; returns every reference dropped with it."""
        name = {"issue": "issues", "todo": "todos"}[kind]

        def edit(doc: CommentedMap) -> list[Reference]:
            find_item(doc, name, id_, kind)  # again: the file may have changed since
            refs = references(doc, id_, kind)
            referrers = [r for r in refs if not r.mirror]
            if referrers and not force:
                raise StillReferenced(id_, referrers)
            drop_references(doc, refs)
            remove_item(doc, name, id_, kind)
            return refs

        try:
            return self.store.update(edit)
        except StillReferenced as exc:
            raise exc.located(self._located(exc.problems)) from None

    def _located(self, problems: list[Problem]) -> list[Problem]:
        """Problems with file, line and field filled in from the catalog as it is now."""
        try:
            text = self.store.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, UsageError):
            return problems
        return loader.locate(problems, text, str(self.store.path))

    # -- todo edits --------------------------------------------------------------
    def create_todo(
        self, task: str, repo: str, *, run: str | None = None, plan: str | None = None,
        blocked_by: Iterable[str] = (), estimate: float | None = None,
        criteria: Iterable[str | Mapping[str, str]] = (), description: str = "",
        undo: str | None = None,
        priority: str | None = None, assignee: str | None = None, labels: Iterable[str] = (),
        timeout: float | None = None, retries: int | None = None,
        env: Mapping[str, str] | None = None, commit: str | None = None,
        verify: bool = False, gate: Mapping[str, object] | None = None,
        cache: bool | Mapping[str, object] | None = None,
        for_each: str | None = None, deps: str | None = None,
    ) -> Todo:
        """Append a new todo; every todo in ``blocked_by`` gets it in its ``blocking``.
        ``env``: variables its command runs with (names checked, see ``check_env``);
        ``commit``, ``verify``, ``gate``, ``cache`` as the catalog writes them, checked
        by the loader. ``for_each``: a template (no ``repo``), one instance per repo the
        selector selects at plan time; ``deps: follow`` orders its instances by the
        repos' dependencies."""
        if not task.strip():
            raise UsageError("a todo needs a non-empty task")
        if (for_each is None) == (not repo):
            raise UsageError("give a todo either a repo or for_each (a template), not "
                             + ("both" if repo else "neither"),
                             hint="--repo NAME for one repo, --for-each SELECTOR for one "
                             "instance per selected repo")
        if deps is not None and for_each is None:
            raise UsageError("deps: belongs to a template", hint="add --for-each SELECTOR")
        if for_each is not None:  # a selector that is wrong or selects nothing: said now
            from coordination.catalog.selectors import git_changed, select  # lazy: templates only

            try:
                select(self.store.load(), for_each, self.store.base_dir, git_changed)
            except UsageError as exc:
                raise UsageError(f"for_each {for_each!r}: {exc.message}", hint=exc.hint) from None
        env = {k: v for k, v in check_env(env or {}).items() if v is not None}
        choice(priority, Priority, "priority")
        if estimate is not None and estimate < 0:
            raise UsageError(f"bad estimate {estimate}; hours cannot be negative")
        blockers = _uniq(blocked_by)
        for b in blockers:
            if kind_of(b) not in ("issue", "todo"):
                raise UsageError(f"bad blocker {b!r}; blocked_by takes TODO-n or ISSUE-n ids")

        def edit(doc: CommentedMap) -> str:
            if repo:
                _require_repos(doc, [repo])
            if plan is not None:
                find_item(doc, "plans", plan, "plan")
            for b in blockers:
                _find_blocker(doc, b)
            new_id = new_id_in(doc, "todo", self.store.path)
            item = new_item(
                TODO_KEYS, id=new_id, task=task, description=description, repo=repo or None,
                for_each=for_each, deps=deps, plan=plan,
                run=run, undo=undo, timeout=timeout, retries=retries, env=env, status="pending",
                priority=priority, estimated_hours=estimate, blocked_by=blockers,
                assignee=assignee, labels=_uniq(labels),
                acceptance_criteria=criteria_items(criteria, "a todo's acceptance criteria"),
            )
            for key, value in (("cache", cache), ("gate", gate), ("commit", commit),
                               ("verify", verify or None)):
                put_field(item, key, value, TODO_KEYS)
            append_item(section(doc, "todos", create=True), item)
            for b in blockers:
                if b.startswith("TODO-") and split_instance(b)[1] is None:
                    append_unique(find_item(doc, "todos", b, "todo"), "blocking", new_id, TODO_KEYS)
            return new_id

        return self.get_todo(self.store.update(edit))

    def complete_todo(self, id_: str, hours: float | None = None) -> Todo:
        """Mark a todo completed, recording the hours it took when given. A template's
        instance (``TODO-010[api]``): its entry under the template's ``instances:``,
        and the template's status follows them; a template: every instance."""
        if hours is not None and hours < 0:
            raise UsageError(f"bad --hours {hours}; hours cannot be negative")
        tid, repo = split_instance(id_)
        if repo is not None:
            if hours is not None:
                raise UsageError(f"{id_} is an instance of the template {tid}, and an "
                                 "instance keeps no hours of its own",
                                 hint=f"complete it without --hours, or give the hours to "
                                 f"{tid} (`coord todo update {tid} --estimate H`)")
            self._set_instances(tid, {repo: TodoStatus.completed.value})
            return self.get_todo(id_)

        def edit(doc: CommentedMap) -> Milestones:
            before = milestones_done(doc)
            item = find_item(doc, "todos", id_, "todo")
            put(item, "status", TodoStatus.completed.value, TODO_KEYS)
            if item.get("for_each"):
                put(item, "instances", None, TODO_KEYS)  # completed as a whole: every instance
            if hours is not None:
                put(item, "actual_hours", hours, TODO_KEYS)
            return milestone_changes(before, milestones_done(doc))

        self.milestones = self.store.update(edit)
        return self.get_todo(id_)

    # -- a template's instances ------------------------------------------------------
    def _template_of(self, cat: Catalog, id_: str) -> tuple[Todo, str, list[str]]:
        """The template an instance id ``TODO-010[api]`` names, the instance's repo and
        the repos the template selects; refused (exit 2) when it is no template or
        does not select that repo."""
        tid, repo = split_instance(id_)
        assert repo is not None
        template = cat.todo(tid)
        if template is None:
            raise unknown(id_, [t.id for t in cat.coordination.todos], "todo")
        if template.for_each is None:
            raise UsageError(f"{id_}: {tid} is not a template (no for_each:), so it has no "
                             "instances", hint=f"write {tid}")
        selected = selected_repos(cat, template, self.store.base_dir)
        if repo not in selected:
            raise UsageError(f"{id_}: {tid}'s for_each {template.for_each!r} does not select "
                             f"{repo!r}", hint=f"`coord todo show {tid}` lists its instances")
        return template, repo, selected

    def _set_instances(self, template_id: str, statuses: Mapping[str, str]) -> None:
        """Set instances of ``template_id`` (repo -> status; ``pending``: the entry
        goes) in one edit; the template's status follows them as a sync sets it."""
        cat = self.catalog()
        selected: list[str] = []
        for repo in statuses:
            _, _, selected = self._template_of(cat, f"{template_id}[{repo}]")

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "todos", template_id, "todo")
            put_instances(item, _instances_after(item, statuses, selected), selected)

        self.store.update(edit)

    def _whole_template(self, cat: Catalog, id_: str, status: str) -> dict[str, str] | None:
        """What a status edit of a whole template writes under ``instances:`` (every
        instance that status): None when its ``status:`` alone says it (pending:
        none ran; completed: completed as a whole), else every selected repo's entry."""
        if status in (TodoStatus.pending.value, TodoStatus.completed.value):
            return None
        template = cat.todo(id_)
        assert template is not None and template.for_each is not None
        return dict.fromkeys(selected_repos(cat, template, self.store.base_dir), status)

    def update_todo(self, id_: str, **changes: Unpack[TodoChanges]) -> Todo:
        """Change some fields of a todo (see ``TODO_EDITABLE``); None or an empty value
        removes an optional field. ``blocked_by`` replaces the list and keeps the other
        side's ``blocking`` in step; unknown blockers and cycles are refused."""
        bad = sorted(set(changes) - TODO_EDITABLE)
        if bad:
            raise UsageError(
                f"cannot update {', '.join(bad)} of a todo; "
                f"editable: {', '.join(sorted(TODO_EDITABLE))}"
            )
        tid, repo = split_instance(id_)
        if repo is not None:  # an instance: only its status is its own
            fields_given = sorted(k for k in changes if k != "status")
            if fields_given:
                raise UsageError(
                    f"{id_} is an instance of the template {tid}: its "
                    f"{', '.join(fields_given)} {'is' if len(fields_given) == 1 else 'are'} "
                    f"the template's, the same for every instance",
                    hint=f"edit the template (`coord todo update {tid} ...`); only --status "
                    "applies to one instance")
            status = changes.get("status")
            if status is None:
                raise UsageError("nothing to update", hint="pass --status for an instance")
            choice(status, TodoStatus, "todo status")
            self._set_instances(tid, {repo: status})
            return self.get_todo(id_)
        for key in ("status", "priority", "timeout", "retries"):
            if key in changes and changes[key] is None:
                changes.pop(key)  # removing would silently reset to the default
        if not changes:
            raise UsageError("nothing to update", hint="pass at least one field to change")
        if "task" in changes and not (changes["task"] or "").strip():
            raise UsageError("a todo needs a non-empty task")
        choice(changes.get("status"), TodoStatus, "todo status")
        choice(changes.get("priority"), Priority, "priority")
        _check_number(changes, "timeout", float, 0, TODO_MAX_TIMEOUT, "seconds", low_open=True)
        _check_number(changes, "retries", int, 0, TODO_MAX_RETRIES, "extra attempts")
        _check_number(changes, "estimated_hours", float, 0, None, "hours")
        for listed in ("resources", "labels", "blocked_by"):
            if listed in changes:
                changes[listed] = _uniq(changes[listed] or ())
        if "acceptance_criteria" in changes:
            changes["acceptance_criteria"] = criteria_items(  # type: ignore[typeddict-item]
                changes["acceptance_criteria"] or (), "a todo's acceptance criteria")
        env_changes: dict[str, str | None] = {}  # set or (None) removed entries
        clear_env = "env" in changes and changes["env"] is None
        if "env" in changes and not clear_env:
            env_changes = check_env(changes["env"] or {})
            if not env_changes:
                raise UsageError("nothing to update", hint="name at least one variable")
        changes.pop("env", None)
        fields = {k: changes.pop(k) for k in TODO_FIELDS if k in changes}  # type: ignore[misc]
        if fields.get("verify") is False:
            fields["verify"] = None  # the default: written as no key, like a new todo
        given = changes.get("blocked_by")
        blockers = None if given is None else list(given)
        cat = self.catalog()
        current = cat.todo(id_)
        whole: dict[str, str] | None = None  # a template's status: every instance's
        if current is not None and current.for_each is not None and "status" in changes:
            whole = self._whole_template(cat, id_, str(changes["status"]))
        for b in blockers or ():
            if kind_of(b) not in ("issue", "todo"):
                raise UsageError(f"bad blocker {b!r}; blocked_by takes TODO-n or ISSUE-n ids")
            if b == id_:
                raise UsageError(f"todo {id_} cannot be blocked by itself")

        def edit(doc: CommentedMap) -> Milestones:
            before = milestones_done(doc) if "status" in changes else {}
            item = find_item(doc, "todos", id_, "todo")
            if blockers is not None:
                for b in blockers:
                    _find_blocker(doc, b)
                cycle = _blocker_cycle(doc, id_, blockers)
                if cycle:
                    raise UsageError(
                        f"{id_} blocked by {cycle[-2]} would make a cycle: "
                        + " -> ".join(cycle),
                        hint=f"a todo cannot wait, directly or through others, on a todo "
                        f"that waits on it; leave {cycle[-2]} out of blocked_by",
                    )
                # The mirror: todos it now waits on list it in `blocking`; others do not.
                for other in section(doc, "todos"):
                    if not isinstance(other, CommentedMap) or other.get("id") == id_:
                        continue
                    if other.get("id") in blockers:
                        append_unique(other, "blocking", id_, TODO_KEYS)
                    else:
                        remove_from(other, "blocking", id_)
            for key, value in changes.items():
                if isinstance(value, list):
                    put_list(item, key, value, TODO_KEYS)
                else:
                    put(item, key, value, TODO_KEYS)
            if item.get("for_each") and "status" in changes:
                put_field(item, "instances", whole, TODO_KEYS)  # every instance: that status
            for key, value in fields.items():
                put_field(item, key, value, TODO_KEYS)
            if clear_env:
                put(item, "env", None, TODO_KEYS)
            elif env_changes:
                put_entries(item, "env", env_changes, TODO_KEYS)
            if "status" not in changes:
                return [], []
            return milestone_changes(before, milestones_done(doc))

        self.milestones = self.store.update(edit)
        return self.get_todo(id_)

    def delete_todo(self, id_: str, *, force: bool = False) -> TodoDeleted:
        """Remove a todo. While other todos (``blocked_by``, ``blocking``) or milestones
        (``todos``) name it, refused with :class:`StillReferenced` listing every
        referrer; with ``force`` those references are dropped in the same edit. The
        ``blocking`` entries mirroring its own ``blocked_by`` always go with it.

        Returns ``{"deleted": ID, "todo": {...}, "dropped": [{"id", "kind", "field",
        "plan"?, "mirror"}]}``: every list the id was taken out of.
        """
        tid, repo = split_instance(id_)
        if repo is not None:
            self._template_of(self.catalog(), id_)  # not one: says why
            raise UsageError(f"{id_} is an instance of the template {tid}: it is deleted by "
                             f"no longer selecting {repo}",
                             hint=f"add !{repo} to {tid}'s for_each "
                             f"(`coord todo show {tid}` shows it), or delete {tid}")
        before = self.get_todo(id_)  # unknown id: "did you mean"
        return {"deleted": id_, "todo": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in self._delete("todo", id_, force)]}

    # -- dependencies ------------------------------------------------------------
    def check_dependencies(self, *, consumer: str | None = None,
                           only: Collection[str] | None = None) -> list[CheckResult]:
        """Run the validation commands and record the outcomes, in one catalog edit.

        A dependency without a validation command is reported ``skipped`` and
        keeps its status. Checks run a few at a time: each may wait on its timeout.
        ``only``: just these dependency ids (a scoped MCP server's own).
        """
        cat = self.catalog()
        self._repo(cat, consumer)
        deps = [d for d in cat.coordination.dependencies if consumer in (None, d.consumer)
                and (only is None or d.id in only)]

        def one(d: Dependency) -> CheckResult:
            assert d.validation is not None
            repo = cat.repo(d.consumer)
            assert repo is not None  # the store checked every reference
            return run_check(
                d.id, d.validation.command, self.checkout(repo),
                expected_pattern=d.validation.expected_pattern, timeout=d.validation.timeout,
            )

        runnable = [d for d in deps if d.validation is not None]
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(runnable)))) as pool:
            ran = dict(zip([d.id for d in runnable], pool.map(one, runnable)))
        results = []
        for d in deps:
            r = ran.get(d.id) or CheckResult(
                d.id, SKIPPED, None, f"no validation command; status stays {d.status.value}"
            )
            results.append(replace(r, consumer=d.consumer, provider=d.provider))
        before = {d.id: d.status.value for d in deps}
        changed = {
            r.id: r.status for r in results
            if r.status in (SATISFIED, UNSATISFIED) and before[r.id] != r.status
        }
        if changed:

            def record(doc: CommentedMap) -> None:
                for item in section(doc, "dependencies"):
                    if isinstance(item, CommentedMap) and item.get("id") in changed:
                        put(item, "status", changed[item["id"]], DEP_KEYS)

            self.store.update(record)
        return results

    # -- webhooks (notify:) ----------------------------------------------------------
    def list_notify(self) -> list[NotifyTarget]:
        """The catalog's webhooks, in file order (`coord notify list` numbers them from 1)."""
        return list(self.catalog().notify)

    def add_notify(self, url: str, *, events: Iterable[str] = (), secret_env: str | None = None,
                   format: str | None = None) -> NotifyTarget:
        """Append a webhook to ``notify:``; the loader checks the url, events, secret_env
        and format (its message, nothing written, on a bad one). A url listed already is
        refused: two entries would send every event twice."""
        wanted = _uniq(events)

        def edit(doc: CommentedMap) -> int:
            targets = doc.get("notify")
            urls = [str(t.get("url")) for t in targets or () if isinstance(t, dict)]
            if url in urls:
                raise UsageError(f"a webhook for {url} is in notify: already (#{urls.index(url) + 1})",
                                 hint=f"remove it first (`coord notify remove {urls.index(url) + 1}`)"
                                 " to change it")
            item = new_item(NOTIFY_KEYS, url=url, events=wanted, secret_env=secret_env,
                            format=format)
            if isinstance(targets, CommentedSeq) and targets and not targets.fa.flow_style():
                append_item(targets, item)
            else:  # none yet, or `notify: []`: a block list, as the example writes it
                put(doc, "notify", [*(targets or ()), item], TOP_KEYS)
            return len(urls)

        at = self.store.update(edit)
        return self.catalog().notify[at]

    def remove_notify(self, which: str) -> NotifyRemoved:
        """Take a webhook out of ``notify:``, named by its url or its number in `coord
        notify list` (from 1); an emptied list goes with its key."""

        def edit(doc: CommentedMap) -> tuple[int, NotifyTarget]:
            targets = doc.get("notify")
            urls = [str(t.get("url")) if isinstance(t, dict) else "" for t in targets or ()]
            at = _notify_index(which, urls)
            assert isinstance(targets, CommentedSeq)  # the file loaded: a list of mappings
            gone = NotifyTarget.model_validate(
                {k: list(v) if isinstance(v, list) else v for k, v in targets[at].items()})
            if len(targets) == 1:
                remove_key(doc, "notify")
            else:
                remove_index(targets, at)
            return at, gone

        at, gone = self.store.update(edit)
        return {"removed": gone.model_dump(mode="json"), "index": at + 1}

    # -- repos ---------------------------------------------------------------------
    def repo_status(self, name: str) -> RepoStatus:
        """One repo at a glance: open issues, todos by status, dependencies, blockers."""
        cat = self.catalog()
        repo = self._repo(cat, name)
        assert repo is not None
        path = self.checkout(repo)
        todos: dict[str, list[str]] = {}
        for t in cat.coordination.todos:
            if t.repo == name:
                todos.setdefault(t.status.value, []).append(t.id)
        deps = cat.coordination.dependencies
        return {
            "repo": repo.model_dump(mode="json"),
            "checkout": str(path),
            "checkout_exists": path.is_dir(),
            "open_issues": [
                {"id": i.id, "title": i.title, "status": i.status.value,
                 "priority": i.priority.value}
                for i in cat.coordination.issues if name in i.repos and i.status in ISSUE_OPEN
            ],
            "todos": todos,
            "consumes": [
                {"id": d.id, "provider": d.provider, "type": d.type.value, "status": d.status.value}
                for d in deps if d.consumer == name
            ],
            "provides": [
                {"id": d.id, "consumer": d.consumer, "type": d.type.value, "status": d.status.value}
                for d in deps if d.provider == name
            ],
            "blocked_by": self._blocking(cat, name),
        }

    def blocking(self, name: str) -> list[RepoBlocker]:
        """What keeps this repo from moving on, each with the reason."""
        cat = self.catalog()
        self._repo(cat, name)
        return self._blocking(cat, name)

    def blocking_document(self, name: str) -> BlockingDocument:
        """``coord repo blocking NAME --json``: ``{"repo", "blocked": bool, "blockers"}``."""
        blockers = self.blocking(name)
        return {"repo": name, "blocked": bool(blockers), "blockers": blockers}

    def _blocking(self, cat: Catalog, name: str) -> list[RepoBlocker]:
        out: list[RepoBlocker] = []
        for d in cat.coordination.dependencies:
            if d.consumer == name and d.status != DependencyStatus.satisfied:
                out.append({
                    "kind": "dependency", "id": d.id, "waits_on": [d.provider],
                    "reason": f"depends on {d.provider} ({d.type.value}), status {d.status.value}"
                              + ("" if d.validation else " (no validation command)"),
                })
        for i in cat.coordination.issues:
            if name not in i.repos or i.status not in ISSUE_OPEN:
                continue
            open_deps = [o for x in i.dependencies if (o := cat.issue(x)) and o.status in ISSUE_OPEN]
            if open_deps:
                out.append({
                    "kind": "issue", "id": i.id, "waits_on": [o.id for o in open_deps],
                    "reason": f"{i.id} ({i.status.value}) waits on "
                              + ", ".join(f"{o.id} ({o.status.value})" for o in open_deps),
                })
        for t in cat.coordination.todos:
            if t.repo != name or t.status in TODO_DONE:
                continue
            waiting = []
            for b in t.blocked_by:
                iss, todo = cat.issue(b), cat.todo(b)
                if iss is not None and iss.status in ISSUE_OPEN:
                    waiting.append(f"{b} ({iss.status.value})")
                elif todo is not None and todo.status != TodoStatus.completed:
                    waiting.append(f"{b} ({todo.status.value})")
            if waiting:
                out.append({
                    "kind": "todo", "id": t.id, "waits_on": [w.split(" ")[0] for w in waiting],
                    "reason": f"{t.id} ({t.status.value}) waits on " + ", ".join(waiting),
                })
        return out


#: Canonical order of the catalog's top-level keys (a new ``notify:`` goes after
#: ``coordination:``, as DESIGN.md writes it).
TOP_KEYS = ("version", "repos", "resources", "coordination", "notify", "approvers")


def _notify_index(which: str, urls: Sequence[str]) -> int:
    """The 0-based index of the webhook ``which`` names: its url, or its number (from 1)."""
    if not urls:
        raise UsageError("the catalog has no webhooks (no notify: entries)",
                         hint="add one with `coord notify add URL`")
    if which.strip().isdigit():
        n = int(which)
        if 1 <= n <= len(urls):
            return n - 1
        raise UsageError(f"no webhook #{n}: notify: has {len(urls)} "
                         f"(numbered 1 to {len(urls)})", hint="`coord notify list` numbers them")
    if which in urls:
        return urls.index(which)
    raise UsageError(f"no webhook with url {which!r} in notify:",
                     hint="name it by its url exactly as listed, or by its number in "
                     "`coord notify list`")


def _found(found: M | None, cat: Catalog, kind: str, id_: str) -> M:
    """``found``, else the NotFoundError naming the ids of ``kind`` closest to ``id_``."""
    if found is None:
        known = {
            "issue": [x.id for x in cat.coordination.issues],
            "todo": [x.id for x in cat.coordination.todos],
            "plan": [x.id for x in cat.coordination.plans],
            "dependency": [x.id for x in cat.coordination.dependencies],
        }[kind]
        raise unknown(id_, known, kind)
    return found


def _instances_after(item: CommentedMap, statuses: Mapping[str, str],
                     selected: list[str]) -> dict[str, str]:
    """A template's ``instances:`` with ``statuses`` (repo -> status) set, ``pending``
    ones taken out (no entry: pending). A template completed as a whole (``status:
    completed`` and no entries) has every selected repo's instance completed first."""
    before = {str(k): str(v) for k, v in dict(item.get("instances") or {}).items()}
    if not before and item.get("status") == TodoStatus.completed.value:
        before = dict.fromkeys(selected, TodoStatus.completed.value)
    for repo, status in statuses.items():
        if status == TodoStatus.pending.value:
            before.pop(repo, None)
        else:
            before[repo] = status
    return before


def _plan_reset(plan_id: str, plan_status: str, todos: list[tuple[str, str]],
                wanted: list[str] | None, known: Iterable[str], *, dry_run: bool) -> PlanReset:
    """What resetting ``plan_id`` changes, from its status and its todos' (id, status) in
    catalog order; ``wanted``: only these todos, each refused (UsageError) unless the
    plan's. The same decision for the edit (on the document) and the dry run (models)."""
    mine, every = dict(todos), set(known)
    for tid in wanted or ():
        if tid not in mine:
            if tid not in every:
                raise unknown(tid, every, "todo")
            raise UsageError(f"{tid} is not a todo of plan {plan_id}",
                             hint=f"`coord todo list --plan {plan_id}` lists its todos")
    chosen = set(mine if wanted is None else wanted)
    picked = [(t, s) for t, s in todos if t in chosen]
    return {"plan": plan_id, "dry_run": dry_run,
            "reset": [t for t, s in picked if s != TodoStatus.pending.value],
            "was": {t: s for t, s in picked if s != TodoStatus.pending.value},
            "already_pending": [t for t, s in picked if s == TodoStatus.pending.value],
            "plan_was": plan_status, "plan_status": PlanStatus.active.value}


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env(env: Mapping[str, str | None]) -> dict[str, str | None]:
    """``env`` as a todo's environment takes it: each name a valid variable name
    (letters, digits, ``_``, not starting with a digit) and each value text without
    a NUL (None: remove it, on update). UsageError (exit 2) otherwise."""
    out: dict[str, str | None] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise UsageError(
                f"bad environment variable name {name!r}",
                hint="a name is letters, digits and _, not starting with a digit (PYTHON_VERSION)")
        if value is not None and (not isinstance(value, str) or "\0" in value):
            raise UsageError(f"bad value for environment variable {name}: "
                             + ("a NUL character" if isinstance(value, str) else repr(value)),
                             hint="a value is text without NUL characters")
        out[name] = value
    return out


def _check_number(
    changes: Mapping[str, object], key: str, kind: type[int] | type[float], low: float,
    high: float | None,
    unit: str, *, low_open: bool = False,
) -> None:
    """``changes[key]``, when given, as a number of ``kind`` within its bounds."""
    if changes.get(key) is None:
        return  # not given, or (estimated_hours) cleared
    value = changes[key]
    flag = "--" + {"estimated_hours": "estimate"}.get(key, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        kind is int and not isinstance(value, int)
    ):
        raise UsageError(f"bad {flag} {value!r}; expected a {'whole ' if kind is int else ''}"
                         f"number of {unit}")
    if value < low or (low_open and value == low) or (high is not None and value > high):
        bound = f"more than {low:g}" if low_open else f"at least {low:g}"
        upto = f" and at most {high:g}" if high is not None else ""
        raise UsageError(f"bad {flag} {value:g}; {unit} must be {bound}{upto}")


def _find_blocker(doc: CommentedMap, ref: str) -> None:
    """Refuse a blocker that names nothing: an unknown issue or todo. A template's
    instance (``TODO-009[api]``, ``TODO-009[same]``) names its template, which must
    exist; whether it may be named so (a template, ``[same]`` only in a template) is
    the loader's rule, checked on the edited file with the loader's message. (An
    instance's repo is not checked against what the template selects now: a
    selector's answer moves, ``changed:REF``; the plan's expansion says it.)"""
    tid, which = split_instance(ref)
    if which is not None:
        find_item(doc, "todos", tid, "todo")
    else:
        find_item(doc, "todos" if ref.startswith("TODO-") else "issues", ref,
                  kind_of(ref) or "")


def _blocker_cycle(doc: CommentedMap, id_: str, blockers: list[str]) -> list[str] | None:
    """The cycle ``id_`` blocked by ``blockers`` would close, in execution order
    (``[id_, ..., id_]``, each blocking the next), or None. Plain BFS over the
    document's todo ``blocked_by`` lists: cheap, and needs no networkx."""
    graph: dict[str, list[str]] = {}
    for t in section(doc, "todos"):
        if isinstance(t, dict):
            graph[str(t.get("id"))] = [str(b) for b in (t.get("blocked_by") or ())]
    graph[id_] = list(blockers)
    parent: dict[str, str] = {}
    queue, seen = deque([id_]), {id_}
    while queue:
        u = queue.popleft()
        for v in graph.get(u, ()):
            if v == id_:
                chain = [u]
                while chain[-1] != id_:
                    chain.append(parent[chain[-1]])
                return [id_, *chain]
            if v in graph and v not in seen:
                seen.add(v)
                parent[v] = u
                queue.append(v)
    return None
