"""A worker's side of a change's todo: where it runs, what it sees, what it leaves.

:func:`enter` before the command: the repo's worktree of the change branch
(created from the base on first use), and for a ``verify:`` todo every repo's
candidate worktree and SHA in its env. :func:`leave` after it: a ``commit:``
todo's commit, the repo's candidate recorded, and a verify todo that succeeded
recorded against the SHAs it was given (a candidate that moves since is no
longer verified by it: see :meth:`coordination.runtime.changes.ChangeState.verified_by`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coordination.change import git as g
from coordination.change import worktrees
from coordination.change.model import TodoChange, env_name
from coordination.runtime.changes import ChangeStore, RepoRecord


@dataclass
class Entered:
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    #: repo -> candidate SHA the todo was given (a verify todo: every repo's)
    shas: dict[str, str] = field(default_factory=dict)


def _worktree(store: ChangeStore, tc: TodoChange, repo: str, checkout: str) -> tuple[str, str]:
    """The repo's worktree (made if need be) and its candidate; recorded when new."""
    _, base, remote = tc["repos"][repo]
    wt = worktrees.ensure(checkout, tc["branch"], base, remote)
    sha = g.head(wt.path)
    known = store.read(tc["plan"]).repos.get(repo)
    if wt.created or known is None or known.candidate != sha or known.worktree != wt.path:
        base_sha = wt.base_sha if wt.created or known is None else known.base_sha
        store.set_repo(tc["plan"], repo, RepoRecord(base, remote, base_sha, sha, wt.path))
    return wt.path, sha


def enter(store: ChangeStore, tc: TodoChange, repo: str, checkout: str) -> Entered:
    """Set a change's todo up to run in ``repo`` (its checkout on this worker: ``checkout``)."""
    path, sha = _worktree(store, tc, repo, checkout)
    out = Entered(cwd=path, env={"COORD_CHANGE_PLAN": tc["plan"],
                                 "COORD_CHANGE_BRANCH": tc["branch"]}, shas={repo: sha})
    if tc["verify"]:
        for other, (other_checkout, _base, _remote) in tc["repos"].items():
            if other != repo:
                out.shas[other] = _worktree(store, tc, other, other_checkout)[1]
            p = path if other == repo else str(worktrees.path_of(other_checkout, tc["branch"]))
            out.env[f"COORD_CANDIDATE_{env_name(other)}_PATH"] = p
            out.env[f"COORD_CANDIDATE_{env_name(other)}_SHA"] = out.shas[other]
    return out


def leave(store: ChangeStore, tc: TodoChange, repo: str, todo_id: str, entered: Entered,
          ok: bool) -> str | None:
    """After the command: commit (``commit:``, on success), record the candidate, and
    the verification (``verify:``, on success). Returns the new candidate."""
    if ok and tc["commit"]:
        worktrees.commit_all(entered.cwd, tc["commit"])
    sha = g.head(entered.cwd)
    known = store.read(tc["plan"]).repos.get(repo)
    if known is not None and known.candidate != sha:
        store.set_repo(tc["plan"], repo, RepoRecord(known.base, known.remote, known.base_sha,
                                                    sha, known.worktree))
    if ok and tc["verify"]:
        store.record_verify(tc["plan"], todo_id, repo, entered.shas)
    return sha
