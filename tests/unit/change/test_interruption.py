"""Which landings and reverts are interrupted (coordination.change.reading.interruption):
only one whose recorded process is known to have ended on this host; never one alive,
one on another host (never guessed), or one that ended."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from coordination.change.reading import interruption
from coordination.runtime.change_records import LanderRecord, StepRecord
from coordination.runtime.changes import ChangeState
from coordination.processes import this_process

pytestmark = pytest.mark.timeout(30)


def state(st: str | None, lander: dict[str, Any] | None,
          steps: dict[str, dict[str, Any]] | None = None) -> ChangeState:
    return ChangeState({}, {}, {}, {r: StepRecord.of(s) for r, s in (steps or {}).items()}, st,
                       None, None, None, None,
                       lander=LanderRecord.of(lander) if lander else None)


@pytest.fixture(scope="module")
def dead() -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {**this_process(), "pid": proc.pid}


def test_a_landing_whose_process_ended_is_interrupted(dead: dict[str, Any]) -> None:
    got = interruption("PLAN-001", state("landing", {**dead, "op": "land"}))
    assert got is not None and got["state"] == "interrupted"
    assert got["resume"] == "coord change land PLAN-001"
    assert f"its process ended (pid {dead['pid']} on " in got["why"]
    alive = {**this_process(), "op": "land"}
    assert interruption("PLAN-001", state("landing", alive)) is None
    assert interruption("PLAN-001", state("landing", {**dead, "op": "land",
                                                      "host": "elsewhere"})) is None
    assert interruption("PLAN-001", state("landing", None)) is None  # a 0.4 landing
    # ended: landed (its lander is forgotten then; one left over says nothing)
    assert interruption("PLAN-001", state("landed", {**dead, "op": "land"})) is None


def test_a_revert_whose_process_ended_is_revert_interrupted(dead: dict[str, Any]) -> None:
    steps = {"api": {"state": "reverted", "by": "change revert"}, "core": {"state": "landed"}}
    got = interruption("PLAN-001", state("landed", {**dead, "op": "revert"}, steps))
    assert got is not None and got["state"] == "revert_interrupted"
    assert got["resume"] == "coord change revert PLAN-001"
    assert got["why"].startswith("the revert stopped half-way (reverted: api): its process")
    assert interruption("PLAN-001", state("landed", {**this_process(), "op": "revert"},
                                          steps)) is None
    # no process recorded (a 0.4 revert killed): its revert steps say it
    got = interruption("PLAN-001", state("landed", None, steps))
    assert got is not None and got["state"] == "revert_interrupted"
    assert interruption("PLAN-001", state("landed", None, {"core": {"state": "landed"}})) is None
    assert interruption("PLAN-001", state("revert_failed", None, steps)) is None


def test_a_lander_on_another_host_is_interrupted_once_its_lease_expired(rt: Any) -> None:
    """Another host's pid cannot be judged: its lease (renewed while it lands) can."""
    store = rt.changes
    elsewhere = {"host": "elsewhere", "pid": 4242, "started": "", "op": "land", "at": 0}
    store.begin_landing("PLAN-001", "{}", {})
    store.set_lander("PLAN-001", LanderRecord.of(elsewhere))
    st = store.read("PLAN-001")
    assert st.lander_alive is True and interruption("PLAN-001", st) is None
    store.beat_lander("PLAN-001")
    rt.redis.delete(rt.keys.change_lander("PLAN-001"))  # no renewal within its TTL
    got = interruption("PLAN-001", store.read("PLAN-001"))
    assert got is not None and got["state"] == "interrupted"
    assert "its lease expired: no word from pid 4242 on elsewhere" in got["why"]
    store.end_landing("PLAN-001", "landed", None)  # ended: lander and lease forgotten
    st = store.read("PLAN-001")
    assert st.lander is None and st.lander_alive is False and interruption("PLAN-001", st) is None
