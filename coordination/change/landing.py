"""Landing a change: prepare, commit, undo, resume.

**Prepare** checks every repo: its base unchanged on the remote since the branch
was made (a moved base is merged into the branch, which makes it unverified:
the landing is refused and says so; a merge that conflicts leaves the repo
``conflict``); then the landing rule (:func:`coordination.change.rule.judge`) on
the candidate set it would land (each worktree's HEAD): every verify todo passed
on exactly that set, every gate approved, nothing of the plan's last sweep
failed. Then the manifest (per repo: base SHA, candidate SHA, order) is
recorded in Redis, signed like sweep specs, and the change is ``landing``.

**Commit** lands repos in dependency order, each under every slot of its repo
lease (a fenced step write records it): ``git push
--force-with-lease=BASE:BASE_SHA REMOTE CANDIDATE:BASE``, or the repo's
``land_command`` with ``COORD_CHANGE_MANIFEST`` naming the manifest as a file.

**Undo**: a refused push (the remote moved) or a failing command stops the
landing; the repos landed get a revert commit (the base's tree over the landed
SHA) pushed the same way, in reverse order. The change ends ``reverted`` with
the reason, or ``revert_failed`` naming every repo left landed.

**Resume**: a landing killed half-way leaves its manifest and steps; running the
landing again carries on from them. The process landing is recorded with the
change (host, pid, start time) until the landing ends: one that died shows
``interrupted`` (:func:`coordination.change.reading.interruption`). Each step is recognised on the remote by
SHA (the candidate, or a commit with its tree; the revert, whose SHA is the same
however often it is made: fixed identity and date), so nothing lands twice.

**Per wave** (``land: per-wave``): the manifest records the waves; commit lands
them one at a time, soaking between (:mod:`coordination.change.waves`).

**By pull request** (``land: pr``): prepare judges the rule with each repo's pull
request as its forge says it now; commit merges them through the forge, pinned to
the candidates, and a refused merge stops the landing there, no undo
(:mod:`coordination.change.pulls.pull_landing`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import RedisError

from coordination.change import git as g
from coordination.change import standing, worktrees
from coordination.change.pulls import pull_landing
from coordination.change.blockers import Blocker
from coordination.change.carry_on import carry_on_blockers
from coordination.change.pulls.forge_status import read_views
from coordination.change.pulls.forges import ChangeForges
from coordination.change.landing_evidence import current_candidates
from coordination.change.manifest import Manifest, ManifestRepo, ManifestWave
from coordination.change.pulls.merge_settings import merge_setting_blockers
from coordination.change.model import ChangePlan
from coordination.change.rule import judge
from coordination.change.waves import commit_waves
from coordination.errors import ChangeNotReady, OperationFailed
from coordination.runtime.change_records import (
    LanderRecord,
    StepRecord,
)
from coordination.runtime.changes import ChangeState, ChangeStore, RepoRecord
from coordination.runtime.context import Runtime
from coordination.runtime.freeze import refuse_if_frozen
from coordination.runtime.leases import Heartbeat, Lease
from coordination.processes import remove_left_behind, this_process
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step
from coordination.status import EventKind
from coordination.trust.secrets import without_secrets
from coordination.trust.signing import Policy, manifest_refusal, sign_manifest

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared as Said  # (not this module's Prepared)

log = logging.getLogger(__name__)

#: Called at named points of a landing (tests inject faults here: a raise is a crash).
Fault = Callable[[str, str], None]

#: Seconds a land command may run.
LAND_COMMAND_TIMEOUT = 600.0
#: A landing's document state when it was refused before anything landed (blockers, or a
#: change that cannot be landed): not a change state, never stored.
NOT_READY = "not_ready"


@dataclass
class Prepared:
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: Manifest | None = None
    resumed: bool = False
    #: every reason it is not ready, as the landing rule says them (problems: their text)
    blockers: list[Blocker] = field(default_factory=list)


@dataclass
class Landed:
    """How a landing ended (``state``: landed, reverted or revert_failed)."""

    plan: str
    state: str
    reason: str | None
    landed: list[str]  # repos landed (and left landed, for landed / revert_failed)
    reverted: list[str]
    left_landed: list[str]
    order: list[str]
    #: ``land: per-wave``: each wave {"name", "repos", "state"} (landed, reverted,
    #: revert_failed, or not_landed: never started)
    waves: list[dict[str, Any]] = field(default_factory=list)
    #: repos of the change with nothing to land (no commit on the branch): left alone
    unchanged: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "plan": self.plan, "state": self.state, "reason": self.reason, "order": self.order,
            "landed": self.landed, "reverted": self.reverted, "left_landed": self.left_landed,
            "unchanged": self.unchanged}
        if self.waves:
            doc["waves"] = self.waves
        return doc


class Crash(BaseException):
    """Raised by a test's fault hook to stop a landing as a kill would (not an error
    the landing handles: nothing after it runs, nothing is cleaned up)."""


def _no_fault(point: str, repo: str) -> None:
    return None


#: The manifest file a land or revert command is given: ``$TMPDIR/<this><pid>-*.json``.
MANIFEST_PREFIX = "coord-manifest-"


def run_change_command(what: str, command: str, m: Manifest, e: ManifestRepo,
                       **env_more: str) -> str | None:
    """Run a repo's land or revert command (``what``) in its worktree, with the manifest
    in a file and the change in its environment (``env_more``: what else it is told);
    None when it exited 0, else why not. The file is removed once the command ends; one
    a killed lander left is removed by a later command (:func:`remove_stale_manifests`)."""
    remove_stale_manifests(tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", prefix=f"{MANIFEST_PREFIX}{os.getpid()}-",
                                     suffix=".json", delete=False) as f:
        json.dump(m, f)
    # (none of coord's own secrets: the command runs in a worktree its todos wrote)
    env = dict(without_secrets(os.environ, forge_tokens=False),
               COORD_CHANGE_MANIFEST=f.name, COORD_CHANGE_PLAN=m["plan"],
               COORD_CHANGE_BRANCH=m["branch"], COORD_CHANGE_REPO=e["repo"],
               COORD_CHANGE_REMOTE=e["remote"], COORD_CHANGE_BASE=e["base"],
               COORD_CHANGE_BASE_SHA=e["base_sha"], COORD_CHANGE_CANDIDATE_SHA=e["candidate"],
               **env_more)
    try:
        proc = subprocess.run(["/bin/sh", "-c", command], cwd=e["worktree"], env=env,
                              capture_output=True, text=True, timeout=LAND_COMMAND_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"{what} timed out after {LAND_COMMAND_TIMEOUT:g}s"
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return f"{what} exited {proc.returncode}" + (f": {tail[0]}" if tail else "")
    return None


def remove_stale_manifests(directory: str, now: float | None = None, limit: int = 32) -> int:
    """Remove (``limit`` at most) the manifest files in ``directory`` that landers of this
    user left when they were killed (their ``finally`` never ran): those whose process
    no longer runs, older than a land command may run. Returns how many went."""
    return remove_left_behind(directory, MANIFEST_PREFIX, suffix=".json", limit=limit,
                              older_than=LAND_COMMAND_TIMEOUT + 60, now=now)


class Lander:
    """Lands one change: :meth:`prepare` then :meth:`commit`; :meth:`land` both, or
    resumes a landing the manifest says is under way."""

    def __init__(self, rt: Runtime, cp: ChangePlan, *, concurrency: dict[str, int] | None = None,
                 fault: Fault = _no_fault, lease_wait: float | None = None,
                 forges: ChangeForges | None = None) -> None:
        self.rt = rt
        self.cp = cp
        self.store: ChangeStore = rt.changes
        self.concurrency = concurrency or {}
        self.fault = fault
        self.lease_wait = lease_wait if lease_wait is not None else rt.settings.lease_ttl * 2 + 5
        self.land_mode = cp.land  # the manifest's, once committing
        #: what the user is told beside the outcome (git had no identity: coord's used)
        self.notes: list[str] = []
        self._forges = forges

    @property
    def forges(self) -> ChangeForges:
        """The forges of the change's repos (``land: pr``), made on first use."""
        if self._forges is None:
            self._forges = ChangeForges(self.cp)
        return self._forges

    # -- prepare ---------------------------------------------------------------
    def prepare(self, *, dry_run: bool = False) -> Prepared:
        cp, store = self.cp, self.store
        st = store.read(cp.plan)
        if st.state == CS.abandoned:  # given up (coord change abandon): never landed now
            gone = Blocker("repo", cp.plan, f"{cp.plan} was abandoned ({st.reason or 'no reason'}"
                           "): nothing lands it; make a new plan for the change")
            return Prepared(ok=False, problems=[str(gone)], blockers=[gone])
        if st.state == CS.landing and st.manifest:
            # carried on only as what may land now: the rule and the anchor every time,
            # an undo only as its lander sealed it (change/carry_on.py); a dry run also
            # reads each remote not landed yet
            m = self._manifest(st)
            stop = carry_on_blockers(self.rt, cp, st, m)
            if dry_run:
                stop += self._carry_on_blockers(st, m)
            if stop:
                return Prepared(ok=False, problems=[str(b) for b in stop], resumed=True,
                                blockers=stop)
            return Prepared(ok=True, manifest=m, resumed=True)
        if not dry_run:  # a new landing (one under way is carried on, above)
            refuse_if_frozen(self.rt, f"land {cp.plan}")
        blockers: list[Blocker] = []
        recs: dict[str, RepoRecord] = {}
        # Each repo's check is a few git commands, a fetch among them: all repos at once.
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(cp.targets)))) as pool:
            checked = list(pool.map(lambda r: self._check(st, r, dry_run), cp.targets))
        for repo, (problem, rec) in zip(cp.targets, checked):
            if problem:
                blockers.append(Blocker("repo", repo, problem.removeprefix(f"{repo}: ")))
            elif rec is not None:
                recs[repo] = rec
        # The landing rule, on the candidates this landing would push (a repo whose
        # check failed: its worktree's HEAD now), with the state as the checks left it.
        st = store.read(cp.plan)
        now = current_candidates(cp, st)
        now.update({r: rec.candidate for r, rec in recs.items()})
        told = {b.id for b in blockers}
        pulls = None
        if cp.land == "pr":  # each pull request as its forge says it now (never cached)
            self.forges.require()
            pulls = read_views(self.rt, cp, st, self.forges, fresh=True, source="land")
        blockers += [b for b in judge(self.rt, cp, st, now, pulls=pulls).blockers
                     if not (b.kind == "repo" and b.id in told)]
        if cp.land == "pr":  # what one repo's settings would refuse: nothing merges
            blockers += merge_setting_blockers(cp, self.forges, [
                r for r, rec in recs.items() if rec.candidate != rec.base_sha])
        # A repo whose branch has no commit (a template's run changed nothing there: the
        # fleet's migration was done already) has nothing to land: left out, said.
        unchanged = [r for r in cp.targets if r in recs
                     and recs[r].candidate == recs[r].base_sha]
        if not blockers and len(unchanged) == len(cp.targets):
            blockers.append(Blocker("repo", cp.plan, "no repo of the change has a commit on "
                                    f"{cp.branch}: nothing to land"))
        if blockers:
            return Prepared(ok=False, problems=[str(b) for b in blockers], blockers=blockers)
        kept = [r for r in cp.targets if r not in unchanged]
        manifest = Manifest(plan=cp.plan, branch=cp.branch, land=cp.land, created=int(time.time()),
                            repos=[ManifestRepo(repo=r, order=i, remote=t.remote, base=t.base,
                                                base_sha=recs[r].base_sha,
                                                candidate=recs[r].candidate,
                                                worktree=recs[r].worktree,
                                                land_command=t.land_command)
                                   for i, (r, t) in enumerate((r, cp.targets[r]) for r in kept)])
        if cp.land == "pr":
            manifest["merge_method"] = cp.merge_method
            for e in manifest["repos"]:
                e["pr"] = st.pulls[e["repo"]].number  # (the rule said each has one)
                view = (pulls or {}).get(e["repo"])
                if view is not None and view.merge_queue is not None:
                    # (said by --dry-run; merge_one asks again)
                    e["merge_queue"] = str(view.merge_queue.get("kind") or "merge_queue")
        if cp.waves:
            manifest["waves"] = [ManifestWave(name=w.name, soak=w.soak,
                                              repos=[r for r in w.repos if r not in unchanged])
                                 for w in cp.waves if set(w.repos) - set(unchanged)]
        if unchanged:
            manifest["unchanged"] = unchanged
        if dry_run:
            return Prepared(ok=True, manifest=manifest)
        text = json.dumps(manifest, separators=(",", ":"), sort_keys=True)
        keys = self.rt.settings.signing_keys
        store.begin_landing(cp.plan, text, sign_manifest(cp.plan, text, keys[0]) if keys else {},
                            self.rt.events.prepare(EventKind.change_prepared, plan=cp.plan,
                                                   order=[r["repo"] for r in manifest["repos"]],
                                                   unchanged=unchanged))
        return Prepared(ok=True, manifest=manifest)

    def _check(self, st: ChangeState, repo: str,
               dry_run: bool) -> tuple[str | None, RepoRecord | None]:
        """One repo's part of prepare: why its base or branch is not ready (``repo:
        why``), or its record to land."""
        cp, store, t = self.cp, self.store, self.cp.targets[repo]
        rec = st.repos.get(repo)
        if rec is None:
            return f"{repo}: no candidate yet (run the plan: coord plan sweep {cp.plan})", None
        wt = rec.worktree or str(worktrees.path_of(t.checkout, cp.branch))
        untrusted = self._untrusted(repo, t.checkout, wt)
        if untrusted:  # before any git runs there (a fetch would run what it names)
            return untrusted, None
        head = g.head(wt)
        if head != rec.candidate:
            rec = RepoRecord(rec.base, rec.remote, rec.base_sha, head, wt)
            if not dry_run:
                store.set_repo(cp.plan, repo, rec)
        if repo in st.conflicts:
            return f"{repo}: conflict: {st.conflicts[repo]}", None
        hooks = self._hooks(repo)
        now = (g.remote_sha(t.checkout, t.remote, t.base, hooks=hooks) if dry_run
               else g.fetch(t.checkout, t.remote, t.base, hooks=hooks))
        # (the words `change status` says it in too: coordination.change.standing)
        problem, contained = standing.base_problem(repo, t, rec, rec.candidate, now)
        if contained:  # the candidate contains the moved base: still verified
            rec = RepoRecord(rec.base, rec.remote, str(now), rec.candidate, rec.worktree)
            if not dry_run:
                store.set_repo(cp.plan, repo, rec)
        elif problem and now not in (None, rec.candidate) and not dry_run:
            return self._base_moved(repo, rec, str(now), st.step(repo)), None
        elif problem:
            return problem, None
        if not g.is_ancestor(wt, rec.base_sha, rec.candidate):
            return (f"{repo}: the candidate {rec.candidate[:12]} does not contain its base "
                    f"{rec.base_sha[:12]}"), None
        return None, rec  # verified or not: the landing rule's to say (prepare)

    def _base_moved(self, repo: str, rec: RepoRecord, now: str, last: StepRecord) -> str:
        """Merge a moved base (``now``, which the candidate does not contain) into the
        branch: why the repo is not ready now. ``last``: the repo's step in the
        change's last landing; if that landing reverted it, the merge brings the revert
        in, and the revert is reverted (the change is landed again, not its undo)."""
        wt = rec.worktree
        env = worktrees.identity_env(wt)
        hooks = self._hooks(repo)
        try:
            g.git(wt, "merge", "--no-edit", "--quiet", "-m",
                  g.trailer(f"Merge {rec.remote}/{rec.base} into {self.cp.branch}", self.cp.plan),
                  "--end-of-options", f"refs/remotes/{rec.remote}/{rec.base}", env=env,
                  hooks=hooks)
        except g.GitError as exc:
            g.git(wt, "merge", "--abort", check=False, hooks=hooks)
            said = (exc.stderr.strip().splitlines() or [str(exc)])[-1]
            self.store.set_conflict(self.cp.plan, repo, f"merging {rec.base} ({now[:12]}): {said}")
            return (f"{repo}: conflict: {rec.remote}/{rec.base} moved to {now[:12]} and does "
                    f"not merge into {self.cp.branch}; resolve it in {wt} and commit")
        revert = last.revert if last.state == CS.reverted else None
        again = ""
        if revert and g.has(wt, revert) and g.is_ancestor(wt, revert, "HEAD"):
            g.git(wt, "revert", "--no-commit", revert, env=env, hooks=hooks)
            g.git(wt, "commit", "--quiet", "--no-verify", "-m", g.trailer(
                f"Revert the revert {revert[:12]} of {self.cp.branch}: the change again",
                self.cp.plan), env=env, hooks=hooks)
            again = f" (its revert {revert[:12]} reverted: the change again)"
        head = g.head(wt)
        self.store.set_repo(self.cp.plan, repo,
                            RepoRecord(rec.base, rec.remote, now, head, wt))
        return (f"{repo}: {rec.remote}/{rec.base} moved ({rec.base_sha[:12]} -> {now[:12]}): "
                f"merged into {self.cp.branch} as {head[:12]}{again}, unverified: verify again")

    def _carry_on_blockers(self, st: ChangeState, m: Manifest) -> list[Blocker]:
        """``land --dry-run`` of a landing under way (interrupted): each repo it has not
        landed yet, its remote read now (``git ls-remote``, as a dry run of a new landing
        does): one whose base moved since the manifest was made stops the carry-on there
        (its push refused, the landed repos taken out again)."""
        out: list[Blocker] = []
        for e in m["repos"]:
            repo, wt = e["repo"], e["worktree"]
            if st.step(repo).state == CS.landed:
                continue
            why = self._untrusted(repo, wt, remote=e["remote"])
            if why is None:
                try:
                    now = g.remote_sha(wt, e["remote"], e["base"], hooks=self._hooks(repo))
                except g.GitError as exc:
                    why = f"{repo}: {e['remote']} cannot be read ({exc})"
                else:
                    if now in (e["base_sha"], e["candidate"]) or self._squashed(
                            m, e, now, st.step(repo).state is not None):
                        continue  # still to push, or landed by the push that was cut off
                    why = (self._moved(e, now).replace(" (push refused)", "")
                           + ": carrying the landing on would stop there and take the "
                           "repos it landed out again")
            out.append(Blocker("repo", repo, why.removeprefix(f"{repo}: ")))
        return out

    @staticmethod
    def _squashed(m: Manifest, e: ManifestRepo, now: str | None, started: bool) -> bool:
        """A started land command's squash of the candidate, as far as the worktree has
        it (what :meth:`_is_landed` recognises, without fetching: a dry run)."""
        wt = e["worktree"]
        return bool(now and started and m["land"] == "command" and g.has(wt, now)
                    and g.tree(wt, now) == g.tree(wt, e["candidate"])
                    and g.is_ancestor(wt, e["base_sha"], now))

    def _manifest(self, st: ChangeState) -> Manifest:
        assert st.manifest is not None
        why = manifest_refusal(self.cp.plan, st.manifest, st.manifest_sig, st.manifest_key_id,
                               _policy(self.rt))
        if why:
            raise OperationFailed(f"{self.cp.plan}: {why}", hint="nothing was pushed from it")
        m: Manifest = json.loads(st.manifest)
        return m

    # -- commit / undo / resume ----------------------------------------------------
    def land(self) -> Landed:
        """Prepare (or find the landing under way) and commit; refuses (ChangeNotReady)
        what is not ready."""
        prep = self.prepare()
        if not prep.ok or prep.manifest is None:
            raise ChangeNotReady(f"{self.cp.plan} is not ready to land:\n  "
                                 + "\n  ".join(prep.problems))
        return self.commit(prep.manifest)

    def commit(self, m: Manifest) -> Landed:
        # Who lands it, until it ends: a landing whose process died is `interrupted`
        # (coord change status), not `landing` for ever.
        self.store.set_lander(m["plan"], lander("land"))
        with beating(self.rt, m["plan"]):
            out = self._commit(m)
        out.unchanged = list(m.get("unchanged") or [])
        return out

    def _commit(self, m: Manifest) -> Landed:
        if m.get("waves"):
            self.land_mode = m["land"]
            order = [e["repo"] for e in m["repos"]]
            end = commit_waves(self, m)
            return Landed(m["plan"], end.state, end.reason, end.left_landed, end.reverted,
                          [] if end.state == CS.landed else end.left_landed, order,
                          waves=end.waves)
        plan = m["plan"]
        self.land_mode = m["land"]
        st = self.store.read(plan)
        order = [e["repo"] for e in m["repos"]]
        if st.reason:  # an undo was under way
            return self._undo(m, st.reason)
        if not any(s.state for s in st.steps.values()):
            self.rt.events.emit(EventKind.change_landing, plan=plan, order=order)
        failure = self.land_in_order(m, order, st)
        if failure and m["land"] == "pr":  # no undo a forge takes unreviewed: stop there
            state, why, merged = pull_landing.stop(self, m, failure)
            return Landed(plan, state, why, merged, [], merged, order)
        if failure:
            self.store.end_landing(plan, CS.landing, failure)  # undo under way: resumable
            return self._undo(m, failure)
        self.store.end_landing(plan, CS.landed, None, self.rt.events.prepare(
            EventKind.change_landed, plan=plan, order=order))
        return Landed(plan, CS.landed, None, order, [], [], order)

    # -- the steps a per-wave landing is made of (coordination.change.waves.Steps) --
    def land_in_order(self, m: Manifest, repos: list[str], st: ChangeState) -> str | None:
        """Land each of ``repos`` in turn that ``st`` does not say landed (a landing
        carried on: those that did are not landed twice); the first failure, else None."""
        entries = {e["repo"]: e for e in m["repos"]}
        for repo in repos:
            step = st.step(repo)
            if step.state == Step.landed and self._still_landed(entries[repo], step):
                continue
            failure = self._land_one(m, entries[repo], step)
            if failure:
                return failure
        return None

    def revert_repos(self, m: Manifest, repos: set[str],
                     reason: str) -> tuple[list[str], list[str]]:
        return self._revert_all(m, [e for e in m["repos"] if e["repo"] in repos], reason)

    def _land_one(self, m: Manifest, e: ManifestRepo, step: StepRecord) -> str | None:
        if m["land"] == "pr":
            return pull_landing.merge_one(self, m, e, step)
        repo, wt, remote, base = e["repo"], e["worktree"], e["remote"], e["base"]
        hooks = self._hooks(repo)
        with self._lease(repo) as lease:
            # Its git config read again under the lease, just before git runs there.
            untrusted = self._untrusted(repo, wt, remote=e["remote"])
            if untrusted:
                return untrusted
            if step.state:
                # Resumed: this step began before. Did it land? (never twice)
                now = g.remote_sha(wt, remote, base, hooks=hooks)
                if self._is_landed(e, now, started=True):
                    self._step(m, lease, repo, StepRecord.new(state=Step.landed, landed=now),
                               self._said_landed(m, repo, now))
                    return None
                if now != e["base_sha"]:
                    return self._moved(e, now)
            self._step(m, lease, repo, StepRecord.new(state=Step.landing))
            self.fault("before-land", repo)
            if m["land"] == "command":
                why = self._command(m, e)
                now = g.remote_sha(wt, remote, base, hooks=hooks)
            else:
                # --force-with-lease: refused unless the remote is still at the base
                why = g.push(wt, remote, e["candidate"], base, e["base_sha"], hooks=hooks)
                now = (e["candidate"] if why is None
                       else g.remote_sha(wt, remote, base, hooks=hooks))
            self.fault("after-land", repo)
            if not self._is_landed(e, now, started=True):
                if m["land"] == "command":
                    return f"{repo}: " + (why or f"the land command left {remote}/{base} at "
                                          f"{str(now)[:12]}, not the candidate")
                if now != e["base_sha"]:
                    return self._moved(e, now)
                return f"{repo}: " + (why or f"{remote}/{base} is still at its base")
            self._step(m, lease, repo, StepRecord.new(state=Step.landed, landed=now),
                       self._said_landed(m, repo, now))
            return None

    def _said_landed(self, m: Manifest, repo: str, sha: str | None) -> Said:
        """A repo's ``repo.landed``, written with the step that says it landed."""
        return self.rt.events.prepare(EventKind.repo_landed, plan=m["plan"], repo=repo, sha=sha)

    def _still_landed(self, e: ManifestRepo, step: StepRecord) -> bool:
        """Does the remote say ``e``'s repo is landed, as its step (a plain record: a
        writer may have written it) says? Its landed SHA must be this manifest's
        candidate (or its land command's commit of it) and the remote must have it (at
        its base, or under what came after). No: the step is taken up again by
        :meth:`_land_one`, which asks the remote itself."""
        landed = step.landed
        if not landed or not self._is_landed(e, landed, started=True):
            return False
        wt, hooks = e["worktree"], self._hooks(e["repo"])
        now = g.remote_sha(wt, e["remote"], e["base"], hooks=hooks)
        if now == landed or now is None:
            return now == landed
        if not g.has(wt, now):
            try:
                g.fetch(wt, e["remote"], e["base"], hooks=hooks)
            except g.GitError:
                return False
        return g.is_ancestor(wt, landed, now)

    @staticmethod
    def _moved(e: ManifestRepo, now: str | None) -> str:
        return (f"{e['repo']}: {e['remote']}/{e['base']} moved from {e['base_sha'][:12]} to "
                f"{(now or 'nothing')[:12]} since the landing was prepared (push refused)")

    def _is_landed(self, e: ManifestRepo, now: str | None, *, started: bool) -> bool:
        """Is the remote's base the candidate (or, once its step started, a commit
        with the candidate's tree over the base: a land command's squash)?"""
        if now is None or now == e["base_sha"]:
            return False
        if now == e["candidate"]:
            return True
        if not started or self.land_mode != "command":
            # A push lands the candidate's own SHA; only a land command may land it as
            # another commit (a squash merge), recognised by its tree over the base.
            return False
        wt = e["worktree"]
        if not g.has(wt, now):
            try:
                g.fetch(wt, e["remote"], e["base"], hooks=self._hooks(e["repo"]))
            except g.GitError:
                return False
        return (g.tree(wt, now) == g.tree(wt, e["candidate"])
                and g.is_ancestor(wt, e["base_sha"], now))

    def _command(self, m: Manifest, e: ManifestRepo) -> str | None:
        """Run the repo's land command in its worktree; None when it exited 0."""
        assert e["land_command"]
        return run_change_command("land command", e["land_command"], m, e)

    def _undo(self, m: Manifest, reason: str) -> Landed:
        plan = m["plan"]
        order = [e["repo"] for e in m["repos"]]
        reverted, left = self._revert_all(m, m["repos"], reason)
        why = f"{reason}; revert failed, left landed: {', '.join(left)}" if left else reason
        state = CS.revert_failed if left else CS.reverted
        self.store.end_landing(plan, state, why, self.rt.events.prepare(
            EventKind.change_reverted, plan=plan, reason=why, state=state, left_landed=left))
        return Landed(plan, state, why, left, reverted, left, order)

    def _revert_all(self, m: Manifest, entries: list[ManifestRepo],
                    reason: str) -> tuple[list[str], list[str]]:
        """Put back the repos of ``entries`` this landing landed, in reverse order:
        ``(reverted, left landed)``, each in landing order."""
        st = self.store.read(m["plan"])
        reverted: list[str] = []
        left: list[str] = []
        for e in reversed(entries):
            step = st.step(e["repo"])
            state = step.state
            if state == Step.reverted:
                reverted.append(e["repo"])
                continue
            if state not in (Step.landed, Step.reverting, Step.revert_failed, Step.landing):
                continue
            done = self._revert_one(m, e, step, reason)
            if done is False:
                left.append(e["repo"])
            elif done is True:
                reverted.append(e["repo"])
        reverted.reverse()
        left.reverse()
        return reverted, left

    def _revert_one(self, m: Manifest, e: ManifestRepo, step: StepRecord,
                    reason: str) -> bool | None:
        """Put one landed repo back (True), or say it is left landed (False); None: it
        never landed (its step started and the push was refused)."""
        repo, wt, remote, base = e["repo"], e["worktree"], e["remote"], e["base"]
        hooks = self._hooks(repo)
        with self._lease(repo) as lease:
            untrusted = self._untrusted(repo, wt, remote=e["remote"])
            if untrusted:  # no git runs there: it stays as it is, said
                self._step(m, lease, repo, step.but(state=Step.revert_failed, why=untrusted))
                return False
            now = g.remote_sha(wt, remote, base, hooks=hooks)
            landed = step.landed
            if step.state == Step.landing and not landed:
                # Killed mid-step: did it land? (else there is nothing to revert)
                if not self._is_landed(e, now, started=True):
                    self._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=reason))
                    return None
                landed = now
            assert landed is not None
            if now == e["base_sha"]:
                # nothing of this landing is on the remote, whatever its step (a plain
                # record) says: nothing to revert
                self._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=reason))
                return None
            if not self._is_landed(e, landed, started=True):
                # its step names a commit this landing never landed (a plain record a
                # writer may have written): nothing of it is reverted, said
                self._step(m, lease, repo, step.but(
                    state=Step.revert_failed, why=f"its step names {landed[:12]}, which "
                    f"this landing did not land: not reverted"))
                return False
            revert = step.revert or self._revert_commit(m, e, landed, self._identity(e))
            if now == revert:  # pushed by an undo killed before its step: said now
                self._step(m, lease, repo, StepRecord.new(state=Step.reverted, landed=landed,
                                                          revert=revert),
                           self._said_reverted(m, repo, revert, reason))
                return True
            if now != landed:
                self._step(m, lease, repo, StepRecord.new(
                    state=Step.revert_failed, landed=landed, revert=revert,
                    why=f"{remote}/{base} moved on to {str(now)[:12]}"))
                return False
            self._step(m, lease, repo, StepRecord.new(state=Step.reverting, landed=landed,
                                                      revert=revert))
            self.fault("before-revert", repo)
            why = g.push(wt, remote, revert, base, landed, hooks=hooks)
            self.fault("after-revert", repo)
            if why and g.remote_sha(wt, remote, base, hooks=hooks) != revert:
                self._step(m, lease, repo, StepRecord.new(state=Step.revert_failed, landed=landed,
                                                          revert=revert, why=why))
                return False
            self._step(m, lease, repo, StepRecord.new(state=Step.reverted, landed=landed,
                                                      revert=revert),
                       self._said_reverted(m, repo, revert, reason))
            return True

    def _said_reverted(self, m: Manifest, repo: str, sha: str | None, reason: str) -> Said:
        """A repo's ``repo.reverted``, written with the step that says it was put back."""
        return self.rt.events.prepare(EventKind.repo_reverted, plan=m["plan"], repo=repo,
                                      sha=sha, reason=reason)

    def _revert_commit(self, m: Manifest, e: ManifestRepo, landed: str,
                       ident: dict[str, str], why: str = "the cross-repo landing stopped") -> str:
        """The revert of ``landed``: the base's tree over it, by ``ident`` (the lander:
        :meth:`_identity`), with the ``Coord-Change`` trailer. Same identity, date and
        message every time, so the same SHA: a resumed undo recognises its own push
        (and the SHA is recorded in the step before it is pushed)."""
        return commit_tree(m, e["worktree"], f"{e['base_sha']}^{{tree}}", landed, ident,
                           f"Revert {m['branch']} ({m['plan']}): {why}\n\n"
                           f"Puts {e['base']} back to {e['base_sha']}.")

    def _identity(self, e: ManifestRepo) -> dict[str, str]:
        """Who this repo's revert and merge commits are by: the lander, as git has them
        in the worktree (said once on stderr when git has none and coord's is used)."""
        ident, why = g.identity(e["worktree"])
        if why and why not in self.notes:
            self.notes.append(why)
            log.warning("%s", why)
        return ident

    def _hooks(self, repo: str) -> bool:
        """Does git run hooks on coord's pushes and merges of ``repo``, and obey its own
        git config's programs? (``land_hooks``)"""
        t = self.cp.targets.get(repo)
        return bool(t is not None and t.land_hooks)

    def _untrusted(self, repo: str, *dirs: str, remote: str | None = None) -> str | None:
        """Why coord runs no git in ``repo``'s ``dirs`` (checkout, worktree): their own
        git config makes git run a program (a todo can write it); None: it does not,
        or the repo trusts it (``land_hooks: true``); or its remote there is not the
        URL the catalog names (:func:`g.remote_refusal`, trusted or not; ``remote``: the
        one this call fetches from or pushes to, default the catalog's)."""
        t = self.cp.targets.get(repo)
        checkout = t.checkout if t is not None else dirs[0]
        return g.untrusted_git(repo, checkout, *[d for d in dirs if d and os.path.isdir(d)],
                               remote=remote or (t.remote if t is not None else None),
                               url=t.url if t is not None else None,
                               trusted=self._hooks(repo))

    # -- leases ------------------------------------------------------------------
    def _lease(self, repo: str) -> _Held:
        deadline = time.monotonic() + self.lease_wait
        while True:
            lease = self.store.take_lease(repo, self.concurrency.get(repo, 1))
            if lease is not None:
                return _Held(self.rt, lease)
            if time.monotonic() > deadline:
                raise OperationFailed(f"{repo}: its lease stayed taken for {self.lease_wait:g}s "
                                      "(a todo of it running?)",
                                      hint="run coord change land again: it carries on")
            time.sleep(0.05)

    def _step(self, m: Manifest, lease: Lease, repo: str, rec: StepRecord,
              said: Said | None = None) -> None:
        """Record a repo's step, with ``said`` (its event) in the same write."""
        if not self.store.step(m["plan"], lease, repo, rec, said):
            raise OperationFailed(f"{repo}: lost its lease mid-landing (another landing took "
                                  "over); nothing more is written by this one")


class _Held:
    """A landing step's repo lease, renewed while held, released after."""

    def __init__(self, rt: Runtime, lease: Lease) -> None:
        self.rt, self.lease = rt, lease
        self.hb = Heartbeat(rt.leases, lease, rt.settings.heartbeat_interval)

    def __enter__(self) -> Lease:
        self.hb.start()
        return self.lease

    def __exit__(self, *exc: object) -> None:
        # Released on any way out (a crash simulated in-process too, as its TTL would:
        # what a real kill leaves is the TTL's to end, see the SIGKILL test).
        self.hb.stop()
        self.rt.leases.release(self.lease)


def commit_tree(m: Manifest, repo: str, tree: str, parent: str, ident: dict[str, str],
                message: str) -> str:
    """A commit of ``tree`` over ``parent`` by ``ident`` dated the manifest's
    ``created`` (author and committer) with the ``Coord-Change`` trailer: the same
    inputs, the same SHA, however often it is made."""
    when = f"{m['created']} +0000"
    env = dict(ident, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    return g.git(repo, "commit-tree", tree, "-p", parent, "-m", g.trailer(message, m["plan"]),
                 env=env)


@contextmanager
def beating(rt: Runtime, plan: str) -> Iterator[None]:
    """The lander's lease renewed every heartbeat interval while inside: a landing or
    revert on another host whose lease expired is ``interrupted`` too."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(rt.settings.heartbeat_interval):
            try:
                rt.changes.beat_lander(plan)
            except RedisError:
                pass  # the next beat, or the lease expires: said, never guessed

    t = threading.Thread(target=beat, name=f"lander:{plan}", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join(5)


def lander(op: str) -> LanderRecord:
    """This process as the one landing (``op`` land) or reverting a change now."""
    return LanderRecord.of({**this_process(), "op": op, "at": time.time()})


def _policy(rt: Runtime) -> Policy:
    s = rt.settings
    return Policy(tuple(s.signing_keys), s.accept_unsigned, s.require_signed)
