"""Fleet catalogs and start/finish calls as the runner makes them, for the unit tests of
the fleet's scripts (waiters, resources, breakers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coordination.runtime.context import Runtime
from coordination.runtime.leases import Lease
from coordination.runtime.transitions import Started, waiter_rank
from coordination.status import TodoStatus
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_spec
from tests.unit.support.sweeps import start, write_catalog


def fleet_catalog(tmp_path: Path, todos: list[dict[str, Any]], *,
                  breaker: dict[str, Any] | None = None,
                  resources: list[dict[str, Any]] | None = None) -> Path:
    path = write_catalog(tmp_path / "eco", todos, repos=("api", "web"))
    doc = yaml.safe_load(path.read_text())
    if breaker:
        doc["repos"][0]["breaker"] = breaker
    if resources:
        doc["resources"] = resources
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


_waited: set[str] = set()


def ask(rt: Runtime, spec: SweepSpec, tid: str, *, now: float, since: float = 0.0,
        token: str | None = None) -> Started:
    """One start call as the runner makes it (saying whether it waited before)."""
    t = spec.todos[tid]
    key = f"{spec.sweep_id}/{tid}"
    st = rt.transitions.start(
        spec.sweep_id, tid, repo=t.repo, concurrency=spec.concurrency.get(t.repo, 1),
        preds=t.preds, worker="w", now=now, token=token or f"tok-{tid}",
        resources=spec.resources_of(tid), breaker=spec.breaker(t.repo),
        rank=waiter_rank(t.rank, since, spec.sweep_id, tid), probe_for=60,
        waited=key in _waited)
    if st.verdict == "wait":
        _waited.add(key)
    return st


def finish(rt: Runtime, spec: SweepSpec, tid: str, lease: Lease, st: TodoStatus,
           now: float) -> None:
    fin = rt.transitions.finish(
        spec.sweep_id, tid, lease=lease, status=st, fields={"finished_at": now},
        event={}, now=now, breaker=spec.breaker(spec.todos[tid].repo),
        resources=spec.todos[tid].resources)
    assert fin.ok, fin


def queued_spec(rt: Runtime, cat: Path) -> SweepSpec:
    sid = start(rt, cat)
    spec = load_spec(rt, sid)
    assert spec is not None
    return spec
