"""`history search`: text, repo, kind, since, limit, newest first;
edits from the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.history.search import parse_since, search, search_document
from coordination.runtime.history import HistoryStore
from tests.unit.support.history import DAY, now, run, todo

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def searched_history(store: HistoryStore) -> HistoryStore:
    t = now()
    run(store, "S-OLD", [
        todo("S-OLD", "TODO-001", "api", "failed", 3.0, t - 5 * DAY, reason="exit 1",
             tail="Connection REFUSED by db"),
        todo("S-OLD", "TODO-002", "web", "succeeded", 1.0, t - 5 * DAY, title="Bump the widget"),
    ], t - 5 * DAY, status="failed", reason="TODO-001 failed (exit 1)")
    run(store, "S-NEW", [
        todo("S-NEW", "TODO-001", "api", "succeeded", 2.0, t - 1 * DAY, tail="all good"),
        todo("S-NEW", "TODO-003", "jobs", "failed", 4.0, t - 1 * DAY - 1, reason="timed out",
             title="Migrate the jobs"),
    ], t - 1 * DAY, status="failed", reason="TODO-003 failed (timed out)")
    return store


def keys(recs: list[dict]) -> list[tuple]:
    return [(r["kind"], r["sweep_id"], r.get("todo_id")) for r in recs]


def test_text_is_found_in_tails_titles_and_reasons_case_insensitively(searched_history: HistoryStore) -> None:
    assert keys(search(searched_history, "connection refused")) == [("todo", "S-OLD", "TODO-001")]
    assert keys(search(searched_history, "WIDGET")) == [("todo", "S-OLD", "TODO-002")]
    # "timed out": the todo's reason and its sweep's reason; newest first.
    assert keys(search(searched_history, "timed out")) == [("sweep", "S-NEW", None),
                                                ("todo", "S-NEW", "TODO-003")]
    assert search(searched_history, "nothing like this") == []


def test_records_carry_what_happened(searched_history: HistoryStore) -> None:
    [rec] = search(searched_history, "connection refused")
    assert {k: rec[k] for k in ("repo", "title", "status", "attempts", "exit_code", "duration",
                                "worker", "reason", "plan", "run")} == {
        "repo": "api", "title": "do TODO-001", "status": "failed", "attempts": 1,
        "exit_code": 1, "duration": 3.0, "worker": "w1", "reason": "exit 1",
        "plan": "PLAN-001", "run": 0}
    assert rec["output_tail"] == "Connection REFUSED by db"
    assert rec["finished_at"].endswith("+00:00")  # ISO 8601, UTC


def test_repo_kind_since_and_limit(searched_history: HistoryStore) -> None:
    everything = search(searched_history, "", limit=100)
    assert keys(everything) == [
        ("sweep", "S-NEW", None), ("todo", "S-NEW", "TODO-001"), ("todo", "S-NEW", "TODO-003"),
        ("sweep", "S-OLD", None), ("todo", "S-OLD", "TODO-001"), ("todo", "S-OLD", "TODO-002")]
    assert keys(search(searched_history, "", repo="api", kind="todo")) == [
        ("todo", "S-NEW", "TODO-001"), ("todo", "S-OLD", "TODO-001")]
    # A sweep concerns the repos of its todos.
    assert keys(search(searched_history, "", repo="web", kind="sweep")) == [("sweep", "S-OLD", None)]
    assert keys(search(searched_history, "", kind="sweep")) == [("sweep", "S-NEW", None),
                                                      ("sweep", "S-OLD", None)]
    assert keys(search(searched_history, "", since=now() - 2 * DAY, kind="todo")) == [
        ("todo", "S-NEW", "TODO-001"), ("todo", "S-NEW", "TODO-003")]
    assert keys(search(searched_history, "", limit=2)) == keys(everything[:2])


def test_the_scope_of_an_mcp_server_keeps_only_its_repos(searched_history: HistoryStore) -> None:
    got = search(searched_history, "", repos={"jobs"}, limit=100)
    assert keys(got) == [("sweep", "S-NEW", None), ("todo", "S-NEW", "TODO-003")]


def test_text_with_quotes_and_beyond_ascii(store: HistoryStore) -> None:
    t = now()
    run(store, "S-U", [todo("S-U", "TODO-009", "api", "failed", 1.0, t,
                            tail='Grüße: "quoted" \\ back\tslash')], t)
    for needle in ("GRÜSSE", '"quoted"', "\\ back", "slash", "\t"):
        assert [r["todo_id"] for r in search(store, needle)] == ["TODO-009"], needle
    # Quotes and FTS5 operators in the text are words or separators, never query syntax.
    for needle in ('"grüße" ', '(grüße', 'grüße*', '^slash:'):
        assert [r["todo_id"] for r in search(store, needle)] == ["TODO-009"], needle
    for needle in ('"grüße" absent', 'absent OR slash', '*', 'NEAR(slash absent)'):
        assert search(store, needle) == [], needle


def test_since_takes_dates_and_ages() -> None:
    assert parse_since("2026-11-01") == parse_since("2026-11-01T00:00:00Z")
    assert parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * DAY
    assert parse_since("12h", now=1_000_000.0) == 1_000_000.0 - 12 * 3600
    with pytest.raises(ValueError):
        parse_since("last tuesday")


def test_catalog_edits_come_from_the_audit_log(store: HistoryStore, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.catalog.manager import CoordinationManager
    from coordination.settings import get_settings
    from tests.unit.support.sweeps import write_catalog

    monkeypatch.delenv("COORD_REDIS_URL", raising=False)
    monkeypatch.setenv("COORD_USER", "alice@example.com")
    get_settings.cache_clear()
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    m = CoordinationManager(cat)
    m.todos.create("Rotate the frobnicator keys", "web")
    m.todos.complete("TODO-001")
    found = search_document(cat, "frobnicator", history=lambda: store)
    assert [(r["kind"], r["who"]) for r in found] == [("edit", "alice@example.com")]
    assert found[0]["ids"] == ["TODO-002"] and found[0]["op"]
    # Newest first; by repo through the catalog (TODO-001 is api's).
    # Edits alone: the history store is not even opened (no embedded server to start).
    def unopened() -> HistoryStore:
        raise AssertionError("the store was opened for edits")

    edits = search_document(cat, "", kind="edit", history=unopened)
    assert [r["ids"] for r in edits] == [["TODO-001"], ["TODO-002"]]
    for repo, ids in (("api", [["TODO-001"]]), ("web", [["TODO-002"]])):
        found = search_document(cat, "", kind="edit", repo=repo, history=unopened)
        assert [r["ids"] for r in found] == ids
    get_settings.cache_clear()


def test_bad_input_is_a_usage_error_before_the_store_is_opened(tmp_path: Path) -> None:
    from coordination.errors import UsageError
    from coordination.history.trends import trends_document

    def unopened() -> HistoryStore:
        raise AssertionError("bad input opened the store (and started a server)")

    cat = tmp_path / "ecosystem.yaml"
    with pytest.raises(UsageError, match="not a date"):
        search_document(cat, "x", since="yesterday-ish", history=unopened)
    with pytest.raises(UsageError, match="unknown kind"):
        search_document(cat, "x", kind="nope", history=unopened)
    with pytest.raises(UsageError, match="limit"):
        search_document(cat, "x", limit=0, history=unopened)
    with pytest.raises(UsageError, match="days"):
        trends_document(days=0, history=unopened)
