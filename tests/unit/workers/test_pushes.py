"""A push's todo fetches the pushed commit only from where the worker's own catalog
says the repo is: a spec whose ``remote`` or ``url`` says otherwise (a keyless Redis
writer rewrote it), a worker with no catalog, or a repo gone from it fails the todo,
naming why, before anything is fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.sweeps.spec import PushSpec, SweepSpec, TodoSpec
from workers import pushes
from workers.pushes import PushTurn

pytestmark = pytest.mark.timeout(30)

URL = "https://git.example/api.git"


def catalog(root: Path, url: str | None = URL) -> Path:
    eco = root / "ecosystem.yaml"
    at = f", url: '{url}'" if url else ""
    eco.write_text("version: 1\nrepos:\n"
                   f"  - {{name: api, path: repos/api{at}}}\n"
                   "  - {name: web, path: repos/web, remote: upstream}\n"
                   "coordination: {todos: []}\n")
    return eco


def spec_of(**push: object) -> SweepSpec:
    p: PushSpec = {"repo": "api", "branch": "main", "sha": "not-a-sha", "remote": "origin",
                   "url": URL}
    p.update(push)  # type: ignore[typeddict-item]
    todo = TodoSpec(id="T", repo=str(p["repo"]), queue="q", run="true", timeout=5, retries=0)
    return SweepSpec(sweep_id="S", plan="P", strategy="levels", run=0, todos={"T": todo},
                     levels=[["T"]], concurrency={"api": 1}, push=p)


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Every fetch asked of git: (remote, url); none is made."""
    out: list[tuple[str, str | None]] = []

    def at_commit(checkout: str, sha: str, branch: str, remote: str, *, repo: str | None = None,
                  url: str | None = None) -> object:
        out.append((remote, url))
        raise OSError("not fetched here")

    monkeypatch.setattr(pushes.worktrees, "at_commit", at_commit)
    return out


def turn(spec: SweepSpec, eco: Path | None) -> PushTurn:
    t = PushTurn.of(spec, spec.todos["T"], "/nowhere", eco)
    assert t is not None
    return t


def test_the_catalogs_remote_is_fetched_when_the_spec_names_it(
        tmp_path: Path, fetched: list[tuple[str, str | None]]) -> None:
    t = turn(spec_of(sha="a" * 40), catalog(tmp_path))
    assert fetched == [("origin", URL)]
    assert t.error is not None and "not fetched here" in t.error


@pytest.mark.parametrize(("field", "value"), [
    ("url", "/srv/theirs.git"), ("url", None), ("remote", "/srv/theirs.git"),
    ("remote", "theirs")])
def test_a_spec_naming_another_remote_fetches_nothing_and_fails_saying_which(
        tmp_path: Path, fetched: list[tuple[str, str | None]], field: str,
        value: str | None) -> None:
    t = turn(spec_of(**{field: value, "sha": "a" * 40}), catalog(tmp_path))
    assert fetched == []
    assert t.wt is None and t.error is not None
    assert f"{field} (spec {value!r}, catalog" in t.error and "ecosystem.yaml" in t.error


def test_no_catalog_or_a_repo_gone_from_it_fetches_nothing(
        tmp_path: Path, fetched: list[tuple[str, str | None]]) -> None:
    none = turn(spec_of(sha="a" * 40), None)
    assert none.error is not None and "no catalog of its own" in none.error
    eco = catalog(tmp_path)
    eco.write_text(eco.read_text().replace("name: api", "name: other"))
    gone = turn(spec_of(sha="a" * 40), eco)
    assert gone.error is not None and "repo 'api' is not in its catalog" in gone.error
    assert fetched == []


def test_a_catalog_with_no_url_takes_the_spec_without_one(
        tmp_path: Path, fetched: list[tuple[str, str | None]]) -> None:
    turn(spec_of(sha="a" * 40, url=None), catalog(tmp_path, url=None))
    assert fetched == [("origin", None)]


def test_another_repos_todo_runs_on_its_checkout(tmp_path: Path) -> None:
    spec = spec_of(repo="web")
    assert PushTurn.of(spec, TodoSpec(id="T", repo="api", queue="q", run="true", timeout=5,
                                      retries=0), "/x", catalog(tmp_path)) is None
