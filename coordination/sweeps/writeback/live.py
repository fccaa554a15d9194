"""A command's catch-up with the sweeps of its catalog (:mod:`coordination.catalog.reads.live`).

:func:`catch_up` runs at the start of a `coord` command (and, showing only, writing
nothing, for each read of the web view and of the MCP server's tools) when the catalog
has markers of sweeps on the Redis in use:

- an ended sweep not synced yet is synced (:meth:`SweepService.sync`: one audited
  edit under the catalog's lock, as `sweep watch` and `sweep sync` make it), so a
  distributed sweep nobody watched reaches the file at the next command. Left alone
  while a live process that waits for it (`plan sweep --wait`, `sweep watch`, the
  embedded sweep's own process) will sync it itself; a waiter on another host gets
  :data:`OTHER_HOST_GRACE` seconds;
- a live sweep's running todos are shown ``in_progress`` by every read of this
  process (:func:`coordination.catalog.reads.live.set_overlay`);
- a marker whose sweep is unknown (expired, or its start failed) or already synced is
  removed.

Embedded, a catalog whose server is not running has no live sweep: nothing is asked
(no server is started for a read).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

from coordination.catalog.reads import live
from coordination.connection.embedded_server import server_pid
from coordination.errors import OperationFailed
from coordination.runtime.context import get_runtime
from coordination.settings_core import read_core
from coordination.status import SWEEP_LIVE, TodoStatus
from coordination.sweeps.runner import ended
from coordination.sweeps.service import SweepService

log = logging.getLogger("coord.live")

#: Seconds after its end before a read syncs a sweep a process on another host waits for.
OTHER_HOST_GRACE = 60.0


def _where_now() -> str | None:
    """The marker's ``where`` of the Redis this process uses (None: unsure)."""
    core = read_core()
    if core is None:
        try:
            from coordination.settings import get_settings  # lazy: pydantic, when core defers

            s = get_settings()
        except Exception:  # noqa: BLE001 - the command itself says what is wrong
            return None
        return live.where(s.redis_url, s.namespace)
    return live.where(core.redis_url, core.namespace)


def _waited(waiter: object, finished_at: float | None, now: float) -> bool:
    """Does a live process wait for the sweep (and sync it when it sees it ended)?"""
    if not isinstance(waiter, dict) or ended(waiter) is not None:
        return False
    if waiter.get("host") == socket.gethostname():
        return True
    return finished_at is None or now - finished_at < OTHER_HOST_GRACE


def catch_up(catalog: Path, *, sync: bool = True) -> dict[str, object]:
    """Sync this catalog's ended unsynced sweeps (``sync``: a CLI command; the web
    view and MCP's read tools write nothing) and show its live sweeps' running todos
    ``in_progress`` in this process's reads; returns what it did (``synced``: sweep
    ids, ``running``: todo ids). Never raises: a Redis that cannot be reached leaves
    the file's status shown, with a note on stderr."""
    done: dict[str, object] = {"synced": [], "running": []}
    marks = live.marked(catalog)
    if not marks:
        live.set_overlay(catalog, {})
        return done
    here = _where_now()
    mine = {sid: m for sid, m in marks.items() if m.get("where") == here}
    if not mine or here is None:
        return done
    try:
        _catch_up(catalog, mine, here, done, sync)
    except Exception as exc:  # noqa: BLE001 - a read goes on with the file's status
        log.debug("catching up with live sweeps failed", exc_info=True)
        sys.stderr.write(f"note: the live state of this catalog's sweeps could not be read "
                         f"({type(exc).__name__}: {exc}); showing the catalog file's\n")
    return done


def _catch_up(catalog: Path, mine: dict[str, dict[str, object]], here: str,
              done: dict[str, object], sync: bool) -> None:
    if here.startswith("embedded:"):
        if server_pid(catalog.absolute()) is None:
            return  # no server: no sweep runs (and a read starts none)
    rt = get_runtime(catalog, reader=True)
    svc = SweepService(rt, catalog)
    mine_path = str(catalog.resolve())
    running: dict[str, str] = {}
    synced: list[str] = []
    now = time.time()
    for sid, m in sorted(mine.items(), key=lambda kv: kv[0]):
        rec = rt.checkpoints.get_sweep_fields(
            sid, ("synced_at", "catalog", "finished_at", "runner", "kind"))
        if rec is None or rec.get("synced_at") or rec.get("kind") == "run" or (
                rec.get("catalog") not in (None, mine_path)):
            live.unmark(catalog, sid)
            continue
        listed = m.get("todos")
        todos = [str(t) for t in listed] if isinstance(listed, list) else []
        if rec.get("status") in SWEEP_LIVE:
            if here.startswith("embedded:") and ended(rec.get("runner")) is not None:
                continue  # orphaned: its process is gone, nothing of it runs
            cps = rt.checkpoints.get_fields_all(sid, todos, ("status",))
            running.update({t: live.LIVE_STATUS for t, cp in cps.items()
                            if cp.get("status") == TodoStatus.running})
            continue
        finished = rec.get("finished_at")
        if not sync:
            continue
        if _waited(m.get("waiter"), float(finished) if finished else None, now) or (
                _waited(rec.get("runner"), float(finished) if finished else None, now)):
            continue
        try:
            out = svc.sync(sid)
        except OperationFailed as exc:  # its spec fails its check: said once, not written
            live.unmark(catalog, sid)
            sys.stderr.write(f"note: sweep {sid} is not synced into the catalog: "
                             f"{exc.message}\n")
            continue
        refused = out.get("refused")
        if isinstance(refused, dict) and refused:  # outcomes whose seal failed: not written
            sys.stderr.write(f"note: sweep {sid} synced, but not the outcome of "
                             + "; ".join(f"{t} ({why})" for t, why in sorted(refused.items()))
                             + "\n")
        synced.append(sid)
    live.set_overlay(catalog, running)
    done["synced"], done["running"] = synced, sorted(running)
