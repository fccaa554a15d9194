"""The freshness anchor of a change: which sweep of its plan is the newest, kept where a
Redis writer cannot write (TUF's answer to the rollback attack: a version checked
against state the attacker cannot write).

Every record of a change lives in Redis (its sweep pointer, its verify records), and a
Redis writer without ``COORD_SIGNING_KEY`` cannot forge them, but can *put back* an
earlier genuine one: the pointer and verify record of a good sweep, after a later sweep
failed a check or had its gate rejected. Each record is sealed; what is missing is
which sweep is the newest. Each time a sweep of a change plan starts or resumes
(:func:`coordination.sweeps.steering.note_change`, after the pointer is written), the
starter records an *anchor*: the plan's pointer as it wrote it (sweep, run, where each
verify todo last started) with a sequence number one above the highest it can read,
sealed (kind ``anchor``, about the namespace and the plan) with the signing key, in two
places:

- beside the catalog: ``.coord.anchors/<namespace>/<PLAN>.json`` in the catalog's
  directory (the namespace's state is what it guards: catalogs sharing a namespace share
  its changes), written atomically under an ``flock``;
- on each repo's remote of the change, as the ref ``refs/coord/changes/<namespace>/<PLAN>``
  (a blob holding the same record), so a lander on another machine finds it.

The landing rule (:mod:`coordination.change.rule`) reads the newest anchor it can reach
(the file; the remotes too when it lands, dry-runs or runs the train), checks its seal,
and refuses, naming the replay, when the pointer Redis holds is not the one it anchors.
A lander that learned a newer anchor from a remote writes it beside its catalog, so its
web view and ``change status`` know it without asking the remotes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from coordination.catalog.file.beside import BesideDirectory, BesideFile
from coordination.change import git as g
from coordination.runtime.change_records import SweepPointer
from coordination.runtime.context import Runtime
from coordination.trust import evidence
from coordination.trust.evidence import EvidenceKind
from coordination.trust.signing import Policy

log = logging.getLogger("coord.change")

T = TypeVar("T")
R = TypeVar("R")

#: The evidence kind an anchor is sealed as.
KIND = EvidenceKind.anchor


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def about(namespace: str, plan: str) -> dict[str, str]:
    """What an anchor is about (from where the reader found it, never stored)."""
    return {"namespace": namespace, "plan": plan}


def ref_name(namespace: str, plan: str) -> str:
    return f"refs/coord/changes/{_safe(namespace)}/{_safe(plan)}"


def local_path(base_dir: str | Path, namespace: str, plan: str) -> Path:
    return _local(base_dir, namespace, plan, ".json").path


def _local(base_dir: str | Path, namespace: str, plan: str, suffix: str) -> BesideFile:
    """The plan's anchor (``.json``) or its lock (``.lock``) beside the catalog."""
    return BesideDirectory(Path(base_dir)).anchors.sub(_safe(namespace)).record(
        _safe(plan) + suffix)


@dataclass(frozen=True)
class Anchor:
    """An anchor as read and checked: the pointer it anchors, its sequence, where."""

    seq: int
    sweep: str | None
    run: int | None
    verify: dict[str, list[Any]]
    where: str
    record: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {"seq": self.seq, "sweep": self.sweep, "run": self.run, "where": self.where}


def _load(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return {"unreadable": text[:80]}
    return doc if isinstance(doc, dict) else {"unreadable": text[:80]}


def _read_text(base_dir: str | Path | None, namespace: str, plan: str) -> str | None:
    if not base_dir:
        return None
    try:
        return _local(base_dir, namespace, plan, ".json").read_str()
    except (OSError, UnicodeDecodeError):
        return None


def read_local(base_dir: str | Path | None, namespace: str, plan: str
               ) -> tuple[dict[str, Any] | None, str]:
    if not base_dir:
        return None, ""
    return (_load(_read_text(base_dir, namespace, plan)),
            str(local_path(base_dir, namespace, plan)))


def _is_clone(checkout: str) -> bool:
    """A checkout that is a clone itself (git run in a directory that is none would
    find a repository above it, and push the anchor to that one's remote)."""
    return (Path(checkout) / ".git").exists()


def blob_id(text: str) -> str:
    """The SHA git gives ``text`` as a blob (what :func:`advance` pushes)."""
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 (git's id)


def read_remote(checkout: str, remote: str, namespace: str, plan: str,
                known: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """The anchor on ``remote``; None: none there, or the remote could not be read.
    One ``ls-remote``; the blob is fetched (into the checkout's own copy of the ref)
    only when it is not ``known`` (the text of the anchor beside the catalog)."""
    ref = ref_name(namespace, plan)
    where = f"{ref} on remote {remote} of {checkout}"
    if not _is_clone(checkout):
        return None, where
    try:
        out = g.git(checkout, "ls-remote", g.UPLOAD_PACK, "--end-of-options", remote, ref,
                    hooks=False)
        sha = next((line.split("\t")[0] for line in out.splitlines()
                    if line.endswith(f"\t{ref}")), None)
        if sha is None:
            return None, where
        if known is not None and sha == blob_id(known):
            return _load(known), where
        g.git(checkout, "fetch", "--quiet", "--no-tags", g.UPLOAD_PACK,
              "--no-recurse-submodules", "--end-of-options", remote, f"+{ref}:{ref}",
              hooks=False)
        return _load(g.git(checkout, "cat-file", "blob", ref, hooks=False)), where
    except g.GitError:
        return None, where


def _seq(record: Mapping[str, Any]) -> int:
    try:
        return int(record.get("seq") or 0)
    except (TypeError, ValueError):
        return 0


def check(record: dict[str, Any], where: str, namespace: str, plan: str,
          policy: Policy) -> tuple[Anchor | None, str | None]:
    """The anchor ``record`` (found at ``where``) if its seal holds, else why not."""
    what = f"freshness anchor of change {plan} ({where})"
    if "unreadable" in record:
        return None, f"{what}: unreadable"
    why = evidence.refusal(KIND, about(namespace, plan), record, policy, what)
    if why:
        return None, why
    if record.get("plan") != plan:
        return None, f"{what}: of plan {record.get('plan')}"
    verify = record.get("verify")
    run = record.get("run")
    return Anchor(_seq(record), record.get("sweep") if isinstance(record.get("sweep"), str)
                  else None, int(run) if isinstance(run, int) else None,
                  dict(verify) if isinstance(verify, dict) else {}, where, record), None


def newest(base_dir: str | Path | None, repos: Mapping[str, tuple[str, str]], namespace: str,
           plan: str, policy: Policy, *, remotes: bool) -> tuple[Anchor | None, list[str]]:
    """The newest anchor of ``plan`` that can be reached and whose seal holds (the file
    beside the catalog; with ``remotes``, each repo's remote: ``repos`` is repo ->
    (checkout, remote)), and why each other one found was refused. A newer anchor
    learned from a remote is written beside the catalog."""
    found: list[tuple[dict[str, Any], str]] = []
    text = _read_text(base_dir, namespace, plan)
    rec, where = read_local(base_dir, namespace, plan)
    if rec is not None:
        found.append((rec, where))
    if remotes:
        for rec, where in _each(lambda cr: read_remote(cr[0], cr[1], namespace, plan, text),
                                [repos[r] for r in sorted(repos)]):
            if rec is not None:
                found.append((rec, where))
    best: Anchor | None = None
    refused: list[str] = []
    for rec, where in found:
        a, why = check(rec, where, namespace, plan, policy)
        if why:
            refused.append(why)
        elif a is not None and (best is None or a.seq > best.seq):
            best = a
    if best is not None and base_dir and remotes:
        local, _ = read_local(base_dir, namespace, plan)
        if local is None or _seq(local) < best.seq:
            with contextlib.suppress(OSError):
                _write_local(base_dir, namespace, plan, best.record)
    return best, refused


def replayed(plan: str, pointer: SweepPointer | Mapping[str, Any] | None, a: Anchor
             ) -> str | None:
    """Why the pointer Redis holds (None: none; a mapping: its document) is not the one
    the newest anchor ``a`` anchors (it was put back, or a later sweep's start did not
    reach Redis), else None."""
    if not isinstance(pointer, SweepPointer):
        pointer = SweepPointer.of(dict(pointer or {}))
    said_sweep, said_run = pointer.sweep, pointer.run
    tail = (f" (anchor: {a.where}, seq {a.seq}): an earlier sweep's pointer or records were "
            "put back in Redis by a writer without the signing key, or the newest sweep's "
            f"start did not reach Redis; sweep the plan again (coord plan sweep {plan})")
    if (said_sweep, _int(said_run)) != (a.sweep, a.run):
        held = (f"sweep {said_sweep} (run {said_run})" if said_sweep
                else "no sweep of it")
        return (f"replayed: Redis holds {held} but the newest sweep of {plan} is "
                f"{a.sweep} (run {a.run})" + tail)
    runs = pointer.verify
    for todo in sorted({*runs, *a.verify}):
        held_at, anchored = _pair(runs.get(todo)), _pair(a.verify.get(todo))
        if held_at != anchored:
            return (f"replayed: Redis says {todo} last started in "
                    + (f"run {held_at[1]} of sweep {held_at[0]}" if held_at else "no run")
                    + f" but the newest record of {plan} says "
                    + (f"run {anchored[1]} of sweep {anchored[0]}" if anchored else "none")
                    + tail)
    return None


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _pair(v: Any) -> tuple[str, int | None] | None:
    if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
        return v[0], _int(v[1])
    return None


@contextlib.contextmanager
def locked(base_dir: str | Path | None, namespace: str, plan: str) -> Iterator[None]:
    """An exclusive ``flock`` on the plan's anchor (this machine's starters: a pointer
    and its anchor are written in the same order by all of them)."""
    if not base_dir:
        yield
        return
    try:
        fd = _local(base_dir, namespace, plan, ".lock").open_lock()
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _write_local(base_dir: str | Path, namespace: str, plan: str,
                 record: Mapping[str, Any]) -> None:
    anchors = BesideDirectory(Path(base_dir)).anchors.sub(_safe(namespace))
    anchors.write(_safe(plan) + ".json",
                  json.dumps(record, sort_keys=True).encode())  # (as pushed: same blob id)


def base_of(a: Anchor | None) -> SweepPointer | None:
    """The pointer a new one builds on: the newest anchor's (None: none, build on
    Redis's)."""
    if a is None:
        return None
    return SweepPointer.of({"sweep": a.sweep, "run": a.run, "verify": dict(a.verify)})


def advance(base_dir: str | Path | None, repos: Mapping[str, tuple[str, str]], namespace: str,
            plan: str, pointer: SweepPointer, keys: tuple[str, ...] | list[str],
            after: Anchor | None) -> dict[str, Any]:
    """Anchor ``pointer`` (the plan's sweep pointer as just written) as the newest: one
    above ``after`` (the newest anchor found beside the catalog and on the remotes,
    :func:`newest`), sealed with ``keys[0]``, written beside the catalog and pushed to
    each remote (replacing whatever is there, a forged one included). A remote that
    refuses it is logged (a lander on this machine still has the file). The record."""
    body = {"plan": plan, "seq": (after.seq if after else 0) + 1, "sweep": pointer.sweep,
            "run": _int(pointer.run), "verify": dict(pointer.verify), "at": time.time()}
    record = evidence.seal(KIND, about(namespace, plan), body, keys)
    if base_dir:
        try:
            _write_local(base_dir, namespace, plan, record)
        except OSError as exc:
            log.warning("change %s: its freshness anchor could not be written beside the "
                        "catalog: %s", plan, exc)
    text = json.dumps(record, sort_keys=True)
    ref = ref_name(namespace, plan)

    def push(repo: str) -> None:
        checkout, remote = repos[repo]
        if not _is_clone(checkout):
            return
        try:
            blob = g.git(checkout, "hash-object", "-w", "--stdin", input=text, hooks=False)
            g.git(checkout, "push", "--quiet", "--porcelain", "--no-verify", "--force",
                  "--receive-pack=git-receive-pack", "--recurse-submodules=no",
                  "--end-of-options", remote, f"{blob}:{ref}", hooks=False)
        except g.GitError as exc:
            log.warning("change %s: its freshness anchor was not pushed to %s of %s: %s",
                        plan, remote, repo, exc)

    _each(push, sorted(repos))
    return record


#: Remotes asked at once (a change of hundreds of repos: a sweep's start and a landing
#: would otherwise wait for one ``ls-remote`` or push after another).
AT_ONCE = 8


def _each(fn: Callable[[T], R], items: list[T]) -> list[R]:
    """``fn`` of each of ``items``, in order, up to :data:`AT_ONCE` at a time."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(AT_ONCE, len(items))) as pool:
        return list(pool.map(fn, items))


def on_catalog_url(plan: str, repos: Mapping[str, tuple[str, str]],
                   urls: Mapping[str, str | None]) -> dict[str, tuple[str, str]]:
    """``repos`` (repo -> (checkout, remote)) without those whose remote is not the URL
    the catalog names (``urls``: repo -> its ``url:``; :func:`g.remote_refusal`): no
    anchor is read from or pushed to another URL (logged)."""
    out: dict[str, tuple[str, str]] = {}
    for repo, (checkout, remote) in repos.items():
        why = (g.remote_refusal(repo, checkout, remote, urls.get(repo), checkout)
               if _is_clone(checkout) else None)
        if why:
            log.warning("change %s: its freshness anchor is not read from nor pushed to %s "
                        "of %s: %s", plan, remote, repo, why)
            continue
        out[repo] = (checkout, remote)
    return out


def note(rt: Runtime, plan: str, sweep_id: str, run: int, verify: list[str], *, last: bool,
         base_dir: str | Path | None, repos: Mapping[str, tuple[str, str]],
         urls: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """A sweep (run ``run``) of ``plan``'s todos starts, running its verify todos
    ``verify`` (:meth:`ChangeStore.note_sweep`): the pointer written, built on the
    newest anchor's (never on one put back in Redis), then anchored one above it, under
    this machine's lock on the anchor. The pointer written. ``urls``: each repo's
    catalog ``url:`` (:func:`on_catalog_url`)."""
    ns = rt.keys.namespace
    repos = on_catalog_url(plan, repos, urls or {})
    with locked(base_dir, ns, plan):
        after, _ = newest(base_dir, repos, ns, plan, evidence.policy_of(rt.settings),
                          remotes=True)
        doc = rt.changes.note_sweep(plan, sweep_id, run, verify, last=last,
                                    base=base_of(after))
        advance(base_dir, repos, ns, plan, doc, tuple(rt.settings.signing_keys), after)
    return doc.document
