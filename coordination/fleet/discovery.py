"""Finding the git checkouts of a fleet and reading what they are (``coord init``).

Built to run over a thousand checkouts in about the time one ``git rev-parse`` per
checkout takes, so it spawns no process for an ordinary checkout:

- directories are listed with ``os.scandir``, at most ``depth`` levels below each
  root; hidden directories and ``node_modules`` are never entered;
- a directory holding a ``.git`` *directory* is a checkout; one holding a ``.git``
  *file* is a linked worktree or a submodule (another checkout's second copy) and is
  skipped with everything below it, unless named explicitly (a catalog's repo, a
  ``--from`` path): then it is read, its HEAD from its own gitdir, its remotes and
  refs from the repository's;
- below a checkout, the search goes on for checkouts nested in it, but skips the
  directories the checkout ignores, with git's semantics (``pathspec``'s
  ``GitIgnoreSpec``: ``vendor/``, ``/deps``, ``a/**/b``, ``!keep``): its
  ``.git/info/exclude``, its top-level ``.gitignore`` and those of the directories
  below it, the deepest with a matching pattern deciding. Without a process per
  directory (``git check-ignore``); the user's global excludes file is not read, and
  a root named is scanned whatever a repository enclosing it ignores (a dotfiles
  repository's ``*`` would hide every checkout under ``~``);
- ``.git/HEAD``, ``.git/refs/remotes/<remote>/HEAD`` and ``.git/config`` are read as
  files. ``git config -l`` is run only for a config ``configparser`` cannot read or
  one with ``[include]``/``[includeIf]``; ``git symbolic-ref`` only in a reftable
  repository (no loose refs to read).
"""

from __future__ import annotations

import configparser
import functools
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coordination import gitsafe
from coordination.fleet import forked, manifests
from coordination.fleet.manifests import Manifests
from coordination.catalog.rules.git_rules import REPO_NAME_RE, git_branch

if TYPE_CHECKING:
    import pathspec
    from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

DEFAULT_DEPTH = 3
#: Never entered, wherever they are: package caches and virtualenvs hold no checkout
#: of the fleet (and node_modules may hold thousands of directories).
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
GIT_TIMEOUT = 30.0


@dataclass
class Checkout:
    """One checkout found, and what it says about itself."""

    path: Path  # absolute, normalised
    default_branch: str | None = None
    #: Where default_branch came from: "origin/HEAD" (the remote's), "HEAD" (the
    #: current branch) or None (detached, unreadable).
    branch_from: str | None = None
    remote: str | None = None  # the remote's name: origin, else the first one
    url: str | None = None
    manifests: Manifests = field(default_factory=Manifests)
    problems: list[str] = field(default_factory=list)


# -- walking ---------------------------------------------------------------------------
#: Each distinct ignore line compiled once per process: a fleet's .gitignore files are
#: mostly the same few templates, and compiling a pattern costs far more than matching.
_PATTERNS: dict[str, GitIgnoreSpecPattern | None] = {}  # None: a line that ignores nothing


def _spec(lines: list[str]) -> pathspec.GitIgnoreSpec | None:
    """The patterns of one ignore file; a line git would not read either (``!``
    alone, a broken class) is left out, as git leaves it out."""
    lines = [line for line in lines if line.strip() and not line.startswith("#")]
    if not lines:  # git init's info/exclude: comments only, no pathspec to import
        return None
    import pathspec  # lazy: 30-80 ms, and only a walk that meets an ignore file needs it

    patterns: list[GitIgnoreSpecPattern] = []
    for line in lines:
        if line not in _PATTERNS:
            try:
                one = pathspec.GitIgnoreSpec.from_lines([line]).patterns
            except Exception:  # pathspec's GitIgnorePatternError (ValueError in older ones)
                one = []
            # A blank or comment line compiles to a pattern that matches nothing.
            _PATTERNS[line] = one[0] if one and one[0].include is not None else None
        got = _PATTERNS[line]
        if got is not None:
            patterns.append(got)
    return pathspec.GitIgnoreSpec(patterns) if patterns else None


def _read_spec(file: str | Path) -> pathspec.GitIgnoreSpec | None:
    try:
        with open(file, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return _spec(text.splitlines())


class _SpecFile:
    """An ignore file, read and compiled when first asked (most are never asked: a
    directory at the walk's last level is only looked into, see :func:`_walk`)."""

    __slots__ = ("path", "_spec", "_read")

    def __init__(self, path: str) -> None:
        self.path = path
        self._spec: pathspec.GitIgnoreSpec | None = None
        self._read = False

    def says(self, rel: str) -> bool | None:
        """Whether its last pattern matching ``rel`` ignores it (None: none matches)."""
        if not self._read:
            self._spec, self._read = _read_spec(self.path), True
        return None if self._spec is None else self._spec.check_file(rel).include


@dataclass(frozen=True)
class _Ignore:
    """What the enclosing checkout ignores, for the directories below it: its
    ``.git/info/exclude``, its top-level ``.gitignore`` and those of the directories
    walked down to here, each with the directory its patterns are relative to."""

    root: str
    layers: tuple[tuple[str, _SpecFile], ...] = ()  # shallowest first

    def below(self, directory: str, has_gitignore: bool) -> _Ignore:
        """The rules for the entries of ``directory`` (below the checkout's top)."""
        if not has_gitignore:
            return self
        rel = directory[len(self.root) + 1:].replace(os.sep, "/")
        spec = _SpecFile(os.path.join(directory, ".gitignore"))
        return _Ignore(self.root, (*self.layers, (rel + "/", spec)))

    def skips(self, path: str) -> bool:
        """Is the directory ``path`` (below the checkout's top) ignored? git's rule:
        the deepest ``.gitignore`` with a matching pattern decides, its last matching
        pattern (a ``!`` one re-includes); ``info/exclude`` comes last. Its parents were
        not ignored (the walk does not enter an ignored directory), so none of them
        excludes it."""
        rel = path[len(self.root) + 1:].replace(os.sep, "/") + "/"
        for base, spec in reversed(self.layers):
            if base and not rel.startswith(base):
                continue
            said = spec.says(rel[len(base):])
            if said is not None:
                return said
        return False


def gitignore_dirs(root: str | Path, has_gitignore: bool = True) -> _Ignore:
    """The ignore rules a checkout at ``root`` starts with: ``.git/info/exclude``, then
    its top-level ``.gitignore`` (deeper ones are added as the walk goes down)."""
    root = str(root)
    layers = [("", _SpecFile(os.path.join(root, ".git", "info", "exclude")))]
    if has_gitignore:
        layers.append(("", _SpecFile(os.path.join(root, ".gitignore"))))
    return _Ignore(root, tuple(layers))


def find_checkouts(roots: Sequence[Path], depth: int = DEFAULT_DEPTH) -> list[Path]:
    """Every checkout at or below each of ``roots``, at most ``depth`` directories
    down, each once, sorted."""
    return sorted(Path(p) for p in _walk(_starts(roots), depth, below=True))


#: A directory to look into: its path, its level below its root, and the ignore rules
#: of the checkout it is in (None above any checkout).
_Entry = tuple[str, int, "_Ignore | None"]


def _starts(roots: Sequence[Path]) -> list[_Entry]:
    return [(os.path.normpath(os.path.abspath(r)), 0, None) for r in roots]


def _walk(stack: list[_Entry], depth: int, below: bool,
          names: set[str] | None = None) -> dict[str, int]:
    """The checkouts found from ``stack``'s directories, at most ``depth`` levels down,
    with their levels; ``below``: looked for below a checkout too (else that is left
    to whoever reads the checkout: :class:`Discovery`'s children); ``names``, when
    given, gets the names at the top of every checkout found.

    Whether the checkout a directory is in ignores it is asked only when it matters:
    the directory holds a ``.git`` (a checkout of its own), or the walk would go below
    it. One at the last level is only looked into, which is cheaper than compiling the
    ignore files that would have said to leave it (one ``scandir`` of an ignored
    directory instead)."""
    found: dict[str, int] = {}
    seen: set[tuple[int, int]] = set()  # (device, inode): a symlinked loop is entered once
    while stack:
        directory, level, ignore = stack.pop()
        try:
            st = os.stat(directory)
            if (st.st_dev, st.st_ino) in seen:
                continue
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue
        git = next((e for e in entries if e.name == ".git"), None)
        if ignore is not None and (git is not None or level < depth) \
                and ignore.skips(directory):
            continue
        seen.add((st.st_dev, st.st_ino))
        has_gitignore = any(e.name == ".gitignore" for e in entries)
        if git is not None:
            if not git.is_dir(follow_symlinks=False):
                continue  # a linked worktree or a submodule: a copy of another checkout
            found[directory] = level
            if names is not None:
                names.update(e.name for e in entries)
            if not below:
                continue
            ignore = gitignore_dirs(directory, has_gitignore)
        elif ignore is not None and level < depth:
            ignore = ignore.below(directory, has_gitignore)
        if level >= depth:
            continue
        for e in entries:
            if (e.name.startswith(".") or e.name in SKIP_DIRS
                    or not e.is_dir(follow_symlinks=False)):
                continue
            stack.append((e.path, level + 1, ignore))
    return found


# -- reading a checkout ---------------------------------------------------------------------
def _git(path: Path, *args: str) -> str | None:
    try:
        done = gitsafe.run(args, repo=path, capture_output=True, text=True,
                           timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):  # GitRefused: its config
        return None
    return done.stdout if done.returncode == 0 else None


def _symref(gitdir: Path, ref: str) -> str | None:
    """What the loose symbolic ref ``ref`` points at (``refs/heads/main``), or None."""
    try:
        text = (gitdir / ref).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text[5:].strip() if text.startswith("ref: ") else None


_SECTION = re.compile(r'^remote "(.*)"$')


_HEADER = re.compile(r'\[([A-Za-z0-9.-]+(?: "[^"\\]*")?)\]')


def _plain_remotes(text: str) -> list[tuple[str, str | None]] | None:
    """The remotes of a config as git writes one (section headers, ``key = value``
    lines, comment lines): what :func:`remotes`' ``configparser`` reads from it, for a
    fraction of its cost (a fleet's worth of configs took a tenth of `coord init`).
    None for anything else (quotes, escapes, a comment after a value, a key with no
    value, an include): ``configparser``, and git, read those."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    indent: str | None = None  # every key line's (configparser reads a deeper one on)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            m = _HEADER.fullmatch(raw.rstrip())
            name = m.group(1) if m else ""
            if not name or name == "include" or name.startswith("includeIf") \
                    or name == "DEFAULT":
                return None
            current = sections.setdefault(name, {})
            continue
        key, eq, value = line.partition("=")
        lead = raw[:len(raw) - len(raw.lstrip())]
        if indent is None:
            indent = lead
        if current is None or not eq or any(c in line for c in '"\\#;') \
                or not key.strip().replace("-", "").isalnum() or lead != indent:
            return None
        current[key.strip().lower()] = value.strip()
    return [(m.group(1), opts.get("url") or None) for name, opts in sections.items()
            if (m := _SECTION.match(name))]


def remotes(path: Path, gitdir: Path) -> list[tuple[str, str | None]]:
    """The checkout's remotes, in the config's order: ``(name, url)``."""
    try:
        text = (gitdir / "config").read_text(encoding="utf-8")
        plain = _plain_remotes(text)
        if plain is not None:
            return plain
        cfg = configparser.ConfigParser(interpolation=None, strict=False,
                                        comment_prefixes=("#", ";"),
                                        inline_comment_prefixes=(" #", " ;"))
        cfg.read_string(text)
        quirky = any(s == "include" or s.startswith("includeIf") for s in cfg.sections())
    except (OSError, UnicodeDecodeError, configparser.Error):
        quirky = True
    if not quirky:
        out: list[tuple[str, str | None]] = []
        for s in cfg.sections():
            m = _SECTION.match(s)
            if m:
                url = cfg.get(s, "url", fallback=None)
                out.append((m.group(1), url.strip().strip('"') if url else None))
        return out
    # What git itself reads (includes, quoting, continuation lines...).
    listed = _git(path, "config", "-l", "--local", "--includes") or ""
    names: dict[str, str | None] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("remote.") and key.count(".") >= 2:
            name, _, leaf = key[len("remote."):].rpartition(".")
            if name not in names:
                names[name] = None
            if leaf == "url" and names[name] is None:
                names[name] = value
    return list(names.items())


def _branch(ref: str | None, prefix: str) -> str | None:
    if ref is None or not ref.startswith(prefix):
        return None
    name = ref[len(prefix):]
    try:
        return git_branch(name)
    except ValueError:
        return None


def is_checkout(path: Path) -> bool:
    """``path`` holds a ``.git``: a directory (a checkout), or a file (a linked
    worktree or a submodule, a checkout whose repository is elsewhere)."""
    return os.path.lexists(path / ".git")


def git_dirs(path: Path) -> tuple[Path, Path]:
    """``(gitdir, common)`` of the checkout at ``path``: where its ``HEAD`` is, and
    where its ``config`` and refs are. The same ``.git`` directory for an ordinary
    checkout; for a linked worktree (``.git`` a file, ``gitdir: ...``) its own gitdir
    and the main repository's (``commondir``); for a submodule its gitdir twice."""
    dot = path / ".git"
    if dot.is_dir():
        return dot, dot
    try:
        text = dot.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return dot, dot
    if not text.startswith("gitdir:"):
        return dot, dot
    gitdir = Path(os.path.normpath(path / text[len("gitdir:"):].strip()))
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return gitdir, gitdir
    return gitdir, Path(os.path.normpath(gitdir / common))


def read_checkout(path: Path) -> Checkout:
    """What a checkout says: its default branch, remote and manifests (a linked
    worktree's too: its HEAD from its own gitdir, the rest from the repository's)."""
    out = Checkout(path)
    gitdir, common = git_dirs(path)
    found = remotes(path, common)
    names = [n for n, _ in found]
    remote = "origin" if "origin" in names else (names[0] if names else None)
    if remote is not None:
        out.remote, out.url = remote, dict(found)[remote]
    reftable = (common / "reftable").is_dir()
    if remote is not None:
        ref = (_git(path, "symbolic-ref", "-q", f"refs/remotes/{remote}/HEAD") or "").strip() \
            if reftable else _symref(common, f"refs/remotes/{remote}/HEAD")
        out.default_branch = _branch(ref or None, f"refs/remotes/{remote}/")
        if out.default_branch:
            out.branch_from = f"{remote}/HEAD"
    if out.default_branch is None:
        ref = (_git(path, "symbolic-ref", "-q", "HEAD") or "").strip() if reftable \
            else _symref(gitdir, "HEAD")
        out.default_branch = _branch(ref or None, "refs/heads/")
        if out.default_branch:
            out.branch_from = "HEAD"
    try:
        with os.scandir(path) as it:
            top = [e.name for e in it]
    except OSError as exc:
        out.problems.append(f"{path}: {exc.strerror}")
        return out
    out.manifests = manifests.read(path, top)
    return out


def has_local_branch(path: Path, branch: str) -> bool:
    """Does the checkout at ``path`` have the local branch ``branch`` (a loose ref or
    a line of ``packed-refs``; ``git show-ref`` in a reftable repository)?"""
    _, common = git_dirs(path)
    ref = f"refs/heads/{branch}"
    if (common / "reftable").is_dir():
        return _git(path, "show-ref", "--verify", "--quiet", ref) is not None
    if (common / ref).is_file():
        return True
    try:
        with open(common / "packed-refs", encoding="utf-8", errors="replace") as f:
            return any(line.rstrip("\n").split(" ", 1)[-1] == ref for line in f
                       if not line.startswith(("#", "^")))
    except OSError:
        return False


class Discovery:
    """The checkouts under some roots, being read: :meth:`start` walks down to the
    checkouts, then reads each, and looks for checkouts nested below it, in
    :mod:`~coordination.fleet.forked` children (one per core) while the caller goes on;
    :meth:`checkouts` waits for them."""

    def __init__(self, running: forked.Forked[tuple[Path, int], list[Checkout]]
                 | forked.Mapped[tuple[Path, int], list[Checkout]],
                 tops: Sequence[Path] = ()) -> None:
        self.running = running
        #: The checkouts the walk found (not those nested in them), before any is read.
        self.tops = list(tops)

    @classmethod
    def start(cls, roots: Sequence[Path], depth: int = DEFAULT_DEPTH) -> Discovery:
        names: set[str] = set()
        tops = sorted((Path(p), level) for p, level in
                      _walk(_starts(roots), depth, below=False, names=names).items())
        # Once here, not in every reader: the readers of the builds found at the tops.
        manifests.prepare(names)
        return cls(forked.start(functools.partial(_read_below, depth=depth), tops),
                   [p for p, _ in tops])

    def checkouts(self, extra: Iterable[Path] = ()) -> list[Checkout]:
        """Every checkout found, and the checkouts ``extra`` (named explicitly: the
        catalog's repos, ``--from``'s paths; a linked worktree too), read, by path."""
        found: dict[Path, Checkout] = {}
        for read in self.running.results():
            for co in read:
                found.setdefault(co.path, co)
        for p in extra:
            p = Path(os.path.normpath(os.path.abspath(p)))
            if p not in found and is_checkout(p):
                found[p] = read_checkout(p)
        return [found[p] for p in sorted(found)]

    def close(self) -> None:
        """No child reading left running (the caller failed before asking)."""
        self.running.close()


def _read_below(top: tuple[Path, int], depth: int) -> list[Checkout]:
    """The checkout ``top`` (its path, its level below its root) read, and those nested
    below it within ``depth``."""
    path, level = top
    return [read_checkout(Path(p)) for p in sorted(_walk([(str(path), level, None)], depth,
                                                         below=True))]


def discover(roots: Sequence[Path], depth: int = DEFAULT_DEPTH,
             extra: Iterable[Path] = ()) -> list[Checkout]:
    """Every checkout under ``roots``, and the checkouts ``extra`` (named explicitly:
    the catalog's repos, ``--from``'s paths), linked worktrees among them, read."""
    found = Discovery.start(roots, depth)
    try:
        return found.checkouts(extra)
    finally:
        found.close()


# -- names -------------------------------------------------------------------------------
_NAME_BAD = re.compile(r"[^a-z0-9._-]+")


def repo_name(path: Path) -> str:
    """A repo name the catalog accepts, from a checkout's directory name."""
    name = _NAME_BAD.sub("-", path.name.lower()).strip("-._")
    if name.endswith(".git"):
        name = name[:-4]
    return name if re.match(REPO_NAME_RE, name) else "repo"


def unique_names(paths: Sequence[Path], taken: Iterable[str] = ()) -> dict[Path, str]:
    """A distinct repo name per path: the directory's name, else its parent's and its
    (``team-a-api``), else with a number (``api-2``); never one of ``taken``."""
    used = set(taken)
    counts: dict[str, int] = {}
    for p in paths:
        counts[repo_name(p)] = counts.get(repo_name(p), 0) + 1
    out: dict[Path, str] = {}
    for p in paths:
        name = repo_name(p)
        if counts[name] > 1 or name in used:
            name = repo_name(Path(f"{p.parent.name}-{p.name}"))
        base, n = name, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        out[p] = name
    return out


# -- --from FILE ----------------------------------------------------------------------------
_SCP_URL = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:")


def is_url(entry: str) -> bool:
    """A clone URL (``https://``, ``user@host:path``, a ``<transport>::`` address, which
    the clone refuses) rather than a path."""
    return "://" in entry or "::" in entry or bool(_SCP_URL.match(entry))


def read_list(file: Path) -> list[str]:
    """The entries of a ``--from`` file: one path or clone URL a line; ``#`` comments
    and blank lines skipped."""
    out = []
    for raw in file.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line:
            out.append(line)
    return out

