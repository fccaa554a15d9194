"""`coord resources`: holders and waiting lines read back from Redis.

Todos take slots through the start script as workers do (no workers needed): one
holds the repo's only slot and the resource's, two more wait in rank order."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordination.runtime.context import Runtime
from coordination.sweeps.governance.holding import resources
from tests.unit.support.fleet import ask, fleet_catalog, queued_spec

pytestmark = pytest.mark.timeout(60)


def test_holders_capacity_and_the_line_in_order(rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "resources": ["db"]},
        {"id": "TODO-002", "repo": "api", "run": "true", "priority": "low"},
        {"id": "TODO-003", "repo": "api", "run": "true", "priority": "critical"},
    ], resources=[{"name": "db", "capacity": 2}])
    spec = queued_spec(rt, cat)
    now = time.time()
    assert ask(rt, spec, "TODO-001", now=now).verdict == "started"
    assert ask(rt, spec, "TODO-002", now=now, since=now - 5).verdict == "wait"
    assert ask(rt, spec, "TODO-003", now=now, since=now - 1).verdict == "wait"

    doc = resources(rt, {"api": 1, "web": 2}, {"db": 2})
    api, web = doc["repos"]
    assert (api["name"], api["capacity"], api["used"]) == ("api", 1, 1)
    h = api["slots"][0]["holder"]
    assert h is not None and (h["sweep_id"], h["todo_id"], h["worker"]) == (
        spec.sweep_id, "TODO-001", "w")
    assert h["since"] and 0 < (h["expires_in"] or 0) <= rt.settings.lease_ttl
    # critical before low: the order they will be served in, not the order they came
    assert [w["todo_id"] for w in api["waiting"]] == ["TODO-003", "TODO-002"]
    assert (web["used"], web["capacity"], web["waiting"]) == (0, 2, [])
    assert [s["holder"] for s in web["slots"]] == [None, None]
    (db,) = doc["resources"]
    assert (db["used"], db["capacity"]) == (1, 2)
    assert [s["holder"]["todo_id"] for s in db["slots"] if s["holder"]] == ["TODO-001"]
    json.dumps(doc, allow_nan=False)


def test_cli_resources_json_and_table(rt: Runtime, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.cli.main import cli
    from coordination.runtime.context import get_runtime

    cat = fleet_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    spec = queued_spec(rt, cat)
    assert ask(rt, spec, "TODO-001", now=time.time()).verdict == "started"
    monkeypatch.setattr("coordination.cli.resources.get_runtime", lambda *_a, **_k: rt)
    assert get_runtime is not None
    res = CliRunner().invoke(cli, ["--file", str(cat), "resources", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["repos"][0]["slots"][0]["holder"]["todo_id"] == "TODO-001"
    res = CliRunner().invoke(cli, ["--file", str(cat), "resources"])
    assert res.exit_code == 0, res.output
    assert "TODO-001" in res.output and "api 1/1" in res.output and "nobody waits" in res.output
