"""A forge's webhook events, once their signature held: what each says of a change's pull
requests is kept beside the change, so ``change status`` shows it without asking the
forge (:data:`coordination.change.pulls.forge_status.WEBHOOK_TTL`).

A ``pull_request`` event (opened, synchronized, closed, merged), a review or a check of
a pull request of a change plan (found by project and number; a check by the head it
ran on) updates that repo's view: first with what the event itself says (its state,
head, the reviewer's word, the check's state: no token needed), then, when the forge
answers, with a fresh read of the whole pull request (its mergeability). A pull request
closed or merged by hand so shows up at once in ``change status``, and blocks the
landing (:func:`coordination.change.pulls.forge_status.repo_blockers`), never overwritten.

A ``push`` event is not a change's: the webhook endpoint starts the plans its repo's
push triggers select (:mod:`coordination.ui.hooks`, :func:`coordination.firing.on_push`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordination.change.pulls.forge_status import ask_forge
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import ChangePlan, change_of
from coordination.errors import CoordError
from coordination.forge.base import (
    CheckEvent,
    ForgeEvent,
    ForgeFactory,
    PullRequestEvent,
    PushEvent,
    ReviewEvent,
)
from coordination.runtime.change_records import ForgeView, PullRecord

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog
    from coordination.runtime.context import Runtime

log = logging.getLogger("coord.forge.events")


@dataclass
class Applied:
    """What an event changed: ``updated`` plan -> the repos whose view it updated."""

    event: str
    updated: dict[str, list[str]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"event": self.event, "updated": self.updated}


def apply_event(rt: Runtime, catalog: Catalog, base_dir: Path, event: ForgeEvent, *,
                factory: ForgeFactory | None = None,
                env: Mapping[str, str] | None = None) -> Applied:
    """Update what ``change status`` shows from a verified ``event`` (see the module)."""
    name = type(event).__name__
    out = Applied(name)
    if isinstance(event, PushEvent):  # a trigger's, not a change's (ui/hooks.py)
        return out
    for plan in catalog.coordination.plans:
        if plan.change is None:
            continue
        try:
            cp = change_of(catalog, plan.id, base_dir)
        except CoordError:
            continue  # a change that cannot be read is not this event's to say
        repos = [r for r, t in cp.targets.items() if t.forge is not None
                 and t.forge.kind == event.forge and t.forge.project == event.project]
        if not repos:
            continue
        st = rt.changes.read(cp.plan)
        hit = [r for r in repos if r in st.pulls and _concerns(event, st.pulls[r])]
        if hit:
            forges = ChangeForges(cp, factory, env)
            for repo in hit:
                _update(rt, cp, forges, repo, st.pulls[repo], event)
            out.updated[cp.plan] = hit
    return out


def _concerns(event: ForgeEvent, pull: PullRecord) -> bool:
    if isinstance(event, (PullRequestEvent, ReviewEvent)):
        return event.number == pull.number
    if isinstance(event, CheckEvent):
        return pull.number in event.numbers or event.sha == pull.head
    return False


def _update(rt: Runtime, cp: ChangePlan, forges: ChangeForges, repo: str, pull: PullRecord,
            event: ForgeEvent) -> None:
    """The event's own word into the kept view, then a fresh read when the forge answers."""
    kept = rt.changes.forge_views(cp.plan).get(repo)
    doc: dict[str, Any] = dict(kept.document) if kept else {
        "number": pull.number, "url": pull.url, "kind": pull.kind, "project": pull.project,
        "mergeable": None, "blockers": []}
    if isinstance(event, PullRequestEvent):
        doc.update(state=event.state.value, head=event.head_sha)
    elif isinstance(event, ReviewEvent):
        rv = dict(doc.get("reviews") or {})
        approved = [a for a in rv.get("approved_by") or [] if a != event.author]
        asked = [a for a in rv.get("changes_requested_by") or [] if a != event.author]
        if event.state.value == "approved":
            approved.append(event.author)
        elif event.state.value == "changes_requested":
            asked.append(event.author)
        rv.update(approved_by=approved, changes_requested_by=asked)
        doc["reviews"] = rv
    elif isinstance(event, CheckEvent):
        ck = dict(doc.get("checks") or {})
        each = [c for c in ck.get("each") or [] if c.get("name") != event.name]
        each.append({"name": event.name, "state": event.state.value,
                     "required": event.name in (ck.get("required") or []), "url": None})
        ck["each"] = each
        doc["checks"] = ck
    doc.update(read_at=time.time(), error=None)
    rt.changes.set_forge_view(cp.plan, repo, ForgeView(doc, time.time(), "webhook"))
    view = ask_forge(rt, cp, forges, repo, pull, "webhook")
    if view.error:  # the event's word stays, said as such
        log.info("%s: pull request %s: kept the event's word, the forge could not be read: %s",
                 cp.plan, view.ref, view.error)
