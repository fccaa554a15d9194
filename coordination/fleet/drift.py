"""The catalog a fleet of checkouts calls for, and how far a catalog drifted from it.

``infer`` turns what each checkout's manifests provide and require into inter-repo
dependencies; ``compare`` sets the checkouts found against a catalog: repos added or
gone, dependencies the manifests gained or lost, default branches that moved. The
result is plain data; the edit that takes it is ``StructureEdits.apply_fleet`` (one
audited edit).

Rules:

- A repo is matched to a checkout by its checkout path (``Repo.checkout``), never by
  name; a new checkout gets its directory's name, made unique.
- A requirement naming a local path (go.mod ``replace => ../x``, go.work ``use``,
  ``-e ../x``, ``file:../x``, a workspace member outside the repo) is a dependency on
  the repo whose checkout holds that path, whatever the package is called: the
  strongest signal there is. Else the package's name is looked up.
- One dependency per (consumer, provider): of the manifest entries naming the
  provider, the strongest type wins (runtime, then build, test, dev), then the first
  written. Its ``source`` is where that entry is.
- A package two repos of the fleet both provide is ambiguous: no dependency is
  inferred on it, and it is reported.
- A default branch moved when the remote's HEAD (``origin/HEAD``) names another
  branch than the catalog's. Without a remote HEAD the current branch stands in for
  it, and a topic branch checked out is no move while the catalog's default is
  still a local branch; the report says which of the two was read (``read_from``).
- Only inferred entries (with ``source``) are ever found lost; a hand-written
  dependency is the user's. A repo whose checkout is gone is reported, and removed
  only when pruning.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from coordination.fleet.discovery import Checkout, has_local_branch, unique_names
from coordination.fleet.manifests import Package, Requirement
from coordination.catalog.models import Catalog, Dependency, checkout_path

#: Type strength: a runtime need outranks a build, test or dev one.
TYPE_RANK = {"runtime": 0, "build": 1, "test": 2, "dev": 3}


class SourceDict(TypedDict):
    file: str
    line: int


class NewRepo(TypedDict, total=False):
    name: str
    path: str
    tags: list[str]
    default_branch: str
    remote: str


class NewDependency(TypedDict, total=False):
    consumer: str
    provider: str
    type: str
    version_constraint: str
    source: SourceDict


class BranchMove(TypedDict):
    repo: str
    catalog: str | None
    now: str
    #: What ``now`` was read from: ``origin/HEAD`` (the remote's default; another
    #: remote's name when not origin) or ``HEAD`` (the current branch, when the
    #: remote has no HEAD and the catalog's branch is no local branch any more).
    read_from: str


class LostDependency(TypedDict):
    id: str
    consumer: str
    provider: str
    source: SourceDict | None


@dataclass
class Fleet:
    """What the checkouts say, set against a catalog (empty for a new one)."""

    added: list[NewRepo] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    branches: list[BranchMove] = field(default_factory=list)
    deps_added: list[NewDependency] = field(default_factory=list)
    deps_lost: list[LostDependency] = field(default_factory=list)
    #: Not drift, but worth saying: unreadable manifests, ambiguous packages...
    notes: list[str] = field(default_factory=list)
    #: Every repo of the fleet found now, by name (known and new).
    repos: int = 0

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.gone or self.branches or self.deps_added
                    or self.deps_lost)

    def to_dict(self) -> dict[str, object]:
        return {"drift": self.drifted, "repos_found": self.repos,
                "repos_added": list(self.added), "repos_gone": list(self.gone),
                "branches_moved": list(self.branches),
                "dependencies_added": list(self.deps_added),
                "dependencies_lost": list(self.deps_lost), "notes": list(self.notes)}


def relative_path(path: Path, base_dir: Path) -> str:
    """``path`` as the catalog writes it: relative to its directory when below it
    (``services/api``), else absolute."""
    base = Path(os.path.realpath(base_dir))
    try:
        return Path(os.path.realpath(path)).relative_to(base).as_posix() or "."
    except ValueError:
        return str(path)


def infer(checkouts: dict[str, Checkout], notes: list[str] | None = None
          ) -> list[NewDependency]:
    """The dependencies between the named checkouts that their manifests name,
    consumer by consumer in the order given, providers in the order first named."""
    notes = notes if notes is not None else []
    providers: dict[Package, str] = {}
    ambiguous: dict[Package, list[str]] = {}
    for name, co in checkouts.items():
        for pkg in sorted(co.manifests.provides):
            if pkg in providers and providers[pkg] != name:
                ambiguous.setdefault(pkg, [providers[pkg]]).append(name)
            else:
                providers.setdefault(pkg, name)
    for pkg, names in ambiguous.items():
        providers.pop(pkg, None)
        notes.append(f"{pkg[0]} package {pkg[1]!r} is provided by {', '.join(names)}: "
                     "no dependency on it inferred (add the right one with `coord dep add`)")
    by_path = {os.path.normpath(co.path): name for name, co in checkouts.items()}
    out: list[NewDependency] = []
    for consumer, co in checkouts.items():
        best: dict[str, Requirement] = {}
        for req in co.manifests.requires:
            provider = _checkout_of(req.path, by_path) if req.path else None
            provider = provider or providers.get(req.package)
            if provider is None or provider == consumer:
                continue
            held = best.get(provider)
            if held is None or TYPE_RANK[req.type] < TYPE_RANK[held.type]:
                best[provider] = req
        for provider, req in best.items():
            dep: NewDependency = {"consumer": consumer, "provider": provider, "type": req.type}
            if req.constraint:
                dep["version_constraint"] = req.constraint
            dep["source"] = {"file": req.file, "line": req.line}
            out.append(dep)
    return out


def _checkout_of(path: str, by_path: dict[str, str]) -> str | None:
    """The repo whose checkout ``path`` is in (the nearest enclosing one: a path
    dependency may name a package inside another repo, ``../mono/packages/ui``)."""
    here = os.path.normpath(path)
    while True:
        if here in by_path:
            return by_path[here]
        up = os.path.dirname(here)
        if up == here:
            return None
        here = up


def new_repo(name: str, co: Checkout, base_dir: Path) -> NewRepo:
    repo: NewRepo = {"name": name, "path": relative_path(co.path, base_dir)}
    tags = sorted(co.manifests.tags)
    if tags:
        repo["tags"] = tags
    if co.default_branch:
        repo["default_branch"] = co.default_branch
    if co.remote and co.remote != "origin":
        repo["remote"] = co.remote
    return repo


def compare(catalog: Catalog | None, base_dir: Path, checkouts: Sequence[Checkout],
            present: Iterable[str] = (),
            has_branch: Callable[[Path, str], bool] = has_local_branch) -> Fleet:
    """The fleet of ``checkouts`` set against ``catalog`` (None: a new catalog) whose
    directory is ``base_dir``; ``present``: catalog repos whose checkout exists but
    was not read (never reported gone); ``has_branch(checkout, branch)``: whether a
    local branch exists (asked only of a checkout without a remote HEAD whose current
    branch is not the catalog's default)."""
    fleet = Fleet()
    known: dict[str, str] = {}  # checkout path -> catalog repo name
    repos = catalog.repos if catalog is not None else []
    for r in repos:
        known[os.path.realpath(checkout_path(r.path or r.name, base_dir))] = r.name
    by_name: dict[str, Checkout] = {}
    real = {co.path: os.path.realpath(co.path) for co in checkouts}  # symlinked roots too
    fresh = [co for co in checkouts if real[co.path] not in known]
    names = unique_names([co.path for co in fresh], taken=[r.name for r in repos])
    for co in checkouts:
        name = known.get(real[co.path]) or names[co.path]
        by_name[name] = co
        for problem in co.manifests.problems + co.problems:
            fleet.notes.append(f"{name}: {problem}")
    fleet.repos = len(by_name)
    for co in fresh:
        fleet.added.append(new_repo(names[co.path], co, base_dir))
    still = set(by_name) | set(present)
    fleet.gone = [r.name for r in repos if r.name not in still]
    for r in repos:
        read = by_name.get(r.name)
        now = read.default_branch if read is not None else None
        if read is None or not now or now == (r.default_branch or "main"):
            continue
        # Without a remote HEAD the current branch stands in for the default; a topic
        # branch checked out is no move while the catalog's branch is still there.
        if read.branch_from == "HEAD" and has_branch(read.path, r.default_branch or "main"):
            continue
        fleet.branches.append({"repo": r.name, "catalog": r.default_branch, "now": now,
                               "read_from": read.branch_from or "HEAD"})
    inferred = infer(by_name, fleet.notes)
    deps = catalog.coordination.dependencies if catalog is not None else []
    pairs = {(d.consumer, d.provider) for d in deps}
    fleet.deps_added = [d for d in inferred if (d["consumer"], d["provider"]) not in pairs]
    named = {(d["consumer"], d["provider"]) for d in inferred}
    fleet.deps_lost = [_lost(d) for d in deps if d.source is not None
                       and d.consumer in by_name and d.provider in by_name
                       and (d.consumer, d.provider) not in named]
    return fleet


def _lost(d: Dependency) -> LostDependency:
    src: SourceDict | None = (None if d.source is None
                              else {"file": d.source.file, "line": d.source.line})
    return {"id": d.id, "consumer": d.consumer, "provider": d.provider, "source": src}
