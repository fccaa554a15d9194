"""A change's todo on a worker: the two calls the runner makes around its command.

Kept apart from :mod:`workers.runner` so that running a todo stays one readable
loop: :meth:`ChangeTurn.of` before (the worktree as cwd, the candidates' env, a new
worktree's ``prepare:`` run),
:meth:`ChangeTurn.leave` after (commit, candidate, verification). A git failure
in either fails the todo with git's message; it never escapes into the worker.
"""

from __future__ import annotations

import logging
import os
import time
from typing import cast

from redis import RedisError

from coordination.change.candidates import over
from coordination.change.model import TodoChange
from coordination.change.todos import Entered, enter, leave, prepared
from coordination.errors import CoordError
from coordination.runtime.changes import ChangeStore
from coordination.runtime.context import Runtime
from coordination.runtime.leases import Heartbeat

log = logging.getLogger("coord.change")

#: Seconds a repo's ``prepare:`` command may run in a new worktree.
PREPARE_TIMEOUT = 3600.0


class ChangeTurn:
    def __init__(self, store: ChangeStore, tc: TodoChange, repo: str,
                 entered: Entered | None, error: str | None, checkout: str) -> None:
        self.store, self.tc, self.repo = store, tc, repo
        self.entered, self.error = entered, error
        self.cwd = entered.cwd if entered else checkout
        self.env = entered.env if entered else {}

    def env_over(self, env: dict[str, str]) -> dict[str, str]:
        """What the change adds to a todo's ``env``: the candidates' ``PYTHONPATH``
        ahead of the todo's own (:func:`coordination.change.candidates.over`)."""
        return over(env, self.env)

    @classmethod
    def of(cls, rt: Runtime, change: dict[str, object] | None, repo: str, checkout: str,
           hb: Heartbeat) -> ChangeTurn | None:
        """None for a todo of no change. ``hb``: the todo's lease renewal, not started
        yet; a first worktree is made here (a fetch), so the lease is renewed once after
        it (a set-up longer than the lease's TTL finds the lease gone: the todo is lost
        and runs again, in the worktree made meanwhile)."""
        if not change:
            return None
        tc = cast(TodoChange, change)
        store = rt.changes
        try:
            turn = cls(store, tc, repo, enter(store, tc, repo, checkout), None, checkout)
        except (CoordError, OSError) as exc:
            turn = cls(store, tc, repo, None, f"change worktree of {repo}: {exc}", checkout)
        if turn.entered is not None and turn.entered.prepare:
            turn.error = turn._prepare(rt, hb)
        hb.renew_now()
        return turn

    def _prepare(self, rt: Runtime, hb: Heartbeat) -> str | None:
        """Run the repo's ``prepare:`` in its new worktree (the todo's lease renewed
        meanwhile: a build may outlast its TTL); why the todo cannot run, or None."""
        from workers.execute import run_command  # lazy: only a worktree to prepare

        entered = self.entered
        assert entered is not None and entered.prepare is not None
        last = [time.monotonic()]

        def renew() -> str | None:
            if time.monotonic() - last[0] >= rt.settings.heartbeat_interval:
                last[0] = time.monotonic()
                try:
                    if hb.leases.extend(hb.lease):
                        hb.last_ok = last[0]
                except RedisError:
                    pass
            return None

        env = over(os.environ, entered.env, {})
        res = run_command(entered.prepare, cwd=entered.cwd, env=env,
                          timeout=PREPARE_TIMEOUT, tail_bytes=rt.settings.output_tail_bytes,
                          should_stop=renew)
        output = (res.stdout_tail + res.stderr_tail) or (res.reason or "")
        ok = res.outcome == "exited" and res.exit_code == 0
        try:
            return prepared(self.store, self.tc, self.repo, entered, ok=ok,
                            exit_code=res.exit_code, output=output)
        except (CoordError, OSError, RedisError) as exc:
            return f"prepare of {self.repo}: {exc}"

    def leave(self, todo_id: str, ok: bool, reason: str | None, *,
              exit_code: int | None = None, sweep: str | None = None,
              run: int | None = None, output: str | None = None,
              undo: bool = False) -> tuple[bool, str | None]:
        """After the command ran (ok: it succeeded): the todo's outcome and reason. A
        verify todo's end is recorded (sealed) with ``exit_code``, ``sweep`` and ``run``,
        a failure as well as a success (a failure with its output's last line); not
        its ``undo`` (a rollback's run: its exit says nothing of the candidates)."""
        if self.entered is None:
            return False, reason
        last = None
        if not ok and output:
            from coordination.sweeps.reading import last_lines  # lazy: a failure's only

            lines = [ln for _, part in last_lines(output, 1) for ln in part]
            last = lines[-1].strip()[:300] if lines else None
        try:
            leave(self.store, self.tc, self.repo, todo_id, self.entered, ok,
                  exit_code=exit_code, reason=reason, sweep=sweep, run=run, last=last,
                  record=not undo)
        except (CoordError, OSError) as exc:
            log.warning("change %s: %s", self.tc["plan"], exc)
            return False, f"change commit in {self.repo}: {exc}"
        return ok, reason
