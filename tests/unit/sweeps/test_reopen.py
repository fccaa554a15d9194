"""A passed gate follows what it approved (sweeps/governance/gates.py ``reopened_by``): a resume
whose spec differs from its binding opens it again, and what the resume runs after
it waits, the succeeded todos between the gate and them included."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog

pytestmark = pytest.mark.timeout(90)


def test_a_resume_of_an_edited_spec_reopens_the_gate_and_what_follows_waits(
        rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "gate": {"approvals": 1}},
        {"id": "TODO-002", "repo": "api", "run": "echo deploy >> log",
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "api", "run": "exit 3", "blocked_by": ["TODO-002"]},
    ], repos=("api",))
    svc = SweepService(rt, cat)

    def status(todo: str, want: str) -> None:
        end = time.monotonic() + 20
        while svc.status(sid)["todos"][todo]["status"] != want:
            assert time.monotonic() < end, svc.status(sid)["todos"][todo]
            time.sleep(0.02)

    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        status("TODO-001", "awaiting_approval")
        svc.decide(sid, "TODO-001", "approve", who="bo")
        assert svc.wait(sid, timeout=30)["status"] == "failed"
        cat.write_text(cat.read_text().replace("exit 3", "echo fixed"))
        out = svc.resume(sid)
        assert out["reopened"] == ["TODO-001", "TODO-002"], out
        assert out["rerun"] == ["TODO-001", "TODO-002", "TODO-003"], out
        status("TODO-001", "awaiting_approval")
        todos = svc.status(sid)["todos"]
        assert todos["TODO-002"]["status"] == todos["TODO-003"]["status"] == "pending"
        svc.decide(sid, "TODO-001", "approve", who="cy")
        assert svc.wait(sid, timeout=30)["status"] == "succeeded"
