"""A sweep's outcome written back into the catalog, in one audited edit.

Succeeded todos become ``completed`` (with ``actual_hours``, and ``outputs``: what
they wrote to ``$COORD_OUTPUT``, which later sweeps give the todos after them), failed ones
``failed``, skipped ones (a blocker failed) and ones cancelled while they ran ``skipped``.
A todo cancelled before it started never ran: it keeps its status (``pending`` stays
``pending``). A ``completed`` todo keeps its status, unless the sweep ran it again
(`plan sweep --again`, ``again``) and this run left it undone: then the catalog says
what the latest run left, ``pending`` when it never started (skipped, or cancelled
before it started; ``unrun``), ``skipped`` when a cancel stopped it. After a
rollback, compensated todos (their undo ran) go back to ``pending`` and their plan back
to ``active``, so the next sweep runs them again; a todo whose undo failed stays as
its run left it (the change is still there).
Then, in the same edit, the sweep's plan becomes ``completed`` when every todo of it
is (:func:`coordination.catalog.reads.reports.is_complete`; a draft or active plan only,
never a cancelled one); a ``completed`` plan goes back to ``active`` when this edit
marked a todo of it failed, undone, skipped or pending (a completed todo that ran again
with `plan sweep --again` and failed or was left undone, or a rollback) and so left it
incomplete (``reopened``).

A template's instances (``TODO-010[api]``) have no item of their own: their outcomes
are written under the template, ``instances: {api: completed, web: failed}``, by the
same rules, and the template's own status follows them
(:func:`coordination.catalog.selection.templates.template_outcome`: completed when every repo
its ``for_each`` selects now has a completed instance, failed when one failed, else
pending).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NotRequired, TypedDict

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.edits.document import (
    PLAN_KEYS,
    MilestoneChange,
    milestone_changes,
    milestones_done,
    TODO_KEYS,
    plan_todo_items,
    put,
    put_instances,
    section,
)
from coordination.catalog.runs import criteria
from coordination.catalog.models import criterion_checks
from coordination.catalog.reads.reports import is_complete
from coordination.catalog.file.store import CatalogStore
from coordination.catalog.selection.templates import selections, split_instance
from coordination.errors import UsageError

#: Sweep todo statuses the catalog records.
WRITTEN = ("succeeded", "failed", "skipped", "cancelled", "compensated", "cached")


class Outcome(TypedDict):
    """One todo's outcome, as ``sweep status --json`` gives it (what sync reads)."""

    status: str
    duration: float | None
    outputs: dict[str, str]  # what it wrote to $COORD_OUTPUT ({}: nothing)
    outputs_refused: NotRequired[str]  # their seal failed: not written into the catalog
    attempts: int  # 0: it never started (a caller of before 0.4 may leave it out)


class SyncResult(TypedDict):
    completed: list[str]
    failed: list[str]
    skipped: list[str]
    reset: list[str]  # compensated by a rollback: pending again
    unrun: list[str]  # completed, run again (--again) and left undone: pending again
    plan: str | None
    plan_completed: bool
    plan_status: str | None
    reopened: bool  # the plan was completed and is active again (a todo of it is not)
    #: milestones whose last todo this sync completed, and done ones it left undone
    milestones_completed: NotRequired[list[MilestoneChange]]
    milestones_reopened: NotRequired[list[MilestoneChange]]
    #: every todo completed, but these criteria's checks failed: the plan stays as it is
    plan_checks_failed: NotRequired[list[str]]
    #: todo -> why its outcome was not written (its seal failed: sweeps/writeback/sealed_outcomes.py)
    refused: NotRequired[dict[str, str]]
    #: the plan completed: the comment on each linked forge issue of it (coord issue link)
    forge_issues: NotRequired[list[dict[str, object]]]


def never_started(v: Outcome) -> bool:
    """Did the sweep leave this todo without running it (skipped: a blocker failed; or
    cancelled before it started)?"""
    return v["status"] == "skipped" or (v["status"] == "cancelled"
                                        and not int(v.get("attempts") or 0))


def write_outcome(catalog_path: Path, plan_id: str | None,
                  todos: Mapping[str, Outcome], *, again: bool = False) -> SyncResult:
    """Write the outcome of an ended sweep (todo -> its outcome) into the catalog;
    ``again``: the sweep ran completed todos again (`plan sweep --again`)."""
    done = {t: v for t, v in todos.items() if v["status"] in WRITTEN}
    of_template: dict[str, dict[str, Outcome]] = {}  # template -> repo -> its instance's
    for t, v in done.items():
        tid, repo = split_instance(t)
        if repo is not None:
            of_template.setdefault(tid, {})[repo] = v
    store = CatalogStore(catalog_path)
    checks_ok, checks_failed = _plan_checks(store, plan_id, done)
    selected: dict[str, list[str]] = {}
    if of_template:
        try:
            selected = selections(store.load(), catalog_path.resolve().parent)
        except UsageError:
            # A selector that selects nothing now (or git cannot answer a changed:):
            # the outcomes are still written, but no template can be called completed.
            selected = {}

    def edit(doc: CommentedMap) -> SyncResult:
        changed = SyncResult(completed=[], failed=[], skipped=[], reset=[], unrun=[],
                             plan=plan_id, plan_completed=False, plan_status=None,
                             reopened=False)
        before = milestones_done(doc)
        for item in section(doc, "todos"):
            tid = str(item.get("id")) if isinstance(item, CommentedMap) else ""
            if tid in of_template and item.get("for_each"):
                _write_instances(item, tid, of_template[tid], selected.get(tid, []),
                                 changed, again)
                continue
            v = done.get(tid) if tid else None
            if v is not None:
                _write_todo(item, v, changed, again)
        _write_plan(doc, plan_id, changed, lambda: (
            checks_ok if checks_ok is not None
            else _passed_as_recorded(catalog_path, str(plan_id))), checks_failed)
        changed["milestones_completed"], changed["milestones_reopened"] = milestone_changes(
            before, milestones_done(doc))
        return changed

    result: SyncResult = store.update(edit)
    return result


def _write_todo(item: CommentedMap, v: Outcome, changed: SyncResult, again: bool) -> None:
    """Write one todo's outcome into its catalog item, noting in ``changed`` what it
    changed."""
    if v["status"] in ("succeeded", "cached"):  # cached: an earlier success reused
        # outputs whose seal failed are handed on to no later sweep
        outputs = {} if v.get("outputs_refused") else dict(v.get("outputs") or {})
        if outputs != dict(item.get("outputs") or {}):
            put(item, "outputs", outputs, TODO_KEYS)  # this run's, or none
        if item.get("status") != "completed":
            put(item, "status", "completed", TODO_KEYS)
            hours = round(float(v.get("duration") or 0) / 3600, 4)
            put(item, "actual_hours", hours, TODO_KEYS)
            changed["completed"].append(item["id"])
    elif v["status"] == "compensated":
        if "outputs" in item:
            put(item, "outputs", {}, TODO_KEYS)  # undone: its results are gone
        if item.get("status") != "pending":
            put(item, "status", "pending", TODO_KEYS)
            changed["reset"].append(item["id"])
    elif v["status"] == "failed":
        if item.get("status") != "failed":
            put(item, "status", "failed", TODO_KEYS)
            changed["failed"].append(item["id"])
    elif item.get("status") == "completed":
        # Run again and left undone by this run: the catalog says what the
        # latest run left, pending when it never started (its blocker failed
        # now, or a cancel came first), skipped when a cancel stopped it.
        # Without --again it was completed meanwhile (by hand): it stays so.
        if again and never_started(v):
            put(item, "status", "pending", TODO_KEYS)
            changed["unrun"].append(item["id"])
        elif again:
            put(item, "status", "skipped", TODO_KEYS)
            changed["skipped"].append(item["id"])
    elif v["status"] == "cancelled" and never_started(v):
        pass  # cancelled before it started: it never ran, its status stands
    elif item.get("status") != "skipped":
        # Never ran (a dependency failed) or stopped by a cancel while it ran.
        put(item, "status", "skipped", TODO_KEYS)
        changed["skipped"].append(item["id"])


def _write_plan(doc: CommentedMap, plan_id: str | None, changed: SyncResult,
                checks_pass: Callable[[], bool | None], checks_failed: list[str] | None) -> None:
    """The plan's status after its todos' outcomes were written: active again when
    there is work to do again, completed when every todo is and its criteria's checks
    pass (``checks_pass``: asked only then)."""
    plan = next((p for p in section(doc, "plans")
                 if isinstance(p, CommentedMap) and p.get("id") == plan_id), None)
    status = None if plan is None else str(plan.get("status") or "draft")
    complete = is_complete(
        i.get("status") or "pending" for i in plan_todo_items(doc, str(plan_id)))
    if (plan is not None and status == "completed" and not complete
            and (changed["reset"] or changed["failed"] or changed["unrun"]
                 or changed["skipped"])):
        # Undone, or run again and failed or left undone: there is work to do again.
        put(plan, "status", "active", PLAN_KEYS)
        status = "active"
        changed["reopened"] = True
    completes = status in ("draft", "active") and complete
    if completes and plan is not None and _checked(plan):
        # Its criteria's checks pass too (run just now when this sync was to complete
        # it; else as last recorded), or it stays as it is.
        if not checks_pass():
            completes = False
            changed["plan_checks_failed"] = checks_failed or ["(not checked)"]
    if completes and plan is not None:
        put(plan, "status", "completed", PLAN_KEYS)
        status = "completed"
    changed["plan_completed"] = completes
    changed["plan_status"] = status


def _checked(plan: CommentedMap) -> bool:
    """Does the plan (a document item) have a criterion with a check?"""
    return any(isinstance(c, dict) and c.get("check")
               for c in plan.get("completion_criteria") or ())


def _plan_checks(store: CatalogStore, plan_id: str | None, done: Mapping[str, Outcome]
                 ) -> tuple[bool | None, list[str]]:
    """Run the plan's criteria's checks when this sync would complete the plan (every
    todo of it completed, by the catalog or by this sweep's outcomes), and record their
    results: (all passed, the failed ones' texts); (None, []) when not run."""
    if plan_id is None:
        return None, []
    try:
        cat = store.load()
    except UsageError:
        return None, []
    plan = cat.plan(plan_id)
    if plan is None or not criterion_checks(plan.completion_criteria) or (
            plan.status.value not in ("draft", "active")):
        return None, []  # (a completed plan stays so: nothing to decide)
    succeeded = {t for t, v in done.items() if v["status"] in ("succeeded", "cached")}
    for t in cat.plan_todos(plan_id):
        if t.id in succeeded:
            continue
        if t.for_each is not None and any(split_instance(i)[0] == t.id for i in succeeded) \
                and not any(split_instance(i)[0] == t.id for i in done if i not in succeeded):
            continue
        ended = done.get(t.id)
        if t.status != "completed" or (ended is not None
                                       and ended["status"] in ("failed", "compensated")):
            return None, []
    results = criteria.run_checks(store.path, plan)
    criteria.record(store, plan_id, results)
    failed = [r["criterion"] for r in results if not r["ok"]]
    return not failed, failed


def _passed_as_recorded(catalog_path: Path, plan_id: str) -> bool:
    plan = CatalogStore(catalog_path).load().plan(plan_id)
    if plan is None:
        return False
    return bool(criteria.passed(plan, criteria.read_results(catalog_path).get(plan_id, [])))


def _instance_status(current: str, v: Outcome, again: bool) -> str:
    """What the catalog records for an instance now at ``current`` after outcome ``v``
    (the rules of a todo's own status, above)."""
    if v["status"] in ("succeeded", "cached"):
        return "completed"
    if v["status"] == "compensated":
        return "pending"
    if v["status"] == "failed":
        return "failed"
    if current == "completed":
        if not again:
            return current
        return "pending" if never_started(v) else "skipped"
    if v["status"] == "cancelled" and never_started(v):
        return current
    return "skipped"


def _write_instances(item: CommentedMap, tid: str, outcomes: Mapping[str, Outcome],
                     selected: list[str], changed: SyncResult, again: bool) -> None:
    """Write a template's instances' outcomes under it (``instances:``), and its status."""
    before = {str(k): str(v) for k, v in dict(item.get("instances") or {}).items()}
    after = dict(before)
    for repo, v in outcomes.items():
        old = before.get(repo, "pending")
        new = _instance_status(old, v, again)
        after[repo] = new
        if new != old:
            name = f"{tid}[{repo}]"
            if new == "completed":
                changed["completed"].append(name)
            elif new == "failed":
                changed["failed"].append(name)
            elif new == "skipped":
                changed["skipped"].append(name)
            elif v["status"] == "compensated":
                changed["reset"].append(name)
            else:
                changed["unrun"].append(name)
    put_instances(item, after, selected)
