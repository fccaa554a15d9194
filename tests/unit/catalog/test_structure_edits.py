"""Plans, milestones, dependencies and repos as catalog edits (catalog/edits/structure.py), and
ids that are never handed out twice.

Checked: each edit changes only its lines (diffs asserted line by line, comments kept);
a delete that would leave references is refused naming each by file and line, the file
byte-identical; ``force`` takes them out in the same edit; every edit is one audit entry
and the chain verifies; a deleted id does not come back, hand-added ids count.
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.edits.document import StillReferenced
from coordination.catalog.manager import CoordinationManager
from coordination.errors import CatalogError, NotFoundError, UsageError
from tests.unit.support.catalogs import COMMENTED

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("private_cache")]


@pytest.fixture(autouse=True)
def _edits_by_tester(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_USER", "tester")


def changed(before: bytes, after: bytes) -> list[str]:
    diff = difflib.ndiff(before.decode().splitlines(), after.decode().splitlines())
    return [d for d in diff if d[:1] in "+-"]


def entries(m: CoordinationManager) -> list[dict[str, object]]:
    log = audit.log_path(m.store.path)
    return audit.read(log) if log.exists() else []


def verified(m: CoordinationManager) -> int:
    n, broken = audit.verify(audit.log_path(m.store.path))
    assert broken is None, broken
    assert audit.last_catalog(audit.log_path(m.store.path)) == \
        __import__("hashlib").sha256(m.store.path.read_bytes()).hexdigest()
    return n


# -- plans ----------------------------------------------------------------------------
def test_plan_create_update_delete(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    plan = m.plans.create("Python 3.14", repos=["libcore", "api"], criteria=["all on 3.14"])
    assert plan.id == "PLAN-002" and plan.status.value == "draft"
    added = changed(before, example_catalog.read_bytes())
    assert added == [
        "+     - id: PLAN-002", "+       title: Python 3.14", "+       status: draft",
        "+       repos: [libcore, api]", "+       completion_criteria: [all on 3.14]"]
    mid = example_catalog.read_bytes()
    m.plans.update("PLAN-002", status="active", description="next", repos=["api"])
    assert sorted(changed(mid, example_catalog.read_bytes())) == sorted([
        "-       status: draft", "-       repos: [libcore, api]",
        "+       description: next", "+       status: active", "+       repos: [api]"])
    doc = m.plans.delete("PLAN-002")
    assert doc["deleted"] == "PLAN-002" and doc["dropped"] == []
    assert example_catalog.read_bytes() == before
    assert [e["op"] for e in entries(m)] == ["create_plan", "update_plan", "delete_plan"]
    assert verified(m) == 3


def test_plan_with_todos_is_refused_then_forced(m: CoordinationManager,
                                                example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(StillReferenced) as exc:
        m.plans.delete("PLAN-001")
    text = str(exc.value)
    line = before.decode().splitlines().index("      plan: PLAN-001") + 1
    assert "cannot delete PLAN-001: 5 todos belong to it" in text
    assert f"{example_catalog}:{line}: todos[1].plan: TODO-002 belongs to PLAN-001" in text
    assert exc.value.exit_code == 2 and "--force" in str(exc.value.hint)
    assert example_catalog.read_bytes() == before and not entries(m)

    doc = m.plans.delete("PLAN-001", force=True)
    assert [(d["id"], d["field"]) for d in doc["dropped"]] == [
        (f"TODO-00{i}", "plan") for i in range(2, 7)]
    text = example_catalog.read_text()
    assert "id: PLAN-001" not in text and "plan: PLAN-001" not in text and "MS-001" not in text
    assert [t.plan for t in m.reads.list_todos()] == [None] * 6
    assert "# checkout, relative to this file" in text
    assert verified(m) == 1


def test_bad_plan_edits_change_nothing(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(NotFoundError, match="did you mean 'api'"):
        m.plans.create("x", repos=["apj"])
    with pytest.raises(UsageError, match="non-empty title"):
        m.plans.create("  ")
    with pytest.raises(UsageError, match="bad plan status"):
        m.plans.update("PLAN-001", status="done")
    with pytest.raises(NotFoundError, match="PLAN-001"):
        m.plans.update("PLAN-01", title="x")
    with pytest.raises(UsageError, match="nothing to update"):
        m.plans.update("PLAN-001")
    assert example_catalog.read_bytes() == before and not entries(m)


# -- milestones ---------------------------------------------------------------------------
def test_milestones(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    ms = m.milestones.add("PLAN-001", "Staging", due=dt.date(2026, 12, 1),
                          todos=["TODO-003"], deliverables=["staging green"])
    assert ms.id == "MS-003"
    assert changed(before, example_catalog.read_bytes()) == [
        "+         - id: MS-003", "+           title: Staging", "+           due: 2026-12-01",
        "+           todos: [TODO-003]", "+           deliverables: [staging green]"]
    m.milestones.update("MS-003", due=None, todos=["TODO-003", "TODO-004"])
    assert m.reads.get_plan("PLAN-001").milestones[-1].todos == ["TODO-003", "TODO-004"]
    assert m.reads.get_plan("PLAN-001").milestones[-1].due is None
    with pytest.raises(NotFoundError, match="TODO-099"):
        m.milestones.update("MS-003", todos=["TODO-099"])
    m.milestones.delete("MS-003")  # its todos are the plan's by their own `plan:`
    assert example_catalog.read_bytes() == before
    assert verified(m) == 3


def test_milestone_delete_refused_while_todos_would_leave_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    # Without its `plan:`, TODO-010 is in PLAN-002 through MS-010 alone.
    path.write_text(COMMENTED.read_text().replace("    repo: core\n    plan: PLAN-002\n",
                                                  "    repo: core\n"))
    m = CoordinationManager(path)
    before = path.read_bytes()
    with pytest.raises(StillReferenced, match="TODO-010 is in PLAN-002 through MS-010 alone"):
        m.milestones.delete("MS-010")
    assert path.read_bytes() == before
    doc = m.milestones.delete("MS-010", force=True)
    assert doc["dropped"][0]["id"] == "TODO-010"
    assert "TODO-010" not in [t.id for t in m.reads.plan_todos("PLAN-002")]
    text = path.read_text()
    assert "milestones" not in text and "# --- repositories" in text
    assert "completion_criteria:\n    - \"everything shipped\"" in text


# -- dependencies ---------------------------------------------------------------------------
def test_dependencies(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    dep = m.dependencies.add("web", "libcore", type="build", version_constraint=">=2.1",
                             command="pip show libcore", expected_pattern="^Version: 2")
    assert dep.id == "DEP-004" and dep.validation is not None
    assert changed(before, example_catalog.read_bytes())[-3:] == [
        "+       validation:", "+         command: pip show libcore",
        '+         expected_pattern: "^Version: 2"']
    m.dependencies.update("DEP-004", timeout=5, status="satisfied")
    got = m.reads.list_dependencies(consumer="web")[-1]
    assert got.validation is not None and got.validation.timeout == 5
    assert got.validation.command == "pip show libcore" and got.status.value == "satisfied"
    m.dependencies.update("DEP-004", command=None)
    assert m.reads.list_dependencies(consumer="web")[-1].validation is None
    for bad, match in ((dict(provider="web"), "cannot depend on itself"),
                       (dict(consumer="wbe"), "did you mean 'web'"),
                       (dict(expected_pattern="("), "not a valid regular expression"),
                       (dict(timeout=0), "check-timeout")):
        mid = example_catalog.read_bytes()
        with pytest.raises(UsageError, match=match):
            m.dependencies.update("DEP-004", **bad)  # type: ignore[arg-type]
        assert example_catalog.read_bytes() == mid
    m.dependencies.remove("DEP-004")
    assert example_catalog.read_bytes() == before
    assert verified(m) == 4


# -- repos ------------------------------------------------------------------------------------
def test_repos(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    m.repos.add("docs", path="repos/docs", role="site", tags=["md"], concurrency=2)
    assert changed(before, example_catalog.read_bytes()) == [
        "+   - name: docs", "+     path: repos/docs", "+     role: site", "+     tags: [md]",
        "+     concurrency: 2"]
    # Still before the blank line and comment that introduce `resources:`.
    assert "concurrency: 2\n\n# Shared things" in example_catalog.read_text()
    m.repos.update("docs", description="The docs", tags=[])
    assert m.reads.get_repo("docs").description == "The docs" and m.reads.get_repo("docs").tags == []
    with pytest.raises(UsageError, match="exists already"):
        m.repos.add("docs")
    with pytest.raises(UsageError, match="bad repo name"):
        m.repos.add("Docs!")
    with pytest.raises(UsageError, match="concurrency"):
        m.repos.update("docs", concurrency=0)
    m.repos.remove("docs")
    assert example_catalog.read_bytes() == before
    assert verified(m) == 3


def test_repo_in_use_is_refused_then_removed_with_what_needs_it(
        m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(StillReferenced) as exc:
        m.repos.remove("libcore")
    text = str(exc.value)
    for what in ("issue ISSUE-001 lists libcore in its repos", "todo TODO-002 runs in libcore",
                 "dependency DEP-001 has libcore as its provider",
                 "plan PLAN-001 lists libcore in its repos"):
        assert what in text, text
    assert f"{example_catalog}:" in text and example_catalog.read_bytes() == before

    doc = m.repos.remove("libcore", force=True)
    assert doc["deleted_todos"] == ["TODO-002"]
    assert doc["deleted_dependencies"] == ["DEP-001", "DEP-002"]
    assert {(d["id"], d["field"]) for d in doc["dropped"]} >= {
        ("ISSUE-001", "repos"), ("PLAN-001", "repos"), ("TODO-003", "blocked_by"),
        ("MS-001", "todos")}
    cat = m.reads.catalog()  # valid: nothing dangles
    assert cat.repo("libcore") is None and cat.todo("TODO-002") is None
    assert cat.todo("TODO-003").blocked_by == []  # type: ignore[union-attr]
    assert verified(m) == 1


# -- ids ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["issue", "todo", "plan", "dependency", "milestone"])
def test_a_deleted_id_never_comes_back(m: CoordinationManager, kind: str) -> None:
    def create() -> str:
        if kind == "issue":
            return m.issues.create("new").id
        if kind == "todo":
            return m.todos.create("new", "api").id
        if kind == "plan":
            return m.plans.create("new").id
        if kind == "dependency":
            return m.dependencies.add("web", "jobs").id
        return m.milestones.add("PLAN-001", "new").id

    def delete(id_: str) -> None:
        if kind == "issue":
            m.issues.delete(id_)
        elif kind == "todo":
            m.todos.delete(id_)
        elif kind == "plan":
            m.plans.delete(id_)
        elif kind == "dependency":
            m.dependencies.remove(id_)
        else:
            m.milestones.delete(id_)

    first = create()
    delete(first)
    second = create()
    assert second != first
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1


def test_hand_added_ids_count_and_the_head_keeps_the_highest(
        m: CoordinationManager, example_catalog: Path) -> None:
    assert m.issues.create("four").id == "ISSUE-004"
    m.issues.delete("ISSUE-004")
    text = example_catalog.read_text().replace(
        "  plans:\n",
        "    - id: ISSUE-050\n      title: by hand\n\n  plans:\n", 1)
    example_catalog.write_text(text)  # an editor: no audit entry
    assert m.issues.create("after the hand edit").id == "ISSUE-051"
    m.issues.delete("ISSUE-051")
    m.issues.delete("ISSUE-050")
    assert entries(m)[-1]["highest"]["issue"] == "ISSUE-051"  # type: ignore[index]
    assert m.issues.create("again").id == "ISSUE-052"


def test_a_log_from_before_0_3_is_read_whole_once(
        m: CoordinationManager, example_catalog: Path) -> None:
    """Entries without ``highest`` (written by 0.2): the ids they touched still count."""
    m.todos.create("seven", "api")
    m.todos.delete("TODO-007")
    log = audit.log_path(example_catalog)
    import json

    lines = [json.loads(x) for x in log.read_text().splitlines()]
    prev = audit.GENESIS
    with log.open("w") as f:
        for e in lines:
            e.pop("highest")
            e["prev"] = prev
            e["hash"] = audit.entry_hash(e)
            prev = e["hash"]
            f.write(json.dumps(e) + "\n")
    assert audit.highest(example_catalog)["todo"] == "TODO-007"
    assert m.todos.create("eight", "api").id == "TODO-008"
    assert entries(m)[-1]["highest"]["todo"] == "TODO-008"  # type: ignore[index]
    assert verified(m) == 3


def test_an_invalid_result_writes_nothing(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises((CatalogError, UsageError)):
        m.dependencies.add("api", "api")
    assert example_catalog.read_bytes() == before and not entries(m)
