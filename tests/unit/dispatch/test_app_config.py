"""The Celery app's configuration: what "nothing lost, nothing twice" relies on.

(`coord todo list` importing neither Celery, kombu nor networkx is checked in
test_cli_imports.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordination.settings import Settings
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
URL = "redis://127.0.0.1:1/0"  # never connected to: the app is only configured


@pytest.fixture
def long_catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "timeout": 60},
        {"id": "TODO-002", "repo": "api", "run": "make migrate", "timeout": 7200, "retries": 2,
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "timeout": 600, "retries": 1,
         "blocked_by": ["TODO-002"]},
    ])


def app_for(catalog: Path | None, settings: Settings) -> Any:
    from coordination.catalog.file.store import CatalogStore
    from workers.app import create_app, limits_from_catalog

    if catalog is None:
        return create_app(settings)
    longest_todo, longest_sweep = limits_from_catalog(CatalogStore(catalog).load())
    return create_app(settings, longest_todo=longest_todo, longest_sweep=longest_sweep)


@pytest.mark.parametrize("redis_url", [None, URL], ids=["embedded", "redis"])
def test_delivery_guarantees(redis_url: str | None) -> None:
    conf = app_for(None, Settings(redis_url=redis_url)).conf
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"] and list(conf.result_accept_content) == ["json"]
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == "coord.control"


def test_tasks_are_registered_with_late_acks() -> None:
    app = app_for(None, Settings())
    app.finalize()
    assert set(app.tasks) == {"coord.run_todo"}  # one task; no barrier, no finaliser
    run = app.tasks["coord.run_todo"]
    assert run.acks_late and run.reject_on_worker_lost
    assert run.ignore_result  # checkpoints are the truth; nothing waits on a result


def test_no_result_no_started_state_no_events_unless_flower_asks() -> None:
    """Each of these costs Redis commands per todo that nothing of coord reads."""
    conf = app_for(None, Settings(redis_url=URL)).conf
    assert conf.task_ignore_result is True
    assert conf.task_track_started is False
    assert conf.task_send_sent_event is False and conf.worker_send_task_events is False


def test_broker_and_keys_per_mode() -> None:
    emb = app_for(None, Settings()).conf
    assert emb.broker_url.startswith("memory://")
    assert emb.broker_transport_options["polling_interval"] <= 0.05
    dist = app_for(None, Settings(redis_url=URL, namespace="team-a")).conf
    assert dist.broker_url == URL and dist.result_backend == URL
    assert dist.broker_transport_options["global_keyprefix"] == "team-a:celery:"
    assert dist.task_default_queue == "team-a.control"


def test_visibility_timeout_outlasts_the_longest_todo(long_catalog: Path) -> None:
    from workers.app import todo_budget

    conf = app_for(long_catalog, Settings(redis_url=URL)).conf
    budget = todo_budget(7200, 2)
    assert budget >= 3 * 7200
    vis = conf.broker_transport_options["visibility_timeout"]
    assert vis > 3 * 7200 and vis > budget
    assert conf.result_backend_transport_options["visibility_timeout"] == vis
    # Without a catalog, still above Celery's default hour.
    assert app_for(None, Settings(redis_url=URL)).conf.broker_transport_options[
        "visibility_timeout"] > 3600


def test_results_outlive_the_longest_sweep(long_catalog: Path) -> None:
    from coordination.runtime.context import Runtime
    from coordination.sweeps import SweepService, sweep_deadline
    from workers.app import todo_budget

    settings = Settings()
    conf = app_for(long_catalog, settings).conf
    serial = todo_budget(60, 0) + todo_budget(7200, 2) + todo_budget(600, 1)
    assert conf.result_expires > serial
    from coordination.connection.client import stand_in

    spec = SweepService(Runtime.create(settings, client=stand_in()), long_catalog).plan_spec(
        "PLAN-001", strategy="levels", ignore_blockers=True)
    assert conf.result_expires > sweep_deadline(spec, settings.sweep_deadline)
    # Without a catalog: above the configured cap on any sweep.
    assert app_for(None, settings).conf.result_expires > settings.sweep_deadline


PROBE = """
import json, sys
from pathlib import Path
from workers.worker import build_worker
w = build_worker(Path(sys.argv[1]), "api", preflight=False)  # configuration only: no Redis
c = w.app.conf
print(json.dumps({
    "visibility": c.broker_transport_options["visibility_timeout"],
    "expires": c.result_expires,
    "acks_late": c.task_acks_late,
    "prefetch": c.worker_prefetch_multiplier,
    "queues": sorted(w.app.amqp.queues.consume_from),
    "concurrency": w.concurrency,
}))
"""


def test_coord_worker_sizes_its_app_from_the_catalog(long_catalog: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["COORD_REDIS_URL"] = URL
    r = subprocess.run([sys.executable, "-c", PROBE, str(long_catalog)], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["visibility"] > 3 * 7200 and got["expires"] > 3 * 7200
    assert got["acks_late"] is True and got["prefetch"] == 1
    assert got["queues"] == ["coord.control", "coord.repo.api"]
    assert got["concurrency"] == 1  # the repo's 1 todo at a time: no spare thread to wait in line


def test_a_socket_url_is_served_by_the_guarded_transport_too() -> None:
    """Embedded mode's unix socket: kombu reads the transport off the URL's scheme
    before broker_transport, so ``redis+socket://`` gave kombu's unguarded transport
    (no dead letters, no prompt close, kombu's ack emulation)."""
    from workers import broker
    from workers.app import create_app

    app = create_app(Settings(redis_url=None), url="unix:///tmp/coord-test.sock")
    assert app.conf.result_backend.startswith("redis+socket:///tmp/coord-test.sock")
    with app.connection_for_write() as conn:
        assert conn.transport.Channel is broker.Channel
        assert conn.hostname == "socket:///tmp/coord-test.sock"
