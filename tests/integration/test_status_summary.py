"""`coord sweep status` of a big sweep, on a real redis-server with real workers: the
summary read from the sweep's tally (counts, the todos to look at, the failed ones'
output) is what the full read (--json) renders, while todos run and once they all
ended; and the command builds its runtime without pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from coordination.cli.sweep_render import render_status
from tests.integration.helpers import ROOT, Cluster, T

pytestmark = pytest.mark.timeout(240)

REPOS = {"api": 2, "web": 2, "jobs": 2}
#: Loaded-module probe: the CLI as `python -m coordination.cli.main`, reporting sys.modules.
PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))
from coordination.cli.main import main
main(sys.argv[1:])
"""


def todos(stop: str) -> list[T]:
    """60 todos: three fail with output (one blocks another, skipped), two run until
    ``stop`` exists, the rest succeed at once."""
    out = []
    for i in range(60):
        repo = list(REPOS)[i % 3]
        run, blocked = "true", []
        if i in (5, 17, 29):
            run = f"echo 'boom {i}' >&2; exit 3"
        if i == 30:
            blocked = ["TODO-105"]
        if i in (40, 41):
            run = f"while [ ! -f {stop} ]; do sleep 0.1; done"
        out.append(T(f"TODO-{100 + i}", repo, run, blocked_by=blocked))
    return out


def test_the_summary_is_what_the_full_read_shows(
        cluster: Cluster, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    stop = cluster.root / "STOP"
    cluster.write_catalog(REPOS, todos(str(stop)))
    cluster.start_workers(REPOS)
    sid = cluster.start_sweep()
    for tid in ("TODO-140", "TODO-141"):
        cluster.wait_todo(sid, tid, {"running"}, timeout=60)
    others = [f"TODO-{100 + i}" for i in range(60) if i not in (40, 41)]
    for tid in others:
        cluster.wait_todo(sid, tid, {"succeeded", "failed", "skipped"}, timeout=60)

    def both() -> tuple[str, str]:
        res = cluster.cli("sweep", "status", sid, "--lines", "3")
        assert res.returncode == 0, res.stderr
        doc = cluster.cli_json("sweep", "status", sid)
        capsys.readouterr()
        render_status(doc, lines=3)
        return res.stdout, capsys.readouterr().out

    quick, full = both()
    assert quick == full
    assert "60 todos: 54 succeeded, 3 failed, 2 running, 1 skipped" in quick.splitlines()[1]
    rows = [line.split()[0] for line in quick.splitlines() if line.startswith("TODO-")
            and "last 3 lines" not in line]
    assert rows == ["TODO-105", "TODO-117", "TODO-129", "TODO-140", "TODO-141", "TODO-130"]
    assert "boom 17" in quick

    # The status read its runtime without pydantic (where Redis is: settings_core).
    probe = subprocess.run([sys.executable, "-c", PROBE, "--file", str(cluster.eco), "sweep",
                            "status", sid], cwd=ROOT, env=cluster.env, capture_output=True,
                           text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    line = [x for x in probe.stderr.splitlines() if x.startswith("MODULES ")][-1]
    modules = set(json.loads(line[len("MODULES "):]))
    # (the full read parses the spec, checked under the signing settings: pydantic)
    assert "coordination.sweeps.summary" in modules and "pydantic" not in modules

    stop.touch()
    cluster.wait_sweep(sid, timeout=60)
    quick, full = both()
    assert quick == full
    assert "60 todos: 56 succeeded, 3 failed, 1 skipped" in quick.splitlines()[1]
