"""`coord logs TODO [--sweep ID] [--attempt N] [--follow]`: a todo's whole output, attempt
by attempt, as its worker kept it (:mod:`coordination.runtime.logs`, written by
:mod:`coordination.sweeps.runlogs.attempt_log`): the CLI, the web view and MCP read it here.

Without ``--sweep``, the newest sweep (of the last :data:`RECENT`) in which the todo ran
(following, a newer one in which it has not ended yet comes first); without
``--attempt``, its latest attempt. Following waits on the system: a blocking read
of the attempt's stream and of the sweep's events together (an attempt whose worker died
writes no end: the todo's checkpoint then says it is over), never a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypedDict

from coordination.errors import NotFoundError, UsageError
from coordination.runtime.context import Runtime
from coordination.runtime.logs import AttemptRecord, Chunk, LogStore
from coordination.status import TERMINAL, TodoStatus
from coordination.sweeps import person_scope
from coordination.sweeps.reading import record

#: Sweeps looked through (newest first) for a todo's latest logs without ``--sweep``.
RECENT = 500
#: Milliseconds one blocking read of a follow waits before it looks at the todo again.
BLOCK_MS = 1000


class LogLine(TypedDict):
    stream: str  # stdout | stderr | coord (a line of coord's own: where the cap cut it)
    text: str


class LogDocument(TypedDict):
    """`coord logs --json`: the todo's attempts (its history) and one attempt's output."""

    sweep_id: str
    todo_id: str
    attempts: list[AttemptRecord]
    attempt: int
    running: bool  # the attempt has not ended (or its worker died before it could say)
    output: list[LogLine]
    #: the last stream id read (``--follow`` and the web view go on from it)
    after: str


def find_sweep(rt: Runtime, todo_id: str, sweep_id: str | None, *,
               waiting: bool = False) -> str:
    """The sweep whose logs of ``todo_id`` are read: ``sweep_id`` (known, or exit 2), else
    the newest in which it ran. ``waiting`` (a follow, which waits for an attempt): a
    newer sweep in which the todo has not ended comes first, though it wrote nothing yet
    (it waits to run, or its worker has not written its first output)."""
    if sweep_id is not None:
        rec = record(rt, sweep_id)  # unknown: NotFoundError, exit 2
        person_scope.refuse_outside(rt, sweep_id, "read the logs of", rec)
        return sweep_id
    # (a person's CLI: only its repos' sweeps, whose logs its user may read)
    ids = person_scope.readable(rt, [str(r.get("id"))
                                     for r in rt.checkpoints.list_sweeps(limit=RECENT)])
    found = rt.logs().latest_sweep(todo_id, ids)
    if waiting:
        newer = ids if found is None else ids[:ids.index(found)]
        unended = rt.checkpoints.first_unended(todo_id, newer)
        if unended is not None:
            return unended
    if found is None:
        raise NotFoundError(
            f"no logs of {todo_id} in the last {len(ids)} sweep(s)",
            hint="it has not run, or its sweeps' logs expired (COORD_RETENTION_DAYS); "
                 "name its sweep with --sweep ID")
    return found


def pick(attempts: list[AttemptRecord], attempt: int | None, where: str) -> AttemptRecord:
    """Attempt ``attempt`` of ``attempts`` (None: the latest), or NotFoundError."""
    if not attempts:
        raise NotFoundError(f"{where}: no attempt has run yet",
                            hint="coord logs --follow waits for its first")
    if attempt is None:
        return attempts[-1]
    for a in attempts:
        if a.get("attempt") == attempt:
            return a
    have = ", ".join(str(a.get("attempt")) for a in attempts)
    raise NotFoundError(f"{where}: no attempt {attempt}", hint=f"its attempts: {have}")


def logs_document(rt: Runtime, todo_id: str, *, sweep_id: str | None = None,
                  attempt: int | None = None) -> LogDocument:
    """The todo's attempts and one attempt's whole output (see the module)."""
    if attempt is not None and attempt < 1:
        raise UsageError(f"--attempt {attempt}: attempts are numbered from 1")
    sid = find_sweep(rt, todo_id, sweep_id)
    store = rt.logs()
    attempts = store.attempts(sid, todo_id)
    chosen = pick(attempts, attempt, f"{todo_id} in {sid}")
    n = int(chosen.get("attempt") or 0)
    lines: list[LogLine] = []
    after = "0-0"
    while True:
        page = store.read(sid, todo_id, n, after)
        _join(lines, page.chunks)
        after = page.last_id
        if page.end is not None or not page.chunks:
            break
    return {"sweep_id": sid, "todo_id": todo_id, "attempts": attempts, "attempt": n,
            "running": chosen.get("ended_at") is None, "output": lines, "after": after}


def _join(lines: list[LogLine], chunks: list[Chunk]) -> None:
    """``chunks`` onto ``lines``, a stream's consecutive chunks as one."""
    for c in chunks:
        if lines and lines[-1]["stream"] == c.stream:
            lines[-1]["text"] += c.text
        else:
            lines.append({"stream": c.stream, "text": c.text})


class Follow:
    """Following one attempt of a todo as it is written (see the module): ``on_chunk``
    gets each chunk, ``on_attempt`` the attempt's record once known."""

    def __init__(self, rt: Runtime, sweep_id: str, todo_id: str, attempt: int | None,
                 on_chunk: Callable[[Chunk], None],
                 on_attempt: Callable[[AttemptRecord], None] = lambda a: None, *,
                 stop: Callable[[], bool] = lambda: False, block_ms: int = BLOCK_MS) -> None:
        self.rt, self.sweep_id, self.todo_id = rt, sweep_id, todo_id
        self.store: LogStore = rt.logs()
        self.asked = attempt
        self.on_chunk, self.on_attempt, self.stop = on_chunk, on_attempt, stop
        self.block_ms = block_ms

    def run(self) -> AttemptRecord | None:
        """Follow to the attempt's end: its final record (None: it ended without one, its
        worker gone, or the todo ended before running again, or ``stop`` said so)."""
        events_after = self.store.events_tip(self.sweep_id)
        n, events_after = self._which(events_after)
        if n is None:
            return None
        after, known = "0-0", False
        while True:
            page = self.store.read(self.sweep_id, self.todo_id, n, after)
            if not page.chunks and page.end is None:
                if self._over(n):  # one more look: an end written just now is read
                    page = self.store.read(self.sweep_id, self.todo_id, n, after)
                    if not page.chunks and page.end is None:
                        return None
                elif self.stop():
                    return None
                else:
                    page, events_after = self.store.wait_any(
                        self.sweep_id, self.todo_id, n, after, events_after,
                        block_ms=self.block_ms)
            if not known and (page.chunks or page.end is not None):
                known = self._announce(n)
            for c in page.chunks:
                self.on_chunk(c)
            after = page.last_id
            if page.end is not None:
                return page.end

    def _announce(self, n: int) -> bool:
        for a in self.store.attempts(self.sweep_id, self.todo_id):
            if a.get("attempt") == n:
                self.on_attempt(a)
                return True
        return False

    def _which(self, events_after: str) -> tuple[int | None, str]:
        """The attempt to follow: the one asked for, the latest while it runs, else the
        next one the todo starts (waited for); None: the todo ended without another."""
        while True:
            attempts = self.store.attempts(self.sweep_id, self.todo_id)
            if self.asked is not None:
                return pick(attempts, self.asked, f"{self.todo_id} in {self.sweep_id}"
                            )["attempt"], events_after
            latest = attempts[-1] if attempts else None
            if latest is not None and latest.get("ended_at") is None:
                return int(latest["attempt"]), events_after
            status, _tries = self._checkpoint()
            if status in TERMINAL or status is None or self.stop():
                if latest is None:
                    return None, events_after
                return int(latest["attempt"]), events_after
            nxt = 1 if latest is None else int(latest["attempt"]) + 1
            _page, events_after = self.store.wait_any(self.sweep_id, self.todo_id, nxt,
                                                      "0-0", events_after,
                                                      block_ms=self.block_ms)

    def _checkpoint(self) -> tuple[str | None, int]:
        return todo_state(self.rt, self.sweep_id, self.todo_id)

    def _over(self, n: int) -> bool:
        return attempt_over(self.rt, self.sweep_id, self.todo_id, n)


def todo_state(rt: Runtime, sweep_id: str, todo_id: str) -> tuple[str | None, int]:
    """The todo's status in the sweep (None: no such sweep) and its attempts so far."""
    got = rt.checkpoints.get_fields_all(sweep_id, [todo_id], ("status", "attempts"))
    cp = got.get(todo_id)
    if cp is None:
        return None, 0
    return str(cp.get("status") or TodoStatus.pending), int(cp.get("attempts") or 0)


def attempt_over(rt: Runtime, sweep_id: str, todo_id: str, n: int) -> bool:
    """Attempt ``n`` is over though its end was never read: the todo is no longer
    running it (it ended, or another attempt began)."""
    status, tries = todo_state(rt, sweep_id, todo_id)
    return status != TodoStatus.running or tries > n


def attempt_line(a: AttemptRecord, total: int | None = None) -> str:
    """One attempt as a line of history: number, worker, when, how it ended."""
    def at(ts: object) -> str:
        if not isinstance(ts, (int, float)):
            return "?"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC"

    ended = a.get("ended_at")
    how = ("running" if ended is None else
           f"exit {a.get('exit_code')}" if a.get("outcome") == "exited" else
           str(a.get("outcome")))
    size = a.get("stdout_bytes", 0) + a.get("stderr_bytes", 0)
    cut = f", kept the first {a.get('cap')} bytes" if a.get("truncated") else ""
    of = "" if total is None else f" of {total}"
    return (f"attempt {a.get('attempt')}{of} (run {a.get('run')}) on "
            f"{a.get('worker') or '?'}: started {at(a.get('started_at'))}"
            + ("" if ended is None else f", ended {at(ended)}")
            + f", {how}, {size} bytes of output{cut}")
