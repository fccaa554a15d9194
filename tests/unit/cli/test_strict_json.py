"""Every JSON document coord prints is strict JSON (issue #23): never Python's
``Infinity``/``NaN``, which `jq`, browsers and every other parser refuse.

A representative run of `--json` commands over a catalog holding edge values (numbers at
their bounds, a tiny float, a huge integer, text beyond ASCII), a sweep run to the end
included, each output parsed with a parser that refuses non-finite numbers. And the one
printing path, :func:`coordination.jsonable.dumps`, turns a non-finite float that
reaches it anyway into ``null`` (as ``JSON.stringify`` does).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.models import MAX_HOURS, MAX_RETRIES, MAX_TODO_TIMEOUT
from coordination.jsonable import dumps, to_jsonable
from tests.unit.support.cli import coord, strict_json

pytestmark = pytest.mark.timeout(240)


def edge_catalog(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for repo in ("api", "web"):
        (root / "repos" / repo).mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "version": 1,
        "repos": [
            {"name": "api", "path": "repos/api", "concurrency": 1024,
             "breaker": {"failures": 1000, "cooldown": 604800}},
            {"name": "web", "path": "repos/web"},
        ],
        "resources": [{"name": "db", "capacity": 1024}],
        "coordination": {
            "issues": [{"id": "ISSUE-001", "title": "Größe ＡＰＩ", "status": "resolved",
                        "repos": ["api"],
                        "metadata": {"big": 10**30, "tiny": 5e-324, "neg": -0.0,
                                     "deep": [1.5e300, {"x": -1e-300}]}}],
            "plans": [{"id": "PLAN-001", "title": "edge plan", "status": "active",
                       "repos": ["api", "web"],
                       "milestones": [{"id": "MS-001", "title": "m", "due": "2026-01-01",
                                       "todos": ["TODO-001"]}]}],
            "todos": [
                {"id": "TODO-001", "task": "heaviest", "repo": "api", "plan": "PLAN-001",
                 "run": "true", "estimated_hours": MAX_HOURS, "timeout": MAX_TODO_TIMEOUT,
                 "retries": MAX_RETRIES, "resources": ["db"]},
                {"id": "TODO-002", "task": "tiny", "repo": "web", "plan": "PLAN-001",
                 "run": "echo ünïcode", "estimated_hours": 1e-300, "timeout": 0.5,
                 "blocked_by": ["TODO-001", "ISSUE-001"]},
                {"id": "TODO-003", "task": "heavy too", "repo": "web", "plan": "PLAN-001",
                 "run": "true", "estimated_hours": MAX_HOURS, "actual_hours": MAX_HOURS,
                 "blocked_by": ["TODO-002"]},
            ],
        },
    }
    path = root / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def json_of(eco: Path, *args: str) -> Any:
    r = coord(eco, *args, "--json", timeout=120)
    assert r.returncode in (0, 1), (args, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Infinity" not in r.stdout and "NaN" not in r.stdout, (args, r.stdout[-2000:])
    if args[0] == "events":  # JSON Lines
        return [strict_json(line) for line in r.stdout.splitlines() if line.strip()]
    return strict_json(r.stdout)


def test_every_json_output_is_strict_json(tmp_path: Path) -> None:
    eco = edge_catalog(tmp_path / "eco")
    shown = json_of(eco, "plan", "show", "PLAN-001")
    assert shown["total_hours"] == 2 * MAX_HOURS + 1e-300
    for args in (("plan", "list"), ("plan", "status", "PLAN-001"),
                 ("plan", "validate", "PLAN-001"), ("plan", "sweep", "PLAN-001", "--dry-run"),
                 ("todo", "list"), ("todo", "show", "TODO-001"), ("todo", "show", "TODO-003"),
                 ("issue", "list"), ("issue", "show", "ISSUE-001"), ("repo", "list"),
                 ("dep", "list")):
        json_of(eco, *args)
    issue = json_of(eco, "issue", "show", "ISSUE-001")
    assert issue["metadata"]["big"] == 10**30

    started = json_of(eco, "plan", "sweep", "PLAN-001")  # embedded: waits, then syncs
    sid = started["sweep_id"]
    status = json_of(eco, "sweep", "status", sid)
    assert status["status"] == "succeeded", status
    json_of(eco, "sweep", "list")
    assert json_of(eco, "events", "--sweep", sid)
    assert json_of(eco, "history", "search", "")
    assert json_of(eco, "history", "search", "ＮÏＣＯＤＥ", "--kind", "todo")  # NFKC, folded
    json_of(eco, "history", "trends")
    json_of(eco, "todo", "show", "TODO-002")  # now with actual_hours from the sweep
    assert json_of(eco, "audit")  # the sweep's sync is an audited edit
    assert json_of(eco, "audit", "--verify")["intact"] is True


# -- the one printing path ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_dumps_never_prints_a_non_finite_number(bad: float) -> None:
    class Model:  # what the encoder's default hook converts (a pydantic model)
        def model_dump(self, mode: str) -> dict[str, Any]:
            return {"x": bad}

    for data in ({"a": bad}, [1, [bad]], {"m": Model()}, {Path("p"): bad}):
        for pretty in (True, False):
            text = dumps(data, pretty=pretty)
            assert "Infinity" not in text and "NaN" not in text, text
            strict_json(text)
            assert "null" in text, text
    assert dumps({"a": bad}, pretty=False) == '{"a":null}'
    assert to_jsonable(bad) is None


def test_dumps_keeps_finite_extremes() -> None:
    text = dumps({"max": 1.7976931348623157e308, "tiny": 5e-324, "big": 10**30}, pretty=False)
    assert strict_json(text) == {"max": 1.7976931348623157e308, "tiny": 5e-324, "big": 10**30}
