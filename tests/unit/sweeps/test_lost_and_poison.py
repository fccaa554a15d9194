"""Lost messages, poison todos and worker liveness, on the embedded server.

The runtime here is a distributed one in all but its client (fakeredis), so
the supervisor's lost-message check runs; its app is the recording stub.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.runtime.workers import WorkerRecord, WorkerRegistry
from coordination.sweeps.lost import LOOK_FIELDS
from coordination.sweeps.sending import todo_task_id
from coordination.sweeps.supervision import supervise_once
from tests.unit.support.sweeps import (
    StubApp,
    chain_catalog,
    events,
    run_as_worker,
    start,
    status,
    unlock,
)
from tests.unit.support.sweeps import fresh_runtime

pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True, settings={
    "redis_url": "redis://distributed.invalid:6379/0", "lost_after": 0.2,
    "worker_heartbeat": 0.1, "max_lost_runs": 3,
})]


def spec_of(rt: Runtime, sid: str) -> Any:
    from coordination.sweeps.spec_store import load_spec

    return load_spec(rt, sid)


def in_queue(rt: Runtime, sid: str, tid: str, priority: int = 6) -> None:
    """Put a kombu-shaped message for the todo in its repo's broker list (a medium
    todo's is the queue's priority-6 list)."""
    spec = spec_of(rt, sid)
    msg = {"body": "", "headers": {"id": todo_task_id(spec, tid), "task": "coord.run_todo"},
           "properties": {"delivery_tag": "t1"}}
    rt.redis.lpush(rt.keys.broker_queue(spec.todos[tid].queue, priority), json.dumps(msg))


def age_queued(rt: Runtime, sid: str, tid: str, seconds: float) -> None:
    rt.checkpoints.set_fields(sid, tid, queued_at=time.time() - seconds)


def forget_looks(rt: Runtime, sid: str) -> None:
    """As if no pass had looked for lost messages yet."""
    rt.redis.hdel(rt.keys.sweep(sid), *LOOK_FIELDS)


def pass_after(rt: Runtime, sid: str, seconds: float) -> None:
    """One supervisor pass, ``seconds`` of (pretended) time after the last look."""
    looks: dict[str, object] = dict(rt.checkpoints.get_sweep_fields(sid, LOOK_FIELDS) or {})
    rt.checkpoints.update_sweep(sid, **{f: float(str(looks[f])) - seconds
                                        for f in ("lost_look_at", "suspect_look_at")
                                        if looks.get(f) is not None})
    spec = spec_of(rt, sid)
    for tid, cp in rt.checkpoints.get_all(sid, list(spec.todos)).items():
        if cp.get("suspect_at") is not None:
            rt.checkpoints.set_fields(sid, tid, suspect_at=float(cp["suspect_at"]) - seconds)
    unlock(rt, sid)
    supervise_once(rt, sid)


# -- lost messages -----------------------------------------------------------------------
def test_queued_todo_whose_message_vanished_is_resent_after_two_looks(
    rt: Runtime, tmp_path: Path
) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    before = len(rt.app.todos_sent())
    age_queued(rt, sid, "TODO-001", 5)  # its message is nowhere
    age_queued(rt, sid, "TODO-004", 5)
    in_queue(rt, sid, "TODO-004")  # ...while TODO-004's still waits in its queue

    pass_after(rt, sid, 1)  # first look: suspect only
    assert rt.app.todos_sent()[before:] == []
    assert rt.checkpoints.get(sid, "TODO-001").get("suspect_at")

    assert rt.checkpoints.get(sid, "TODO-004").get("suspect_at") is None

    pass_after(rt, sid, 1)  # second look, two beats later: re-sent
    assert rt.app.todos_sent()[before:] == ["TODO-001"]
    lost = events(rt, sid, "todo.lost")
    assert [(e.todo_id, e.data["reason"]) for e in lost] == [("TODO-001", "message lost")]
    assert [e.todo_id for e in events(rt, sid, "supervisor.redispatched")] == ["TODO-001"]
    assert status(rt, sid, "TODO-001") == "queued"

    pass_after(rt, sid, 0.05)  # just re-sent: its new message gets lost_after to show up
    assert rt.app.todos_sent()[before:] == ["TODO-001"]


def test_a_lost_message_is_said_lost_however_soon_its_pass_dies(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``todo.lost`` (message lost) is written with the move that puts the todo back to
    be sent: a pass that dies where it would write an event alone (its re-send's
    ``supervisor.redispatched``) has said it, once; the next passes re-send the todo
    without saying it lost again. Said after the move, a pass dying there lost it."""
    from coordination.runtime.events import EventLog

    sid = start(rt, chain_catalog(tmp_path))
    age_queued(rt, sid, "TODO-001", 5)  # its message is nowhere
    pass_after(rt, sid, 1)  # suspect

    def dies(*_: object, **__: object) -> str:
        raise RuntimeError("the pass died where it would write an event alone")

    monkeypatch.setattr(EventLog, "emit", dies)
    try:
        pass_after(rt, sid, 1)
    except RuntimeError:
        pass  # died after the move
    monkeypatch.undo()
    lost = events(rt, sid, "todo.lost")
    assert [(e.todo_id, e.data["reason"]) for e in lost] == [("TODO-001", "message lost")]
    assert lost[0].data["queued_for"] >= 5
    assert status(rt, sid, "TODO-001") == "queued"


def test_a_look_reads_each_candidates_own_list_and_a_suspects_every_list(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first look reads the list a message was pushed onto (its queue at the
    todo's priority); a message found nowhere there is only suspect until a second
    look reads every priority list of its queue: one waiting elsewhere is not sent
    twice."""
    sid = start(rt, chain_catalog(tmp_path))
    spec = spec_of(rt, sid)
    before = len(rt.app.todos_sent())
    reads: list[tuple[set[str], set[tuple[str, int]]]] = []
    real = rt.checkpoints.queued_task_ids

    def recorded(queues: Any, lists: Any = ()) -> set[str]:
        reads.append((set(queues), set(lists)))
        return real(queues, lists)

    monkeypatch.setattr(rt.checkpoints, "queued_task_ids", recorded)
    age_queued(rt, sid, "TODO-001", 5)
    in_queue(rt, sid, "TODO-001", priority=0)  # not where a medium todo's message goes
    pass_after(rt, sid, 1)
    q = spec.todos["TODO-001"].queue
    assert reads[-1] == (set(), {(q, 6)})
    assert rt.checkpoints.get(sid, "TODO-001").get("suspect_at")
    pass_after(rt, sid, 1)
    assert reads[-1][0] == {q}  # every priority list of the suspect's queue
    assert rt.app.todos_sent()[before:] == []
    assert rt.checkpoints.get(sid, "TODO-001").get("suspect_at") is None


def test_full_looks_are_rationed_by_the_lists_they_read(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full look that read N lists is not repeated for N / LISTS_PER_SECOND seconds
    (a backlog over thousands of queues is not read every few seconds); suspects are
    still looked at again after two beats."""
    from coordination.sweeps import lost

    monkeypatch.setattr(lost, "LISTS_PER_SECOND", 1)  # two lists read: the next in 2 s
    sid = start(rt, chain_catalog(tmp_path))
    before = len(rt.app.todos_sent())
    for tid in ("TODO-001", "TODO-004"):
        age_queued(rt, sid, tid, 5)
    in_queue(rt, sid, "TODO-004")
    pass_after(rt, sid, 0.1)  # full look: TODO-001 suspect, TODO-004 seen waiting
    assert rt.checkpoints.get(sid, "TODO-001").get("suspect_at")
    rt.redis.delete(rt.keys.broker_queue(spec_of(rt, sid).todos["TODO-004"].queue, 6))
    pass_after(rt, sid, 1)  # suspects only: TODO-001 re-sent, TODO-004 not looked at
    assert rt.app.todos_sent()[before:] == ["TODO-001"]
    assert rt.checkpoints.get(sid, "TODO-004").get("suspect_at") is None
    pass_after(rt, sid, 1.5)  # 2.5 s after the full look: the next one
    assert rt.checkpoints.get(sid, "TODO-004").get("suspect_at")


def test_the_last_look_is_the_sweeps_not_the_process(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any worker may take the next supervision pass: the last look is kept on the
    sweep's record, so a pass in another process within the interval reads no list
    (50 workers each keeping their own would each have looked)."""
    from coordination.sweeps.lost import resend_lost_messages

    sid = start(rt, chain_catalog(tmp_path))
    age_queued(rt, sid, "TODO-001", 5)
    in_queue(rt, sid, "TODO-001")
    reads: list[object] = []
    real = rt.checkpoints.queued_task_ids
    monkeypatch.setattr(rt.checkpoints, "queued_task_ids",
                        lambda q, lists=(): reads.append(lists) or real(q, lists))
    spec = spec_of(rt, sid)
    now = time.time()
    cps = rt.checkpoints.get_all(sid, list(spec.todos))
    resend_lost_messages(rt, spec, cps, now)
    assert len(reads) == 1
    record = rt.checkpoints.get_sweep_fields(sid, LOOK_FIELDS)
    assert record is not None and float(str(record.get("lost_look_at"))) == now
    resend_lost_messages(rt, spec_of(rt, sid), cps, now + 0.01, record)  # "another worker"
    assert len(reads) == 1


def test_todo_held_by_a_live_worker_is_not_resent(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    spec = spec_of(rt, sid)
    before = len(rt.app.todos_sent())
    for tid in ("TODO-001", "TODO-004"):
        age_queued(rt, sid, tid, 5)
    held = [todo_task_id(spec, "TODO-001"), todo_task_id(spec, "TODO-004")]
    rt.workers.beat(WorkerRecord(name="w1", host="h", pid=1, repos=["api", "jobs"], held=held,
                                 beat=30))
    for _ in range(3):
        pass_after(rt, sid, 1)
    assert rt.app.todos_sent()[before:] == []
    assert events(rt, sid, "todo.lost") == []


def test_embedded_runtime_never_scans_queues(tmp_path: Path) -> None:
    from coordination.connection.client import reset_embedded
    from coordination.sweeps.lost import resend_lost_messages

    runtime = fresh_runtime()
    runtime.dispatcher = CeleryDispatcher(StubApp(), runtime.keys)
    try:
        sid = start(runtime, chain_catalog(tmp_path))
        age_queued(runtime, sid, "TODO-001", 3600)
        cps = runtime.checkpoints.get_all(sid, ["TODO-001"])
        assert resend_lost_messages(runtime, spec_of(runtime, sid), cps, time.time()) == []
    finally:
        reset_embedded()


# -- poison todos ------------------------------------------------------------------------
def lose_run(rt: Runtime, sid: str, tid: str, repo: str) -> None:
    """A worker claims the todo, then dies: its lease vanishes; one supervisor pass."""
    lease = run_as_worker(rt, sid, tid, repo)
    rt.redis.delete(lease.key)
    unlock(rt, sid)
    supervise_once(rt, sid)


def test_poison_todo_fails_after_max_lost_runs_and_skips_dependents(
    rt: Runtime, tmp_path: Path
) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    lose_run(rt, sid, "TODO-001", "api")
    lose_run(rt, sid, "TODO-001", "api")
    assert status(rt, sid, "TODO-001") == "queued"
    lose_run(rt, sid, "TODO-001", "api")
    cp = rt.checkpoints.get(sid, "TODO-001")
    assert cp["status"] == "failed" and cp["lost_runs"] == 3
    assert cp["reason"].startswith("its worker died 3 times while running it")
    assert status(rt, sid, "TODO-002") == "skipped" and status(rt, sid, "TODO-003") == "skipped"
    assert [e.data.get("lost_runs") for e in events(rt, sid, "todo.lost")] == [1, 2, 3]
    failed = events(rt, sid, "todo.failed")
    assert len(failed) == 1 and failed[0].data["poison"] is True


def test_poison_through_redelivery_takeover(rt: Runtime, tmp_path: Path) -> None:
    """A redelivered message reaching a todo still 'running' under a dead lease counts too."""
    sid = start(rt, chain_catalog(tmp_path))
    for n in (1, 2):
        st = rt.transitions.start(sid, "TODO-001", repo="api", concurrency=1, preds=[],
                                  worker=f"w{n}", now=time.time(), max_lost=3)
        assert st.verdict == "started" and st.lease is not None, st
        assert st.taken_over is (n == 2)
        rt.redis.delete(st.lease.key)  # that worker dies too
    st = rt.transitions.start(sid, "TODO-001", repo="api", concurrency=1, preds=[],
                              worker="w3", now=time.time(), max_lost=2)
    assert st.verdict == "poisoned" and st.lease is None
    cp = rt.checkpoints.get(sid, "TODO-001")
    assert cp["status"] == "failed" and "died 2 times" in cp["reason"] and "(last: w2)" in cp["reason"]
    assert rt.leases.holders("api", 1) == [None]  # the poisoned start took no slot
    # the takeover said; then the poisoning start says the lost run and the failure itself
    assert [(e.data.get("reason"), e.data.get("worker"), e.data.get("lost_runs"))
            for e in events(rt, sid, "todo.lost")] == [
        ("taken over", None, None), ("lease expired", "w2", 2)]
    assert [e.data.get("poison") for e in events(rt, sid, "todo.failed")] == [True]


@pytest.mark.parametrize("max_lost", [2, 3])
def test_a_takeover_that_opens_its_repos_breaker_says_so(rt: Runtime, tmp_path: Path,
                                                         max_lost: int) -> None:
    """A start taking a dead holder's run over counts the lost run against the repo's
    breaker; when that opens it (here at the second takeover: 2 failures open it),
    ``repo.breaker_open`` (a default webhook event) is said in the same step, whether
    the takeover runs the todo (max_lost 3) or ends it poison (2). It opened the
    breaker and said nothing."""
    sid = start(rt, chain_catalog(tmp_path))

    def started(worker: str, max_lost: int) -> Any:
        return rt.transitions.start(sid, "TODO-001", repo="api", concurrency=1, preds=[],
                                    worker=worker, now=time.time(), max_lost=max_lost,
                                    breaker=(2, 60.0))

    for n in (1, 2):
        st = started(f"w{n}", 3)
        assert st.verdict == "started" and st.lease is not None, st
        rt.redis.delete(st.lease.key)  # that worker dies
    assert events(rt, sid, "repo.breaker_open") == []  # (one takeover so far: 1 failure)
    st = started("w3", max_lost)
    assert st.verdict == ("poisoned" if max_lost == 2 else "started"), st
    assert [(e.data.get("repo"), e.data.get("failures"), e.todo_id)
            for e in events(rt, sid, "repo.breaker_open")] == [("api", 2, "TODO-001")]


def test_a_lost_run_and_a_poison_are_said_in_the_step_that_finds_them(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``todo.lost`` (a run put back), and a poison's ``todo.lost`` and ``todo.failed``
    (a default webhook event), are written by the lost-run script: a supervisor dying
    where it used to say them after the script leaves them said all the same."""
    from coordination.runtime.events import EventLog

    emit = EventLog.emit

    def dies(self: EventLog, kind: str, **kw: Any) -> str:
        if kind in ("todo.lost", "todo.failed"):
            raise RuntimeError("the supervisor died where it said " + kind)
        return emit(self, kind, **kw)

    monkeypatch.setattr(EventLog, "emit", dies)
    sid = start(rt, chain_catalog(tmp_path))
    for _ in range(3):
        try:
            lose_run(rt, sid, "TODO-001", "api")
        except RuntimeError:
            pass
    assert status(rt, sid, "TODO-001") == "failed"
    assert [(e.data.get("lost_runs"), e.data.get("reason"), e.data.get("worker"))
            for e in events(rt, sid, "todo.lost")] == [
        (n, "lease expired", "w1") for n in (1, 2, 3)]
    assert [(e.data.get("poison"), e.data.get("attempts"))
            for e in events(rt, sid, "todo.failed")] == [(True, 3)]


def test_start_retried_by_its_own_holder_is_not_busy(rt: Runtime, tmp_path: Path) -> None:
    """A start whose reply was lost and is sent again must not read as someone else's."""
    sid = start(rt, chain_catalog(tmp_path))
    args: dict[str, Any] = dict(repo="api", concurrency=1, preds=[], worker="w1",
                                now=time.time(), token="w1-delivery")
    first = rt.transitions.start(sid, "TODO-001", **args)
    assert first.verdict == "started" and first.lease is not None
    again = rt.transitions.start(sid, "TODO-001", **args)
    assert again.verdict == "started" and again.lease == first.lease and not again.taken_over
    # Another delivery, with a slot free for it (concurrency 2), finds it held.
    other = rt.transitions.start(sid, "TODO-001", repo="api", concurrency=2, preds=[],
                                 worker="w2", now=time.time())
    assert other.verdict == "busy" and other.lease is None
    assert rt.leases.holders("api", 2) == [first.lease.token, None]


def test_live_holder_is_never_marked_lost(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    lease = run_as_worker(rt, sid, "TODO-001", "api")
    assert rt.transitions.lost(sid, "TODO-001", repo="api", token=lease.token, max_lost=3,
                               now=time.time(), why="test") == "alive"
    assert rt.transitions.lost(sid, "TODO-001", repo="api", token="someone-else", max_lost=3,
                               now=time.time(), why="test") == "changed"
    assert status(rt, sid, "TODO-001") == "running"


# -- worker registry ---------------------------------------------------------------------
def test_registry_lists_live_workers_and_drops_silent_ones(rt: Runtime) -> None:
    reg = WorkerRegistry(rt.redis, rt.keys)
    reg.beat(WorkerRecord(name="a", host="h", pid=1, repos=["api"], held=["x"], beat=30))
    reg.beat(WorkerRecord(name="b", host="h", pid=2, repos=["api", "web"], beat=30))
    assert [w.name for w in reg.live()] == ["a", "b"]
    assert reg.per_repo() == {"api": 2, "web": 1}
    assert reg.held() == {"x"}
    rt.redis.delete(rt.keys.worker("a"))  # a's record expired: it stopped beating
    assert [w.name for w in reg.live()] == ["b"]
    assert rt.redis.zscore(rt.keys.workers, "a") is None  # pruned from the index
    reg.leave("b")
    assert reg.live() == []


def test_worker_record_expires_after_three_missed_beats(rt: Runtime) -> None:
    reg = WorkerRegistry(rt.redis, rt.keys)
    reg.beat(WorkerRecord(name="a", host="h", pid=1, repos=["api"], beat=2.0))
    ttl = rt.redis.pttl(rt.keys.worker("a"))
    assert 5000 < ttl <= 6000


def test_an_embedded_server_is_scanned_for_lost_messages(tmp_path: Path) -> None:
    """Embedded mode's queues are a real Redis's now: a message prefetched by a process
    that was killed is lost there as in the distributed mode, and is sent again."""
    from coordination.connection.embedded_server import release
    from coordination.settings import Settings
    from coordination.sweeps.lost import resend_lost_messages

    catalog = chain_catalog(tmp_path)
    settings = Settings(lost_after=0.2, worker_heartbeat=0.1)
    runtime = Runtime.create(settings, catalog=catalog)  # the catalog's own server
    assert runtime.settings.embedded and runtime.url is not None
    runtime.dispatcher = CeleryDispatcher(StubApp(), runtime.keys)
    try:
        sid = start(runtime, catalog)
        age_queued(runtime, sid, "TODO-001", 5)  # its message is nowhere
        cps = runtime.checkpoints.get_all(sid, ["TODO-001"])
        forget_looks(runtime, sid)
        assert resend_lost_messages(runtime, spec_of(runtime, sid), cps, time.time()) == []
        assert runtime.checkpoints.get(sid, "TODO-001").get("suspect_at")  # looked: suspect
        cps = runtime.checkpoints.get_all(sid, ["TODO-001"])
        forget_looks(runtime, sid)
        later = time.time() + 1
        assert resend_lost_messages(runtime, spec_of(runtime, sid), cps, later) == ["TODO-001"]
    finally:
        runtime.redis.flushdb()
        release(runtime.url)


def test_a_look_marks_its_suspects_in_one_write_and_never_a_todo_started_since(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages a look finds nowhere make their todos suspect, in one script call; a
    todo a worker started after the pass read the checkpoints (its message left the
    queue for the worker) is not one."""
    from coordination.sweeps.lost import resend_lost_messages

    sid = start(rt, chain_catalog(tmp_path))
    spec = spec_of(rt, sid)
    for tid in ("TODO-001", "TODO-004"):
        age_queued(rt, sid, tid, 5)
    cps = rt.checkpoints.get_all(sid, list(spec.todos))  # what the pass read
    run_as_worker(rt, sid, "TODO-004", "jobs")  # ...then a worker took TODO-004
    calls: list[str] = []
    real = rt.checkpoints._update

    def update(todo_ids: list[str], *a: Any) -> int:
        calls.append(",".join(todo_ids))
        return int(real(todo_ids, *a))

    monkeypatch.setattr(rt.checkpoints, "_update", update)
    assert resend_lost_messages(rt, spec, cps, time.time()) == []
    assert calls == ["TODO-001,TODO-004"]  # one write for both
    assert rt.checkpoints.get(sid, "TODO-001").get("suspect_at")
    assert rt.checkpoints.get(sid, "TODO-004").get("suspect_at") is None
    assert status(rt, sid, "TODO-004") == "running"
