"""Todo edits, the ``todos`` part of :class:`~coordination.catalog.manager.CoordinationManager`:
create, complete, update and delete a todo, and set a template's instances, each one
:meth:`CatalogStore.update` (one audit entry), checked against the document being
edited: blockers must name something, and never close a cycle."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.audit.log import audited
from coordination.catalog.edits.edit_base import CatalogEdits, delete_item
from coordination.catalog.edits.document import (
    TODO_KEYS,
    MilestoneChange,
    ReferenceDict,
    append_item,
    append_unique,
    find_item,
    milestone_changes,
    milestones_done,
    new_id_in,
    new_item,
    put,
    put_entries,
    put_field,
    put_instances,
    put_list,
    remove_from,
    section,
)
from coordination.catalog.edits.inputs import choice, criteria_items, require_repos as _require_repos, \
    uniq as _uniq
from coordination.catalog.models import MAX_RETRIES, MAX_TODO_TIMEOUT, Catalog, Priority, \
    Todo, TodoStatus, kind_of
from coordination.catalog.selection.templates import selected_repos, split_instance
from coordination.errors import UsageError
from coordination.jsonable import JSONObject

# Fields `update_todo` may change; id, repo, plan and the blocking mirrors are not among them.
TODO_EDITABLE = {
    "task", "description", "run", "undo", "status", "priority", "assignee", "blocked_by",
    "timeout", "retries", "resources", "estimated_hours", "labels", "env",
    "commit", "verify", "gate", "cache", "acceptance_criteria", "due", "mask_env",
}
#: Todo fields the loader validates, set as given (see ``put_field``).
TODO_FIELDS = ("commit", "verify", "gate", "cache", "due", "mask_env")


#: (completed, reopened) milestones of one edit
MilestonesMoved = tuple[list[MilestoneChange], list[MilestoneChange]]


class TodoChanges(TypedDict, total=False):
    """What :meth:`Todos.update` takes (``TODO_EDITABLE``)."""

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
    due: str | None  # as the catalog writes it (2026-12-01T12:00Z, 2026-12-01); None removes it
    mask_env: Iterable[str] | None  # replaces them; empty or None removes `mask_env:`


class TodoDeleted(TypedDict):
    """``coord todo delete --json``."""

    deleted: str
    todo: JSONObject
    dropped: list[ReferenceDict]


@dataclass(frozen=True)
class TodoEdited:
    """What :meth:`Todos.complete` and :meth:`Todos.update` made: the todo as the
    catalog now holds it, and the milestones the edit completed and reopened (by hand:
    `todo complete`, `todo update --status`), for the caller to announce."""

    todo: Todo
    completed: list[MilestoneChange] = field(default_factory=list)
    reopened: list[MilestoneChange] = field(default_factory=list)


class Todos(CatalogEdits):
    """Todos and a template's instances created, completed, changed and deleted
    (``manager.todos``)."""

    @audited("create_todo")
    def create(
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
        due: str | None = None, mask_env: Iterable[str] = (),
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
            from coordination.catalog.selection.selectors import git_changed, select  # lazy: templates only

            try:
                select(self.store.load(), for_each, self.store.base_dir, git_changed)
            except UsageError as exc:
                raise UsageError(f"for_each {for_each!r}: {exc.message}", hint=exc.hint) from None
        env = {k: v for k, v in check_env(env or {}).items() if v is not None}
        choice(priority, Priority, "priority")
        if estimate is not None and estimate < 0:
            raise UsageError(f"bad estimate {estimate}; hours cannot be negative")
        blockers = _uniq(blocked_by)
        _check_blocker_ids(blockers)

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
                               ("verify", verify or None), ("due", due),
                               ("mask_env", _uniq(mask_env))):
                put_field(item, key, value, TODO_KEYS)
            append_item(section(doc, "todos", create=True), item)
            for b in blockers:
                if b.startswith("TODO-") and split_instance(b)[1] is None:
                    append_unique(find_item(doc, "todos", b, "todo"), "blocking", new_id, TODO_KEYS)
            return new_id

        return self.reads.get_todo(self.store.update(edit))

    @audited("complete_todo")
    def complete(self, id_: str, hours: float | None = None) -> TodoEdited:
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
            return TodoEdited(self.reads.get_todo(id_))

        def edit(doc: CommentedMap) -> MilestonesMoved:
            before = milestones_done(doc)
            item = find_item(doc, "todos", id_, "todo")
            put(item, "status", TodoStatus.completed.value, TODO_KEYS)
            if item.get("for_each"):
                put(item, "instances", None, TODO_KEYS)  # completed as a whole: every instance
            if hours is not None:
                put(item, "actual_hours", hours, TODO_KEYS)
            return milestone_changes(before, milestones_done(doc))

        completed, reopened = self.store.update(edit)
        return TodoEdited(self.reads.get_todo(id_), completed, reopened)

    # -- a template's instances ------------------------------------------------------
    def _set_instances(self, template_id: str, statuses: Mapping[str, str]) -> None:
        """Set instances of ``template_id`` (repo -> status; ``pending``: the entry
        goes) in one edit; the template's status follows them as a sync sets it."""
        cat = self.reads.catalog()
        selected: list[str] = []
        for repo in statuses:
            _, _, selected = self.reads.template_of(cat, f"{template_id}[{repo}]")

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "todos", template_id, "todo")
            put_instances(item, instances_after(item, statuses, selected), selected)

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

    @audited("update_todo")
    def update(self, id_: str, **changes: Unpack[TodoChanges]) -> TodoEdited:
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
            return TodoEdited(self._update_instance(id_, tid, repo, changes))
        update = _todo_update(changes)
        cat = self.reads.catalog()
        current = cat.todo(id_)
        whole: dict[str, str] | None = None  # a template's status: every instance's
        if current is not None and current.for_each is not None and "status" in changes:
            whole = self._whole_template(cat, id_, str(changes["status"]))
        _check_blocker_ids(update.blockers or (), id_)

        def edit(doc: CommentedMap) -> MilestonesMoved:
            before = milestones_done(doc) if "status" in changes else {}
            item = find_item(doc, "todos", id_, "todo")
            if update.blockers is not None:
                _set_blockers(doc, id_, update.blockers)
            update.write(item, whole)
            if "status" not in changes:
                return [], []
            return milestone_changes(before, milestones_done(doc))

        completed, reopened = self.store.update(edit)
        return TodoEdited(self.reads.get_todo(id_), completed, reopened)

    def _update_instance(self, id_: str, tid: str, repo: str, changes: TodoChanges) -> Todo:
        """:meth:`update` of a template's instance ``id_`` (``tid[repo]``): its
        status, the one field of its own; any other is the template's, refused."""
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
        return self.reads.get_todo(id_)

    @audited("delete_todo")
    def delete(self, id_: str, *, force: bool = False) -> TodoDeleted:
        """Remove a todo that other todos (``blocked_by``, ``blocking``) or milestones
        (``todos``) may name, as :func:`~coordination.catalog.edits.edit_base.delete_item`
        says; a template's instance is refused (it goes by no longer being selected)."""
        tid, repo = split_instance(id_)
        if repo is not None:
            self.reads.template_of(self.reads.catalog(), id_)  # not one: says why
            raise UsageError(f"{id_} is an instance of the template {tid}: it is deleted by "
                             f"no longer selecting {repo}",
                             hint=f"add !{repo} to {tid}'s for_each "
                             f"(`coord todo show {tid}` shows it), or delete {tid}")
        before = self.reads.get_todo(id_)  # unknown id: "did you mean"
        return {"deleted": id_, "todo": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in delete_item(self.store, "todo", id_, force)]}


@dataclass(frozen=True)
class _TodoUpdate:
    """What :meth:`Todos.update` writes, checked, by how each part is written."""

    changes: TodoChanges  # put as given (a list as a block list)
    fields: dict[str, object]  # TODO_FIELDS, put as the loader validates them (put_field)
    env: dict[str, str | None]  # entries of env: set, or (None) removed
    clear_env: bool  # env: None, every entry removed
    blockers: list[str] | None  # blocked_by replaced by these

    def write(self, item: CommentedMap, whole: dict[str, str] | None) -> None:
        """Put the update into the todo ``item``; ``whole``: a template's ``instances:``
        when its status is set (every instance that status)."""
        for key, value in self.changes.items():
            if isinstance(value, list):
                put_list(item, key, value, TODO_KEYS)
            else:
                put(item, key, value, TODO_KEYS)
        if item.get("for_each") and "status" in self.changes:
            put_field(item, "instances", whole, TODO_KEYS)  # every instance: that status
        for key, value in self.fields.items():
            put_field(item, key, value, TODO_KEYS)
        if self.clear_env:
            put(item, "env", None, TODO_KEYS)
        elif self.env:
            put_entries(item, "env", self.env, TODO_KEYS)


def _todo_update(changes: TodoChanges) -> _TodoUpdate:
    """``changes`` of :meth:`Todos.update` checked (UsageError, exit 2) and
    sorted by how each is written; ``changes`` keeps the fields put as given."""
    _check_todo_values(changes)
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
    return _TodoUpdate(changes, fields, env_changes, clear_env,
                       None if given is None else list(given))


def _check_todo_values(changes: TodoChanges) -> None:
    """Each value of ``changes`` checked, in place: a required field's None left out
    (removing it would reset it to the default), lists de-duplicated, criteria as the
    catalog writes them; nothing left is "nothing to update"."""
    for key in ("status", "priority", "timeout", "retries"):
        if key in changes and changes[key] is None:
            changes.pop(key)  # removing would silently reset to the default
    if not changes:
        raise UsageError("nothing to update", hint="pass at least one field to change")
    if "task" in changes and not (changes["task"] or "").strip():
        raise UsageError("a todo needs a non-empty task")
    choice(changes.get("status"), TodoStatus, "todo status")
    choice(changes.get("priority"), Priority, "priority")
    _check_number(changes, "timeout", float, 0, MAX_TODO_TIMEOUT, "seconds", low_open=True)
    _check_number(changes, "retries", int, 0, MAX_RETRIES, "extra attempts")
    _check_number(changes, "estimated_hours", float, 0, None, "hours")
    for listed in ("resources", "labels", "blocked_by", "mask_env"):
        if listed in changes:
            changes[listed] = _uniq(changes[listed] or ())
    if "acceptance_criteria" in changes:
        changes["acceptance_criteria"] = criteria_items(  # type: ignore[typeddict-item]
            changes["acceptance_criteria"] or (), "a todo's acceptance criteria")


def _check_blocker_ids(blockers: Iterable[str], id_: str | None = None) -> None:
    """Each blocker an issue's or a todo's id, and not the todo ``id_`` itself."""
    for b in blockers:
        if kind_of(b) not in ("issue", "todo"):
            raise UsageError(f"bad blocker {b!r}; blocked_by takes TODO-n or ISSUE-n ids")
        if b == id_:
            raise UsageError(f"todo {id_} cannot be blocked by itself")


def _set_blockers(doc: CommentedMap, id_: str, blockers: list[str]) -> None:
    """The todo ``id_`` about to be blocked by ``blockers``: each must name something
    and none may close a cycle; then the mirror: the todos it now waits on list it in
    their ``blocking``, the others do not."""
    for b in blockers:
        _find_blocker(doc, b)
    cycle = _blocker_cycle(doc, id_, blockers)
    if cycle:
        raise UsageError(
            f"{id_} blocked by {cycle[-2]} would make a cycle: " + " -> ".join(cycle),
            hint=f"a todo cannot wait, directly or through others, on a todo "
            f"that waits on it; leave {cycle[-2]} out of blocked_by",
        )
    for other in section(doc, "todos"):
        if not isinstance(other, CommentedMap) or other.get("id") == id_:
            continue
        if other.get("id") in blockers:
            append_unique(other, "blocking", id_, TODO_KEYS)
        else:
            remove_from(other, "blocking", id_)


def instances_after(item: CommentedMap, statuses: Mapping[str, str],
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
