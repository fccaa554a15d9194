"""Names the catalog hands to git (a repo's ``remote`` and ``default_branch``, a change's
``remote`` and ``base``) are refused at load when git would read them as an option
(``--upload-pack=CMD`` runs CMD) or a ``<transport>::`` address (``ext::CMD`` runs
CMD): exit 2, the file, line and field named, how to fix said, and no command run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.support.refusals import EDIT, READ, refused, run

pytestmark = pytest.mark.timeout(60)

F = "ecosystem.yaml"


def catalog(repo_extra: str = "", change_extra: str = "") -> str:
    return ("version: 1\nrepos:\n"
            f"  - {{name: api{repo_extra}}}\n"
            "coordination:\n  plans:\n"
            f"    - {{id: PLAN-001, title: c, change: {{branch: chg{change_extra}}}}}\n")


def refused_at_load(tmp_path: Path, where: str, extra: str, says: list[str]) -> None:
    """The catalog with ``extra`` (PWNED: a file under ``tmp_path``) put at ``where`` (a
    keyword of :func:`catalog`): every read and edit command refuses it saying ``says``,
    and git ran nothing."""
    eco = tmp_path / F
    eco.write_text(catalog(**{where: extra.replace("PWNED", str(tmp_path / "pwned"))}))
    for r in run(eco, READ, EDIT):
        refused(r, says)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("extra, field, says", [
    (', remote: "--upload-pack=touch PWNED"', "repos[0].remote", "starts with '-'"),
    (', remote: "ext::sh -c touch% PWNED"', "repos[0].remote", "<transport>:: address"),
    (', remote: "fd::3"', "repos[0].remote", "<transport>:: address"),
    (', remote: "origin\\n--upload-pack=touch PWNED"', "repos[0].remote", "control character"),
    (', remote: "my remote"', "repos[0].remote", "whitespace"),
    (', default_branch: "--upload-pack=touch PWNED"', "repos[0].default_branch",
     "not a branch name"),
    (', default_branch: "a b"', "repos[0].default_branch", "not a branch name"),
])
def test_a_repo_field_git_would_misread_is_refused_at_load(
        tmp_path: Path, extra: str, field: str, says: str) -> None:
    refused_at_load(tmp_path, "repo_extra", extra, [f"{F}:3: {field}: ", says, "write the"])


@pytest.mark.parametrize("extra, field, says", [
    (', remote: "--upload-pack=touch PWNED"', "plans[0].change.remote", "starts with '-'"),
    (', remote: "ext::sh -c touch% PWNED"', "plans[0].change.remote", "<transport>::"),
    (', base: "-main"', "plans[0].change.base", "must match"),
])
def test_a_change_field_git_would_misread_is_refused_at_load(
        tmp_path: Path, extra: str, field: str, says: str) -> None:
    refused_at_load(tmp_path, "change_extra", extra, [f"{F}:6: {field}: ", says])


def test_remotes_git_reads_as_remotes_are_kept(tmp_path: Path) -> None:
    from coordination.catalog.models import Repo

    for remote in ("origin", "up-stream", "https://example.com/a/b.git",
                   "git@example.com:a/b.git", "ssh://git@example.com:22/a.git", "/srv/git/a.git",
                   "../a.git", "file:///srv/a.git"):
        assert Repo(name="api", remote=remote).remote == remote
    for branch in ("main", "release/1.2", "v2_x"):
        assert Repo(name="api", default_branch=branch).default_branch == branch
