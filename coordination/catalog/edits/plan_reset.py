"""`coord plan reset`: a plan's todos (every one, or those named, template instances
included) back to ``pending`` and the plan ``active``, in one edit
(:meth:`~coordination.catalog.edits.plan_edits.Plans.reset`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.rules.checks import unknown
from coordination.catalog.edits.document import (
    PLAN_KEYS,
    TODO_KEYS,
    find_item,
    ids_in,
    plan_todo_items,
    put,
    put_instances,
)
from coordination.catalog.edits.inputs import uniq as _uniq
from coordination.catalog.models import PlanStatus, TodoStatus
from coordination.catalog.reads.queries import must_find
from coordination.catalog.selection.templates import expand, split_instance
from coordination.catalog.edits.todo_edits import instances_after
from coordination.errors import UsageError

if TYPE_CHECKING:
    from coordination.catalog.file.store import CatalogStore
    from coordination.catalog.reads.queries import CatalogReads


class PlanReset(TypedDict):
    """What :meth:`Plans.reset` changed (or, dry, would change):
    `coord plan reset --json`."""

    plan: str
    dry_run: bool
    reset: list[str]  # todos set back to pending, in catalog order
    was: dict[str, str]  # each of them -> its status before
    already_pending: list[str]  # asked for and pending already: left alone
    plan_was: str
    plan_status: str  # always "active"


def reset_plan(store: CatalogStore, reads: CatalogReads, id_: str,
               todos: Iterable[str] | None = None, *, dry_run: bool = False) -> PlanReset:
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
    was, selected = _asked_instances(reads, id_, wanted or ())
    if was:
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
        cat = reads.catalog()
        plan = must_find(cat.plan(id_), cat, "plan", id_)
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
            put_instances(item, instances_after(item, pending, repos), repos)
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

    return store.update(edit)

def _asked_instances(reads: CatalogReads, id_: str, wanted: Iterable[str]
                     ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The template instances among ``wanted`` (``TODO-010[api]``), each refused
    unless its template is a todo of plan ``id_``: each instance -> its status
    before, and their templates -> the repos each selects."""
    asked = [w for w in wanted if split_instance(w)[1] is not None]
    was: dict[str, str] = {}
    selected: dict[str, list[str]] = {}
    if not asked:
        return was, selected
    cat = reads.catalog()
    must_find(cat.plan(id_), cat, "plan", id_)
    mine = {t.id for t in cat.plan_todos(id_)}
    wide = expand(cat, reads.store.base_dir)
    for w in asked:
        template, _, selected[template.id] = reads.template_of(cat, w)
        if template.id not in mine:
            raise UsageError(f"{w} is not a todo of plan {id_}: its template "
                             f"{template.id} is not",
                             hint=f"`coord todo list --plan {id_}` lists its todos")
        found = wide.todo(w)
        assert found is not None
        was[w] = found.status.value
    return was, selected




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
