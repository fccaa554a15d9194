"""A ``cache:`` todo's key, computed where it runs (its checkout), and how two keys differ.

The key is the SHA-256 of its parts (:class:`KeyParts`):

========  =====================================================================
tree      HEAD's tree (``git rev-parse HEAD^{tree}``): the committed content
dirty     every tracked file that differs from HEAD, staged or not, as the
          command will see it: ``<mode>:<blob id>`` or ``deleted``
inputs    untracked files (ignored ones too) matched by ``cache.inputs`` globs, and
          tracked symlinks they match: a link's target path and what it points at;
          and every tracked symlink that leads outside the checkout, named or not
          (:func:`outside_links`: the tree holds only its target's path; one to a
          directory out there, or an unreadable one, makes the todo run uncached)
command   the frozen ``run:`` command
cwd       the directory it runs in
env       the todo's ``env:`` and the ``cache.env`` variables: a salted hash of each
          value (never the value), or ``unset``
probes    each ``cache.probes`` command's output and exit code
upstream  each predecessor's key (a predecessor without one: the run it made)
========  =====================================================================

Cheap because git's index is: ``git status`` compares each tracked file's stat data
with what the index recorded and reads only the files whose stat changed, so a clean
checkout of 10,000 files costs a few stat calls per file, no hashing (README,
Performance). The worktree content of the files that differ is hashed once, by its
blob id as git computes it, in this process (so they compare with the tree's; a repo with
clean/smudge filters or autocrlf may see a file as changed in `why` that git would not).

:func:`changed` says which parts of two keys differ: the paths (across two trees with
``git diff-tree``, when the old tree is still in the repository), env names, the
command, probe outputs, upstream todos. No Redis here: :mod:`workers.caching` stores
and looks up.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coordination import gitsafe
from workers import git_index

#: Changes the key of every entry when the way parts are hashed changes.
VERSION = "coord-cache-1"
#: Paths (dirty, inputs) an entry keeps by name; beyond, a count and a digest (the key
#: covers them all).
MAX_PATHS = 2000
#: Characters of a probe's output kept by name (the key covers all of it).
PROBE_CHARS = 4096
GIT_TIMEOUT = 120.0


class NoKey(Exception):
    """No key could be computed (not a git checkout, a probe that did not end...): the
    todo runs, uncached, and `coord why` says this."""


@dataclass
class KeyParts:
    tree: str | None
    dirty: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    command: str = ""
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    probes: dict[str, str] = field(default_factory=dict)
    upstream: dict[str, str] = field(default_factory=dict)

    def key(self) -> str:
        text = json.dumps([VERSION, asdict(self)], sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """What an entry keeps: every part, the path maps cut to :data:`MAX_PATHS` (with
        how many more and a digest of all, so two cut maps still compare)."""
        out = asdict(self)
        for name in ("dirty", "inputs"):
            paths: dict[str, str] = out[name]
            if len(paths) > MAX_PATHS:
                kept = dict(sorted(paths.items())[:MAX_PATHS])
                out[name] = kept
                out[f"{name}_more"] = len(paths) - MAX_PATHS
                out[f"{name}_digest"] = _digest(paths)
        return out


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8", "surrogateescape")
                          ).hexdigest()


def _git(cwd: str, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = gitsafe.run(["-c", "core.quotepath=false", *args], cwd=cwd,
                           input=stdin, capture_output=True, timeout=GIT_TIMEOUT,
                           # no optional locks: `status` must not take index.lock to
                           # refresh the index while a todo of the same checkout runs git
                           env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError) as exc:  # GitRefused: its config
        raise NoKey(f"git {args[0]}: {exc}") from None
    if done.returncode != 0:
        msg = done.stderr.decode(errors="replace").strip().splitlines()
        raise NoKey(f"git {args[0]}: {msg[-1] if msg else 'exit ' + str(done.returncode)}")
    out: bytes = done.stdout
    return out


#: checkout -> its repository's top; (top, commit) -> the commit's tree. A worker asks
#: about the same few checkouts and commits again and again: one git process per key.
_TOPS: dict[str, str] = {}
_TREES: dict[tuple[str, str], str] = {}


def _top(cwd: str) -> str:
    # by where cwd leads now: a checkout path that is a symlink (a deploy's `current`)
    # may be retargeted to another checkout between two keys
    real = os.path.realpath(cwd)
    top = _TOPS.get(real)
    if top is None:
        try:
            top = _git(real, "rev-parse", "--show-toplevel").decode().strip()
        except NoKey:
            raise NoKey(f"{cwd} is not a git checkout (a cache key needs git)") from None
        if len(_TOPS) > 10_000:
            _TOPS.clear()
        _TOPS[real] = top
    return top


def _tree(top: str, commit: str) -> str:
    tree = _TREES.get((top, commit))
    if tree is None:
        tree = _git(top, "rev-parse", f"{commit}^{{tree}}").decode().strip()
        if len(_TREES) > 10_000:
            _TREES.clear()
        _TREES[(top, commit)] = tree
    return tree


def checkout_state(cwd: str) -> tuple[str, str | None, dict[str, str]]:
    """The repository's top, HEAD's tree (None before the first commit) and its
    tracked files that differ from HEAD (path from the top -> ``mode:blob`` or
    ``deleted``). No process for a small clean checkout at a commit seen before
    (:func:`workers.git_index.clean`), else one (``status``)."""
    top = _top(cwd)
    commit = git_index.head_commit(os.path.join(top, ".git"))
    known = _TREES.get((top, commit)) if commit else None
    if known is not None and git_index.clean(top, known):
        return top, known, {}
    raw = _git(top, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=no",
               "--no-renames")
    tree: str | None = None
    dirty: dict[str, str] = {}
    to_hash: list[tuple[str, str, str]] = []  # (path, worktree mode, HEAD's mode:blob)
    for rec in raw.split(b"\0"):
        if not rec:
            continue
        kind = rec[:1]
        if rec.startswith(b"# branch.oid "):
            commit = rec[len(b"# branch.oid "):].decode().strip()
            tree = None if commit == "(initial)" else _tree(top, commit)
        elif kind == b"1":
            # 1 XY sub mH mI mW hH hI path
            f = rec.split(b" ", 8)
            xy, sub, m_index, m_work, h_index = f[1].decode(), f[2].decode(), f[4], f[5], f[7]
            path = os.fsdecode(f[8])
            at_head = f"{f[3].decode()}:{f[6].decode()}"
            if sub.startswith("S"):
                dirty[path] = f"submodule:{h_index.decode()}:{sub}"
            elif xy[1] == "D":
                dirty[path] = "deleted"
            elif xy[1] != ".":
                to_hash.append((path, m_work.decode(), at_head))
            elif xy[0] == "D":
                dirty[path] = "deleted"
            else:
                dirty[path] = f"{m_index.decode()}:{h_index.decode()}"
        elif kind == b"u":
            # u XY sub m1 m2 m3 mW h1 h2 h3 path: a conflict; what the worktree holds
            f = rec.split(b" ", 10)
            path = os.fsdecode(f[10])
            if os.path.lexists(os.path.join(top, path)):
                to_hash.append((path, f[7].decode(), ""))
            else:
                dirty[path] = "deleted"
    for path, mode, at_head in to_hash:
        full = os.path.join(top, path)
        now = f"{_mode(full, mode)}:{blob_id(full)}"
        if now != at_head:  # (staged, then changed back in the worktree: as HEAD has it)
            dirty[path] = now
    return top, tree, dirty


def blob_id(path: str) -> str:
    """The file's git blob id, as ``git hash-object --no-filters`` computes it (a link:
    its target), without a process; ``deleted`` if it is gone meanwhile."""
    try:
        data = (os.readlink(path).encode("utf-8", "surrogateescape") if os.path.islink(path)
                else Path(path).read_bytes())
    except OSError:
        return "deleted"
    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


def _mode(path: str, fallback: str) -> str:
    """A worktree file's mode as git writes it (an exec bit flipped is a change)."""
    try:
        st = os.lstat(path)
    except OSError:
        return fallback
    if stat.S_ISLNK(st.st_mode):
        return "120000"
    return "100755" if st.st_mode & 0o111 else "100644"


#: A tracked symlink in ``git ls-files -s`` (``<mode> <blob> <stage>\t<path>``).
_LINK_MODE = b"120000"


def untracked_inputs(cwd: str, globs: Sequence[str]) -> dict[str, str]:
    """The files under ``cwd`` matched by ``globs`` (``**`` crosses directories) that
    the tree does not cover: untracked ones (ignored ones too), and tracked symlinks
    (the tree has a link's target path, git's view of it, but not what it points at):
    path from ``cwd`` -> ``mode:sha256``, for a link ``120000:<sha256 of its target
    path>:<sha256 of what it points at>`` (``dangling`` when that is missing)."""
    if not globs:
        return {}
    specs = [f":(glob){g}" for g in globs]
    raw = _git(cwd, "ls-files", "-z", "--others", "--", *specs)
    rels = [rel for rel in raw.split(b"\0") if rel]
    staged = _git(cwd, "ls-files", "-z", "-s", "--", *specs)
    for rec in staged.split(b"\0"):
        meta, tab, rel = rec.partition(b"\t")
        if tab and meta.startswith(_LINK_MODE + b" "):
            rels.append(rel)
    out: dict[str, str] = {}
    for rel in rels:
        path = os.fsdecode(rel)
        full = os.path.join(cwd, path)
        try:
            if os.path.islink(full):
                out[path] = _link_input(path, full)
                continue
            data = Path(full).read_bytes()
        except OSError:
            continue  # gone meanwhile
        out[path] = f"{_mode(full, '100644')}:{hashlib.sha256(data).hexdigest()}"
    return out


def _link_input(path: str, full: str) -> str:
    """A symlink named by ``inputs:``: its target path and the content it points at.
    One that points at a directory cannot be hashed here: :class:`NoKey` (the todo
    runs uncached, and `why` says to name the files under it)."""
    target = hashlib.sha256(os.readlink(full).encode("utf-8", "surrogateescape")).hexdigest()
    if os.path.isdir(full):
        raise NoKey(f"inputs: names {path}, a symlink to a directory: name the files "
                    f"under it instead (e.g. {path}/**, outside the link)")
    try:
        content = hashlib.sha256(Path(full).read_bytes()).hexdigest()
    except FileNotFoundError:
        content = "dangling"
    return f"120000:{target}:{content}"


#: top -> (its index's stat, its tracked symlinks): read again only when the index changed.
_LINKS: dict[str, tuple[tuple[int, int, int], list[str]]] = {}


def _tracked_links(top: str) -> list[str]:
    index = os.path.join(top, ".git", "index")
    try:
        st = os.stat(index)
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        sig = (0, 0, 0)
    got = _LINKS.get(top)
    if got is not None and got[0] == sig and sig != (0, 0, 0):
        return got[1]
    found = git_index.links(top)
    if found is None:  # an index not read here: git's list
        raw = _git(top, "ls-files", "-z", "-s")
        found = [os.fsdecode(rel) for meta, tab, rel in
                 (rec.partition(b"\t") for rec in raw.split(b"\0"))
                 if tab and meta.startswith(_LINK_MODE + b" ")]
    if len(_LINKS) > 10_000:
        _LINKS.clear()
    _LINKS[top] = (sig, found)
    return found


def outside_links(top: str) -> dict[str, str]:
    """The tracked symlinks of the checkout at ``top`` that lead outside it (after every
    link on the way): path from ``top`` -> ``120000:<sha256 of its target path>:<sha256
    of the content it leads to>`` (``dangling`` when nothing is there). The tree has a
    link's target path, not what is out there, so without this a file changed outside
    the checkout would hit the cache. One that leads to a directory, or to a file that
    cannot be read: :class:`NoKey` (the todo runs uncached; `coord why` says which)."""
    out: dict[str, str] = {}
    links = _tracked_links(top)
    if not links:
        return out
    real_top = os.path.realpath(top)
    for path in links:
        full = os.path.join(top, path)
        if not os.path.islink(full):
            continue  # replaced by a file: the dirty part has it
        real = os.path.realpath(full)
        if real == real_top or real.startswith(real_top + os.sep):
            continue  # inside the checkout: the tree and the dirty part cover it
        target = hashlib.sha256(os.readlink(full).encode("utf-8", "surrogateescape")
                                ).hexdigest()
        if os.path.isdir(real):
            raise NoKey(f"{path} is a tracked symlink to a directory outside the checkout "
                        f"({real}): what it holds cannot be part of the key, so the todo "
                        "runs uncached (point the link inside the checkout, or drop cache:)")
        try:
            content = hashlib.sha256(Path(real).read_bytes()).hexdigest()
        except FileNotFoundError:
            content = "dangling"
        except OSError as exc:
            raise NoKey(f"{path} is a tracked symlink to {real}, outside the checkout, "
                        f"which cannot be read ({exc.strerror}): the todo runs "
                        "uncached") from None
        out[path] = f"120000:{target}:{content}"
    return out


def env_hashes(names: Sequence[str], env: Mapping[str, str], salt: str) -> dict[str, str]:
    """Each name -> a salted hash of its value in ``env`` (``unset`` when absent)."""
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        value = env.get(name)
        if value is None:
            out[name] = "unset"
        else:
            h = hashlib.sha256(f"{salt}\0{name}\0{value}".encode("utf-8", "surrogateescape"))
            out[name] = h.hexdigest()[:32]
    return out


def probe_text(output: str, exit_code: int | None) -> str:
    """What a probe's run adds to the key: its output (cut to :data:`PROBE_CHARS`, with a
    digest of the rest) and a non-zero exit code."""
    text = output if len(output) <= PROBE_CHARS else (
        output[:PROBE_CHARS] + f"\n[... sha256 {_digest(output)}]")
    return text if exit_code == 0 else f"{text}\n[exit {exit_code}]"


def compute(*, cwd: str, command: str, env: Mapping[str, str], env_names: Sequence[str],
            inputs: Sequence[str], probes: Sequence[str], upstream: Mapping[str, str],
            salt: str, run_probe: Callable[[str], str]) -> KeyParts:
    """A todo's key parts (see the module docstring). ``env``: the environment its
    command gets (the worker's with the todo's ``env:`` on top); ``env_names``: those
    whose values count; ``run_probe(command)``: a probe's :func:`probe_text`, raising
    :class:`NoKey` when it cannot say."""
    top, tree, dirty = checkout_state(cwd)
    return KeyParts(
        tree=tree, dirty=dirty, inputs={**outside_links(top), **untracked_inputs(cwd, inputs)},
        command=command,
        cwd=cwd, env=env_hashes(env_names, env, salt),
        probes={p: run_probe(p) for p in probes}, upstream=dict(upstream),
    )


# -- how two keys differ --------------------------------------------------------------

#: The parts, in the order `coord why` names them.
PARTS = ("paths", "inputs", "env", "command", "cwd", "probes", "upstream")


def differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Which parts differ (cheap: no git), to pick the nearest of several entries."""
    out = []
    if old.get("tree") != new.get("tree") or _paths_of(old, "dirty") != _paths_of(new, "dirty"):
        out.append("paths")
    if _paths_of(old, "inputs") != _paths_of(new, "inputs"):
        out.append("inputs")
    for name in ("env", "command", "cwd", "probes", "upstream"):
        if old.get(name) != new.get(name):
            out.append(name)
    return out


def _paths_of(parts: Mapping[str, Any], name: str) -> tuple[object, ...]:
    return (parts.get(name) or {}, parts.get(f"{name}_more"), parts.get(f"{name}_digest"))


def tree_diff(cwd: str, old: str, new: str) -> dict[str, tuple[str, str]] | None:
    """Path -> (old, new) ``mode:blob`` (or ``deleted``) of the files two trees differ
    in; None when the old tree is not in this repository (gc'd, another clone)."""
    try:
        raw = _git(cwd, "diff-tree", "-r", "-z", "--no-renames", old, new)
    except NoKey:
        return None
    out: dict[str, tuple[str, str]] = {}
    fields = raw.split(b"\0")
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i], fields[i + 1]
        if not meta.startswith(b":"):
            continue
        m_old, m_new, h_old, h_new = meta[1:].decode().split(" ")[:4]
        out[os.fsdecode(path)] = (
            "deleted" if m_old == "000000" else f"{m_old}:{h_old}",
            "deleted" if m_new == "000000" else f"{m_new}:{h_new}")
    return out


def changed(old: Mapping[str, Any], new: Mapping[str, Any], cwd: str) -> dict[str, Any]:
    """The parts of ``new`` that differ from ``old`` (both :meth:`KeyParts.to_json`), as
    `coord why` shows them: ``paths`` (files whose content differs, committed or not),
    ``tree`` ([old, new] when HEAD's tree moved), ``inputs``, ``env`` (names),
    ``command``/``cwd`` ([old, new]), ``probes`` ([{probe, old, new}]), ``upstream``
    (todo ids). Parts that are the same are left out."""
    out: dict[str, Any] = {}
    o_dirty, n_dirty = old.get("dirty") or {}, new.get("dirty") or {}
    paths: set[str] = set()
    if old.get("tree") != new.get("tree"):
        out["tree"] = [old.get("tree"), new.get("tree")]
        diff = (tree_diff(cwd, old["tree"], new["tree"])
                if old.get("tree") and new.get("tree") else None)
        if diff is None:
            out["paths_unknown"] = True  # which files the commits changed is not known here
            diff = {}
    else:
        diff = {}
    for p in set(diff) | set(o_dirty) | set(n_dirty):
        same_tree = ("tree", "tree")
        o_tree, n_tree = diff.get(p, same_tree)
        if o_dirty.get(p, o_tree) != n_dirty.get(p, n_tree):
            paths.add(p)
    if (old.get("dirty_digest") or new.get("dirty_digest")) and \
            old.get("dirty_digest") != new.get("dirty_digest"):
        out["paths_more"] = True  # more files differ than an entry lists
    if paths:
        out["paths"] = sorted(paths)
    for name in ("inputs", "env"):
        keys = _differing(old.get(name) or {}, new.get(name) or {})
        if keys:
            out[name] = keys
    for name in ("command", "cwd"):
        if old.get(name) != new.get(name):
            out[name] = [old.get(name), new.get(name)]
    o_pr, n_pr = old.get("probes") or {}, new.get("probes") or {}
    probes = [{"probe": p, "old": o_pr.get(p), "new": n_pr.get(p)}
              for p in sorted(set(o_pr) | set(n_pr)) if o_pr.get(p) != n_pr.get(p)]
    if probes:
        out["probes"] = probes
    up = _differing(old.get("upstream") or {}, new.get("upstream") or {})
    if up:
        out["upstream"] = up
    return out


def _differing(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    """The keys, in order, whose values differ between ``old`` and ``new`` (one side
    lacking a key is a difference)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

