"""Spliced edits (catalog/file/splice.py) give the bytes of the full round trip, fall back
to it for what they do not handle, and keep the store's guarantees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.file import roundtrip as roundtrip_module
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.file.roundtrip import dump_round_trip, load_round_trip
from coordination.catalog.file.store import CatalogStore
from coordination.errors import CatalogSchemaError, CatalogSyntaxError, NotFoundError
from tests.unit.support.catalogs import COMMENTED, catalog_data

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("private_cache")]

ROOT = Path(__file__).resolve().parents[3]


def _generated(indent: int) -> bytes:
    data = catalog_data(6, [(0, 1), (1, 2), (3, 4)],
                        issues=[{"id": "ISSUE-1", "title": "first"},
                                {"id": "ISSUE-2", "title": "second"}])
    text = yaml.safe_dump(data, sort_keys=False, indent=indent).encode()
    # PyYAML writes nested lists less indented than ruamel re-writes them; one round
    # trip makes the file one that ruamel leaves as it is (see the layout test below).
    return dump_round_trip(*load_round_trip(text, "x"))


def _catalogs() -> dict[str, bytes]:
    example = (ROOT / "ecosystem.yaml").read_bytes()
    commented = COMMENTED.read_bytes()
    return {
        "example": example,
        "commented": commented,
        "commented-crlf": commented.replace(b"\n", b"\r\n"),
        "example-bom": b"\xef\xbb\xbf" + example,
        "no-final-newline": commented.rstrip(b"\n"),
        "generated-indent2": _generated(2),
        "generated-indent4": _generated(4),
    }


CATALOGS = _catalogs()

Edit = Callable[[CoordinationManager], Any]


def _no_round_trip(*args: Any) -> Any:
    raise AssertionError("the round trip ran")


def _todos(m: CoordinationManager) -> list[str]:
    return [t.id for t in m.reads.list_todos()]


def _issues(m: CoordinationManager) -> list[str]:
    return [i.id for i in m.reads.list_issues()]


def _complete_every_other(m: CoordinationManager) -> None:
    """Many items in one edit, as `sweep sync` does."""
    from coordination.catalog.edits.document import TODO_KEYS, put, section

    def edit(doc: Any) -> None:
        for i, item in enumerate(section(doc, "todos")):
            if i % 2 == 0 and item.get("status") != "completed":
                put(item, "status", "completed", TODO_KEYS)

    m.store.update(edit)


def _sync_all(m: CoordinationManager) -> None:
    """What `sweep sync` writes for a sweep where every todo ran: status and hours
    (new or changed), an int field, and the plan's status."""
    from coordination.catalog.edits.document import PLAN_KEYS, TODO_KEYS, put, section

    def edit(doc: Any) -> None:
        for i, item in enumerate(section(doc, "todos")):
            put(item, "status", ("completed", "failed", "skipped")[i % 3], TODO_KEYS)
            put(item, "actual_hours", round(0.0003 * (i + 1), 4), TODO_KEYS)
            if i % 2:
                put(item, "retries", i, TODO_KEYS)
        for plan in section(doc, "plans"):
            put(plan, "status", "completed", PLAN_KEYS)

    m.store.update(edit)


def _describe_repo(m: CoordinationManager) -> None:
    def edit(doc: Any) -> None:
        doc["repos"][0]["description"] = "described"

    m.store.update(edit)


EDITS: dict[str, Edit] = {
    "sync-many": _complete_every_other,
    "sync-all": _sync_all,
    "repo-describe": _describe_repo,
    "todo-create": lambda m: m.todos.create("new work", m.reads.list_repos()[-1].name,
                                            blocked_by=[_todos(m)[0]], labels=["x", "y"]),
    "todo-create-plain": lambda m: m.todos.create("plain", m.reads.list_repos()[0].name, estimate=2),
    "todo-complete-first": lambda m: m.todos.complete(_todos(m)[0], hours=1.5),
    "todo-complete-last": lambda m: m.todos.complete(_todos(m)[-1]),
    "todo-update": lambda m: m.todos.update(_todos(m)[0], priority="high", labels=["a"],
                                            description="now described"),
    "todo-update-blockers": lambda m: m.todos.update(_todos(m)[-1], blocked_by=_todos(m)[:1]),
    "issue-create": lambda m: m.issues.create("a new issue", repos=[m.reads.list_repos()[0].name],
                                              dependencies=_issues(m)[:1]),
    "issue-update": lambda m: m.issues.update(_issues(m)[0], title="renamed",
                                              labels=["l1"]) if _issues(m) else None,
    # Deletes take window items out: spliced too (issue #24), the round trip's bytes.
    "todo-delete-middle": lambda m: m.todos.delete(_todos(m)[len(_todos(m)) // 2], force=True),
    "todo-delete-last": lambda m: m.todos.delete(_todos(m)[-1], force=True),
    "issue-delete-last": lambda m: m.issues.delete(_issues(m)[-1], force=True),
    # The structure edits of 0.3: plans, milestones, dependencies, repos.
    "plan-create": lambda m: m.plans.create("a new plan", repos=[_repos(m)[0]],
                                            criteria=["it shipped"]),
    "plan-update": lambda m: m.plans.update(_plans(m)[0], title="renamed", status="active",
                                            repos=_repos(m)[:2]),
    "plan-delete-last": lambda m: (m.plans.create("gone soon"),
                                   m.plans.delete(_plans(m)[-1])),
    "milestone-add": lambda m: m.milestones.add(_plans(m)[0], "cut", todos=_todos(m)[:1]),
    "milestone-update": lambda m: m.milestones.update(
        m.milestones.add(_plans(m)[0], "cut").id, title="renamed", todos=_todos(m)[-1:]),
    "dep-add": lambda m: m.dependencies.add(_repos(m)[0], _repos(m)[1], type="build",
                                            command="true", expected_pattern="^$"),
    "dep-update-remove": lambda m: (
        m.dependencies.update(m.dependencies.add(_repos(m)[1], _repos(m)[0]).id, notes="n",
                              command="echo 1"),
        m.dependencies.remove(m.reads.list_dependencies()[-1].id)),
    "repo-add": lambda m: m.repos.add("newrepo", path="x/newrepo", tags=["t"], concurrency=2),
    "repo-update": lambda m: m.repos.update(_repos(m)[0], description="described",
                                            tags=["a", "b"]),
    "repo-remove-last": lambda m: (m.repos.add("zz-gone"), m.repos.remove("zz-gone")),
    # Cascades: many items of several windows go in one edit, the last (real) ones too.
    "repo-remove-last-forced": lambda m: m.repos.remove(_repos(m)[-1], force=True),
    "repo-remove-middle-forced": lambda m: m.repos.remove(_repos(m)[1], force=True),
}


def _repos(m: CoordinationManager) -> list[str]:
    return [r.name for r in m.reads.list_repos()]


def _plans(m: CoordinationManager) -> list[str]:
    return [p.id for p in m.reads.list_plans()]


def _run(tmp_path: Path, name: str, data: bytes, edit: Edit, splice: bool
         ) -> tuple[bytes, str | None]:
    path = tmp_path / f"{name}-{splice}" / "ecosystem.yaml"
    path.parent.mkdir()
    path.write_bytes(data)
    m = CoordinationManager(path)
    m.store.splice = splice
    edit(m)
    return path.read_bytes(), m.store.last_edit


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("catalog", sorted(CATALOGS))
def test_splice_gives_the_bytes_of_the_round_trip(tmp_path: Path, catalog: str, edit: str) -> None:
    data = CATALOGS[catalog]
    fast, how = _run(tmp_path, "fast", data, EDITS[edit], True)
    slow, slow_how = _run(tmp_path, "slow", data, EDITS[edit], False)
    assert slow_how == "round-trip: splicing is off"
    assert fast == slow, f"{catalog}/{edit} via {how}"
    if how != "splice" and edit in MAKE_OR_EMPTY_A_SECTION:
        # The first dependency of a catalog without any, or its last issue deleted: the
        # section itself appears or turns `[]`, which only the round trip writes.
        assert how is not None and ("did not come out as a block sequence" in how
                                    or "outside the windows" in how), how
        return
    assert how == "splice", how  # the fast path really ran


MAKE_OR_EMPTY_A_SECTION = {"dep-add", "dep-update-remove", "issue-delete-last"}


def test_sync_of_plain_items_sets_their_fields_in_place(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Scalar fields of plainly written items are set in their lines, no item goes
    # through ruamel (its per-item parse is what made a 10,000-todo sync take 20 s),
    # and the bytes are the round trip's.
    from coordination.catalog.file import splice_placeholders

    data = catalog_data(40, [(i, i + 1) for i in range(39)])
    text = dump_round_trip(*load_round_trip(
        yaml.safe_dump(data, sort_keys=False).encode(), "x"))
    slow, _ = _run(tmp_path, "slow", text, _sync_all, False)
    with monkeypatch.context() as patch:
        patch.setattr(splice_placeholders.State, "materialize", _no_round_trip)
        fast, how = _run(tmp_path, "fast", text, _sync_all, True)
    assert how == "splice"
    assert fast == slow
    assert b"actual_hours: 0.012" in fast  # the 40th todo's, in place


def test_an_in_place_edit_that_changed_another_field_is_caught(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-place setter is checked against the validated models: were it to touch a
    # line it did not mean to, the edit goes the round trip's way, with its bytes.
    from coordination.catalog.file import splice_in_place

    real_set = splice_in_place.ItemText.set

    def sloppy(self: Any, key: str, text: str, pos: int | None) -> bool:
        done = real_set(self, key, text, pos)
        self.lines[:] = [line.replace("task: task", "task: tusk") for line in self.lines]
        return done

    data = CATALOGS["generated-indent2"]
    slow, _ = _run(tmp_path, "slow", data, _sync_all, False)
    with monkeypatch.context() as patch:
        patch.setattr(splice_in_place.ItemText, "set", sloppy)
        fast, how = _run(tmp_path, "fast", data, _sync_all, True)
    assert how is not None and "changed another field" in how, how
    assert fast == slow


@pytest.mark.parametrize("fault", ["another text", "another type"])
def test_a_line_set_in_place_that_says_something_else_is_caught(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    # The lines set in place are not parsed back with their items: each must be the
    # line of the value set, and read back (once per distinct line) as that value with
    # its type. A setter that wrote another text, or a text that YAML reads as another
    # type ("yes" is a bool), sends the edit the round trip's way, with its bytes.
    from coordination.catalog.file import splice_in_place

    real_set, real_text = splice_in_place.ItemText.set, splice_in_place.text_scalar

    def other_text(self: Any, key: str, text: str, pos: int | None) -> bool:
        return real_set(self, key, text + "x" if key == "status" else text, pos)

    def yes(value: object) -> str | None:
        return "yes" if value == "completed" else real_text(value)

    data = CATALOGS["generated-indent2"]
    slow, _ = _run(tmp_path, "slow", data, _sync_all, False)
    with monkeypatch.context() as patch:
        if fault == "another text":
            patch.setattr(splice_in_place.ItemText, "set", other_text)
        else:
            patch.setattr(splice_in_place, "text_scalar", yes)
        fast, how = _run(tmp_path, "fast", data, _sync_all, True)
    assert how is not None and "reads back differently" in how, how
    assert fast == slow


def test_an_item_edited_in_place_then_otherwise_is_written_by_ruamel(tmp_path: Path) -> None:
    def edit(m: CoordinationManager) -> None:
        from coordination.catalog.edits.document import TODO_KEYS, put, put_list, section

        def fn(doc: Any) -> None:
            item = section(doc, "todos")[0]
            put(item, "status", "completed", TODO_KEYS)  # in place
            put_list(item, "labels", ["a", "b"], TODO_KEYS)  # a list: ruamel
            put(item, "actual_hours", 2.5, TODO_KEYS)

        m.store.update(fn)

    data = CATALOGS["generated-indent2"]
    fast, how = _run(tmp_path, "fast", data, edit, True)
    slow, _ = _run(tmp_path, "slow", data, edit, False)
    assert how == "splice" and fast == slow


def test_the_setting_forces_the_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_EDIT_SPLICE", "0")
    get_settings.cache_clear()
    try:
        path = tmp_path / "ecosystem.yaml"
        shutil.copyfile(COMMENTED, path)
        m = CoordinationManager(path)
        m.todos.complete("TODO-010")
        assert m.store.last_edit == "round-trip: splicing is off"
    finally:
        monkeypatch.delenv("COORD_EDIT_SPLICE")
        get_settings.cache_clear()
    m = CoordinationManager(path)
    m.todos.complete("TODO-011")
    assert m.store.last_edit == "splice"


FLOW = b"""version: 1
repos: [{name: api}, {name: web}]
coordination:
  todos: [{id: TODO-1, task: one, repo: api}, {id: TODO-2, task: two, repo: web}]
"""


@pytest.mark.parametrize("edit", ["todo-create-plain", "todo-complete-first"])
def test_flow_style_sections_fall_back_to_the_round_trip(tmp_path: Path, edit: str) -> None:
    fast, how = _run(tmp_path, "fast", FLOW, EDITS[edit], True)
    slow, _ = _run(tmp_path, "slow", FLOW, EDITS[edit], False)
    assert how is not None and how.startswith("round-trip: ")
    assert fast == slow != FLOW


def test_a_delete_of_an_item_with_comments_under_it_falls_back(tmp_path: Path) -> None:
    """``# then the site`` sits at the sequence's column under TODO-010: ruamel keeps it
    as TODO-011's; deleting TODO-010 is left to the round trip, with its bytes."""
    def delete(m: CoordinationManager) -> Any:
        return m.todos.delete("TODO-010", force=True)

    fast, how = _run(tmp_path, "fast", COMMENTED.read_bytes(), delete, True)
    slow, _ = _run(tmp_path, "slow", COMMENTED.read_bytes(), delete, False)
    assert how is not None and how.startswith("round-trip: "), how
    assert fast == slow and b"# then the site" in fast


def test_comments_around_the_edited_item_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    shutil.copyfile(COMMENTED, path)
    before = path.read_text()
    m = CoordinationManager(path)
    m.todos.complete("TODO-010", hours=2)
    assert m.store.last_edit == "splice"
    after = path.read_text()
    for comment in ("# first the library", "# then the site", "# waits for the tag",
                    "# trailing comment at the end of the file"):
        assert after.count(comment) == 1, comment
    removed = [x for x in before.splitlines() if x not in after.splitlines()]
    added = [x for x in after.splitlines() if x not in before.splitlines()]
    assert removed == []
    assert added == ["    status: completed", "    actual_hours: 2"]


def test_a_refused_edit_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    path = tmp_path / "ecosystem.yaml"
    path.write_bytes(CATALOGS["generated-indent2"])
    before = path.read_bytes()
    m = CoordinationManager(path)
    with monkeypatch.context() as patch:  # refused on the fast path, no round trip
        patch.setattr(roundtrip_module, "load_round_trip", _no_round_trip)
        with pytest.raises(NotFoundError, match="TODO-99"):
            m.todos.complete("TODO-99")
    assert m.store.last_edit is None

    def bad(doc: Any) -> None:  # an unknown repo on an untouched item: schema refuses
        doc["coordination"]["todos"][1]["repo"] = "nowhere"

    with pytest.raises(CatalogSchemaError, match="nowhere"):
        m.store.update(bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


CREATE = """
import sys
from coordination.catalog.manager import CoordinationManager
m = CoordinationManager(sys.argv[1])
for i in range(3):
    m.todos.create(f"from {sys.argv[2]} #{i}", "api")
assert m.store.last_edit == "splice", m.store.last_edit
"""


def test_two_processes_appending_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    data = catalog_data(300, [(i, i + 1) for i in range(299)])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    CatalogStore(path).load()  # warm cache, as after any command
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CREATE, str(path), w], env=env,
                              stderr=subprocess.PIPE) for w in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=100)
        assert p.returncode == 0, err.decode()
    cat = CatalogStore(path, cache_dir=None).load()  # the whole file parses and validates
    tasks = sorted(t.task for t in cat.coordination.todos if t.task.startswith("from "))
    assert tasks == sorted(f"from {w} #{i}" for w in "ab" for i in range(3))
    assert len({t.id for t in cat.coordination.todos}) == 306
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_untouched_items_keep_their_own_layout(tmp_path: Path) -> None:
    """The one documented difference: in a file ruamel would re-indent (PyYAML's own
    dump, nested lists at the key's column), the round trip rewrites every item, the
    splice only the one edited."""
    data = yaml.safe_dump(catalog_data(4, [(0, 1), (1, 2)]), sort_keys=False,
                          indent=4).encode()
    assert dump_round_trip(*load_round_trip(data, "x")) != data  # ruamel re-indents it

    def edit(m: CoordinationManager) -> Any:
        return m.todos.complete("TODO-3")

    fast, how = _run(tmp_path, "fast", data, edit, True)
    slow, _ = _run(tmp_path, "slow", data, edit, False)
    assert how == "splice"
    added = [x for x in fast.decode().splitlines() if x not in data.decode().splitlines()]
    assert added == ["        status: completed"]
    assert fast.count(b"\n") == data.count(b"\n") + 1
    assert slow != fast and fast.replace(b"        - TODO-", b"        -   TODO-") == slow


def test_a_placeholder_value_put_into_another_item_falls_back(tmp_path: Path) -> None:
    """The edit puts one todo's (unchanged) blocked_by list object into another todo:
    the value is a placeholder's, so the round trip handles it, and refuses the alias
    it would write, as it always did."""
    path = tmp_path / "ecosystem.yaml"
    path.write_bytes(CATALOGS["generated-indent2"])

    def fn(doc: Any) -> None:
        todos = doc["coordination"]["todos"]
        todos[-1]["labels"] = todos[1]["blocked_by"]

    store = CatalogStore(path)
    with pytest.raises(CatalogSyntaxError, match="anchors and aliases"):
        store.update(fn)
    assert store.last_edit is not None and "placeholder" in store.last_edit
    assert path.read_bytes() == CATALOGS["generated-indent2"]


def ruamel_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From here on, the size of each text ruamel loads and dumps while an edit is
    spliced, in order."""
    from coordination.catalog.file import splice

    seen: list[int] = []
    real_apply = splice.apply

    def spy(fn: Any, body: str, file: str, cat: Any, load: Any, dump: Any) -> Any:
        def load_spy(text: str) -> Any:
            seen.append(len(text))
            return load(text)

        def dump_spy(doc: Any) -> str:
            out: str = dump(doc)
            seen.append(len(out))
            return out

        return real_apply(fn, body, file, cat, load_spy, dump_spy)

    monkeypatch.setattr(splice, "apply", spy)
    return seen


def test_ruamel_sees_only_a_small_part_of_a_big_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ecosystem.yaml"
    data = catalog_data(400, [(i, i + 1) for i in range(399)])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    size = path.stat().st_size
    seen = ruamel_sizes(monkeypatch)
    m = CoordinationManager(path)
    m.todos.complete("TODO-200", hours=1)
    m.todos.create("new", "api", blocked_by=["TODO-17"])
    assert m.store.last_edit == "splice"
    assert seen and max(seen) < size / 20, (seen, size)
    cat = CatalogStore(path, cache_dir=None).load()
    assert cat.todo("TODO-200").status.value == "completed"  # type: ignore[union-attr]
    assert cat.todo("TODO-17").blocking == ["TODO-400"]  # type: ignore[union-attr]


#: The edits of issue #24 on a big catalog: each spliced, ruamel seeing a small part.
BIG_EDITS: dict[str, Edit] = {
    "plan create": lambda m: m.plans.create("new", repos=["api"]),
    "plan update": lambda m: m.plans.update("PLAN-1", description="now described"),
    "plan delete": lambda m: m.plans.delete(m.plans.create("short-lived").id),
    "milestone add": lambda m: m.milestones.add("PLAN-1", "cut", todos=["TODO-200"]),
    "milestone delete": lambda m: m.milestones.delete(
        m.milestones.add("PLAN-1", "cut", todos=["TODO-200"]).id),
    "dep add": lambda m: m.dependencies.add("jobs", "web", command="true"),
    "dep update": lambda m: m.dependencies.update("DEP-1", notes="n", command="echo 2"),
    "dep remove": lambda m: m.dependencies.remove("DEP-1"),
    "repo add": lambda m: m.repos.add("docs", tags=["md"]),
    "repo update": lambda m: m.repos.update("web", description="site", concurrency=2),
    "repo remove": lambda m: (m.repos.add("docs"), m.repos.remove("docs")),
    "todo delete": lambda m: m.todos.delete("TODO-200", force=True),
    "issue delete": lambda m: m.issues.delete("ISSUE-2"),
}


@pytest.mark.parametrize("edit", sorted(BIG_EDITS))
def test_structure_edits_splice_a_big_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    path = tmp_path / "ecosystem.yaml"
    data = catalog_data(400, [(i, i + 1) for i in range(399)],
                        issues=[{"id": f"ISSUE-{i}", "title": f"issue {i}"} for i in (1, 2, 3)])
    data["coordination"]["dependencies"] = [
        {"id": f"DEP-{i}", "consumer": "api", "provider": "web"} for i in (1, 2, 3)]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    size = path.stat().st_size
    seen = ruamel_sizes(monkeypatch)
    monkeypatch.setattr(roundtrip_module, "load_round_trip", _no_round_trip)
    m = CoordinationManager(path)
    BIG_EDITS[edit](m)
    assert m.store.last_edit == "splice"
    assert seen and max(seen) < size / 20, (seen, size)
    CatalogStore(path, cache_dir=None).load()  # the whole file parses and validates


TRICKY = b'''version: 1
repos:
  - name: api
coordination:
  todos:
    - id: TODO-1
      task: "one
    - id: fake"
      repo: api
    - id: TODO-2
      task: two
      repo: api
'''


def test_a_line_that_only_looks_like_an_item_falls_back(tmp_path: Path) -> None:
    """A quoted scalar over two lines, the second like an item's first: the line scan
    counts one todo too many, so the edit takes the round trip."""
    def edit(m: CoordinationManager) -> Any:
        return m.todos.complete("TODO-2")

    fast, how = _run(tmp_path, "fast", TRICKY, edit, True)
    slow, _ = _run(tmp_path, "slow", TRICKY, edit, False)
    assert how is not None and "does not match the validated catalog" in how
    assert fast == slow != TRICKY


# -- an edit made ready in advance (a sweep's command, while the sweep runs) ------------
def _outcome(path: Path) -> dict[str, Any]:
    """Every todo of the catalog at ``path`` succeeded, as a sweep's status says it."""
    ids = [t.id for t in CatalogStore(path).load().coordination.todos]
    return {t: {"status": "succeeded", "duration": 36.0 * (k + 1), "outputs": {},
                "attempts": 1} for k, t in enumerate(ids)}


def _sync(tmp_path: Path, name: str, data: bytes, *, ready: bool,
          meanwhile: Callable[[Path], None] = lambda path: None) -> bytes:
    """A sweep's outcome written into ``data`` (every todo succeeded), the edit made
    ready first or not, and ``meanwhile`` done to the file in between."""
    from coordination.launch import ready_to_settle
    from coordination.sweeps.writeback.sync import write_outcome

    path = tmp_path / name / "ecosystem.yaml"
    path.parent.mkdir()
    path.write_bytes(data)
    outcome = _outcome(path)
    if ready:
        ready_to_settle(path)
    meanwhile(path)
    write_outcome(path, "PLAN-1", outcome)
    return path.read_bytes()


@pytest.mark.parametrize("catalog", sorted(CATALOGS))
def test_an_edit_made_ready_in_advance_writes_what_one_made_at_once_writes(
        tmp_path: Path, catalog: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.catalog.file import splice, splice_in_place

    data = CATALOGS[catalog]
    at_once = _sync(tmp_path, "at-once", data, ready=False)
    made: list[str] = []
    real_ready = splice.ready
    real_read = splice_in_place.ItemText.read

    def ready_spy(*args: Any, **kw: Any) -> Any:
        made.append("ready")
        return real_ready(*args, **kw)

    def read_spy(lines: list[str]) -> Any:
        made.append("read")
        return real_read(lines)

    monkeypatch.setattr(splice, "ready", ready_spy)
    monkeypatch.setattr(splice_in_place.ItemText, "read", staticmethod(read_spy))
    from coordination.launch import ready_to_settle
    from coordination.sweeps.writeback.sync import write_outcome

    path = tmp_path / "ready" / "ecosystem.yaml"
    path.parent.mkdir()
    path.write_bytes(data)
    outcome = _outcome(path)
    ready_to_settle(path)
    before = len(made)
    assert made[:1] == ["ready"] and "ready" not in made[1:]
    write_outcome(path, "PLAN-1", outcome)
    assert path.read_bytes() == at_once
    # The edit itself made nothing ready again; it read again only the lines of the
    # items it set in place (to check them), of those read in advance.
    assert "ready" not in made[before:]
    assert made[before:].count("read") <= made[:before].count("read")


def test_an_edit_made_ready_in_advance_still_sees_a_hand_edit_made_meanwhile(
        tmp_path: Path) -> None:
    # The sweep runs; the user edits the catalog by hand; the sync at the end writes the
    # outcome into the file as it is then, keeping the hand edit (what an edit made at
    # once would write).
    data = CATALOGS["generated-indent2"]

    def hand_edit(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        assert "task: task 3\n" in text
        path.write_text(text.replace("task: task 3\n", "task: task 3, by hand\n")
                        .replace("coordination:\n", "# a note by hand\ncoordination:\n", 1),
                        encoding="utf-8")

    ready = _sync(tmp_path, "ready", data, ready=True, meanwhile=hand_edit)
    at_once = _sync(tmp_path, "at-once", data, ready=False, meanwhile=hand_edit)
    assert b"task: task 3, by hand\n" in ready and b"# a note by hand\n" in ready
    assert b"status: completed" in ready
    assert ready == at_once
