"""A sweep's tally (lua/_common.lua) and the summary `sweep status` reads from it.

The tally counts a sweep's todos per status and lists those in an attention status; the
transition scripts move it with every status change. Whatever happens to the todos
(starts, outcomes, retries, lost runs, poison, skips, cancels, gates, resumes and
rollbacks resetting them), it must equal what the checkpoints say, and the summary read
from it must equal the one made from the full status document.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from coordination.cli.sweep_render import render_status, render_summary
from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.runtime.leases import Lease
from coordination.runtime.scripts import lua
from coordination.runtime.sweep_fields import tally_bucket
from coordination.runtime.transitions import GateOpening
from coordination.status import ATTENTION, NOT_STARTED, TodoStatus
from coordination.sweeps import SweepService, reading
from coordination.sweeps import summary as sm
from coordination.sweeps.spec_store import load_spec
from tests.unit.support.sweeps import PLAN, StubApp, fresh_runtime, write_catalog

pytestmark = [pytest.mark.timeout(300), pytest.mark.rt(stub=True)]

T = TodoStatus
REPOS = ("api", "web", "jobs")


def catalog(root: Path, n: int, *, chain: bool = False, repos: tuple[str, ...] = REPOS
            ) -> Path:
    """``n`` todos over ``repos`` (with ``chain``, every third after the one before it:
    TODO-002 after TODO-001, in another repo)."""
    return write_catalog(root, [
        {"id": f"TODO-{i:03d}", "repo": repos[i % len(repos)], "run": "true",
         **({"blocked_by": [f"TODO-{i - 1:03d}"]} if chain and i % 3 == 2 else {})}
        for i in range(n)], repos=repos)


def truth(rt: Runtime, sid: str, todos: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Counts per status and the attention todos, from the checkpoints themselves."""
    statuses = {t: str((rt.checkpoints.get(sid, t) or {}).get("status")) for t in todos}
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s] = counts.get(s, 0) + 1
    return counts, {t: s for t, s in statuses.items() if s in ATTENTION}


def assert_tally_true(rt: Runtime, sid: str, todos: list[str]) -> None:
    _rec, tally = rt.checkpoints.get_tally(sid, ())
    assert tally is not None
    counts, attention = truth(rt, sid, todos)
    assert tally["counts"] == counts
    assert tally["attention"] == attention


class Driver:
    """Moves the todos of one sweep by the transition scripts, as workers, supervisors,
    cancels, resumes and rollbacks do."""

    def __init__(self, rt: Runtime, sid: str,
                 breakers: dict[str, tuple[int, float]] | None = None) -> None:
        self.rt, self.sid = rt, sid
        # By default a failure opens api's breaker (its todos are held); two in a row
        # open web's, whose cooldown is over at once (its next start is a probe).
        self.breakers = {"api": (1, 3600.0), "web": (2, 0.0)} if breakers is None else breakers
        spec = load_spec(rt, sid)
        assert spec is not None
        self.spec = spec
        self.todos = list(self.spec.todos)
        self.leases: dict[str, Lease] = {}
        self.votes: dict[str, str] = {}

    def repo(self, t: str) -> str:
        return self.spec.todos[t].repo

    def do(self, op: str, i: int, pick: int) -> None:
        rt, sid = self.rt, self.sid
        held = sorted(self.leases)
        if op in ("finish", "lose", "die", "unstart") and held:
            t = held[i % len(held)]  # (one of the todos it runs)
        else:
            t = self.todos[i % len(self.todos)]
        now = time.time()
        brk = self.breakers.get(self.repo(t))
        if op == "queue":
            rt.transitions.queue(sid, [(t, self.spec.todos[t].queue)], via="test",
                                 allowed_from=(T.pending, T.held, T.queued))
        elif op == "start":
            st = rt.transitions.start(sid, t, repo=self.repo(t), concurrency=2,
                                      preds=self.spec.todos[t].preds, worker="w1", max_lost=2,
                                      breaker=brk, now=now)
            if st.lease is not None:
                self.leases[t] = st.lease
        elif op == "finish" and t in self.leases:
            status = (T.succeeded, T.failed, T.cached)[pick % 3]
            rt.transitions.finish(sid, t, lease=self.leases.pop(t), status=status,
                                  fields={"exit_code": 0 if status != T.failed else 1,
                                          "output_tail": f"--- stderr ---\nrun of {t}\n"},
                                  event={}, breaker=brk, now=now,
                                  successors=[(s, self.spec.todos[s].queue)
                                              for s in self.spec.todos[t].succs])
        elif op == "lose" and t in self.leases:  # its worker died: the supervisor sees it
            lease = self.leases.pop(t)
            rt.redis.delete(lease.key)
            rt.transitions.lost(sid, t, repo=self.repo(t), token=lease.token, max_lost=2,
                                now=now, why="lease expired", breaker=brk)
        elif op == "die" and t in self.leases:  # ... or its next delivery takes it over
            rt.redis.delete(self.leases.pop(t).key)
        elif op == "unstart" and t in self.leases:
            rt.transitions.unstart(sid, t, token=self.leases.pop(t).token, why="no replica")
        elif op == "end":
            status = (T.skipped, T.cancelled)[pick % 2]
            rt.transitions.end(sid, [(t, -1)], status, NOT_STARTED, event={"reason": "test"})
        elif op == "cancel_running":  # a cancel finding its worker gone
            rt.checkpoints.set_status_if(sid, t, T.cancelled, {T.running},
                                         reason="its worker was gone")
        elif op == "reset":  # a resume (or a rollback) runs it again
            rt.checkpoints.reset_todos(sid, [t], status=T.pending, reason=None,
                                       finished_at=None, exit_code=None)
        elif op == "gate":
            rt.transitions.open_gates(sid, [GateOpening(t, "b1", None, 1)],
                                      allowed_from=(T.pending, T.queued))
        elif op == "decide":
            seen = rt.checkpoints.gate_read(sid, t)[1]
            decision = ("approve", "reject")[pick % 2]
            rt.transitions.decide_gate(sid, t, who=f"u{pick}", decision=decision, binding="b1",
                                       seen=seen, counted=[f"u{pick}"] if pick % 2 == 0 else [],
                                       vote={"d": decision, "b": "b1", "at": now})


OPS = ("queue", "start", "start", "start", "finish", "finish", "finish", "lose", "die",
       "unstart", "end", "cancel_running", "reset", "gate", "decide")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(steps=hs.lists(hs.tuples(hs.sampled_from(OPS), hs.integers(0, 8), hs.integers(0, 5)),
                      min_size=10, max_size=80))
def test_every_transition_keeps_the_tally_equal_to_the_checkpoints(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int, int]]) -> None:
    from coordination.connection.client import reset_embedded
    from coordination.runtime.context import get_runtime

    rt = fresh_runtime()
    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    try:
        cat = catalog(tmp_path_factory.mktemp("tally") / "eco", 9, chain=True)
        sid = SweepService(rt, cat).start(PLAN, strategy="eager", ignore_blockers=True)
        d = Driver(rt, sid)
        assert_tally_true(rt, sid, d.todos)
        for op, i, pick in steps:
            d.do(op, i, pick)
            assert_tally_true(rt, sid, d.todos)
    finally:
        reset_embedded()
        get_runtime.cache_clear()


def test_a_sweep_s_life_keeps_its_tally_true(rt: Runtime, tmp_path: Path) -> None:
    """A run, its failure, a resume, a rollback of what succeeded: counted all along."""
    cat = catalog(tmp_path / "eco", 60)
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, strategy="levels", ignore_blockers=True)
    d = Driver(rt, sid)
    for i in range(12):
        d.do("start", i, 0)
    for n, t in enumerate(list(d.leases)):
        d.do("finish", d.todos.index(t), n)
        assert_tally_true(rt, sid, d.todos)
    svc.cancel(sid, wait=0)
    assert_tally_true(rt, sid, d.todos)
    assert rt.checkpoints.get_tally(sid, ())[1]["counts"].get(T.cancelled, 0) >= 48  # type: ignore[index]
    svc.resume(sid)
    assert_tally_true(rt, sid, d.todos)
    _rec, tally = rt.checkpoints.get_tally(sid, ())
    assert tally is not None and not tally["attention"]  # every failure and cancel runs again


def test_python_and_lua_put_a_todo_in_the_same_bucket(rt: Runtime) -> None:
    ids = ["TODO-001", "TODO-010[api]", "TODO-010[svc-09999]", "RUN-s0001", "TODO-7[é-ü]", ""]
    body = ("local out = {} for i, t in ipairs(ARGV) do out[i] = tally_bucket(t) end "
            "return cjson.encode(out)")
    text = lua("todo_update").text.split("\nlocal todos = ", 1)[0] + "\n" + body
    assert json.loads(str(rt.redis.eval(text, 0, *ids))) == [tally_bucket(t) for t in ids]


def test_a_status_moved_without_the_tally_read_is_an_error(rt: Runtime, tmp_path: Path) -> None:
    """A script that would change a status without reading the tally fails, writing
    nothing: checkpoint_write is for a holder's fields, never its status."""
    cat = catalog(tmp_path / "eco", 3)
    sid = SweepService(rt, cat).start(PLAN, strategy="levels", ignore_blockers=True)
    st = rt.transitions.start(sid, "TODO-000", repo="api", concurrency=1, preds=[], worker="w1")
    assert st.lease is not None
    with pytest.raises(Exception, match="without the tally read"):
        rt.checkpoints.write(sid, "TODO-000", {"status": "succeeded"}, lease=st.lease)
    assert (rt.checkpoints.get(sid, "TODO-000") or {}).get("status") == T.running


# -- the summary read from the tally is the one the full read gives -----------------------
def big_sweep(rt: Runtime, tmp_path: Path, n: int = 120) -> tuple[str, Driver]:
    """A sweep of ``n`` todos in every kind of state people look at: failed ones with
    output (more than are shown), running ones, held (a breaker opened), skipped,
    cancelled, cached, succeeded, queued."""
    repos = tuple(f"r{k:02d}" for k in range(40))
    cat = catalog(tmp_path / "eco", n, repos=repos)
    sid = SweepService(rt, cat).start(PLAN, strategy="levels", ignore_blockers=True)
    d = Driver(rt, sid, breakers={r: (2, 3600.0) for r in repos})
    for i in range(85):  # (two failures in a row in a repo open its breaker: held)
        d.do("start", i, 0)
        t = d.todos[i]
        if t in d.leases and i % 20:  # every 20th stays running
            d.do("finish", i, 1 if i % 4 in (1, 2) else 0 if i % 3 else 2)
    for i in range(90, 100):
        d.do("end", i, i)
    return sid, d


def test_the_summary_of_a_big_sweep_equals_the_full_read(rt: Runtime, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    sid, d = big_sweep(rt, tmp_path)
    counts, attention = truth(rt, sid, d.todos)
    assert counts.get(T.failed, 0) > sm.MOST_FAILED_SHOWN  # some named only
    assert {T.running, T.failed, T.held, T.skipped, T.cancelled} <= set(attention.values())
    fast = sm.summary(rt, sid)
    full = sm.summarize(reading.status(rt, sid))
    assert fast is not None
    assert fast == full
    assert fast["counts"] == {s: n for s, n in counts.items()}
    assert fast["attention"] == len(attention)
    assert [r["todo"] for r in fast["rows"]] == sm.attention_order(attention)[:sm.MOST_ROWS]
    render_summary(fast, lines=3)
    quick = capsys.readouterr().out
    render_status(reading.status(rt, sid), lines=3)
    assert capsys.readouterr().out == quick
    assert "more that did not succeed" in quick and "more failed:" in quick


def test_a_big_push_started_sweep_s_summary_names_its_push(
        rt: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Since #63 a push runs only its repos' todos: the summary view says so, as the
    # full view does, and its JSON carries the trigger.
    from coordination.sweeps.planning import new_sweep_id
    from coordination.sweeps.starts.triggers import push_trigger

    cat = catalog(tmp_path / "eco", sm.MOST_ROWS + 5)
    svc = SweepService(rt, cat)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    pushed = push_trigger("r00", "main", "abc1234", ["r00", "r01"])
    sid = svc.start_spec(spec, new_sweep_id(PLAN), trigger=pushed)
    fast = sm.summary(rt, sid)
    assert fast is not None and fast["trigger"] == pushed
    assert fast == sm.summarize(reading.status(rt, sid))
    render_summary(fast)
    assert ("started by a push to r00 (main at abc1234): the plan's todos of r00, r01"
            in capsys.readouterr().out)
    by_command = svc.start(PLAN, strategy="levels", ignore_blockers=True, again=True)
    plain = sm.summary(rt, by_command)
    assert plain is not None and plain["trigger"] == {"kind": "cli"}
    render_summary(plain)
    assert "started by a push" not in capsys.readouterr().out


def test_the_summary_reads_no_spec_and_only_the_todos_it_shows(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sid, _d = big_sweep(rt, tmp_path, n=400)
    fields: list[str] = []
    real = rt.redis.hmget

    def hmget(key: Any, keys: Any, *args: Any) -> Any:
        fields.extend(str(k) for k in ([keys] if isinstance(keys, str) else keys))
        return real(key, keys, *args)

    monkeypatch.setattr(rt.redis, "hmget", hmget)
    monkeypatch.setattr(reading, "load_spec", lambda *a, **k: pytest.fail("read the spec"))
    fast = sm.summary(rt, sid)
    assert fast is not None
    assert "spec" not in fields
    shown = {f[2:] for f in fields if f.startswith("t:")}
    assert len(shown) <= sm.MOST_ROWS + sm.MOST_FAILED_SHOWN
    assert {r["todo"] for r in fast["rows"]} <= shown


def test_what_the_summary_cannot_say_is_read_in_full(rt: Runtime, tmp_path: Path) -> None:
    sid, _d = big_sweep(rt, tmp_path)
    assert sm.summary(rt, sid) is not None
    key = rt.keys.sweep(sid)
    # A tally that does not add up (a worker of before it moved a status): not shown.
    rt.redis.hincrby(key, "n:running", 1)
    assert sm.summary(rt, sid) is None
    rt.redis.hincrby(key, "n:running", -1)
    assert sm.summary(rt, sid) is not None
    # A sweep of before the tally, with gates, or rolling back: its parts need the spec.
    for field, value in (("shape", {"gates": 1, "waves": 0, "mode": "run"}),
                         ("shape", {"gates": 0, "waves": 2, "mode": "run"}),
                         ("shape", {"gates": 0, "waves": 0, "mode": "rollback"})):
        old = rt.redis.hget(key, field)
        rt.redis.hset(key, field, json.dumps(value))
        assert sm.summary(rt, sid) is None
        rt.redis.hset(key, field, str(old))
    rt.redis.hdel(key, "tally")
    assert sm.summary(rt, sid) is None
    # A small sweep is read in full (every todo is a row).
    small = SweepService(rt, catalog(tmp_path / "small", 10)).start(
        PLAN, strategy="levels", ignore_blockers=True)
    assert sm.summary(rt, small) is None


def test_an_unknown_sweep_is_an_error(rt: Runtime) -> None:
    from coordination.errors import NotFoundError

    with pytest.raises(NotFoundError):
        sm.summary(rt, "PLAN-001-20200101000000-dead")
