"""`history search` ranks by relevance: every word by its stem (FTS5, porter), BM25,
the text as written first; filters kept; a `score` per hit."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.history.search import search
from coordination.runtime.history import HistoryStore
from coordination.stats.relevance import PHRASE_BONUS, rank, roots
from tests.unit.support.history import DAY, now, run, todo

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ranked_history(store: HistoryStore) -> HistoryStore:
    t = now()
    run(store, "S-1", [
        todo("S-1", "TODO-001", "api", "failed", 3.0, t - 3 * DAY, tail="3 tests failed in suite"),
        todo("S-1", "TODO-002", "web", "failed", 1.0, t - 3 * DAY,
             tail="a failing test: test_login; test_logout failing; the test runner"),
    ], t - 3 * DAY, status="failed")
    run(store, "S-2", [
        todo("S-2", "TODO-003", "api", "succeeded", 2.0, t - DAY, tail="all tests passed"),
        todo("S-2", "TODO-004", "jobs", "failed", 2.0, t - DAY, tail="build failed"),
    ], t - DAY, status="failed")
    return store


def ids(recs: list[dict]) -> list[str]:
    return [str(r.get("todo_id")) for r in recs]


def test_words_match_by_their_stems_in_any_order(ranked_history: HistoryStore) -> None:
    # "failing test" finds "tests failed" (stems fail + test), never a record with one word.
    found = search(ranked_history, "failing test", kind="todo")
    assert sorted(ids(found)) == ["TODO-001", "TODO-002"]
    assert "TODO-003" not in ids(search(ranked_history, "failing tests", kind="todo"))
    assert search(ranked_history, "failing deploys") == []


def test_the_most_relevant_comes_first_and_has_a_score(ranked_history: HistoryStore) -> None:
    found = search(ranked_history, "failing test", kind="todo")
    # TODO-002 holds the phrase as written, and both words more often.
    assert ids(found) == ["TODO-002", "TODO-001"]
    assert found[0]["score"] > found[1]["score"] > 0
    assert found[0]["score"] > PHRASE_BONUS
    # Ranked, not newest first: the older run's todos before the newer one's.
    mixed = search(ranked_history, "failed", kind="todo")
    assert set(ids(mixed)) == {"TODO-001", "TODO-004", "TODO-002"}
    scores = [r["score"] for r in mixed]
    assert scores == sorted(scores, reverse=True)


def test_filters_are_kept(ranked_history: HistoryStore) -> None:
    assert ids(search(ranked_history, "failed", kind="todo", repo="jobs")) == ["TODO-004"]
    assert ids(search(ranked_history, "test", kind="todo", since=now() - 2 * DAY)) == ["TODO-003"]
    assert len(search(ranked_history, "failed", kind="todo", limit=1)) == 1
    # the sweeps' own text holds no "test"
    assert search(ranked_history, "test", kind="sweep") == []
    # empty text: everything, newest first, no score
    every = search(ranked_history, "", kind="todo", limit=100)
    assert ids(every)[:2] == ["TODO-003", "TODO-004"]
    assert {r["score"] for r in every} == {None}


def test_a_fragment_of_a_word_is_still_found_as_written(ranked_history: HistoryStore) -> None:
    [hit] = search(ranked_history, "runne", kind="todo")
    assert hit["todo_id"] == "TODO-002" and hit["score"] == PHRASE_BONUS


def test_rank_alone() -> None:
    texts = ["tests failed", "one failing test here", "nothing", "fail"]
    got = rank(texts, "failing test")
    assert set(got) == {0, 1}
    assert got[1] > got[0]  # as written
    assert rank(texts, "") == {}


def test_every_word_holds_its_stems_root() -> None:
    """The store skips runs without every query word's root (relevance.roots): sound
    only if each word holds the root of its own stem. Checked on every word of the
    docs and the code (some 9,000, stemmed by FTS5 itself)."""
    import re
    import sqlite3

    from coordination.runtime.history import fold
    from coordination.stats.relevance import TOKENIZE

    root_dir = Path(__file__).resolve().parents[3]
    vocabulary: set[str] = set()
    for pattern, where in (("*.md", root_dir / "docs"), ("*.py", root_dir / "coordination")):
        for p in where.rglob(pattern):
            vocabulary.update(re.findall(r"\w+", fold(p.read_text(errors="ignore"))))
    vocabulary.update(("happy", "mobility", "sensibility", "relational", "controlling",
                       "generalizations", "hoping", "agreed", "ponies", "cried", "tests"))
    listed = sorted(vocabulary)
    assert len(listed) > 3000
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE d USING fts5(b, tokenize = '{TOKENIZE}')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(d, instance)")
    db.executemany("INSERT INTO d(rowid, b) VALUES (?, ?)", enumerate(listed))
    bad = [(listed[doc], stem) for doc, stem in db.execute("SELECT doc, term FROM v")
           if roots([stem])[0] not in listed[doc]]
    db.close()
    assert bad == []


def test_the_store_skips_runs_by_roots_and_finds_the_same(
        ranked_history: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.runtime import history as h

    queries = ("failing test", "failed", "tests passed", "build", "runne", "absent words")
    with_shortcut = {q: ids(search(ranked_history, q, limit=100)) for q in queries}
    monkeypatch.setattr(h, "_plain", lambda needle: False)
    without = {q: ids(search(ranked_history, q, limit=100)) for q in queries}
    assert with_shortcut == without


def test_a_word_in_every_record_is_ranked_among_the_newest(
        ranked_history: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.history import search as h

    # "failed" is in TODO-001 (3 days ago), TODO-002 (3 days ago), TODO-004 (1 day ago)
    # and both sweeps' statuses; with room for 3 records, the newest three are ranked.
    monkeypatch.setattr(h, "MAX_RANKED", 3)
    got = search(ranked_history, "failed", limit=100)
    assert len(got) <= 3
    assert "TODO-004" in ids(got) and not {"TODO-001", "TODO-002"} <= set(ids(got))
