"""CatalogStore: comment-keeping, atomic, serialised edits and cached reads."""

from __future__ import annotations

import difflib
import fcntl
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.file import loader, store
from coordination.catalog.file.roundtrip import dump_round_trip, guess_style, load_round_trip
from coordination.catalog.file.store import CatalogStore
from coordination.errors import CatalogError, CatalogSchemaError, CatalogSyntaxError, ConflictError
from tests.unit.support.catalogs import COMMENTED

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("private_cache")]

ROOT = Path(__file__).resolve().parents[3]


def changed_lines(before: bytes, after: bytes) -> list[str]:
    diff = difflib.ndiff(before.decode().splitlines(), after.decode().splitlines())
    return [d for d in diff if d[:1] in "+-"]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- basics ---------------------------------------------------------------------
def test_load_and_paths(example_catalog: Path) -> None:
    s = CatalogStore(example_catalog)
    assert s.path == example_catalog
    assert s.base_dir == example_catalog.resolve().parent
    assert s.load().todo("TODO-002").repo == "libcore"  # type: ignore[union-attr]
    assert s.lock_path.name == ".ecosystem.yaml.coord.lock"
    # Validated catalogs are kept by the sha256 of the bytes they came from: loading
    # the same file again is the same catalog, not another validation.
    assert s.load() is s.load()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file"):
        CatalogStore(tmp_path / "nope.yaml").load()


# -- round trip -------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant", ["plain", "crlf", "bom"], ids=["lf", "crlf", "bom"]
)
@pytest.mark.parametrize("source", [ROOT / "ecosystem.yaml", COMMENTED], ids=["example", "commented"])
def test_unmodified_dump_is_byte_identical(source: Path, variant: str) -> None:
    data = source.read_bytes()
    if variant == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif variant == "bom":
        data = b"\xef\xbb\xbf" + data
    doc, style = load_round_trip(data, "x")
    assert dump_round_trip(doc, style) == data


def test_indentation_is_detected() -> None:
    example = guess_style((ROOT / "ecosystem.yaml").read_text())
    assert (example.mapping, example.sequence, example.offset) == (2, 4, 2)
    commented = guess_style(COMMENTED.read_text())
    assert (commented.mapping, commented.sequence, commented.offset) == (2, 2, 0)
    four = guess_style("version: 1\nrepos:\n-   name: a\ncoordination:\n    todos: []\n")
    assert (four.mapping, four.sequence, four.offset) == (4, 4, 0)
    deep = guess_style("version: 1\nrepos:\n    -   name: a\n")
    assert (deep.mapping, deep.sequence, deep.offset) == (2, 8, 4)


def test_edit_of_the_example_is_a_minimal_diff(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    def complete(doc: Any) -> str:
        todo = next(t for t in doc["coordination"]["todos"] if t["id"] == "TODO-003")
        todo["status"] = "completed"
        todo["actual_hours"] = 5.5
        return todo["id"]

    assert CatalogStore(example_catalog).update(complete) == "TODO-003"
    assert changed_lines(before, example_catalog.read_bytes()) == [
        "+       status: completed", "+       actual_hours: 5.5"
    ]


def test_edit_keeps_comments_and_untouched_lines(commented: Path) -> None:
    before = commented.read_bytes()

    def edit(doc: Any) -> None:
        doc["coordination"]["todos"][1]["status"] = "completed"
        doc["coordination"]["issues"].append({"id": "ISSUE-011", "title": "Follow-up"})

    CatalogStore(commented).update(edit)
    after = commented.read_bytes()
    assert changed_lines(before, after) == [
        "+   - id: ISSUE-011",
        "+     title: Follow-up",
        "-     status: pending",
        "+     status: completed",
    ]
    assert after.startswith(before[: before.index(b"---")])  # comments before '---' kept
    assert CatalogStore(commented).load().issue("ISSUE-011") is not None


def test_new_strings_that_yaml11_reads_otherwise_are_quoted(commented: Path) -> None:
    def edit(doc: Any) -> None:
        doc["coordination"]["todos"][0].update(assignee="on", description="yes", task="1.5")

    CatalogStore(commented).update(edit)
    todo = CatalogStore(commented).load().coordination.todos[0]
    assert (todo.assignee, todo.description, todo.task) == ("on", "yes", "1.5")


def test_noop_edit_does_not_touch_the_file(commented: Path) -> None:
    before = os.stat(commented)
    assert CatalogStore(commented).update(lambda doc: 42) == 42
    after = os.stat(commented)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_mode_and_symlink_are_kept(commented: Path, tmp_path: Path) -> None:
    os.chmod(commented, 0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(commented)
    CatalogStore(link).update(lambda doc: doc["repos"][0].update(role="lib"))
    assert link.is_symlink()
    assert stat.S_IMODE(os.stat(commented).st_mode) == 0o640
    assert CatalogStore(commented).load().repos[0].role == "lib"


# -- refusing bad edits and bad files -------------------------------------------------
def test_invalid_edit_writes_nothing(commented: Path) -> None:
    before = commented.read_bytes()
    with pytest.raises(CatalogSchemaError) as info:
        CatalogStore(commented).update(lambda doc: doc["coordination"]["todos"][0].update(repo="apii"))
    assert "todos[0].repo: unknown repo 'apii'" in str(info.value)
    assert "nothing was written" in str(info.value)
    assert commented.read_bytes() == before
    assert leftovers(commented.parent) == []


BAD_FILES = [
    (b"version: 1\nrepos:\n  - name: a\n   path: b\n", CatalogSyntaxError, 4),
    (b"version: 1\nrepos: []\nrepos: []\n", CatalogSyntaxError, 3),
    (b"version: 1\nrepos: !!python/object/apply:os.system ['true']\n", CatalogSyntaxError, 2),
    (b"version: 1\nrepos:\n  - name: caf\xe9\n", CatalogSyntaxError, 3),
    (b"version: 1\na: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", CatalogSyntaxError, 3),
    (b"version: 1\nrepos: api\n", CatalogSchemaError, 2),
    (b"version: 1\nrepos: [{name: api}]\ncoordination:\n  todos:\n    - id: TODO-1\n"
     b"      task: t\n      repo: apii\n", CatalogSchemaError, 7),
    (b"version: 3\n", CatalogSchemaError, 1),
]


@pytest.mark.parametrize(("data", "cls", "line"), BAD_FILES)
def test_update_of_a_bad_file_changes_nothing(
    tmp_path: Path, data: bytes, cls: type[CatalogError], line: int
) -> None:
    path = tmp_path / "ecosystem.yaml"
    path.write_bytes(data)
    calls: list[int] = []
    with pytest.raises(cls) as info:
        CatalogStore(path).update(lambda doc: calls.append(1))
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert path.read_bytes() == data
    assert calls == []
    assert leftovers(tmp_path) == []


# -- atomicity ----------------------------------------------------------------------
@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_crash_before_rename_leaves_the_old_file(
    commented: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    before = commented.read_bytes()

    def crash(src: Any, dst: Any) -> None:
        assert Path(src).read_bytes() != before  # the new text was fully written first
        raise exc

    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(CatalogError if isinstance(exc, OSError) else KeyboardInterrupt):
        CatalogStore(commented).update(lambda doc: doc["repos"][0].update(role="x"))
    assert commented.read_bytes() == before
    assert leftovers(commented.parent) == []


def test_failed_fsync_leaves_the_old_file(commented: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = commented.read_bytes()

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store.os, "fsync", fail)
    with pytest.raises(CatalogError, match="cannot write: Input/output error"):
        CatalogStore(commented).update(lambda doc: doc["repos"][0].update(role="x"))
    assert commented.read_bytes() == before
    assert leftovers(commented.parent) == []


# -- concurrent writers -------------------------------------------------------------
APPEND = """
import sys
from coordination.catalog.models import next_id
from coordination.catalog.file.store import CatalogStore

def add(doc):
    issues = doc["coordination"]["issues"]
    new = next_id("issue", [str(i["id"]) for i in issues])
    issues.append({"id": new, "title": "from " + sys.argv[2]})

CatalogStore(sys.argv[1]).update(add)
"""


def test_concurrent_writers_lose_nothing(example_catalog: Path) -> None:
    n = 8
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", APPEND, str(example_catalog), f"writer-{i}"],
                         env=env, stderr=subprocess.PIPE)
        for i in range(n)
    ]
    for p in procs:
        _, err = p.communicate(timeout=50)
        assert p.returncode == 0, err.decode()
    cat = CatalogStore(example_catalog, cache_dir=None).load()
    titles = sorted(i.title for i in cat.coordination.issues if i.title.startswith("from "))
    assert titles == sorted(f"from writer-{i}" for i in range(n))
    assert len({i.id for i in cat.coordination.issues}) == 3 + n
    assert leftovers(example_catalog.parent) == []


def test_a_writer_that_takes_no_lock_is_not_overwritten(commented: Path) -> None:
    calls: list[int] = []

    def edit(doc: Any) -> None:
        calls.append(1)
        if len(calls) == 1:  # an editor saves while our first attempt is in flight
            text = commented.read_text().replace("title: Train 7", "title: Train 7b")
            commented.write_text(text)
        doc["repos"][0]["role"] = "lib"

    CatalogStore(commented).update(edit)
    cat = CatalogStore(commented).load()
    assert len(calls) == 2
    assert cat.plan("PLAN-002").title == "Train 7b"  # type: ignore[union-attr]
    assert cat.repos[0].role == "lib"


def test_a_file_that_keeps_changing_is_a_conflict(commented: Path) -> None:
    counter = iter(range(100))

    def edit(doc: Any) -> None:
        commented.write_text(commented.read_text() + f"# editor save {next(counter)}\n")
        doc["repos"][0]["role"] = "lib"

    with pytest.raises(ConflictError, match="kept changing"):
        CatalogStore(commented).update(edit)
    assert b"role: lib" not in commented.read_bytes()


def test_lock_wait_has_a_deadline(commented: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = CatalogStore(commented)
    monkeypatch.setattr(store, "LOCK_TIMEOUT", 0.3)
    fd = os.open(s.lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(ConflictError, match="another coord process"):
            s.update(lambda doc: doc["repos"][0].update(role="x"))
        assert time.monotonic() - started < 5
    finally:
        os.close(fd)
    assert b"role: x" not in commented.read_bytes()


# -- cache --------------------------------------------------------------------------
def test_warm_load_skips_parsing(commented: Path, monkeypatch: pytest.MonkeyPatch,
                                 private_cache: Path) -> None:
    first = CatalogStore(commented).load()
    assert list((private_cache / "coord" / "catalog").glob("*.json"))

    def no_parse(*a: Any) -> Any:
        raise AssertionError("parsed despite a warm cache")

    monkeypatch.setattr(loader, "load_catalog", no_parse)
    assert CatalogStore(commented).load() == first


def test_the_stores_of_a_process_share_what_they_validated(
        commented: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A waiting `plan sweep` makes a store to plan, more to start, one to sync: the
    # catalog is read from the JSON cache once, by the first; a store with another
    # cache reads its own, and changed bytes are validated anew.
    first = CatalogStore(commented).load()
    reads: list[str] = []
    real_get = CatalogStore._cache_get

    def counted(self: CatalogStore, token: str) -> Any:
        reads.append(token)
        return real_get(self, token)

    monkeypatch.setattr(CatalogStore, "_cache_get", counted)
    assert CatalogStore(commented).load() is first
    assert reads == []
    other = CatalogStore(commented, cache_dir=tmp_path / "other-cache").load()
    assert other == first and other is not first and len(reads) == 1
    commented.write_text(commented.read_text().replace("concurrency: 2", "concurrency: 3"))
    changed = CatalogStore(commented).load()
    assert changed.repos[1].concurrency == 3 and len(reads) == 2
    # Kept: the last two; what is known of them leaves with them.
    commented.write_text(commented.read_text().replace("concurrency: 3", "concurrency: 4"))
    assert CatalogStore(commented).load().repos[1].concurrency == 4
    assert len(store._MEMO) == 2
    assert store._JSON_SAFE <= {token for _, token in store._MEMO}


def test_edit_refreshes_the_cache(commented: Path) -> None:
    CatalogStore(commented).update(lambda doc: doc["repos"][0].update(role="lib"))
    assert CatalogStore(commented).load().repos[0].role == "lib"
    commented.write_text(commented.read_text().replace("role: lib", "role: other"))
    assert CatalogStore(commented).load().repos[0].role == "other"


def test_broken_cache_never_fails_a_read(commented: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    assert CatalogStore(commented, cache_dir=blocker).load().repos[0].name == "core"
    cache = tmp_path / "c"
    CatalogStore(commented, cache_dir=cache).load()
    for entry in (cache / "catalog").glob("*.json"):
        entry.write_text("{not json")
    assert CatalogStore(commented, cache_dir=cache).load().repos[0].name == "core"


def test_cache_keeps_values_json_would_change(commented: Path) -> None:
    text = commented.read_text().replace("metadata: {sprint: 12", "metadata: {when: 2026-01-02, sprint: 12")
    commented.write_text(text)
    for _ in range(2):
        meta = CatalogStore(commented).load().coordination.issues[0].metadata
        assert meta["when"].isoformat() == "2026-01-02"


def test_no_cache_dir_means_no_cache(commented: Path, private_cache: Path) -> None:
    CatalogStore(commented, cache_dir=None).load()
    assert not private_cache.exists()


def test_warm_load_of_5000_todos_is_fast(tmp_path: Path) -> None:
    lines = ["version: 1", "repos:", "  - name: api", "coordination:", "  todos:"]
    for i in range(1, 5001):
        lines += [f"    - id: TODO-{i:05d}", f"      task: task {i}", "      repo: api",
                  "      labels: [x]"]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    s = CatalogStore(path, cache_dir=tmp_path / "cache")
    assert len(s.load().coordination.todos) == 5000
    started = time.perf_counter()
    s.load()
    assert time.perf_counter() - started < 0.5  # ~30 ms measured; generous for shared CI


def _set_title(issue_id: str, title: str) -> Any:
    def edit(doc: Any) -> None:
        for item in doc["coordination"]["issues"]:
            if item["id"] == issue_id:
                item["title"] = title
    return edit


def test_an_editor_save_in_the_write_window_is_not_lost(
    example_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor (no lock) saving after coord's last check but before its rename
    used to be overwritten. The file is compared once more right before the
    rename; a save there makes coord redo its edit on the saved file."""
    cs = CatalogStore(example_catalog)
    real_fsync, saved = os.fsync, []

    def fsync_then_editor_saves(fd: int) -> None:
        real_fsync(fd)
        if not saved:  # coord's temp file is written: now the editor saves
            saved.append(True)
            text = example_catalog.read_text().replace("Python 3.13", "Python 3.14", 1)
            example_catalog.write_text(text)

    monkeypatch.setattr(store.os, "fsync", fsync_then_editor_saves)
    cs.update(_set_title("ISSUE-001", "coord's title"))
    text = example_catalog.read_text()
    assert saved and "Python 3.14" in text and "coord's title" in text


def test_a_save_right_after_the_rename_wins_and_is_reported(
    example_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = CatalogStore(example_catalog)
    real_replace = os.replace

    def replace_then_editor_saves(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        Path(dst).write_text(Path(dst).read_text().replace("Python 3.13", "Python 3.14", 1))

    monkeypatch.setattr(store.os, "replace", replace_then_editor_saves)
    with pytest.raises(ConflictError, match="its save won"):
        cs.update(_set_title("ISSUE-001", "coord's title"))
