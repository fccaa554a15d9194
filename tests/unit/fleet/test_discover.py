"""Finding checkouts (depth, ignored and hidden directories, linked worktrees, nested
checkouts) and reading their branch and remote from .git's files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from coordination.fleet import discovery as d

pytestmark = pytest.mark.timeout(60)

ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
           GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_NOSYSTEM="1")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env=ENV).stdout.strip()


def repo(path: Path, branch: str = "main", commit: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    if commit:
        (path / "README").write_text("x\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "first")
    return path


def test_depth_hidden_ignored_worktrees_and_nested(tmp_path: Path) -> None:
    root = tmp_path / "src"
    a = repo(root / "a", commit=True)
    b = repo(root / "team" / "b")
    repo(root / "x" / "y" / "z" / "too-deep")  # four levels down
    repo(root / ".cache" / "hidden")
    repo(root / "node_modules" / "pkg")
    # inside a: a nested checkout in a directory its .gitignore names, one in an
    # anchored one, and one in a directory it does not ignore
    (a / ".gitignore").write_text("# vendored\nthird_party/\n/deps\n*.tmp\n!keep\nsub/dir\n")
    repo(a / "third_party" / "lib")
    repo(a / "deps" / "other")
    nested = repo(a / "tools" / "helper")
    repo(a / "deeper" / "deps")  # /deps is anchored at a's top: this one is found
    # a linked worktree of a: a .git *file*
    git(a, "worktree", "add", "-q", str(root / "a-wt"), "-b", "feature")
    found = d.find_checkouts([root], depth=3)
    assert found == sorted([a, a / "deeper" / "deps", nested, b])
    assert d.find_checkouts([root], depth=1) == [a]
    assert (root / "x/y/z/too-deep") in d.find_checkouts([root], depth=4)


def test_a_root_that_is_a_checkout_is_found(tmp_path: Path) -> None:
    a = repo(tmp_path / "one")
    assert d.find_checkouts([a], depth=0) == [a]


def test_default_branch_from_origin_head_else_head(tmp_path: Path) -> None:
    upstream = repo(tmp_path / "up", branch="trunk", commit=True)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    git(clone, "switch", "-q", "-c", "topic")
    got = d.read_checkout(clone)
    assert (got.default_branch, got.branch_from) == ("trunk", "origin/HEAD")
    assert (got.remote, got.url) == ("origin", str(upstream))
    alone = repo(tmp_path / "alone", branch="develop")
    got = d.read_checkout(alone)
    assert (got.default_branch, got.branch_from, got.remote) == ("develop", "HEAD", None)


def test_remote_other_than_origin_and_config_quirks(tmp_path: Path) -> None:
    a = repo(tmp_path / "a")
    git(a, "remote", "add", "upstream", "https://example.com/acme/a.git")
    assert d.remotes(a, a / ".git") == [("upstream", "https://example.com/acme/a.git")]
    got = d.read_checkout(a)
    assert (got.remote, got.url) == ("upstream", "https://example.com/acme/a.git")
    # An include: configparser does not follow it, git does (one `git config -l`).
    (tmp_path / "extra.cfg").write_text('[remote "origin"]\n\turl = git@example.com:acme/a.git\n')
    git(a, "config", "include.path", str(tmp_path / "extra.cfg"))
    assert ("origin", "git@example.com:acme/a.git") in d.remotes(a, a / ".git")
    # What configparser cannot read at all falls back to git as well.
    b = repo(tmp_path / "b")
    git(b, "remote", "add", "origin", "https://example.com/b.git")
    with open(b / ".git" / "config", "a") as f:
        f.write("[weird]\n\tkey\n")  # a key without '=': git's boolean true
    assert d.remotes(b, b / ".git") == [("origin", "https://example.com/b.git")]


def test_detached_head_has_no_default_branch(tmp_path: Path) -> None:
    a = repo(tmp_path / "a", commit=True)
    git(a, "checkout", "-q", "--detach")
    assert d.read_checkout(a).default_branch is None


def test_names_are_valid_and_unique(tmp_path: Path) -> None:
    assert d.repo_name(Path("/x/My Service")) == "my-service"
    assert d.repo_name(Path("/x/_Lib.Core_")) == "lib.core"
    paths = [Path("/s/team-a/api"), Path("/s/team-b/api"), Path("/s/web")]
    assert d.unique_names(paths, taken=["web"]) == {
        paths[0]: "team-a-api", paths[1]: "team-b-api", paths[2]: "s-web"}
    assert d.unique_names([Path("/s/web")], taken=["web", "s-web"]) == {Path("/s/web"): "s-web-2"}


def test_from_file_entries(tmp_path: Path) -> None:
    f = tmp_path / "repos.txt"
    f.write_text("# the fleet\n\n./api\nhttps://example.com/acme/web.git  # the front\n"
                 "git@example.com:acme/jobs.git\n")
    assert d.read_list(f) == ["./api", "https://example.com/acme/web.git",
                              "git@example.com:acme/jobs.git"]
    assert [d.is_url(e) for e in d.read_list(f)] == [False, True, True]


def test_a_linked_worktree_is_read_when_named(tmp_path: Path) -> None:
    upstream = repo(tmp_path / "up", branch="trunk", commit=True)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    wt = tmp_path / "wt"
    git(clone, "worktree", "add", "-q", "-b", "topic", str(wt))
    (wt / "package.json").write_text('{"name": "@acme/wt"}\n')
    gitdir, common = d.git_dirs(wt)
    assert (gitdir.parent.name, common) == ("worktrees", clone / ".git")
    got = d.read_checkout(wt)  # origin/HEAD and the remote from the repository's refs
    assert (got.default_branch, got.branch_from, got.url) == ("trunk", "origin/HEAD",
                                                             str(upstream))
    assert got.manifests.provides == {("npm", "@acme/wt")}
    assert d.find_checkouts([tmp_path], depth=1) == [clone, tmp_path / "up"]  # walked: skipped
    assert [c.path for c in d.discover([], extra=[wt])] == [wt]  # named: read


def test_gitignore_as_git_reads_it_nested_files_slashes_negations(tmp_path: Path) -> None:
    root = tmp_path / "src"
    a = repo(root / "a")
    (a / ".gitignore").write_text("build/*/\n!build/keep/\ntools/gen\n**/cache/\n[broken\n")
    (a / "sub").mkdir()
    (a / "sub" / ".gitignore").write_text("vendor/\n/local\n")
    (a / ".git" / "info").mkdir(exist_ok=True)
    (a / ".git" / "info" / "exclude").write_text("scratch/\n")
    skipped = [a / "build" / "x", a / "tools" / "gen", a / "deep" / "cache",
               a / "sub" / "vendor", a / "sub" / "local", a / "scratch"]
    kept = [a / "build" / "keep", a / "other" / "gen", a / "sub" / "x" / "local",
            a / "vendor"]  # sub's patterns hold below sub only; /local at sub's top only
    # What git itself ignores of them (git check-ignore, before they are repos)...
    said = subprocess.run(["git", "-C", str(a), "check-ignore", "--stdin"],
                          input="".join(f"{p.relative_to(a)}/\n" for p in skipped + kept),
                          capture_output=True, text=True, env=ENV)
    assert said.stdout.split() == [f"{p.relative_to(a)}/" for p in skipped], said.stderr
    # ...is what the walk skips once they are.
    for p in skipped + kept:
        repo(p)
    assert d.find_checkouts([root], depth=4) == sorted([a, *kept])
