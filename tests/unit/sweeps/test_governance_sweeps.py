"""Gates and waves in an embedded sweep, eager strategy (the integration tests run the
levels strategy with real workers): a wave's todos wait for the wave before even with
no edge between them; an approved gate sends what it blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, repos_of, with_plan, write_catalog

pytestmark = pytest.mark.timeout(60)


def at(rt: Runtime, sid: str, kind: str, todo: str) -> float:
    return next(e.ts for e in rt.events.read(sweep_id=sid) if e.kind == kind and e.todo_id == todo)


def test_eager_waves_start_in_order(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    cat = with_plan(write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "sleep 0.2"},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-004", "repo": "web", "run": "true"},
    ], repos=("api", "web")), waves=[{"name": "one", "repos": ["api"]},
                                     {"name": "two", "repos": ["web"]}])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="eager")
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "succeeded", st
    # TODO-004 needs nothing, yet waits for wave one's last todo
    assert at(rt, sid, "todo.started", "TODO-004") >= at(rt, sid, "todo.succeeded", "TODO-002")
    assert [w["state"] for w in st["waves"]] == ["done", "done"]
    assert [e.kind for e in rt.events.read(sweep_id=sid) if e.kind.startswith("wave.")] == [
        "wave.started", "wave.done", "wave.started", "wave.done"]


def test_an_eager_gate_approved_sends_what_it_blocks(rt: Runtime, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "gate": {"approvals": 1, "starter_may_approve": False},
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
    ], repos=("api", "web"))
    monkeypatch.setenv("COORD_USER", "ana")
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="eager")
        rec = svc.record(sid)
        assert rec.get("started_by") == "ana"
        import time

        end = time.monotonic() + 20
        while svc.status(sid)["todos"]["TODO-002"]["status"] != "awaiting_approval":
            assert time.monotonic() < end, svc.status(sid)
            time.sleep(0.02)
        with pytest.raises(UsageError, match="started sweep"):
            svc.decide(sid, "TODO-002", "approve")  # ana, the starter
        with pytest.raises(UsageError, match="not a gate"):
            svc.decide(sid, "TODO-001", "approve", who="bo")
        out = svc.decide(sid, "TODO-002", "approve", who="bo", comment="ok")
        assert out["status"] == "succeeded" and out["approvals"] == ["bo"]
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "succeeded", st
    assert st["gates"]["TODO-002"]["votes"][0]["by"] == "bo"
    assert st["gates"]["TODO-002"]["votes"][0]["comment"] == "ok"


def test_a_resumed_gate_keeps_its_approvals_only_while_its_inputs_are_unchanged(
        rt: Runtime, tmp_path: Path) -> None:
    """An approval is bound to the spec's digest and the gate's predecessors' outcomes:
    resumed with the catalog as it was, the gate keeps bo's approval; resumed after a
    command of the sweep changed, it starts from none."""
    import time

    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "gate": {"approvals": 2}, "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "echo v1", "blocked_by": ["TODO-002"]},
    ], repos=("api", "web"))
    svc = SweepService(rt, cat)

    def gate_opened(approvals: list[str] | None = None) -> dict[str, Any]:
        """The gate once waiting (and, given ``approvals``, once the supervision pass
        counted the votes it carries over: only verified votes are approvals)."""
        end = time.monotonic() + 20
        while (g := svc.status(sid)["gates"]["TODO-002"])["status"] != "awaiting_approval" \
                or (approvals is not None and g["approvals"] != approvals):
            assert time.monotonic() < end, g
            time.sleep(0.02)
        return g

    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        gate_opened()
        assert svc.decide(sid, "TODO-002", "approve", who="bo")["approvals"] == ["bo"]
        svc.cancel(sid)
        svc.resume(sid)
        gate_opened(["bo"])  # same inputs: still approved by bo
        svc.cancel(sid)
        cat.write_text(cat.read_text().replace("echo v1", "echo v2"))
        svc.resume(sid)
        g = gate_opened()
        assert g["approvals"] == []  # what it would let through changed: approve again
        assert [v["current"] for v in g["votes"]] == [False]
        out = svc.decide(sid, "TODO-002", "approve", who="bo")  # bo may approve anew
        assert out["approvals"] == ["bo"] and out["status"] == "awaiting_approval"
        svc.decide(sid, "TODO-002", "approve", who="cy")
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "succeeded", st
