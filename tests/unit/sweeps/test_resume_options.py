"""`sweep resume --dry-run` and `--only`, on real embedded sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.errors import NotFoundError, UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, counting, repos_of, runs, write_catalog  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def failed_sweep(rt: Runtime, tmp_path: Path) -> tuple[SweepService, str, Path]:
    """TODO-001 ok; TODO-002 fails -> TODO-003 skipped; TODO-004 fails on its own; TODO-005 ok."""
    from workers.embedded import embedded_workers

    counts = tmp_path / "counts"
    counts.mkdir()
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001")},
        {"id": "TODO-002", "repo": "api", "run": counting(counts, "TODO-002", "test -f ok"),
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": counting(counts, "TODO-003"),
         "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": counting(counts, "TODO-004", "test -f ok")},
        {"id": "TODO-005", "repo": "jobs", "run": counting(counts, "TODO-005")},
    ])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "failed"
    return svc, sid, counts


def test_dry_run_lists_what_would_rerun_and_changes_nothing(rt: Runtime, tmp_path: Path) -> None:
    svc, sid, counts = failed_sweep(rt, tmp_path)
    before = svc.status(sid)
    out = svc.resume(sid, dry_run=True)
    assert out["dry_run"] is True
    assert out["rerun"] == ["TODO-002", "TODO-003", "TODO-004"]
    assert out["was"] == {"TODO-002": "failed", "TODO-003": "skipped", "TODO-004": "failed"}
    assert out["keep"] == ["TODO-001", "TODO-005"]
    after = svc.status(sid)
    assert after["status"] == "failed" and after["todos"] == before["todos"]
    assert after["run"] == before["run"]


def test_only_limits_the_resume_to_those_todos_and_their_dependents(
    rt: Runtime, tmp_path: Path
) -> None:
    from workers.embedded import embedded_workers

    svc, sid, counts = failed_sweep(rt, tmp_path)
    preview = svc.resume(sid, only=["TODO-002"], dry_run=True)
    assert preview["rerun"] == ["TODO-002", "TODO-003"] and preview["dependents"] == ["TODO-003"]
    for repo in ("api", "jobs"):
        (tmp_path / "eco" / "repos" / repo / "ok").write_text("")
    with embedded_workers(rt, repos_of(svc)):
        out = svc.resume(sid, only=["TODO-002"])
        assert out["rerun"] == ["TODO-002", "TODO-003"]
        st = svc.wait(sid, timeout=60)
    todos = {t: v["status"] for t, v in st["todos"].items()}
    assert todos == {"TODO-001": "succeeded", "TODO-002": "succeeded", "TODO-003": "succeeded",
                     "TODO-004": "failed", "TODO-005": "succeeded"}
    assert st["status"] == "failed"  # TODO-004 was left out, and is still failed
    assert runs(counts, "TODO-004") == 1 and runs(counts, "TODO-001") == 1
    assert runs(counts, "TODO-002") == 2 and runs(counts, "TODO-003") == 1


def test_only_refuses_unknown_todos(rt: Runtime, tmp_path: Path) -> None:
    svc, sid, _ = failed_sweep(rt, tmp_path)
    with pytest.raises(NotFoundError, match="TODO-999"):
        svc.resume(sid, only=["TODO-999"], dry_run=True)


def test_dry_run_is_allowed_while_running_but_resume_is_not(rt: Runtime, tmp_path: Path) -> None:
    from tests.unit.support.sweeps import StubApp

    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    assert svc.resume(sid, dry_run=True)["rerun"] == ["TODO-001"]
    with pytest.raises(UsageError, match="still"):
        svc.resume(sid)
