"""coord's git calls against a remote spelled to run a command: even past the catalog's
checks (a record written by hand, a future caller), git reads it as a name, never as an
option or an ``ext::`` transport; identity and trailer of coord's own commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coordination.change import git as g

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("remote", ["--upload-pack=touch {pwned}",
                                    "ext::sh -c touch% {pwned}"])
def test_a_remote_that_would_run_a_command_runs_nothing(repo: Path, tmp_path: Path,
                                                        remote: str) -> None:
    pwned = tmp_path / "pwned"
    bad = remote.format(pwned=pwned)
    with pytest.raises(g.GitError):
        g.remote_sha(repo, bad, "main")
    with pytest.raises(g.GitError):
        g.fetch(repo, bad, "main")
    sha = g.head(repo)
    assert g.push(repo, bad, sha, "main", sha) is not None  # refused, said
    assert not pwned.exists()


def test_the_identity_is_gits_and_coords_only_when_git_has_none(
        repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no global config
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    ident, why = g.identity(repo)
    assert ident == g.IDENTITY and why is not None and "user.email" in why
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "Ada L"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "ada@example.com"],
                   check=True)
    assert g.identity(repo) == ({"GIT_AUTHOR_NAME": "Ada L", "GIT_AUTHOR_EMAIL": "ada@example.com",
                                 "GIT_COMMITTER_NAME": "Ada L",
                                 "GIT_COMMITTER_EMAIL": "ada@example.com"}, None)


def test_the_trailer_is_one_git_finds(repo: Path) -> None:
    msg = g.trailer("Revert x\n\nPuts main back.\n", "PLAN-007")
    out = subprocess.run(["git", "-C", str(repo), "interpret-trailers", "--parse"], input=msg,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "Coord-Change: PLAN-007"


def test_a_push_is_refused_once_the_remote_moved_past_what_was_read(
        repo: Path, tmp_path: Path) -> None:
    """Landing and revert push with a lease on the head they read: someone else's push
    in between is kept and the push refused (said), never overwritten."""
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = g.head(repo)
    assert g.push(repo, str(bare), seed, "main", "") is None  # a new branch: expect none

    def commit(msg: str) -> str:
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        "commit", "-q", "--allow-empty", "-m", msg], check=True)
        return g.head(repo)

    theirs = commit("someone else's")
    assert g.push(repo, str(bare), theirs, "main", seed) is None  # the lease holds: pushed
    ours = commit("ours, on a head read before theirs")
    refused = g.push(repo, str(bare), ours, "main", seed)
    assert refused is not None and "failed to push" in refused
    assert g.remote_sha(repo, str(bare), "main") == theirs  # theirs kept
    assert g.push(repo, str(bare), ours, "main", theirs) is None  # on what is there: pushed
