"""The audit log: one hash-chained entry per catalog edit made through coord.

Each edit kind of the manager (and sweep sync) appends exactly one entry with
who, the operation, the ids and the changed fields; a refused edit appends
nothing; two processes editing at once leave an intact chain; verify names the
first changed, removed, inserted, reordered or cut entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.file.store import CatalogStore
from coordination.errors import OperationFailed, UsageError

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
WHO = "ana@example.com"


def entries(catalog: Path) -> list[dict[str, Any]]:
    path = audit.log_path(catalog)
    return audit.read(path) if path.exists() else []


def log_lines(catalog: Path) -> list[str]:
    return audit.log_path(catalog).read_text(encoding="utf-8").splitlines(keepends=True)


def one_entry(catalog: Path, before: int) -> dict[str, Any]:
    """The one entry the edit appended (fails if it appended none or several)."""
    got = entries(catalog)
    assert len(got) == before + 1, [e["op"] for e in got[before:]]
    return got[-1]


def fields_of(entry: dict[str, Any], id_: str) -> tuple[str, dict[str, list[Any]]]:
    (change,) = [c for c in entry["changes"] if c["id"] == id_]
    return change["action"], change["fields"]


# -- one entry per edit kind -------------------------------------------------------------
EDITS: list[tuple[str, Callable[[CoordinationManager], Any], list[str],
                  dict[str, tuple[str, dict[str, list[Any]]]]]] = [
    ("create_issue", lambda m: m.issues.create("New one", repos=["api"], dependencies=["ISSUE-003"]),
     ["ISSUE-003", "ISSUE-004"],
     {"ISSUE-003": ("updated", {"blocking": [[], ["ISSUE-004"]]})}),
    ("update_issue", lambda m: m.issues.update("ISSUE-003", priority="high"), ["ISSUE-003"], {}),
    ("close_issue", lambda m: m.issues.close("ISSUE-001"), ["ISSUE-001"], {}),
    ("delete_issue", lambda m: m.issues.delete("ISSUE-003"), ["ISSUE-002", "ISSUE-003"],
     {"ISSUE-002": ("updated", {"blocking": [["ISSUE-003"], []]})}),
    ("create_todo", lambda m: m.todos.create("Bump", "api", blocked_by=["TODO-005"]),
     ["TODO-005", "TODO-007"],
     {"TODO-005": ("updated", {"blocking": [[], ["TODO-007"]]})}),
    ("update_todo", lambda m: m.todos.update("TODO-002", status="failed", assignee="dan"),
     ["TODO-002"], {}),
    ("complete_todo", lambda m: m.todos.complete("TODO-006", hours=2.5), ["TODO-006"],
     {"TODO-006": ("updated", {"status": ["pending", "completed"],
                               "actual_hours": [None, 2.5]})}),
    ("delete_todo", lambda m: m.todos.delete("TODO-006", force=True),
     ["PLAN-001", "TODO-003", "TODO-004", "TODO-006"], {}),
    ("check_dependencies", lambda m: m.dependencies.check(consumer="api"), ["DEP-001"],
     {"DEP-001": ("updated", {"status": ["unknown", "satisfied"]})}),
]


@pytest.mark.parametrize("op,edit,ids,expected", EDITS, ids=[e[0] for e in EDITS])
def test_each_edit_appends_one_entry(
    mgr: CoordinationManager, example_catalog: Path, op: str,
    edit: Callable[[CoordinationManager], Any], ids: list[str],
    expected: dict[str, tuple[str, dict[str, list[Any]]]],
) -> None:
    mgr.issues.update("ISSUE-002", labels=["ci"])  # the entry under test is not the first
    before = len(entries(example_catalog))
    edit(mgr)
    e = one_entry(example_catalog, before)
    assert e["who"] == WHO
    assert e["op"] == op
    assert e["argv"] is None  # not run from the CLI
    assert sorted(e["ids"]) == ids
    for id_, (action, fields) in expected.items():
        assert fields_of(e, id_) == (action, fields)
    assert e["catalog"] == hashlib.sha256(example_catalog.read_bytes()).hexdigest()
    assert audit.verify(audit.log_path(example_catalog)) == (before + 1, None)


def test_before_after_holds_only_the_changed_fields(
    mgr: CoordinationManager, example_catalog: Path
) -> None:
    mgr.issues.update("ISSUE-003", priority="high", assignee="dan")
    (e,) = entries(example_catalog)
    action, fields = fields_of(e, "ISSUE-003")
    assert action == "updated"
    assert fields.pop("updated")[1] is not None  # update_issue stamps the date
    assert fields == {"priority": ["low", "high"], "assignee": ["chloe", "dan"]}


def test_close_is_logged_as_close_not_as_the_update_it_calls(
    mgr: CoordinationManager, example_catalog: Path
) -> None:
    mgr.issues.close("ISSUE-003")
    (e,) = entries(example_catalog)
    assert e["op"] == "close_issue"
    assert fields_of(e, "ISSUE-003")[1]["status"] == ["open", "closed"]


def test_created_and_deleted_items_keep_their_fields(
    mgr: CoordinationManager, example_catalog: Path
) -> None:
    todo = mgr.todos.create("Bump libcore", "api", run="make test", labels=["py"])
    mgr.todos.delete(todo.id)
    created, deleted = entries(example_catalog)
    action, fields = fields_of(created, todo.id)
    assert action == "created"
    assert fields["task"] == [None, "Bump libcore"] and fields["run"] == [None, "make test"]
    assert "description" not in fields  # empty fields are left out
    action, fields = fields_of(deleted, todo.id)
    assert action == "deleted"
    assert fields["task"] == ["Bump libcore", None] and fields["labels"] == [["py"], None]


def test_long_values_are_shortened(mgr: CoordinationManager, example_catalog: Path) -> None:
    mgr.todos.update("TODO-002", description="x" * 5000)
    (e,) = entries(example_catalog)
    new = fields_of(e, "TODO-002")[1]["description"][1]
    assert isinstance(new, str) and len(new) < audit.MAX_VALUE + 40
    assert new.endswith("(5002 chars)")  # the JSON text, quotes included
    assert len(audit.log_path(example_catalog).read_bytes()) < 2000


def test_sweep_sync_appends_one_entry(
    rt: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.support.sweeps import run_sweep, write_catalog

    monkeypatch.setenv("COORD_USER", "ci-bot")
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "exit 3", "blocked_by": ["TODO-001"]},
    ])
    svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "failed"
    assert entries(cat) == []  # running a sweep does not write the catalog
    svc.sync(sid)
    (e,) = entries(cat)
    assert e["op"] == "SweepService.sync" and e["who"] == "ci-bot"
    assert sorted(e["ids"]) == ["TODO-001", "TODO-002"]
    assert fields_of(e, "TODO-001")[1]["status"] == ["pending", "completed"]
    assert fields_of(e, "TODO-002")[1] == {"status": ["pending", "failed"]}


def test_an_edit_that_changes_nothing_is_still_one_entry(
    mgr: CoordinationManager, example_catalog: Path
) -> None:
    mgr.todos.update("TODO-002", status="pending")  # it is pending already
    (e,) = entries(example_catalog)
    assert e["op"] == "update_todo" and e["ids"] == [] and e["changes"] == []


def test_a_named_operation_and_argv_reach_the_entry(example_catalog: Path) -> None:
    store = CatalogStore(example_catalog)
    with audit.invoked_as(["todo", "create", "--task", "x"]), audit.operation("outer"):
        with audit.operation("inner"):  # the outer name wins
            store.update(lambda doc: doc["repos"][0].__setitem__("role", "lib"))
    (e,) = entries(example_catalog)
    assert e["op"] == "outer" and e["argv"] == ["todo", "create", "--task", "x"]
    assert fields_of(e, "libcore")[0] == "updated"


# -- refused edits append nothing ------------------------------------------------------------
REFUSED: list[Callable[[CoordinationManager], Any]] = [
    lambda m: m.todos.create("x", "nope"),  # unknown repo
    lambda m: m.todos.create("  ", "api"),  # empty task
    lambda m: m.issues.update("ISSUE-001", status="bogus"),
    lambda m: m.issues.update("ISSUE-404", title="t"),
    lambda m: m.todos.update("TODO-002", blocked_by=["TODO-005"]),  # a cycle
    lambda m: m.issues.delete("ISSUE-002"),  # still referenced
    lambda m: m.todos.complete("TODO-002", hours=-1),
]


@pytest.mark.parametrize("edit", REFUSED, ids=[
    "unknown-repo", "empty-task", "bad-status", "unknown-id", "cycle", "referenced",
    "negative-hours"])
def test_refused_edits_append_nothing(
    mgr: CoordinationManager, example_catalog: Path, edit: Callable[[CoordinationManager], Any]
) -> None:
    mgr.issues.create("first")
    before = log_lines(example_catalog)
    with pytest.raises(UsageError):
        edit(mgr)
    assert log_lines(example_catalog) == before


def test_an_edit_the_schema_refuses_appends_nothing(example_catalog: Path) -> None:
    from coordination.errors import CatalogError

    with pytest.raises(CatalogError):
        CatalogStore(example_catalog).update(lambda doc: doc["repos"][0].__setitem__(
            "concurrency", 0))
    assert not audit.log_path(example_catalog).exists()


def test_an_unwritable_log_is_reported_and_the_edit_stands(
    mgr: CoordinationManager, example_catalog: Path
) -> None:
    audit.log_path(example_catalog).mkdir()  # a directory where the log should be
    with pytest.raises(OperationFailed, match="audit entry could not be appended"):
        mgr.issues.update("ISSUE-003", priority="high")
    assert mgr.reads.get_issue("ISSUE-003").priority.value == "high"


# -- who ------------------------------------------------------------------------------------
def _no_git_identity(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.delenv("COORD_USER", raising=False)
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL", "GIT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(home.parent))


def test_who_prefers_coord_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_USER", " ci-bot ")
    assert audit.who(tmp_path) == "ci-bot"


def test_who_falls_back_to_git_email_in_the_catalog_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_git_identity(monkeypatch, tmp_path / "home")
    repo = tmp_path / "checkout"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "bo@example.com"], cwd=repo, check=True)
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "os-user")
    assert audit.who(repo) == "bo@example.com"
    monkeypatch.setenv("COORD_USER", "ci-bot")
    assert audit.who(repo) == "ci-bot"


def test_who_falls_back_to_the_os_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_git_identity(monkeypatch, tmp_path / "home")
    (tmp_path / "plain").mkdir()
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "os-user")
    assert audit.who(tmp_path / "plain") == "os-user"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no git at all
    assert audit.who(tmp_path / "plain") == "os-user"

    def no_user() -> str:
        raise KeyError("no passwd entry")

    monkeypatch.setattr(audit.getpass, "getuser", no_user)
    assert audit.who(tmp_path / "plain") == f"uid:{os.getuid()}"


def test_the_entry_uses_the_fallback(
    example_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_git_identity(monkeypatch, tmp_path / "home")
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "os-user")
    CoordinationManager(example_catalog).issues.create("by the OS user")
    assert entries(example_catalog)[0]["who"] == "os-user"


def test_git_is_asked_once_per_process_for_who(
    example_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's command asks who twice (who started it, who wrote its outcome): git
    answers once; another directory or environment is asked again."""
    _no_git_identity(monkeypatch, tmp_path / "home")
    repo = tmp_path / "checkout"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "bo@example.com"], cwd=repo, check=True)
    asked: list[Path] = []
    real = audit.gitsafe.run

    def counted(args: list[str], **kw: Any) -> Any:
        asked.append(Path(kw["cwd"]))
        return real(args, **kw)

    monkeypatch.setattr(audit.gitsafe, "run", counted)
    monkeypatch.setattr(audit, "_GIT_EMAILS", {})
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "os-user")
    assert audit.who(repo) == "bo@example.com"
    assert audit.who(repo / ".." / "checkout") == "bo@example.com"  # the same directory
    assert asked == [repo]
    monkeypatch.setenv("COORD_USER", "ci-bot")  # read every time
    assert audit.who(repo) == "ci-bot"
    monkeypatch.delenv("COORD_USER")
    assert audit.who(tmp_path) == "os-user"  # another directory: asked
    assert audit.who(tmp_path) == "os-user"
    assert asked == [repo, tmp_path]
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "other"))  # another environment
    assert audit.who(repo) == "bo@example.com"
    assert len(asked) == 3
    # The audit entry of an edit asks it where it asks for the catalog's directory.
    manager = CoordinationManager(example_catalog)
    manager.issues.create("one")
    manager.issues.create("two")
    assert asked[3:] == [example_catalog.resolve().parent]
    assert [e["who"] for e in entries(example_catalog)] == ["os-user", "os-user"]


# -- concurrent writers ----------------------------------------------------------------------
WRITER = """
import sys, time
from coordination.catalog.audit import log as audit
from coordination.catalog.manager import CoordinationManager
real = audit._last_entry
def slow(fd):  # widen the window between reading the chain's end and appending
    got = real(fd)
    time.sleep(0.25)
    return got
audit._last_entry = slow
m = CoordinationManager(sys.argv[1])
for i in range(int(sys.argv[3])):
    m.todos.create(f"{sys.argv[2]} {i}", "api")
"""


@pytest.mark.timeout(180)
def test_two_processes_editing_at_once_leave_an_intact_chain(example_catalog: Path) -> None:
    n = 5
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(example_catalog), name, str(n)],
                         env={**env, "COORD_USER": name}, stderr=subprocess.PIPE, text=True)
        for name in ("alpha", "beta")
    ]
    for p in procs:
        _, err = p.communicate(timeout=170)
        assert p.returncode == 0, err
    got = entries(example_catalog)
    assert audit.verify(audit.log_path(example_catalog)) == (2 * n, None)
    assert sorted(e["who"] for e in got) == ["alpha"] * n + ["beta"] * n
    created = [c["id"] for e in got for c in e["changes"] if c["action"] == "created"]
    todos = {t.id for t in CoordinationManager(example_catalog).reads.list_todos()}
    assert len(set(created)) == 2 * n and set(created) <= todos
    assert [e["seq"] for e in got] == list(range(2 * n))


# -- verify ----------------------------------------------------------------------------------
@pytest.fixture
def four(mgr: CoordinationManager, example_catalog: Path) -> Path:
    """A log of four entries; returns its path."""
    mgr.issues.create("one")
    mgr.issues.update("ISSUE-003", priority="high")
    mgr.todos.complete("TODO-006")
    mgr.todos.create("four", "api")
    path = audit.log_path(example_catalog)
    assert audit.verify(path) == (4, None)
    return path


def rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def test_verify_detects_a_changed_field(four: Path) -> None:
    lines = four.read_text().splitlines(keepends=True)
    e = json.loads(lines[1])
    e["who"] = "mallory"
    lines[1] = json.dumps(e) + "\n"
    rewrite(four, lines)
    count, broken = audit.verify(four)
    assert count == 4 and broken is not None
    assert (broken.line, broken.index) == (2, 1) and "changed" in broken.problem


def test_verify_detects_a_changed_entry_with_a_recomputed_hash(four: Path) -> None:
    lines = four.read_text().splitlines(keepends=True)
    e = json.loads(lines[1])
    e["who"] = "mallory"
    e["hash"] = audit.entry_hash(e)
    lines[1] = json.dumps(e) + "\n"
    rewrite(four, lines)
    _, broken = audit.verify(four)
    assert broken is not None and broken.line == 3 and "prev" in broken.problem


def test_verify_detects_a_removed_entry(four: Path) -> None:
    lines = four.read_text().splitlines(keepends=True)
    rewrite(four, lines[:1] + lines[2:])
    count, broken = audit.verify(four)
    assert count == 3 and broken is not None
    assert broken.line == 2 and broken.problem.startswith("removed: entry 1 missing")


def test_verify_detects_the_first_entries_removed(four: Path) -> None:
    lines = four.read_text().splitlines(keepends=True)
    rewrite(four, lines[2:])
    _, broken = audit.verify(four)
    assert broken is not None and broken.line == 1 and "entries 0..1 missing" in broken.problem


def test_verify_detects_a_reordered_pair(four: Path) -> None:
    lines = four.read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(four, lines)
    _, broken = audit.verify(four)
    assert broken is not None and broken.line == 2
    assert broken.problem == "reordered: entry 1 should come here, it is at line 3"


def test_verify_detects_an_inserted_entry(four: Path) -> None:
    lines = four.read_text().splitlines(keepends=True)
    rewrite(four, lines[:2] + [lines[1]] + lines[2:])  # entry 1 twice
    _, broken = audit.verify(four)
    assert broken is not None and broken.line == 3 and "inserted" in broken.problem


def test_verify_detects_a_truncated_last_line(four: Path) -> None:
    data = four.read_bytes()
    four.write_bytes(data[:-40])
    count, broken = audit.verify(four)
    assert count == 4 and broken is not None
    assert (broken.line, broken.index) == (4, 3) and "cut short" in broken.problem
    assert str(broken).startswith("line 4 (entry 3): not a complete entry")


def test_an_append_after_a_torn_line_keeps_chaining_and_verify_names_the_tear(
    four: Path, mgr: CoordinationManager
) -> None:
    data = four.read_bytes()
    four.write_bytes(data + data.splitlines(keepends=True)[0][:30])  # a crashed append
    mgr.issues.create("after the crash")
    lines = four.read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[5])["seq"] == 4
    assert json.loads(lines[5])["prev"] == json.loads(lines[3])["hash"]
    _, broken = audit.verify(four)
    assert broken is not None and broken.line == 5 and "not a JSON entry" in broken.problem


def test_verify_passes_on_an_intact_log_and_counts_it(four: Path) -> None:
    assert audit.verify(four) == (4, None)
    assert [e["seq"] for e in audit.read(four)] == [0, 1, 2, 3]
    first = audit.read(four)[0]
    assert first["prev"] == audit.GENESIS and first["hash"] == audit.entry_hash(first)


def test_the_log_lives_beside_the_real_catalog(example_catalog: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_USER", WHO)
    link = tmp_path / "link.yaml"
    link.symlink_to(example_catalog)
    CoordinationManager(link).issues.create("through a link")
    assert audit.log_path(link) == example_catalog.parent / ".ecosystem.yaml.coord.audit.jsonl"
    assert len(entries(example_catalog)) == 1


def test_short_keeps_exactly_the_values_whose_json_is_short() -> None:
    # short() skips writing the JSON of numbers and short strings: it must decide as
    # writing it would, at the edges too (escaped control characters, long ints).
    def by_writing(value: Any) -> Any:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return value if len(text) <= audit.MAX_VALUE else f"{text[:audit.MAX_VALUE]}… ({len(text)} chars)"

    m = audit.MAX_VALUE
    values: list[Any] = [None, True, False, 0, -1, 1.5, -2.25e300, 10**99, -(10**99),
                         10**100, -(10**100), 10**250, -(10**250)]
    for n in (0, 1, (m - 2) // 6, (m - 2) // 6 + 1, m - 3, m - 2, m - 1, m, 5000):
        values += ["x" * n, "\x01" * n, "é" * n, '"' * n, "\\" * n]
    values += [["a"] * 10, ["a"] * 60, {"k": "v" * 300}]
    for value in values:
        assert audit.short(value) == by_writing(value), repr(value)[:80]
