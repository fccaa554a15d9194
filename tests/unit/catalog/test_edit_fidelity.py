"""An edit changes only its own lines (issue #29, item 7), on both edit paths.

Each test runs a `coord` edit (in process, through click) on a catalog text and
compares the whole file afterwards, byte for byte, with the text expected: the
original with only the edited lines changed. The catalog has the shapes a team's
file has: flow lists and maps, flow lists spanning two lines, dependency items in
flow style on two lines, blank lines between sections, comments, `timeout: 60`.

Every test runs twice: on the splice path (the default, what users get; the round
trip is made to fail, so a fallback to it fails the test) and on the full ruamel
round trip (COORD_EDIT_SPLICE=0), which must give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coordination.catalog.file import keep
from coordination.catalog.file import roundtrip as roundtrip_module
from coordination.cli.main import cli
from coordination.settings import get_settings

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
TODAY = dt.date(2026, 11, 23)

TEAM = """\
# Team catalog: three repos, one library the others build on.
version: 1

repos:
  - name: core          # the library
    path: repos/core
    tags: [python, library]
  - name: api
    path: repos/api
    tags: [python,
           http]
  - name: web
    path: repos/web

coordination:
  issues:
    - id: ISSUE-001
      title: "Verify the family on the new core"
      status: open
      repos: [core, api,
              web]
      labels: [verify]
      metadata: {owner: platform, ticket: 42}

  plans:
    - id: PLAN-001
      title: "Verify in dependency order"
      status: active
      repos: [core, api, web]

  todos:
    # core first: everything builds on it
    - id: TODO-001
      task: "Test core"
      repo: core
      plan: PLAN-001
      run: "pytest -q"
      timeout: 60
      env: {PYTHON: "3.13", CI: "1"}
      blocking: [TODO-002, TODO-003]
      labels: [verify, core,
               slow]
    - id: TODO-002
      task: "Test api"
      repo: api
      plan: PLAN-001
      run: "pytest -q tests/api"
      timeout: 60
      retries: 1
      env:
        PYTHON: "3.13"
      blocked_by: [TODO-001]
      acceptance_criteria: ["api suite green",
                            "no new warnings"]
    - id: TODO-003
      task: "Test web"
      repo: web
      plan: PLAN-001
      run: "npm test"
      timeout: 90
      estimated_hours: 1.5
      blocked_by: [TODO-001]  # web waits on core only
      env:
        NODE_ENV: test

  dependencies:
    - {id: DEP-001, consumer: api, provider: core, type: runtime,
       version_constraint: ">=2.0", status: unknown}
    - {id: DEP-002, consumer: web, provider: api,
       type: api, status: satisfied}
"""


def _no_round_trip(*args: object) -> Any:
    raise AssertionError("the edit fell back to the full round trip")


@pytest.fixture(params=["splice", "round-trip"])
def edit_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "splice":
        monkeypatch.setenv("COORD_EDIT_SPLICE", "1")
        monkeypatch.setattr(roundtrip_module, "load_round_trip", _no_round_trip)
    else:
        monkeypatch.setenv("COORD_EDIT_SPLICE", "0")
    get_settings.cache_clear()
    # A fresh date per call, as _today gives (one object twice would be an alias).
    monkeypatch.setattr("coordination.catalog.edits.issue_edits._today",
                        lambda: dt.date.fromordinal(TODAY.toordinal()))
    return str(request.param)


def run(tmp_path: Path, text: str, *args: str) -> str:
    """The catalog's text after `coord ARGS` on a file holding ``text``."""
    path = tmp_path / "ecosystem.yaml"
    path.write_bytes(text.encode())
    result = CliRunner().invoke(cli, ["--file", str(path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return path.read_bytes().decode()


def replaced(text: str, *changes: tuple[str, str]) -> str:
    """``text`` with each ``old`` (found exactly once) replaced by ``new``."""
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_todo_create_keeps_the_blank_line_before_the_next_section(
        tmp_path: Path, edit_path: str) -> None:
    # The new todo goes after the last one, above the blank line that separates
    # `todos:` from `dependencies:`; its blocker (flow map, two-line flow list) gains
    # it in `blocking` and nothing else; numbers are written as given (60, not 60.0).
    after = run(tmp_path, TEAM, "todo", "create", "--task", "Test docs", "--repo", "core",
                "--plan", "PLAN-001", "--run", "make docs", "--timeout", "60",
                "--blocked-by", "TODO-001")
    assert after == replaced(
        TEAM,
        ("      blocking: [TODO-002, TODO-003]\n",
         "      blocking: [TODO-002, TODO-003, TODO-004]\n"),
        ("        NODE_ENV: test\n\n",
         "        NODE_ENV: test\n"
         "    - id: TODO-004\n"
         "      task: Test docs\n"
         "      repo: core\n"
         "      plan: PLAN-001\n"
         "      run: make docs\n"
         "      timeout: 60\n"
         "      status: pending\n"
         "      blocked_by: [TODO-001]\n"
         "\n"),
    )


def test_todo_create_after_a_todo_ending_in_a_two_line_flow_list(
        tmp_path: Path, edit_path: str) -> None:
    text = replaced(TEAM, ("      env:\n        NODE_ENV: test\n",
                           "      labels: [web,\n               slow]\n"))
    after = run(tmp_path, text, "todo", "create", "--task", "Lint", "--repo", "web",
                "--estimate", "0.5", "--criteria", "no warnings at all, not even the old deprecated ones")
    assert after == replaced(
        text,
        ("               slow]\n\n",
         "               slow]\n"
         "    - id: TODO-004\n"
         "      task: Lint\n"
         "      repo: web\n"
         "      status: pending\n"
         "      estimated_hours: 0.5\n"
         "      acceptance_criteria:\n"
         "        - no warnings at all, not even the old deprecated ones\n"
         "\n"),
    )


def test_todo_update_in_a_todo_with_flow_lists_and_maps(tmp_path: Path, edit_path: str) -> None:
    # TODO-002: a block env map and a flow list on two lines; TODO-001 (untouched)
    # a flow map and a two-line flow list.
    after = run(tmp_path, TEAM, "todo", "update", "TODO-002", "--run", "pytest -q -x",
                "--assignee", "ana")
    assert after == replaced(
        TEAM,
        ('      run: "pytest -q tests/api"\n', '      run: "pytest -q -x"\n'),
        ('      blocked_by: [TODO-001]\n      acceptance_criteria: ["api suite green",\n',
         '      blocked_by: [TODO-001]\n      assignee: ana\n'
         '      acceptance_criteria: ["api suite green",\n'),
    )


def test_todo_update_of_blockers_rewrites_only_the_lists_it_changes(
        tmp_path: Path, edit_path: str) -> None:
    # TODO-003 now waits on TODO-002 too: TODO-002 gains `blocking` (its two-line
    # flow list stays), TODO-003's `blocked_by` changes (its end-of-line comment stays).
    after = run(tmp_path, TEAM, "todo", "update", "TODO-003",
                "--blocked-by", "TODO-001,TODO-002")
    assert after == replaced(
        TEAM,
        ("      blocked_by: [TODO-001]\n      acceptance_criteria",
         "      blocked_by: [TODO-001]\n      blocking: [TODO-003]\n      acceptance_criteria"),
        ("      blocked_by: [TODO-001]  # web waits on core only\n",
         "      blocked_by: [TODO-001, TODO-002]  # web waits on core only\n"),
    )


@pytest.mark.parametrize(("args", "changes"), [
    # numbers are written as given
    (("todo", "update", "TODO-003", "--timeout", "120", "--estimate", "2"),
     [("      timeout: 90\n", "      timeout: 120\n"),
      ("      estimated_hours: 1.5\n", "      estimated_hours: 2\n")]),
    (("todo", "update", "TODO-001", "--timeout", "7.5", "--retries", "2"),
     [("      timeout: 60\n      env: {PYTHON",
       "      timeout: 7.5\n      retries: 2\n      env: {PYTHON")]),
    (("todo", "complete", "TODO-003", "--hours", "2"),
     [("      estimated_hours: 1.5\n",
       "      status: completed\n      estimated_hours: 1.5\n      actual_hours: 2\n")]),
    # a status change touches one line: the two-line flow-style dependency items after
    # the todos stay as they are too (a `todo update` used to put each on one long line)
    (("todo", "complete", "TODO-002"),
     [('        PYTHON: "3.13"\n      blocked_by: [TODO-001]\n',
       '        PYTHON: "3.13"\n      status: completed\n      blocked_by: [TODO-001]\n')]),
    (("todo", "update", "TODO-001", "--status", "failed"),
     [('      env: {PYTHON: "3.13", CI: "1"}\n',
       '      env: {PYTHON: "3.13", CI: "1"}\n      status: failed\n')]),
    (("todo", "update", "TODO-003", "--assignee", "dan"),
     [("        NODE_ENV: test\n\n", "        NODE_ENV: test\n      assignee: dan\n\n")]),
    # env edits: new values are quoted as the file quotes ("3.14", not '3.14')
    (("todo", "update", "TODO-001", "--env", "DEBUG=1", "--unset-env", "CI"),
     [('      env: {PYTHON: "3.13", CI: "1"}\n', '      env: {PYTHON: "3.13", DEBUG: "1"}\n')]),
    (("todo", "update", "TODO-002", "--env", "PYTHON=3.14", "--env", "LOG="),
     [('        PYTHON: "3.13"\n      blocked_by',
       '        PYTHON: "3.14"\n        LOG: ""\n      blocked_by')]),
    (("todo", "update", "TODO-003", "--unset-env", "NODE_ENV"),
     [("      env:\n        NODE_ENV: test\n", "")]),
], ids=["numbers-update-timeout-estimate", "numbers-update-float-timeout",
     "numbers-complete-hours", "status-complete", "status-status", "status-last-todo",
     "env-flow-map", "env-block-map", "env-last-variable"])
def test_an_edit_writes_only_its_own_lines(tmp_path: Path, edit_path: str,
                                           args: tuple[str, ...],
                                           changes: list[tuple[str, str]]) -> None:
    assert run(tmp_path, TEAM, *args) == replaced(TEAM, *changes)


def test_issue_create(tmp_path: Path, edit_path: str) -> None:
    after = run(tmp_path, TEAM, "issue", "create", "--title", "Pin the api client",
                "--repos", "web", "--label", "client")
    assert after == replaced(
        TEAM,
        ("      metadata: {owner: platform, ticket: 42}\n\n",
         "      metadata: {owner: platform, ticket: 42}\n"
         "    - id: ISSUE-002\n"
         "      title: Pin the api client\n"
         "      status: open\n"
         "      priority: medium\n"
         "      repos: [web]\n"
         "      created: 2026-11-23\n"
         "      updated: 2026-11-23\n"
         "      labels: [client]\n"
         "\n"),
    )


def test_issue_update(tmp_path: Path, edit_path: str) -> None:
    after = run(tmp_path, TEAM, "issue", "update", "ISSUE-001", "--status", "in_progress")
    assert after == replaced(
        TEAM,
        ("      status: open\n", "      status: in_progress\n"),
        ("              web]\n", "              web]\n      updated: 2026-11-23\n"),
    )


def test_todo_create_with_env(tmp_path: Path, edit_path: str) -> None:
    after = run(tmp_path, TEAM, "todo", "create", "--task", "Build", "--repo", "api",
                "--env", "PYTHON=3.13", "--env", "MODE=release")
    assert after == replaced(TEAM, ("        NODE_ENV: test\n\n",
                                    "        NODE_ENV: test\n"
                                    "    - id: TODO-004\n"
                                    "      task: Build\n"
                                    "      repo: api\n"
                                    '      env: {PYTHON: "3.13", MODE: release}\n'
                                    "      status: pending\n"
                                    "\n"))


def test_a_file_quoting_with_single_quotes_gets_single_quotes(
        tmp_path: Path, edit_path: str) -> None:
    text = TEAM.replace('"', "'")
    after = run(tmp_path, text, "todo", "update", "TODO-001", "--env", "PYTHON=3.14")
    assert after == replaced(text, ("      env: {PYTHON: '3.13', CI: '1'}\n",
                                    "      env: {PYTHON: '3.14', CI: '1'}\n"))


# -- the README's example catalog ---------------------------------------------------
def _diff(before: str, after: str) -> list[str]:
    """The changed lines with one line of context, hunk headers left out."""
    return [line.rstrip("\n") for line in difflib.unified_diff(
        before.splitlines(True), after.splitlines(True), n=1)
        if not line.startswith(("---", "+++", "@@"))]


def test_the_example_catalog(tmp_path: Path, edit_path: str) -> None:
    example = (ROOT / "ecosystem.yaml").read_text()
    after = run(tmp_path, example, "todo", "create", "--task", "Smoke test", "--repo", "api",
                "--plan", "PLAN-001", "--run", "make smoke", "--timeout", "60",
                "--blocked-by", "TODO-006", "--env", "PYTHON=3.13")
    assert _diff(example, after) == [
        "       blocked_by: [TODO-003, TODO-004]",
        "+      blocking: [TODO-007]",
        "       assignee: ben",
        '       acceptance_criteria: ["api and jobs healthy after deploy"]',
        "+    - id: TODO-007",
        "+      task: Smoke test",
        "+      repo: api",
        "+      plan: PLAN-001",
        "+      run: make smoke",
        "+      timeout: 60",
        '+      env: {PYTHON: "3.13"}',
        "+      status: pending",
        "+      blocked_by: [TODO-006]",
        " ",
    ]
    again = run(tmp_path, after, "todo", "update", "TODO-002", "--timeout", "30",
                "--env", "DEBUG=1")
    assert _diff(after, again) == [
        '       undo: "rm -f .python-version"',
        "-      timeout: 60",
        "+      timeout: 30",
        "       retries: 1",
        '-      env: {PYTHON: "3.13"}',
        '+      env: {PYTHON: "3.13", DEBUG: "1"}',
        "       priority: high",
    ]
    done = run(tmp_path, again, "todo", "complete", "TODO-006", "--hours", "1.5")
    assert _diff(again, done) == [
        "       timeout: 60",
        "+      status: completed",
        "       estimated_hours: 2",
        "+      actual_hours: 1.5",
        "       blocked_by: [TODO-003, TODO-004]",
    ]


# -- the merge itself -------------------------------------------------------------
def test_keep_puts_back_the_lines_ruamel_rewrote_and_the_edit_left() -> None:
    orig = "a: [x,\n   y]\nb: 1\nc: {k: v,\n    w: z}\n"
    base = "a: [x, y]\nb: 1\nc: {k: v, w: z}\n"
    new = "a: [x, y]\nb: 2\nc: {k: v, w: z}\n"
    assert keep.keep(orig, base, new, "f") == "a: [x,\n   y]\nb: 2\nc: {k: v,\n    w: z}\n"
    # Changed next to a rewritten line: both, each from its own side.
    new = "a: [x, y]\nb: 2\nd: 3\nc: {k: v, w: z}\n"
    assert keep.keep(orig, base, new, "f") == "a: [x,\n   y]\nb: 2\nd: 3\nc: {k: v,\n    w: z}\n"
    # The edit changed a rewritten line itself: ruamel's writing of it.
    new = "a: [x, y, q]\nb: 1\nc: {k: v, w: z}\n"
    assert keep.keep(orig, base, new, "f") == "a: [x, y, q]\nb: 1\nc: {k: v,\n    w: z}\n"


def test_keep_gives_the_new_text_when_the_merge_reads_differently(
        monkeypatch: pytest.MonkeyPatch) -> None:
    orig = "a: [x,\n   y]\nb: 1\n"
    base = "a: [x, y]\nb: 1\n"
    new = "a: [x, y]\nb: 2\n"
    monkeypatch.setattr(keep, "merge3", lambda *a: ["a: [x]", "b: 2", ""])
    assert keep.keep(orig, base, new, "f") == new


@pytest.mark.parametrize(("text", "rewritten"), [
    ("a: [x, y]\nb: {k: v}\n", False),
    ("a: [x,\n   y]\n", True),
    ("- {id: 1,\n   b: 2}\n", True),
    ("a: [ x ]\n", True),
    ("a: [x,y]\n", True),
    ("a: {k:  v}\n", True),
    ("timeout:   60\n", True),
    ('run: "echo [x"\n', False),
    ("a: [x, y]  # [\n", False),
])
def test_may_rewrite(text: str, rewritten: bool) -> None:
    assert keep.may_rewrite(text) is rewritten
