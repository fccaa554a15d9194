"""`coord events` of a template's sweep: its events carry the instance ids as they are
(``TODO-010[web]``), and ``--todo`` takes an instance id, or a template's id for all its
instances (#41: instance ids are accepted wherever a todo id is). Embedded, real
processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.support.cli import coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(180)

REPOS = ("api", "web", "jobs")
INSTANCES = {f"TODO-010[{r}]" for r in REPOS}


def test_events_show_and_filter_instance_ids(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-010", "for_each": "*", "run": 'echo "$COORD_REPO"'},
        {"id": "TODO-011", "repo": "api", "run": "true", "blocked_by": ["TODO-010[web]"]}],
        repos=REPOS)
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["sweep_id"]

    r = coord(eco, "events", "--sweep", sid, "--json")
    assert r.returncode == 0, r.stderr
    every = json.loads(r.stdout)
    assert {e["todo_id"] for e in every if e["todo_id"]} == INSTANCES | {"TODO-011"}
    assert {e["todo_id"] for e in every if e["kind"] == "todo.succeeded"} == INSTANCES | {
        "TODO-011"}

    r = coord(eco, "events", "--sweep", sid, "--todo", "TODO-010[web]", "--json")
    assert r.returncode == 0, r.stderr
    web = json.loads(r.stdout)
    assert web == [e for e in every if e["todo_id"] == "TODO-010[web]"]
    assert {"todo.queued", "todo.started", "todo.succeeded"} <= {e["kind"] for e in web}
    # a template's id: every instance's events, none of another todo
    r = coord(eco, "events", "--sweep", sid, "--todo", "TODO-010", "--json", "-n", "4")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [e for e in every if e["todo_id"] in INSTANCES][-4:]
    # the merged view of every sweep, and the human lines: the id printed as it is
    r = coord(eco, "events", "--todo", "TODO-010[web]", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == web
    r = coord(eco, "events", "--sweep", sid, "--todo", "TODO-010[web]")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(web) and all("TODO-010[web]" in ln for ln in lines), r.stdout
    # --follow on the ended sweep: the todo's events, then it ends (JSON Lines)
    r = coord(eco, "events", "--sweep", sid, "--todo", "TODO-010[web]", "--follow", "--json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(ln) for ln in r.stdout.splitlines()] == web

    r = coord(eco, "events", "--sweep", sid, "--todo", "TODO-010[nope]", "--json")
    assert r.returncode == 2 and "has no todo TODO-010[nope]" in r.stderr, r.stderr
    assert r.stdout == ""
