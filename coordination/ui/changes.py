"""The web view's change documents: what ``/changes`` and ``/changes/PLAN`` show, and the
change line of a plan's or sweep's page.

A plan with ``change:`` lands a cross-repo change; its todos' statuses say nothing of
that (a plan "completed 6/6" may be landing, one whose sweep failed may have landed).
Every change document here is ``coord change status --json``'s, built by the same
function (:func:`coordination.change.reading.status_document`); the list and the
summaries only pick fields of it. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from coordination import gitsafe
from coordination.catalog.models import Catalog
from coordination.catalog.selection.templates import require
from coordination.change.mirror import kept_elsewhere
from coordination.change.reading import status_document
from coordination.errors import CoordError, NotFoundError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService


class ChangeSummary(TypedDict):
    """A change plan's state in one line: on ``/changes``, a plan's page, a sweep's page
    and the overview's plan list. ``error``: why its document could not be built (a
    catalog the change cannot be read from); the other fields are then empty."""

    plan: str
    title: str
    branch: str | None
    land: str | None
    state: str | None
    reason: str | None
    landable: bool
    blockers: int
    repos: dict[str, str]  # repo -> its state, in landing order
    sweep: str | None
    error: str | None
    left_out: str | None  # what a document read without git left out (a stranger's)


def _git() -> bool:
    """May this request run git? Not a stranger's (:class:`coordination.ui.app.
    NoGitForStrangers`): the change documents are then read from the records alone and
    say what they left out, rather than failing on the first git call."""
    return gitsafe.refusing() is None


def change_plans(catalog: Catalog) -> list[str]:
    """Every plan of the catalog that lands a change, in catalog order."""
    return [p.id for p in catalog.coordination.plans if p.change is not None]


def _base_dir(svc: SweepService) -> Any:
    if svc.catalog_path is None:
        raise NotFoundError("the web view was started without a catalog: no changes to show",
                            hint="serve it with --file ecosystem.yaml (or COORD_ECOSYSTEM)")
    return svc.catalog_path.resolve().parent


def change_document(svc: SweepService, rt: Runtime, plan_id: str) -> dict[str, Any]:
    """``/api/changes/PLAN``: the ``coord change status PLAN --json`` document plus the
    plan's ``title``."""
    catalog = svc.catalog()
    plan = catalog.plan(plan_id)
    if plan is None:
        raise NotFoundError(f"no plan {plan_id!r} in the catalog", hint="see /changes")
    require(svc.problems, plan=plan_id)  # a template of it left out: not its whole change
    doc: dict[str, Any] = dict(status_document(rt, catalog, _base_dir(svc), plan_id,
                                               git=_git()))
    doc["title"] = plan.title
    # Landed or reverted in the other mode (embedded / COORD_REDIS_URL): said, not
    # carried over (nothing here writes)
    doc["elsewhere"] = kept_elsewhere(rt, svc.catalog_path, plan_id) if svc.catalog_path else None
    return doc


#: A change's states with no landing ahead: its line counts no blockers (the landing
#: rule's verdicts on it, "already landed", "nothing to land", block nothing that is to
#: come; `change status` and `land --dry-run` still list them, and the change's page
#: shows them as what its state means, not as blockers).
SETTLED = ("landed", "reverted")


def summary(doc: Mapping[str, Any], title: str) -> ChangeSummary:
    """A change document's one line (any document of the contract's shape)."""
    repos = doc.get("repos") or {}
    order = [r for r in doc.get("order") or [] if r in repos] or list(repos)
    blockers = 0 if doc.get("state") in SETTLED else len(doc.get("blockers") or [])
    return {"plan": str(doc["plan"]), "title": title, "branch": doc.get("branch"),
            "land": doc.get("land"), "state": doc.get("state"), "reason": doc.get("reason"),
            "landable": bool(doc.get("landable")), "blockers": blockers,
            "repos": {r: str(repos[r].get("state")) for r in order}, "sweep": doc.get("sweep"),
            "error": None, "left_out": doc.get("left_out")}


def change_summary(svc: SweepService, rt: Runtime, plan_id: str) -> ChangeSummary | None:
    """The change line of ``plan_id`` (None: it is no change, or there is no catalog)."""
    if svc.catalog_path is None or plan_id is None:
        return None
    try:
        catalog = svc.catalog()
    except CoordError:
        return None
    plan = catalog.plan(plan_id)
    if plan is None or plan.change is None:
        return None
    return _summary_of(svc, rt, catalog, plan_id, plan.title)


def _summary_of(svc: SweepService, rt: Runtime, catalog: Catalog, plan_id: str,
                title: str) -> ChangeSummary:
    try:
        require(svc.problems, plan=plan_id)  # a template of it left out: said, as an error
        doc = status_document(rt, catalog, _base_dir(svc), plan_id, git=_git())
    except CoordError as exc:  # one change's problem does not hide the others
        return {"plan": plan_id, "title": title, "branch": None, "land": None, "state": None,
                "reason": None, "landable": False, "blockers": 0, "repos": {}, "sweep": None,
                "error": str(exc), "left_out": None}
    return summary(doc, title)


def changes_list(svc: SweepService, rt: Runtime) -> list[ChangeSummary]:
    """``/api/changes``: every change plan of the catalog with its state."""
    if svc.catalog_path is None:
        return []
    catalog = svc.catalog()
    out = []
    for plan_id in change_plans(catalog):
        plan = catalog.plan(plan_id)
        assert plan is not None  # (listed from the catalog's own plans)
        out.append(_summary_of(svc, rt, catalog, plan_id, plan.title))
    return out
