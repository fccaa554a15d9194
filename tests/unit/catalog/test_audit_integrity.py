"""Audit log integrity (issue #23).

- Entries are validated field by field: a line with a valid hash but wrong field types is
  named by `coord audit --verify` with its line (exit 1, no traceback), skipped by the
  listing and by `history search --kind edit` (no traceback), and never stops the next
  edit's entry from being written.
- The keyed chain (``COORD_AUDIT_KEY``, HMAC-SHA256): an entry forged with recomputed
  hashes fails --verify, which the plain sha256 chain cannot show; plain logs stay
  verifiable, a plain prefix followed by keyed entries verifies, and a plain entry after
  keyed ones does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.manager import CoordinationManager
from coordination.settings import get_settings
from tests.unit.support.cli import clean_error, coord, strict_json

pytestmark = pytest.mark.timeout(90)

KEY = "correct horse battery staple"
Entry = dict[str, Any]


def use_key(monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    if key is None:
        monkeypatch.delenv("COORD_AUDIT_KEY", raising=False)
    else:
        monkeypatch.setenv("COORD_AUDIT_KEY", key)
    get_settings.cache_clear()


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def rehash(e: Entry, key: bytes | None = None) -> str:
    e["hash"] = audit.entry_hash(e, key)
    return json.dumps(e, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture
def three(mgr: CoordinationManager, example_catalog: Path) -> Path:
    """A plain log of three entries; returns its path."""
    mgr.issues.create("one")
    mgr.issues.update("ISSUE-003", priority="high")
    mgr.todos.create("three", "api")
    path = audit.log_path(example_catalog)
    assert audit.verify(path) == (3, None)
    return path


# -- field by field --------------------------------------------------------------------------
#: Each breaks one field of entry 1, then gives it a valid hash again.
MALFORMED: dict[str, Callable[[Entry], object]] = {
    "seq as text": lambda e: e.update(seq="1"),
    "seq as bool": lambda e: e.update(seq=True),
    "seq negative": lambda e: e.update(seq=-1),
    "seq as float": lambda e: e.update(seq=1.0),
    "at a number": lambda e: e.update(at=5),
    "at not a time": lambda e: e.update(at="yesterday"),
    "who null": lambda e: e.update(who=None),
    "op a list": lambda e: e.update(op=["x"]),
    "argv text": lambda e: e.update(argv="todo create"),
    "argv numbers": lambda e: e.update(argv=[1, 2]),
    "ids an object": lambda e: e.update(ids={"a": 1}),
    "ids numbers": lambda e: e.update(ids=[7]),
    "changes an object": lambda e: e.update(changes={}),
    "a change a number": lambda e: e.update(changes=[5]),
    "a change's fields a list": lambda e: e["changes"][0].update(fields=[]),
    "a field's pair cut short": lambda e: e["changes"][0].update(fields={"title": []}),
    "an unknown action": lambda e: e["changes"][0].update(action="exploded"),
    "catalog not hex": lambda e: e.update(catalog="zz"),
    "prev a number": lambda e: e.update(prev=0),
    "keyed false": lambda e: e.update(keyed=False),
    "who missing": lambda e: e.pop("who"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_entry_with_a_valid_hash_is_named_by_its_line(
        three: Path, name: str) -> None:
    lines = lines_of(three)
    e = json.loads(lines[1])
    MALFORMED[name](e)
    lines[1] = rehash(e)
    write_lines(three, lines)
    count, broken = audit.verify(three)
    assert count == 3 and broken is not None, name
    assert (broken.line, broken.index) == (2, 1), broken
    assert broken.problem.startswith("malformed: "), broken
    assert audit.entry_problem(e) is not None
    assert [x["seq"] for x in audit.read(three)] == [0, 2]  # the listing skips it


def test_the_cli_reports_a_malformed_entry_and_the_next_edit_is_still_audited(
        example_catalog: Path, three: Path) -> None:
    lines = lines_of(three)
    e = json.loads(lines[-1])  # the last one: what the next entry chains to
    e["seq"] = "x"
    e["changes"][0]["fields"] = {"title": []}
    lines[-1] = rehash(e)
    write_lines(three, lines)

    r = coord(example_catalog, "audit", "--verify")
    clean_error(r, 1)
    assert "line 3 (entry 2): malformed: seq must be a whole number" in r.stderr, r.stderr
    doc = strict_json(coord(example_catalog, "audit", "--verify", "--json").stdout)
    assert doc["intact"] is False and doc["first_bad"]["line"] == 3
    for args in (("audit",), ("audit", "--json"), ("history", "search", "", "--kind", "edit"),
                 ("history", "search", "", "--kind", "edit", "--json")):
        r = coord(example_catalog, *args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
    assert "not a well-formed entry" in coord(example_catalog, "audit").stderr

    r = coord(example_catalog, "todo", "update", "TODO-001", "--priority", "low",
              env={"COORD_USER": "bo@example.com"})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    after = lines_of(three)
    assert len(after) == 4
    new = json.loads(after[-1])
    assert new["who"] == "bo@example.com" and new["ids"] == ["TODO-001"]
    assert new["seq"] == 2 and new["prev"] == json.loads(after[1])["hash"]  # past the bad line
    assert audit.entry_problem(new) is None and new["hash"] == audit.entry_hash(new)


def test_an_old_entry_holding_infinity_still_verifies(three: Path) -> None:
    """coord before 0.3 wrote a catalog's .inf into the log as Infinity; its hash covers it."""
    lines = lines_of(three)
    e = json.loads(lines[-1])
    e["changes"][0]["fields"]["estimated_hours"] = [None, float("inf")]
    lines[-1] = rehash(e)
    assert "Infinity" in lines[-1]
    write_lines(three, lines)
    assert audit.verify(three) == (3, None)


# -- the keyed chain -------------------------------------------------------------------------
def test_keyed_entries_carry_an_hmac(mgr: CoordinationManager, example_catalog: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    use_key(monkeypatch, KEY)
    mgr.issues.create("keyed")
    path = audit.log_path(example_catalog)
    [e] = audit.read(path)
    assert e["keyed"] is True
    body = json.dumps({k: v for k, v in e.items() if k != "hash"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()
    assert e["hash"] == hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    assert audit.verify(path, KEY.encode()) == (1, None)


def forge_last(path: Path, key: bytes | None) -> None:
    """Change the last entry and recompute its hash (plain, or keyed with ``key``)."""
    lines = lines_of(path)
    e = json.loads(lines[-1])
    e["who"] = "mallory"
    if key is None:
        e.pop("keyed", None)
    lines[-1] = rehash(e, key)
    write_lines(path, lines)


def test_a_forged_last_entry_passes_the_plain_chain_but_not_the_keyed_one(
        mgr: CoordinationManager, example_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = audit.log_path(example_catalog)
    mgr.issues.create("plain one")
    forge_last(path, None)
    assert audit.verify(path) == (1, None)  # what the plain chain cannot show

    path.unlink()
    use_key(monkeypatch, KEY)
    mgr.issues.create("keyed one")
    mgr.issues.create("keyed two")
    for forged_with in (None, b"a guessed key", hashlib.sha256(b"").digest()):
        saved = path.read_bytes()
        forge_last(path, forged_with)
        _, broken = audit.verify(path, KEY.encode())
        assert broken is not None and broken.line == 2, (forged_with, broken)
        path.write_bytes(saved)
    assert audit.verify(path, KEY.encode()) == (2, None)


def test_a_plain_entry_appended_after_keyed_ones_fails(
        mgr: CoordinationManager, example_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = audit.log_path(example_catalog)
    use_key(monkeypatch, KEY)
    mgr.issues.create("keyed")
    use_key(monkeypatch, None)
    mgr.issues.create("written without the key")
    _, broken = audit.verify(path, KEY.encode())
    assert broken is not None and broken.line == 2 and "not keyed" in broken.problem


def test_old_plain_logs_stay_verifiable_and_a_keyed_tail_pins_them(
        three: Path, mgr: CoordinationManager, monkeypatch: pytest.MonkeyPatch) -> None:
    assert audit.verify(three, KEY.encode()) == (3, None)  # a plain log, with a key set
    use_key(monkeypatch, KEY)
    mgr.todos.create("keyed from here", "api")
    found = audit.check(three, KEY.encode())
    assert (found.entries, found.keyed, found.broken) == (4, 1, None)
    # A plain entry before the keyed one rewritten, hashes recomputed down the plain
    # part: the keyed entry's prev no longer matches, and nobody without the key can fix it.
    lines = lines_of(three)
    prev = audit.GENESIS
    for i in range(3):
        e = json.loads(lines[i])
        if i == 1:
            e["who"] = "mallory"
        e["prev"] = prev
        lines[i] = rehash(e)
        prev = e["hash"]
    write_lines(three, lines)
    _, broken = audit.verify(three, KEY.encode())
    assert broken is not None and broken.line == 4 and "prev" in broken.problem


def test_the_cli_verifies_keyed_logs_with_the_key_only(
        example_catalog: Path) -> None:
    env = {"COORD_USER": "ana@example.com", "COORD_AUDIT_KEY": KEY}
    for title in ("a", "b"):
        assert coord(example_catalog, "issue", "create", "--title", title, env=env).returncode == 0
    r = coord(example_catalog, "audit", "--verify", env=env)
    assert r.returncode == 0 and "2 entries, chain intact, every entry keyed" in r.stdout, r
    doc = strict_json(coord(example_catalog, "audit", "--verify", "--json", env=env).stdout)
    assert doc["intact"] is True and doc["keyed"] == 2

    r = coord(example_catalog, "audit", "--verify")  # no key
    clean_error(r, 2)
    assert "COORD_AUDIT_KEY is not set" in r.stderr, r.stderr
    r = coord(example_catalog, "audit", "--verify", env={"COORD_AUDIT_KEY": "wrong"})
    clean_error(r, 1)
    assert "line 1 (entry 0): changed or forged" in r.stderr, r.stderr

    forge_last(audit.log_path(example_catalog), None)
    r = coord(example_catalog, "audit", "--verify", env=env)
    clean_error(r, 1)
    assert "line 2 (entry 1): not keyed, after keyed entries" in r.stderr, r.stderr
