"""Plans and their milestones as catalog edits, the ``plans`` and ``milestones`` parts of
:class:`~coordination.catalog.manager.CoordinationManager` (:mod:`.edit_base` says the
rules every edit of the catalog's structure keeps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TypedDict, Unpack

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from coordination.catalog.audit.log import audited
from coordination.catalog.rules.checks import unknown
from coordination.catalog.edits.edit_base import CatalogEdits, StoreEdits, found, refusable
from coordination.catalog.edits.document import (
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
    put_field,
    put_changes,
    remove_index,
    remove_item,
    remove_key,
    section,
)
from coordination.catalog.edits.inputs import (
    Spec,
    check_editable,
    choice,
    criteria_items,
    fresh,
    require_changes,
    require_repos,
    require_title,
    uniq,
)
from coordination.catalog.edits.plan_reset import PlanReset, reset_plan
from coordination.catalog.models import Milestone, Plan, PlanStatus
from coordination.jsonable import JSONObject

MILESTONE_KEYS = ("id", "title", "due", "todos", "deliverables")
PLAN_EDITABLE = {"title", "description", "status", "repos", "completion_criteria", "change",
                 "waves", "pace", "schedule", "on", "due"}
MILESTONE_EDITABLE = {"title", "due", "todos", "deliverables"}
#: Fields the loader validates, set as given (a mapping as a flow mapping); a value that
#: is not valid is refused with the loader's own message and nothing is written.
PLAN_FIELDS = ("waves", "pace", "due")
#: Mappings whose entries an update edits one by one (a value sets one, None removes it;
#: None for the whole mapping removes the field), as ``change:``'s.
PLAN_MAPPINGS = ("schedule", "on")


class PlanChanges(TypedDict, total=False):
    """What :meth:`Plans.update` takes (``PLAN_EDITABLE``)."""

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
    # Entries of `schedule:` (cron, timezone, catchup) and `on:` (push): as `change`.
    schedule: Mapping[str, object | None] | None
    on: Mapping[str, object | None] | None
    due: str | None  # as the catalog writes it (2026-12-01T12:00Z, 2026-12-01); None removes it


class MilestoneChanges(TypedDict, total=False):
    """What :meth:`Milestones.update` takes (``MILESTONE_EDITABLE``)."""

    title: str | None
    due: dt.date | None
    todos: Iterable[str] | None
    deliverables: Iterable[str] | None


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


class _Found(TypedDict):
    plan: CommentedMap
    plan_id: str
    index: int
    item: CommentedMap
    at: int


class Plans(CatalogEdits):
    """Plans created, changed, deleted and reset (``manager.plans``)."""

    @audited("create_plan")
    def create(self, title: str, *, description: str = "", status: str = "draft",
                    repos: Iterable[str] = (),
                    criteria: Iterable[str | Mapping[str, str]] = (),
                    change: Spec | None = None, waves: Sequence[Spec] = (),
                    pace: Spec | None = None, schedule: Spec | None = None,
                    on: Spec | None = None, due: str | None = None) -> Plan:
        """Append a new plan (``criteria``: its completion criteria; ``change``,
        ``waves``, ``pace``, ``schedule``, ``on``, ``due`` as the catalog writes them,
        checked by the loader)."""
        require_title(title, "a plan")
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
                               ("pace", pace), ("schedule", _set_entries(schedule)),
                               ("on", _set_entries(on)), ("due", due)):
                put_field(plan, key, value, PLAN_KEYS)
            append_item(section(doc, "plans", create=True), plan)
            return new_id

        return self._plan(self.store.update(edit))

    @audited("update_plan")
    def update(self, id_: str, **changes: Unpack[PlanChanges]) -> Plan:
        """Change some fields of a plan; None or an empty value removes an optional one."""
        check_editable(changes, PLAN_EDITABLE, "a plan")
        if "title" in changes:
            require_title(changes["title"], "a plan")
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
        mappings = {k: changes.pop(k) for k in PLAN_MAPPINGS if k in changes}  # type: ignore[misc]
        require_changes(changes, lists, fields, has_change or bool(mappings))

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "plans", id_, "plan")
            require_repos(doc, lists.get("repos", ()))
            structured = {**fields, **({"change": change} if has_change else {}), **mappings}
            put_changes(item, PLAN_KEYS, changes, structured, lists,
                        entries=("change", *PLAN_MAPPINGS))

        self.store.update(edit)
        return self._plan(id_)

    @audited("delete_plan")
    def delete(self, id_: str, *, force: bool = False) -> PlanDeleted:
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

        dropped = refusable(self.store, edit)
        return {"deleted": id_, "plan": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in dropped]}

    @audited("reset_plan")
    def reset(self, id_: str, todos: Iterable[str] | None = None, *,
              dry_run: bool = False) -> PlanReset:
        """`coord plan reset`: the plan's todos back to ``pending``, the plan ``active``
        (:func:`~coordination.catalog.edits.plan_reset.reset_plan`)."""
        return reset_plan(self.store, self.reads, id_, todos, dry_run=dry_run)

    def _plan(self, id_: str) -> Plan:
        cat = self.store.load()
        return found(cat.plan(id_), id_, lambda: (p.id for p in cat.coordination.plans), "plan")


class Milestones(StoreEdits):
    """A plan's milestones added, changed and deleted (``manager.milestones``)."""

    @audited("add_milestone")
    def add(self, plan: str, title: str = "", *, due: dt.date | None = None,
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

    @audited("update_milestone")
    def update(self, id_: str, **changes: Unpack[MilestoneChanges]) -> Milestone:
        """Change some fields of a milestone; None or an empty value removes one."""
        check_editable(changes, MILESTONE_EDITABLE, "a milestone")
        lists = {k: uniq(changes.pop(k) or ()) for k in ("todos",) if k in changes}
        if "deliverables" in changes:
            lists["deliverables"] = [d for d in changes.pop("deliverables") or () if d.strip()]
        if "due" in changes:
            changes["due"] = fresh(changes["due"])
        require_changes(changes, lists)

        def edit(doc: CommentedMap) -> None:
            ms = _find_milestone(doc, id_)["item"]
            for t in lists.get("todos", ()):
                find_item(doc, "todos", t, "todo")
            put_changes(ms, MILESTONE_KEYS, changes, {}, lists)

        self.store.update(edit)
        return self._milestone(id_)[1]

    @audited("delete_milestone")
    def delete(self, id_: str, *, force: bool = False) -> MilestoneDeleted:
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

        dropped = refusable(self.store, edit)
        return {"deleted": id_, "plan": plan_id, "milestone": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in dropped]}

    def _milestone(self, id_: str) -> tuple[str, Milestone]:
        cat = self.store.load()
        for p in cat.coordination.plans:
            for ms in p.milestones:
                if ms.id == id_:
                    return p.id, ms
        raise unknown(id_, [m.id for p in cat.coordination.plans for m in p.milestones],
                      "milestone")


def _set_entries(spec: Mapping[str, object | None] | None) -> dict[str, object] | None:
    """A new plan's mapping field: its entries that are set (None: not given)."""
    return {k: v for k, v in (spec or {}).items() if v is not None} or None


def _find_milestone(doc: CommentedMap, id_: str) -> _Found:
    for i, plan in enumerate(section(doc, "plans")):
        if not isinstance(plan, CommentedMap):
            continue
        for j, ms in enumerate(plan.get("milestones") or ()):
            if isinstance(ms, CommentedMap) and ms.get("id") == id_:
                return {"plan": plan, "plan_id": str(plan.get("id")), "index": i,
                        "item": ms, "at": j}
    raise unknown(id_, milestone_ids(doc), "milestone")


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
