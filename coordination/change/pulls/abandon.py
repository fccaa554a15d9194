"""``coord change abandon``: a change given up, its pull requests closed and coord's
branches deleted, the change ended ``abandoned``.

A change nothing of which is landed may be abandoned (never landed, dropped by the
train, or a landing that merged nothing: ``reverted``); a change with a repo landed
(``landed``, ``partially_landed``, ``revert_failed``), or a landing or revert under
way, is refused before anything changes: ``coord change revert`` takes what landed
back out first. A pull request merged (by hand, or by a landing not reverted since) is
refused the same way (nothing changed).

Per repo, in the change's order:

1. its open pull request (the one recorded, else the open one of the change branch
   into its base) gets a comment naming the reason, then is closed (a closed one is
   left as it is);
2. the change branch on its remote is deleted, only when its head there is still what
   coord pushed last (``--force-with-lease`` on that SHA): a branch someone else pushed
   to is kept and said, a branch named as the repo's base never touched;
   ``keep_branches`` keeps every one.

Then the change ends ``abandoned`` with the reason (and leaves the merge train); ``coord
change prune`` removes its worktrees. Running it again finishes what a first try left
(a forge that could not be reached): closed pull requests and deleted branches are
nothing to do again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coordination.change import git as g
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import ChangePlan
from coordination.errors import ChangeNotReady, ForgeAuthError, ForgeError, ForgeNotFound
from coordination.forge.base import PullRequest
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step

#: The states a change may be abandoned from (None: never landed).
ABANDONABLE = (None, "", CS.failed_verification, CS.reverted, CS.abandoned)


@dataclass
class AbandonedRepo:
    """What abandoning did to one repo (``dry_run``: would do)."""

    repo: str
    #: closed | already_closed | merged (and reverted since) | none (no pull request) |
    #: would_close | failed
    pr_action: str = "none"
    number: int | None = None
    url: str | None = None
    #: deleted | kept (--keep-branches) | not_coords (someone else's head) | absent |
    #: would_delete | failed
    branch_action: str = "absent"
    why: str | None = None

    def document(self) -> dict[str, Any]:
        return {"repo": self.repo, "pr": {"action": self.pr_action, "number": self.number,
                                          "url": self.url},
                "branch": self.branch_action, "why": self.why}


@dataclass
class Abandoned:
    plan: str
    state: str
    reason: str
    dry_run: bool = False
    repos: list[AbandonedRepo] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.pr_action == "failed" or r.branch_action == "failed"
                       for r in self.repos)

    def document(self) -> dict[str, Any]:
        return {"plan": self.plan, "state": self.state, "reason": self.reason,
                "dry_run": self.dry_run, "ok": self.ok,
                "repos": [r.document() for r in self.repos]}


def comment_text(plan: str, reason: str) -> str:
    return (f"coord: change {plan} was abandoned (`coord change abandon`): {reason}\n\n"
            "This pull request is closed without merging; coord's branch of it is deleted "
            "unless someone else pushed to it.")


class Abandoner:
    """Abandons one change (see the module)."""

    def __init__(self, rt: Runtime, cp: ChangePlan, forges: ChangeForges) -> None:
        self.rt, self.cp, self.forges = rt, cp, forges

    def refusal(self) -> str | None:
        """Why the change may not be abandoned now (nothing changed), or None."""
        st = self.rt.changes.read(self.cp.plan)
        plan = self.cp.plan
        if st.lander:
            return (f"{plan}: a {st.lander.op or 'landing'} of it is under way: let it end "
                    "(or carry it on) first")
        landed = [r for r in self.cp.targets
                  if st.step(r).state in (Step.landed, Step.landing, Step.reverting)]
        if st.state not in ABANDONABLE or landed:
            return (f"{plan} is {st.state}" + (f" ({', '.join(landed)} landed)" if landed else "")
                    + f": abandoning leaves nothing landed; coord change revert {plan} "
                    "takes it back out first")
        return None

    def abandon(self, reason: str, *, keep_branches: bool = False,
                dry_run: bool = False) -> Abandoned:
        cp = self.cp
        why = self.refusal()
        if why:
            raise ChangeNotReady(why, hint=f"coord change status {cp.plan} shows each repo")
        st = self.rt.changes.read(cp.plan)
        # Every pull request read before anything changes: one merged by hand refuses
        # the whole abandon (coord closes nothing of a change that landed somewhere).
        found: dict[str, PullRequest | None] = {}
        for repo in cp.targets:
            if not self.forges.has(repo):
                continue
            found[repo] = self._pull(repo)
        merged = [f"{r} #{pr.number} ({pr.url})" for r, pr in found.items()
                  if pr is not None and pr.merged and st.step(r).state != Step.reverted]
        if merged:
            raise ChangeNotReady(
                f"{cp.plan}: pull request {', '.join(merged)} was merged: abandoning leaves "
                "nothing landed", hint=f"take it out on the forge (or coord change revert "
                f"{cp.plan} once landed), then abandon again")
        out = Abandoned(cp.plan, CS.abandoned if not dry_run else str(st.state or "drafted"),
                        reason, dry_run)
        for repo in cp.targets:
            res = AbandonedRepo(repo)
            out.repos.append(res)
            pr = found.get(repo)
            if pr is not None:
                self._close(res, repo, pr, reason, dry_run)
            self._branch(res, repo, keep_branches, dry_run)
        if not dry_run:
            self.rt.changes.end_landing(cp.plan, CS.abandoned, f"abandoned: {reason}")
            if cp.plan in self.rt.changes.train():
                self.rt.changes.leave_train(cp.plan)
        return out

    def _pull(self, repo: str) -> PullRequest | None:
        """The repo's pull request of the change: the recorded one, else the open one of
        the change branch into its base."""
        forge, t = self.forges.of(repo), self.cp.targets[repo]
        pull = self.rt.changes.read(self.cp.plan).pulls.get(repo)
        try:
            if pull is not None and pull.project == forge.project:
                try:
                    return forge.get_pr(pull.number)
                except ForgeNotFound:
                    pass
            return forge.find_pr(self.cp.branch, base=t.base)
        except ForgeAuthError:
            raise  # no token, or refused: said naming its variable (exit 2)
        except ForgeError as exc:
            raise ChangeNotReady(f"{repo}: its forge could not be read: {exc.message}",
                                 hint="nothing was closed or deleted; run it again") from None

    def _close(self, res: AbandonedRepo, repo: str, pr: PullRequest, reason: str,
               dry_run: bool) -> None:
        res.number, res.url = pr.number, pr.url
        if not pr.is_open:
            res.pr_action = "merged" if pr.merged else "already_closed"
            return
        if dry_run:
            res.pr_action = "would_close"
            return
        forge = self.forges.of(repo)
        try:
            forge.comment(pr.number, comment_text(self.cp.plan, reason))
            forge.close_pr(pr.number)
        except ForgeError as exc:
            res.pr_action, res.why = "failed", f"closing #{pr.number}: {exc.message}"
            return
        res.pr_action = "closed"

    def _branch(self, res: AbandonedRepo, repo: str, keep: bool, dry_run: bool) -> None:
        """Delete the change branch on ``repo``'s remote when its head is coord's."""
        cp, t = self.cp, self.cp.targets[repo]
        branch = cp.branch
        if branch == t.base:  # never a base (publish never pushed it either)
            res.branch_action = "kept"
            res.why = f"{branch} is {repo}'s base: coord never deletes it"
            return
        st = self.rt.changes.read(cp.plan)
        pull, rec = st.pulls.get(repo), st.repos.get(repo)
        where = rec.worktree if rec is not None and rec.worktree else t.checkout
        untrusted = g.untrusted_git(repo, t.checkout, where, remote=t.remote, url=t.url,
                                    trusted=t.land_hooks)
        if untrusted:
            res.branch_action, res.why = "failed", untrusted
            return
        try:
            there = g.remote_sha(where, t.remote, branch, hooks=t.land_hooks)
        except g.GitError as exc:
            res.branch_action, res.why = "failed", f"reading {t.remote}/{branch}: {exc}"
            return
        if there is None:
            res.branch_action = "absent"
            return
        ours = pull.head if pull is not None else None
        if there != ours:
            res.branch_action = "not_coords"
            res.why = (f"{t.remote}/{branch} is at {there[:12]}, not what coord pushed"
                       + (f" ({ours[:12]})" if ours else " (coord pushed nothing there)")
                       + ": kept")
            return
        if keep:
            res.branch_action = "kept"
            return
        if dry_run:
            res.branch_action = "would_delete"
            return
        refused = g.delete_branch(where, t.remote, branch, there, hooks=t.land_hooks)
        if refused:
            res.branch_action, res.why = "failed", f"deleting {t.remote}/{branch}: {refused}"
            return
        res.branch_action = "deleted"
