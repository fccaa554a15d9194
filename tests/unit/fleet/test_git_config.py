"""A checkout's remotes read from its .git/config (coordination.fleet.discovery): a
config as git writes one is read by a plain line reader (issue #61: configparser was a
tenth of `coord init`), which says what configparser says of it, and leaves every
other config to configparser (and to git)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination.fleet import discovery as d

pytestmark = pytest.mark.timeout(60)

GIT_WRITES = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = true
[remote "origin"]
\turl = https://git.example.com/acme/svc-0001.git
\tfetch = +refs/heads/*:refs/remotes/origin/*
[branch "main"]
\tremote = origin
\tmerge = refs/heads/main
[remote "upstream"]
\turl = git@github.com:acme/svc.git
\tfetch = +refs/heads/*:refs/remotes/upstream/*
[remote "mirror"]
\tfetch = +refs/heads/*:refs/remotes/mirror/*
"""


def by_configparser(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
                    ) -> list[tuple[str, str | None]]:
    (tmp_path / "config").write_text(text)
    with monkeypatch.context() as m:
        m.setattr(d, "_plain_remotes", lambda _text: None)
        return d.remotes(tmp_path, tmp_path)


def test_a_config_git_writes_is_read_plainly(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    got = d._plain_remotes(GIT_WRITES)
    assert got == [("origin", "https://git.example.com/acme/svc-0001.git"),
                   ("upstream", "git@github.com:acme/svc.git"), ("mirror", None)]
    assert got == by_configparser(tmp_path, GIT_WRITES, monkeypatch)


@pytest.mark.parametrize("odd", [
    '[remote "origin"]\n\turl = "https://x/y.git"\n',  # quoted
    '[remote "origin"]\n\turl = https://x/y.git # a comment\n',
    '[include]\n\tpath = other.config\n',
    '[includeIf "gitdir:~/work/"]\n\tpath = work.config\n',
    '[remote "origin"]\n\turl\n',  # a key with no value
    '[remote "o\\"x"]\n\turl = a\n',  # an escaped quote in a subsection
    '[remote "origin"]\n\turl = a\\\n\tb\n',  # a continued line
])
def test_anything_else_is_left_to_configparser(odd: str) -> None:
    assert d._plain_remotes(odd) is None


LINES = st.sampled_from([
    "[core]", '[remote "origin"]', '[remote "up"]', '[branch "main"]', "[Remote \"x\"]",
    "[remote.origin]", "\turl = https://h/a.git", "url = /srv/b", "\tURL = c", "\turl =",
    "\tfetch = +refs/heads/*:refs/remotes/origin/*", "# comment", "; comment", "",
    "\tbare = false", "  url = d  "])


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(LINES, max_size=12))
def test_what_it_reads_configparser_reads_alike(lines: list[str]) -> None:
    import tempfile

    text = "\n".join(lines) + "\n"
    plain = d._plain_remotes(text)
    if plain is None:
        return
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        assert plain == by_configparser(Path(tmp), text, mp), text
