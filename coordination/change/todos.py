"""A worker's side of a change's todo: where it runs, what it sees, what it leaves.

:func:`enter` before the command: the repo's worktree of the change branch
(created from the base on first use), and for a ``verify:`` todo every repo's
candidate worktree and SHA in its env, and the candidates imported together
(:mod:`coordination.change.candidates`). :func:`leave` after it: a ``commit:``
todo's commit, the repo's candidate recorded, and a verify todo's end (success
or failure) recorded, sealed, against the candidate set it was given: every
repo's SHA (a set that moves since is no longer verified by it; see the landing
rule, :mod:`coordination.change.rule`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coordination.change import git as g
from coordination.change import worktrees
from coordination.change.candidates import GENERATED, candidate_env
from coordination.change.model import TodoChange, env_name
from coordination.runtime.changes import ChangeStore, RepoRecord


@dataclass
class Entered:
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    #: repo -> candidate SHA the todo was given (a verify todo: every repo's)
    shas: dict[str, str] = field(default_factory=dict)
    #: the repo's ``prepare:`` command, when its worktree was not prepared yet (the
    #: worker runs it before the todo: :func:`prepared` after)
    prepare: str | None = None


def _marker(wt: str) -> Path:
    """The file saying which ``prepare:`` command prepared worktree ``wt`` (beside the
    worktrees, never in one: a todo's ``git add -A`` would commit it)."""
    return Path(wt).parent / GENERATED / "prepared" / Path(wt).name


def _to_prepare(tc: TodoChange, repo: str, wt: str) -> str | None:
    """The repo's prepare command, unless it prepared ``wt`` already."""
    cmd = (tc.get("prepare") or {}).get(repo)
    if not cmd:
        return None
    try:
        return None if _marker(wt).read_text() == cmd else cmd
    except OSError:
        return cmd


def prepared(store: ChangeStore, tc: TodoChange, repo: str, entered: Entered, *, ok: bool,
             exit_code: int | None, output: str) -> str | None:
    """After the repo's prepare command ran in its worktree: recorded (``change status``
    shows it; a failure is a blocker), and on success the worktree marked prepared.
    Why the todo cannot run (the prepare failed), or None."""
    assert entered.prepare is not None
    store.set_prepare(tc["plan"], repo, command=entered.prepare, ok=ok, exit_code=exit_code,
                      output=output[-4000:], worktree=entered.cwd)
    if ok:
        marker = _marker(entered.cwd)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(entered.prepare)
        return None
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return (f"prepare of {repo} failed" + (f" (exit {exit_code})" if exit_code is not None
                                            else "") + (f": {lines[-1][:300]}" if lines else ""))


def _worktree(store: ChangeStore, tc: TodoChange, repo: str, checkout: str,
              known: RepoRecord | None) -> tuple[str, str]:
    """The repo's worktree (made if need be) and its candidate; recorded when new
    (``known``: its record)."""
    _, base, remote = tc["repos"][repo]
    wt = worktrees.ensure(checkout, tc["branch"], base, remote, repo=repo,
                          url=tc.get("urls", {}).get(repo))
    if wt.created:  # a new worktree: prepared by nothing yet
        _marker(wt.path).unlink(missing_ok=True)
    sha = g.head(wt.path)
    if wt.created or known is None or known.candidate != sha or known.worktree != wt.path:
        base_sha = wt.base_sha if wt.created or known is None else known.base_sha
        store.set_repo(tc["plan"], repo, RepoRecord(base, remote, base_sha, sha, wt.path))
    return wt.path, sha


def _recorded(store: ChangeStore, tc: TodoChange, repo: str, checkout: str,
              known: RepoRecord | None) -> tuple[str, str] | None:
    """Another repo's worktree and candidate for a verify todo from its record and git's
    files, without a git process: when the record is this change's (base, remote) and
    names the worktree of ``checkout`` for the branch, and it is there. None: ask git
    (:func:`_worktree`). A verify todo is given every repo's: a git process or three
    each would make its set-up grow with the fleet past the lease's TTL."""
    if known is None or not known.worktree:
        return None
    _, base, remote = tc["repos"][repo]
    where = worktrees.plain_path_of(checkout, tc["branch"])
    if (known.base, known.remote) != (base, remote) or where is None \
            or not (where / ".git").is_file() or Path(known.worktree).resolve() != where.resolve():
        return None
    sha = g.read_head(where)
    if sha != known.candidate:  # committed in by hand since: the candidate now
        store.set_repo(tc["plan"], repo, RepoRecord(known.base, known.remote, known.base_sha,
                                                    sha, known.worktree))
    return known.worktree, sha


def enter(store: ChangeStore, tc: TodoChange, repo: str, checkout: str) -> Entered:
    """Set a change's todo up to run in ``repo`` (its checkout on this worker: ``checkout``)."""
    known = store.repos(tc["plan"], list(tc["repos"]) if tc["verify"] else [repo])
    path, sha = _worktree(store, tc, repo, checkout, known.get(repo))
    out = Entered(cwd=path, env={"COORD_CHANGE_PLAN": tc["plan"],
                                 "COORD_CHANGE_BRANCH": tc["branch"]}, shas={repo: sha},
                  prepare=_to_prepare(tc, repo, path))
    if tc["verify"]:
        paths: dict[str, str] = {}  # repo -> its candidate's worktree (COORD_CANDIDATES)
        for other, (other_checkout, _base, _remote) in tc["repos"].items():
            p = path
            if other != repo:
                p, out.shas[other] = (
                    _recorded(store, tc, other, other_checkout, known.get(other))
                    or _worktree(store, tc, other, other_checkout, known.get(other)))
            out.env[f"COORD_CANDIDATE_{env_name(other)}_PATH"] = p
            out.env[f"COORD_CANDIDATE_{env_name(other)}_SHA"] = out.shas[other]
            paths[other] = p
        out.env.update(candidate_env(repo, paths))
    return out


def leave(store: ChangeStore, tc: TodoChange, repo: str, todo_id: str, entered: Entered,
          ok: bool, *, exit_code: int | None = None, reason: str | None = None,
          sweep: str | None = None, run: int | None = None,
          last: str | None = None, record: bool = True) -> str | None:
    """After the command: commit (``commit:``, on success), record the candidate, and
    how a ``verify:`` todo ended on the set it ran on (a success or a failure: a
    failure vetoes that set; ``exit_code``, ``reason``, ``sweep``, ``run`` and a
    failure's ``last`` line of output go into the record; ``record`` False: none, for an
    undo). Returns the new candidate."""
    if ok and tc["commit"]:
        worktrees.commit_all(entered.cwd, tc["commit"])
    sha = g.head(entered.cwd)
    known = store.repos(tc["plan"], [repo]).get(repo)
    if known is not None and known.candidate != sha:
        store.set_repo(tc["plan"], repo, RepoRecord(known.base, known.remote, known.base_sha,
                                                    sha, known.worktree))
    if tc["verify"] and record:
        store.record_verify(tc["plan"], todo_id, repo, entered.shas, ok=ok,
                            exit_code=exit_code,
                            reason=None if ok else reason, sweep=sweep, run=run,
                            last=None if ok else last)
    return sha
