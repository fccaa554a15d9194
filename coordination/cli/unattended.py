"""Repos of a sweep that no live worker serves: a warning before the sweep starts, or,
with ``--require-workers``, a refusal before anything is enqueued (`coord plan sweep`,
`coord todo run`, `coord run`)."""

from __future__ import annotations

import shlex

from coordination.cli.render import err_console, esc
from coordination.errors import UsageError

#: Repos a warning or refusal names before it counts the rest.
NAMED_MISSING = 10


def warn_unattended(missing: list[str], *, require: bool) -> None:
    """Name the repos of the sweep that no live worker serves (the first ten, then a
    count: a fleet's sweep can miss thousands): a warning, or with --require-workers a
    refusal before anything is enqueued."""
    if not missing:
        return
    named = ", ".join(missing[:NAMED_MISSING])
    if len(missing) > NAMED_MISSING:
        named += f" and {len(missing) - NAMED_MISSING} more"
    if len(missing) <= 3:
        starts = "; ".join(f"coord worker --repo {shlex.quote(r)}" for r in missing)
    else:  # one worker serves several repos: one command, not thousands
        starts = ("coord worker " + " ".join(f"--repo {shlex.quote(r)}" for r in missing[:3])
                  + " ..., one worker per machine for the repos checked out there")
    if require:
        raise UsageError(f"no live worker for repo(s) {named}",
                         hint=f"start them ({starts}), or drop --require-workers to queue anyway")
    err_console().print(f"[yellow]warning:[/yellow] no live worker for repo(s) "
                        f"{esc(named)}: their todos wait in the queue until one starts "
                        f"({esc(starts)})")
