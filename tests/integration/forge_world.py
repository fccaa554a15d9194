"""A change landed through pull requests over real git: the change tests' repos (bare
remotes, checkouts), each with ``forge: {kind: github, project: acme/<name>}``, a plan
with ``land: pr``, and an in-memory forge per repo whose branches are the bare remote's
own and whose merges are real merge commits pushed there (``GitStubForge``): the
landing, its pushes and its reverts are git's, only the forge's API is in memory (the
HTTP fakes of each kind are tests/forges/)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from coordination.forge.base import PRState
from coordination.forge.stub import StubForge, StubForges, _PR
from tests.integration.change_repos import GIT_ENV, World, git


def _bare(remote: Path, *args: str, check: bool = True) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "--git-dir", str(remote), *args], check=check,
                          capture_output=True, text=True, env=env).stdout.strip()


class GitStubForge(StubForge):
    """A stub forge whose branches are read from a bare remote on every call, and whose
    merge writes a merge commit (squash: a commit of the merged tree) to the base there."""

    remote: Path | None = None
    #: every merge of every forge of the world, in order: (project, number, method)
    merges: list[tuple[str, int, str]] | None = None

    def _enter(self, name: str, arg: object = None) -> None:
        if self.remote is not None:
            refs = _bare(self.remote, "for-each-ref", "--format=%(refname:short) %(objectname)",
                         "refs/heads")
            self.branches = dict(line.split() for line in refs.splitlines() if line)
        super()._enter(name, arg)

    def _merge(self, pr: _PR, method: str) -> str:
        assert self.remote is not None
        head, base = self.branches[pr.head], self.branches[pr.base]
        tree = _bare(self.remote, "merge-tree", "--write-tree", base, head).splitlines()[0]
        parents = ["-p", base] + (["-p", head] if method == "merge" else [])
        sha = _bare(self.remote, "commit-tree", tree, *parents, "-m",
                    f"Merge pull request #{pr.number} from {pr.head}")
        _bare(self.remote, "update-ref", f"refs/heads/{pr.base}", sha, base)
        self.branches[pr.base] = sha
        pr.state, pr.merge_sha, pr.head_sha = PRState.merged, sha, head
        if self.merges is not None:
            self.merges.append((self.project, pr.number, method))
        return sha


class GitStubForges(StubForges):
    """Stub forges (one per project ``acme/<repo>``) over ``root/remotes/<repo>.git``."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.merges: list[tuple[str, int, str]] = []
        self.targets: dict = {}  # type: ignore[type-arg]

    def __call__(self, repo, env=None):  # type: ignore[no-untyped-def]
        from coordination.forge import spec_of

        spec = spec_of(repo.forge, repo=repo.name)
        if spec.project not in self.forges:
            forge = GitStubForge(spec)
            forge.remote = self.root / "remotes" / f"{spec.project.split('/')[-1]}.git"
            forge.merges = self.merges
            self.forges[spec.project] = forge
        return self.forges[spec.project]

    def of(self, repo: str) -> GitStubForge:
        """``repo``'s forge (made now if nothing asked it yet)."""
        if f"acme/{repo}" not in self.forges:
            self(self.targets[repo])
        return self.forges[f"acme/{repo}"]  # type: ignore[return-value]


def with_forges(text: str, kind: str = "github", land: str = "pr") -> str:
    """A change catalog (change_repos.catalog_yaml) with ``forge:`` on every repo and
    ``land: pr``."""
    text = re.sub(r"- \{name: (\S+), path: checkouts/\S+?(?=[,}])",
                  lambda m: m.group(0) + f", forge: {{kind: {kind}, project: acme/{m.group(1)}}}",
                  text)
    return re.sub(r"land: \w[\w-]*", f"land: {land}", text)


class PullWorld(World):
    """:class:`World` with forges and ``land: pr``; ``forges``: the stub forges."""

    def __init__(self, root: Path, names: list[str], **catalog_kw: object) -> None:
        super().__init__(root, names, **catalog_kw)
        from coordination.catalog.file.store import CatalogStore
        from coordination.change.model import change_of

        self.catalog.write_text(with_forges(self.catalog.read_text()))
        self.cp = change_of(CatalogStore(self.catalog).load(), self.plan, root)
        self.forges = GitStubForges(root)
        self.forges.targets = self.cp.targets

    def change_forges(self):  # type: ignore[no-untyped-def]
        from coordination.change.pulls.forges import ChangeForges

        return ChangeForges(self.cp, self.forges)

    def publisher(self, **kw: object):  # type: ignore[no-untyped-def]
        from coordination.change.pulls.publish import Publisher

        return Publisher(self.rt, self.cp, self.change_forges(), **kw)  # type: ignore[arg-type]

    def lander(self, **kw: object):  # type: ignore[no-untyped-def]
        from coordination.change.landing import Lander

        return Lander(self.rt, self.cp, forges=self.change_forges(), **kw)  # type: ignore[arg-type]

    def reverter(self, **kw: object):  # type: ignore[no-untyped-def]
        from coordination.change.pulls.pull_revert import reverter_for

        return reverter_for(self.rt, self.cp, factory=self.forges, **kw)  # type: ignore[arg-type]

    def status(self) -> dict:  # type: ignore[type-arg]
        from coordination.change.reading import status_of

        return dict(status_of(self.rt, self.cp, forges=self.change_forges()))

    def protect(self, approvals: int = 1, checks: tuple[str, ...] = ("coord/verify",)) -> None:
        for r in self.names:
            self.forges(self.cp.targets[r]).protect("main", approvals=approvals, checks=checks)

    def approve(self, repo: str, by: str = "alice") -> None:
        f = self.forges.of(repo)
        n = self.rt.changes.read(self.plan).pulls[repo].number
        f.get_pr(n)  # (its branches read from the remote: the review is of its head)
        f.review(n, by)


def remote_log(w: World, repo: str, n: int = 5) -> list[str]:
    return git(w.repos.remote(repo), "log", "--format=%s", f"-{n}", "main").splitlines()
