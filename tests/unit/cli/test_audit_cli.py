"""`coord audit`, run as a user runs it: a subprocess; and the entries CLI edits leave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[3]
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def argv(catalog: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), *args]


def coord(catalog: Path, *args: str, user: str = "ana@example.com") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv(catalog, *args), cwd=catalog.parent, capture_output=True,
                          text=True, timeout=60, env={**ENV, "COORD_USER": user})


def ok(catalog: Path, *args: str) -> str:
    r = coord(catalog, *args)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def audit_json(catalog: Path, *args: str) -> Any:
    return json.loads(ok(catalog, "audit", "--json", *args))


def test_a_cli_edit_records_who_and_its_argv(example_catalog: Path) -> None:
    ok(example_catalog, "todo", "create", "--task", "Bump libcore", "--repo", "api",
       "--blocked-by", "TODO-005")
    ok(example_catalog, "issue", "close", "ISSUE-003")
    first, second = audit_json(example_catalog)
    assert first["who"] == "ana@example.com" and first["op"] == "create_todo"
    assert first["argv"] == ["--file", str(example_catalog), "todo", "create", "--task",
                             "Bump libcore", "--repo", "api", "--blocked-by", "TODO-005"]
    assert sorted(first["ids"]) == ["TODO-005", "TODO-007"]
    assert second["op"] == "close_issue" and second["ids"] == ["ISSUE-003"]
    assert second["changes"][0]["fields"]["status"] == ["open", "closed"]


def test_a_refused_cli_edit_exits_2_and_appends_nothing(example_catalog: Path) -> None:
    ok(example_catalog, "issue", "update", "ISSUE-003", "--priority", "high")
    before = audit.log_path(example_catalog).read_bytes()
    for args in (("todo", "create", "--task", "x", "--repo", "nope"),
                 ("issue", "delete", "ISSUE-002"),
                 ("todo", "update", "TODO-002", "--blocked-by", "TODO-005")):
        r = coord(example_catalog, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert audit.log_path(example_catalog).read_bytes() == before


def test_json_shape_and_limit(example_catalog: Path) -> None:
    ok(example_catalog, "issue", "update", "ISSUE-003", "--priority", "high")
    ok(example_catalog, "todo", "complete", "TODO-006", "--hours", "2")
    got = audit_json(example_catalog)
    assert isinstance(got, list) and len(got) == 2
    for e in got:
        assert set(e) == {"seq", "at", "who", "op", "argv", "ids", "changes", "catalog",
                          "highest", "prev", "hash"}
        # the highest id of each kind ever held (ids are never reused)
        assert e["highest"]["issue"] >= "ISSUE-003" and e["highest"]["todo"] >= "TODO-006"
        assert e["at"].endswith("Z") and len(e["hash"]) == 64
        for c in e["changes"]:
            assert set(c) == {"id", "kind", "action", "fields"}
            assert all(isinstance(v, list) and len(v) == 2 for v in c["fields"].values())
    assert got[1]["prev"] == got[0]["hash"]
    (last,) = audit_json(example_catalog, "--limit", "1")
    assert last == got[1]
    assert last["changes"][0]["fields"]["actual_hours"] == [None, 2.0]


def test_the_table_for_people(example_catalog: Path) -> None:
    ok(example_catalog, "todo", "update", "TODO-002", "--status", "failed")
    out = ok(example_catalog, "audit")
    assert "update_todo" in out and "ana@example.com" in out
    assert '"pending" -> "failed"' in out and "coord --file" in out


def test_no_log_yet(example_catalog: Path) -> None:
    assert ok(example_catalog, "audit").strip() == "no audited edits yet"
    assert audit_json(example_catalog) == []
    assert ok(example_catalog, "audit", "--verify").strip() == "no audited edits yet"
    assert audit_json(example_catalog, "--verify") == {
        "log": str(audit.log_path(example_catalog)), "entries": 0, "intact": True,
        "keyed": 0, "first_bad": None, "catalog_changed_since": None,
        "edited_outside_coord": None, "hand_edits": [], "signers": [], "files": [],
        "reported": False}


def test_verify_passes_then_names_the_first_bad_entry(example_catalog: Path) -> None:
    for prio in ("high", "low", "critical"):
        ok(example_catalog, "issue", "update", "ISSUE-003", "--priority", prio)
    assert ok(example_catalog, "audit", "--verify").strip() == "3 entries, chain intact"
    doc = audit_json(example_catalog, "--verify")
    assert doc["intact"] is True and doc["entries"] == 3 and doc["first_bad"] is None
    assert doc["catalog_changed_since"] is None

    path = audit.log_path(example_catalog)
    lines = path.read_text().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["changes"][0]["fields"]["priority"][1] = "medium"
    path.write_text(lines[0] + json.dumps(entry) + "\n" + lines[2])
    r = coord(example_catalog, "audit", "--verify")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "line 2 (entry 1): changed" in r.stderr
    r = coord(example_catalog, "audit", "--verify", "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["intact"] is False
    assert doc["first_bad"]["line"] == 2 and doc["first_bad"]["index"] == 1

    path.write_text(lines[0] + lines[2])  # entry 1 removed
    r = coord(example_catalog, "audit", "--verify")
    assert r.returncode == 1 and "line 2 (entry 1): removed" in r.stderr


def test_verify_notes_a_hand_edit_after_the_last_entry(example_catalog: Path) -> None:
    ok(example_catalog, "issue", "update", "ISSUE-003", "--priority", "high")
    with example_catalog.open("a") as f:
        f.write("# a note typed in an editor\n")
    out = ok(example_catalog, "audit", "--verify")
    assert "1 entries, chain intact" in out and "changed after the last audited edit" in out


def test_help_says_hand_edits_are_not_audited(example_catalog: Path) -> None:
    out = ok(example_catalog, "audit", "--help")
    assert "by hand" in out and "NOT audited" in out
    assert "audit" in ok(example_catalog, "--help")


@pytest.mark.timeout(180)
def test_concurrent_cli_writers_leave_an_intact_chain(example_catalog: Path) -> None:
    rounds = 3
    for i in range(rounds):
        procs = [
            subprocess.Popen(argv(example_catalog, "todo", "create", "--task", f"{who} {i}",
                                  "--repo", "api", "--json"),
                             cwd=example_catalog.parent, env={**ENV, "COORD_USER": who},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for who in ("alpha", "beta")
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
    doc = audit_json(example_catalog, "--verify")
    assert doc == {"log": str(audit.log_path(example_catalog)), "entries": 2 * rounds,
                   "intact": True, "keyed": 0, "first_bad": None,
                   "catalog_changed_since": None, "edited_outside_coord": [],
                   "hand_edits": [], "signers": [], "files": [], "reported": False}
    got = audit_json(example_catalog)
    assert sorted(e["who"] for e in got) == ["alpha"] * rounds + ["beta"] * rounds
    created = {c["id"] for e in got for c in e["changes"] if c["action"] == "created"}
    assert len(created) == 2 * rounds
