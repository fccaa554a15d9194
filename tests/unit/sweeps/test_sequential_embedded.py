"""`plan sweep --sequential` and `--merge-chains` on a real embedded sweep (the CLI's
own server and worker processes): sequential todos never overlap and follow the DAG;
a merged chain's todos each end with their own record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.support.catalogs import ROOT
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(120)

TIMED = "date +%s.%N > {d}/{t}.start; sleep 0.2; date +%s.%N > {d}/{t}.end"


def sweep(catalog: Path, *args: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    r = subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "plan", "sweep",
         PLAN, "--wait", "--json", *args], cwd=catalog.parent, capture_output=True, text=True,
        timeout=100, env={**base, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout))


def test_sequential_embedded_runs_one_at_a_time_in_dag_order(tmp_path: Path) -> None:
    d = tmp_path / "spans"
    d.mkdir()
    dag = {"TODO-001": [], "TODO-002": ["TODO-001"], "TODO-003": [], "TODO-004": ["TODO-003"]}
    catalog = write_catalog(tmp_path / "eco", [
        {"id": t, "repo": ("api", "web", "jobs", "api")[i], "run": TIMED.format(d=d, t=t),
         **({"blocked_by": p} if p else {})} for i, (t, p) in enumerate(dag.items())])
    st = sweep(catalog, "--sequential")
    assert st["status"] == "succeeded"
    spans = {t: (float((d / f"{t}.start").read_text()), float((d / f"{t}.end").read_text()))
             for t in dag}
    ordered = sorted(spans.values())
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:])), spans  # no overlap
    assert all(spans[t][0] >= spans[p][1] for t, ps in dag.items() for p in ps)


def test_merge_chains_embedded_keeps_each_todos_record(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "api", "run": "true", "blocked_by": ["TODO-002"]},
    ])
    st = sweep(catalog, "--merge-chains")
    assert st["status"] == "succeeded" and st["strategy"] == "eager"
    todos = st["todos"]
    assert [todos[t]["status"] for t in ("TODO-001", "TODO-002", "TODO-003")] == [
        "succeeded"] * 3
    assert all(todos[t]["started_at"] and todos[t]["finished_at"] for t in todos)
