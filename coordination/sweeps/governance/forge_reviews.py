"""A gate that counts the pull request's approvals (``gate: {forge_reviews: true}``).

In a change whose repos have pull requests (``coord change publish``), such a gate,
waiting for approval in the plan's last sweep, takes each approving review of the
pull request of its own repo (the gate todo's ``repo:``) as a vote of the reviewer: a
vote like any other (:func:`coordination.sweeps.governance.approvals.decide`, ``via: forge``),
sealed with COORD_SIGNING_KEY, checked against the gate's ``from:`` (forge logins) and
``starter_may_approve``, counted to the gate's ``approvals``, in the audit log. Only a
review given on the head coord verified counts (the pull request's head is the repo's
candidate, and the review names that head, or names none): an approval of an older
head is not an approval of what lands. With the catalog's ``approvers:`` a forge vote
counts only sealed and for a principal of the allowed-signers file, as the web view's.

:func:`count_reviews` is called where the forge was just read: ``coord change
status``, ``coord change land`` and a forge's review webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from coordination.change.pulls.forge_status import PullView
from coordination.change.landing_evidence import current_candidates
from coordination.change.model import ChangePlan
from coordination.errors import CoordError
from coordination.runtime.context import Runtime
from coordination.status import TodoStatus
from coordination.sweeps.governance import approvals

log = logging.getLogger("coord.forge.reviews")


class Counted(TypedDict):
    """A review counted (or refused) as a vote on a gate."""

    gate: str
    who: str
    pr: str
    status: str | None  # the gate's status after the vote
    error: str | None  # why the vote was refused


def approving(view: PullView, cand: str | None) -> list[str]:
    """Who approves ``view``'s pull request on the candidate ``cand`` (its head)."""
    if cand is None or view.error or view.head != cand or view.state != "open":
        return []
    out = []
    for r in view.reviews:
        commit = r.get("commit")
        if r.get("state") == "approved" and commit in (None, cand) and r.get("author"):
            out.append(str(r["author"]))
    return sorted(set(out) & set(view.approved_by)) if view.approved_by else sorted(set(out))


def count_reviews(rt: Runtime, catalog: Path | None, cp: ChangePlan,
                  views: Mapping[str, PullView]) -> list[Counted]:
    """Each approving review of a ``forge_reviews`` gate's pull request cast as a vote
    on the gate, where it waits in the plan's last sweep (see the module)."""
    gates = [g for g in cp.gates if (cp.gate_specs.get(g) or {}).get("forge_reviews")]
    if not gates:
        return []
    st = rt.changes.read(cp.plan)
    sweep = st.sweep
    if not sweep:
        return []
    now = current_candidates(cp, st)
    checkpoints = rt.checkpoints.get_all(sweep, gates)
    out: list[Counted] = []
    for gate in gates:
        cpt = checkpoints.get(gate) or {}
        if cpt.get("status") != TodoStatus.awaiting_approval:
            continue
        repo = str(cp.definitions.get(gate, {}).get("repo") or "")
        view = views.get(repo)
        if view is None:
            continue
        have = {str(u) for u in cpt.get("approvals") or []}
        for who in approving(view, now.get(repo)):
            if who in have:
                continue
            try:
                got = approvals.decide(rt, sweep, gate, who=who, decision="approve",
                                       comment=f"approved {view.url} at {view.head}",
                                       catalog=catalog, via="forge")
            except CoordError as exc:
                log.info("%s: %s's approval of %s does not count on %s: %s", cp.plan, who,
                         view.ref, gate, exc)
                out.append(Counted(gate=gate, who=who, pr=view.ref, status=None,
                                   error=exc.message))
                continue
            out.append(Counted(gate=gate, who=who, pr=view.ref,
                               status=str(got.get("status")), error=None))
            if got.get("status") != TodoStatus.awaiting_approval:
                break  # decided: no more votes on it
    return out
