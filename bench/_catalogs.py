"""The benches' catalogs and coord driven as a user drives it: flat and 4-level plans of
no-op todos over 4 repos (2 slots each), `coord worker`s for them, `coord plan sweep
--wait` as a process (:func:`cli_sweep`) and the library in this process (:class:`Coord`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _procs import (SWEEP_TIMEOUT, NAMESPACE, ROOT, Procs, Ran, coord_argv, coord_env,
                    run_process, start_workers)

REPOS = [f"repo{i}" for i in range(4)]

CONCURRENCY = 2

def flat_todos(n: int, plan: str = "PLAN-1", base: int = 100000) -> list[dict[str, Any]]:
    return [{"id": f"TODO-{base + i}", "task": f"flat {i}", "repo": REPOS[i % 4],
             "plan": plan, "run": "true"} for i in range(n)]


def level_todos(n: int, plan: str = "PLAN-2", base: int = 200000) -> list[dict[str, Any]]:
    """n todos in 4 levels: each todo of level k > 0 waits for the todo at the same
    position of level k - 1 (n/4 chains of 4)."""
    width = max(1, n // 4)
    todos = []
    for i in range(n):
        level = min(3, i // width)
        pos = (i - level * width) % width
        blocked = [f"TODO-{base + (level - 1) * width + pos}"] if level else []
        todos.append({"id": f"TODO-{base + i}", "task": f"level {i}", "repo": REPOS[i % 4],
                      "plan": plan, "run": "true", "blocked_by": blocked})
    return todos


def write_catalog(path: Path, todos: list[dict[str, Any]]) -> Path:
    """A catalog of the 4 repos (checkouts under `repos/` beside it) and these todos."""
    import yaml

    for r in REPOS:
        (path.parent / "repos" / r).mkdir(parents=True, exist_ok=True)
    plans = sorted({t["plan"] for t in todos})
    data = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "concurrency": CONCURRENCY} for r in REPOS],
        "coordination": {
            "plans": [{"id": p, "title": p, "status": "active"} for p in plans],
            "todos": todos,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def levels_of(n: int) -> list[int]:
    """Sizes of the 4-level plan's levels (the last one takes the remainder)."""
    width = max(1, n // 4)
    sizes = [0, 0, 0, 0]
    for i in range(n):
        sizes[min(3, i // width)] += 1
    return [s for s in sizes if s]


def span_of(st: dict[str, Any]) -> float | None:
    """A sweep's own created -> finished span, from its status document."""
    try:
        return (dt.datetime.fromisoformat(st["finished_at"]).timestamp()
                - dt.datetime.fromisoformat(st["created_at"]).timestamp())
    except (KeyError, TypeError, ValueError):
        return None


def start_coord_workers(procs: Procs, catalog: Path, url: str, logdir: Path) -> list[Any]:
    return start_workers(
        procs, [[*coord_argv(), "--file", str(catalog), "worker", "--repo", r, "--loglevel",
                 "WARNING"] for r in REPOS],
        [coord_env(url)] * len(REPOS), [logdir / f"coord-worker-{r}.log" for r in REPOS], ROOT)


class Coord:
    """coord's library, in this process, on a Redis URL (for the 4-level shapes)."""

    def __init__(self, url: str, catalog: Path) -> None:
        os.environ["COORD_REDIS_URL"] = url
        os.environ["COORD_NAMESPACE"] = NAMESPACE
        os.environ["COORD_SHARE_NAMESPACE"] = "1"
        from coordination.catalog.file.store import CatalogStore
        from coordination.dispatch import CeleryDispatcher
        from coordination.runtime.context import get_runtime
        from coordination.settings import get_settings
        from coordination.sweeps import SweepService
        from workers.app import create_app, limits_from_catalog

        get_settings.cache_clear()
        get_runtime.cache_clear()
        self.rt = get_runtime()
        longest_todo, longest_sweep = limits_from_catalog(CatalogStore(catalog).load())
        self.app = create_app(self.rt.settings, longest_todo=longest_todo, longest_sweep=longest_sweep)
        self.rt.dispatcher = CeleryDispatcher(self.app, self.rt.keys)
        self.svc = SweepService(self.rt, catalog)

    def sweep(self, plan: str, strategy: str = "levels") -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        sid = self.svc.start(plan, strategy=strategy)
        st = self.svc.wait(sid, timeout=SWEEP_TIMEOUT)
        secs = time.perf_counter() - t0
        if st["status"] != "succeeded":
            bad = {t: v for t, v in st["todos"].items() if v["status"] != "succeeded"}
            raise RuntimeError(f"coord sweep {sid} ended {st['status']} ({st.get('reason')}): "
                               f"{len(bad)} todos not succeeded, e.g. {next(iter(bad.items()), None)}")
        return secs, dict(st)


@contextlib.contextmanager
def restored(catalog: Path) -> Iterator[None]:
    """The catalog as it was before the block (a sweep's sync completed its todos), and
    the audit log and copy beside it too: each round starts from the state a user's
    catalog is in before a sweep. Putting back the catalog alone left it differing from
    the log's last entry, which the next sweep's sync then recorded as an edit made by
    hand (two loads of the catalog and a diff: 0.14 s of a 1.7 s command at 400 todos,
    under cProfile; a cost only the bench made)."""
    from coordination.catalog.file.beside import Beside  # lazy: coord's, not the bench's

    beside = Beside.of(catalog)
    paths = [catalog, beside.audit_log.path, beside.audit_snapshot.path]
    before = {p: p.read_bytes() if p.exists() else None for p in paths}
    try:
        yield
    finally:
        for p, data in before.items():
            if data is None:
                p.unlink(missing_ok=True)
            else:
                p.write_bytes(data)


def cli_sweep(procs: Procs, catalog: Path, env: dict[str, str], plan: str = "PLAN-1",
              json_out: bool = True, argv: list[str] | None = None) -> tuple[Ran, dict[str, Any]]:
    """`coord plan sweep PLAN --wait [--json]` as a user runs it (``argv``: another
    `coord`); the catalog put back after (--wait synced the completions into it)."""
    cmd = [*(argv or coord_argv()), "--file", str(catalog), "plan", "sweep", plan, "--wait"]
    if json_out:
        cmd.append("--json")
    with restored(catalog):
        ran = run_process(procs, cmd, env, ROOT)
    st: dict[str, Any] = {}
    if json_out:
        st = json.loads(ran.out)
        if st.get("status") != "succeeded":
            raise RuntimeError(f"coord sweep ended {st.get('status')}: {st.get('reason')}\n{ran.err[-2000:]}")
    return ran, st
