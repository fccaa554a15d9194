"""Checked completion (issue 52, item 3): a todo's acceptance check runs in its
checkout after its run succeeded and a failing one ends it `failed`, named, embedded
and distributed (real redis-server, real `coord worker`); a plan whose todos all
completed is `completed` by the sync only when its criteria's checks pass, and `plan
status --check` runs them, records them and shows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.audit import log as audit
from tests.integration.helpers import ROOT, Cluster, write_api_catalog

pytestmark = pytest.mark.timeout(240)

COORDINATION = """  plans:
    - id: PLAN-001
      title: checked
      status: active
      completion_criteria:
        - nobody checks this one
        - {text: "the release notes exist", check: "test -f NOTES"}
  todos:
    - id: TODO-001
      task: build
      repo: api
      plan: PLAN-001
      run: "touch built"
      acceptance_criteria:
        - {text: "the build left its file", check: "test -f built"}
    - id: TODO-002
      task: report
      repo: api
      plan: PLAN-001
      run: "echo ran"
      acceptance_criteria:
        - free text, never checked
        - {text: "the report exists", check: "echo looking for report; test -f report"}
"""


def _write(root: Path) -> Path:
    return write_api_catalog(root, (), COORDINATION)


def _file(eco: Path) -> dict[str, Any]:
    doc = yaml.safe_load(eco.read_text())
    return {"plan": doc["coordination"]["plans"][0].get("status"),
            **{t["id"]: t.get("status") for t in doc["coordination"]["todos"]}}


def _assert_failed_by_its_check(todos: dict[str, Any]) -> None:
    assert todos["TODO-001"]["status"] == "succeeded", todos["TODO-001"]
    bad = todos["TODO-002"]
    assert bad["status"] == "failed", bad
    assert "acceptance check failed" in bad["reason"] and "the report exists" in bad["reason"]


def test_distributed_acceptance_check_and_plan_checks(cluster: Cluster) -> None:
    eco = _write(cluster.root)
    cluster.start_worker("api")
    sid = cluster.start_sweep()
    st = cluster.wait_sweep(sid, timeout=90)
    _assert_failed_by_its_check(st["todos"])
    cp = cluster.checkpoint(sid, "TODO-002")
    assert "looking for report" in cp.get("output_tail", ""), cp  # the check's output
    cluster.cli_json("todo", "list")  # the next command syncs it
    assert _file(eco) == {"plan": "active", "TODO-001": "completed", "TODO-002": "failed"}

    # Every todo done now, but the plan's own check fails: the sync leaves it active.
    (cluster.repo_dir("api") / "report").touch()
    sid2 = cluster.start_sweep()
    assert cluster.wait_sweep(sid2, timeout=90)["status"] == "succeeded"
    doc = cluster.cli_json("plan", "status", "PLAN-001")  # syncs sid2 first
    assert _file(eco) == {"plan": "active", "TODO-001": "completed", "TODO-002": "completed"}
    assert doc["complete"] is False
    [check] = doc["checks"]
    assert (check["criterion"], check["ok"]) == ("the release notes exist", False), check
    assert doc["completion_criteria"] == ["nobody checks this one", "the release notes exist"]

    # plan status --check: exit 1 while it fails, then passes, recorded, plan completed.
    res = cluster.cli("plan", "status", "PLAN-001", "--check")
    assert res.returncode == 1 and "the release notes exist" in res.stderr, res
    (cluster.root / "NOTES").touch()
    doc = cluster.cli_json("plan", "status", "PLAN-001", "--check")
    assert doc["checks"][0]["ok"] is True and doc["complete"] is True
    assert _file(eco)["plan"] == "completed"
    shown = cluster.cli_json("plan", "status", "PLAN-001")  # the last results, shown
    assert shown["checks"][0]["ok"] is True and shown["checks"][0]["at"]
    checked = [e for e in audit.read(audit.log_path(eco)) if e["op"] == "plan.checked"]
    assert [e["decision"]["ok"] for e in checked] == [False, False, True], checked


def test_embedded_failing_acceptance_check(tmp_path: Path) -> None:
    eco = _write(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                          "plan", "sweep", "PLAN-001", "--wait", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    _assert_failed_by_its_check(doc["todos"])
    assert _file(eco) == {"plan": "active", "TODO-001": "completed", "TODO-002": "failed"}
