"""Two people approving a 2-of-N gate at once through the whole decision (seal, count
over verified votes, the script's compare-and-set): exactly one of them passes it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog

pytestmark = [pytest.mark.timeout(90), pytest.mark.signed(key="r" * 32)]


def test_two_approvers_at_once_pass_the_gate_once(keyed_rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    rt = keyed_rt
    cat = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "gate": {"approvals": 2, "from": ["ana", "bo", "cy"]}},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
    ], repos=("api",))
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        for _ in range(5):
            sid = svc.start(PLAN)
            end = time.monotonic() + 20
            while svc.status(sid)["todos"]["TODO-001"]["status"] != "awaiting_approval":
                assert time.monotonic() < end
                time.sleep(0.02)
            got: dict[str, str] = {}
            barrier = threading.Barrier(2)

            def approve(who: str) -> None:
                barrier.wait()
                got[who] = svc.decide(sid, "TODO-001", "approve", who=who)["status"]

            threads = [threading.Thread(target=approve, args=(w,)) for w in ("bo", "cy")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(got.values()) == ["awaiting_approval", "succeeded"], got
            st = svc.wait(sid, timeout=30)
            assert st["status"] == "succeeded", st
            assert st["gates"]["TODO-001"]["approvals"] == ["bo", "cy"]
            assert st["gates"]["TODO-001"]["refused"] == []
            started = [e for e in rt.events.read(sweep_id=sid)
                       if e.kind == "todo.started" and e.todo_id == "TODO-002"]
            assert len(started) == 1
