"""Shared sweeps helpers for unit tests."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import yaml

from coordination.runtime.context import Runtime
from coordination.runtime.leases import Lease
from coordination.sweeps import SweepService
from coordination.sweeps.supervision import supervise_once


PLAN = "PLAN-001"


def write_catalog(
    root: Path,
    todos: list[dict[str, Any]],
    *,
    repos: tuple[str, ...] = ("api", "web", "jobs"),
    issues: list[dict[str, Any]] | None = None,
    checkouts: bool = True,
    plan: str = PLAN,
) -> Path:
    """A catalog with one plan made of ``todos`` (plan and task filled in) and checkouts."""
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for t in todos:
        item = {"task": f"do {t['id']}", "plan": plan, "timeout": 30, **t}
        items.append(item)
    doc: dict[str, Any] = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}"} for r in repos],
        "coordination": {
            "issues": issues or [],
            "plans": [{"id": plan, "title": "test plan", "status": "active", "repos": list(repos)}],
            "todos": items,
        },
    }
    path = root / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    if checkouts:
        for r in repos:
            (root / "repos" / r).mkdir(parents=True, exist_ok=True)
    return path


def with_plan(path: Path, **fields: Any) -> Path:
    """The catalog at ``path`` with its (first) plan's ``fields`` set (``waves=[...]``)."""
    doc = yaml.safe_load(path.read_text())
    doc["coordination"]["plans"][0].update(fields)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def counting(counter_dir: Path, tid: str, then: str = "true") -> str:
    """A command that appends a line to ``counter_dir/tid`` each time it runs, then ``then``."""
    return f"echo run >> {shlex.quote(str(counter_dir / tid))} && {then}"


def runs(counter_dir: Path, tid: str) -> int:
    f = counter_dir / tid
    return len(f.read_text().splitlines()) if f.exists() else 0


def fresh_runtime() -> Runtime:
    """A runtime on an empty in-process stand-in (fakeredis), every process-wide cache
    dropped. (The product's embedded mode runs a real server: see test_embedded_mode.)"""
    from coordination.connection.client import reset_embedded, stand_in
    from coordination.runtime.context import get_runtime
    from coordination.settings import get_settings

    reset_embedded()
    get_runtime.cache_clear()
    get_settings.cache_clear()
    return Runtime.create(client=stand_in())


def stub_dispatching(runtime: Runtime) -> Runtime:
    """``runtime``, now dispatching to :class:`StubApp` (messages recorded, none sent)."""
    from coordination.dispatch import CeleryDispatcher

    runtime.dispatcher = CeleryDispatcher(StubApp(), runtime.keys)
    return runtime


@contextmanager
def dropped_after(runtime: Runtime) -> Iterator[Runtime]:
    """``runtime``; the process-wide runtime, embedded state and settings dropped after."""
    from coordination.connection.client import reset_embedded
    from coordination.runtime.context import get_runtime
    from coordination.settings import get_settings

    try:
        yield runtime
    finally:
        reset_embedded()
        get_runtime.cache_clear()
        get_settings.cache_clear()


def stub_runtime() -> AbstractContextManager[Runtime]:
    """:func:`fresh_runtime` dispatching to :class:`StubApp`; the process-wide runtime,
    embedded state and settings dropped after."""
    return dropped_after(stub_dispatching(fresh_runtime()))


def repos_of(svc: SweepService, plan: str = PLAN) -> dict[str, int]:
    spec = svc.plan_spec(plan, strategy="levels", ignore_blockers=True)
    return {t.repo: spec.concurrency.get(t.repo, 1) for t in spec.todos.values()}


def run_sweep(rt: Runtime, catalog: Path, *, strategy: str = "levels",
              timeout: float = 60) -> tuple[SweepService, str, dict[str, Any]]:
    from workers.embedded import embedded_workers

    svc = SweepService(rt, catalog)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy=strategy, ignore_blockers=True)
        st = svc.wait(sid, timeout=timeout)
    return svc, sid, st


class StubApp:
    """Records what would have been sent to the broker."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.revoked: list[str] = []
        self._lock = threading.Lock()
        app = self

        class _Control:
            def revoke(self, ids: list[str], **_: Any) -> None:
                app.revoked.extend(ids)

        self.control = _Control()

    def signature(self, d: dict[str, Any]) -> Any:
        app = self

        class _Sig:
            def apply_async(self, **_: Any) -> None:
                with app._lock:
                    app.sent.append(d)

        return _Sig()

    def send_task(self, name: str, **kw: Any) -> None:
        with self._lock:
            self.sent.append({"task": name, **kw})

    def todos_sent(self) -> list[str]:
        """Todo ids of every run_todo signature sent, nested canvases included."""
        out: list[str] = []

        def walk(x: Any) -> None:
            if isinstance(x, dict):
                if x.get("task") == "coord.run_todo":
                    out.append(x["kwargs"]["todo_id"])
                for v in x.values():
                    walk(v)
            elif isinstance(x, (list, tuple)):
                for v in x:
                    walk(v)

        walk(self.sent)
        return out


def chain_catalog(tmp_path: Path) -> Path:
    """TODO-001 -> TODO-002 -> TODO-003, and TODO-004 on its own."""
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": "true"},
    ])


def events(rt: Runtime, sid: str, kind: str) -> list[Any]:
    return [e for e in rt.events.read(sweep_id=sid) if e.kind == kind]


def run_as_worker(rt: Runtime, sid: str, tid: str, repo: str, *,
                  preds: Sequence[str] = ()) -> Lease:
    """Start a todo as a worker does (``Transitions.start``: its lease and its claim
    in one step), without running anything; its lease."""
    st = rt.transitions.start(sid, tid, repo=repo, concurrency=1, preds=list(preds),
                              worker="w1", now=time.time())
    assert st.verdict == "started" and st.lease is not None, st
    return st.lease


def gate_then_run(tmp_path: Path, gate: dict[str, Any]) -> Path:
    """A catalog of one repo, api: the gate TODO-001 (``gate``), then TODO-002 (true)."""
    return write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "gate": gate},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
    ], repos=("api",))


@contextmanager
def at_the_gate(rt: Runtime, cat: Path, timeout: float = 20.0, *,
                gates: Sequence[str] = ("TODO-001",)) -> Iterator[tuple[SweepService, str]]:
    """In-process workers running the plan's sweep of ``cat`` until each of its ``gates``
    awaits approval: the service and the sweep's id (the workers stop after)."""
    from workers.embedded import embedded_workers

    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        end = time.monotonic() + timeout
        while any(svc.status(sid)["todos"][g]["status"] != "awaiting_approval" for g in gates):
            assert time.monotonic() < end, f"{', '.join(gates)} not awaiting approval"
            time.sleep(0.02)
        yield svc, sid


def start(rt: Runtime, cat: Path, strategy: str = "levels") -> str:
    return SweepService(rt, cat).start(PLAN, strategy=strategy, ignore_blockers=True)


def status(rt: Runtime, sid: str, tid: str) -> str:
    return str((rt.checkpoints.get(sid, tid) or {}).get("status"))


def unlock(rt: Runtime, sid: str) -> None:
    """Let the next supervise_once run now (its lock is only a message saver)."""
    rt.redis.delete(rt.keys.supervisor_lock(sid))
