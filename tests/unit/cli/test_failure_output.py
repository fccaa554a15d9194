"""Why a todo failed, where people look (no --json): the summary at the end of every
--wait, `sweep status` and `sweep watch` show each failed todo's last lines of output,
stderr first (--lines N, 0 for none); `todo show` of a todo a sync marked failed shows
its last failure from the history. Embedded, each command in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.sweeps.reading import last_lines
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(120)

FAILING = ("for i in 1 2 3 4 5 6 7 8 9; do echo out$i; done; "
           "echo err-a >&2; echo 'err-b [red]not markup[/red]' >&2; exit 3")
ERR_B = "err-b [red]not markup[/red]"


def in_order(text: str, *parts: str) -> bool:
    at = [text.find(p) for p in parts]
    return all(i >= 0 for i in at) and at == sorted(at)


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(catalog, sweep id, stderr of `plan sweep --wait`) of a sweep where TODO-002 failed."""
    eco = write_catalog(tmp_path_factory.mktemp("fail") / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo hello-ok"},
        {"id": "TODO-002", "repo": "web", "run": FAILING, "blocked_by": ["TODO-001"]},
    ])
    r = coord(eco, "plan", "sweep", PLAN, "--wait")
    assert r.returncode == 1, r.stderr
    return eco, r.stdout.strip(), r.stderr


def test_the_end_of_a_wait_shows_each_failed_todos_last_lines(
        failed: tuple[Path, str, str]) -> None:
    _eco, _sid, err = failed
    assert "TODO-002 failed (exit 3), last 5 lines of output:" in err, err
    # stderr's lines first, then stdout's last ones up to 5 in all; printed as is
    assert in_order(err, "stderr:", "err-a", ERR_B, "stdout:", "out7", "out8", "out9"), err
    assert "out6" not in err
    assert "hello-ok" not in err  # a todo that succeeded shows no output


def test_sweep_status_shows_them_and_lines_chooses_how_many(
        failed: tuple[Path, str, str]) -> None:
    eco, sid, _err = failed
    r = coord(eco, "sweep", "status", sid)
    assert r.returncode == 0, r.stderr
    assert in_order(r.stdout, "TODO-002 failed (exit 3)", "err-a", ERR_B, "out7", "out9"), r.stdout
    r = coord(eco, "sweep", "status", sid, "--lines", "1")
    assert r.returncode == 0, r.stderr
    assert "last 1 line of output" in r.stdout and ERR_B in r.stdout, r.stdout
    assert "err-a" not in r.stdout and "out9" not in r.stdout
    r = coord(eco, "sweep", "status", sid, "--lines", "4")
    assert in_order(r.stdout, "err-a", ERR_B, "out8", "out9") and "out7" not in r.stdout
    r = coord(eco, "sweep", "status", sid, "--lines", "0")
    assert r.returncode == 0, r.stderr
    assert "TODO-002" in r.stdout and "err-" not in r.stdout and "of output" not in r.stdout
    # --json is the document it was: the whole tail, nothing printed besides
    r = coord(eco, "sweep", "status", sid, "--json", "--lines", "1")
    doc = json.loads(r.stdout)
    tail = doc["todos"]["TODO-002"]["output_tail"]
    assert "out1" in tail and "err-a" in tail


def test_sweep_watch_shows_them(failed: tuple[Path, str, str]) -> None:
    eco, sid, _err = failed
    r = coord(eco, "sweep", "watch", sid, "--no-sync", "--lines", "3")
    assert r.returncode == 1, r.stderr
    assert in_order(r.stderr, "last 3 lines of output", "err-a", ERR_B, "out9"), r.stderr
    assert "out8" not in r.stderr


def test_todo_show_of_a_failed_todo_shows_its_last_failure(
        failed: tuple[Path, str, str]) -> None:
    eco, sid, _err = failed
    r = coord(eco, "todo", "show", "TODO-002")
    assert r.returncode == 0, r.stderr
    assert "last failure" in r.stdout, r.stdout
    shown = r.stdout[r.stdout.index("last failure"):]  # (the run: line says exit 3 too)
    assert in_order(shown, sid, "exit 3", "err-a", ERR_B, "out9"), r.stdout
    r = coord(eco, "todo", "show", "TODO-002", "--lines", "1")
    shown = r.stdout[r.stdout.index("last failure"):]
    assert ERR_B in shown and "err-a" not in shown, r.stdout
    r = coord(eco, "todo", "show", "TODO-002", "--lines", "0")
    assert "last failure" not in r.stdout, r.stdout
    r = coord(eco, "todo", "show", "TODO-001")  # completed: no history read, nothing shown
    assert r.returncode == 0 and "last failure" not in r.stdout, r.stdout
    r = coord(eco, "todo", "show", "TODO-002", "--json")  # the todo's document, as it was
    assert json.loads(r.stdout)["status"] == "failed"


# -- the tail, read apart ----------------------------------------------------------------
TAIL = ("--- stdout ---\none\ntwo\nthree\n\n"
        "--- stderr (last 9 chars of 900 bytes) ---\nboom\nbang\n")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("n", "want"), [
    (0, []),
    (1, [("stderr", ["bang"])]),
    (2, [("stderr", ["boom", "bang"])]),
    (3, [("stderr", ["boom", "bang"]), ("stdout", ["three"])]),
    (9, [("stderr", ["boom", "bang"]), ("stdout", ["one", "two", "three"])]),
])
def test_last_lines_are_stderrs_first_then_stdouts(n: int, want: list[object]) -> None:
    assert last_lines(TAIL, n) == want


@pytest.mark.timeout(10)
def test_last_lines_of_a_tail_cut_at_its_front_or_empty() -> None:
    # history keeps a tail's last KiB: its first label may be gone
    assert last_lines("ne\ntwo\n--- stderr ---\nboom\n", 5) == [
        ("stderr", ["boom"]), ("output", ["ne", "two"])]
    assert last_lines("", 5) == [] and last_lines(None, 5) == []
    assert last_lines("--- stdout ---\n\n\n", 5) == []


def test_a_compensated_todo_shows_its_changes_output_and_its_undos(tmp_path: Path) -> None:
    """After a rollback, a todo its undo compensated shows both tails, labelled: its
    change's output, then its undo's (0.4.0 showed both only for compensation_failed;
    --json and the web view kept both already)."""
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo change-of-1", "undo": "echo undo-of-1"},
        {"id": "TODO-002", "repo": "web", "run": "echo broken >&2; exit 3",
         "blocked_by": ["TODO-001"]},
    ])
    r = coord(eco, "plan", "sweep", PLAN, "--atomic", "--wait")
    assert r.returncode == 1, r.stderr
    sid = r.stdout.strip()
    doc = json.loads(coord(eco, "sweep", "status", sid, "--json").stdout)
    assert doc["todos"]["TODO-001"]["status"] == "compensated", doc
    text = coord(eco, "sweep", "status", sid).stdout
    assert in_order(text, "TODO-001 compensated, last 5 lines of its change's output:",
                    "change-of-1", "TODO-001 last 5 lines of its undo's output:",
                    "undo-of-1"), text
    assert "TODO-002 failed (exit 3), last 5 lines of output:" in text, text
    quiet = coord(eco, "sweep", "status", sid, "--lines", "0").stdout
    assert "change-of-1" not in quiet and "undo-of-1" not in quiet, quiet
