"""`coord doctor`'s checks: each judged on facts handed to it, the worker clock reading on
the stand-in, a check that breaks, and the command embedded (the wheel's server, which
coord configures right)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from coordination.connection.server_facts import ServerFacts
from coordination.ops import doctor
from coordination.ops.doctor import Doctor, Finding, Level
from coordination.runtime.context import Runtime
from coordination.runtime.workers import WorkerRecord
from coordination.settings import Settings
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)

GOOD = ServerFacts(version="7.2.4", role="master", maxmemory_policy="noeviction", maxmemory=0,
                   used_memory=2**20, total_system_memory=2**30, aof_enabled=True, rdb_save="",
                   latency_ms=0.1, latency_max_ms=0.3, clock_offset=0.001)


class Facts(Doctor):
    """A doctor whose server facts are given (no Redis)."""

    def __init__(self, facts: ServerFacts, **kw: object) -> None:
        super().__init__(Settings(redis_url="redis://h:6379/0"), Path("eco.yaml"), **kw)  # type: ignore[arg-type]
        self.given = facts

    def facts(self) -> ServerFacts:
        return self.given


def levels(check: doctor.Check, **changes: object) -> list[Level]:
    facts = ServerFacts(**{**GOOD.__dict__, "refused": {}, **changes})  # type: ignore[arg-type]
    return [f.level for f in check(Facts(facts))]


def test_each_redis_setting_is_judged() -> None:
    assert levels(doctor.check_version) == [Level.ok]
    assert levels(doctor.check_version, version="6.0.9") == [Level.problem]
    assert levels(doctor.check_version, version=None) == [Level.not_checked]
    assert levels(doctor.check_eviction, maxmemory_policy="volatile-lru") == [Level.problem]
    assert levels(doctor.check_eviction) == [Level.ok]
    assert levels(doctor.check_persistence) == [Level.ok]
    assert levels(doctor.check_persistence, aof_enabled=False) == [Level.problem]
    assert levels(doctor.check_persistence, aof_enabled=False, rdb_save="3600 1") == [Level.warning]
    assert levels(doctor.check_persistence, aof_last_write_ok=False) == [Level.problem]
    assert levels(doctor.check_memory, maxmemory=2**21, used_memory=int(0.8 * 2**21)) == [Level.warning]
    assert levels(doctor.check_memory, maxmemory=2**21, used_memory=int(0.95 * 2**21)) == [Level.problem]
    assert levels(doctor.check_memory) == [Level.ok]
    assert levels(doctor.check_latency, latency_ms=80.0) == [Level.problem]
    assert levels(doctor.check_role, role="slave") == [Level.problem]
    assert levels(doctor.check_role) == []


def test_every_problem_says_how_to_fix_it() -> None:
    bad = ServerFacts(version="5.0.7", role="slave", maxmemory_policy="allkeys-lru",
                      maxmemory=100, used_memory=99, aof_enabled=False, rdb_save="",
                      latency_ms=90.0, latency_max_ms=90.0, clock_offset=9.0)
    d = Facts(bad)
    found = [f for name, check in doctor.CHECKS if name.startswith(("redis.", "clock"))
             for f in doctor.run(d, [(name, check)])]
    problems = [f for f in found if f.level == Level.problem]
    assert {f.check for f in problems} >= {"redis.role", "redis.version",
                                           "redis.maxmemory-policy", "redis.persistence",
                                           "redis.memory", "redis.latency", "clock"}
    assert all(f.fix for f in problems), problems


def test_a_sentinel_url_reports_its_replicas_and_quorum(monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.connection.sentinel import SentinelFacts

    d = Facts(GOOD)
    d.settings = Settings.model_construct(redis_url="sentinel://h:26379/0?master=m")
    given = SentinelFacts("m", answered=["h:26379"], address="10.0.0.1:6379", replicas=2,
                          sentinels=3, quorum=2, quorum_ok=True, quorum_says="OK")
    monkeypatch.setattr(doctor, "sentinel_facts", lambda url: given)

    def found() -> list[tuple[Level, str]]:
        return [(f.level, f.message) for f in doctor.check_sentinel(d)]

    assert [lv for lv, _ in found()] == [Level.ok]
    assert "2 replica(s) in sync, 3 sentinels, quorum 2" in found()[0][1]
    given.replicas, given.replicas_down = 1, 1
    assert [lv for lv, _ in found()] == [Level.warning, Level.ok]  # none left after a failover
    # No replica: workers go on (unconfirmed writes), so a warning that says so.
    given.replicas, given.replicas_down = 0, 0
    assert [lv for lv, _ in found()] == [Level.warning, Level.ok]
    assert "writes go on unconfirmed" in found()[0][1]
    given.quorum_ok, given.quorum_says = False, "NOQUORUM 1 usable Sentinels"
    problems = [f for f in doctor.check_sentinel(d) if f.level == Level.problem]
    assert len(problems) == 1 and "NOQUORUM" in problems[0].message, problems
    assert "SENTINEL CKQUORUM m" in problems[0].fix
    # Two of three sentinels silent while the one that answers still says OK (it has
    # not yet seen them down): no quorum all the same, a problem (0.3: a warning).
    given.replicas, given.quorum_ok, given.quorum_says = 2, True, "OK"
    given.answered, given.silent = ["h:26379"], ["h2:26379", "h3:26379"]
    problems = [f for f in doctor.check_sentinel(d) if f.level == Level.problem]
    assert len(problems) == 1 and "no quorum: 2 of 3 sentinels did not answer" in \
        problems[0].message, problems
    assert "SENTINEL CKQUORUM m" in problems[0].fix
    given.silent = ["h2:26379"]  # one of three silent: two can still agree
    assert [lv for lv, _ in found()] == [Level.warning, Level.ok]
    given.quorum_ok, given.quorum_says = None, "Timeout reading from socket"
    assert [lv for lv, _ in found()] == [Level.warning, Level.problem]  # unknown: fail closed
    given.quorum_ok = False
    given.silent, given.answered = ["h:26379"], []
    assert [lv for lv, _ in found()] == [Level.problem]
    given.answered, given.address, given.quorum_says = ["h:26379"], None, "No such master"
    assert "know no master 'm'" in found()[0][1]
    assert all(f.fix for f in doctor.check_sentinel(d) if f.level == Level.problem)
    assert doctor.check_sentinel(Facts(GOOD)) == []  # not a sentinel URL: nothing to say


def test_a_check_that_breaks_is_not_checked_and_the_rest_still_run() -> None:
    def broken(d: Doctor) -> list[Finding]:
        raise KeyError("surprise")

    found = doctor.run(Facts(GOOD), [("x", broken), ("redis.version", doctor.check_version)])
    assert [(f.check, f.level) for f in found] == [("x", Level.not_checked),
                                                   ("redis.version", Level.ok)]
    assert "surprise" in found[0].message


def test_worker_clock_skew_is_read_against_the_servers_clock(rt: Runtime) -> None:
    rec = WorkerRecord(name="w@far", host="far", pid=1, repos=["api"], beat=2.0)
    rt.workers.beat(rec)  # last_seen: this clock, now
    ahead = WorkerRecord(name="w@ahead", host="ahead", pid=2, repos=["api"], beat=2.0)
    rt.workers.beat(ahead)
    ahead.last_seen = time.time() + 5.0  # a clock 5 s ahead wrote its beat
    rt.redis.set(rt.keys.worker(ahead.name), ahead.to_json(), px=6000)
    skews = {c.record.name: c.skew for c in rt.worker_clocks()}
    assert skews["w@far"] is not None and abs(skews["w@far"]) < 0.5
    assert skews["w@ahead"] is not None and 4.5 < skews["w@ahead"] < 5.5

    d = Doctor(rt.settings, Path("eco.yaml"), runtime_factory=lambda: rt)
    d.settings = Settings.model_construct(**{**rt.settings.__dict__, "redis_url": "redis://x"})
    d._facts = GOOD  # type: ignore[misc]
    found = {f.check: f for f in doctor.check_worker_clocks(d)}
    assert found["clock.w@ahead"].level == Level.problem
    assert "ahead" in (found["clock.w@ahead"].fix or "")
    assert "clock.w@far" not in found


def test_embedded_doctor_passes_and_names_a_missing_checkout(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    r = coord(eco, "doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    found = {f["check"]: f for f in doc["findings"]}
    assert found["redis.maxmemory-policy"]["level"] == "ok"
    assert found["redis.persistence"]["level"] == "ok"
    assert found["checkout.web"]["level"] == "ok"
    assert doc["redis"].startswith("embedded")
    (tmp_path / "eco" / "repos" / "web").rmdir()
    r = coord(eco, "doctor", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    missing = {f["check"]: f for f in json.loads(r.stdout)["findings"]}["checkout.web"]
    assert missing["level"] == "problem" and "clone web there" in missing["fix"]


def test_a_keyed_worker_running_todos_as_root_is_warned_of(rt: Runtime) -> None:
    """#78: a root todo reads any process's environment and memory, the key with them."""
    for rec in (WorkerRecord(name="a-1@h", host="h", pid=1, repos=["a"], keyed=True,
                             todo_user="root", todos_as_root=True),
                WorkerRecord(name="b-2@h", host="h", pid=2, repos=["b"], keyed=True,
                             todo_user="coord-todo", todos_as_root=False),
                WorkerRecord(name="c-3@h", host="h", pid=3, repos=["c"], keyed=False,
                             todo_user="root", todos_as_root=True)):
        rt.workers.beat(rec)
    d = Doctor(rt.settings, Path("eco.yaml"), runtime_factory=lambda: rt)
    d.settings = Settings.model_construct(**{**rt.settings.__dict__, "redis_url": "redis://x"})
    found = doctor.check_todo_users(d)
    assert [(f.level, f.check) for f in found] == [(Level.warning, "workers.todo_user")]
    assert "a-1@h" in found[0].message and "--todo-user" in (found[0].fix or "")

    rt.workers.leave("a-1@h")
    d = Doctor(rt.settings, Path("eco.yaml"), runtime_factory=lambda: rt)  # (reads cached)
    d.settings = Settings.model_construct(**{**rt.settings.__dict__, "redis_url": "redis://x"})
    assert [f.level for f in doctor.check_todo_users(d)] == [Level.ok]
