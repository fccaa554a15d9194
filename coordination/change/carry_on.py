"""Carrying on a landing under way: the landing rule and the anchor every time (#59).

A landing killed half-way is carried on by running ``coord change land`` again
(:meth:`coordination.change.landing.Lander.prepare` finds the change ``landing`` with
its signed manifest). Until 0.6 that skipped every check: the change's state is a plain
field, and a keyless writer who set it back to ``landing`` had ``change land`` push an
old signed manifest whose candidates the newest sweep's gate had rejected. Now what may
be carried on is what may land now:

- a landing (no undo under way): the landing rule (:func:`coordination.change.rule.judge`,
  the freshness anchor beside the catalog and on the remotes included) judges the
  manifest's candidates, as a new landing's prepare judges them; any blocker refuses
  it, nothing is pushed. A genuine landing interrupted on candidates the rule passes is
  carried on exactly as before (each step recognised on the remote by its SHA);
- an undo under way (the state ``landing`` with a ``reason``): it goes on only when the
  lander that stopped the landing sealed that undo (``undo``: kind ``landing``, about
  the plan and the very manifest, over the reason), never on a reason someone wrote.
  An undo is not judged by the rule: it puts back what this landing pushed (each
  revert recognised by SHA, only over what the remote still has landed), which the
  rule passing or not must never leave half done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from coordination.change import git as g
from coordination.change.blockers import Blocker
from coordination.change.landing_evidence import current_candidates
from coordination.change.model import ChangePlan
from coordination.change.rule import judge
from coordination.runtime.changes import ChangeState, undo_about
from coordination.runtime.context import Runtime
from coordination.trust import evidence
from coordination.trust.evidence import EvidenceKind, policy_of
from coordination.trust.signing import Policy


def undo_refusal(policy: Policy, plan: str, st: ChangeState) -> str | None:
    """None if the undo under way (``st.reason``) may be carried on: its seal holds for
    this plan, its manifest as stored and that reason; else why not, naming the record."""
    what = f"undo record of change {plan} (its reason: {str(st.reason)[:80]!r})"
    try:
        record: Any = json.loads(st.undo) if st.undo else {}
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    if record.get("reason") != st.reason:
        record = {k: v for k, v in record.items() if k not in (evidence.SIG, evidence.KID)}
        record["reason"] = st.reason  # (a reason written over the sealed one: unsealed)
    return evidence.refusal(EvidenceKind.landing, undo_about(plan, st.manifest), record,
                            policy, what)


def carry_on_blockers(rt: Runtime, cp: ChangePlan, st: ChangeState,
                      m: Mapping[str, Any]) -> list[Blocker]:
    """Why the landing under way (``st``, its verified manifest ``m``) may not be carried
    on now; none: it may (see the module's docs)."""
    if st.reason:
        why = undo_refusal(policy_of(rt.settings), cp.plan, st)
        if why:
            return [Blocker("evidence", cp.plan, f"{why}: nothing is pushed from it")]
        return _foreign_steps(st, m)
    now = current_candidates(cp, st)
    now.update({e["repo"]: e["candidate"] for e in m.get("repos") or []})
    return [Blocker(b.kind, b.id, f"{b.why} (carrying on the landing under way)")
            for b in judge(rt, cp, st, now).blockers]


def _foreign_steps(st: ChangeState, m: Mapping[str, Any]) -> list[Blocker]:
    """The repos whose step (a plain record) says this landing landed a commit that is
    not its manifest's candidate (nor, landed by a command, a commit of the candidate's
    tree): an undo would revert what it never landed."""
    out = []
    for e in m.get("repos") or []:
        landed = st.step(e["repo"]).landed
        if landed and landed != e["candidate"] and not (
                m.get("land") == "command" and _same_tree(e, landed)):
            out.append(Blocker("evidence", e["repo"], (
                f"its landing step names {landed[:12]} as landed, which is not the "
                f"manifest's candidate {str(e['candidate'])[:12]}: the step was rewritten; "
                "nothing is reverted from it")))
    return out


def _same_tree(e: Mapping[str, Any], landed: str) -> bool:
    """Is ``landed`` a commit of ``e``'s candidate's tree (a land command's squash), as
    the worktree's git has both? (Not there: no.)"""
    wt = str(e.get("worktree") or "")
    try:
        return (g.has(wt, landed) and g.has(wt, e["candidate"])
                and g.tree(wt, landed) == g.tree(wt, e["candidate"]))
    except g.GitError:
        return False
