"""Small runtime defects, each pinned: retention, visibility timeout, output tails,
checkouts with ``~``, and when following a resumed sweep ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.catalog.models import Repo, checkout_path
from coordination.runtime.context import Runtime
from coordination.sweeps.progress import finish_if_done as maybe_finish
from coordination.sweeps import SweepService, ended_by
from tests.unit.support.sweeps import PLAN, write_catalog
from workers.runner import WorkerInfo, run_todo

pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True)]


def finish_all(rt: Runtime, sid: str, ids: list[str], status: str = "succeeded") -> None:
    for t in ids:
        assert rt.checkpoints.set_status_if(sid, t, status, {"pending", "queued"},
                                            finished_at=time.time())
        rt.checkpoints.count_terminal(sid)
    assert maybe_finish(rt, sid) is not None


def sweep_keys(rt: Runtime, sid: str) -> list[str]:
    """Every key the sweep has (its todos' checkpoints are fields of the first)."""
    keys = [rt.keys.sweep(sid), rt.keys.sweep_events(sid)]
    assert sorted(str(k) for k in rt.redis.keys(f"*{sid}*")) == sorted(
        [*keys, rt.keys.supervisor_lock(sid)] if rt.redis.exists(rt.keys.supervisor_lock(sid))
        else keys)
    return keys


def test_finished_sweep_expires_after_retention_and_resume_keeps_it(
    rt: Runtime, tmp_path: Path
) -> None:
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"},
                                           {"id": "TODO-002", "repo": "api", "run": "true"}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    ids = ["TODO-001", "TODO-002"]
    assert all(rt.redis.ttl(k) == -1 for k in sweep_keys(rt, sid))  # running: kept
    finish_all(rt, sid, ids, "failed")
    want = rt.settings.retention_days * 86400
    ttls = [rt.redis.ttl(k) for k in sweep_keys(rt, sid)]
    assert all(want - 60 < t <= want for t in ttls), ttls
    svc.resume(sid)
    assert all(rt.redis.ttl(k) == -1 for k in sweep_keys(rt, sid))


def test_retention_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.errors import SettingsError
    from coordination.settings import load_settings

    monkeypatch.setenv("COORD_RETENTION_DAYS", "0.5")
    assert load_settings().retention_days == 0.5
    monkeypatch.setenv("COORD_RETENTION_DAYS", "0")
    with pytest.raises(SettingsError, match="COORD_RETENTION_DAYS"):
        load_settings()


def test_visibility_timeout_is_a_setting() -> None:
    from coordination.settings import Settings
    from workers.app import create_app

    dflt = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert dflt.conf.broker_transport_options["visibility_timeout"] >= 4800
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", visibility_timeout=120))
    assert app.conf.broker_transport_options["visibility_timeout"] == 120


def test_status_keeps_the_configured_tail_and_reports_byte_counts(
    rt: Runtime, tmp_path: Path
) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "python3 -c \"print('x' * 20000)\""}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    run_todo(rt, sid, "TODO-001", WorkerInfo(repo=None, name="w"))
    todo = svc.status(sid)["todos"]["TODO-001"]
    assert todo["status"] == "succeeded"
    assert todo["output_tail"].count("x") == 20000  # 4 KiB used to be all that was kept
    assert todo["stdout_bytes"] == 20001 and todo["stderr_bytes"] == 0


def test_checkout_paths_expand_home_in_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    base = tmp_path / "cat"
    assert Repo(name="api", path="~/src/api").checkout(base) == tmp_path / "home/src/api"
    assert Repo(name="api").checkout(base) == base / "api"
    assert Repo(name="api", path="repos/../api").checkout(base) == base / "api"
    assert checkout_path("/abs/x", base) == Path("/abs/x")


def test_sweep_spec_records_the_expanded_checkout(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "pwd"}])
    doc = yaml.safe_load(cat.read_text())
    doc["repos"][0]["path"] = "~/src/api"
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "home/src/api").mkdir(parents=True)
    spec = SweepService(rt, cat).plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    assert spec.todos["TODO-001"].path == str(tmp_path / "home/src/api")


def test_following_a_resumed_sweep_ends_only_with_its_current_run(
    rt: Runtime, tmp_path: Path
) -> None:
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "false"}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    finish_all(rt, sid, ["TODO-001"], "failed")
    first_end = [e for e in rt.events.read(sweep_id=sid) if e.kind == "sweep.finished"]
    assert len(first_end) == 1 and ended_by(rt, sid, first_end[0])
    svc.resume(sid)
    # The replay still holds run 0's end; the sweep is active again: not the end.
    assert not ended_by(rt, sid, first_end[0])
    finish_all(rt, sid, ["TODO-001"])
    ends = [e for e in rt.events.read(sweep_id=sid) if e.kind == "sweep.finished"]
    # A follower that starts after run 1 ended too must read past run 0's end.
    assert [ended_by(rt, sid, e) for e in ends] == [False, True]
    rt.redis.delete(rt.keys.sweep(sid), rt.keys.sweep_events(sid))  # its retention ran out
    assert ended_by(rt, sid, first_end[0])  # a sweep that is gone ends a follow too


def test_out_of_tree_checkouts_are_flagged_and_shown_normalised(tmp_path: Path) -> None:
    import yaml

    from coordination.catalog.file.store import CatalogStore
    from coordination.catalog.manager import CoordinationManager
    from coordination.planner.validate import validate_plan

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"},
                                           {"id": "TODO-002", "repo": "web", "run": "true"}],
                        repos=("api", "web", "jobs"))
    doc = yaml.safe_load(cat.read_text())
    doc["repos"][0]["path"] = "repos/../../../../etc"   # climbs out
    doc["repos"][1]["path"] = "/srv/web"                 # absolute: normal
    doc["repos"][2]["path"] = "../jobs"                  # out too, but not in the plan
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))
    found = [f for f in validate_plan(CatalogStore(cat).load(), PLAN) if f.code == "checkout-outside"]
    assert [(f.severity, f.ids) for f in found] == [("warning", ["api"])]
    assert "climbs out" in found[0].message and "../../../etc" in found[0].message
    m = CoordinationManager(cat)
    shown = {r.name: str(m.reads.checkout(r)) for r in m.reads.list_repos()}
    assert ".." not in shown["api"] and shown["web"] == "/srv/web"
