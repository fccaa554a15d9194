"""`coord issue suggest ISSUE [--json]` and `issue create --assignee auto` (DESIGN.md,
Version 0.7 additions, M): the people of the catalog ranked for an issue, with the
reasons: what they completed in its repos, the words it shares with what they completed
or closed (the audit log's `todo complete` / `issue close` count for who ran them), less
their open load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.stats.suggest import Work, rank
from tests.unit.support.cli import clean_error, coord, coord_inline

pytestmark = pytest.mark.timeout(120)

CATALOG = """\
version: 1
repos:
  - {name: api, path: repos/api}
  - {name: web, path: repos/web}
coordination:
  issues:
    - {id: ISSUE-001, title: Registry timeouts when pushing images, repos: [api]}
    - {id: ISSUE-002, title: The old registry timeout, repos: [api], assignee: bo,
       status: closed}
  todos:
    - {id: TODO-001, task: Raise the registry timeout, repo: api, assignee: ana,
       status: completed}
    - {id: TODO-002, task: Style the footer, repo: web, assignee: cy, status: completed}
    - {id: TODO-003, task: Rotate the api keys, repo: api, assignee: ana}
    - {id: TODO-004, task: Paint the registry page, repo: web, assignee: dee}
    - {id: TODO-005, task: Another api chore, repo: api, assignee: bo}
"""


@pytest.fixture
def people_eco(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_USER", "eve")
    get_settings.cache_clear()
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG)
    return path


def ranked(people_eco: Path, issue: str) -> list[dict[str, Any]]:
    r = coord_inline(people_eco, "issue", "suggest", issue, "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["issue"] == issue
    rows: list[dict[str, Any]] = doc["suggestions"]
    return rows


def test_suggest_ranks_by_repos_words_and_load_and_says_why(people_eco: Path) -> None:
    rows = ranked(people_eco, "ISSUE-001")
    by = {r["person"]: r for r in rows}
    # ana and bo each completed one api item on the registry's timeout; ana has one
    # open item (TODO-003), bo one (TODO-005): a tie broken by name. cy (web, nothing
    # shared) and dee (open work only) follow.
    assert [r["person"] for r in rows] == ["ana", "bo", "cy", "dee"]
    assert by["ana"] == {
        "person": "ana", "score": 4.0, "completed_in_repos": 1, "repos": ["api"],
        "similar_words": ["registry", "timeouts"], "open_load": 1,
        "reasons": ["completed 1 item in api", "closed work with similar words: registry, "
                    "timeouts", "1 open item assigned"]}
    assert by["dee"]["score"] == -1.0 and by["dee"]["similar_words"] == []
    assert by["cy"]["score"] == 0.0 and by["cy"]["reasons"] == ["nothing open assigned"]
    # The issue itself is not work of anyone's (ISSUE-002 is bo's: closed, it counts).
    assert by["bo"]["completed_in_repos"] == 1


def test_completing_work_moves_a_person_up(people_eco: Path) -> None:
    """eve is nobody's assignee and not ranked; once she completes TODO-003 and closes
    ISSUE-002 (the audit log says so), she shares the top: two api items, no load, as
    ana (whose TODO-003 is now done, her load gone)."""
    assert "eve" not in {r["person"] for r in ranked(people_eco, "ISSUE-001")}
    assert coord_inline(people_eco, "todo", "complete", "TODO-003").code == 0
    assert coord_inline(people_eco, "issue", "close", "ISSUE-002").code == 0
    rows = ranked(people_eco, "ISSUE-001")
    top = [(r["person"], r["score"], r["completed_in_repos"], r["open_load"]) for r in rows[:2]]
    assert top == [("ana", 8.0, 2, 0), ("eve", 8.0, 2, 0)], rows


def test_human_output_is_a_table_with_the_reasons(people_eco: Path) -> None:
    r = coord_inline(people_eco, "issue", "suggest", "ISSUE-001")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "Who should take ISSUE-001"
    assert lines[2].split()[0] == "ana" and "completed 1 item in api" in lines[2]


def test_an_unknown_issue_is_exit_2(people_eco: Path) -> None:
    r = coord(people_eco, "issue", "suggest", "ISSUE-404")
    clean_error(r, 2)
    assert "ISSUE-404" in r.stderr


def test_create_assignee_auto_takes_the_first_and_says_why(people_eco: Path) -> None:
    r = coord(people_eco, "issue", "create", "--title", "Registry push times out", "--repos", "api",
              "--assignee", "auto", env={"COORD_USER": "eve"})
    assert r.returncode == 0, r.stderr
    new = r.stdout.strip()
    assert new == "ISSUE-003"  # stdout: the id alone, as without auto
    assert "assignee: ana (auto: completed 1 item in api; closed work with similar " \
        "words: registry; 1 open item assigned)" in " ".join(r.stderr.split()), r.stderr
    issues = {i["id"]: i for i in yaml.safe_load(people_eco.read_text())["coordination"]["issues"]}
    assert issues[new]["assignee"] == "ana"


def test_create_assignee_auto_with_nobody_to_suggest_changes_nothing(tmp_path: Path) -> None:
    people_eco = tmp_path / "ecosystem.yaml"
    people_eco.write_text("version: 1\nrepos:\n  - {name: api, path: repos/api}\n")
    before = people_eco.read_bytes()
    r = coord(people_eco, "issue", "create", "--title", "x", "--assignee", "auto")
    clean_error(r, 2)
    assert "names nobody to suggest" in r.stderr and "--assignee NAME" in r.stderr
    assert people_eco.read_bytes() == before


def test_the_ranking_is_pure_and_counts_an_item_once() -> None:
    """An item both assigned to and closed by a person counts once; open work counts
    against; words by stem ("timeouts" ~ "timeout")."""
    work = [Work("ana", "TODO-1", ("api",), "raise the registry timeout", True),
            Work("ana", "TODO-1", ("api",), "raise the registry timeout", True),
            Work("ana", "TODO-2", ("api",), "x", False),
            Work("bo", "TODO-3", ("web",), "registry timeouts", True),
            Work("", "TODO-4", ("api",), "nobody", True)]
    got = rank(["api"], "Registry timeouts", work)
    assert [(s.person, s.score, s.completed, s.load) for s in got] == [
        ("ana", 4.0, 1, 1), ("bo", 2.0, 0, 0)]
    assert got[1].words == ["registry", "timeouts"]
    assert rank(["api"], "Registry timeouts", work, exclude=["TODO-1"])[0].person == "bo"
