"""Output that reads well off a terminal: compact JSON, plain tables, summarised validation.

The terminal decision goes through ``render.is_terminal``, patched here; COLUMNS is
unset unless a test sets it (it forces Rich's layout at that width).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from coordination.cli import render
from coordination.cli.main import cli
from tests.unit.support.catalogs import catalog_data
from tests.unit.support.cli import ROOT, write_yaml

pytestmark = pytest.mark.timeout(120)

REASON = ("the consumer's integration suite failed on the new provider build; see the job log "
          "for the stack trace and failing ones.")
assert len(REASON) == 120


@pytest.fixture(autouse=True)
def _log_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A pipe (not a terminal), no COLUMNS, and a cache of the test's own."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(render, "is_terminal", lambda stream: False)


def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "is_terminal", lambda stream: True)


def run(long_text_eco: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--file", str(long_text_eco), *args])


@pytest.fixture
def long_text_eco(tmp_path: Path) -> Path:
    data = catalog_data(3, [(0, 1), (1, 2)], overrides={
        1: {"task": "x" * 120, "description": "first line\nsecond line " + "y" * 100},
    })
    return write_yaml(tmp_path, data)


# -- JSON ---------------------------------------------------------------------------
def test_json_is_compact_off_a_terminal(long_text_eco: Path) -> None:
    r = run(long_text_eco, "todo", "list", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [t["id"] for t in data] == ["TODO-0", "TODO-1", "TODO-2"]
    assert r.output == json.dumps(data, separators=(",", ":")) + "\n"


def test_json_is_pretty_on_a_terminal(long_text_eco: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch)
    r = run(long_text_eco, "todo", "list", "--json")
    data = json.loads(r.output)
    assert r.output == json.dumps(data, indent=2) + "\n"
    assert '\n  {\n    "id": "TODO-0",' in r.output


class Colour(str, Enum):
    red = "red"


def test_dumps_converts_models_enums_dates_sets_and_odd_keys(long_text_eco: Path) -> None:
    from coordination.catalog.file.store import CatalogStore

    todo = CatalogStore(long_text_eco, cache_dir=None).load().todo("TODO-0")
    data = {"todo": todo, "colour": Colour.red, "day": dt.date(2026, 1, 2), "tags": {"a"},
            "where": Path("/x"), Colour.red: 1}
    want = {"todo": todo.model_dump(mode="json"), "colour": "red", "day": "2026-01-02",
            "tags": ["a"], "where": "/x", "red": 1}
    assert json.loads(render.dumps(data, pretty=False)) == want
    assert json.loads(render.dumps({Path("/k"): dt.date(2026, 1, 2)}, pretty=False)) == {
        "/k": "2026-01-02"}  # keys json refuses go through to_jsonable
    with pytest.raises(TypeError):
        render.dumps({"x": object()}, pretty=False)


# -- tables -------------------------------------------------------------------------
def sweep_status(reason: str) -> dict[str, Any]:
    todo = {"status": "failed", "repo": "api", "attempts": 2, "exit_code": 1, "duration": 3.25,
            "worker": "w1@host", "reason": reason}
    return {"sweep_id": "S-1", "plan": "PLAN-1", "strategy": "levels", "status": "failed",
            "reason": "1 todo failed", "todos": {"TODO-1": todo, "TODO-2": {**todo, "reason": ""}}}


def test_a_table_off_a_terminal_keeps_a_long_reason_on_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    from coordination.cli.sweep_render import render_status

    render_status(sweep_status(REASON), lines=0)  # (the table alone: no output lines)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4, lines  # the summary, the header, two rows: nothing wrapped
    header, row = lines[1], lines[2]
    assert header.split() == ["todo", "repo", "status", "attempts", "exit", "seconds", "worker",
                              "reason"]
    assert row.startswith("TODO-1  ") and row.endswith(REASON)
    assert row.split()[:7] == ["TODO-1", "api", "failed", "2", "1", "3.2", "w1@host"]
    assert header.index("reason") == row.index(REASON)  # columns aligned
    assert lines[3].rstrip() == lines[3] and lines[3].startswith("TODO-2")
    assert all(len(line.strip()) > 3 for line in lines)  # no column one letter per line


def test_a_large_sweep_shows_its_counts_and_the_todos_that_did_not_succeed(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A template over a fleet: a row per instance is 10,000 lines; the view says how
    many ended how, then lists the ones to look at, and --all lists every one."""
    from coordination.cli.sweep_render import MOST_ROWS, render_status

    doc = sweep_status("")
    ok = {**doc["todos"]["TODO-1"], "status": "succeeded", "exit_code": 0, "reason": ""}
    bad = {**doc["todos"]["TODO-1"], "reason": "exit 1"}
    todos = {f"TODO-9[r{i:03d}]": dict(ok) for i in range(200)}
    for i in (7, 42):
        todos[f"TODO-9[r{i:03d}]"] = dict(bad)
    render_status({**doc, "todos": todos}, lines=0)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "200 todos: 198 succeeded, 2 failed"
    rows = [line for line in out if line.startswith("TODO-9[")]
    assert [r.split()[0] for r in rows] == ["TODO-9[r007]", "TODO-9[r042]"]
    assert out[-1].endswith("--all` lists every todo")
    render_status({**doc, "todos": todos}, lines=0, every=True)
    assert len([line for line in capsys.readouterr().out.splitlines()
                if line.startswith("TODO-9[")]) == 200
    many_bad = {f"TODO-9[r{i:03d}]": dict(bad) for i in range(MOST_ROWS + 5)}
    render_status({**doc, "todos": many_bad}, lines=0)
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("TODO-9[")]) == MOST_ROWS
    assert "and 5 more that did not succeed" in out[-1]


def test_columns_is_honoured_off_a_terminal(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.cli.sweep_render import render_status

    monkeypatch.setenv("COLUMNS", "100")
    render_status(sweep_status(REASON))
    out = capsys.readouterr().out
    assert REASON not in out  # folded to fit 100 columns, as asked
    assert max(len(line) for line in out.splitlines()) <= 100


def test_on_a_terminal_tables_are_rich(long_text_eco: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "200")
    out = run(long_text_eco, "todo", "list").output
    assert "┃ id" in out or "| id" in out, out


def test_todo_list_and_show_off_a_terminal_are_plain_and_unwrapped(long_text_eco: Path) -> None:
    lines = run(long_text_eco, "todo", "list").output.splitlines()
    assert lines[0] == "Todos" and lines[1].split()[:4] == ["id", "status", "repo", "task"]
    assert len(lines) == 5
    row = next(line for line in lines if line.startswith("TODO-1 "))
    assert "x" * 120 in row and row.split() == ["TODO-1", "pending", "web", "x" * 120,
                                                "PLAN-1", "TODO-0"]
    shown = run(long_text_eco, "todo", "show", "TODO-1").output.splitlines()
    assert shown[0] == f"TODO-1: {'x' * 120}"
    desc = next(line for line in shown if line.startswith("description"))
    assert desc.split(None, 1)[1] == "first line second line " + "y" * 100


def test_long_lines_are_not_wrapped_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    render.say(f"[yellow]warning[/yellow] {render.esc(REASON * 2)}")
    assert capsys.readouterr().out == f"warning {REASON * 2}\n"


# -- plan validate -------------------------------------------------------------------
@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """12 todos, each after the 3 before it (2 redundant edges each), and 7 without `run`."""
    edges = [(u, v) for v in range(12) for u in range(max(0, v - 3), v)]
    return write_yaml(tmp_path, catalog_data(12, edges, overrides={
        i: {"run": None} for i in range(7)}))


def test_validate_summarises_each_kind(tangled: Path) -> None:
    doc = json.loads(run(tangled, "plan", "validate", "PLAN-1", "--json").output)
    by_code: dict[str, list[str]] = {}
    for f in doc["findings"]:
        by_code.setdefault(f["code"], []).append(f["message"])
    assert len(by_code["redundant-edge"]) == 19 and len(by_code["no-run"]) == 7
    assert doc["warnings"] == 19 and doc["errors"] == 7  # --json keeps every one

    r = run(tangled, "plan", "validate", "PLAN-1")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    red = [line for line in lines if line.startswith("warning redundant-edge: ")]
    assert red[:5] == [f"warning redundant-edge: {m}" for m in by_code["redundant-edge"][:5]]
    assert red[5:] == ["warning redundant-edge: 14 more, 19 in all (--all-findings lists every "
                       "one)"]
    runs = [line for line in lines if line.startswith("error no-run: ")]
    assert runs[:5] == [f"error no-run: {m}" for m in by_code["no-run"][:5]]
    assert runs[5:] == ["error no-run: 2 more, 7 in all (--all-findings lists every one)"]
    assert lines.index(runs[0]) < lines.index(red[0])  # errors first
    assert lines[-1] == "PLAN-1: invalid (7 error(s), 19 warning(s))"


def test_validate_all_findings_prints_every_one(tangled: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads(run(tangled, "plan", "validate", "PLAN-1", "--json").output)
    want = [f"{f['severity']} {f['code']}: {f['message']}" for f in doc["findings"]]
    r = run(tangled, "plan", "validate", "PLAN-1", "--all-findings")
    assert r.stdout.splitlines()[:-1] == want
    terminal(monkeypatch)  # the same lines through Rich
    monkeypatch.setenv("COLUMNS", "300")
    r = run(tangled, "plan", "validate", "PLAN-1", "--all-findings")
    assert r.stdout.splitlines()[:-1] == want


def test_validate_of_many_findings_is_fast(tmp_path: Path) -> None:
    """2,000 todos each after the 3 before it: ~4,000 warnings, printed in well under a second."""
    import time

    edges = [(u, v) for v in range(2000) for u in range(max(0, v - 3), v)]
    long_text_eco = write_yaml(tmp_path, catalog_data(2000, edges))
    run(long_text_eco, "todo", "list", "--json")  # warm the cache: time the printing, not YAML
    for args in ((), ("--all-findings",)):
        t0 = time.perf_counter()
        r = run(long_text_eco, "plan", "validate", "PLAN-1", *args)
        elapsed = time.perf_counter() - t0
        assert "3,995 in all" in r.stdout or len(r.stdout.splitlines()) == 3996
        assert elapsed < 5, elapsed  # one Rich print per line took ~1 s per 4,000


# -- todo list from the cache ----------------------------------------------------------
def test_todo_list_from_the_cache_equals_the_models(tmp_path: Path) -> None:
    from coordination.catalog.manager import CoordinationManager
    from coordination.catalog.reads.cached import list_todos
    from coordination.errors import NotFoundError, UsageError

    data = catalog_data(6, [(0, 1)], overrides={2: {"assignee": "ana", "status": "completed"},
                                                  4: {"plan": None}},
                        plans=[{"id": "PLAN-2", "title": "other", "status": "active",
                                "milestones": [{"id": "MS-1", "title": "m", "todos": ["TODO-4"]}]}])
    long_text_eco = write_yaml(tmp_path, data)
    manager = CoordinationManager(long_text_eco)
    for filters in ({}, {"status": "completed"}, {"repo": "api"}, {"assignee": "ana"},
                    {"plan": "PLAN-2"}, {"plan": "PLAN-1", "status": "pending"}):
        want = [t.model_dump(mode="json") for t in manager.reads.list_todos(**filters)]
        assert list_todos(long_text_eco, **filters) == want, filters  # cold (a miss), then warm
        assert list_todos(long_text_eco, **filters) == want, filters
    with pytest.raises(NotFoundError, match="unknown repo 'nope'"):
        list_todos(long_text_eco, repo="nope")
    with pytest.raises(NotFoundError, match="PLAN-9"):
        list_todos(long_text_eco, plan="PLAN-9")
    with pytest.raises(UsageError, match="done"):
        list_todos(long_text_eco, status="done")
    assert list_todos(long_text_eco, status="failed") == []


def test_todo_list_after_a_spliced_edit_has_every_field(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # An edit caches the set fields only (edits need to know which keys an item has);
    # the model-free read must still print defaults, as the models would.
    from coordination.catalog.file import cache
    from coordination.catalog.manager import CoordinationManager
    from coordination.catalog.reads.cached import list_todos

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    long_text_eco = write_yaml(tmp_path, catalog_data(5, [(0, 1)]))
    manager = CoordinationManager(long_text_eco)
    manager.store.update(lambda doc: doc["coordination"]["todos"][3].__setitem__(
        "assignee", "ana"))
    assert manager.store.last_edit == "splice"
    token = cache.digest(long_text_eco.read_bytes())
    full = cache.cache_file(cache.default_cache_dir(), token, cache.ALL_FIELDS)
    assert full is not None and full.exists()  # written with the edit's own entry
    full.unlink()  # as if only the store's entry were there: the read adds its own
    want = [t.model_dump(mode="json") for t in CoordinationManager(long_text_eco).reads.list_todos()]
    assert want[3]["assignee"] == "ana" and "status" in want[0] and "priority" in want[0]
    assert list_todos(long_text_eco) == want
    assert full.exists()
    assert list_todos(long_text_eco) == want


def test_a_warm_todo_list_json_imports_no_models(long_text_eco: Path, tmp_path: Path) -> None:
    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + json.dumps(sorted("
             "{m.split('.')[0] for m in sys.modules})) + '\\n'))\n"
             "from coordination.cli.main import main\n"
             "main(['--file', sys.argv[1], 'todo', 'list', '--json'])\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def modules() -> set[str]:
        r = subprocess.run([sys.executable, "-c", probe, str(long_text_eco)], capture_output=True,
                           text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)) == 3
        line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")][-1]
        return set(json.loads(line[len("MODULES "):]))

    assert "pydantic" in modules()  # cold: loaded, validated, cached
    warm = modules()
    assert not warm & {"pydantic", "pydantic_core", "ruamel", "rich", "networkx"}, warm


def test_the_light_cap_default_is_the_settings_default() -> None:
    from coordination.catalog.file.cache import DEFAULT_MAX_CATALOG_BYTES
    from coordination.settings import Settings

    assert Settings.model_fields["max_catalog_bytes"].default == DEFAULT_MAX_CATALOG_BYTES


def test_loading_pauses_the_gc_and_restores_it(long_text_eco: Path) -> None:
    import gc

    from coordination.catalog.file import loader

    seen: list[bool] = []
    real = loader.check_catalog
    try:
        loader.check_catalog = lambda *a, **k: (seen.append(gc.isenabled()), real(*a, **k))[1]
        gc.enable()  # (an in-process CLI run of another test in this process may have left it off)
        loader.load_catalog(long_text_eco.read_bytes(), str(long_text_eco))
        assert seen == [False] and gc.isenabled()
        gc.disable()
        loader.load_catalog(long_text_eco.read_bytes(), str(long_text_eco))
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
        loader.check_catalog = real
    assert os.environ.get("COLUMNS") is None and yaml  # fixture sanity


def test_a_fleet_without_workers_is_named_in_ten_repos_and_a_count() -> None:
    """A sweep over 10,000 repos none of whose workers run: the refusal names ten and
    counts the rest, and its hint is one worker command, not 10,000 of them."""
    from coordination.cli.unattended import warn_unattended
    from coordination.errors import UsageError

    missing = [f"svc-{i:05d}" for i in range(10_000)]
    with pytest.raises(UsageError) as err:
        warn_unattended(missing, require=True)
    text = f"{err.value.message} {err.value.hint}"
    assert "svc-00009 and 9990 more" in text and "svc-00010" not in text
    assert text.count("coord worker") == 1 and len(text) < 500
    with pytest.raises(UsageError) as err:
        warn_unattended(["web", "api"], require=True)
    assert "web, api" in str(err.value)
    assert "coord worker --repo web; coord worker --repo api" in str(err.value.hint)
