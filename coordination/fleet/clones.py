"""`coord init --from FILE`'s clone URLs: where each is cloned, and cloning them all or
none.

Names. A clone is named after its URL's last part (``https://x/org-a/utils.git`` ->
``utils``). Two URLs ending in the same name are two repositories (``org-a/utils``
and ``org-b/utils``): each is named with as many of its path's parts as make the
names distinct (``org-a-utils``, ``org-b-utils``; the host too when only it differs).
Two spellings of one repository (``git@host:org/x.git``, ``https://host/org/x``) are
one clone. A URL is the same repository as a checkout's remote when host and path
agree, whatever the scheme, user or ``.git``.

Existing checkouts. A directory already at a clone's place is that clone ("present")
only when it is a checkout whose remote is that URL's repository; anything else there
(another repository's checkout, a directory that is no checkout) is refused before
anything is cloned, naming both. For URLs sharing a name, a checkout at the plain
name (``utils``, cloned by an earlier ``--from`` that listed one of them) is the one
whose remote it is; one of neither is refused, as coord cannot tell which it was
meant to be.

All or nothing. Every clone goes to a directory made beside them (``INTO/.coord-clones-
XXXX``); only when all succeeded are they renamed into place. A failure, Ctrl-C or
SIGTERM removes what was cloned, and the directories made for it: a refused or failed
``--from`` leaves no partial clone behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from coordination import gitsafe
from coordination.errors import OperationFailed, UsageError
from coordination.fleet.discovery import git_dirs, is_checkout, remotes

CLONE_TIMEOUT = 600.0
_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.*)$")


@dataclass
class Target:
    """Where one URL is cloned; ``present``: a checkout of it is there already."""

    url: str
    path: Path
    present: bool = False


def identity(url: str) -> tuple[str, str]:
    """``(host, path)`` naming the repository a URL clones, however it is spelled: the
    host lower-cased without user or port, the path without its ``.git`` and slashes
    (``git@github.com:acme/utils.git`` and ``https://tok@GitHub.com/acme/utils/`` are
    one). A local path is ``("", its absolute path)``."""
    if "://" in url:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path
    elif (m := _SCP.match(url)) and not os.path.isabs(url):
        host, path = m.group(1).lower(), m.group(2)
    else:
        host, path = "", os.path.abspath(url)
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return host, path.strip("/")


def _parts(url: str) -> list[str]:
    host, path = identity(url)
    return [p for p in path.split("/") if p] or [host or "repo"]


def names(urls: Sequence[str]) -> dict[str, str]:
    """A distinct directory name per URL (one per repository: two spellings of one
    share theirs): the URL's last part, or, for URLs sharing it, as many of their
    path's parts (then the host) as tell them apart, joined by ``-``. Refused (exit 2)
    when nothing does, or when a name made so is another URL's."""
    by_repo: dict[tuple[str, str], list[str]] = {}
    for url in urls:
        by_repo.setdefault(identity(url), []).append(url)
    groups: dict[str, list[tuple[str, str]]] = {}
    for repo in by_repo:
        groups.setdefault(_parts(by_repo[repo][0])[-1].lower(), []).append(repo)
    out: dict[tuple[str, str], str] = {}
    for tail, repos in groups.items():
        if len(repos) == 1:
            out[repos[0]] = _parts(by_repo[repos[0]][0])[-1]
            continue
        longest = max(len(_parts(by_repo[r][0])) for r in repos) + 1
        for k in range(2, longest + 1):
            made = {r: "-".join(([r[0]] + _parts(by_repo[r][0]))[-k:]) for r in repos}
            if len(set(made.values())) == len(repos):
                out.update(made)
                break
        else:  # pragma: no cover - distinct identities always differ somewhere
            raise UsageError(f"--from: cannot tell {', '.join(by_repo[r][0] for r in repos)} "
                             "apart by their URLs")
    taken: dict[str, tuple[str, str]] = {}
    for repo, name in out.items():
        other = taken.setdefault(name.lower(), repo)
        if other != repo:
            raise UsageError(
                f"--from: {by_repo[other][0]} and {by_repo[repo][0]} would both be cloned "
                f"as {name}", hint="list one of them from another --from file, with "
                "another --into")
    return {url: out[repo] for repo, urls_ in by_repo.items() for url in urls_}


def _origin_identity(path: Path) -> tuple[str, str] | None:
    """The repository the checkout at ``path`` was cloned from (its ``origin``, else its
    first remote); None without one."""
    _, common = git_dirs(path)
    found = remotes(path, common)
    urls = dict(found)
    url = urls.get("origin") or next((u for _, u in found if u), None)
    return identity(url) if url else None


def plan(urls: Sequence[str], into: Path) -> list[Target]:
    """Where each of ``urls`` is cloned under ``into``, and which are there already;
    every conflict refused at once (exit 2), naming each URL and what is in its way,
    before anything is cloned."""
    named = names(urls)
    tails: dict[str, list[str]] = {}
    for url in dict.fromkeys(urls):
        tails.setdefault(_parts(url)[-1].lower(), []).append(url)
    out: dict[str, Target] = {}
    problems: list[str] = []
    for url in dict.fromkeys(urls):
        path = into / named[url]
        shared = [u for u in tails[_parts(url)[-1].lower()] if identity(u) != identity(url)]
        plain = into / _parts(url)[-1]
        if shared and is_checkout(plain):
            # A checkout at the plain name: the one of these whose remote it is.
            there = _origin_identity(plain)
            if there == identity(url):
                out[url] = Target(url, plain, present=True)
                continue
            if there not in {identity(u) for u in shared}:
                problems.append(
                    f"{', '.join(sorted([url, *shared]))} are all named {plain.name}, and "
                    f"{plain} is "
                    f"a checkout of {_said(there)}, none of them: coord cannot tell which it "
                    "is meant to be")
                continue
        if os.path.lexists(path):
            if not is_checkout(path):
                problems.append(f"{path} exists and is not a git checkout, so {url} cannot "
                                "be cloned there")
                continue
            there = _origin_identity(path)
            if there != identity(url):
                problems.append(f"{path} is a checkout of {_said(there)}, not of {url}")
                continue
            out[url] = Target(url, path, present=True)
            continue
        out[url] = Target(url, path)
    if problems:
        raise UsageError("--from: " + "; ".join(dict.fromkeys(problems))
                         + "; nothing was cloned",
                         hint="move what is in the way elsewhere (or rename it as coord "
                         "would name it), or pass another --into")
    return [out[url] for url in urls if url in out]


def _said(there: tuple[str, str] | None) -> str:
    if there is None:
        return "no remote"
    host, path = there
    return f"{host}:{path}" if host else path


class _Stopped(BaseException):
    """SIGTERM or SIGHUP while cloning: unwinds as Ctrl-C does, so that what was cloned
    is removed."""


@contextlib.contextmanager
def _stoppable() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`_Stopped` inside, SIGINT ``KeyboardInterrupt``
    even when coord was started with it ignored (a background job of a script, a test
    runner's worker: such a coord went on cloning for a minute after a SIGINT), in the
    main thread only (a signal handler can be set nowhere else)."""
    def stop(signum: int, _frame: FrameType | None) -> None:
        raise _Stopped(signal.Signals(signum).name)

    try:
        old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
        old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@dataclass
class Cloned:
    """What one :func:`clone` made: the clones, and the directories made to hold them
    (outermost first): :func:`remove` takes them away again."""

    paths: list[Path]
    made: list[Path]


def clone(targets: Sequence[Target], into: Path, timeout: float = CLONE_TIMEOUT) -> Cloned:
    """Clone every target not present, all or none: each into a directory made beside
    them, then all renamed into place. On any failure (or Ctrl-C, SIGTERM) nothing is
    left of them (nor of ``into``, when made for them)."""
    todo = [t for t in targets if not t.present]
    if not todo:
        return Cloned([], [])
    made = _missing_parents(into)
    into.mkdir(parents=True, exist_ok=True)
    placed: list[Path] = []
    stage: Path | None = None
    try:
        with _stoppable():
            stage = Path(tempfile.mkdtemp(prefix=".coord-clones-", dir=into))
            for t in todo:
                _clone_one(t.url, stage / t.path.name, timeout)
            for t in todo:
                if os.path.lexists(t.path):
                    raise OperationFailed(f"{t.path} appeared while coord cloned {t.url}; "
                                          "nothing was cloned",
                                          hint="run coord init --from again")
                os.rename(stage / t.path.name, t.path)
                placed.append(t.path)
    except BaseException as exc:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        remove(Cloned(placed, made))
        if isinstance(exc, _Stopped):
            raise KeyboardInterrupt(str(exc)) from None
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    return Cloned(placed, made)


def remove(cloned: Cloned) -> None:
    """Remove what a :func:`clone` made: its clones, and the directories made to hold
    them as far as they are empty."""
    for p in cloned.paths:
        shutil.rmtree(p, ignore_errors=True)
    for d in reversed(cloned.made):
        with contextlib.suppress(OSError):
            d.rmdir()


def _missing_parents(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, outermost first."""
    out: list[Path] = []
    for p in [path, *path.parents]:
        if os.path.lexists(p):
            break
        out.append(p)
    return list(reversed(out))


def _clone_one(url: str, dest: Path, timeout: float) -> None:
    try:
        done = gitsafe.run(["clone", "--quiet", "--", url, str(dest)], capture_output=True,
                           text=True, timeout=timeout, check=False, kill_tree=True)
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"git clone {url} took more than {timeout:.0f} s; nothing "
                              "was cloned or written") from None
    if done.returncode != 0:
        raise OperationFailed(f"git clone {url} failed: {done.stderr.strip()}; nothing was "
                              "cloned or written", hint="check the URL and your access to it")
