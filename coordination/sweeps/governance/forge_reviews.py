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

What a vote is cast from is never a plain record (#78): the pull request record
(``pr:<R>``) must hold its seal (:meth:`coordination.runtime.changes.ChangeStore.read`),
and the view of it must be sealed by the process that read the forge or checked the
webhook (:func:`coordination.change.pulls.forge_status.read_views`), of that very pull request
(its number), into the repo's landing base as the forge said it. Without a key nothing
can be sealed: only a view this process read from the forge just now counts
(:func:`views_for_votes` asks; a cached one is refused). A refused record casts no vote
and is reported (``error``).

:func:`count_reviews` is called where the forge was just read: ``coord change
status``, ``coord change land`` and a forge's review webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from coordination.change.pulls.forge_status import PullView, read_views
from coordination.change.landing_evidence import current_candidates
from coordination.change.model import ChangePlan
from coordination.errors import CoordError
from coordination.runtime.changes import ChangeState
from coordination.runtime.context import Runtime
from coordination.status import TodoStatus
from coordination.sweeps.governance import approvals

if TYPE_CHECKING:
    from coordination.change.pulls.forges import ChangeForges

log = logging.getLogger("coord.forge.reviews")


class Counted(TypedDict):
    """A review counted (or refused) as a vote on a gate."""

    gate: str
    who: str
    pr: str
    status: str | None  # the gate's status after the vote
    error: str | None  # why the vote was refused


def views_for_votes(rt: Runtime, cp: ChangePlan, st: ChangeState,
                    forges: ChangeForges) -> dict[str, PullView]:
    """The views votes may be cast from: sealed views (kept within their TTL) with a
    key, else read from the forge now (keyless: nothing kept can be trusted)."""
    return read_views(rt, cp, st, forges, fresh=not rt.policy.keys)


def _refusal(rt: Runtime, cp: ChangePlan, st: ChangeState, repo: str,
             view: PullView) -> str | None:
    """Why ``view`` (of ``repo``'s pull request) casts no vote, whoever approved it."""
    pull = st.pulls.get(repo)
    if pull is None:
        why = st.refused_pulls.get(f"pr:{repo}")
        return why or f"{repo} has no sealed pull request record"
    if view.number != pull.number:
        return (f"the forge view is of #{view.number}, not of the recorded "
                f"#{pull.number}")
    if view.cached and not rt.policy.keys:
        return ("a kept forge view, and this process holds no COORD_SIGNING_KEY to check "
                "who wrote it: only a read of the forge made now counts")
    base = cp.targets[repo].base
    if view.base != base:
        return (f"pull request {view.ref} is into {view.base or 'a base not said'}, not "
                f"the change's base {base}")
    return None


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
        refused = st.refused_pulls.get(f"pr:{repo}")
        if view is None and refused:
            log.warning("%s: no vote on %s: %s", cp.plan, gate, refused)
            out.append(Counted(gate=gate, who="", pr=f"pr:{repo}", status=None,
                               error=f"{refused}: not taken, no vote counted"))
            continue
        if view is None:
            continue
        why = _refusal(rt, cp, st, repo, view) if repo in cp.targets else "not a repo of it"
        if why:
            log.warning("%s: no vote on %s from %s: %s", cp.plan, gate, view.ref, why)
            if approving(view, now.get(repo)):
                out.append(Counted(gate=gate, who="", pr=view.ref, status=None,
                                   error=f"{why}: no vote counted"))
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
