"""``milestone.completed`` / ``milestone.reopened``: announcing what an edit decided.

The transitions are decided inside the catalog edit that makes them (a sweep's sync,
:mod:`coordination.sweeps.writeback.sync`; `todo complete` and `todo update --status`,
:class:`coordination.catalog.edits.todo_edits.Todos`, which returns them), under the
catalog's lock, by comparing the milestones done before and after
(:func:`coordination.catalog.edits.document.milestones_done`): each is made by exactly one edit,
so each is announced once. Announced in the ledger (webhooks deliver from it), and as a
decision in the audit log (`coord history` lists it, op ``milestone.completed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coordination.catalog.audit.log import who
from coordination.catalog.edits.document import MilestoneChange
from coordination.catalog.file.store import CatalogStore
from coordination.runtime.context import Runtime
from coordination.status import EventKind


def announce(rt: Runtime, catalog: Path, completed: Sequence[MilestoneChange],
             reopened: Sequence[MilestoneChange], *, sweep_id: str | None = None) -> None:
    """Emit and record each milestone an edit completed or reopened (``sweep_id``: the
    sweep whose sync made it; None: an edit by hand)."""
    for m in completed:
        rt.events.emit(EventKind.milestone_completed, sweep_id=sweep_id, plan=m["plan"],
                       milestone=m["milestone"], title=m["title"], todos=list(m["todos"]))
        _record(catalog, EventKind.milestone_completed, sweep_id, m)
    for m in reopened:
        rt.events.emit(EventKind.milestone_reopened, sweep_id=sweep_id, plan=m["plan"],
                       milestone=m["milestone"], title=m["title"], todos=list(m["todos"]))
        _record(catalog, EventKind.milestone_reopened, sweep_id, m)
    if rt.embedded and (completed or reopened):
        # Embedded, no worker of this process is left (or ever ran) to deliver them:
        # their webhooks go now, as an embedded sweep's last events do.
        from coordination.sweeps.notices.notify import deliver_left  # lazy: http, webhooks only

        deliver_left(rt)


def _record(catalog: Path, kind: EventKind, sweep_id: str | None, m: MilestoneChange) -> None:
    CatalogStore(catalog).record_decision(
        who=who(catalog.resolve().parent), op=str(kind), ids=[m["milestone"], m["plan"]],
        decision={"event": str(kind), "sweep_id": sweep_id, "milestone": m["milestone"],
                  "plan": m["plan"], "title": m["title"], "todos": list(m["todos"])})
