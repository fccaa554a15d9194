"""``coord change prune``: the worktrees and local branches of finished changes removed.

A change is finished when its last landing or revert ended ``landed`` or
``reverted`` with nothing under way (no landing or revert running, not in the merge
train). Anything else (drafted, verified, landing, interrupted, revert_failed,
partially_landed, failed_verification) is never pruned: its worktrees are where it is
carried on. A landed change pruned can still be reverted: ``coord change revert``
makes the worktree it needs again (:func:`coordination.change.revert`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordination.change import git as g
from coordination.change import worktrees
from coordination.change.model import ChangePlan
from coordination.change.reading import interruption
from coordination.runtime.changes import ChangeState
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS

#: The change states whose worktrees and branches prune removes.
FINISHED = (CS.landed, CS.reverted)


@dataclass
class Pruned:
    repo: str
    action: str  # removed | would_remove | absent | kept
    worktree: str | None
    branch: str
    why: str | None = None

    def document(self) -> dict[str, Any]:
        return {"repo": self.repo, "action": self.action, "worktree": self.worktree,
                "branch": self.branch, "why": self.why}


def unfinished(rt: Runtime, cp: ChangePlan, st: ChangeState) -> str | None:
    """Why ``cp``'s worktrees are kept (None: it is finished)."""
    stopped = interruption(cp.plan, st)
    if stopped:
        return f"{stopped['state']}: {stopped['why']}"
    if st.state not in FINISHED:
        return f"not finished: {st.state or 'never landed'}"
    if st.lander:
        return f"a {st.lander.op or 'landing'} of it is under way"
    if cp.plan in rt.changes.train():
        return "it is in the merge train"
    return None


def prune(rt: Runtime, cp: ChangePlan, *, dry_run: bool = False) -> tuple[str | None, list[Pruned]]:
    """Remove ``cp``'s worktrees and local branches if it is finished: (why not, or None;
    per repo what was done)."""
    st = rt.changes.read(cp.plan)
    why = unfinished(rt, cp, st)
    out: list[Pruned] = []
    for repo, t in cp.targets.items():
        rec = st.repos.get(repo)
        checkout = Path(t.checkout)
        wt = rec.worktree if rec and rec.worktree else None
        if wt is None and checkout.is_dir():
            wt = str(worktrees.path_of(checkout, cp.branch))
        has_branch = checkout.is_dir() and g.ok(checkout, "show-ref", "--verify", "--quiet",
                                                f"refs/heads/{cp.branch}")
        present = bool(wt and Path(wt).exists())
        if why:
            out.append(Pruned(repo, "kept", wt, cp.branch, why))
            continue
        if not present and not has_branch:
            out.append(Pruned(repo, "absent", wt, cp.branch))
            continue
        if dry_run:
            out.append(Pruned(repo, "would_remove", wt, cp.branch))
            continue
        if present:
            g.git(checkout, "worktree", "remove", "--force", "--force", str(wt), check=False)
            if Path(str(wt)).exists():  # not a worktree git knows of: ours all the same
                shutil.rmtree(str(wt), ignore_errors=True)
        if has_branch and g.git(checkout, "symbolic-ref", "--quiet", "HEAD", check=False) \
                != f"refs/heads/{cp.branch}":
            g.git(checkout, "branch", "-D", "--end-of-options", cp.branch, check=False)
        out.append(Pruned(repo, "removed", wt, cp.branch))
    return why, out
