"""`coord context` end to end (embedded server, a subprocess per command): the scope
from $COORD_SWEEP_ID or --plan, JSON values, --raw, a missing key (exit 1), bad input
(exit 2, nothing set), export and import with TTLs, and the cap's eviction order
through COORD_CONTEXT_MAX_KEYS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.support.catalogs import ROOT
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)


def run(one_todo: Path, *args: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("COORD_") or k == "COORD_NAMESPACE"}
    return subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(one_todo), "context",
         *args], cwd=one_todo.parent, capture_output=True, text=True, timeout=60, input=stdin,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def test_set_get_list_delete_in_a_sweeps_scope(one_todo: Path) -> None:
    inside = {"COORD_SWEEP_ID": "SW-1"}
    r = run(one_todo, "set", "build", '{"version": "1.4.2"}', "--ttl", "600", env=inside)
    assert r.returncode == 0, r.stderr
    got = json.loads(run(one_todo, "get", "build", "--json", env=inside).stdout)
    assert got == {"scope": "sweep:SW-1", "key": "build", "found": True,
                   "value": {"version": "1.4.2"}}
    assert run(one_todo, "get", "build", "--sweep", "SW-1").stdout.strip() == \
        '{"version":"1.4.2"}'
    run(one_todo, "set", "name", '"api"', env=inside)
    assert run(one_todo, "get", "name", "--raw", env=inside).stdout == "api\n"
    listed = json.loads(run(one_todo, "list", "--json", env=inside).stdout)
    assert [v["key"] for v in listed["values"]] == ["build", "name"]
    assert 0 < listed["values"][0]["ttl"] <= 600 and listed["values"][1]["ttl"] is None
    # another scope sees none of it
    miss = run(one_todo, "get", "build", "--plan", "PLAN-1")
    assert miss.returncode == 1 and "no context value 'build' in plan:PLAN-1" in miss.stderr
    assert json.loads(run(one_todo, "delete", "build", "--json", env=inside).stdout)["deleted"]
    assert run(one_todo, "get", "build", env=inside).returncode == 1


@pytest.mark.parametrize("args,message", [
    (("set", "k", "not json", "--sweep", "S"), "VALUE is not JSON"),
    (("set", "bad key", "1", "--sweep", "S"), "bad context key"),
    (("get", "k"), "no context scope"),
    (("get", "k", "--sweep", "S", "--plan", "P"), "--sweep and --plan together"),
    # 0.5: tracebacks (ValueError: cannot convert float NaN; RecursionError)
    (("set", "k", "1", "--sweep", "S", "--ttl", "nan"), "nan is not a number of seconds"),
    (("set", "k", "[" * 50_000 + "]" * 50_000, "--sweep", "S"), "VALUE is nested too deep"),
])
def test_bad_input_exits_2_and_sets_nothing(one_todo: Path, args: tuple[str, ...],
                                            message: str) -> None:
    r = run(one_todo, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert json.loads(run(one_todo, "list", "--sweep", "S", "--json").stdout)["values"] == []


def test_export_then_import_into_another_scope(one_todo: Path, tmp_path: Path) -> None:
    run(one_todo, "set", "a", "[1, 2]", "--plan", "PLAN-1")
    run(one_todo, "set", "b", "true", "--plan", "PLAN-1", "--ttl", "900")
    out = tmp_path / "ctx.json"
    assert run(one_todo, "export", "--plan", "PLAN-1", "-o", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    assert doc["scope"] == "plan:PLAN-1" and doc["values"]["a"] == {"value": [1, 2], "ttl": None}
    r = run(one_todo, "import", "-", "--sweep", "SW-2", "--json", stdin=out.read_text())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["imported"] == 2
    got = json.loads(run(one_todo, "export", "--sweep", "SW-2").stdout)
    assert got["values"]["a"]["value"] == [1, 2] and 0 < got["values"]["b"]["ttl"] <= 900
    bad = run(one_todo, "import", "-", "--sweep", "SW-3", stdin='{"values": {"x": 1}}')
    assert bad.returncode == 2 and 'not an object with a "value"' in bad.stderr


def test_the_cap_evicts_the_least_recently_used(one_todo: Path) -> None:
    cap = {"COORD_CONTEXT_MAX_KEYS": "2", "COORD_SWEEP_ID": "SW-9"}
    run(one_todo, "set", "a", "1", env=cap)
    run(one_todo, "set", "b", "2", env=cap)
    run(one_todo, "get", "a", env=cap)  # a used after b: b is the least recent
    r = run(one_todo, "set", "c", "3", "--json", env=cap)
    assert json.loads(r.stdout)["evicted"] == ["b"]
    human = run(one_todo, "set", "d", "4", env=cap)
    assert "evicted" in human.stderr and "a" in human.stderr
    assert [v["key"] for v in json.loads(run(one_todo, "list", "--json", env=cap).stdout)
            ["values"]] == ["c", "d"]


def test_an_embedded_sweeps_todos_share_values(tmp_path: Path) -> None:
    coord = f"{sys.executable} -m coordination.cli.main context"
    out = tmp_path / "read.txt"
    one_todo = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"{coord} set n 41"},
        {"id": "TODO-002", "repo": "web", "blocked_by": ["TODO-001"],
         "run": f"{coord} get n > {out}"},
    ])
    base = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    r = subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(one_todo), "plan", "sweep",
         "PLAN-001", "--wait", "--json"], cwd=one_todo.parent, capture_output=True, text=True,
        timeout=100, env={**base, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["status"] == "succeeded"
    assert out.read_text().strip() == "41"


@pytest.mark.parametrize("doc,message", [
    ('{"values": {"a": {"value": 1, "ttl": NaN}}}', "values.a.ttl: nan is not a number"),
    ('{"values": {"a": {"value": 1, "ttl": Infinity}}}', "values.a.ttl: inf is not a number"),
    ('{"values": {"a": {"value": 1, "ttl": 1e300}}}', "is not a number of seconds from 0"),
    ('{"values": {"a": {"value": ' + "[" * 50_000 + "]" * 50_000 + "}}}", "nested too deep"),
])
def test_a_bad_import_exits_2_with_no_traceback(one_todo: Path, doc: str, message: str) -> None:
    r = run(one_todo, "import", "-", "--sweep", "S", stdin=doc)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert json.loads(run(one_todo, "list", "--sweep", "S", "--json").stdout)["values"] == []
