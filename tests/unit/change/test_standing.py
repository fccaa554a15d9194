"""A repo's base on its remote as `change status` reads it (coord.change.standing): a
remote on this machine from its own files, no git process; a network remote only when
asked, else said not checked; URL rewriting in the repository's own config: not
followed, not checked; in coord's own environment: git is asked. Real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coordination.change import standing
from coordination.change.model import Target

pytestmark = pytest.mark.timeout(30)


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    standing._others_plain.cache_clear()
    remote = tmp_path / "remotes" / "api.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    run(seed, "commit", "-q", "--allow-empty", "-m", "seed")
    run(seed, "push", "-q", str(remote), "main")
    run(tmp_path, "clone", "-q", str(remote), "co")
    run(seed, "commit", "-q", "--allow-empty", "-m", "moved")
    run(seed, "push", "-q", str(remote), "main")  # the remote moved since the clone
    return tmp_path / "co"


def no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"git started: {a}"))


def test_a_remote_on_this_machine_is_read_from_its_files(
        clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = run(tmp_path / "remotes" / "api.git", "rev-parse", "main")
    run(tmp_path / "remotes" / "api.git", "pack-refs", "--all")
    with monkeypatch.context() as m:
        no_git(m)
        for remote in ("origin", str(tmp_path / "remotes" / "api.git"),
                       f"file://{tmp_path}/remotes/api.git", "../remotes/api.git"):
            got = standing.read_base(Target("api", str(clone), "main", remote), ask=False)
            assert got == standing.Base(moved, True, "files"), remote
    gone = standing.read_base(Target("api", str(clone), "gone", "origin"), ask=False)
    assert gone.checked and gone.sha is None  # (asked of git: no such branch)


def test_a_network_remote_is_not_asked_unless_said(
        clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(clone, "remote", "set-url", "origin", "https://git.example.invalid/api.git")
    with monkeypatch.context() as m:
        no_git(m)
        got = standing.read_base(Target("api", str(clone), "main", "origin"), ask=False)
    assert not got.checked and got.sha is None
    assert "not asked" in got.how and "--ask-remotes" in got.how


def test_url_rewriting_in_the_repos_own_config_is_not_followed(
        clone: Path, tmp_path: Path) -> None:
    """A rule in the checkout's own config (a file a todo can write) would have coord
    read a repository outside it: not checked, naming the rule and how to remove it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(tmp_path, "clone", "-q", "--bare", str(tmp_path / "remotes" / "api.git"),
        str(elsewhere / "api.git"))
    for url, rule in (("mirror:api.git", "mirror:"), (f"{tmp_path}/remotes/api.git",
                                                      f"{tmp_path}/remotes/")):
        run(clone, "remote", "set-url", "origin", url)
        run(clone, "config", f"url.{elsewhere}/.insteadOf", rule)
        for ask in (False, True):
            got = standing.read_base(Target("api", str(clone), "main", "origin"), ask=ask)
            assert not got.checked and got.sha is None, (url, got)
            assert got.how.startswith("not checked: api: its own git config rewrites"), got.how
            assert f"url.{elsewhere}/.insteadof" in got.how and url in got.how, got.how
            assert f"git -C {clone} config --unset-all url.{elsewhere}/.insteadof" in got.how
        run(clone, "config", "--unset-all", f"url.{elsewhere}/.insteadOf")
    # a rule that leaves this remote's URL as it is refuses nothing
    run(clone, "config", f"url.{elsewhere}/.insteadOf", "other:")
    moved = run(tmp_path / "remotes" / "api.git", "rev-parse", "main")
    got = standing.read_base(Target("api", str(clone), "main", "origin"), ask=False)
    assert got == standing.Base(moved, True, "files")


def test_url_rewriting_given_in_coords_environment_is_left_to_git(
        clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's rewriting (coord's own environment) is theirs, and followed."""
    run(clone, "remote", "set-url", "origin", "mirror:api.git")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{tmp_path}/remotes/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "mirror:")
    moved = run(tmp_path / "remotes" / "api.git", "rev-parse", "main")
    got = standing.read_base(Target("api", str(clone), "main", "origin"), ask=False)
    assert got == standing.Base(moved, True, "files")
