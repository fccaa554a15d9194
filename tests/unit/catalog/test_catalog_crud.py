"""`issue delete`, `todo update`, `todo delete`: the manager as a library, then the CLI.

What is checked: a delete that would leave a dangling reference is refused (exit 2) with
every referrer named by file, line, field and id, and the file stays byte-identical;
``--force`` drops the references in the same edit and the output says what went; every
flag of ``todo update`` changes only its field; ``--blocked-by`` keeps the other side's
``blocking`` in step; bad values change nothing. Edits keep comments, key order and
blank lines: the diffs are asserted line by line, as in test_store.py.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.edits.document import StillReferenced
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.reads.queries import CatalogReads
from coordination.errors import NotFoundError, UsageError
from tests.unit.support.cli import coord_bare, refused_and_unchanged

pytestmark = pytest.mark.timeout(60)


def changed_lines(before: bytes, after: bytes) -> list[str]:
    diff = difflib.ndiff(before.decode().splitlines(), after.decode().splitlines())
    return [d for d in diff if d[:1] in "+-"]


def removed_block(before: bytes, first: str, last: str) -> list[str]:
    """The ndiff lines of removing ``first``..``last`` (whole lines) from ``before``."""
    lines = before.decode().splitlines()
    i = lines.index(first)
    j = lines.index(last, i)
    return ["- " + x for x in lines[i:j + 1]]


def ok_json(catalog: Path, *args: str) -> Any:
    r = coord_bare(catalog, *args, "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stderr == ""
    return json.loads(r.stdout)


# == library ===========================================================================
# -- issue delete ----------------------------------------------------------------------
def test_delete_unreferenced_issue_takes_its_mirror_along(
    m: CoordinationManager, example_catalog: Path
) -> None:
    before = example_catalog.read_bytes()
    doc = m.issues.delete("ISSUE-003")
    assert doc["deleted"] == "ISSUE-003" and doc["issue"]["title"].startswith("Web front end")
    # ISSUE-002.blocking only mirrored ISSUE-003's own dependency: no refusal, it just goes.
    assert doc["dropped"] == [
        {"id": "ISSUE-002", "kind": "issue", "field": "blocking", "mirror": True}
    ]
    assert changed_lines(before, example_catalog.read_bytes()) == [
        "-       blocking: [ISSUE-003]",
        *removed_block(before, "    - id: ISSUE-003", "      labels: [frontend]"),
    ]
    with pytest.raises(NotFoundError):
        m.reads.get_issue("ISSUE-003")


def test_delete_referenced_issue_is_refused_naming_every_referrer(
    m: CoordinationManager, example_catalog: Path
) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(StillReferenced) as exc:
        m.issues.delete("ISSUE-002")
    err = exc.value
    assert err.exit_code == 2
    assert [(r.referrer, r.field) for r in err.referrers] == [
        ("ISSUE-003", "dependencies"), ("TODO-002", "blocked_by"),
    ]
    lines = before.decode().splitlines()
    dep_line = lines.index("      dependencies: [ISSUE-002]") + 1
    todo_line = lines.index("      blocked_by: [ISSUE-002, TODO-001]") + 1
    text = str(err)
    assert f"{example_catalog}:{dep_line}: issues[2].dependencies: ISSUE-003 depends on ISSUE-002" in text
    assert f"{example_catalog}:{todo_line}: todos[1].blocked_by: TODO-002 is blocked by ISSUE-002" in text
    assert "--force" in str(err.hint)
    assert example_catalog.read_bytes() == before


def test_force_delete_issue_drops_the_references(
    m: CoordinationManager, example_catalog: Path
) -> None:
    before = example_catalog.read_bytes()
    doc = m.issues.delete("ISSUE-002", force=True)
    assert [(d["id"], d["field"], d["mirror"]) for d in doc["dropped"]] == [
        ("ISSUE-003", "dependencies", False), ("TODO-002", "blocked_by", False),
    ]
    assert changed_lines(before, example_catalog.read_bytes()) == [
        *removed_block(before, "    - id: ISSUE-002", "      assignee: ben"),
        "-       dependencies: [ISSUE-002]",
        "-       blocked_by: [ISSUE-002, TODO-001]",
        "+       blocked_by: [TODO-001]",
    ]
    assert m.reads.get_issue("ISSUE-003").dependencies == []
    assert m.reads.get_todo("TODO-002").blocked_by == ["TODO-001"]


def test_the_reference_check_sees_a_referrer_added_after_the_first_read(
    m: CoordinationManager, example_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs on the document being edited, not on an earlier read."""
    real = CatalogReads.catalog

    def read_then_someone_edits(self: CatalogReads) -> Any:
        cat = real(self)
        monkeypatch.setattr(CatalogReads, "catalog", real)
        other = CoordinationManager(example_catalog)
        other.todos.create("Late", "web", blocked_by=["ISSUE-003"])
        return cat

    monkeypatch.setattr(CatalogReads, "catalog", read_then_someone_edits)
    with pytest.raises(StillReferenced, match="TODO-007 is blocked by ISSUE-003"):
        m.issues.delete("ISSUE-003")
    assert m.reads.get_issue("ISSUE-003")


# -- todo delete ------------------------------------------------------------------------
def test_delete_referenced_todo_is_refused_naming_every_referrer(
    m: CoordinationManager, example_catalog: Path
) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(StillReferenced) as exc:
        m.todos.delete("TODO-003")
    assert [(r.referrer, r.kind, r.field) for r in exc.value.referrers] == [
        ("TODO-005", "todo", "blocked_by"), ("TODO-006", "todo", "blocked_by"),
        ("MS-002", "milestone", "todos"),
    ]
    text = str(exc.value)
    assert "plans[0].milestones[1].todos: milestone MS-002 of PLAN-001 lists TODO-003" in text
    # TODO-002.blocking names it too, but only as the mirror of its own blocked_by.
    assert "TODO-002" not in text
    assert example_catalog.read_bytes() == before


def test_force_delete_todo_drops_references_and_its_mirrors(
    m: CoordinationManager, example_catalog: Path
) -> None:
    before = example_catalog.read_bytes()
    doc = m.todos.delete("TODO-003", force=True)
    assert doc["deleted"] == "TODO-003" and doc["todo"]["repo"] == "api"
    assert doc["dropped"] == [
        {"id": "TODO-002", "kind": "todo", "field": "blocking", "mirror": True},
        {"id": "TODO-005", "kind": "todo", "field": "blocked_by", "mirror": False},
        {"id": "TODO-006", "kind": "todo", "field": "blocked_by", "mirror": False},
        {"id": "MS-002", "kind": "milestone", "field": "todos", "plan": "PLAN-001",
         "mirror": False},
    ]
    assert changed_lines(before, example_catalog.read_bytes()) == [
        "-           todos: [TODO-003, TODO-004, TODO-005, TODO-006]",
        "+           todos: [TODO-004, TODO-005, TODO-006]",
        "-       blocking: [TODO-003, TODO-004]",
        "+       blocking: [TODO-004]",
        *removed_block(before, "    - id: TODO-003", "      assignee: ana"),
        "-       blocked_by: [TODO-003]",
        "-       blocked_by: [TODO-003, TODO-004]",
        "+       blocked_by: [TODO-004]",
    ]
    cat = m.reads.catalog()
    assert cat.todo("TODO-005").blocked_by == []  # type: ignore[union-attr]
    assert "TODO-003" not in cat.plan("PLAN-001").milestones[1].todos  # type: ignore[union-attr]


def test_deletes_keep_comments_and_blank_lines(commented: Path) -> None:
    """The hand-written fixture: comments elsewhere and the blank line before the next
    section survive; the comment introducing the deleted todo goes with it."""
    m = CoordinationManager(commented)
    before = commented.read_bytes()
    with pytest.raises(StillReferenced):
        m.todos.delete("TODO-010")  # TODO-011 waits on it, MS-010 lists it
    assert commented.read_bytes() == before
    m.todos.delete("TODO-011")  # only TODO-010.blocking (a mirror) names it
    after = commented.read_bytes()
    assert changed_lines(before, after) == [
        "-     blocking: [TODO-011]",
        "-   # then the site",
        *removed_block(before, "  - id: TODO-011", "    blocked_by: [TODO-010]   # waits for the tag"),
    ]
    assert after.decode().endswith(
        "    blocked_by: [ISSUE-010]\n\n  dependencies: []   # none yet\n"
        "# trailing comment at the end of the file\n"
    )
    assert after.startswith(before[: before.index(b"---")])

    m.issues.delete("ISSUE-010", force=True)  # the only issue; TODO-010 waits on it
    text = commented.read_text()
    assert "  # Issues first.\n  issues: []\n\n  plans:\n" in text
    assert "blocked_by" not in text
    for comment in ("# a sibling checkout", "# --- repositories", "# first the library",
                    "# none yet", "# trailing comment at the end of the file"):
        assert comment in text

    m.todos.delete("TODO-010", force=True)  # the last todo: `todos: []`, its comment above it
    text = commented.read_text()
    assert "\n\n  # first the library\n  todos: []\n\n  dependencies: []   # none yet\n" in text
    assert "todos: [TODO-010]" not in text  # MS-010 lost it


def test_force_delete_keeps_comments_in_block_lists(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    path.write_text(
        "version: 1\n"
        "repos:\n"
        "  - name: a\n"
        "coordination:\n"
        "  issues:\n"
        "    - id: ISSUE-001\n"
        "      title: one\n"
        "\n"
        "    # the second issue\n"
        "    - id: ISSUE-002\n"
        "      title: two\n"
        "      dependencies:\n"
        "        - ISSUE-001   # the base\n"
        "      # who owns it\n"
        "      assignee: x\n"
        "  todos:\n"
        "    - id: TODO-001\n"
        "      task: t\n"
        "      repo: a\n"
        "      blocked_by:\n"
        "        - ISSUE-002   # keep me\n"
        "        - ISSUE-001   # drop me\n"
        "      # trailing note\n"
    )
    before = path.read_bytes()
    CoordinationManager(path).issues.delete("ISSUE-001", force=True)
    assert changed_lines(before, path.read_bytes()) == [
        "-     - id: ISSUE-001",
        "-       title: one",
        "- ",
        "-       dependencies:",
        "-         - ISSUE-001   # the base",
        "-         - ISSUE-001   # drop me",
    ]
    assert "  issues:\n    # the second issue\n    - id: ISSUE-002\n" in path.read_text()


def test_update_keeps_a_block_list_a_block_list(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    path.write_text(
        "version: 1\n"
        "repos:\n"
        "  - name: a\n"
        "resources:\n"
        "  - {name: staging-db, capacity: 1}\n"
        "  - {name: old-queue, capacity: 1}\n"
        "  - {name: registry, capacity: 2}\n"
        "coordination:\n"
        "  todos:\n"
        "    - id: TODO-001\n"
        "      task: t\n"
        "      repo: a\n"
        "      resources:\n"
        "        - staging-db   # shared with QA\n"
        "        - old-queue    # going away\n"
        "      labels: [x]\n"
    )
    before = path.read_bytes()
    todo = CoordinationManager(path).todos.update("TODO-001", resources=["staging-db", "registry"]).todo
    assert todo.resources == ["staging-db", "registry"]
    assert changed_lines(before, path.read_bytes()) == [
        "-         - old-queue    # going away",
        "+         - registry",
    ]


# -- todo update --------------------------------------------------------------------------
@pytest.mark.parametrize("changes,lines", [
    ({"task": "Move api to Python 3.13"},
     ['-       task: "Move api to 3.13"', '+       task: "Move api to Python 3.13"']),
    ({"run": "make py313"},
     ['-       run: "echo 3.13 > .python-version && sleep 0.3 && echo api migrated"',
      '+       run: "make py313"']),
    ({"undo": "git checkout ."}, ["+       undo: git checkout ."]),
    ({"status": "in_progress"}, ["+       status: in_progress"]),
    ({"priority": "critical"}, ["+       priority: critical"]),
    ({"assignee": "dan"}, ["-       assignee: ana", "+       assignee: dan"]),
    ({"assignee": ""}, ["-       assignee: ana"]),
    ({"timeout": 900}, ["-       timeout: 60", "+       timeout: 900"]),
    ({"retries": 3}, ["+       retries: 3"]),
    ({"resources": ["staging-db", "registry"]}, ["+       resources: [staging-db, registry]"]),
    ({"description": "the service"}, ["+       description: the service"]),
    ({"estimated_hours": 7.5}, ["-       estimated_hours: 6", "+       estimated_hours: 7.5"]),
    ({"estimated_hours": None}, ["-       estimated_hours: 6"]),
    ({"labels": ["py"]}, ["+       labels: [py]"]),
], ids=lambda v: ",".join(v) if isinstance(v, dict) else "")
def test_update_changes_only_the_field_given(
    m: CoordinationManager, example_catalog: Path, changes: dict[str, Any], lines: list[str]
) -> None:
    before = example_catalog.read_bytes()
    old = m.reads.get_todo("TODO-003").model_dump()
    todo = m.todos.update("TODO-003", **changes).todo
    assert changed_lines(before, example_catalog.read_bytes()) == lines
    new = todo.model_dump()
    key, value = next(iter(changes.items()))
    assert new[key] == (None if value == "" else value)
    assert {k: v for k, v in new.items() if k != key} == {k: v for k, v in old.items() if k != key}


def test_update_blocked_by_keeps_blocking_in_step(m: CoordinationManager) -> None:
    # TODO-006 waits on TODO-003 and TODO-004; make it wait on TODO-005, TODO-004, ISSUE-003.
    todo = m.todos.update("TODO-006", blocked_by=["TODO-005", "TODO-004", "ISSUE-003"]).todo
    assert todo.blocked_by == ["TODO-005", "TODO-004", "ISSUE-003"]
    assert m.reads.get_todo("TODO-003").blocking == ["TODO-005"]  # TODO-006 left it
    assert m.reads.get_todo("TODO-004").blocking == ["TODO-006"]  # unchanged
    assert m.reads.get_todo("TODO-005").blocking == ["TODO-006"]  # list created
    # Emptied: the key goes, and so does every mirror.
    assert m.todos.update("TODO-006", blocked_by=[]).todo.blocked_by == []
    assert m.reads.get_todo("TODO-004").blocking == [] and m.reads.get_todo("TODO-005").blocking == []


def test_update_blocked_by_keeps_an_existing_list_in_place(commented: Path) -> None:
    m = CoordinationManager(commented)
    before = commented.read_bytes()
    m.todos.update("TODO-011", blocked_by=["ISSUE-010", "TODO-010"])
    assert changed_lines(before, commented.read_bytes()) == [
        "-     blocked_by: [TODO-010]   # waits for the tag",
        # The comment keeps its column until the value reaches it, then two spaces.
        "+     blocked_by: [ISSUE-010, TODO-010]  # waits for the tag",
    ]
    m.todos.update("TODO-011", blocked_by=[])  # the last key: the blank line after it stays
    assert changed_lines(before, commented.read_bytes()) == [
        "-     blocking: [TODO-011]",
        "-     blocked_by: [TODO-010]   # waits for the tag",
    ]


@pytest.mark.parametrize("id_,changes,error,message", [
    ("TODO-404", {"status": "pending"}, NotFoundError, "unknown todo 'TODO-404'"),
    ("TODO-003", {"blocked_by": ["TODO-404"]}, NotFoundError, "unknown todo 'TODO-404'"),
    ("TODO-003", {"blocked_by": ["ISSUE-09"]}, NotFoundError, "unknown issue 'ISSUE-09'"),
    ("TODO-003", {"blocked_by": ["PLAN-001"]}, UsageError, "bad blocker 'PLAN-001'"),
    ("TODO-003", {"blocked_by": ["TODO-003"]}, UsageError, "cannot be blocked by itself"),
    ("TODO-002", {"blocked_by": ["TODO-005"]}, UsageError,
     "would make a cycle: TODO-002 -> TODO-003 -> TODO-005 -> TODO-002"),
    ("TODO-003", {"blocked_by": ["TODO-002", "TODO-006"]}, UsageError,
     "TODO-003 -> TODO-006 -> TODO-003"),
    ("TODO-003", {"status": "done"}, UsageError, "bad todo status 'done'"),
    ("TODO-003", {"priority": "urgent"}, UsageError, "bad priority 'urgent'"),
    ("TODO-003", {"timeout": -5}, UsageError, "bad --timeout -5"),
    ("TODO-003", {"timeout": 0}, UsageError, "bad --timeout 0"),
    ("TODO-003", {"timeout": 10**9}, UsageError, "at most 604800"),
    ("TODO-003", {"retries": -1}, UsageError, "bad --retries -1"),
    ("TODO-003", {"retries": 1.5}, UsageError, "whole number"),
    ("TODO-003", {"retries": 101}, UsageError, "at most 100"),
    ("TODO-003", {"estimated_hours": -2}, UsageError, "bad --estimate -2"),
    ("TODO-003", {"task": "  "}, UsageError, "non-empty task"),
    ("TODO-003", {}, UsageError, "nothing to update"),
    ("TODO-003", {"repo": "web"}, UsageError, "cannot update repo"),
])
def test_bad_updates_write_nothing(
    m: CoordinationManager, example_catalog: Path, id_: str, changes: dict[str, Any],
    error: type[Exception], message: str,
) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(">", ">")) as exc:
        m.todos.update(id_, **changes)
    assert isinstance(exc.value, UsageError) and exc.value.exit_code == 2
    assert example_catalog.read_bytes() == before


def test_unknown_ids_say_did_you_mean(m: CoordinationManager) -> None:
    for call in (lambda: m.todos.delete("TODO-02"), lambda: m.todos.update("TODO-02", retries=1)):
        with pytest.raises(NotFoundError) as exc:
            call()
        assert "did you mean 'TODO-002'" in str(exc.value.hint)
    with pytest.raises(NotFoundError) as exc:
        m.issues.delete("ISSUE-01")
    assert "did you mean 'ISSUE-001'" in str(exc.value.hint)


# == CLI ====================================================================================
def test_cli_issue_delete(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    for extra in ((), ("--json",)):
        r = coord_bare(example_catalog, "issue", "delete", "ISSUE-002", *extra)
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
        assert r.stderr.startswith("error: cannot delete ISSUE-002: 2 references")
        assert "issues[2].dependencies: ISSUE-003 depends on ISSUE-002" in r.stderr
        assert "todos[1].blocked_by: TODO-002 is blocked by ISSUE-002" in r.stderr
        assert f"{example_catalog}:" in r.stderr
    assert example_catalog.read_bytes() == before

    r = coord_bare(example_catalog, "issue", "delete", "ISSUE-002", "--force")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "deleted ISSUE-002", "dropped ISSUE-002 from ISSUE-003.dependencies, TODO-002.blocked_by",
    ]
    doc = ok_json(example_catalog, "issue", "delete", "ISSUE-003")
    assert doc == {"deleted": "ISSUE-003", "issue": doc["issue"], "dropped": []}
    assert doc["issue"]["id"] == "ISSUE-003" and doc["issue"]["dependencies"] == []
    assert [i["id"] for i in ok_json(example_catalog, "issue", "list")] == ["ISSUE-001"]


def test_cli_todo_delete(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    r = coord_bare(example_catalog, "todo", "delete", "TODO-006")
    assert r.returncode == 2 and "milestone MS-002 of PLAN-001 lists TODO-006" in r.stderr
    assert example_catalog.read_bytes() == before
    doc = ok_json(example_catalog, "todo", "delete", "TODO-006", "--force")
    assert doc["deleted"] == "TODO-006" and doc["todo"]["task"] == "Deploy the 3.13 images"
    assert [(d["id"], d["field"], d["mirror"]) for d in doc["dropped"]] == [
        ("TODO-003", "blocking", True), ("TODO-004", "blocking", True),
        ("MS-002", "todos", False),
    ]
    assert ok_json(example_catalog, "todo", "show", "TODO-004")["blocking"] == []
    created = ok_json(example_catalog, "todo", "create", "--task", "x", "--repo", "api")
    r = coord_bare(example_catalog, "todo", "delete", created["id"])
    assert (r.returncode, r.stdout.strip()) == (0, f"deleted {created['id']}")


def test_cli_todo_update(example_catalog: Path) -> None:
    doc = ok_json(
        example_catalog, "todo", "update", "TODO-006", "--task", "Deploy", "--run", "make deploy",
        "--undo", "make rollback", "--status", "in_progress", "--priority", "high",
        "--assignee", "ana", "--blocked-by", "TODO-005,ISSUE-003", "--blocked-by", "TODO-004",
        "--timeout", "120.5", "--retries", "2", "--resources", "staging-db,registry",
    )
    assert {k: doc[k] for k in ("task", "run", "undo", "status", "priority", "assignee",
                                "blocked_by", "timeout", "retries", "resources")} == {
        "task": "Deploy", "run": "make deploy", "undo": "make rollback", "status": "in_progress",
        "priority": "high", "assignee": "ana", "blocked_by": ["TODO-005", "ISSUE-003", "TODO-004"],
        "timeout": 120.5, "retries": 2, "resources": ["staging-db", "registry"],
    }
    assert ok_json(example_catalog, "todo", "show", "TODO-005")["blocking"] == ["TODO-006"]
    assert ok_json(example_catalog, "todo", "show", "TODO-003")["blocking"] == ["TODO-005"]
    r = coord_bare(example_catalog, "todo", "update", "TODO-006", "--assignee", "", "--blocked-by", "",
              "--resources", "", "--undo", "")
    assert (r.returncode, r.stdout.strip()) == (0, "updated TODO-006"), r.stderr
    shown = ok_json(example_catalog, "todo", "show", "TODO-006")
    assert (shown["assignee"], shown["blocked_by"], shown["resources"], shown["undo"]) == (
        None, [], [], None)
    assert ok_json(example_catalog, "todo", "show", "TODO-005")["blocking"] == []


BAD = [
    (("todo", "update", "TODO-404", "--status", "pending"), "unknown todo 'TODO-404'"),
    (("todo", "update", "TODO-02", "--status", "pending"), "did you mean 'TODO-002'"),
    (("todo", "update", "TODO-003"), "nothing to update"),
    (("todo", "update", "TODO-003", "--status", "done"), "--status"),
    (("todo", "update", "TODO-003", "--priority", "urgent"), "--priority"),
    (("todo", "update", "TODO-003", "--timeout", "-5"), "--timeout"),
    (("todo", "update", "TODO-003", "--timeout", "0"), "--timeout"),
    (("todo", "update", "TODO-003", "--timeout", "9999999"), "at most 604800"),
    (("todo", "update", "TODO-003", "--retries", "-1"), "--retries"),
    (("todo", "update", "TODO-003", "--retries", "101"), "at most 100"),
    (("todo", "update", "TODO-003", "--task", ""), "non-empty task"),
    (("todo", "update", "TODO-003", "--blocked-by", "TODO-404"), "unknown todo 'TODO-404'"),
    (("todo", "update", "TODO-002", "--blocked-by", "TODO-006"),
     "cycle: TODO-002 -> TODO-003 -> TODO-006 -> TODO-002"),
    (("todo", "delete", "TODO-404"), "unknown todo 'TODO-404'"),
    (("todo", "delete", "TODO-002"), "cannot delete TODO-002"),
    (("issue", "delete", "ISSUE-404"), "unknown issue 'ISSUE-404'"),
    (("issue", "delete", "ISSUE-002"), "cannot delete ISSUE-002"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_cli_bad_input_exits_2_and_changes_nothing(
    example_catalog: Path, args: tuple[str, ...], message: str
) -> None:
    refused_and_unchanged(example_catalog, args, message)


@pytest.mark.parametrize("args", [("issue", "delete"), ("todo", "update"), ("todo", "delete")],
                         ids=" ".join)
def test_cli_help_has_examples(example_catalog: Path, args: tuple[str, ...]) -> None:
    r = coord_bare(example_catalog, *args, "--help")
    assert r.returncode == 0 and "Example:" in r.stdout and "--json" in r.stdout


def test_cli_edits_import_no_runtime(example_catalog: Path) -> None:
    from tests.unit.support.cli import HEAVY, loaded

    for args in (("todo", "update", "TODO-003", "--retries", "1", "--json"),
                 ("todo", "delete", "TODO-006", "--force", "--json"),
                 ("issue", "delete", "ISSUE-003", "--json")):
        modules = loaded(example_catalog, *args)
        assert "coordination" in modules
        assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))

