"""One attempt's output on its way into the log store (:mod:`coordination.runtime.logs`),
from the worker that runs it.

The worker hands it every chunk it reads from the command's pipes (:meth:`AttemptLog.add`,
``run_command``'s ``on_output``) and lets it look at the clock each time it polls
(:meth:`AttemptLog.watching` wraps its ``should_stop``). It masks (``mask_env:``,
:mod:`coordination.sweeps.runlogs.masking`), caps (COORD_LOG_MAX_BYTES: the first bytes are
kept, then one line says where it was cut) and batches:

- a command that ends within :data:`FLUSH_EVERY` costs one pipelined write at its end
  (its chunks, its end, its record): nothing while it runs;
- a longer one is written every :data:`FLUSH_EVERY` s while it prints (and its record
  once it has run that long, printing or not), or as soon as :data:`FLUSH_BYTES` wait,
  so `coord logs --follow` shows it as it goes.

Nothing here may fail the todo: a write Redis refuses is logged, kept (within the cap)
and tried again at the next flush; at the attempt's end it is given up.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from coordination.runtime.logs import AttemptRecord, LogStore
from coordination.sweeps.runlogs.masking import Masker, StreamMask

if TYPE_CHECKING:
    from codecs import IncrementalDecoder

log = logging.getLogger("coord.logs")

#: Seconds output waits before it is written while the command runs.
FLUSH_EVERY = 0.25
#: Characters waiting that are written at once.
FLUSH_BYTES = 256 * 1024
#: What the log says where the cap cut it (``{cap}``: COORD_LOG_MAX_BYTES).
TRUNCATED = "... output truncated at {cap} bytes (COORD_LOG_MAX_BYTES)\n"


class AttemptLog:
    """The output of one attempt of one todo, masked, capped and batched (see the module)."""

    def __init__(self, store: LogStore, sweep_id: str, todo_id: str, attempt: int, *,
                 run: int, worker: str, masker: Masker, cap: int) -> None:
        self.store, self.sweep_id, self.todo_id, self.attempt = store, sweep_id, todo_id, attempt
        self.cap = max(0, cap)
        self.record: AttemptRecord = {
            "attempt": attempt, "run": run, "worker": worker, "started_at": time.time(),
            "ended_at": None, "outcome": None, "exit_code": None, "stdout_bytes": 0,
            "stderr_bytes": 0, "kept_bytes": 0, "truncated": False, "cap": self.cap}
        self.began = time.monotonic()
        self.decoders: dict[str, IncrementalDecoder] = {
            s: codecs.getincrementaldecoder("utf-8")(errors="replace")
            for s in ("stdout", "stderr")}
        self.masks: dict[str, StreamMask] = {s: masker.stream() for s in ("stdout", "stderr")}
        self.pending: list[tuple[str, str]] = []
        self.pending_chars = 0
        self.since: float | None = None  # when the oldest unwritten output came
        self.written = False  # its first write done (its keys listed for retention)
        self.closed = False
        self.deferred = False  # its last write held for the todo's finish (close(defer=))
        self.warned = False
        # The writes while the command runs go on one thread of the attempt's own, woken
        # when a write is due: a write blocked on an unreachable Redis never holds up the
        # worker's poll (its lease lost is the command killed at once, not after the
        # socket's timeout). It starts with the first write due: a command that ends
        # sooner costs no thread.
        self._lock = threading.Lock()
        self._due = threading.Event()
        self._writer: threading.Thread | None = None

    # -- what the worker calls ----------------------------------------------------------
    def add(self, stderr: bool, data: bytes) -> None:
        """A chunk the command wrote (``stderr``: on its stderr)."""
        name = "stderr" if stderr else "stdout"
        rec = self.record
        if stderr:
            rec["stderr_bytes"] += len(data)
        else:
            rec["stdout_bytes"] += len(data)
        if rec["truncated"]:
            return
        room = self.cap - rec["kept_bytes"]
        cut = len(data) > room
        data = data[:room]
        rec["kept_bytes"] += len(data)
        self._queue(name, self.masks[name].feed(self.decoders[name].decode(data)))
        if cut:
            self._drain()
            self._queue("coord", TRUNCATED.format(cap=self.cap))
            rec["truncated"] = True
        if self.pending_chars >= FLUSH_BYTES:
            self._flush_behind()

    def tick(self) -> None:
        """The worker's poll: write what waited long enough (and, once the command has
        run :data:`FLUSH_EVERY` s, its record, so the attempt shows as running)."""
        now = time.monotonic()
        with self._lock:
            since = self.since
        if since is not None:
            if now - since >= FLUSH_EVERY:
                self._flush_behind()
        elif not self.written and now - self.began >= FLUSH_EVERY:
            self._flush_behind()

    def watching(self, should_stop: Callable[[], str | None]) -> Callable[[], str | None]:
        """``should_stop`` that ticks first (the worker polls it about every 0.1 s)."""
        def polled() -> str | None:
            self.tick()
            return should_stop()
        return polled

    def close(self, outcome: str, exit_code: int | None, *, defer: bool = False) -> None:
        """The command ended (``outcome``: exited, timeout, stopped, error): what is left
        and the attempt's end, in one write. ``defer``: that write is held for the todo's
        finish to send in its own round trip, ahead of it (:meth:`queue_end`); whoever
        defers it calls :meth:`end` on every way out, which writes it alone unless it was
        queued (a todo's last attempt: its end was one more round trip between its
        command's end and its outcome)."""
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:  # woken to see it is closed; a write under way ends
            self._due.set()
            self._writer.join()  # (the command has ended: nothing waits on this)
        if not self.record["truncated"]:
            self._drain()
        self.record["ended_at"] = time.time()
        self.record["outcome"] = outcome
        self.record["exit_code"] = exit_code
        if defer:
            self.deferred = True
            return
        self.flush(end=True)

    def queue_end(self, pipe: object) -> None:
        """The deferred last write's commands put on ``pipe`` (a pipeline of the store's
        client, sent by its owner), once: a second call, or :meth:`end` after it, writes
        nothing (a finish tried again after a lost connection does not append the end
        twice; its log may then lack the end, as a write Redis refused would)."""
        if not self.deferred:
            return
        self.deferred = False
        with self._lock:
            batch = self.pending
            self.pending, self.pending_chars, self.since = [], 0, None
            record = self.record.copy()
        self.store.queue(pipe, self.sweep_id, self.todo_id, self.attempt, batch, record,
                         first=not self.written, end=True)
        self.written = True

    def end(self) -> None:
        """The deferred last write, alone, if no finish took it (:meth:`queue_end`)."""
        if self.deferred:
            self.deferred = False
            self.flush(end=True)

    # -- inside ---------------------------------------------------------------------------
    def _drain(self) -> None:
        """Everything the decoders and masks held back (the stream ended or was cut)."""
        for name in ("stdout", "stderr"):
            text = self.decoders[name].decode(b"", final=True)
            mask = self.masks[name]
            self._queue(name, mask.feed(text) + mask.end())

    def _queue(self, name: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            if self.pending and self.pending[-1][0] == name:
                self.pending[-1] = (name, self.pending[-1][1] + text)
            else:
                self.pending.append((name, text))
            self.pending_chars += len(text)
            if self.since is None:
                self.since = time.monotonic()

    def _flush_behind(self) -> None:
        """A write due: the writer thread wakes for it (asked again while one is under way,
        it writes once more when that one ends: what came meanwhile)."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_behind, name="coord-attempt-log",
                                            daemon=True)
            self._writer.start()
        self._due.set()

    def _write_behind(self) -> None:
        """The writer thread: one write each time one is due, until the attempt is closed
        (whose last write :meth:`close` makes itself, after this thread has ended)."""
        while True:
            self._due.wait()
            self._due.clear()
            if self.closed:
                return
            self.flush()

    def flush(self, *, end: bool = False) -> None:
        with self._lock:
            batch, chars = self.pending, self.pending_chars
            self.pending, self.pending_chars, self.since = [], 0, None
            record = self.record.copy()
        try:
            self.store.write(self.sweep_id, self.todo_id, self.attempt, batch,
                             record, first=not self.written, end=end)
        except Exception as exc:  # noqa: BLE001 - a log never fails its todo
            if not self.warned:
                self.warned = True
                log.warning("%s/%s: attempt %d's output not written to its log (%s)%s",
                            self.sweep_id, self.todo_id, self.attempt, exc,
                            "" if end else "; tried again")
            if not end:
                with self._lock:  # kept, before what came meanwhile; tried again later
                    self.pending = batch + self.pending
                    self.pending_chars += chars
                    self.since = time.monotonic()  # the next try after another FLUSH_EVERY
            return
        self.written = True
