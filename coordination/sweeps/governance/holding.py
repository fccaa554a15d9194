"""Who holds what: ``coord resources``.

Each repo's lease slots (``concurrency``) and each shared resource's slots
(``capacity``): who holds each (sweep, todo, worker, since), how much of the
capacity is used, and the line of todos waiting, in the order they will be
served. A slot's value is only its holder's token; the todo that holds it is
found in the checkpoints of the live sweeps (a running todo's checkpoint keeps
its token), read one command per live sweep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TypedDict

from coordination.runtime.context import Runtime
from coordination.runtime.leases import Line
from coordination.runtime.sweep_fields import Checkpoint
from coordination.status import TodoStatus
from coordination.sweeps.spec_store import load_spec


class Holder(TypedDict):
    sweep_id: str | None
    todo_id: str | None
    worker: str | None
    since: str | None  # when its todo started (ISO 8601, UTC)
    expires_in: float | None  # seconds until the slot expires unless renewed


class SlotDoc(TypedDict):
    slot: int
    holder: Holder | None


class WaiterDoc(TypedDict):
    sweep_id: str
    todo_id: str
    waiting_since: str
    last_seen: str | None


class LineDoc(TypedDict):
    name: str
    capacity: int
    used: int
    slots: list[SlotDoc]
    waiting: list[WaiterDoc]


class ResourcesDocument(TypedDict):
    """``coord resources --json``."""

    repos: list[LineDoc]
    resources: list[LineDoc]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).isoformat(timespec="seconds")


def running_by_token(rt: Runtime) -> dict[str, tuple[str, str, Checkpoint]]:
    """Token -> (sweep, todo, checkpoint) of every running todo of the live sweeps."""
    out: dict[str, tuple[str, str, Checkpoint]] = {}
    for sid in rt.checkpoints.active_sweeps():
        spec = load_spec(rt, sid)
        if spec is None:
            continue
        cps = rt.checkpoints.get_fields_all(sid, list(spec.todos),
                                            ("token", "worker", "started_at"))
        for tid, cp in cps.items():
            if cp.get("status") == TodoStatus.running and cp.get("token"):
                out[str(cp["token"])] = (sid, tid, cp)
    return out


def _line(name: str, line: Line, held: Mapping[str, tuple[str, str, Checkpoint]]) -> LineDoc:
    slots: list[SlotDoc] = []
    for s in line.slots:
        holder: Holder | None = None
        if s.token is not None:
            found = held.get(s.token)
            sid, tid = (found[0], found[1]) if found else (None, None)
            cp: Checkpoint = found[2] if found else {}
            worker = cp.get("worker")
            if worker is None:  # a token says host:pid:random
                worker = ":".join(s.token.split(":")[:2])
            started = cp.get("started_at")
            holder = {"sweep_id": sid, "todo_id": tid, "worker": str(worker),
                      "since": _iso(float(started)) if started is not None else None,
                      "expires_in": None if s.ttl_ms is None else round(s.ttl_ms / 1000, 1)}
        slots.append({"slot": s.slot, "holder": holder})
    waiting: list[WaiterDoc] = [
        {"sweep_id": w.sweep_id, "todo_id": w.todo_id, "waiting_since": _iso(w.since) or "",
         "last_seen": _iso(w.last_seen)} for w in line.waiting]
    return {"name": name, "capacity": len(line.slots),
            "used": sum(1 for s in line.slots if s.token is not None),
            "slots": slots, "waiting": waiting}


def resources(rt: Runtime, repos: Mapping[str, int], shared: Mapping[str, int]
              ) -> ResourcesDocument:
    """The slots of ``repos`` (name -> concurrency) and ``shared`` resources (name ->
    capacity), who holds them and who waits (see the module docs)."""
    repo_lines, res_lines = rt.leases.lines(dict(repos), dict(shared))
    held = running_by_token(rt) if any(
        s.token for line in (*repo_lines.values(), *res_lines.values()) for s in line.slots
    ) else {}
    return {"repos": [_line(n, repo_lines[n], held) for n in sorted(repo_lines)],
            "resources": [_line(n, res_lines[n], held) for n in sorted(res_lines)]}
