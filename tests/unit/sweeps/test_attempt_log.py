"""An attempt's output on its way into the log store (coordination/sweeps/runlogs/attempt_log.py)
and read back (coordination/sweeps/runlogs/logs.py), on fakeredis: batching, the cap said where it
cut, masking before anything is written, the record of each attempt, a write Redis
refuses."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from coordination.errors import NotFoundError
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import repo_field
from coordination.sweeps.runlogs import attempt_log
from coordination.sweeps.runlogs.attempt_log import AttemptLog
from coordination.sweeps.runlogs.logs import Follow, find_sweep, logs_document
from coordination.sweeps.runlogs.masking import Masker
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(30)

SID = "PLAN-001-20260101000000-ab12"


def _log(rt: Runtime, attempt: int = 1, *, cap: int = 1 << 20, masker: Masker | None = None
         ) -> AttemptLog:
    return AttemptLog(rt.logs(), SID, "TODO-001", attempt, run=1, worker="w1",
                      masker=masker or Masker(), cap=cap)


def _sweep(rt: Runtime) -> None:
    """A running sweep, written as the runtime writes one (its fields JSON-encoded)."""
    rt.checkpoints.create_sweep(SID, {"status": "running", "plan": "PLAN-001"})


def _written(rt: Runtime) -> dict[str, Any] | None:
    """TODO-001's log in the sweep, None while no write has reached it."""
    try:
        return dict(logs_document(rt, "TODO-001", sweep_id=SID))
    except NotFoundError:
        return None


def test_a_short_attempt_writes_once_at_its_end(rt: Runtime) -> None:
    _sweep(rt)
    log = _log(rt)
    log.add(False, b"hello ")
    log.add(True, b"oops\n")
    log.add(False, b"world\n")
    assert not rt.redis.exists(rt.keys.attempt_log(SID, "TODO-001", 1))  # nothing yet
    log.close("exited", 3)
    doc = logs_document(rt, "TODO-001")  # the newest sweep it ran in
    assert doc["sweep_id"] == SID and doc["attempt"] == 1 and not doc["running"]
    assert doc["output"] == [{"stream": "stdout", "text": "hello "},
                             {"stream": "stderr", "text": "oops\n"},
                             {"stream": "stdout", "text": "world\n"}]
    (a,) = doc["attempts"]
    assert (a["worker"], a["exit_code"], a["outcome"], a["stdout_bytes"], a["stderr_bytes"],
            a["truncated"]) == ("w1", 3, "exited", 12, 5, False)
    assert a["ended_at"] >= a["started_at"]
    # its keys are listed for the sweep's retention, and expire on their own meanwhile
    listed = rt.redis.smembers(rt.keys.sweep_log_keys(SID))
    assert listed == {rt.keys.attempt_log(SID, "TODO-001", 1),
                      rt.keys.todo_attempts(SID, "TODO-001")}
    assert 0 < rt.redis.ttl(rt.keys.attempt_log(SID, "TODO-001", 1))


def test_a_long_attempt_is_written_while_it_runs(rt: Runtime, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    _sweep(rt)
    monkeypatch.setattr(attempt_log, "FLUSH_EVERY", 0.0)
    log = _log(rt)
    log.tick()  # ran FLUSH_EVERY: its record, so it shows as running
    wait_for(lambda: (_written(rt) or {}).get("running"), 10,
             "the running attempt's record written by the writer thread")
    log.add(False, b"step 1\n")
    log.tick()
    wait_for(lambda: (_written(rt) or {}).get("output") == [
        {"stream": "stdout", "text": "step 1\n"}], 10, "its first line written while it runs")
    log.close("timeout", None)
    doc = logs_document(rt, "TODO-001", sweep_id=SID)
    assert not doc["running"] and doc["attempts"][0]["outcome"] == "timeout"


def test_the_cap_keeps_the_first_bytes_and_says_so(rt: Runtime) -> None:
    _sweep(rt)
    log = _log(rt, cap=10)
    log.add(False, b"0123456")
    log.add(False, b"789abcdef")
    log.add(True, b"more and more")
    log.close("exited", 0)
    doc = logs_document(rt, "TODO-001", sweep_id=SID)
    assert doc["output"] == [{"stream": "stdout", "text": "0123456789"},
                             {"stream": "coord",
                              "text": "... output truncated at 10 bytes (COORD_LOG_MAX_BYTES)\n"}]
    a = doc["attempts"][0]
    assert a["truncated"] and a["kept_bytes"] == 10 and a["stdout_bytes"] == 16
    assert a["stderr_bytes"] == 13


def test_values_are_masked_before_anything_is_written(rt: Runtime) -> None:
    _sweep(rt)
    secret = "hunter2-is-long"
    log = _log(rt, masker=Masker([secret]))
    log.add(False, b"token: hunter2-")
    log.add(False, b"is-long done\n")
    log.close("exited", 0)
    stream = rt.redis.xrange(rt.keys.attempt_log(SID, "TODO-001", 1))
    assert "hunter2" not in repr(stream)
    doc = logs_document(rt, "TODO-001", sweep_id=SID)
    assert doc["output"] == [{"stream": "stdout", "text": "token: *** done\n"}]


def test_attempts_are_kept_apart_and_picked_by_number(rt: Runtime) -> None:
    _sweep(rt)
    for n, word in ((1, b"first"), (2, b"second")):
        log = _log(rt, n)
        log.add(False, word)
        log.close("exited", n)
    doc = logs_document(rt, "TODO-001", sweep_id=SID)
    assert [a["attempt"] for a in doc["attempts"]] == [1, 2]
    assert doc["attempt"] == 2 and doc["output"][0]["text"] == "second"
    one = logs_document(rt, "TODO-001", sweep_id=SID, attempt=1)
    assert one["output"][0]["text"] == "first" and one["attempts"][0]["exit_code"] == 1
    from coordination.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no attempt 3"):
        logs_document(rt, "TODO-001", sweep_id=SID, attempt=3)
    with pytest.raises(NotFoundError, match="no logs of TODO-009"):
        logs_document(rt, "TODO-009")


def test_a_write_redis_refuses_never_fails_the_todo(rt: Runtime,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _sweep(rt)
    log = _log(rt)
    calls = []

    def refuse(*a: object, **k: object) -> None:
        calls.append(1)
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(log.store, "write", refuse)
    log.add(False, b"x")
    log.close("exited", 0)  # no exception
    assert calls == [1]


def test_a_blocked_write_never_holds_up_the_poll_and_one_thread_writes(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker's poll (tick, then its lease check) must stay prompt while a write hangs
    # on an unreachable Redis: the chaos tier's cut worker kills its command from there.
    _sweep(rt)
    monkeypatch.setattr(attempt_log, "FLUSH_EVERY", 0.0)
    log = _log(rt)
    release, writing = threading.Event(), threading.Event()
    real, batches = log.store.write, []
    writers: set[threading.Thread] = set()

    def blocked(sweep_id: str, todo: str, attempt: int, batch: list[tuple[str, str]],
                *a: object, **k: object) -> None:
        if not k.get("end"):  # (the last write is close's own, on the worker's thread)
            writers.add(threading.current_thread())
        batches.append([t for _, t in batch])
        writing.set()
        release.wait(20)
        real(sweep_id, todo, attempt, batch, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(log.store, "write", blocked)
    log.add(False, b"one\n")
    log.tick()
    assert writing.wait(10), "the first write never started"
    for n in range(50):  # polls while it hangs: none of them waits on it
        began = time.monotonic()
        log.add(False, f"more {n}\n".encode())
        log.tick()
        assert time.monotonic() - began < 1.0
    release.set()
    wait_for(lambda: len(batches) >= 2, 10, "the output that came meanwhile written next")
    log.close("exited", 0)
    (writer,) = writers  # one writer thread, however many writes
    assert writer.name == "coord-attempt-log" and writer is not threading.current_thread()
    assert "".join(t for b in batches for t in b) == "one\n" + "".join(
        f"more {n}\n" for n in range(50))
    assert [t["text"] for t in logs_document(rt, "TODO-001", sweep_id=SID)["output"]] == [
        "one\n" + "".join(f"more {n}\n" for n in range(50))]
    assert not any(t.name == "coord-attempt-log" for t in threading.enumerate())


def test_masking_keeps_the_streams_in_their_order(rt: Runtime) -> None:
    # Only a piece that may start a value waits for the next chunk: a line that ends
    # cleanly is written in its place among the other stream's.
    _sweep(rt)
    secret = "hunter2-is-long"
    log = _log(rt, masker=Masker([secret]))
    log.add(False, b"token=hunter2-is-long\n")
    log.add(True, b"password=hunter2-is-long\n")
    log.add(False, b"done hun")  # may be the start of the value: waits...
    log.add(True, b"err\n")
    log.add(False, b"gry\n")  # ...and was not
    log.close("exited", 0)
    doc = logs_document(rt, "TODO-001", sweep_id=SID)
    assert doc["output"] == [{"stream": "stdout", "text": "token=***\n"},
                             {"stream": "stderr", "text": "password=***\n"},
                             {"stream": "stdout", "text": "done "},
                             {"stream": "stderr", "text": "err\n"},
                             {"stream": "stdout", "text": "hungry\n"}]


def test_a_follow_waits_in_the_newer_sweep_where_the_todo_wrote_nothing_yet(rt: Runtime) -> None:
    # TODO-001 ran in an older sweep (its logs kept) and runs now in a newer one whose
    # worker has not written its first output: following it (without --sweep) follows
    # the newer, and prints that attempt once written; reading it reads the older.
    old, new = "PLAN-001-20251231000000-0ld0", SID
    for sid, status, age in ((old, "succeeded", 60.0), (new, "running", 0.0)):
        rt.checkpoints.create_sweep(sid, {"plan": "PLAN-001", "status": status,
                                          "created_at": time.time() - age,
                                          repo_field("TODO-001"): "api"})
        rt.checkpoints.set_fields(sid, "TODO-001", attempts=1,
                                  status="succeeded" if age else "running")
    before = AttemptLog(rt.logs(), old, "TODO-001", 1, run=1, worker="w1", masker=Masker(),
                        cap=1 << 20)
    before.add(False, b"old run\n")
    before.close("exited", 0)
    # sweeps that cannot be followed: one without the todo, one ended with it not run
    for sid, fields in (("PLAN-002-20260101000001-n0t0", {"status": "running"}),
                        ("PLAN-001-20260101000002-end0", {"status": "cancelled",
                                                          repo_field("TODO-001"): "api"})):
        rt.checkpoints.create_sweep(sid, {"plan": "PLAN-001", "created_at": time.time() + 60,
                                          **fields})

    assert find_sweep(rt, "TODO-001", None) == old
    assert find_sweep(rt, "TODO-001", None, waiting=True) == new
    with pytest.raises(NotFoundError, match="no logs of TODO-404"):
        find_sweep(rt, "TODO-404", None, waiting=True)

    got: list[str] = []
    ended: list[Any] = []
    follow = Follow(rt, find_sweep(rt, "TODO-001", None, waiting=True), "TODO-001", None,
                    lambda c: got.append(c.text), block_ms=50)
    reader = threading.Thread(target=lambda: ended.append(follow.run()), daemon=True)
    reader.start()
    now = _log(rt)
    now.add(False, b"first\n")
    now.close("exited", 0)
    rt.checkpoints.set_fields(new, "TODO-001", status="succeeded")  # its finish
    reader.join(10)
    assert not reader.is_alive() and got == ["first\n"]
    assert ended[0] is not None and ended[0]["exit_code"] == 0
