"""Reverting a landed change (``coord change revert``): every repo, reverse order.

A change that landed (state ``landed``; or ``revert_failed``, for the repos it
left landed; or ``partially_landed``, a per-wave landing's waves that landed) is put back repo by repo, consumers first, each under its repo
lease like a landing step, by a **revert commit** pushed with
``--force-with-lease`` expecting the head read just before (or the repo's
``revert_command`` for ``land: command`` repos, ``COORD_CHANGE_MANIFEST`` naming
the manifest as for ``land_command``).

The revert commit is ``git revert --no-edit BASE..LANDED`` squashed into one
commit over the remote's head *now*: when nobody pushed since the landing it is
the base's tree over the landed SHA (exactly the landing's own undo); when others
pushed on top, it is the three-way merge (``git merge-tree``) of the head with
"the base's tree over the landed SHA", i.e. the change's diff taken back out of
what is there now; a revert that does not apply is refused with its conflicting
files named. It is by the lander (git's identity in the worktree) with the
``Coord-Change: PLAN`` trailer, dated the manifest's ``created``: the same
inputs make the same SHA, recorded in the repo's step *before* it is pushed.

**Resume**: a revert killed half-way leaves the change ``landed`` with some steps
``reverted`` and maybe one ``reverting`` (its revert SHA and the head it goes
over recorded); running it again carries on, recognising a revert already on the
remote by its SHA: nothing is pushed twice.

**All or none**: when a repo's revert cannot be made or is refused, the repos
this revert already put back are landed again (a commit putting back the tree
they had, over the revert), in landing order: the change stays ``landed`` and the
command fails with the reason. If that is not possible either, the change ends
``revert_failed`` and the reason names every repo and its state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from coordination.change import git as g
from coordination.change.landing import (
    Lander,
    beating,
    commit_tree,
    lander,
    run_change_command,
)
from coordination.change.manifest import Manifest, ManifestRepo
from coordination.errors import ChangeNotReady
from coordination.runtime.change_records import (
    REVERT_COMMAND,
    StepRecord,
)
from coordination.runtime.changes import ChangeState
from coordination.runtime.leases import Lease
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step
from coordination.status import EventKind

#: The states a change can be reverted from.
REVERTIBLE = (CS.landed, CS.revert_failed, CS.partially_landed)


class Conflict(Exception):
    """A revert (or re-landing) does not apply on the remote's head: the files."""

    def __init__(self, files: list[str]) -> None:
        super().__init__(", ".join(files) or "the trees do not merge")
        self.files = files


@dataclass
class RepoPlan:
    """What reverting one repo would do (``--dry-run``) or did."""

    repo: str
    action: str  # revert | skip | refuse
    landed: str | None = None
    head: str | None = None  # the remote's head it reverts over
    others: bool = False  # others pushed on top of the landing since
    why: str | None = None
    #: its revert pull request goes through the base's queue of this kind (``land:
    #: pr``: ``merge_queue``, ``merge_train``); None: merged directly
    queue: str | None = None

    def document(self) -> dict[str, Any]:
        return {"repo": self.repo, "action": self.action, "landed": self.landed,
                "head": self.head, "others_pushed": self.others, "why": self.why,
                "merge_queue": self.queue}


@dataclass
class Reverted:
    """How a revert ended: ``reverted``; ``landed`` (refused, put back as it was);
    ``revert_failed`` (``states`` says where each repo is)."""

    plan: str
    state: str
    reason: str | None
    order: list[str]  # the revert order (consumers first)
    reverted: list[str] = field(default_factory=list)
    relanded: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"plan": self.plan, "state": self.state, "reason": self.reason,
                "order": self.order, "reverted": self.reverted, "relanded": self.relanded,
                "states": self.states, "notes": self.notes}


def undo_commit(m: Manifest, wt: str, landed: str, pre: str, head: str,
                ident: dict[str, str], message: str) -> str:
    """The commit taking ``pre..landed`` back out of ``head`` (``landed`` is an
    ancestor of it): ``pre``'s tree over ``landed`` when ``head`` is ``landed``, else
    that merged (three ways, base ``landed``) with ``head``, committed over ``head``.
    Deterministic (:func:`coordination.change.landing.commit_tree`). Raises
    :class:`Conflict` naming the files when it does not apply."""
    back = commit_tree(m, wt, f"{pre}^{{tree}}", landed, ident, message)
    if head == landed:
        return back
    proc = g.run(wt, "merge-tree", "--write-tree", "--name-only", "--no-messages",
                 "--end-of-options", head, back)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 1:
        raise Conflict(sorted({ln for ln in lines[1:] if ln}))
    if proc.returncode != 0 or not lines:
        raise g.GitError(["merge-tree", head, back], proc.returncode, proc.stderr)
    return commit_tree(m, wt, lines[0], head, ident, message)


class Reverter(Lander):
    """Reverts one landed change: :meth:`check` (the dry run) and :meth:`revert`."""

    #: the state a refused revert leaves the change in: as it was (landed, or partly)
    was: str = CS.landed

    def _landed(self) -> tuple[ChangeState, Manifest]:
        st = self.store.read(self.cp.plan)
        if st.state not in REVERTIBLE or not st.manifest:
            raise ChangeNotReady(
                f"{self.cp.plan} is not landed (its state: {st.state or 'never landed'}): "
                "nothing to revert",
                hint=f"coord change status {self.cp.plan} shows where each repo is")
        m = self._manifest(st)
        self._worktrees_back(m, st)
        return st, m

    def _worktrees_back(self, m: Manifest, st: ChangeState) -> None:
        """A landed repo's worktree removed since (``coord change prune``): made again,
        detached at what landed (fetched), where the manifest names it; the revert's git
        runs there as before. One it cannot make is the revert's to refuse, named."""
        for e in m["repos"]:
            landed = st.step(e["repo"]).landed
            t = self.cp.targets.get(e["repo"])
            if not landed or t is None or os.path.isdir(e["worktree"]):
                continue
            if self._untrusted(e["repo"], t.checkout, remote=e["remote"]):
                continue  # no git runs there: the revert says why
            try:
                g.fetch(t.checkout, e["remote"], e["base"], hooks=self._hooks(e["repo"]))
                g.git(t.checkout, "worktree", "add", "--quiet", "--force", "--detach",
                      e["worktree"], str(landed))
            except g.GitError:
                continue

    def _entries(self, m: Manifest) -> list[ManifestRepo]:
        return list(reversed(m["repos"]))

    # -- the dry run -------------------------------------------------------------------
    def check(self) -> tuple[list[RepoPlan], Manifest]:
        """Per repo (revert order) what a revert would do; nothing is pushed or
        recorded (the remote's head is fetched to see whether the revert applies)."""
        st, m = self._landed()
        out: list[RepoPlan] = []
        for e in self._entries(m):
            out.append(self._check_one(m, e, st.step(e["repo"])))
        return out, m

    def _check_one(self, m: Manifest, e: ManifestRepo, step: StepRecord) -> RepoPlan:
        repo, wt = e["repo"], e["worktree"]
        state = step.state
        if state == Step.reverted:
            return RepoPlan(repo, "skip", step.landed, why="already reverted")
        if state not in (Step.landed, Step.reverting, Step.revert_failed) or not step.landed:
            return RepoPlan(repo, "skip", why="it never landed" if state in (None, Step.not_landed)
                            else f"its step is {state}")
        landed = str(step.landed)
        untrusted = self._untrusted(repo, wt, remote=e["remote"])
        if untrusted:  # before any git runs there
            return RepoPlan(repo, "refuse", landed, why=untrusted)
        try:
            now = g.fetch(wt, e["remote"], e["base"], hooks=self._hooks(repo))
        except g.GitError as exc:
            return RepoPlan(repo, "refuse", landed, why=f"{repo}: {exc}")
        if state == Step.reverting and step.revert and g.is_ancestor(wt, step.revert, now):
            return RepoPlan(repo, "skip", landed, now, why="its revert is on the remote already")
        problem = self._unrevertible(e, landed, now)
        if problem:
            return RepoPlan(repo, "refuse", landed, now, why=problem)
        try:
            undo_commit(m, wt, landed, step.pre or e["base_sha"], now,
                        self._identity(e), self._message(m, e))
        except Conflict as exc:
            return RepoPlan(repo, "refuse", landed, now, True, self._conflict(e, now, exc))
        return RepoPlan(repo, "revert", landed, now, now != landed)

    def _unrevertible(self, e: ManifestRepo, landed: str, now: str | None) -> str | None:
        repo, wt = e["repo"], e["worktree"]
        if now is None:
            return f"{repo}: {e['remote']}/{e['base']} is gone"
        if now != landed and not g.is_ancestor(wt, landed, now):
            return (f"{repo}: {e['remote']}/{e['base']} ({now[:12]}) no longer contains the "
                    f"landed {landed[:12]} (history rewritten?): revert it by hand")
        if self.land_mode == "command" and not self._target_revert_command(repo):
            return (f"{repo}: lands by command but has no revert_command (add "
                    f"revert_command: to repo {repo} in the catalog)")
        return None

    def _target_revert_command(self, repo: str) -> str | None:
        t = self.cp.targets.get(repo)
        return t.revert_command if t is not None else None

    @staticmethod
    def _conflict(e: ManifestRepo, now: str, exc: Conflict) -> str:
        return (f"{e['repo']}: the revert does not apply on {e['remote']}/{e['base']} "
                f"({now[:12]}): conflict in {exc}; revert it by hand")

    @staticmethod
    def _message(m: Manifest, e: ManifestRepo) -> str:
        return (f"Revert {m['branch']} ({m['plan']}): coord change revert\n\n"
                f"Takes the change landed on {e['base']} over {e['base_sha']} back out.")

    # -- the revert ----------------------------------------------------------------------
    def revert(self) -> Reverted:
        st, m = self._landed()
        plan = m["plan"]
        self.store.set_lander(plan, lander("revert"))  # until it ends: else interrupted
        with beating(self.rt, plan):
            return self._revert(st, m)

    def _revert(self, st: ChangeState, m: Manifest) -> Reverted:
        plan = m["plan"]
        self.land_mode = m["land"]
        self.was = CS.partially_landed if st.state == CS.partially_landed else CS.landed
        entries = self._entries(m)
        order = [e["repo"] for e in entries]
        done: list[str] = []
        failure: str | None = None
        for e in entries:
            step = st.step(e["repo"])
            state = step.state
            if state == Step.landing and step.reland:
                step = self._settle_reland(m, e, step)
                state = step.state
            if state == Step.reverted:
                if step.by == REVERT_COMMAND:
                    done.append(e["repo"])
                continue
            if state not in (Step.landed, Step.reverting, Step.revert_failed) or not step.landed:
                continue  # never landed, or the landing's undo reverted it: nothing to revert
            failure = self._revert_repo(m, e, step)
            if failure:
                break
            done.append(e["repo"])
        if failure is None:
            self.store.end_landing(
                plan, CS.reverted, f"reverted by coord change revert ({', '.join(order)})",
                self.rt.events.prepare(EventKind.change_reverted, plan=plan,
                                       reason="coord change revert", state=CS.reverted,
                                       left_landed=[]))
            return Reverted(plan, CS.reverted, None, order, reverted=done,
                            states=self._states(m), notes=self.notes)
        return self._put_back(m, order, done, failure)

    def _fetch_base(self, e: ManifestRepo) -> tuple[str | None, str | None]:
        """The repo's git config checked (before any git runs in its worktree), then its
        base fetched: (the base on its remote now, None), or (None, why not)."""
        repo = e["repo"]
        untrusted = self._untrusted(repo, e["worktree"], remote=e["remote"])
        if untrusted:
            return None, untrusted
        try:
            return g.fetch(e["worktree"], e["remote"], e["base"], hooks=self._hooks(repo)), None
        except g.GitError as exc:
            return None, f"{repo}: {exc}"

    def _revert_repo(self, m: Manifest, e: ManifestRepo, step: StepRecord) -> str | None:
        """Revert one repo: None, or why not (nothing of it pushed, or put back)."""
        repo, wt, remote, base = e["repo"], e["worktree"], e["remote"], e["base"]
        with self._lease(repo) as lease:
            # Read again under the lease: another revert of the change may have done it.
            step = self.store.read(m["plan"]).steps.get(repo, step)
            if step.state == Step.reverted:
                return None
            landed = step.landed
            # (it landed: read so before the lease; under it only this command writes)
            assert landed is not None
            pre: str = step.pre or e["base_sha"]
            now, why = self._fetch_base(e)
            if why:
                return why
            hooks = self._hooks(repo)
            revert = step.revert if step.state == Step.reverting else None
            if revert and now and self._on_remote(wt, revert, step.over, now):
                # Resumed: the revert was pushed before the step said so (never twice).
                self._reverted(m, lease, e, step, now, now if now != revert else revert)
                return None
            problem = self._unrevertible(e, landed, now)
            if problem:
                return problem
            assert now is not None
            ident = self._identity(e)
            try:
                revert = undo_commit(m, wt, landed, pre, now, ident, self._message(m, e))
            except Conflict as exc:
                return self._conflict(e, now, exc)
            if now != landed and g.tree(wt, revert) == g.tree(wt, now):
                # Taken out by hand already: nothing to push (no empty commit).
                done = StepRecord.new(landed=landed, pre=pre, over=now,
                                      why=f"already taken out of {remote}/{base} at {now[:12]}")
                self._reverted(m, lease, e, done, now, now)
                return None
            doc = StepRecord.new(
                state=Step.reverting, landed=landed, pre=pre, over=now, revert=revert,
                by=REVERT_COMMAND,
                ident=f"{ident['GIT_AUTHOR_NAME']} <{ident['GIT_AUTHOR_EMAIL']}>")
            self._step(m, lease, repo, doc)
            self.fault("before-revert", repo)
            after: str | None
            if self.land_mode == "command":
                why = self._revert_command(m, e, now, revert)
                after = g.fetch(wt, remote, base, hooks=hooks)
                if after != now and g.is_ancestor(wt, now, after) and (
                        g.tree(wt, after) == g.tree(wt, revert)):
                    why = None
                else:
                    why = why or (f"the revert command left {remote}/{base} at "
                                  f"{str(after)[:12]}, not the revert")
            else:
                why = g.push(wt, remote, revert, base, now, hooks=hooks)
                after = revert if why is None else g.remote_sha(wt, remote, base, hooks=hooks)
                if after == revert:
                    why = None
            self.fault("after-revert", repo)
            if why:
                self._step(m, lease, repo, StepRecord.new(state=Step.landed, landed=landed, pre=pre,
                                                          why=f"revert refused: {why}"))
                return f"{repo}: revert refused: {why}"
            self._reverted(m, lease, e, doc, now, str(after))
            return None

    @staticmethod
    def _on_remote(wt: str, revert: str, over: str | None, now: str) -> bool:
        """Is ``revert`` (made over ``over``) on the remote, whose head is ``now``: that
        SHA, or (a revert command's own commit) one with its tree over ``over``?"""
        if now == revert or g.is_ancestor(wt, revert, now):
            return True
        return bool(over and now != over and g.is_ancestor(wt, over, now)
                    and g.tree(wt, now) == g.tree(wt, revert))

    def _reverted(self, m: Manifest, lease: Lease, e: ManifestRepo, step: StepRecord,
                  over: str | None, head: str) -> None:
        doc = StepRecord.new(state=Step.reverted, landed=step.landed, pre=step.pre or e["base_sha"],
                             over=over if step.over is None else step.over, revert=head,
                             by=REVERT_COMMAND, why=step.why or None)
        self._step(m, lease, e["repo"], doc,
                   self._said_reverted(m, e["repo"], head, "coord change revert"))

    def _revert_command(self, m: Manifest, e: ManifestRepo, head: str, revert: str) -> str | None:
        """Run the repo's revert command in its worktree (as the land command is run);
        None when it exited 0."""
        command = self._target_revert_command(e["repo"])
        assert command
        return run_change_command("revert command", command, m, e,
                                  COORD_CHANGE_HEAD_SHA=head, COORD_CHANGE_REVERT_SHA=revert)

    # -- all or none ---------------------------------------------------------------------
    def _put_back(self, m: Manifest, order: list[str], done: list[str],
                  failure: str) -> Reverted:
        """The revert stopped at ``failure``: land again what it reverted (landing
        order); the change stays landed, or ends revert_failed naming every repo."""
        plan = m["plan"]
        relanded: list[str] = []
        stuck: list[str] = []
        for e in m["repos"]:
            if e["repo"] not in done:
                continue
            why = self._reland(m, e)
            if why:
                stuck.append(why)
            else:
                relanded.append(e["repo"])
        states = self._states(m)
        if not stuck:
            reason = f"revert refused, nothing left reverted: {failure}" + (
                f" (landed again: {', '.join(relanded)})" if relanded else "")
            self.store.end_landing(plan, self.was, reason)
            return Reverted(plan, self.was, reason, order, relanded=relanded, states=states,
                            notes=self.notes)
        reason = (f"revert refused: {failure}; landing again failed: {'; '.join(stuck)}; "
                  "repos now: " + ", ".join(f"{r} {s}" for r, s in states.items()))
        self.store.end_landing(plan, CS.revert_failed, reason, self.rt.events.prepare(
            EventKind.change_reverted, plan=plan, reason=reason, state=CS.revert_failed,
            left_landed=[r for r, s in states.items() if s == Step.landed]))
        return Reverted(plan, CS.revert_failed, reason, order,
                        reverted=[r for r, s in states.items() if s == Step.reverted],
                        relanded=relanded, states=states, notes=self.notes)

    def _reland(self, m: Manifest, e: ManifestRepo) -> str | None:
        """Land ``e``'s repo again over this command's revert: None, or why not."""
        repo, wt, remote, base = e["repo"], e["worktree"], e["remote"], e["base"]
        with self._lease(repo) as lease:
            step = self.store.read(m["plan"]).step(repo)
            revert, over = step.revert, step.over
            if step.state != Step.reverted or not revert or not over:
                return f"{repo}: its step is {step.state}, not a revert of this command"
            now, why = self._fetch_base(e)
            if why:
                return why
            hooks = self._hooks(repo)
            if now is None or not g.is_ancestor(wt, revert, now):
                return f"{repo}: {remote}/{base} no longer contains the revert {revert[:12]}"
            ident = self._identity(e)
            msg = (f"Land {m['branch']} ({m['plan']}) again: its revert was refused in "
                   "another repo")
            try:
                again = undo_commit(m, wt, revert, over, now, ident, msg)
            except Conflict as exc:
                return f"{repo}: landing it again does not apply: conflict in {exc}"
            self._step(m, lease, repo, step.but(state=Step.landing, reland=again,
                                                reland_over=now))
            if self.land_mode == "command":
                return (f"{repo}: lands by command; landing it again is not automatic "
                        f"(the revert {revert[:12]} is on {remote}/{base})")
            why = g.push(wt, remote, again, base, now, hooks=hooks)
            if why and g.remote_sha(wt, remote, base, hooks=hooks) != again:
                self._step(m, lease, repo, step.but(why=f"landing again refused: {why}"))
                return f"{repo}: landing it again was refused: {why}"
            self._step(m, lease, repo, StepRecord.new(state=Step.landed, landed=again, pre=revert,
                                                      relanded=True),
                       self._said_landed(m, repo, again))
            return None

    def _settle_reland(self, m: Manifest, e: ManifestRepo, step: StepRecord) -> StepRecord:
        """A re-landing killed half-way: did it land (its SHA on the remote)?"""
        repo, wt = e["repo"], e["worktree"]
        with self._lease(repo) as lease:
            untrusted = self._untrusted(repo, wt, remote=e["remote"])
            if untrusted:
                raise ChangeNotReady(untrusted, hint="nothing was pushed; run coord change "
                                     "revert again once it is gone")
            now = g.fetch(wt, e["remote"], e["base"], hooks=self._hooks(repo))
            reland = step.reland
            assert reland is not None  # (what it was called for)
            if now and (now == reland or g.is_ancestor(wt, reland, now)):
                doc = StepRecord.new(state=Step.landed, landed=reland, pre=step.revert,
                                     relanded=True)
            else:
                doc = step.without("reland", "reland_over").but(state=Step.reverted)
            self._step(m, lease, repo, doc)
            return doc

    def _states(self, m: Manifest) -> dict[str, str]:
        st = self.store.read(m["plan"])
        out = {}
        for e in m["repos"]:
            s = st.step(e["repo"])
            state = str(s.state or "not landed")
            out[e["repo"]] = "relanding" if state == Step.landing and s.reland else state
        return out
