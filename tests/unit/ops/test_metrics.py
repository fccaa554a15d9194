"""`coord metrics` / the web view's /metrics: what a scrape says after real sweeps, read
back through Prometheus's own parser."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.ui.app import create_app
from tests.unit.support.sweeps import PLAN, StubApp, fresh_runtime, run_sweep, write_catalog
from tests.unit.support.metrics import parse, scrape, three, value

pytestmark = pytest.mark.timeout(60)


def test_counters_after_a_sweep_and_they_live_in_redis(rt: Runtime, tmp_path: Path) -> None:
    eco = three(tmp_path / "eco")
    _svc, _sid, st = run_sweep(rt, eco)
    assert st["status"] == "failed"
    s = scrape(rt, eco)
    q = rt.keys.repo_queue
    assert value(s, "coord_redis_up") == 1
    assert value(s, "celery_task_sent_total", name="coord.run_todo", queue_name=q("api")) == 1
    assert value(s, "celery_task_sent_total", name="coord.run_todo", queue_name=q("web")) == 1
    assert value(s, "coord_todos_dispatched_total", repo="api") == 1  # no chain: as sent
    assert value(s, "celery_task_succeeded_total", name="coord.run_todo", queue_name=q("api")) == 1
    assert value(s, "celery_task_failed_total", name="coord.run_todo", queue_name=q("web")) == 1
    assert value(s, "celery_task_failed_total", name="coord.run_todo", queue_name=q("api")) == 0
    assert value(s, "coord_todos_ended_total", repo="web", status="skipped") == 1
    # the two runs that ran are in the histograms; the skipped one never ran
    assert value(s, "coord_todo_duration_seconds_count", repo="web") == 1
    assert value(s, "coord_todo_duration_seconds_bucket", repo="api", le="+Inf") == 1
    assert value(s, "celery_task_runtime_count", name="coord.run_todo", queue_name=q("api")) == 1
    assert value(s, "coord_sweeps", status="failed") == 1
    assert value(s, "coord_sweeps", status="running") == 0
    # a catalog repo, no worker; its queue named so a rule can join on it
    assert value(s, "coord_workers_live", repo="jobs", queue_name=q("jobs")) == 0
    assert value(s, "coord_lost_runs_total", repo="api") == 0
    assert value(s, "coord_unattended_repos") == 0
    # Another exporter (a fresh collector, no state of its own) reads the same counters.
    again = scrape(rt, None)
    assert value(again, "celery_task_failed_total", name="coord.run_todo",
                 queue_name=q("web")) == 1


def test_todos_in_flight_by_status_and_repo(rt: Runtime, tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [
        {"id": f"TODO-{i:03d}", "repo": "api" if i % 2 else "web", "run": "true",
         **({"blocked_by": ["TODO-001"]} if i == 8 else {})}
        for i in range(1, 9)])
    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)  # sent, never run
    sid = SweepService(rt, eco).start(PLAN, strategy="levels", ignore_blockers=True)
    rt.transitions.start(sid, "TODO-001", repo="api", concurrency=1, preds=[], worker="w")
    s = scrape(rt, eco)
    assert value(s, "coord_todos", status="running", repo="api") == 1
    assert value(s, "coord_todos", status="queued", repo="api") == 3
    assert value(s, "coord_todos", status="queued", repo="web") == 3
    assert value(s, "coord_todos", status="pending", repo="web") == 1  # its level waits
    assert value(s, "coord_todos", status="running", repo="web") == 0
    assert value(s, "coord_sweeps", status="running") + value(s, "coord_sweeps",
                                                              status="queued") == 1
    # queued work and no live worker: both repos are unattended
    assert value(s, "coord_unattended_repos") == 2


def test_a_breaker_open_and_a_lost_run(rt: Runtime, tmp_path: Path) -> None:
    rt.breakers.reset("api")
    rt.redis.hset(rt.keys.breaker("api"), "state", "open")
    rt.metrics.count_lost("api")
    s = scrape(rt, three(tmp_path / "eco"))
    assert value(s, "coord_repo_breaker_open", repo="api") == 1
    assert value(s, "coord_repo_breaker_open", repo="web") == 0
    assert value(s, "coord_lost_runs_total", repo="api") == 1


def test_redis_down_is_a_sample_not_a_failed_scrape(tmp_path: Path) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    rt = fresh_runtime()
    rt.redis = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                           retry=Retry(NoBackoff(), 0))
    assert value(scrape(rt, None), "coord_redis_up") == 0


def test_the_web_view_serves_metrics_behind_its_host_check_and_auth(rt: Runtime,
                                                                    tmp_path: Path) -> None:
    eco = three(tmp_path / "eco")
    run_sweep(rt, eco)
    app = create_app(rt, eco)
    r = TestClient(app, base_url="http://localhost").get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(parse(r.text), "coord_sweeps", status="failed") == 1
    assert TestClient(app, base_url="http://evil.example").get("/metrics").status_code == 400
    locked = TestClient(create_app(rt, eco, auth="u:p"), base_url="http://localhost")
    assert locked.get("/metrics").status_code == 401
    ok = locked.get("/metrics", headers={"Authorization": "Basic " + base64.b64encode(b"u:p").decode()})
    assert ok.status_code == 200


def test_statuses_are_counted_per_repo_from_raw_checkpoints() -> None:
    from coordination.runtime.metrics import TodoOwners, _count

    owners = TodoOwners.of({"A": "api", "B": "api", "C": "web", "D": "web", "E": "web"})
    tricky = '{"reason":"said \\"status\\":\\"failed\\"","status":"running"}'  # escaped quotes
    into: dict[tuple[str, str], int] = {}
    _count(into, owners, ['{"status":"queued"}', tricky, None, "{}", '{"status":"held"}'])
    assert into == {("queued", "api"): 1, ("running", "api"): 1, ("pending", "web"): 2,
                    ("held", "web"): 1}


def test_a_runs_own_counts_fold_into_the_namespaces_without_changing_a_scrape(
        rt: Runtime, tmp_path: Path) -> None:
    """A finish counts into its sweep's own field (no command of its own); the run's end
    folds it into the namespace's hash: the numbers a scrape shows do not move."""
    eco = three(tmp_path / "eco")
    _svc, sid, _st = run_sweep(rt, eco)
    assert rt.redis.hget(rt.keys.sweep(sid), "metrics") is None  # folded when it ended
    assert int(rt.redis.hget(rt.keys.metrics, "folds") or 0) == 1
    before = scrape(rt, eco)
    # As if the run had not been folded yet: the counts back in the sweep's own field.
    own = {k: v for k, v in rt.redis.hgetall(rt.keys.metrics).items()
           if k.startswith(("dur:", "dur_ms:"))}
    for k, v in own.items():
        rt.redis.hincrby(rt.keys.metrics, k, -int(v))
    rt.redis.hset(rt.keys.sweep(sid), "metrics", json.dumps(own))
    assert scrape(rt, eco) == before
    rt.metrics.fold(sid)
    assert scrape(rt, eco) == before
    rt.metrics.fold(sid)  # a second fold finds nothing
    assert scrape(rt, eco) == before


def test_a_finish_counts_into_its_repos_own_field_and_the_fold_moves_them_all(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A finish writes its repo's counts (``m:<repo>``), not one field of the whole run
    (at 10,000 repos a finish decoded and encoded 20,000 counts); a scrape before the
    fold reads them through the run's ``mrepos``, and the fold moves every repo's into
    the namespace's hash without changing a scrape."""
    eco = three(tmp_path / "eco")
    monkeypatch.setattr(type(rt.metrics), "fold", lambda self, sid: None)  # not yet
    _svc, sid, _st = run_sweep(rt, eco)
    monkeypatch.undo()
    h = rt.redis.hgetall(rt.keys.sweep(sid))
    assert json.loads(h["mrepos"]) == ["api", "web"]
    assert "metrics" not in h
    web = json.loads(h["m:web"])
    assert web["dur:web:failed:0"] == 1 and "dur:api:succeeded:0" not in web
    assert json.loads(h["m:api"])["dur:api:succeeded:0"] == 1
    assert not any(k.startswith("dur") for k in rt.redis.hgetall(rt.keys.metrics))
    before = scrape(rt, eco)
    assert value(before, "coord_todo_duration_seconds_count", repo="web") == 1
    assert value(before, "coord_todo_duration_seconds_count", repo="api") == 1
    rt.metrics.fold(sid)
    h = rt.redis.hgetall(rt.keys.sweep(sid))
    assert not [k for k in h if k.startswith("m:") or k == "mrepos"]
    assert rt.redis.hget(rt.keys.metrics, "dur:web:failed:0") == "1"
    assert scrape(rt, eco) == before
    rt.metrics.fold(sid)  # a second fold finds nothing
    assert scrape(rt, eco) == before


def test_counts_added_in_one_script_are_hincrbys(rt: Runtime) -> None:
    """The sends, skips and lost runs of 10,000 repos in a few commands: the sums are
    what one HINCRBY per counter would leave."""
    counters = rt.metrics
    rt.redis.hset(rt.keys.metrics, "sent:api", 5)
    counters.count_sent(["api", "web", "api"] + [f"r{i}" for i in range(5000)])
    got = rt.redis.hgetall(rt.keys.metrics)
    assert got["sent:api"] == "7" and got["sent:web"] == "1" and got["sent:r4999"] == "1"
    assert len(got) == 5002


def test_the_scripts_buckets_are_the_exporters() -> None:
    import re

    from coordination.runtime.metrics import BUCKETS
    from coordination.runtime.scripts import LUA_DIR

    text = (LUA_DIR / "_common.lua").read_text()
    found = re.search(r"METRIC_BUCKETS = \{([^}]*)\}", text)
    assert found is not None
    assert tuple(float(x) for x in found.group(1).split(",")) == BUCKETS
