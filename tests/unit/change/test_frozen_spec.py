"""The sweep's spec as the landing rule reads it (FrozenSpec, parsed once from the
JSON a sweep signs): what it runs digests as the sweep's own count digests it, and the
last run that dispatched each todo is the one the sweep says."""

from __future__ import annotations

import pytest

from coordination.change.landing_evidence import FrozenSpec
from coordination.sweeps.spec import SweepSpec, TodoSpec

pytestmark = pytest.mark.timeout(30)


def spec(mode: str = "run") -> SweepSpec:
    todos = {
        "TODO-001": TodoSpec("TODO-001", "api", "q.api", "make", 60.0, 0, env={"A": "1"},
                             succs=["TODO-002"]),
        "TODO-002": TodoSpec("TODO-002", "api", "q.api", "", 0.0, 0, preds=["TODO-001"],
                             gate={"approvals": 2, "from": ["ann"], "starter_may_approve": True,
                                   "expires": None, "on_expiry": "cancel"}),
    }
    return SweepSpec("s-1", "PLAN-001", "dag", 2, todos, [["TODO-002"]], {"api": 1},
                     mode=mode, dispatched={"TODO-001": 1})


def test_the_spec_a_sweep_signs_reads_as_the_sweep_says_it() -> None:
    s = spec()
    frozen = FrozenSpec.from_json(s.to_json())
    assert frozen is not None and not frozen.rollback
    assert sorted(frozen.todos) == ["TODO-001", "TODO-002"]
    assert frozen.digest == s.digest
    assert [frozen.last_run(t, s.run) for t in sorted(s.todos)] == [
        s.last_run(t) for t in sorted(s.todos)] == [1, 2]
    assert frozen.todo("TODO-002")["gate"]["approvals"] == 2 and frozen.todo("TODO-9") == {}
    rollback = FrozenSpec.from_json(spec("rollback").to_json())
    assert rollback is not None and rollback.rollback


def test_a_spec_without_its_todos_is_unreadable() -> None:
    assert FrozenSpec.from_json("not json") is None
    assert FrozenSpec.from_json("[]") is None
    assert FrozenSpec.from_json('{"todos": []}') is None
