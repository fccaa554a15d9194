"""A repository's own git config, which a todo can write, is not trusted by a landing:
every key of coord.change.git.COMMAND_KEYS in it (local or worktree scope, included
files too) is found and named; the user's global config is not looked at; a config with
none of their words needs no git process. Real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coordination.change import git as g

pytestmark = pytest.mark.timeout(30)

#: One key of each COMMAND_KEYS pattern, as a todo would set it.
KEYS = ["core.sshCommand", "core.askPass", "core.gitProxy", "core.alternateRefsCommand",
        "credential.helper", "credential.https://example.com.helper",
        "remote.origin.uploadpack", "remote.origin.receivepack", "remote.origin.vcs",
        "filter.x.clean", "filter.x.smudge", "filter.x.process", "merge.x.driver",
        "gpg.program", "gpg.ssh.program", "include.path", "includeIf.gitdir:/x/.path"]


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def home_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a global config of the test's
    (tmp_path / "home").mkdir()
    r = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(r)], check=True)
    run(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
        "-m", "seed")
    return r


def test_every_command_bearing_key_of_the_repos_own_config_is_named(home_repo: Path) -> None:
    assert g.untrusted_commands(home_repo) == []
    for key in KEYS:
        assert len(key.split(".")) >= 2
        run(home_repo, "config", key, "touch PWNED")
        found = g.untrusted_commands(home_repo)
        assert len(found) == 1 and found[0].lower().startswith(key.lower() + "="), (key, found)
        assert found[0].endswith("(.git/config)"), found
        run(home_repo, "config", "--unset-all", key)
    assert g.untrusted_commands(home_repo) == []
    why = g.command_refusal("api", "/co/api", ["remote.origin.uploadpack=x (.git/config)"])
    assert "git -C /co/api config --unset-all remote.origin.uploadpack" in why
    assert "land_hooks: true on repo api" in why


def test_included_worktree_and_global_config(home_repo: Path, tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    inc.write_text("[core]\n\tsshCommand = touch PWNED\n")
    run(home_repo, "config", "include.path", str(inc))
    found = g.untrusted_commands(home_repo)
    assert [f.split("=")[0] for f in found] == ["include.path", "core.sshcommand"], found
    run(home_repo, "config", "--unset-all", "include.path")
    # a linked worktree's own config.worktree
    wt = tmp_path / "wt"
    run(home_repo, "worktree", "add", "-q", "-b", "chg", str(wt))
    run(home_repo, "config", "extensions.worktreeConfig", "true")
    run(wt, "config", "--worktree", "core.askPass", "touch PWNED")
    assert [f.split("=")[0] for f in g.untrusted_commands(home_repo, wt)] == ["core.askpass"]
    assert g.untrusted_commands(home_repo) == []  # (the main worktree has none)
    run(wt, "config", "--worktree", "--unset", "core.askPass")
    # the user's global config is theirs: read as always, never refused
    run(home_repo, "config", "--global", "credential.helper", "store")
    assert g.untrusted_commands(home_repo, wt) == []


def test_a_config_without_any_of_the_words_starts_no_git(
        home_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(home_repo, "config", "core.fsmonitor", "true")  # not refused: turned off on every call
    run(home_repo, "remote", "add", "origin", "/somewhere/else.git")
    with monkeypatch.context() as m:
        m.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"git started: {a}"))
        assert g.untrusted_commands(home_repo) == []
    run(home_repo, "config", "filter.lfs.process", "git-lfs filter-process")
    assert [f.split("=")[0] for f in g.untrusted_commands(home_repo)] == ["filter.lfs.process"]


def test_fsmonitor_upload_and_receive_pack_of_the_repo_run_nothing(
        home_repo: Path, tmp_path: Path) -> None:
    """Every call: core.fsmonitor off; a fetch, an ls-remote and a push made without
    trust: git's own upload-pack and receive-pack, whatever the repo's config says."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    run(home_repo, "remote", "add", "origin", str(remote))
    run(home_repo, "push", "-q", "origin", "main")
    marks = {k: tmp_path / k for k in ("fsmonitor", "uploadpack", "receivepack")}
    script = tmp_path / "fsm.sh"
    script.write_text(f"#!/bin/sh\ntouch {marks['fsmonitor']}\nexit 1\n")
    script.chmod(0o755)
    run(home_repo, "config", "core.fsmonitor", str(script))
    run(home_repo, "config", "remote.origin.uploadpack", f"touch {marks['uploadpack']}; git-upload-pack")
    run(home_repo, "config", "remote.origin.receivepack",
        f"touch {marks['receivepack']}; git-receive-pack")
    head = g.head(home_repo)
    assert g.remote_sha(home_repo, "origin", "main") == head
    assert g.fetch(home_repo, "origin", "main") == head
    (home_repo / "f").write_text("x\n")
    g.git(home_repo, "add", "-A")
    g.git(home_repo, "commit", "-q", "-m", "x", env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                                 "GIT_COMMITTER_NAME": "t",
                                                 "GIT_COMMITTER_EMAIL": "t@t"})
    assert g.push(home_repo, "origin", g.head(home_repo), "main", head) is None
    assert {k: m.exists() for k, m in marks.items()} == dict.fromkeys(marks, False)
    # trusted (land_hooks: true): the repo's own programs run, as git would run them
    assert g.remote_sha(home_repo, "origin", "main", hooks=True) == g.head(home_repo)
    assert marks["uploadpack"].exists()


def test_the_remote_must_be_the_catalogs_url(home_repo: Path) -> None:
    """remote_refusal: one URL equal to the catalog's (as it writes it: no password)
    passes; another, a second one added (git pushes to each), or none while the remote
    is a name is refused, naming both URLs and the fix; no ``url:``: not checked."""
    url = "https://example.com/org/r.git"
    run(home_repo, "remote", "add", "origin", url)
    assert g.remote_refusal("r", home_repo, "origin", url, home_repo) is None
    assert g.remote_refusal("r", home_repo, "origin", None, home_repo) is None
    run(home_repo, "remote", "set-url", "origin", "https://tok:pw@example.com/org/r.git")
    assert g.remote_refusal("r", home_repo, "origin", url, home_repo) is None  # its password aside

    run(home_repo, "remote", "set-url", "origin", "/tmp/elsewhere.git")
    why = g.remote_refusal("r", home_repo, "origin", url, home_repo) or ""
    assert "points at /tmp/elsewhere.git" in why and f"not at {url}" in why, why
    assert f"remote set-url origin {url}" in why and "coord repo update r --url" in why
    assert g.untrusted_git("r", home_repo, home_repo, remote="origin", url=url, trusted=True) == why
    assert g.untrusted_git("r", home_repo, home_repo) is None  # no remote given: not checked

    run(home_repo, "remote", "set-url", "origin", url)
    run(home_repo, "config", "--add", "remote.origin.url", "/tmp/elsewhere.git")
    why = g.remote_refusal("r", home_repo, "origin", url, home_repo) or ""
    assert "several URLs" in why and "--replace-all remote.origin.url" in why, why

    run(home_repo, "remote", "remove", "origin")
    why = g.remote_refusal("r", home_repo, "origin", url, home_repo) or ""
    assert "no URL in its git config" in why, why
    assert g.remote_refusal("r", home_repo, url, url, home_repo) is None  # the URL itself, as remote


@pytest.mark.parametrize("key,value", [
    ("url./tmp/elsewhere/.pushInsteadOf", "https://example.com/org/"),
    ("url./tmp/elsewhere/.insteadOf", "https://example.com/org/"),
    ("remote.origin.pushurl", "/tmp/elsewhere/r.git"),
])
def test_a_trusted_repos_own_config_cannot_send_its_landing_elsewhere(
        home_repo: Path, key: str, value: str) -> None:
    """land_hooks: true runs git with the repo's own config, so a rule of it that sends
    the remote's fetch or push to another URL (insteadOf, pushInsteadOf, a pushurl) is
    refused for a repo with ``url:``, naming the rule and how to remove it; a rule that
    leaves this remote alone, the same rule in the operator's global config, and an
    untrusted repo (whose git calls never obey it) are not refused here."""
    url = "https://example.com/org/r.git"
    run(home_repo, "remote", "add", "origin", url)
    assert g.untrusted_git("r", home_repo, home_repo, remote="origin", url=url,
                           trusted=True) is None
    run(home_repo, "config", key, value)
    why = g.untrusted_git("r", home_repo, home_repo, remote="origin", url=url, trusted=True)
    assert why is not None and "redirects its remote origin" in why, why
    assert "/tmp/elsewhere/r.git" in why and f"not {url}" in why, why
    assert f"config --unset-all {key.lower()}" in why.lower(), why
    assert g.redirect_refusal("r", home_repo, "origin", None, home_repo) is None  # no url:
    run(home_repo, "config", "--unset-all", key)

    # a rule that leaves this remote where it is: another host's, or a pushurl that is
    # the catalog's URL
    harmless = (("remote.origin.pushurl", url) if key.startswith("remote.") else
                (key.replace("elsewhere", "other"), "https://example.org/"))
    run(home_repo, "config", *harmless)
    assert g.redirect_refusal("r", home_repo, "origin", url, home_repo) is None
    run(home_repo, "config", "--unset-all", harmless[0])

    # the operator's global config: theirs, not the repository's to answer for
    home = Path(subprocess.run(["sh", "-c", "echo $HOME"], capture_output=True, text=True,
                               check=True).stdout.strip())
    subprocess.run(["git", "config", "--file", str(home / ".gitconfig"), key, value], check=True)
    assert g.redirect_refusal("r", home_repo, "origin", url, home_repo) is None


def test_a_url_given_as_the_remote_with_a_rewrite_rule_is_not_landed(home_repo: Path) -> None:
    """A remote spelled as the URL itself (no ``remote.X.url``) in a repo whose own config
    holds a rewrite rule: git cannot say where a push goes, so nothing is sent."""
    url = "https://example.com/org/r.git"
    assert g.redirect_refusal("r", home_repo, url, url, home_repo) is None
    run(home_repo, "config", "url./tmp/elsewhere/.pushInsteadOf", "https://example.com/")
    why = g.redirect_refusal("r", home_repo, url, url, home_repo) or ""
    assert "cannot be told" in why and "pushinsteadof" in why.lower(), why
