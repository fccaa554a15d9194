"""Beside's handles (#62): the one atomic write, the one JSON read, the one rule for
symlinks, for every file beside a catalog; and what the modules that use them still do."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from coordination.catalog.file import beside as beside_module
from coordination.catalog.file.beside import Beside, BesideDirectory, LinkedBeside, NotJSON
from coordination.errors import UsageError

pytestmark = pytest.mark.timeout(60)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _umasked(mode: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


# -- the write ---------------------------------------------------------------------------
def test_a_write_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    at = Beside.of(tmp_path / "eco.yaml")
    at.criteria_results.write_str('{"old": []}')
    at.criteria_results.write_str('{"new": []}')
    assert at.criteria_results.read_json() == {"new": []}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".eco.yaml.coord.criteria.json"]


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            fails: str) -> None:
    at = Beside.of(tmp_path / "eco.yaml")
    at.audit_snapshot.write(b"version: 1\n")

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(beside_module.os, fails, broken)
    with pytest.raises(OSError, match="No space"):
        at.audit_snapshot.write(b"version: 1\nrepos: {}\n")
    monkeypatch.undo()
    assert at.audit_snapshot.read() == b"version: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".eco.yaml.coord.audit.last"]


def test_each_file_keeps_its_permissions(tmp_path: Path) -> None:
    """As before the handles: criteria results and anchors 0600 (they were written
    through mkstemp), the markers' directory 0700, the others as the umask leaves them."""
    at = Beside.of(tmp_path / "eco.yaml")
    at.criteria_results.write_str("{}")
    at.audit_snapshot.write(b"")
    at.sweep_markers.write("s1", b"{}")
    at.change_mirrors.write("PLAN-001.json", b"{}")
    at.anchors.sub("ns").write("PLAN-001.json", b"{}")
    at.fleet_roots.write(b"{}")
    assert _mode(at.criteria_results.path) == 0o600
    assert _mode(at.anchors.sub("ns").record("PLAN-001.json").path) == 0o600
    assert _mode(at.sweep_markers.path) == _umasked(0o700)
    assert _mode(at.sweep_markers.record("s1").path) == _umasked(0o666)
    assert _mode(at.change_mirrors.record("PLAN-001.json").path) == _umasked(0o666)
    assert _mode(at.audit_snapshot.path) == _umasked(0o666)
    assert _mode(at.fleet_roots.path) == _umasked(0o666)


def test_a_record_is_named_plainly(tmp_path: Path) -> None:
    markers = Beside.of(tmp_path / "eco.yaml").sweep_markers
    for bad in ("", ".", "..", "a/b", "../eco.yaml"):
        with pytest.raises(ValueError, match="not a record's name"):
            markers.record(bad)


def test_a_directory_lists_its_records_not_a_write_in_flight(tmp_path: Path) -> None:
    mirrors = Beside.of(tmp_path / "eco.yaml").change_mirrors
    mirrors.write("PLAN-002.json", b"{}")
    mirrors.write("PLAN-001.json", b"{}")
    (mirrors.path / ".PLAN-003.json.123.abcd.tmp").write_bytes(b"{")
    assert mirrors.names() == ["PLAN-001.json", "PLAN-002.json"]


# -- the read ----------------------------------------------------------------------------
def test_a_file_that_is_not_json_is_named_with_where(tmp_path: Path) -> None:
    results = Beside.of(tmp_path / "eco.yaml").criteria_results
    results.path.write_text('{"PLAN-001": [\n  {"ok": tru}\n]}\n')
    with pytest.raises(NotJSON) as got:
        results.read_json()
    assert str(got.value).startswith(f"{results.path}:2:10: not JSON: ")
    assert isinstance(got.value, ValueError) and isinstance(got.value, UsageError)


def test_an_absent_file_reads_as_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Beside.of(tmp_path / "eco.yaml").criteria_results.read_json()


# -- symlinks ----------------------------------------------------------------------------
def test_a_linked_file_is_neither_read_nor_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"kept": true}')
    results = Beside.of(tmp_path / "eco.yaml").criteria_results
    results.path.symlink_to(elsewhere)
    for act in (results.read, results.read_json, results.open_append,
                lambda: results.write_str("{}")):
        with pytest.raises(LinkedBeside) as got:
            act()
        assert str(results.path) in str(got.value) and "symlink" in str(got.value)
        assert isinstance(got.value, OSError) and got.value.exit_code == 2
    assert elsewhere.read_text() == '{"kept": true}'
    assert results.path.is_symlink()


def test_a_linked_directory_of_records_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "s1").write_text('{"todos": []}')
    markers = Beside.of(tmp_path / "eco.yaml").sweep_markers
    markers.path.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(LinkedBeside, match="symlink"):
        markers.names()
    with pytest.raises(LinkedBeside, match="symlink"):
        markers.record("s1").read_json()
    with pytest.raises(LinkedBeside, match="symlink"):
        markers.write("s2", b"{}")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["s1"]


def test_users_of_a_linked_file_refuse_or_ignore_it_as_before_an_unreadable_one(
        tmp_path: Path) -> None:
    """The readers that took an unreadable file for an absent one still do (a sweep's
    marker, a plan's results); `coord init`'s roots, an error naming the file."""
    from coordination.catalog.reads import live
    from coordination.catalog.runs import criteria
    from coordination.fleet import roots

    catalog = tmp_path / "eco.yaml"
    catalog.write_text("version: 1\n")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"roots": ["/"], "depth": 3}))
    Beside.of(catalog).criteria_results.path.symlink_to(elsewhere)
    assert criteria.read_results(catalog) == {}
    assert live.mark(catalog, "s1", at="embedded:x", plan=None, todos=[]) is True
    Beside.of(catalog).sweep_markers.record("s2").path.symlink_to(elsewhere)
    assert list(live.marked(catalog)) == ["s1"]
    BesideDirectory(tmp_path).fleet_roots.path.parent.mkdir()
    BesideDirectory(tmp_path).fleet_roots.path.symlink_to(elsewhere)
    with pytest.raises(UsageError, match="fleet.json is a symlink"):
        roots.remembered(tmp_path)


def test_a_linked_audit_log_is_not_appended_to_through_the_link(tmp_path: Path) -> None:
    """An entry is never appended to wherever a link aims (a writer of the checkout
    could aim it at a file of its own); the refusal names the log."""
    from coordination.catalog.audit import log as audit
    from coordination.catalog.file.store import CatalogStore
    from coordination.errors import OperationFailed

    catalog = tmp_path / "eco.yaml"
    catalog.write_text("version: 1\n")
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    Beside.of(catalog).audit_log.path.symlink_to(elsewhere)
    with pytest.raises(OperationFailed, match="audit.jsonl is a symlink"):
        CatalogStore(catalog).record_decision(who="t", op="init.roots", ids=["x"],
                                              decision={"sha256": "0" * 64})
    assert elsewhere.read_text() == ""
    assert audit.last_decisions(catalog, "init.roots", ["x"]) == {}
