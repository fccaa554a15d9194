"""Live sweep state on catalog reads, and the local marker that says when to look.

The catalog file holds a todo's status as the last sync wrote it; while a sweep runs,
the truth (a todo ``running``) is in Redis (the team's, or the catalog's embedded
server). Reads show it without writing the file on every read:

- A sweep started from a catalog leaves a *marker* beside it, one small file per
  sweep in ``.<catalog name>.coord.sweeps/`` (:func:`mark`): which Redis it runs on
  (:func:`where`, a digest: never the URL, which may hold a password), its plan and
  todos. Its sync takes it away (:func:`unmark`). A command with no marker (the usual
  case) pays one ``stat`` here and asks Redis nothing.
- A command that finds markers of its Redis reads those sweeps
  (``coordination.sweeps.writeback.live.catch_up``): an ended sweep nobody synced is synced
  (the usual audited edit under the catalog's lock), a live one's running todos are
  handed to :func:`set_overlay`, and every read of the catalog in this process
  (:meth:`CatalogStore.load <coordination.catalog.file.store.CatalogStore.load>`,
  :func:`coordination.catalog.reads.cached.catalog_data`) shows them ``in_progress``
  (:func:`overlaid`, :func:`overlaid_data`). Edits never see the overlay: they read
  the file.

A marker is a hint: a lost one (the directory is not writable) only means reads show
the file's status until the sweep is synced as before (`sweep watch`, `sweep sync`);
a stale one (its sweep expired) is removed by the next command that looks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordination.catalog.file.beside import Beside
from coordination.settings_core import read_core

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

#: An instance of a template: ``TODO-010[api]`` (coordination.catalog.selection.templates).
_INSTANCE = re.compile(r"^(.+)\[([^\]]+)\]$")
#: The status a running todo is shown with.
LIVE_STATUS = "in_progress"

_LOCK = threading.Lock()
_OVERLAY: dict[str, dict[str, str]] = {}  # resolved catalog path -> todo -> status


def _target(catalog: Path) -> Path:
    return Path(os.path.realpath(catalog))


def marker_dir(catalog: Path) -> Path:
    """``.<name>.coord.sweeps/`` beside the real catalog file."""
    return Beside.of(catalog).sweep_markers.path


def where(redis_url: str | None, namespace: str) -> str:
    """Which Redis a sweep runs on, as a marker records it: ``embedded:<namespace>``,
    else a digest of the URL and namespace (the URL may carry a password)."""
    if redis_url is None:
        return f"embedded:{namespace}"
    return "redis:" + hashlib.sha256(f"{redis_url}\0{namespace}".encode()).hexdigest()[:16]


def _name_ok(sweep_id: str) -> bool:
    return bool(sweep_id) and "/" not in sweep_id and not sweep_id.startswith(".")


def mark(catalog: Path, sweep_id: str, *, at: str, plan: str | None,
         todos: list[str], waiter: Mapping[str, object] | None = None) -> bool:
    """Leave the marker of a sweep just started from ``catalog``; False when it could
    not be written (reads then show the file's status until the sweep is synced)."""
    if not _name_ok(sweep_id):
        return False
    body = json.dumps({"where": at, "plan": plan, "todos": todos,
                       **({"waiter": dict(waiter)} if waiter else {})})
    try:
        Beside.of(catalog).sweep_markers.write(sweep_id, body.encode("utf-8"))
    except OSError:
        return False
    return True


def wait_mark(catalog: Path, sweep_id: str, waiter: Mapping[str, object] | None) -> None:
    """Note in a sweep's marker the process that waits for it and will sync it when
    it ends (`plan sweep --wait`, `sweep watch`): a read leaves that sync to it (None:
    nobody waits any more)."""
    data = marked(catalog).get(sweep_id)
    if data is None:
        return
    mark(catalog, sweep_id, at=str(data.get("where")), plan=data.get("plan"),
         todos=list(data["todos"]), waiter=waiter)


def unmark(catalog: Path, sweep_id: str) -> None:
    """Take a sweep's marker away (it is synced, or gone); nothing if there is none."""
    if not _name_ok(sweep_id):
        return
    with contextlib.suppress(OSError):
        Beside.of(catalog).sweep_markers.record(sweep_id).remove()


def marked(catalog: Path) -> dict[str, dict[str, Any]]:
    """Sweep id -> its marker (``where``, ``plan``, ``todos``); {} (one failed
    ``scandir``) when no sweep of this catalog waits to be synced."""
    markers = Beside.of(catalog).sweep_markers
    try:
        names = markers.names()
    except OSError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            data = markers.record(name).read_json()
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("todos"), list):
            out[name] = data
    return out


def of_this_redis(catalog: Path) -> dict[str, dict[str, Any]]:
    """The markers of sweeps on the Redis this process uses (where the environment
    says it plainly; else every marker, for the full settings to judge)."""
    marks = marked(catalog)
    if not marks:
        return marks
    core = read_core()
    if core is None:
        return marks
    here = where(core.redis_url, core.namespace)
    return {sid: m for sid, m in marks.items() if m.get("where") == here}


def set_overlay(catalog: Path, statuses: Mapping[str, str]) -> None:
    """The live statuses (todo -> status) reads of ``catalog`` in this process show
    over the file's; empty: none."""
    key = str(_target(catalog))
    with _LOCK:
        if statuses:
            _OVERLAY[key] = dict(statuses)
        else:
            _OVERLAY.pop(key, None)


def overlay_set() -> bool:
    """Was any overlay set in this process (the cheap test before :func:`overlay`)?"""
    return bool(_OVERLAY)


def overlay(catalog: Path) -> dict[str, str]:
    """What :func:`set_overlay` gave for ``catalog`` ({}: nothing live)."""
    if not _OVERLAY:
        return {}
    with _LOCK:
        return dict(_OVERLAY.get(str(_target(catalog)), {}))


def _by_template(statuses: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Template -> repo -> live status, of the instance ids (``TODO-010[api]``)."""
    out: dict[str, dict[str, str]] = {}
    for tid, st in statuses.items():
        m = _INSTANCE.match(tid)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = st
    return out


def overlaid(cat: Catalog, statuses: Mapping[str, str]) -> Catalog:
    """``cat`` with the todos of ``statuses`` at their live status, and a template's
    running instances in its ``instances`` (a copy: the store's cached catalog is
    shared)."""
    if not statuses:
        return cat
    todos = cat.coordination.todos
    of_templates = _by_template(statuses)
    if not any(t.id in statuses or t.id in of_templates for t in todos):
        return cat
    # lazy: `coord --help` loads this module, not the models (loaded with the catalog)
    from coordination.catalog.models import TodoStatus

    def live_todo(t: Any) -> Any:
        if t.id in statuses:
            return t.model_copy(update={"status": TodoStatus(statuses[t.id])})
        inst = of_templates[t.id]
        return t.model_copy(update={"instances": {
            **(t.instances or {}), **{r: TodoStatus(st) for r, st in inst.items()}}})

    new = [live_todo(t) if t.id in statuses or t.id in of_templates else t for t in todos]
    co = cat.coordination.model_copy(update={"todos": new})
    out = cat.model_copy(update={"coordination": co})
    out._todos = None  # the copy's lookup by id is built again, over its own todos
    return out


def overlaid_data(data: Any, statuses: Mapping[str, str]) -> Any:
    """The JSON data of a catalog (:mod:`coordination.catalog.reads.cached`) with the todos
    of ``statuses`` at their live status (a copy of what changes)."""
    if not statuses:
        return data
    co = data.get("coordination") or {}
    todos = co.get("todos") or []
    of_templates = _by_template(statuses)
    if not any(t.get("id") in statuses or t.get("id") in of_templates for t in todos):
        return data

    def live_todo(t: Any) -> Any:
        if t["id"] in statuses:
            return {**t, "status": statuses[t["id"]]}
        return {**t, "instances": {**(t.get("instances") or {}), **of_templates[t["id"]]}}

    new = [live_todo(t) if t.get("id") in statuses or t.get("id") in of_templates else t
           for t in todos]
    return {**data, "coordination": {**co, "todos": new}}
