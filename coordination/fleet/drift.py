"""The catalog a fleet of checkouts calls for, and how far a catalog drifted from it.

``infer`` turns what each checkout's manifests provide and require into inter-repo
dependencies; ``compare`` sets the checkouts found against a catalog: repos added or
gone, dependencies the manifests gained or lost, default branches that moved. The
result is plain data; the edit that takes it is ``FleetEdits.apply`` (one
audited edit).

Rules:

- A repo is matched to a checkout by its checkout path (``Repo.checkout``), never by
  name; a new checkout gets its directory's name, made unique.
- A requirement naming a local path (go.mod ``replace => ../x``, go.work ``use``,
  ``-e ../x``, ``file:../x``, a workspace member outside the repo) is a dependency on
  the repo whose checkout holds that path, whatever the package is called: the
  strongest signal there is. Else the package's name is looked up.
- One dependency per (consumer, provider), as `coord dep list` shows one line per
  pair: of the manifest entries naming the provider, a direct one before a Go
  ``// indirect`` one, then the type that orders most (runtime, build, peer,
  optional, dev), then the first written. Its ``source`` is where that entry is, and
  ``indirect: true`` is kept when every entry naming the provider is indirect.
- A package two repos of the fleet both provide is ambiguous: no dependency is
  inferred on it, and it is reported.
- A clone URL changed when the checkout's remote (``origin``, else the first) has
  another URL than the catalog's ``url`` (as the catalog writes it: no password): the
  catalog's repo comes from somewhere else now. Drift, taken by ``--apply``.
- A default branch moved when the remote's HEAD (``origin/HEAD``) names another
  branch than the catalog's. Without a remote HEAD the current branch stands in for
  it, and a topic branch checked out is no move while the catalog's default is
  still a local branch; the report says which of the two was read (``read_from``).
- Only inferred entries (with ``source``) are ever found lost or changed; a
  hand-written dependency is the user's. An inferred one the user added to (``notes``,
  ``validation``, or the type ``api``, which nothing infers) is hand-edited: found lost,
  it is reported and removed only when pruning. A repo whose checkout is gone is
  reported, and removed only when pruning.
- An inferred dependency whose manifest is still read gets its ``type``,
  ``indirect``, ``version_constraint`` and ``source`` file compared with what the
  manifest says now (moved from a test extra into the runtime list, its range
  raised, into another file): a difference is drift (``changed``), taken by
  ``--apply``. Its line alone moving (a classifier added above it) is no drift:
  ``moved``, refreshed quietly by ``--apply``.
- What cannot be read is never taken for gone: a dependency whose source manifest
  could not be read (or has an entry that could not), or whose provider has a
  manifest that could not be read (what it provides is unknown), is neither lost nor
  changed but held, and the unreadable manifest is reported (file, line, the
  parser's message) as drift of its own, which ``--apply`` cannot take: fix the file.
  Until it reads, nothing of that repo's dependencies changes: its lost, changed and
  moved ones are held by it too, and new ones are noted, not added (an entry may have
  moved between its manifests).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict
from urllib.parse import urlsplit, urlunsplit

from coordination.fleet.discovery import Checkout, has_local_branch, unique_names
from coordination.fleet.forge_remote import forge_of_remote
from coordination.fleet.manifests import (TAG_FILES, TAG_SUFFIXES, ManifestProblem, Package,
                                          Requirement, link)
from coordination.catalog.enums import DependencyType
from coordination.catalog.rules.git_rules import git_remote
from coordination.catalog.model_methods import checkout_path

if TYPE_CHECKING:  # a catalog, or its view (no pydantic: `init --check` reads the cache)
    from coordination.catalog.models import Catalog, Dependency, DependencySource, Repo

#: The tags coord gives a repo from the files at its top (python, node, docker...).
INFERRED_TAGS = frozenset(TAG_FILES) | frozenset(TAG_SUFFIXES)

#: Type strength, the one that orders most first: a runtime need outranks a build,
#: peer, optional or dev one (test and api: 0.4 catalogs' types, never inferred).
TYPE_RANK = {"runtime": 0, "build": 1, "peer": 2, "optional": 3, "dev": 4, "test": 5,
             "api": 6}


class SourceDict(TypedDict):
    file: str
    line: int
    #: The manifest's type, kept for a dependency whose type was set by hand.
    type: NotRequired[str]


class NewRepo(TypedDict, total=False):
    name: str
    path: str
    tags: list[str]
    default_branch: str
    remote: str
    url: str
    forge: dict[str, str]


class NewDependency(TypedDict, total=False):
    consumer: str
    provider: str
    type: str
    indirect: bool
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


class UrlMove(TypedDict):
    repo: str
    catalog: str
    now: str


class LostDependency(TypedDict):
    id: str
    consumer: str
    provider: str
    source: SourceDict | None
    #: The user added to it (notes, validation, type api): kept unless pruning.
    hand_edited: bool


class ChangedDependency(TypedDict):
    id: str
    consumer: str
    provider: str
    #: field -> [in the catalog, in the manifest now]; fields: type,
    #: version_constraint, source. None: the field is not set.
    changes: dict[str, list[object]]


class HandTyped(TypedDict):
    """An inferred dependency whose type the user set (``source.type`` says what the
    manifest gave): kept, not drift."""

    id: str
    consumer: str
    provider: str
    type: str  # the catalog's, the user's
    manifest_type: str  # what the manifest says now


class TagChange(TypedDict):
    """A known repo's tags against what its checkout holds now."""

    repo: str
    #: Tags its files call for that the catalog lacks: drift, --apply adds them.
    added: list[str]
    #: Tags of coord's own (python, node, docker...) whose files are gone from the
    #: checkout's top: not drift (the user may have set one), --apply --prune removes them.
    stale: list[str]


class UnreadableManifest(TypedDict):
    repo: str
    file: str  # relative to the repo's checkout; "." for a checkout that cannot be listed
    line: int | None
    message: str
    #: The catalog's inferred dependencies neither found lost nor changed because of it.
    held: list[str]


@dataclass
class Fleet:
    """What the checkouts say, set against a catalog (empty for a new one)."""

    added: list[NewRepo] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    branches: list[BranchMove] = field(default_factory=list)
    #: Repos whose checkout's remote now has another clone URL than the catalog's.
    urls: list[UrlMove] = field(default_factory=list)
    #: Known repos whose tags differ from what their checkouts hold now.
    tags: list[TagChange] = field(default_factory=list)
    deps_added: list[NewDependency] = field(default_factory=list)
    deps_lost: list[LostDependency] = field(default_factory=list)
    deps_changed: list[ChangedDependency] = field(default_factory=list)
    #: Dependencies whose line alone moved (id -> the source now): no drift, but
    #: --apply refreshes them.
    deps_moved: dict[str, SourceDict] = field(default_factory=dict)
    #: Dependencies whose type the user set, differing from the manifest's: kept.
    deps_hand_typed: list[HandTyped] = field(default_factory=list)
    #: Manifests that could not be read (fix them: --apply cannot).
    unreadable: list[UnreadableManifest] = field(default_factory=list)
    #: Not drift, but worth saying: entries not understood, ambiguous packages...
    notes: list[str] = field(default_factory=list)
    #: Every repo of the fleet found now, by name (known and new).
    repos: int = 0

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.gone or self.branches or self.urls or self.deps_added
                    or self.deps_lost or self.deps_changed or self.unreadable
                    or any(t["added"] for t in self.tags))

    def to_dict(self) -> dict[str, object]:
        return {"drift": self.drifted, "repos_found": self.repos,
                "repos_added": list(self.added), "repos_gone": list(self.gone),
                "branches_moved": list(self.branches), "urls_changed": list(self.urls),
                "tags_changed": list(self.tags),
                "dependencies_added": list(self.deps_added),
                "dependencies_lost": list(self.deps_lost),
                "dependencies_changed": list(self.deps_changed),
                "dependencies_moved": [{"id": k, "source": dict(v)}
                                       for k, v in self.deps_moved.items()],
                "dependencies_hand_edited": list(self.deps_hand_typed),
                "manifests_unreadable": list(self.unreadable), "notes": list(self.notes)}


def relative_path(path: Path, base_dir: Path) -> str:
    """``path`` as the catalog writes it: relative to its directory when below it
    (``services/api``), else absolute."""
    base = Path(_realpath(str(base_dir)))
    try:
        return Path(_realpath(str(path))).relative_to(base).as_posix() or "."
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=None)
def _realpath(path: str) -> str:
    """``os.path.realpath``, once per path in a process (a fleet's thousand checkouts
    each asked three times, eight ``lstat`` calls each)."""
    return os.path.realpath(path)


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
            if held is None or _rank(req) < _rank(held):
                best[provider] = req
        for provider, req in best.items():
            dep: NewDependency = {"consumer": consumer, "provider": provider, "type": req.type}
            if req.indirect:
                dep["indirect"] = True
            if req.constraint:
                dep["version_constraint"] = req.constraint
            dep["source"] = {"file": req.file, "line": req.line}
            out.append(dep)
    return out


def _rank(req: Requirement) -> tuple[bool, int]:
    return req.indirect, TYPE_RANK.get(req.type, len(TYPE_RANK))


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
    url = public_url(co.url)
    if url:
        repo["url"] = url
    forge = forge_of_remote(co.url)
    if forge:
        repo["forge"] = forge
    return repo


def public_url(url: str | None) -> str | None:
    """A remote's URL as a catalog shared in git may hold it: an http(s) URL without
    its user and password (a token is often written there), another without its
    password; None for one coord would refuse (``ext::``, a leading ``-``)."""
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        if "@" in parts.netloc and (parts.scheme in ("http", "https")
                                    or parts.password is not None):
            user, _, host = parts.netloc.rpartition("@")
            keep = "" if parts.scheme in ("http", "https") else user.split(":", 1)[0] + "@"
            url = urlunsplit(parts._replace(netloc=keep + host))
    try:
        return git_remote(url)
    except ValueError:
        return None


def compare(catalog: Catalog | None, base_dir: Path, checkouts: Sequence[Checkout],
            present: Iterable[str] = (),
            has_branch: Callable[[Path, str], bool] = has_local_branch) -> Fleet:
    """The fleet of ``checkouts`` set against ``catalog`` (None: a new catalog) whose
    directory is ``base_dir``; ``present``: catalog repos whose checkout exists but
    was not read (never reported gone); ``has_branch(checkout, branch)``: whether a
    local branch exists (asked only of a checkout without a remote HEAD whose current
    branch is not the catalog's default)."""
    fleet = Fleet()
    link([co.manifests for co in checkouts])  # a Maven parent in another repo, ...
    repos = catalog.repos if catalog is not None else []
    by_name, added = _name_checkouts(fleet, repos, base_dir, checkouts)
    fleet.repos = len(by_name)
    fleet.added = [{**repo, "name": name} for name, repo in added]
    still = set(by_name) | set(present)
    fleet.gone = [r.name for r in repos if r.name not in still]
    fleet.branches = _branch_moves(repos, by_name, has_branch)
    fleet.urls = _url_moves(repos, by_name)
    fleet.tags = _tag_changes(repos, by_name)
    deps = catalog.coordination.dependencies if catalog is not None else []
    _dependency_drift(fleet, deps, by_name)
    if catalog is not None:
        _hold_repos(fleet, {d.id: d.consumer for d in deps})
    return fleet


def _name_checkouts(fleet: Fleet, repos: Sequence[Repo], base_dir: Path,
                    checkouts: Sequence[Checkout]
                    ) -> tuple[dict[str, Checkout], list[tuple[str, NewRepo]]]:
    """Each readable checkout by its repo name (the catalog's, or a new unique one), and
    the new ones' repos in order; a checkout with an unwritable remote is skipped with a
    note (one bad remote never stops the whole fleet), and what cannot be read is noted."""
    known: dict[str, str] = {}  # checkout path -> catalog repo name
    base = Path(_realpath(str(base_dir)))  # once, not once a repo
    for r in repos:
        known[os.path.realpath(checkout_path(r.path or r.name, base, resolved=True))] = r.name
    real = {co.path: _realpath(str(co.path)) for co in checkouts}  # symlinked roots too
    fresh = [co for co in checkouts if real[co.path] not in known]
    made = {co.path: _writable(co, base_dir, fleet.notes) for co in fresh}
    if None in made.values():
        checkouts = [co for co in checkouts if made.get(co.path, True) is not None]
        fresh = [co for co in fresh if made[co.path] is not None]
    names = unique_names([co.path for co in fresh], taken=[r.name for r in repos])
    by_name: dict[str, Checkout] = {}
    for co in checkouts:
        name = known.get(real[co.path]) or names[co.path]
        by_name[name] = co
        for problem in co.problems:  # the checkout itself cannot be listed
            fleet.unreadable.append({"repo": name, "file": ".", "line": None,
                                     "message": problem, "held": []})
        for mp in co.manifests.problems:
            if mp.whole:
                fleet.unreadable.append({"repo": name, "file": mp.file, "line": mp.line,
                                         "message": mp.message, "held": []})
            else:
                fleet.notes.append(f"{name}: {mp}")
    return by_name, [(names[co.path], repo) for co in fresh
                     if (repo := made[co.path]) is not None]


def _branch_moves(repos: Sequence[Repo], by_name: dict[str, Checkout],
                  has_branch: Callable[[Path, str], bool]) -> list[BranchMove]:
    out: list[BranchMove] = []
    for r in repos:
        read = by_name.get(r.name)
        now = read.default_branch if read is not None else None
        if read is None or not now or now == (r.default_branch or "main"):
            continue
        # Without a remote HEAD the current branch stands in for the default; a topic
        # branch checked out is no move while the catalog's branch is still there.
        if read.branch_from == "HEAD" and has_branch(read.path, r.default_branch or "main"):
            continue
        out.append({"repo": r.name, "catalog": r.default_branch, "now": now,
                    "read_from": read.branch_from or "HEAD"})
    return out


def _url_moves(repos: Sequence[Repo], by_name: dict[str, Checkout]) -> list[UrlMove]:
    """A clone URL the catalog names that the remote no longer has."""
    out: list[UrlMove] = []
    for r in repos:
        read = by_name.get(r.name)
        url = public_url(read.url) if read is not None else None
        if r.url and url and url != r.url:
            out.append({"repo": r.name, "catalog": r.url, "now": url})
    return out


def _tag_changes(repos: Sequence[Repo], by_name: dict[str, Checkout]) -> list[TagChange]:
    """Each known repo's tags against what its checkout's top holds now: tags to add,
    and coord's own tags its files no longer call for (a checkout that could not be
    listed says nothing)."""
    out: list[TagChange] = []
    for r in repos:
        read = by_name.get(r.name)
        if read is None or read.problems:
            continue
        now = read.manifests.tags
        added = sorted(now - set(r.tags))
        stale = [t for t in r.tags if t in INFERRED_TAGS and t not in now]
        if added or stale:
            out.append({"repo": r.name, "added": added, "stale": stale})
    return out


def _dependency_drift(fleet: Fleet, deps: Sequence[Dependency],
                      by_name: dict[str, Checkout]) -> None:
    """What the manifests say now against the catalog's dependencies: added, lost,
    moved (only a line), changed, or held while a manifest cannot be read."""
    inferred = infer(by_name, fleet.notes)
    pairs = {(d.consumer, d.provider) for d in deps}
    fleet.deps_added = [d for d in inferred if (d["consumer"], d["provider"]) not in pairs]
    named = {(d["consumer"], d["provider"]): d for d in inferred}
    for d in deps:
        if d.source is None or d.consumer not in by_name or d.provider not in by_name:
            continue
        said = named.get((d.consumer, d.provider))  # what the manifests say now
        if said is not None and d.source.type is not None:
            said = _hand_typed(fleet, d, said)
        why = _held_by(d, said is None, by_name)
        if why is not None:
            _hold(fleet, d, why)
        elif said is None:
            fleet.deps_lost.append(_lost(d))
        elif changes := _changes(d, said):
            if set(changes) == {"line"}:
                fleet.deps_moved[d.id] = said["source"]
                continue
            if changes.pop("line", None) is not None:  # taken with the rest
                assert d.source is not None
                changes["source"] = [_source(d.source), dict(said["source"])]
            fleet.deps_changed.append({"id": d.id, "consumer": d.consumer,
                                       "provider": d.provider, "changes": changes})


def _hand_typed(fleet: Fleet, d: Dependency, said: NewDependency) -> NewDependency:
    """``d``'s type was set by hand (its ``source.type`` is the manifest's): what the
    manifest says now, with the manifest's type kept in the source (refreshed quietly,
    as a line is), and the user's type reported when the two differ."""
    assert d.source is not None and "source" in said
    if d.type.value != said["type"]:
        fleet.deps_hand_typed.append({"id": d.id, "consumer": d.consumer,
                                      "provider": d.provider, "type": d.type.value,
                                      "manifest_type": said["type"]})
    return {**said, "source": {**said["source"], "type": said["type"]}}


def _hold_repos(fleet: Fleet, consumers: dict[str, str]) -> None:
    """A repo with a manifest that cannot be read: nothing of its dependencies changes
    until it reads (an entry may have moved between its manifests). Its lost, changed
    and moved ones are held by the first of its unreadable manifests; new ones are
    noted, not added."""
    first: dict[str, UnreadableManifest] = {}
    for u in fleet.unreadable:
        first.setdefault(u["repo"], u)
    if not first:
        return
    for lost in [x for x in fleet.deps_lost if x["consumer"] in first]:
        first[lost["consumer"]]["held"].append(lost["id"])
        fleet.deps_lost.remove(lost)
    for changed in [x for x in fleet.deps_changed if x["consumer"] in first]:
        first[changed["consumer"]]["held"].append(changed["id"])
        fleet.deps_changed.remove(changed)
    for dep in [x for x in fleet.deps_added if x["consumer"] in first]:
        u = first[dep["consumer"]]
        src = dep.get("source")
        where = f" ({src['file']}:{src['line']})" if src else ""
        fleet.notes.append(f"{dep['consumer']} -> {dep['provider']}{where}: not added while "
                           f"{u['repo']}/{u['file']} cannot be read")
        fleet.deps_added.remove(dep)
    for id_ in list(fleet.deps_moved):  # refreshed with the rest, once the repo reads
        if consumers.get(id_) in first:
            del fleet.deps_moved[id_]


def _writable(co: Checkout, base_dir: Path, notes: list[str]) -> NewRepo | None:
    """The repo a new checkout makes (named ``repo`` until names are given); None, and
    noted, for one the catalog cannot hold as read (a remote named with whitespace, a
    leading ``-``, ``ext::``...): it is skipped, never the whole fleet refused for it."""
    from pydantic import ValidationError  # lazy: `init --check` reads no model, see _read_catalog

    from coordination.catalog.models import Repo  # lazy: a checkout new to the catalog only

    repo = new_repo("repo", co, base_dir)
    try:
        Repo.model_validate(dict(repo))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "repo"
        how = " (rename it: git remote rename)" if where == "remote" else ""
        notes.append(f"{co.path}: skipped: its {where} cannot be written to the catalog: "
                     f"{first['msg']}{how}")
        return None
    return repo


def _held_by(d: Dependency, lost: bool, by_name: dict[str, Checkout]
             ) -> tuple[str, ManifestProblem] | None:
    """Why ``d`` (inferred) cannot be judged now: the repo and the manifest that could
    not be read, or None. Its consumer's checkout or source manifest unreadable; or,
    for a dependency no manifest names now, an entry of that manifest unreadable, or
    its provider with a manifest unreadable (what it provides is unknown)."""
    assert d.source is not None
    consumer = by_name[d.consumer]
    if consumer.problems:
        return d.consumer, ManifestProblem(".", None, consumer.problems[0])
    for mp in consumer.manifests.problems:
        # A whole file unread: nothing of it is known. One entry of it not understood:
        # a dependency it still names elsewhere is read fine; one it names no more may
        # have been that entry.
        if mp.file == d.source.file and (mp.whole or lost):
            return d.consumer, mp
    if lost:
        provider = by_name[d.provider]
        if provider.problems:
            return d.provider, ManifestProblem(".", None, provider.problems[0])
        for mp in provider.manifests.problems:
            if mp.whole:
                return d.provider, mp
    return None


def _hold(fleet: Fleet, d: Dependency, why: tuple[str, ManifestProblem]) -> None:
    repo, mp = why
    for u in fleet.unreadable:
        if (u["repo"], u["file"], u["line"], u["message"]) == (repo, mp.file, mp.line,
                                                                mp.message):
            u["held"].append(d.id)
            return
    # An entry not understood (the rest of the file was read): drift once it holds
    # a dependency, since what the catalog says of it cannot be checked.
    fleet.unreadable.append({"repo": repo, "file": mp.file, "line": mp.line,
                             "message": mp.message, "held": [d.id]})
    note = f"{repo}: {mp}"
    fleet.notes[:] = [n for n in fleet.notes if n != note]


def hand_edited(d: Dependency) -> bool:
    """Has the user added to this inferred dependency what no manifest says (notes, a
    validation, the type ``api``, a type set by hand)? Then it is theirs too: removed
    only when pruning."""
    return bool(d.notes.strip() or d.validation is not None
                or d.type == DependencyType.api
                or (d.source is not None and d.source.type is not None))


def _source(src: DependencySource) -> SourceDict:
    out: SourceDict = {"file": src.file, "line": src.line}
    if src.type is not None:
        out["type"] = src.type.value
    return out


def _changes(d: Dependency, now: NewDependency) -> dict[str, list[object]]:
    """What the manifest says now of the inferred ``d`` that the catalog does not:
    field -> [catalog, now]. A type ``api``, or one set by hand, is the user's."""
    assert d.source is not None
    out: dict[str, list[object]] = {}
    if (d.type != DependencyType.api and d.source.type is None
            and d.type.value != now["type"]):
        out["type"] = [d.type.value, now["type"]]
    if d.indirect != bool(now.get("indirect")):
        out["indirect"] = [d.indirect, bool(now.get("indirect"))]
    if (d.version_constraint or None) != (now.get("version_constraint") or None):
        out["version_constraint"] = [d.version_constraint, now.get("version_constraint")]
    src = now.get("source")
    if src is not None and d.source.file != src["file"]:
        out["source"] = [_source(d.source), dict(src)]
    elif src is not None and _source(d.source) != src:
        # Only where it is written moved (or, for a type set by hand, the manifest's
        # type in the source): not drift (the caller's "moved").
        out["line"] = [d.source.line, src["line"]]
    return out


def _lost(d: Dependency) -> LostDependency:
    src: SourceDict | None = (None if d.source is None
                              else {"file": d.source.file, "line": d.source.line})
    return {"id": d.id, "consumer": d.consumer, "provider": d.provider, "source": src,
            "hand_edited": hand_edited(d)}
