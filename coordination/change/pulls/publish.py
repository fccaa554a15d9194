"""``coord change publish``: each repo's change branch pushed, and its pull request opened
or brought up to date, on the repo's forge.

Per repo with a commit on the branch, providers first:

1. its candidate (the worktree's HEAD) is pushed to the change branch on its remote
   (:func:`push_branch`: ``refs/heads/<branch>`` only, never the base; with a lease on
   what coord pushed last, so a commit someone else pushed there is never overwritten);
2. its pull request is the one recorded for the change, else the open one of the same
   branch and base (a publish that died half-way, or Redis lost), else a new one
   (``--draft``: a draft); one closed or merged by hand is reported, never reopened;
3. once every repo has one, each body names the change and its verify evidence, links
   its siblings and carries a ``Depends-On:`` line per provider
   (:mod:`coordination.change.pulls.pull_body`); each is labelled ``coord:PLAN``;
4. ``coord/verify`` is posted on its head: success when every verify todo passed on
   the current candidates, failure when one failed on them, pending before (branch
   protection may require it); linking the change's page when ``COORD_UI_URL`` says
   where the web view is.

Running it again changes only what differs: one pull request per repo, ever. What it
opened is recorded in the change (``pr:<R>``, :class:`PullRecord`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordination.change import git as g
from coordination.change.pulls import pull_body
from coordination.change.pulls.forges import ChangeForges, label
from coordination.change.landing_evidence import current_candidates
from coordination.change.model import ChangePlan, Target
from coordination.change.rule import judge
from coordination.errors import ForgeAuthError, ForgeError, ForgeNotFound, UsageError
from coordination.forge.base import CommitStatus, NewPullRequest, PullRequest, StatusState
from coordination.runtime.change_records import PullRecord
from coordination.runtime.changes import ChangeState
from coordination.runtime.context import Runtime
from coordination.status import StepState as Step


@dataclass
class PublishedRepo:
    """What publishing did to one repo (or, ``--dry-run``, would do)."""

    repo: str
    #: opened | updated | up_to_date | unchanged (no commit: no pull request) | landed
    #: (merged by the change's landing) | refused;
    #: --dry-run: would_open | would_update
    action: str
    number: int | None = None
    url: str | None = None
    head: str | None = None
    pushed: bool = False
    #: the coord/verify status on its head (success, failure, pending)
    status: str | None = None
    why: str | None = None

    def document(self) -> dict[str, Any]:
        return {"repo": self.repo, "action": self.action, "number": self.number,
                "url": self.url, "head": self.head, "pushed": self.pushed,
                "status": self.status, "why": self.why}


@dataclass
class Published:
    plan: str
    dry_run: bool
    verification: str
    repos: list[PublishedRepo] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.action == "refused" for r in self.repos)

    def document(self) -> dict[str, Any]:
        return {"plan": self.plan, "dry_run": self.dry_run, "ok": self.ok,
                "verification": self.verification,
                "repos": [r.document() for r in self.repos]}


def push_branch(t: Target, wt: str, branch: str, sha: str, expect: str | None) -> str | None:
    """Push ``sha`` to ``branch`` on ``t``'s remote only if it is still ``expect`` there
    (None: only if it is not there); None when pushed, else git's refusal. Never the
    base: a change branch named as the repo's base is refused before git runs."""
    if branch == t.base:
        raise UsageError(f"{t.repo}: the change branch {branch!r} is its base: coord pushes "
                         "only a change branch, never the branch it lands on",
                         hint="name another branch in the plan's change: {branch: ...}")
    return g.push(wt, t.remote, sha, branch, expect or "", hooks=t.land_hooks)


class Publisher:
    """Publishes one change (see the module); ``ui_url``: the web view's address, for
    the ``coord/verify`` status's link (default ``COORD_UI_URL``)."""

    def __init__(self, rt: Runtime, cp: ChangePlan, forges: ChangeForges, *,
                 draft: bool | None = None, ui_url: str | None = None) -> None:
        self.rt, self.cp, self.forges = rt, cp, forges
        self.draft = cp.draft if draft is None else draft
        self.ui_url = ui_url if ui_url is not None else os.environ.get("COORD_UI_URL")

    def publish(self, *, dry_run: bool = False,
                adopt: Mapping[str, int] | None = None) -> Published:
        cp = self.cp
        self.forges.require()
        for t in cp.targets.values():
            if t.base == cp.branch:
                raise UsageError(f"{t.repo}: the change branch {cp.branch!r} is its base: "
                                 "coord pushes only a change branch, never the branch it "
                                 "lands on", hint="name another branch in the plan's change:")
        adopted = self._adopted(adopt or {})
        st = self.rt.changes.read(cp.plan)
        now = current_candidates(cp, st)
        j = judge(self.rt, cp, st, now, remotes=False)
        verdicts = {t: v.verdict for t, v in j.verify.items()}
        evidence = pull_body.evidence_text(verdicts, now, "; ".join(
            v.why or "" for v in j.verify.values() if v.verdict in ("failed", "refused")))
        state = (StatusState.success if j.verified and not j.vetoed and not j.dropped
                 else StatusState.failure if j.vetoed else StatusState.pending)
        out = Published(cp.plan, dry_run, state.value)
        prs: dict[str, PullRequest] = {}
        for repo in cp.targets:
            done = self._branch_and_pull(st, repo, now.get(repo), adopted.get(repo), dry_run)
            out.repos.append(done[0])
            if done[1] is not None:
                prs[repo] = done[1]
        siblings = {r: pull_body.Sibling(r, prs[r].number if r in prs else None,
                                         prs[r].url if r in prs else None, now.get(r))
                    for r in cp.targets if r in prs or _changed(st, r, now.get(r))}
        for res in out.repos:
            if res.repo in prs and res.action != "refused":
                self._body_label_status(st, res, prs[res.repo], siblings, evidence, state,
                                        dry_run)
        return out

    # -- one repo ----------------------------------------------------------------------
    def _branch_and_pull(self, st: ChangeState, repo: str, cand: str | None,
                         adopted: PullRequest | None, dry_run: bool
                         ) -> tuple[PublishedRepo, PullRequest | None]:
        cp, t = self.cp, self.cp.targets[repo]
        rec = st.repos.get(repo)
        if rec is None or cand is None:
            return PublishedRepo(repo, "refused", why="no candidate yet (run the plan: coord "
                                 f"plan sweep {cp.plan})"), None
        if cand == rec.base_sha:
            return PublishedRepo(repo, "unchanged", head=cand,
                                 why="no commit on the branch: nothing to merge"), None
        if st.step(repo).state in (Step.landed, Step.landing):  # merged by coord: nothing to do
            pull = st.pulls.get(repo)
            return PublishedRepo(repo, "landed", pull.number if pull else None,
                                 pull.url if pull else None, cand,
                                 why=f"its landing merged it ({st.step(repo).state})"), None
        untrusted = g.untrusted_git(repo, t.checkout, t.checkout, rec.worktree,
                                    remote=t.remote, url=t.url, trusted=t.land_hooks)
        if untrusted:
            return PublishedRepo(repo, "refused", head=cand, why=untrusted), None
        forge = self.forges.of(repo)
        pull = st.pulls.get(repo)
        try:
            pr = adopted or self._existing(repo, pull)
        except ForgeAuthError:
            raise  # no token, or refused: said naming its variable (exit 2), nothing pushed
        except ForgeError as exc:
            return PublishedRepo(repo, "refused", head=cand, why=f"{repo}: {exc.message}"), None
        if pr is not None and not pr.is_open:
            how = "merged" if pr.merged else "closed"
            return PublishedRepo(repo, "refused", pr.number, pr.url, cand, why=(
                f"pull request #{pr.number} was {how} by hand: coord does not reopen or "
                "replace it" + ("" if pr.merged else "; reopen it on the forge, then publish "
                                "again"))), None
        pushed, why = self._push(repo, rec.worktree, cand, pull, dry_run)
        if why:
            return PublishedRepo(repo, "refused", pr.number if pr else None,
                                 pr.url if pr else None, cand, why=why), None
        if dry_run:
            return PublishedRepo(repo, "would_update" if pr else "would_open",
                                 pr.number if pr else None, pr.url if pr else None, cand,
                                 pushed), pr
        action = "opened" if pr is None else ("updated" if pushed else "up_to_date")
        if pr is None:
            try:
                pr = forge.open_pr(NewPullRequest(
                    head=cp.branch, base=t.base, title=pull_body.title(cp),
                    body=pull_body.body(cp, repo, {}, "(being published)"),
                    draft=self.draft, labels=(label(cp.plan),)))
            except ForgeError as exc:
                return PublishedRepo(repo, "refused", head=cand, pushed=pushed,
                                     why=f"{repo}: opening its pull request: {exc.message}"), None
        by = "adopted" if adopted is not None else (pull.by if pull else "publish")
        self.rt.changes.set_pull(cp.plan, repo, PullRecord.new(
            kind=forge.kind, project=forge.project, number=pr.number, url=pr.url,
            branch=cp.branch, base=t.base, head=cand, by=by, at=time.time(),
            status_sha=pull.status_sha if pull else None, status=pull.status if pull else None))
        self.rt.changes.forget_forge_views(cp.plan, [repo])  # its head and body change
        return PublishedRepo(repo, action, pr.number, pr.url, cand, pushed), pr

    def _existing(self, repo: str, pull: PullRecord | None) -> PullRequest | None:
        """The repo's pull request: the recorded one, else an open one of the change's
        branch into its base (published before Redis knew it)."""
        forge, t = self.forges.of(repo), self.cp.targets[repo]
        if pull is not None and pull.project == forge.project:
            try:
                return forge.get_pr(pull.number)
            except ForgeNotFound:
                pass  # deleted on the forge (or another project's): look for one again
        return forge.find_pr(self.cp.branch, base=t.base)

    def _push(self, repo: str, wt: str, cand: str, pull: PullRecord | None,
              dry_run: bool) -> tuple[bool, str | None]:
        """The candidate on the change branch: (pushed, why not)."""
        t, branch = self.cp.targets[repo], self.cp.branch
        try:
            there = g.remote_sha(wt, t.remote, branch, hooks=t.land_hooks)
        except g.GitError as exc:
            return False, f"{repo}: reading {t.remote}/{branch}: {exc}"
        if there == cand:
            return False, None
        ours = pull.head if pull else None
        if there is not None and there != ours and not g.has(wt, there):
            g.fetch(wt, t.remote, branch, hooks=t.land_hooks)
        if there is not None and there != ours and not g.is_ancestor(wt, there, cand):
            return False, (f"{repo}: someone pushed {there[:12]} to {t.remote}/{branch}"
                           + (f" (coord pushed {ours[:12]})" if ours else "")
                           + ": coord does not overwrite it; merge it into the worktree "
                           f"(git -C {wt} pull {t.remote} {branch}), verify again, publish "
                           "again")
        if dry_run:
            return True, None
        why = push_branch(t, wt, branch, cand, there)
        if why:
            return False, f"{repo}: pushing {branch} to {t.remote} was refused: {why}"
        return True, None

    def _body_label_status(self, st: ChangeState, res: PublishedRepo, pr: PullRequest,
                           siblings: Mapping[str, pull_body.Sibling], evidence: str,
                           state: StatusState, dry_run: bool) -> None:
        """The pull request's title, body and label as they should be, and ``coord/verify``
        on its head: what differs is written (``--dry-run``: said)."""
        cp, repo = self.cp, res.repo
        forge = self.forges.of(repo)
        # A person's words around coord's section (a note for reviewers) stay.
        text = pull_body.kept_edits(pr.body, pull_body.body(cp, repo, siblings, evidence),
                                    cp.plan)
        want_title = pull_body.title(cp)
        lab = label(cp.plan)
        res.status = state.value
        if dry_run:
            return
        try:
            if pr.body != text or pr.title != want_title:
                forge.update_pr(pr.number, title=want_title, body=text)
                if res.action == "up_to_date":
                    res.action = "updated"
            if lab not in pr.labels:
                forge.add_labels(pr.number, [lab])
                res.action = "updated" if res.action == "up_to_date" else res.action
            pull = self.rt.changes.read(cp.plan).pulls.get(repo)
            head = res.head or pr.head_sha
            if pull is not None and (pull.status_sha, pull.status) != (head, state.value):
                res.action = "updated" if res.action == "up_to_date" else res.action
                forge.post_status(head, CommitStatus(
                    state=state, description=_describe(state),
                    target_url=(f"{self.ui_url.rstrip('/')}/changes/{cp.plan}"
                                if self.ui_url else None)))
                self.rt.changes.set_pull(cp.plan, repo, pull.but(status_sha=head,
                                                                 status=state.value))
        except ForgeError as exc:
            res.action, res.why = "refused", f"{repo}: {exc.message}"

    def _adopted(self, adopt: Mapping[str, int]) -> dict[str, PullRequest]:
        """The pull requests named with ``--pr REPO=N``, each checked to be the change's
        (its project, branch and base, open): a UsageError before anything changes."""
        out: dict[str, PullRequest] = {}
        for repo, number in adopt.items():
            t = self.cp.targets.get(repo)
            if t is None:
                raise UsageError(f"--pr {repo}={number}: {repo} is not a repo of "
                                 f"{self.cp.plan}", hint="repos: " + ", ".join(self.cp.targets))
            forge = self.forges.of(repo)
            try:
                pr = forge.get_pr(number)
            except ForgeNotFound:
                raise UsageError(f"--pr {repo}={number}: {forge.project} has no pull request "
                                 f"#{number}", hint="give the number its page shows") from None
            if pr.head_branch != self.cp.branch or pr.base_branch != t.base:
                raise UsageError(
                    f"--pr {repo}={number}: pull request #{number} of {forge.project} is not "
                    f"this change's: it is from {pr.head_branch!r} into {pr.base_branch!r}, "
                    f"the change's is from {self.cp.branch!r} into {t.base!r}",
                    hint="name the pull request of the change's branch, or leave --pr out "
                         "(publish finds or opens it)")
            if not pr.is_open:
                raise UsageError(f"--pr {repo}={number}: pull request #{number} is "
                                 f"{pr.state.value}", hint="reopen it on the forge first")
            out[repo] = pr
        return out


def _changed(st: ChangeState, repo: str, cand: str | None) -> bool:
    rec = st.repos.get(repo)
    return rec is not None and cand is not None and cand != rec.base_sha


def _describe(state: StatusState) -> str:
    return {StatusState.success: "every verify todo passed on this head (and its siblings')",
            StatusState.failure: "a verify todo failed on this head",
            StatusState.pending: "not verified on this head yet"}.get(state, "")
