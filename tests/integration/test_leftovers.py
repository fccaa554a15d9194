"""What a sweep leaves in the temporary directory once it is over: nothing of coord's.
Before 0.7 every worker process forked by an embedded sweep (or by a worker of several
repos) ended by ``os._exit`` with its context service's socket still in
``coord-ctx-<uid>``: one file more per sweep, for ever (14,000 on the development
machine after a few days of tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, write_api_catalog

pytestmark = pytest.mark.timeout(240)

COORDINATION = """  plans:
    - id: PLAN-001
      title: two todos
      status: active
  todos:
    - id: TODO-001
      task: one
      repo: api
      plan: PLAN-001
      run: "true"
    - id: TODO-002
      task: two
      repo: api
      plan: PLAN-001
      run: "echo RESULT=1 >> $COORD_OUTPUT"
"""


def _coords(tmp: Path) -> list[str]:
    """coord's files and directories in the temporary directory ``tmp``: each results
    directory, and each socket of the context services."""
    out = [p.name for p in tmp.glob("coord-results-*")]
    ctx = tmp / f"coord-ctx-{os.getuid()}"
    if ctx.is_dir():
        out += [f"{ctx.name}/{p.name}" for p in ctx.iterdir()]
    return sorted(out)


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A temporary directory for the sweep's processes, short-named: the socket
    directory goes to /tmp itself under a longer one (a socket's path is at most 107
    bytes), where pytest's own, under xdist, would send it."""
    d = Path(tempfile.mkdtemp(prefix="coord-left-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_an_embedded_sweep_leaves_no_socket_and_no_results_directory(
        tmp_path: Path, tmp: Path) -> None:
    eco = write_api_catalog(tmp_path / "eco", (), COORDINATION)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT), TMPDIR=str(tmp))
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                          "plan", "sweep", "PLAN-001", "--wait", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert (tmp / f"coord-ctx-{os.getuid()}").is_dir()  # the todos were served from there
    deadline = time.monotonic() + 30  # its worker processes end after the command
    while (left := _coords(tmp)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"left behind in {tmp}: {left}"
