"""A push's todo on a worker: the pushed repo's todos of a sweep a push started run on
the pushed commit, not on the checkout as it is.

:meth:`PushTurn.of` before the command: a worktree of the repo's checkout at the pushed
SHA (fetched from the repo's remote when the checkout lacks it), in a private directory
of its own (:func:`coordination.change.worktrees.at_commit`, through coord's safe git:
no hook, no config of the repository's that names a program), the command's cwd, with
``COORD_PUSH_SHA`` in its environment. :meth:`PushTurn.leave` after it, whatever
happened: the worktree removed. A commit that cannot be had fails the todo with the
reason (:attr:`PushTurn.error`); the command does not run. The sweep's other repos'
todos, and a change's todos (in their change's worktree), run where they always do.

The remote and its URL are this worker's catalog's (the file it was started with:
``Runtime.own_catalog``), never the spec's: the spec's ``remote`` and ``url`` (which a
keyless Redis writer can rewrite) must be the catalog's, or the todo fails naming them,
nothing fetched (:mod:`coordination.sweeps.starts.push_source` says why refused, not
fetched from the catalog's remote). A repo no longer in the catalog: the same.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from coordination.change import worktrees
from coordination.errors import CoordError
from coordination.sweeps.spec import PushSpec, SweepSpec, TodoSpec
from coordination.sweeps.starts.push_source import FETCH_FIELDS, differences, own_source
from coordination.trust.secrets import hold_names

log = logging.getLogger("coord.push")

#: A commit's name as a push trigger gives it (abbreviated or whole).
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


class PushTurn:
    def __init__(self, checkout: str, wt: worktrees.Detached | None,
                 error: str | None) -> None:
        self.checkout, self.wt, self.error = checkout, wt, error

    @property
    def cwd(self) -> str:
        return self.wt.path if self.wt is not None else self.checkout

    @property
    def env(self) -> dict[str, str]:
        """What the todo's environment gets: the commit it runs on."""
        return {"COORD_PUSH_SHA": self.wt.sha} if self.wt is not None else {}

    @classmethod
    def of(cls, spec: SweepSpec, todo: TodoSpec, checkout: str,
           catalog: Path | None) -> PushTurn | None:
        """None for a todo that runs on its checkout as it is (no push, another repo's
        todo, a change's todo). ``catalog``: this worker's own catalog file, where the
        repo's remote is read from."""
        push: PushSpec | None = spec.push
        if not push or todo.repo != push.get("repo") or todo.change:
            return None
        src = own_source(catalog, todo.repo)
        if isinstance(src, str):
            return cls.refused(checkout, f"the pushed commit of {todo.repo} is not fetched: "
                               f"{src} (where a repo is fetched from is taken from it, never "
                               "from the sweep's spec)")
        # (the forge's token and App key, by the names this worker's catalog gives: never
        # in the todo's environment)
        forge = src.forge or {}
        secret = [str(forge.get(f) or "") for f in ("token_env", "app_key_env")]
        hold_names(secret, secret[:1])
        differ = differences(push, src, FETCH_FIELDS)
        if differ:
            return cls.refused(checkout, f"the pushed commit of {todo.repo} is not fetched: "
                               "the sweep's spec says another remote than this worker's "
                               f"catalog {catalog} (" + "; ".join(differ) + "): a repo is "
                               "fetched only from where the catalog says it is, never from a "
                               "spec that may have been changed in Redis")
        sha = str(push.get("sha") or "")
        if not SHA.match(sha):
            return cls(checkout, None, f"the push's commit {sha!r} is not a commit's SHA")
        try:
            wt = worktrees.at_commit(checkout, sha, str(push.get("branch") or "main"),
                                     src.remote, repo=todo.repo, url=src.url)
        except (CoordError, OSError) as exc:
            return cls(checkout, None, f"the pushed commit {sha} of {todo.repo}: {exc}")
        return cls(checkout, wt, None)

    @classmethod
    def refused(cls, checkout: str, why: str) -> PushTurn:
        """Nothing fetched, the todo to fail with ``why`` (said in the worker's log too)."""
        log.warning("%s", why)
        return cls(checkout, None, why)

    def leave(self) -> None:
        """The worktree removed (a removal that failed is logged: the worktree is in a
        private directory, and git lists it as prunable)."""
        if self.wt is None:
            return
        why = worktrees.remove_detached(self.checkout, self.wt)
        if why:
            log.warning("%s", why)
        self.wt = None
