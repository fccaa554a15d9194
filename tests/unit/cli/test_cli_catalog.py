"""issue / todo / dep / repo commands, run as a user runs them: a subprocess.

Checked for each: exit code, stdout that is one JSON document with --json,
errors on stderr without a traceback, and an untouched file on bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.support.cli import add_dep, coord_bare, refused_and_unchanged

pytestmark = pytest.mark.timeout(60)


def ok_json(catalog: Path, *args: str) -> Any:
    r = coord_bare(catalog, *args, "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def fails(catalog: Path, code: int, *args: str) -> str:
    r = coord_bare(catalog, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stderr


READS = [
    ("issue", "list"), ("issue", "list", "--status", "open", "--repo", "web"),
    ("issue", "show", "ISSUE-001"),
    ("todo", "list"), ("todo", "list", "--plan", "PLAN-001", "--status", "pending"),
    ("todo", "show", "TODO-002"),
    ("dep", "list"), ("dep", "list", "--consumer", "api", "--type", "runtime"),
    ("repo", "list"), ("repo", "status", "api"), ("repo", "blocking", "web"),
]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_reads_human_and_json(example_catalog: Path, args: tuple[str, ...]) -> None:
    human = coord_bare(example_catalog, *args)
    assert human.returncode == 0, human.stderr
    assert human.stdout.strip() and not human.stderr
    ok_json(example_catalog, *args)


def test_json_shapes(example_catalog: Path) -> None:
    issues = ok_json(example_catalog, "issue", "list", "--repo", "web")
    assert [i["id"] for i in issues] == ["ISSUE-003"]
    assert ok_json(example_catalog, "todo", "show", "TODO-003")["blocked_by"] == ["TODO-002"]
    status = ok_json(example_catalog, "repo", "status", "api")
    assert {"repo", "checkout", "open_issues", "todos", "consumes", "provides", "blocked_by"} <= set(status)
    blocking = ok_json(example_catalog, "repo", "blocking", "web")
    assert blocking["blocked"] is True and {b["id"] for b in blocking["blockers"]} == {"DEP-003", "TODO-005"}


def test_issue_create_update_close(example_catalog: Path) -> None:
    r = coord_bare(example_catalog, "issue", "create", "--title", "Rotate [keys]", "--repos", "api,infra",
              "--priority", "high", "--label", "security", "--label", "ops")
    assert r.returncode == 0 and r.stdout.strip() == "ISSUE-004", r.stderr
    text = example_catalog.read_text()
    assert "# coord example catalog" in text and "# checkout, relative to this file" in text
    shown = ok_json(example_catalog, "issue", "show", "ISSUE-004")
    assert shown["repos"] == ["api", "infra"] and shown["labels"] == ["security", "ops"]
    updated = ok_json(example_catalog, "issue", "update", "ISSUE-004", "--status", "in_progress")
    assert updated["status"] == "in_progress"
    assert coord_bare(example_catalog, "issue", "update", "ISSUE-004", "--assignee", "ana").stdout.strip() == "updated ISSUE-004"
    assert ok_json(example_catalog, "issue", "close", "ISSUE-004")["status"] == "closed"
    created = ok_json(example_catalog, "issue", "create", "--title", "Second")
    assert created["id"] == "ISSUE-005"


def test_todo_create_and_complete(example_catalog: Path) -> None:
    created = ok_json(example_catalog, "todo", "create", "--task", "Bump client", "--repo", "web",
                      "--plan", "PLAN-001", "--run", "make client", "--blocked-by", "TODO-005,ISSUE-003",
                      "--estimate", "2", "--criteria", "builds", "--criteria", "tests pass")
    assert created["id"] == "TODO-007"
    assert created["blocked_by"] == ["TODO-005", "ISSUE-003"]
    assert created["acceptance_criteria"] == ["builds", "tests pass"]
    assert ok_json(example_catalog, "todo", "show", "TODO-005")["blocking"] == ["TODO-007"]
    r = coord_bare(example_catalog, "todo", "create", "--task", "Another", "--repo", "api")
    assert (r.returncode, r.stdout.strip()) == (0, "TODO-008")
    done = ok_json(example_catalog, "todo", "complete", "TODO-007", "--hours", "1.5")
    assert (done["status"], done["actual_hours"]) == ("completed", 1.5)
    r = coord_bare(example_catalog, "todo", "complete", "TODO-008")
    assert (r.returncode, r.stdout.strip()) == (0, "completed TODO-008")


BAD_WRITES = [
    (("todo", "create", "--task", "x", "--repo", "apii"), "unknown repo 'apii'"),
    (("todo", "create", "--task", "x", "--repo", "api", "--blocked-by", "TODO-404"), "TODO-404"),
    (("todo", "create", "--task", "x", "--repo", "api", "--plan", "PLAN-404"), "PLAN-404"),
    (("todo", "complete", "TODO-404"), "unknown todo 'TODO-404'"),
    (("todo", "complete", "TODO-002", "--hours", "-3"), "--hours"),
    (("todo", "show", "TODO-404"), "unknown todo"),
    (("issue", "create", "--title", "x", "--priority", "urgent"), "--priority"),
    (("issue", "create", "--title", "x", "--repos", "api,nope"), "'nope' matches no repo"),
    (("issue", "create", "--title", "x", "--target", "soon"), "--target"),
    (("issue", "create"), "--title"),
    (("issue", "update", "ISSUE-404", "--status", "open"), "unknown issue 'ISSUE-404'"),
    (("issue", "update", "ISSUE-001"), "nothing to update"),
    (("issue", "close", "ISSUE-404"), "unknown issue"),
    (("issue", "show", "ISSUE-404"), "unknown issue"),
    (("issue", "list", "--status", "done"), "--status"),
    (("repo", "status", "nope"), "unknown repo"),
    (("repo", "blocking", "nope"), "unknown repo"),
    (("dep", "list", "--consumer", "nope"), "unknown repo"),
    (("dep", "check", "--consumer", "nope"), "unknown repo"),
]


@pytest.mark.parametrize("args,message", BAD_WRITES, ids=[" ".join(a) for a, _ in BAD_WRITES])
def test_bad_input_exits_2_and_changes_nothing(
    example_catalog: Path, args: tuple[str, ...], message: str
) -> None:
    refused_and_unchanged(example_catalog, args, message)


def test_unknown_id_hint_suggests_close_match(example_catalog: Path) -> None:
    err = fails(example_catalog, 2, "todo", "show", "TODO-02")
    assert err.startswith("error: unknown todo 'TODO-02'") and "hint:" in err


def test_missing_catalog_is_usage_error(tmp_path: Path) -> None:
    err = fails(tmp_path / "nothing.yaml", 2, "todo", "list")
    assert "nothing.yaml" in err


def test_dep_check_passing(example_catalog: Path) -> None:
    r = coord_bare(example_catalog, "dep", "check")
    assert r.returncode == 0, r.stderr
    assert "satisfied" in r.stdout
    doc = ok_json(example_catalog, "dep", "check", "--consumer", "api")
    assert doc["ok"] is True and doc["results"][0]["status"] == "satisfied"
    assert ok_json(example_catalog, "dep", "list", "--consumer", "api")[0]["status"] == "satisfied"


def test_dep_check_failing_exits_1_after_printing(example_catalog: Path) -> None:
    add_dep(example_catalog, (
        "    - id: DEP-004\n      consumer: web\n      provider: libcore\n"
        "      validation:\n        command: \"echo 'Version: 1.0'\"\n"
        "        expected_pattern: \"^Version: 2\"\n"
    ))
    r = coord_bare(example_catalog, "dep", "check", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["unsatisfied"] == ["DEP-004"]
    assert "DEP-004" in r.stderr
    human = coord_bare(example_catalog, "dep", "check")
    assert human.returncode == 1 and "unsatisfied" in human.stdout
    assert human.stderr.startswith("error: 1 dependency unsatisfied: DEP-004")
    assert ok_json(example_catalog, "dep", "list", "--consumer", "web")[-1]["status"] == "unsatisfied"


@pytest.mark.parametrize("cmd", ["issue", "todo", "dep", "repo"])
def test_help_has_examples(example_catalog: Path, cmd: str) -> None:
    r = coord_bare(example_catalog, cmd, "--help")
    assert r.returncode == 0
    subcommands = {"issue": ["list", "show", "create", "update", "close"],
                   "todo": ["list", "show", "create", "complete"],
                   "dep": ["list", "check"], "repo": ["list", "status", "blocking"]}[cmd]
    for sub in subcommands:
        h = coord_bare(example_catalog, cmd, sub, "--help")
        assert h.returncode == 0 and "--json" in h.stdout
        assert "Example:" in h.stdout or "Examples:" in h.stdout, (cmd, sub, h.stdout)
