"""``coord change prune``: the worktrees and local branches of finished changes removed.

A change is finished when its last landing or revert ended ``landed`` or
``reverted``, or it was abandoned (``coord change abandon``), with nothing under way
(no landing or revert running, not in the merge train). Anything else (drafted, verified, landing, interrupted, revert_failed,
partially_landed, failed_verification) is never pruned: its worktrees are where it is
carried on.

That it ended is never taken from the change's ``state`` alone, a plain field (#78: a
keyless ``HSET ... state landed`` had prune delete a verified, unlanded change's branch
and its uncommitted worktree): it must be what the sealed landing record (``ended``,
sealed by the lander that ended it, about the plan and its manifest) says. And the
remotes have the last word, key or not: a branch with commits on no head of the
repo's remote (``git ls-remote``), or a worktree with uncommitted changes, is kept and
named; ``--force`` removes them (and takes a change with no sealed landing record, one
landed before 0.7, as ended when its state says so). A landed change pruned can still be reverted: ``coord change revert``
makes the worktree it needs again (:func:`coordination.change.revert`).

What is removed is what git lists (``git worktree list --porcelain``) as a worktree of
the repo's checkout on the change's branch, by ``git worktree remove``: never a path
read from Redis (a change's repo record is a plain field: until 0.6 a keyless writer
named a directory outside the fleet there and prune deleted it). A record naming
another path is reported and left alone; ``--dry-run`` prints each path it would remove.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coordination.change import git as g
from coordination.change import worktrees
from coordination.change.model import ChangePlan
from coordination.change.reading import interruption
from coordination.runtime.changes import ChangeState, ended_about
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS
from coordination.trust import evidence
from coordination.trust.evidence import EvidenceKind
from coordination.trust.signing import Policy

#: The change states whose worktrees and branches prune removes.
FINISHED = (CS.landed, CS.reverted, CS.abandoned)


@dataclass
class Pruned:
    repo: str
    action: str  # removed | would_remove | absent | kept
    worktree: str | None
    branch: str
    why: str | None = None
    #: every worktree removed (would be, with --dry-run): git's list, never Redis's
    paths: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"repo": self.repo, "action": self.action, "worktree": self.worktree,
                "branch": self.branch, "why": self.why, "paths": self.paths}


def ended_refusal(policy: Policy, plan: str, st: ChangeState) -> str | None:
    """None if the change's state (``landed``, ``reverted``) is what its sealed landing
    record (``ended``) says, for this plan and its manifest as stored; else why not,
    naming the record. Keyless, an unsealed record is taken (the remotes decide)."""
    what = f"landing record of change {plan} (its state: {st.state})"
    try:
        record = json.loads(st.ended) if st.ended else {}
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    if record.get("state") != st.state:  # a state written over the sealed one: unsealed
        record = {"state": st.state}
    return evidence.refusal(EvidenceKind.landing, ended_about(plan, st.manifest), record,
                            policy, what)


def unfinished(rt: Runtime, cp: ChangePlan, st: ChangeState,
               force: bool = False) -> str | None:
    """Why ``cp``'s worktrees are kept (None: it is finished). ``force``: a state with
    no sealed landing record behind it is taken as it says."""
    stopped = interruption(cp.plan, st)
    if stopped:
        return f"{stopped['state']}: {stopped['why']}"
    if st.state not in FINISHED:
        return f"not finished: {st.state or 'never landed'}"
    sealed = ended_refusal(rt.policy, cp.plan, st)
    if sealed and not force:
        return (f"{sealed}: not taken as ended (written by hand, or landed before coord "
                "0.7); --force prunes it anyway")
    if st.lander:
        return f"a {st.lander.op or 'landing'} of it is under way"
    if cp.plan in rt.changes.train():
        return "it is in the merge train"
    return None


def listed(checkout: str | Path) -> dict[str, str | None]:
    """The linked worktrees git lists for ``checkout`` (``git worktree list --porcelain``:
    never its main one), each real path -> its branch (None: detached)."""
    out: dict[str, str | None] = {}
    text = g.git(checkout, "worktree", "list", "--porcelain", check=False)
    for i, block in enumerate(text.split("\n\n")):
        lines = block.strip().splitlines()
        path = next((ln[9:] for ln in lines if ln.startswith("worktree ")), None)
        if i == 0 or path is None:
            continue  # (the first is the checkout itself)
        branch = next((ln[7:] for ln in lines if ln.startswith("branch ")), None)
        out[os.path.realpath(path)] = branch
    return out


def _ours(checkout: Path, branch: str) -> list[str]:
    """The worktrees of ``checkout`` git lists on ``branch`` or at its path of ours."""
    found = listed(checkout)
    where = os.path.realpath(worktrees.path_of(checkout, branch))
    return sorted(p for p, b in found.items() if b == f"refs/heads/{branch}" or p == where)


def _disagrees(recorded: str | None, ours: list[str], checkout: Path, branch: str) -> str | None:
    """Why the worktree a change's record names (a plain field in Redis) is not taken:
    git lists no such worktree of ``checkout`` on ``branch`` (None: it does, or none)."""
    if not recorded or os.path.realpath(recorded) in ours:
        return None
    return (f"the change's record names {recorded} as its worktree, which git does not list "
            f"for {checkout} on {branch}: left alone (only what git lists is removed)")


def unpushed(checkout: Path, remote: str, branch: str) -> str | None:
    """Why ``branch`` of ``checkout`` may hold work found nowhere else: commits on no
    head of ``remote`` as the remote says it now (``git ls-remote``; a head this
    repository does not have counts for nothing); None: every commit is on one."""
    try:
        out = g.git(checkout, "ls-remote", g.UPLOAD_PACK, "--heads", "--end-of-options",
                    remote)
    except g.GitError as exc:
        return f"its remote {remote} could not be read ({exc}): its commits may be on none"
    tips = sorted({line.split("\t")[0] for line in out.splitlines() if "\t" in line})
    tips = [t for t in tips if g.has(checkout, t)]
    count = g.git(checkout, "rev-list", "--count", f"refs/heads/{branch}", "--not", *tips,
                  check=False)
    if count.isdigit() and int(count) == 0:
        return None
    return (f"its branch {branch} has {count if count.isdigit() else 'some'} commit(s) on "
            f"no head of {remote}")


def dirty(worktree: str) -> bool:
    """Does ``worktree`` hold changes not committed (or files not tracked)?"""
    return bool(g.git(worktree, "status", "--porcelain", "--untracked-files=normal",
                      check=False).strip()) or not Path(worktree).is_dir()


def prune(rt: Runtime, cp: ChangePlan, *, dry_run: bool = False,
          force: bool = False) -> tuple[str | None, list[Pruned]]:
    """Remove ``cp``'s worktrees and local branches if it is finished: (why not, or None;
    per repo what was done). Only worktrees git itself lists for the repo's checkout on
    the change's branch are removed (``git worktree remove``), never a path read from
    Redis: one that disagrees is reported and left alone. Without ``force`` a repo whose
    branch has commits on no remote, or whose worktree has uncommitted changes, is kept
    (named)."""
    st = rt.changes.read(cp.plan)
    why = unfinished(rt, cp, st, force)
    out: list[Pruned] = []
    for repo, t in cp.targets.items():
        rec = st.repos.get(repo)
        checkout = Path(t.checkout)
        known = checkout.is_dir()
        ours = _ours(checkout, cp.branch) if known else []
        odd = _disagrees(rec.worktree if rec else None, ours, checkout, cp.branch)
        shown = ours[0] if ours else (str(worktrees.path_of(checkout, cp.branch)) if known
                                      else None)
        has_branch = known and g.ok(checkout, "show-ref", "--verify", "--quiet",
                                    f"refs/heads/{cp.branch}")
        if why:
            out.append(Pruned(repo, "kept", shown, cp.branch, why))
            continue
        if not ours and not has_branch:
            out.append(Pruned(repo, "absent", shown, cp.branch, odd))
            continue
        uncommitted = [] if force else [
            f"its worktree {wt} has uncommitted changes" for wt in ours if dirty(wt)]
        alone = [] if force or not has_branch else [
            w for w in [unpushed(checkout, t.remote, cp.branch)] if w]
        if alone and not uncommitted and st.state == CS.abandoned:
            # Given up on purpose (its remote branch deleted by the abandon): the clean
            # worktrees go, the branch that alone holds its commits stays.
            has_branch = False
            odd = "; ".join(filter(None, [odd, f"branch {cp.branch} kept: {alone[0]} "
                                                "(--force deletes it)"]))
            alone = []
        risky = [*uncommitted, *alone]
        if risky:
            out.append(Pruned(repo, "kept", shown, cp.branch, "; ".join(
                [*risky, "kept: --force removes it"] + ([odd] if odd else []))))
            continue
        if dry_run:
            out.append(Pruned(repo, "would_remove", shown, cp.branch, odd, ours))
            continue
        for wt in ours:
            g.git(checkout, "worktree", "remove", "--force", "--force", wt, check=False)
        left = [wt for wt in ours if Path(wt).exists()]
        if has_branch and g.git(checkout, "symbolic-ref", "--quiet", "HEAD", check=False) \
                != f"refs/heads/{cp.branch}":
            g.git(checkout, "branch", "-D", "--end-of-options", cp.branch, check=False)
        if left:
            odd = "; ".join(filter(None, [odd, "git could not remove " + ", ".join(left)]))
        out.append(Pruned(repo, "removed", shown, cp.branch, odd, ours))
    return why, out
