"""One matching rule for history search, whatever the store (issue #23): NFKC, case folded
(:func:`coordination.runtime.history.fold`). The store's shortcut (looking for the text in
a run's raw JSON before decoding it) must never drop a record the rule matches, and the
embedded server and a team's Redis (fakeredis and a real redis-server here: one code
path, two servers) answer alike. Search text is bounded: longer than MAX_SEARCH_CHARS is
refused with exit 2 and a reason, before any server is started.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from coordination.errors import UsageError
from coordination.history.search import MAX_SEARCH_CHARS, search, search_document
from coordination.history.trends import trends_document
from coordination.keys import Keys
from coordination.runtime import history as h
from coordination.runtime.history import HistoryStore, RedisHistory, fold
from tests.unit.support.cli import clean_error, coord
from tests.unit.support.history import now, run, todo

pytestmark = pytest.mark.timeout(60)

#: (text a record holds, text searched for): each pair must match.
MATCHES = [
    ("Straße gesperrt", "STRASSE"),  # ß folds to ss
    ("STRASSE", "straße"),
    ("the ﬁle is missing", "FILE"),  # ligature: NFKC
    ("ＡＰＩ timeout", "api"),  # full width: NFKC
    ("api timeout", "ＡＰＩ"),
    ("caf\u00e9 closed", "cafe\u0301"),  # composed vs decomposed é
    ("cafe\u0301 closed", "CAF\u00c9"),
    ("ΣΊΣΥΦΟΣ rolled", "σίσυφος"),  # final sigma
    ("step Ⅻ failed", "xii"),  # roman numeral: NFKC
    ("x² overflow", "X2"),  # superscript: NFKC
    ("ǅungla", "ǆUNGLA"),  # titlecase digraph
    ("İstanbul", "i̇stanbul"),  # dotted capital I folds to i + combining dot
]
#: Pairs that must not match (the rule is no fuzzy match).
MISSES = [("café", "cafe"), ("resume", "résumé"), ("api", "apix")]


@pytest.fixture
def stores(redis_backend: tuple[str, Any]) -> Iterator[HistoryStore]:
    name, make = redis_backend
    client = make(fakeredis.FakeRedis if name == "fakeredis" else redis.Redis)
    s = RedisHistory(client, Keys("unicode"), days=90)
    yield s
    s.close()
    client.close()


def fill(store: HistoryStore, texts: list[str]) -> None:
    t = now()
    for i, text in enumerate(texts):
        sid = f"S-{i:03d}"
        # the text once in each searchable place: title, reason, output tail
        where = ({"title": text}, {"reason": text}, {"tail": text})[i % 3]
        run(store, sid, [todo(sid, f"TODO-{i:03d}", "api", "failed", 1.0, t - i, **where)],
            t - i, status="failed")


def todo_ids(recs: list[dict[str, Any]]) -> list[str]:
    return [str(r["todo_id"]) for r in recs]


@pytest.mark.parametrize("stored,needle", MATCHES)
def test_fold_matches(stored: str, needle: str) -> None:
    assert fold(needle) in fold(stored)


@pytest.mark.parametrize("stored,needle", MISSES)
def test_fold_is_no_fuzzy_match(stored: str, needle: str) -> None:
    assert fold(needle) not in fold(stored)


def test_fold_is_stable_and_ascii_is_lowered() -> None:
    for stored, _ in MATCHES:
        assert fold(fold(stored)) == fold(stored)
        assert unicodedata.is_normalized("NFKC", fold(stored))
    assert fold("Connection REFUSED") == "connection refused"


def test_every_store_finds_by_the_one_rule(stores: HistoryStore) -> None:
    """Each pair found, in the store's raw-JSON shortcut and in the record check alike,
    on fakeredis and on a real redis-server."""
    fill(stores, [stored for stored, _ in MATCHES])
    for i, (_stored, needle) in enumerate(MATCHES):
        found = todo_ids(search(stores, needle, kind="todo", limit=100))
        assert f"TODO-{i:03d}" in found, (needle, found)
    for needle in ("cafe", "résumé"):
        assert search(stores, needle, kind="todo", limit=100) == []


def test_the_shortcut_never_drops_what_the_rule_matches(
        stores: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Results with the store's raw-JSON shortcut equal those with it turned off, for
    needles folding changes (a full-width quote folds to '"', which JSON escapes)."""
    texts = [s for s, _ in MATCHES] + ['say "hi"', "back\\slash", "tab\there", "ＡＰＩ＂quoted＂"]
    fill(stores, texts)
    needles = [n for _, n in MATCHES] + ["＂HI＂", '"hi"', "＼SLASH", "ＡＰＩ＂", "\u0301"]
    with_shortcut = {n: todo_ids(search(stores, n, limit=100)) for n in needles}
    monkeypatch.setattr(h, "_plain", lambda needle: False)
    without = {n: todo_ids(search(stores, n, limit=100)) for n in needles}
    assert with_shortcut == without
    n = len(MATCHES)
    assert with_shortcut["＂HI＂"] == [f"TODO-{n:03d}"]  # 'say "hi"'
    # As written ("api" and a quote) first; then the records with the word api alone.
    assert with_shortcut["ＡＰＩ＂"][0] == f"TODO-{n + 3:03d}"
    assert sorted(with_shortcut["ＡＰＩ＂"][1:]) == ["TODO-003", "TODO-004"]


def test_edits_match_by_the_same_rule(store: HistoryStore, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.catalog.manager import CoordinationManager
    from coordination.settings import get_settings
    from tests.unit.support.sweeps import write_catalog

    monkeypatch.setenv("COORD_USER", "ana@example.com")
    get_settings.cache_clear()
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    CoordinationManager(cat).todos.create("Rename the Straße ＡＰＩ", "web")
    for needle in ("STRASSE", "api", "straße ａｐｉ"):
        found = search_document(cat, needle, kind="edit", history=lambda: store)
        assert [r["ids"] for r in found] == [["TODO-002"]], needle


# -- bounds -------------------------------------------------------------------------------
def test_search_text_is_bounded_before_the_store_is_opened(tmp_path: Path) -> None:
    def unopened() -> HistoryStore:
        raise AssertionError("oversized text opened the store (and started a server)")

    cat = tmp_path / "ecosystem.yaml"
    with pytest.raises(UsageError, match=f"at most {MAX_SEARCH_CHARS:,}") as info:
        search_document(cat, "x" * (MAX_SEARCH_CHARS + 1), history=unopened)
    assert "COORD_REDIS_URL" not in str(info.value)
    with pytest.raises(UsageError):
        search_document(cat, "é" * 50_000, kind="edit", history=unopened)


def test_search_text_at_the_bound_is_searched(store: HistoryStore, tmp_path: Path) -> None:
    text = "y" * MAX_SEARCH_CHARS
    t = now()
    run(store, "S-1", [todo("S-1", "TODO-001", "api", "failed", 1.0, t, tail="x" + text)], t)
    found = search_document(tmp_path / "ecosystem.yaml", text.upper(), kind="todo",
                            history=lambda: store)
    assert todo_ids(found) == ["TODO-001"]


@pytest.mark.parametrize("days", [float("inf"), float("nan"), 1e308, 36500.5, 0.0, -1.0])
def test_trends_days_are_finite_and_bounded(days: float) -> None:
    def unopened() -> HistoryStore:
        raise AssertionError("bad days opened the store")

    with pytest.raises(UsageError, match="days must be"):
        trends_document(days=days, history=unopened)


def test_the_cli_refuses_oversized_text_with_exit_2(example_catalog: Path) -> None:
    r = coord(example_catalog, "history", "search", "x" * 50_000, "--json")
    clean_error(r, 2)
    assert r.stdout == ""
    assert "50,000 characters" in r.stderr and "at most 1,000" in r.stderr, r.stderr
    assert "COORD_REDIS_URL" not in r.stderr
    r = coord(example_catalog, "history", "trends", "--days", "inf", "--json")
    clean_error(r, 2)
    assert "days must be" in r.stderr and r.stdout == ""
