"""A worker of several repos imports what its processes' Celery workers load before it
forks them (workers/worker.py: FORKED_IMPORTS): shared by the processes, not loaded again
by each (their memory: bench/fleet.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from workers.worker import FORKED_IMPORTS, preload_for_forks

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]

# run_worker up to the fork: ProcessGroup.run replaced by a look at what is imported
SCRIPT = """
import json, sys
from pathlib import Path
from workers import process_group, worker

seen = {}

def run(self):
    seen.update({name: name in sys.modules for name in sys.argv[2:]})
    return 0

process_group.ProcessGroup.run = run
code = worker.run_worker(Path(sys.argv[1]), ["a", "b"], processes=2, loglevel="WARNING")
print(json.dumps({"code": code, "seen": seen}))
"""


def test_every_module_forked_processes_load_is_there_to_import() -> None:
    assert preload_for_forks() == []


def test_the_parent_has_imported_them_when_it_forks(tmp_path: Path, redis_server: Any) -> None:
    for repo in ("a", "b"):
        (tmp_path / repo).mkdir()
    catalog = tmp_path / "ecosystem.yaml"
    catalog.write_text("version: 1\nrepos:\n  - name: a\n    path: a\n  - name: b\n    path: b\n")
    env = {**os.environ, "COORD_REDIS_URL": redis_server.url,
           "COORD_NAMESPACE": f"preload_{uuid.uuid4().hex[:8]}"}
    # the heaviest of what a worker's start loads, none of which a worker imports up front
    wanted = ["kombu.transport.redis", "celery.worker.consumer", "celery.backends.redis",
              "celery.concurrency.thread"]
    assert set(wanted) <= set(FORKED_IMPORTS)
    got = subprocess.run([sys.executable, "-c", SCRIPT, str(catalog), *wanted], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=90)
    assert got.returncode == 0, got.stderr[-3000:]
    out = json.loads(got.stdout.strip().splitlines()[-1])
    assert out == {"code": 0, "seen": dict.fromkeys(wanted, True)}, out
