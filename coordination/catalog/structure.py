"""Edits of the catalog's structure: plans, milestones, dependencies and repos.

The same rules as the issue and todo edits of :mod:`coordination.catalog.manager`
(which mixes this class in): each is one :meth:`CatalogStore.update`, so one audit
entry, decided on the document being edited; names and ids it is given must exist
(else exit 2 with "did you mean"); a delete that would leave something pointing at
nothing is refused with :class:`StillReferenced`, naming every referrer by file and
line, unless ``force``, which takes those references out (or, where the referrer
cannot exist without it, as a todo without its repo, deletes the referrer too) in
the same edit. New ids come from :func:`new_id_in`: a deleted id never comes back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, TypeVar, Unpack

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from coordination.catalog import fresh as fresh_catalog
from coordination.catalog.audit import operations
from coordination.catalog.checks import unknown
from coordination.catalog.edits import (
    DEP_KEYS,
    PLAN_KEYS,
    TODO_KEYS,
    Reference,
    ReferenceDict,
    StillReferenced,
    append_item,
    find_item,
    milestone_ids,
    new_id_in,
    new_item,
    put,
    put_entries,
    put_field,
    put_list,
    put_mapping_entries,
    remove_from,
    remove_at,
    remove_index,
    remove_item,
    remove_key,
    remove_repo_item,
    repo_names,
    section,
)
from coordination.catalog.inputs import choice, criteria_items, fresh, require_repos, uniq
from coordination.catalog.models import (
    MAX_CONCURRENCY,
    REPO_NAME_RE,
    Dependency,
    DependencyStatus,
    DependencyType,
    Milestone,
    Plan,
    PlanStatus,
    Repo,
    git_remote,
    next_id,
)
from coordination.errors import Problem, UsageError
from coordination.jsonable import JSONObject

if TYPE_CHECKING:
    from coordination.catalog.store import CatalogStore

T = TypeVar("T")
MILESTONE_KEYS = ("id", "title", "due", "todos", "deliverables")
#: What `coord init --check --apply` may update on an inferred dependency.
_FLEET_UPDATABLE = frozenset({"type", "indirect", "version_constraint", "source"})
REPO_KEYS = ("name", "path", "description", "role", "tags", "concurrency", "breaker",
             "default_branch", "remote", "url", "land_command", "revert_command", "land_hooks",
             "cache", "pace", "prepare")
VALIDATION_KEYS = ("command", "expected_pattern", "timeout")
PLAN_EDITABLE = {"title", "description", "status", "repos", "completion_criteria", "change",
                 "waves", "pace"}
MILESTONE_EDITABLE = {"title", "due", "todos", "deliverables"}
DEP_EDITABLE = {"consumer", "provider", "type", "version_constraint", "status", "notes",
                "command", "expected_pattern", "timeout"}
REPO_EDITABLE = {"path", "description", "role", "tags", "concurrency", "breaker",
                 "default_branch", "remote", "url", "land_command", "revert_command", "land_hooks",
                 "cache", "pace", "prepare"}
#: Fields the loader validates, set as given (a mapping as a flow mapping); a value that
#: is not valid is refused with the loader's own message and nothing is written.
PLAN_FIELDS = ("waves", "pace")
REPO_FIELDS = ("breaker", "default_branch", "remote", "url", "land_command", "revert_command",
               "land_hooks", "cache", "pace", "prepare")
#: A structured field's value as the CLI hands it over (the loader checks it).
Spec = Mapping[str, object]
MAX_CHECK_TIMEOUT = 3600  # as the Validation model allows


class PlanChanges(TypedDict, total=False):
    """What :meth:`StructureEdits.update_plan` takes (``PLAN_EDITABLE``)."""

    title: str | None
    description: str | None
    status: str | None
    repos: Iterable[str] | None
    completion_criteria: Iterable[str | Mapping[str, str]] | None
    # Entries of `change:` (branch, base, remote, land): a value sets one, None removes
    # it; None for the whole mapping removes `change:`.
    change: Mapping[str, str | None] | None
    waves: Sequence[Spec] | None  # replaces them all; empty or None removes `waves:`
    pace: Spec | None


class MilestoneChanges(TypedDict, total=False):
    """What :meth:`StructureEdits.update_milestone` takes (``MILESTONE_EDITABLE``)."""

    title: str | None
    due: dt.date | None
    todos: Iterable[str] | None
    deliverables: Iterable[str] | None


class DependencyChanges(TypedDict, total=False):
    """What :meth:`StructureEdits.update_dependency` takes (``DEP_EDITABLE``); the
    last three are its validation's (``command`` None removes the validation)."""

    consumer: str | None
    provider: str | None
    type: str | None
    version_constraint: str | None
    status: str | None
    notes: str | None
    command: str | None
    expected_pattern: str | None
    timeout: float | None


class RepoFields(TypedDict, total=False):
    """The fields of ``REPO_FIELDS``: what :meth:`StructureEdits.add_repo` takes besides
    its own arguments, and :meth:`StructureEdits.update_repo` too."""

    breaker: Spec | None
    default_branch: str | None
    remote: str | None
    url: str | None
    land_command: str | None
    revert_command: str | None
    land_hooks: bool | None  # False or None: the default (off), the key removed
    cache: bool | Spec | None
    pace: Spec | None
    prepare: str | None


class RepoChanges(RepoFields, total=False):
    """What :meth:`StructureEdits.update_repo` takes (``REPO_EDITABLE``)."""

    path: str | None
    description: str | None
    role: str | None
    tags: Iterable[str] | None
    concurrency: int | None


class PlanDeleted(TypedDict):
    """``coord plan delete --json``: ``dropped`` lists the todos taken out of the plan
    (``field`` "plan": their ``plan:`` went; "milestones": they were in it through
    its milestones only)."""

    deleted: str
    plan: JSONObject
    dropped: list[ReferenceDict]


class MilestoneDeleted(TypedDict):
    """``coord milestone delete --json``: ``dropped`` lists the todos that were in the
    plan through this milestone only, and left it."""

    deleted: str
    plan: str
    milestone: JSONObject
    dropped: list[ReferenceDict]


class DependencyDeleted(TypedDict):
    """``coord dep remove --json``."""

    deleted: str
    dependency: JSONObject


class RepoDeleted(TypedDict):
    """``coord repo remove --json``: with ``--force``, what went with the repo."""

    deleted: str
    repo: JSONObject
    deleted_todos: list[str]
    deleted_dependencies: list[str]
    dropped: list[ReferenceDict]


class FleetEdit(TypedDict, total=False):
    """What :meth:`StructureEdits.apply_fleet` takes (``coord init``, ``init --check
    --apply``): repos and dependencies to add (as ``coordination.fleet.drift`` builds them),
    inferred dependencies to remove by id, inferred dependencies' fields to update by id
    (``type``, ``indirect``, ``version_constraint``, ``source``; None removes one), default
    branches and clone URLs to set, repos to prune."""

    repos: Sequence[Mapping[str, object]]
    dependencies: Sequence[Mapping[str, object]]
    remove_dependencies: Sequence[str]
    update_dependencies: Mapping[str, Mapping[str, object]]
    default_branches: Mapping[str, str]
    urls: Mapping[str, str]
    prune: Sequence[str]


class KeptReference(ReferenceDict):
    """A repo to prune that something else still names: which repo, and what names it."""

    repo: str


class FleetApplied(TypedDict):
    """What one :meth:`StructureEdits.apply_fleet` did: the ids the new dependencies
    got, and the repos pruned or kept because something still names them."""

    repos_added: list[str]
    dependencies_added: list[str]
    dependencies_removed: list[str]
    dependencies_updated: list[str]
    branches_set: list[str]
    urls_set: list[str]
    repos_pruned: list[str]
    pruned_dependencies: list[str]
    kept: list[KeptReference]


class _Found(TypedDict):
    plan: CommentedMap
    plan_id: str
    index: int
    item: CommentedMap
    at: int


@operations  # each edit's audit entry is named after the method called (audit.py)
class StructureEdits:
    """Plans, milestones, dependencies and repos (mixed into CoordinationManager,
    whose ``@operations`` names each public method in the audit log)."""

    store: CatalogStore

    # -- plans ---------------------------------------------------------------------
    def create_plan(self, title: str, *, description: str = "", status: str = "draft",
                    repos: Iterable[str] = (),
                    criteria: Iterable[str | Mapping[str, str]] = (),
                    change: Spec | None = None, waves: Sequence[Spec] = (),
                    pace: Spec | None = None) -> Plan:
        """Append a new plan (``criteria``: its completion criteria; ``change``,
        ``waves``, ``pace`` as the catalog writes them, checked by the loader)."""
        _title(title, "a plan")
        choice(status, PlanStatus, "plan status")
        names, crit = uniq(repos), criteria_items(criteria, "a plan's criteria")

        def edit(doc: CommentedMap) -> str:
            require_repos(doc, names)
            new_id = new_id_in(doc, "plan", self.store.path)
            plan = new_item(
                PLAN_KEYS, id=new_id, title=title, description=description, status=status,
                repos=names, completion_criteria=crit)
            entries = {k: v for k, v in (change or {}).items() if v is not None}
            for key, value in (("change", entries), ("waves", list(waves or ())),
                               ("pace", pace)):
                put_field(plan, key, value, PLAN_KEYS)
            append_item(section(doc, "plans", create=True), plan)
            return new_id

        return self._plan(self.store.update(edit))

    def update_plan(self, id_: str, **changes: Unpack[PlanChanges]) -> Plan:
        """Change some fields of a plan; None or an empty value removes an optional one."""
        _editable(changes, PLAN_EDITABLE, "a plan")
        if "title" in changes:
            _title(changes["title"], "a plan")
        if changes.get("status") is None:
            changes.pop("status", None)  # removing would silently reset it to draft
        choice(changes.get("status"), PlanStatus, "plan status")
        lists = {k: uniq(changes.pop(k) or ()) for k in ("repos",) if k in changes}
        if "completion_criteria" in changes:
            lists["completion_criteria"] = criteria_items(  # type: ignore[assignment]
                changes.pop("completion_criteria") or (), "a plan's criteria")
        fields = {k: changes.pop(k) for k in PLAN_FIELDS if k in changes}  # type: ignore[misc]
        has_change = "change" in changes
        change = changes.pop("change", None)
        _nothing(changes, lists, fields, has_change)

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "plans", id_, "plan")
            require_repos(doc, lists.get("repos", ()))
            for key, value in changes.items():
                put(item, key, value, PLAN_KEYS)
            for key, value in fields.items():
                put_field(item, key, value, PLAN_KEYS)
            if has_change:
                if change is None:
                    put(item, "change", None, PLAN_KEYS)
                else:
                    put_mapping_entries(item, "change", change, PLAN_KEYS)
            for key, values in lists.items():
                put_list(item, key, values, PLAN_KEYS)

        self.store.update(edit)
        return self._plan(id_)

    def delete_plan(self, id_: str, *, force: bool = False) -> PlanDeleted:
        """Remove a plan and its milestones. While todos belong to it (their ``plan:``
        names it, or one of its milestones lists them), refused with
        :class:`StillReferenced` naming each; with ``force`` their ``plan:`` goes in the
        same edit and they stay, in no plan."""
        before = self._plan(id_)

        def edit(doc: CommentedMap) -> list[Reference]:
            find_item(doc, "plans", id_, "plan")
            refs = _plan_members(doc, id_)
            if refs and not force:
                n = len(refs)
                raise StillReferenced(
                    id_, refs, reason=f"{n} todo{'s' if n != 1 else ''} belong{'' if n != 1 else 's'} to it",
                    hint=f"move them to another plan (`coord todo update`) or delete them "
                    f"first, or pass --force to delete {id_} and leave them in no plan")
            todos = section(doc, "todos")
            for r in refs:
                if r.field == "plan":  # loc: ("coordination", "todos", index, "plan")
                    put(todos[int(r.loc[2])], "plan", None, TODO_KEYS)
            remove_item(doc, "plans", id_, "plan")
            return refs

        dropped = self._refusable(edit)
        return {"deleted": id_, "plan": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in dropped]}

    # -- milestones ----------------------------------------------------------------
    def add_milestone(self, plan: str, title: str = "", *, due: dt.date | None = None,
                      todos: Iterable[str] = (), deliverables: Iterable[str] = ()) -> Milestone:
        """Append a milestone to ``plan``; its id is new across the catalog."""
        listed, goods = uniq(todos), [d for d in deliverables if d.strip()]

        def edit(doc: CommentedMap) -> str:
            item = find_item(doc, "plans", plan, "plan")
            for t in listed:
                find_item(doc, "todos", t, "todo")
            new_id = new_id_in(doc, "milestone", self.store.path)
            ms = new_item(MILESTONE_KEYS, id=new_id, title=title, due=fresh(due),
                          todos=listed, deliverables=goods)
            current = item.get("milestones")
            if isinstance(current, CommentedSeq) and len(current) and not current.fa.flow_style():
                append_item(current, ms)
            else:
                put(item, "milestones", [*(current or ()), ms], PLAN_KEYS)
            return new_id

        return self._milestone(self.store.update(edit))[1]

    def update_milestone(self, id_: str, **changes: Unpack[MilestoneChanges]) -> Milestone:
        """Change some fields of a milestone; None or an empty value removes one."""
        _editable(changes, MILESTONE_EDITABLE, "a milestone")
        lists = {k: uniq(changes.pop(k) or ()) for k in ("todos",) if k in changes}
        if "deliverables" in changes:
            lists["deliverables"] = [d for d in changes.pop("deliverables") or () if d.strip()]
        if "due" in changes:
            changes["due"] = fresh(changes["due"])
        _nothing(changes, lists)

        def edit(doc: CommentedMap) -> None:
            ms = _find_milestone(doc, id_)["item"]
            for t in lists.get("todos", ()):
                find_item(doc, "todos", t, "todo")
            for key, value in changes.items():
                put(ms, key, value, MILESTONE_KEYS)
            for key, values in lists.items():
                put_list(ms, key, values, MILESTONE_KEYS)

        self.store.update(edit)
        return self._milestone(id_)[1]

    def delete_milestone(self, id_: str, *, force: bool = False) -> MilestoneDeleted:
        """Remove a milestone. When todos are in its plan through it alone (no ``plan:``
        of their own, no other milestone of the plan), they would leave the plan: refused
        with :class:`StillReferenced` naming them, unless ``force``."""
        plan_id, before = self._milestone(id_)

        def edit(doc: CommentedMap) -> list[Reference]:
            found = _find_milestone(doc, id_)
            plan, pid = found["plan"], found["plan_id"]
            others = {str(t) for m in plan.get("milestones") or () if isinstance(m, dict)
                      and m.get("id") != id_ for t in m.get("todos") or ()}
            own = {str(t.get("id")) for t in section(doc, "todos")
                   if isinstance(t, dict) and t.get("plan") == pid}
            refs = []
            for k, t in enumerate(found["item"].get("todos") or ()):
                if t not in others and t not in own:
                    refs.append(Reference(
                        str(t), "todo", "milestones", pid,
                        ("coordination", "plans", found["index"], "milestones",
                         found["at"], "todos", k), pid,
                        text=f"{t} is in {pid} through {id_} alone"))
            if refs and not force:
                n = len(refs)
                raise StillReferenced(
                    id_, refs, reason=f"{n} todo{'s' if n != 1 else ''} would leave {pid}",
                    hint=f"list them in another milestone or give them `plan: {pid}` "
                    f"(`coord todo update`... or a hand edit) first, or pass --force to delete "
                    f"{id_} and let them leave the plan")
            milestones = plan["milestones"]
            if len(milestones) == 1:
                remove_key(plan, "milestones")
            else:
                remove_index(milestones, found["at"])
            return refs

        dropped = self._refusable(edit)
        return {"deleted": id_, "plan": plan_id, "milestone": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in dropped]}

    # -- dependencies --------------------------------------------------------------
    def add_dependency(
        self, consumer: str, provider: str, *, type: str = "runtime",
        version_constraint: str | None = None, status: str = "unknown", notes: str = "",
        command: str | None = None, expected_pattern: str | None = None,
        timeout: float | None = None,
    ) -> Dependency:
        """Append a dependency of ``consumer`` on ``provider``; ``command`` (with
        ``expected_pattern``, ``timeout``) is its validation for `coord dep check`."""
        choice(type, DependencyType, "dependency type")
        choice(status, DependencyStatus, "dependency status")
        if consumer == provider:
            raise UsageError(f"a repo cannot depend on itself ({consumer})")
        _check_validation(command, expected_pattern, timeout, given_command=True)
        check = _validation(command, expected_pattern, timeout)

        def edit(doc: CommentedMap) -> str:
            require_repos(doc, [consumer, provider])
            new_id = new_id_in(doc, "dependency", self.store.path)
            append_item(section(doc, "dependencies", create=True), new_item(
                DEP_KEYS, id=new_id, consumer=consumer, provider=provider, type=type,
                version_constraint=version_constraint, status=status, notes=notes,
                validation=check))
            return new_id

        return self._dependency(self.store.update(edit))

    def update_dependency(self, id_: str, **changes: Unpack[DependencyChanges]) -> Dependency:
        """Change some fields of a dependency; ``command``, ``expected_pattern`` and
        ``timeout`` are its validation's (``command`` None removes the validation)."""
        _editable(changes, DEP_EDITABLE, "a dependency")
        for key in ("consumer", "provider", "type", "status"):
            if key in changes and not changes[key]:
                raise UsageError(f"a dependency needs its {key}; give a new one")
        choice(changes.get("type"), DependencyType, "dependency type")
        choice(changes.get("status"), DependencyStatus, "dependency status")
        check: dict[str, str | float | None] = {}
        if "command" in changes:
            check["command"] = changes.pop("command")
        if "expected_pattern" in changes:
            check["expected_pattern"] = changes.pop("expected_pattern")
        if "timeout" in changes:
            check["timeout"] = changes.pop("timeout")
        _nothing(changes, check)
        command, pattern, seconds = (check.get(k) for k in VALIDATION_KEYS)
        _check_validation(None if command is None else str(command),
                          None if pattern is None else str(pattern),
                          None if seconds is None else float(seconds),
                          given_command="command" in check)

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "dependencies", id_, "dependency")
            ends = {k: changes.get(k, item.get(k)) for k in ("consumer", "provider")}
            if ends["consumer"] == ends["provider"]:
                raise UsageError(f"a repo cannot depend on itself ({ends['consumer']})")
            require_repos(doc, [str(v) for k, v in changes.items() if k in ends and v])
            for key, value in changes.items():
                put(item, key, value, DEP_KEYS)
            if "command" in check and not check["command"]:
                put(item, "validation", None, DEP_KEYS)
            elif check:
                if not isinstance(item.get("validation"), dict) and not check.get("command"):
                    raise UsageError(f"{id_} has no validation command",
                                     hint="give one with --check COMMAND")
                put_entries(item, "validation", check, DEP_KEYS)

        self.store.update(edit)
        return self._dependency(id_)

    def remove_dependency(self, id_: str) -> DependencyDeleted:
        """Remove a dependency (nothing else in the catalog names one)."""
        before = self._dependency(id_)

        def edit(doc: CommentedMap) -> None:
            remove_item(doc, "dependencies", id_, "dependency")

        self.store.update(edit)
        return {"deleted": id_, "dependency": before.model_dump(mode="json")}

    # -- repos ---------------------------------------------------------------------
    def add_repo(self, name: str, *, path: str | None = None, description: str = "",
                 role: str = "", tags: Iterable[str] = (), concurrency: int | None = None,
                 **fields: Unpack[RepoFields]) -> Repo:
        """Append a repo (``path``: its checkout, relative to the catalog; default its
        name; ``fields``: those of ``REPO_FIELDS``, checked by the loader)."""
        _editable(fields, set(REPO_FIELDS), "a new repo")
        if not re.match(REPO_NAME_RE, name):
            raise UsageError(f"bad repo name {name!r}",
                             hint="lower-case letters, digits, '.', '_' and '-', starting "
                             "with a letter or digit (libcore, api-v2)")
        _concurrency(concurrency)
        labels = uniq(tags)

        def edit(doc: CommentedMap) -> None:
            if name in repo_names(doc):
                raise UsageError(f"repo {name!r} exists already",
                                 hint=f"change it with `coord repo update {name}`")
            repos = doc.get("repos")
            if not isinstance(repos, CommentedSeq) or (not repos and repos.fa.flow_style()):
                repos = CommentedSeq()
                if "repos" in doc:
                    doc["repos"] = repos
                else:
                    doc.insert(list(doc).index("version") + 1 if "version" in doc else 0,
                               "repos", repos)
            item = new_item(REPO_KEYS, name=name, path=path, description=description,
                            role=role, tags=labels, concurrency=concurrency)
            for key, value in fields.items():
                put_field(item, key, None if value is False and key == "land_hooks"
                          else value, REPO_KEYS)
            append_item(repos, item)

        self.store.update(edit)
        return self._repo_named(name)

    def update_repo(self, name: str, **changes: Unpack[RepoChanges]) -> Repo:
        """Change some fields of a repo (not its name: everything names it by that);
        None or an empty value removes an optional field."""
        _editable(changes, REPO_EDITABLE, "a repo")
        if "concurrency" in changes and changes["concurrency"] is None:
            changes.pop("concurrency")
        _concurrency(changes.get("concurrency"))
        lists = {k: uniq(changes.pop(k) or ())
                 for k in ("tags",) if k in changes}
        fields = {k: changes.pop(k) for k in REPO_FIELDS if k in changes}  # type: ignore[misc]
        if fields.get("land_hooks") is False:
            fields["land_hooks"] = None  # the default: written as no key, like a new repo
        _nothing(changes, lists, fields)

        def edit(doc: CommentedMap) -> None:
            item = _find_repo(doc, name)[1]
            for key, value in changes.items():
                put(item, key, value, REPO_KEYS)
            for key, value in fields.items():
                put_field(item, key, value, REPO_KEYS)
            for key, values in lists.items():
                put_list(item, key, values, REPO_KEYS)

        self.store.update(edit)
        return self._repo_named(name)

    def remove_repo(self, name: str, *, force: bool = False) -> RepoDeleted:
        """Remove a repo. While todos run in it, dependencies name it, or issues and plans
        list it, refused with :class:`StillReferenced` naming each; with ``force`` its
        todos and dependencies are deleted too (references to those todos dropped) and
        it is taken out of the issues' and plans' repos, in the same edit."""
        before = self._repo_named(name)

        def edit(doc: CommentedMap) -> tuple[list[str], list[str], list[Reference]]:
            _find_repo(doc, name)
            refs = _repo_users(doc, name)
            if refs and not force:
                raise StillReferenced(
                    name, refs, reason=f"{len(refs)} item{'s' if len(refs) != 1 else ''} "
                    "name it",
                    hint=f"move or delete them first, or pass --force to delete {name} with "
                    "its todos and dependencies and take it out of the issues' and plans' "
                    "repos")
            todos = [r.referrer for r in refs if r.field == "repo"]
            deps = [r.referrer for r in refs if r.field in ("consumer", "provider")]
            for r in refs:
                if r.field == "repos":
                    parent = find_item(doc, "issues" if r.kind == "issue" else "plans",
                                       r.referrer, r.kind)
                    remove_from(parent, "repos", name)
            dropped = _drop_todo_references(doc, set(todos))
            # Each found once by its index (refs carry it), removed from the end down.
            for sec, field in (("dependencies", ("consumer", "provider")), ("todos", ("repo",))):
                at = sorted({int(r.loc[2]) for r in refs if r.field in field}, reverse=True)
                for i in at:
                    remove_at(doc, sec, i)
            remove_repo_item(doc, name)
            return todos, list(dict.fromkeys(deps)), [
                r for r in refs if r.field == "repos"] + dropped

        todos, deps, dropped = self._refusable(edit)
        return {"deleted": name, "repo": before.model_dump(mode="json"),
                "deleted_todos": todos, "deleted_dependencies": deps,
                "dropped": [r.to_dict() for r in dropped]}

    # -- a fleet at once (coord init) -------------------------------------------------
    def apply_fleet(self, changes: FleetEdit) -> FleetApplied:
        """Take what ``coord init`` found in one edit (one audit entry): add repos and
        dependencies, remove the inferred dependencies whose manifests dropped them,
        set moved default branches, and prune repos whose checkout is gone, with their
        dependencies. A pruned repo that a todo, issue or plan still names is kept and
        listed in ``kept`` (delete or move those first, or `coord repo remove --force`)."""
        new_repos = list(changes.get("repos") or ())
        for r in new_repos:
            if not re.match(REPO_NAME_RE, str(r.get("name", ""))):
                raise UsageError(f"bad repo name {r.get('name')!r}")
        new_deps = list(changes.get("dependencies") or ())
        for d in new_deps:
            choice(str(d.get("type", "runtime")), DependencyType, "dependency type")
            if d.get("consumer") == d.get("provider"):
                raise UsageError(f"a repo cannot depend on itself ({d.get('consumer')})")
        updates = dict(changes.get("update_dependencies") or {})
        for fields in updates.values():
            if set(fields) - _FLEET_UPDATABLE:
                raise UsageError(f"cannot update {sorted(set(fields) - _FLEET_UPDATABLE)} "
                                 "of an inferred dependency")
            if fields.get("type") is not None:
                choice(str(fields["type"]), DependencyType, "dependency type")

        def edit(doc: CommentedMap) -> FleetApplied:
            done: FleetApplied = {"repos_added": [], "dependencies_added": [],
                                  "dependencies_removed": [], "dependencies_updated": [],
                                  "branches_set": [], "urls_set": [],
                                  "repos_pruned": [], "pruned_dependencies": [], "kept": []}
            names = set(repo_names(doc))
            # Before anything is removed: an id removed in this edit is not handed out again.
            new_id = new_id_in(doc, "dependency", self.store.path)
            if new_repos:
                repos = doc.get("repos")
                if not isinstance(repos, CommentedSeq) or (not repos and repos.fa.flow_style()):
                    repos = CommentedSeq()
                    if "repos" in doc:
                        doc["repos"] = repos
                    else:
                        doc.insert(list(doc).index("version") + 1 if "version" in doc else 0,
                                   "repos", repos)
                for r in new_repos:
                    name = str(r["name"])
                    if name in names:
                        raise UsageError(f"repo {name!r} exists already",
                                         hint="run `coord init --check` to see what changed")
                    names.add(name)
                    append_item(repos, new_item(REPO_KEYS, **r))
                    done["repos_added"].append(name)
            for name, branch in (changes.get("default_branches") or {}).items():
                put(_find_repo(doc, name)[1], "default_branch", branch, REPO_KEYS)
                done["branches_set"].append(name)
            for name, url in (changes.get("urls") or {}).items():
                put(_find_repo(doc, name)[1], "url", git_remote(url), REPO_KEYS)
                done["urls_set"].append(name)
            gone = set(changes.get("remove_dependencies") or ())
            pruned: set[str] = set()
            for name in changes.get("prune") or ():
                _find_repo(doc, name)
                others = [r for r in _repo_users(doc, name)
                          if r.field not in ("consumer", "provider")]
                if others:
                    done["kept"].extend({**r.to_dict(), "repo": name} for r in others)
                    continue
                pruned.add(name)
            deps = section(doc, "dependencies")
            for i in range(len(deps) - 1, -1, -1):
                d = deps[i]
                if not isinstance(d, dict):
                    continue
                did = str(d.get("id"))
                if did in gone:
                    remove_at(doc, "dependencies", i)
                    done["dependencies_removed"].append(did)
                elif did in updates and isinstance(d, CommentedMap) \
                        and d.get("consumer") not in pruned and d.get("provider") not in pruned:
                    for field, value in updates[did].items():
                        if field == "source":
                            put_field(d, field, dict(value) if isinstance(value, Mapping)
                                      else None, DEP_KEYS)
                        else:
                            put(d, field, value, DEP_KEYS)
                    done["dependencies_updated"].append(did)
                elif d.get("consumer") in pruned or d.get("provider") in pruned:
                    remove_at(doc, "dependencies", i)
                    done["pruned_dependencies"].append(did)
            for name in sorted(pruned):
                remove_repo_item(doc, name)
                done["repos_pruned"].append(name)
            if new_deps:
                items = section(doc, "dependencies", create=True)
                for d in new_deps:
                    if done["dependencies_added"]:
                        new_id = next_id("dependency", [new_id])  # the same width
                    source = d.get("source")
                    fields = {k: v for k, v in d.items() if k != "source"}
                    item = new_item(DEP_KEYS, id=new_id, **fields)
                    if isinstance(source, Mapping):
                        put_field(item, "source", dict(source), DEP_KEYS)
                    append_item(items, item)
                    done["dependencies_added"].append(new_id)
            done["dependencies_removed"].reverse()
            done["dependencies_updated"].reverse()
            done["pruned_dependencies"].reverse()
            return done

        def direct(data: bytes) -> tuple[bytes, FleetApplied] | None:
            """The edit of a catalog `coord init` has just created (comment lines
            and ``version: 1``), with only repos and dependencies to add: written as
            ``edit`` would write it (see ``fresh``), without the round trip."""
            if (changes.get("remove_dependencies") or changes.get("default_branches")
                    or changes.get("urls") or changes.get("prune") or updates):
                return None
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if not fresh_catalog.is_fresh(text):
                return None
            done: FleetApplied = {"repos_added": [], "dependencies_added": [],
                                  "dependencies_removed": [], "dependencies_updated": [],
                                  "branches_set": [], "urls_set": [],
                                  "repos_pruned": [], "pruned_dependencies": [], "kept": []}
            names: set[str] = set()
            for r in new_repos:
                name = str(r["name"])
                if name in names:
                    raise UsageError(f"repo {name!r} exists already",
                                     hint="run `coord init --check` to see what changed")
                names.add(name)
                done["repos_added"].append(name)
            deps: list[tuple[str, Mapping[str, object]]] = []
            if new_deps:
                new_id = new_id_in(CommentedMap(), "dependency", self.store.path)  # none in it
                for d in new_deps:
                    if deps:
                        new_id = next_id("dependency", [new_id])  # the same width
                    deps.append((new_id, d))
                    done["dependencies_added"].append(new_id)
            try:
                new = fresh_catalog.fleet_text(text, new_repos, REPO_KEYS, deps, DEP_KEYS)
            except fresh_catalog.Unsupported:
                return None
            return new.encode("utf-8"), done

        return self.store.update(edit, direct=direct)

    # -- reads after an edit ---------------------------------------------------------
    def _plan(self, id_: str) -> Plan:
        cat = self.store.load()
        plan = cat.plan(id_)
        if plan is None:
            raise unknown(id_, [p.id for p in cat.coordination.plans], "plan")
        return plan

    def _milestone(self, id_: str) -> tuple[str, Milestone]:
        cat = self.store.load()
        for p in cat.coordination.plans:
            for ms in p.milestones:
                if ms.id == id_:
                    return p.id, ms
        raise unknown(id_, [m.id for p in cat.coordination.plans for m in p.milestones],
                      "milestone")

    def _dependency(self, id_: str) -> Dependency:
        cat = self.store.load()
        dep = cat.dependency(id_)
        if dep is None:
            raise unknown(id_, [d.id for d in cat.coordination.dependencies], "dependency")
        return dep

    def _repo_named(self, name: str) -> Repo:
        cat = self.store.load()
        repo = cat.repo(name)
        if repo is None:
            raise unknown(name, [r.name for r in cat.repos], "repo")
        return repo

    def _refusable(self, edit: Callable[[CommentedMap], T]) -> T:
        """``store.update(edit)``; a refusal comes back with file and line filled in."""
        try:
            return self.store.update(edit)
        except StillReferenced as exc:
            raise exc.located(self._located(exc.problems)) from None

    def _located(self, problems: list[Problem]) -> list[Problem]:
        raise NotImplementedError  # CoordinationManager's


# -- the document ---------------------------------------------------------------------
def _title(title: str | None, what: str) -> None:
    if not (title or "").strip():
        raise UsageError(f"{what} needs a non-empty title")


def _editable(changes: object, allowed: set[str], what: str) -> None:
    assert isinstance(changes, dict)
    bad = sorted(set(changes) - allowed)
    if bad:
        raise UsageError(f"cannot update {', '.join(bad)} of {what}; "
                         f"editable: {', '.join(sorted(allowed))}")


def _nothing(*parts: object) -> None:
    if not any(parts):
        raise UsageError("nothing to update", hint="pass at least one field to change")


def _concurrency(value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 1 <= value <= MAX_CONCURRENCY):
        raise UsageError(f"bad --concurrency {value!r}; a whole number from 1 to "
                         f"{MAX_CONCURRENCY}")


def _check_validation(command: str | None, pattern: str | None, timeout: float | None,
                      *, given_command: bool) -> None:
    if given_command and command is not None and not command.strip():
        raise UsageError("an empty validation command", hint="leave --check out, or give "
                         "the command that prints the provider's version")
    if not command and given_command and (pattern or timeout is not None):
        raise UsageError("--expect and --check-timeout need a validation command (--check)")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"bad --expect {pattern!r}: not a valid regular expression: "
                             f"{exc}") from None
    if timeout is not None and (isinstance(timeout, bool) or not 0 < timeout <= MAX_CHECK_TIMEOUT):
        raise UsageError(f"bad --check-timeout {timeout!r}; seconds, more than 0 and at most "
                         f"{MAX_CHECK_TIMEOUT}")


def _validation(command: str | None, pattern: str | None, timeout: float | None
                ) -> CommentedMap | None:
    """A new validation mapping, written as a block (as the example writes them)."""
    if not command:
        return None
    out = CommentedMap()
    for key, value in zip(VALIDATION_KEYS, (command, pattern, timeout)):
        if value is not None and value != "":
            out[key] = value
    return out


def _find_milestone(doc: CommentedMap, id_: str) -> _Found:
    for i, plan in enumerate(section(doc, "plans")):
        if not isinstance(plan, CommentedMap):
            continue
        for j, ms in enumerate(plan.get("milestones") or ()):
            if isinstance(ms, CommentedMap) and ms.get("id") == id_:
                return {"plan": plan, "plan_id": str(plan.get("id")), "index": i,
                        "item": ms, "at": j}
    raise unknown(id_, milestone_ids(doc), "milestone")


def _find_repo(doc: CommentedMap, name: str) -> tuple[int, CommentedMap]:
    for i, item in enumerate(doc.get("repos") or ()):
        if isinstance(item, CommentedMap) and item.get("name") == name:
            return i, item
    raise unknown(name, repo_names(doc), "repo")


def _plan_members(doc: CommentedMap, plan_id: str) -> list[Reference]:
    """The todos of a plan: those whose ``plan:`` names it, then those its milestones
    list (each once)."""
    out: list[Reference] = []
    seen: set[str] = set()
    for i, t in enumerate(section(doc, "todos")):
        if isinstance(t, dict) and t.get("plan") == plan_id:
            tid = str(t.get("id"))
            seen.add(tid)
            out.append(Reference(tid, "todo", "plan", plan_id, ("coordination", "todos", i, "plan"),
                                 text=f"{tid} belongs to {plan_id}"))
    for i, plan in enumerate(section(doc, "plans")):
        if not isinstance(plan, dict) or plan.get("id") != plan_id:
            continue
        for j, ms in enumerate(plan.get("milestones") or ()):
            if not isinstance(ms, dict):
                continue
            for k, t in enumerate(ms.get("todos") or ()):
                if t not in seen:
                    seen.add(str(t))
                    out.append(Reference(
                        str(t), "todo", "milestones", plan_id,
                        ("coordination", "plans", i, "milestones", j, "todos", k), plan_id,
                        text=f"{t} is in {plan_id} through its milestone {ms.get('id')}"))
    return out


def _repo_users(doc: CommentedMap, name: str) -> list[Reference]:
    """Everything that names repo ``name``: todos in it, dependencies on or of it,
    issues and plans listing it."""
    out: list[Reference] = []
    for i, t in enumerate(section(doc, "todos")):
        if isinstance(t, dict) and t.get("repo") == name:
            tid = str(t.get("id"))
            out.append(Reference(tid, "todo", "repo", name, ("coordination", "todos", i, "repo"),
                                 text=f"todo {tid} runs in {name}"))
    for i, d in enumerate(section(doc, "dependencies")):
        if not isinstance(d, dict):
            continue
        for end in ("consumer", "provider"):
            if d.get(end) == name:
                did = str(d.get("id"))
                out.append(Reference(did, "dependency", end, name,
                                     ("coordination", "dependencies", i, end),
                                     text=f"dependency {did} has {name} as its {end}"))
    for sec, kind in (("issues", "issue"), ("plans", "plan")):
        for i, x in enumerate(section(doc, sec)):
            if isinstance(x, dict):
                for j, r in enumerate(x.get("repos") or ()):
                    if r == name:
                        xid = str(x.get("id"))
                        out.append(Reference(xid, kind, "repos", name,
                                             ("coordination", sec, i, "repos", j),
                                             text=f"{kind} {xid} lists {name} in its repos"))
    return out


def _drop_todo_references(doc: CommentedMap, gone: set[str]) -> list[Reference]:
    """Take the todos ``gone`` out of every other todo's ``blocked_by``/``blocking`` and
    every milestone's ``todos``, in one pass; returns what was dropped (references from
    todos that go too are not listed)."""
    out: list[Reference] = []
    if not gone:
        return out
    for i, t in enumerate(section(doc, "todos")):
        if not isinstance(t, CommentedMap) or t.get("id") in gone:
            continue
        for field in ("blocked_by", "blocking"):
            for j, v in _take_out(t, field, gone):
                # (a blocking entry always mirrors the gone todo's own blocked_by)
                out.append(Reference(str(t.get("id")), "todo", field, v,
                                     ("coordination", "todos", i, field, j),
                                     mirror=field == "blocking"))
    for i, plan in enumerate(section(doc, "plans")):
        if not isinstance(plan, CommentedMap):
            continue
        for j, ms in enumerate(plan.get("milestones") or ()):
            if isinstance(ms, CommentedMap):
                for k, v in _take_out(ms, "todos", gone):
                    out.append(Reference(
                        str(ms.get("id")), "milestone", "todos", v,
                        ("coordination", "plans", i, "milestones", j, "todos", k),
                        str(plan.get("id"))))
    return out


def _take_out(item: CommentedMap, field: str, gone: set[str]) -> list[tuple[int, str]]:
    """Remove the ids of ``gone`` from the list ``item[field]``; (index, id) of each."""
    hits = [(j, str(v)) for j, v in enumerate(item.get(field) or ()) if v in gone]
    for v in dict.fromkeys(v for _, v in hits):
        remove_from(item, field, v)
    return hits
