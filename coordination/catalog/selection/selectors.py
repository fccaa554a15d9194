"""Repo selectors: one syntax for every command that takes repos (``--repos``,
``coord run``, ``for_each:``, ``coord repo list --repos``).

A selector is terms joined by commas. The positive terms are unioned, then every
``!TERM`` removes what it selects (pnpm's filters, Nx's affected); a selector of
exclusions only starts from every repo (``!legacy`` is every repo but legacy, as
Turborepo's and pnpm's ``--filter=!legacy``). A term may be an intersection, parts
joined by ``&``: the repos every part selects (``tag:python&changed:main``, pnpm's
``pattern[ref]``; ``!`` before it removes the whole intersection):

    api, svc-*          a name, or a glob over names (fnmatch: * ? [...])
    tag:python          repos with a tag matching (a glob too: tag:* is any tagged repo)
    role:service        repos whose role matches (a glob too)
    changed:REF         repos whose checkout changed since it forked from REF: its
                        working tree against `git merge-base REF HEAD`, plus
                        untracked files, not those of a checkout nested in it (Nx
                        affected: REF's newer commits are not the branch's changes)
    changed:            the same, each repo from its own default branch (origin/HEAD,
                        else its default_branch): a fleet of main and master repos
    api...              api and everything it depends on (its providers, transitively)
    ...api              api and everything that depends on it (its consumers)
    api^...             what api depends on, without api
    ...^api             what depends on api, without api
    !legacy             removes legacy (any term after ``!``); alone: all but legacy
    tag:python&role:api what both select (any parts, graph forms too)

The core of a graph form is any term but another graph form: ``...changed:main`` is
what changed since main and everything that depends on it. Edges come from the
catalog's ``dependencies:`` (consumer depends on provider). In an intersection, a
plain ``changed:REF`` part asks git only about the repos the other parts select
(``tag:python&changed:main`` runs git in the Python repos alone).

Pure: the catalog in, names out (in catalog order). The one part that needs git
(``changed:``) asks a callback, :func:`git_changed` by default; a repo the callback
cannot answer for (no checkout, no REF) is an error naming it, never silently kept
or dropped. A term that matches nothing, or a selector that leaves nothing, is an
error naming the closest names (difflib).
"""

from __future__ import annotations

import contextvars
import difflib
import fnmatch
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coordination import gitsafe
from coordination.catalog.rules.selector_syntax import KINDS
from coordination.errors import UsageError

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

#: ``changed(checkout, ref)``: True or False, or a sentence saying why it cannot tell
#: (no checkout, REF unknown there).
ChangedProbe = Callable[[Path, str], "bool | str"]

_GLOB = frozenset("*?[")
#: git processes ``changed:`` runs at once (a thread each, waiting on its process):
#: bounded, so a thousand repos never fork a thousand gits at once.
GIT_POOL = min(32, 4 * (os.cpu_count() or 2))


@dataclass(frozen=True)
class Term:
    """One comma-separated part of a selector, parsed."""

    text: str  # as written (without the leading "!")
    kind: str  # "name" | "tag" | "role" | "changed"
    value: str
    exclude: bool = False
    deps: bool = False  # NAME... : with what it depends on
    dependents: bool = False  # ...NAME : with what depends on it
    keep_self: bool = True  # False for the ^ forms
    #: The other parts of an intersection (``tag:python&changed:main``): the term
    #: selects what this part and each of these select. ``exclude`` is the whole's.
    also: tuple[Term, ...] = ()


@dataclass
class Selection:
    """What a selector selected: names in catalog order, and how."""

    selector: str
    names: list[str]
    #: ``changed:REF`` terms: REF -> the repos (among those considered) that differ
    changed: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"selector": self.selector, "repos": list(self.names), "count": len(self.names),
                **({"changed": self.changed} if self.changed else {})}


def _bad(selector: str, what: str, hint: str) -> UsageError:
    return UsageError(f"repo selector {selector!r}: {what}", hint=hint)


SYNTAX_HINT = ("terms joined by commas: NAME or glob, tag:T, role:R, changed:REF, NAME..., "
               "...NAME, NAME^..., ...^NAME, !TERM, and A&B for what both select")


def parse(selector: str) -> list[Term]:
    """The terms of ``selector``; a malformed one is a UsageError saying which."""
    terms: list[Term] = []
    parts = [p.strip() for p in selector.split(",")]
    if not any(parts):
        raise _bad(selector, "it is empty", f"write {SYNTAX_HINT}")
    for raw in parts:
        if not raw:
            raise _bad(selector, "an empty term (two commas, or a comma at an end)",
                       "remove the extra comma")
        text, exclude = raw, False
        if text.startswith("!"):
            text, exclude = text[1:].strip(), True
            if not text:
                raise _bad(selector, "'!' excludes nothing", "write !NAME, !tag:T, ...")
        parts = [p.strip() for p in text.split("&")]
        if not all(parts):
            raise _bad(selector, f"an empty part of the intersection {raw!r}",
                       "write A&B: what both A and B select")
        for p in parts[1:]:
            if p.startswith("!"):
                raise _bad(selector, f"{raw!r}: '!' goes before the whole term, not inside "
                           "an intersection", f"write {parts[0]},!{p[1:].strip()} to leave "
                           f"{p[1:].strip()} out, or !{text.replace('!', '')} to remove what "
                           "all the parts select")
        atoms = [_atom(selector, raw, p) for p in parts]
        head = atoms[0]
        terms.append(Term(raw[1:].strip() if exclude else raw, head.kind, head.value, exclude,
                          head.deps, head.dependents, head.keep_self, tuple(atoms[1:])))
    return terms


def _atom(selector: str, raw: str, core: str) -> Term:
    """One part of a term: a name, glob, ``kind:value``, in a graph form or not."""
    deps, dependents, keep_self = False, False, True
    text = core
    if core.startswith("..."):
        core, dependents = core[3:], True
        if core.startswith("^"):
            core, keep_self = core[1:], False
    if core.endswith("..."):
        core, deps = core[:-3], True
        if core.endswith("^"):
            core, keep_self = core[:-1], False
    if not core or "..." in core or "^" in core:
        raise _bad(selector, f"cannot read {raw!r}", f"write {SYNTAX_HINT}")
    kind, colon, value = core.partition(":")
    if not colon:
        kind, value = "name", core
    elif kind not in KINDS:
        raise _bad(selector, f"unknown kind {kind + ':'!r} in {raw!r}",
                   "the kinds are tag:, role: and changed:")
    if not value and kind != "changed":  # changed: alone is each repo's default branch
        raise _bad(selector, f"{raw!r} names nothing", f"write {kind}:VALUE")
    if kind == "changed" and value.startswith("-"):
        raise _bad(selector, f"{raw!r}: a git ref does not start with '-'",
                   "write changed:main, changed:HEAD~1, changed:origin/main")
    return Term(text, kind, value, False, deps, dependents, keep_self)


def _walk(start: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        n = stack.pop()
        for m in edges.get(n, ()):
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen


def git_changed(checkout: Path, ref: str) -> bool | str:
    """Has ``checkout`` changed since it forked from ``ref``: does its working tree
    differ from ``git merge-base REF HEAD`` (commits since the fork, uncommitted
    edits), or hold untracked files git does not ignore (a git checkout nested in it
    is not one of its files)? Nx's affected: a branch
    behind ``main`` does not count main's newer commits as its changes. A sentence
    when it cannot tell (no checkout, no REF, no common ancestor: a shallow clone).

    Two git processes for a repo that did not change, one for one that did (a fleet
    asks this of a thousand checkouts): ``git diff --quiet --merge-base REF`` (the
    fork and the working tree against it, in one; git >= 2.30), then the untracked
    files. Anything else that process says (REF unknown, no or several merge bases,
    an older git) is asked again step by step, for the exact answer and sentence."""
    if not checkout.is_dir():
        return f"no checkout at {checkout}"
    try:
        diff = _git(checkout, "diff", "--quiet", "--merge-base", f"{ref}^{{commit}}", "--")
        if diff.returncode == 1:
            return True
        if diff.returncode != 0:
            return _git_changed_by_steps(checkout, ref)
        return _untracked(checkout)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"git failed: {exc}"


def default_ref(checkout: Path, default_branch: str | None) -> tuple[bool, str]:
    """The ref ``changed:`` with no ref compares a repo with: its remote's default
    (``origin/HEAD``, what a clone records), else the catalog's ``default_branch``; as
    ``(True, ref)``, or ``(False, why)`` when it has neither. A fleet mixing ``main`` and
    ``master`` repos is thereby compared each with its own."""
    if checkout.is_dir():
        try:
            head = _git(checkout, "rev-parse", "--verify", "--quiet",
                        "refs/remotes/origin/HEAD^{commit}")
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"git failed: {exc}"
        if head.returncode == 0:
            return True, "origin/HEAD"
    if default_branch:
        return True, default_branch
    return False, ("no default branch: no origin/HEAD in its checkout and no default_branch "
                   "in the catalog")


def _git(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return gitsafe.run(args, repo=checkout, capture_output=True, text=True, timeout=60)


def _untracked(checkout: Path) -> bool | str:
    """Does ``checkout`` hold untracked files git does not ignore (not those of a
    checkout nested in it)?"""
    untracked = _git(checkout, "ls-files", "--others", "--exclude-standard", "-z")
    if untracked.returncode != 0:
        return f"git ls-files failed: {(untracked.stderr or '').strip()[:200]}"
    # A checkout nested in this one (another repo of the fleet cloned inside it, a
    # linked worktree) is listed as "dir/": it is that repo's, not a change here.
    return any(not (entry.endswith("/") and os.path.lexists(checkout / entry / ".git"))
               for entry in untracked.stdout.split("\0") if entry)


def _git_changed_by_steps(checkout: Path, ref: str) -> bool | str:
    """:func:`git_changed` one step a process: REF, the merge base, the diff, the
    untracked files; each failure its own sentence."""
    if _git(checkout, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        return f"has no {ref!r} (fetch it, or leave the repo out with !NAME)"
    fork = _git(checkout, "merge-base", f"{ref}^{{commit}}", "HEAD")
    if fork.returncode != 0 or not fork.stdout.strip():
        return (f"no common ancestor of {ref!r} and HEAD (a shallow clone? "
                "`git fetch --unshallow`, or leave the repo out with !NAME)")
    diff = _git(checkout, "diff", "--quiet", fork.stdout.strip(), "--")
    if diff.returncode == 1:
        return True
    if diff.returncode != 0:
        return f"git diff failed: {(diff.stderr or '').strip()[:200]}"
    return _untracked(checkout)


class Selector:
    """A catalog's repos, their tags, roles and dependency edges, indexed once so that
    many selectors (a fleet of 1,000 repos) are cheap to evaluate."""

    def __init__(self, catalog: Catalog, base_dir: Path,
                 changed: ChangedProbe = git_changed) -> None:
        self.catalog = catalog
        self.base_dir = base_dir
        self.probe = changed
        self.order = [r.name for r in catalog.repos]
        self.providers: dict[str, set[str]] = {}  # consumer -> what it depends on
        self.consumers: dict[str, set[str]] = {}  # provider -> what depends on it
        for d in catalog.coordination.dependencies:
            self.providers.setdefault(d.consumer, set()).add(d.provider)
            self.consumers.setdefault(d.provider, set()).add(d.consumer)

    def _vocabulary(self) -> list[str]:
        tags = sorted({f"tag:{t}" for r in self.catalog.repos for t in r.tags})
        roles = sorted({f"role:{r.role}" for r in self.catalog.repos if r.role})
        return [*self.order, *tags, *roles]

    def _closest(self, text: str) -> str:
        close = difflib.get_close_matches(text, self._vocabulary(), n=3, cutoff=0.5)
        return (f"did you mean {', '.join(close)}?" if close
                else "see `coord repo list` for the repos, their tags and roles")

    def _base(self, term: Term, among: list[str], changed: dict[str, list[str]]) -> set[str]:
        """The repos a term's core selects (before its graph form)."""
        v, globbed = term.value, bool(_GLOB & set(term.value))
        if term.kind == "name":
            if not globbed:
                return {v} if self.catalog.repo(v) is not None else set()
            return set(fnmatch.filter(self.order, v))
        if term.kind == "tag":
            return {r.name for r in self.catalog.repos
                    if any(fnmatch.fnmatchcase(t, v) for t in r.tags)}
        if term.kind == "role":
            return {r.name for r in self.catalog.repos if r.role and fnmatch.fnmatchcase(r.role, v)}
        return self._changed(v, among, changed)

    def _changed(self, ref: str, among: list[str], changed: dict[str, list[str]]) -> set[str]:
        """Of ``among``, the repos whose checkout differs from ``ref`` (``""``: each
        from its own default branch, :func:`default_ref`); an error naming every repo
        it cannot tell for."""
        repos = [r for r in (self.catalog.repo(n) for n in among) if r is not None]
        paths = [r.checkout(self.base_dir) for r in repos]
        names = [r.name for r in repos]

        def ask(i: int) -> bool | str:
            if ref:
                return self.probe(paths[i], ref)
            own = default_ref(paths[i], repos[i].default_branch)
            return self.probe(paths[i], own[1]) if own[0] else own[1]

        # lazy: a `changed:` selector only; the models import this module, and `coord init`
        # writing a catalog (which loads them) never starts a thread pool
        from concurrent.futures import ThreadPoolExecutor

        ctxs = [contextvars.copy_context() for _ in paths]  # (gitsafe.forbidden reaches git)
        with ThreadPoolExecutor(max_workers=min(GIT_POOL, max(1, len(paths)))) as pool:
            answers = list(pool.map(lambda i, c: c.run(ask, i), range(len(paths)), ctxs))
        unknown = {n: a for n, a in zip(names, answers) if isinstance(a, str)}
        if unknown:
            shown = "; ".join(f"{n}: {why}" for n, why in list(unknown.items())[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise UsageError(
                f"changed:{ref}: cannot tell for {len(unknown)} repo(s): {shown}{more}",
                hint=("fetch the ref in those checkouts, or leave them out with !NAME" if ref
                      else "`git remote set-head origin --auto` in those checkouts, or "
                      "`coord repo update NAME --default-branch BRANCH`, or leave them out "
                      "with !NAME"))
        got = {n for n, a in zip(names, answers) if a is True}
        changed[ref] = [n for n in among if n in got]
        return got

    def select(self, selector: str, written_order: bool = False) -> Selection:
        """The repos ``selector`` selects, in catalog order (``written_order``: in the
        order of the terms that select them, each term's in catalog order, so that
        ``--repos libcore,api`` is kept as written); a UsageError for a malformed
        selector, a term that matches nothing, or nothing left."""
        terms = parse(selector)
        excluded: set[str] = set()
        changed: dict[str, list[str]] = {}
        # Exclusions first: `changed:` asks git only about repos not excluded, so a
        # checkout without the ref can be left out with !NAME.
        for t in (t for t in terms if t.exclude):
            excluded |= self._term(t, self.order, changed, selector)
        among = [n for n in self.order if n not in excluded]
        chosen: dict[str, None] = {}
        positive = [t for t in terms if not t.exclude]
        if not positive:  # exclusions only: every repo but those (--filter=!legacy)
            chosen = dict.fromkeys(among)
        for t in positive:
            got = self._term(t, among, changed, selector)
            chosen.update((n, None) for n in self.order if n in got and n not in chosen)
        names = [n for n in (chosen if written_order else self.order)
                 if n in chosen and n not in excluded]
        if not names:
            why = ("every repo it selects is excluded" if chosen and positive
                   else "it excludes every repo" if not positive else "it selects no repo")
            if any(t.kind == "changed" for t in terms) and not chosen:
                why = "no repo differs from " + ", ".join(
                    r or "its default branch" for r in sorted(changed))
            raise _bad(selector, why, "see what each term selects with "
                       "`coord repo list --repos TERM`")
        return Selection(selector, names, changed)

    def _term(self, t: Term, among: list[str], changed: dict[str, list[str]],
              selector: str) -> set[str]:
        """What a whole term selects: its parts' intersection. The parts git need not
        answer come first, so that a plain ``changed:REF`` part asks git only about
        the repos the others left (a graph form of it needs every repo's answer)."""
        if not t.also:
            return self._expand(t, among, changed, selector)
        parts = sorted([t, *t.also], key=lambda a: a.kind == "changed")
        got: set[str] | None = None
        for a in parts:
            plain_changed = a.kind == "changed" and not (a.deps or a.dependents)
            pool = among if got is None or not plain_changed else [
                n for n in among if n in got]
            mine = self._expand(a, pool, changed, selector) if pool else set()
            got = mine if got is None else got & mine
        return got or set()

    def _expand(self, t: Term, among: list[str], changed: dict[str, list[str]],
                selector: str) -> set[str]:
        base = self._base(t, among, changed)
        if not base and t.kind != "changed":
            raise _bad(selector, f"{t.text!r} matches no repo", self._closest(t.value if
                       t.kind == "name" else f"{t.kind}:{t.value}"))
        out = set(base) if t.keep_self else set()
        if t.deps:
            out |= _walk(base, self.providers)
        if t.dependents:
            out |= _walk(base, self.consumers)
        return out


def select(catalog: Catalog, selector: str, base_dir: Path,
           changed: ChangedProbe = git_changed, written_order: bool = False) -> Selection:
    """The repos ``selector`` selects (see the module's docstring)."""
    return Selector(catalog, base_dir, changed).select(selector, written_order)
