"""Sending a level of N todos: coord's send path against Celery's send_task in a loop.

coord: ``coordination.sweeps.sending.send_level`` (the queue script moves the level's
todos pending -> queued, then one message per todo goes to its repo's queue) on the
CLI's send path (``sending.dispatcher``: the app the CLI builds to send), for a sweep of
one level of N todos (``--todos``, 1,000) recorded by ``steering.start`` with its sending
left out, outside the timing. Also publishing alone (``sending.send`` of the same ids).
Baseline: Celery's ``send_task`` of N messages in a loop on the same app. Against a real
redis-server with no worker consuming: the database is flushed after each round. Rounds
interleave the three; the median round is kept. Wall and CPU per todo (``process_time``
of this process, which does nothing else). Issue #22's target: <= 0.3 ms per todo.

    .venv/bin/python bench/send.py [--url redis://127.0.0.1:6379/2] [--todos 1000]
                                   [--rounds 3] [--json]

Without ``--url`` it starts its own redis-server (``/usr/bin/redis-server``) on a free
port in a temp directory and stops it at the end, also on SIGTERM. With ``--url`` it
FLUSHES that database: give it a scratch one.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _procs import stop_on_signals  # noqa: E402  (bench/_procs.py)
from _servers import start_redis  # noqa: E402  (bench/_servers.py)

REPOS = [f"repo{i}" for i in range(4)]
NAMESPACE = "bench"
TARGET_MS = 0.3


def write_catalog(path: Path, n: int) -> Path:
    import yaml

    for r in REPOS:
        (path.parent / "repos" / r).mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "concurrency": 2} for r in REPOS],
        "coordination": {
            "plans": [{"id": "PLAN-1", "title": "PLAN-1", "status": "active"}],
            "todos": [{"id": f"TODO-{100000 + i}", "task": f"flat {i}", "repo": REPOS[i % 4],
                       "plan": "PLAN-1", "run": "true"} for i in range(n)],
        },
    }, sort_keys=False))
    return path


def open_runtime(db_url: str, catalog: Path) -> tuple[Any, Any]:
    """coord's runtime on ``db_url`` as the CLI has it (no dispatcher until the send
    path builds one), and the catalog's sweep service."""
    os.environ["COORD_REDIS_URL"] = db_url
    os.environ["COORD_NAMESPACE"] = NAMESPACE
    from coordination.runtime.context import get_runtime
    from coordination.settings import get_settings
    from coordination.sweeps import SweepService

    get_settings.cache_clear()
    get_runtime.cache_clear()
    rt = get_runtime()
    rt.dispatcher = None  # the CLI's: built by the send path on first use
    return rt, SweepService(rt, catalog)


def contenders(rt: Any, svc: Any, r: Any, n: int) -> dict[str, Callable[[], tuple[float, float]]]:
    """Each way of sending the level, as a call returning its (wall, CPU) seconds; the
    database flushed after each."""
    from coordination.sweeps import sending, steering
    from coordination.sweeps.planning import new_sweep_id

    def recorded() -> Any:
        """A new sweep of the plan, recorded and active, nothing sent yet."""
        spec = svc.plan_spec("PLAN-1", strategy="levels", ignore_blockers=False)

        def begin_without_sending(rt_: Any, spec_: Any) -> None:
            pass  # (recorded active by the start itself)

        with mock.patch.object(steering, "begin", begin_without_sending):
            steering.start(rt, spec, new_sweep_id("PLAN-1"))
        assert len(spec.levels) == 1 and len(spec.levels[0]) == n, [len(x) for x in spec.levels]
        return spec

    def timed(fn: Callable[[], None]) -> tuple[float, float]:
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        r.flushdb()
        return w, c

    def coord_level() -> tuple[float, float]:
        spec = recorded()

        def go() -> None:
            sent = sending.send_level(rt, spec, 0, reason="start")
            assert len(sent) == n, len(sent)

        return timed(go)

    def coord_publish() -> tuple[float, float]:
        spec = recorded()
        return timed(lambda: sending.send(rt, spec, spec.levels[0]))

    def celery_send_task() -> tuple[float, float]:
        app = getattr(sending.dispatcher(rt), "app", None)
        if app is None:
            from coordination.dispatch.app import celery_app

            app = celery_app(rt.settings, url=rt.url)

        def go() -> None:
            for i in range(n):
                app.send_task("raw.run", args=["true"], queue=f"raw.{REPOS[i % 4]}")

        return timed(go)

    return {"coord_send_level": coord_level, "coord_publish_only": coord_publish,
            "celery_send_task": celery_send_task}


def measure(db_url: str, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    import redis

    rt, svc = open_runtime(db_url, write_catalog(workdir / "ecosystem.yaml", n))
    r = redis.Redis.from_url(db_url)
    kinds = contenders(rt, svc, r, n)
    r.flushdb()
    for fn in kinds.values():  # warm-up: connections, script cache, imports
        fn()
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for k, fn in kinds.items():
            samples[k].append(fn())
    out: dict[str, Any] = {"todos": n, "rounds": rounds}
    for k, xs in samples.items():
        out[k] = {"wall_ms_per_todo": statistics.median(w for w, _ in xs) / n * 1000,
                  "cpu_ms_per_todo": statistics.median(c for _, c in xs) / n * 1000,
                  "samples": xs}
    c, b = out["coord_send_level"], out["celery_send_task"]
    out["ratio_wall"] = c["wall_ms_per_todo"] / b["wall_ms_per_todo"]
    out["ratio_cpu"] = c["cpu_ms_per_todo"] / b["cpu_ms_per_todo"]
    out["target_ms"] = TARGET_MS
    out["met"] = c["wall_ms_per_todo"] <= TARGET_MS
    return out


def main() -> None:
    ap = _report.arguments(__doc__, todos=(1000, "todos in the level (1000)"),
                           rounds=(3, "interleaved rounds; the median is kept (3)"))
    ap.add_argument("--url", help="a scratch Redis database (FLUSHED); default: our own server")
    args = ap.parse_args()
    if args.todos < 1 or args.rounds < 1:
        ap.error("need --todos >= 1 and --rounds >= 1")

    stop_on_signals()  # the `finally` that stops the server runs
    server: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="coord-bench-send-") as tmpname:
        tmp = Path(tmpname)
        try:
            url = args.url
            if url is None:
                server, url = start_redis(tmp)
            res = measure(url, args.todos, args.rounds, tmp)
        finally:
            if server is not None:
                server.kill()
                server.wait()
    if not args.json:
        c, p, b = res["coord_send_level"], res["coord_publish_only"], res["celery_send_task"]
        print(f"a level of {args.todos} todos, median of {args.rounds} interleaved rounds, per todo:")
        print(f"  coord send_level (queue script + messages)  {c['wall_ms_per_todo']:.3f} ms wall, "
              f"{c['cpu_ms_per_todo']:.3f} ms CPU; target <= {TARGET_MS} ms: "
              f"{'met' if res['met'] else 'NOT met'}")
        print(f"    of which publishing (sending.send)      {p['wall_ms_per_todo']:.3f} ms wall, "
              f"{p['cpu_ms_per_todo']:.3f} ms CPU")
        print(f"  Celery send_task in a loop, same app      {b['wall_ms_per_todo']:.3f} ms wall, "
              f"{b['cpu_ms_per_todo']:.3f} ms CPU")
        print(f"  coord / send_task: wall {res['ratio_wall']:.2f}x, CPU {res['ratio_cpu']:.2f}x")
    print(json.dumps(res, separators=(",", ":")))
    c, p, b = res["coord_send_level"], res["coord_publish_only"], res["celery_send_task"]
    _report.record("send", [
        _report.figure(f"Sending a level of {args.todos:,} todos (queue script + messages), "
                       f"per todo (median of {args.rounds})", c["wall_ms_per_todo"], "ms",
                       baseline=b["wall_ms_per_todo"], baseline_name="Celery `send_task` loop",
                       target=("<=", TARGET_MS, "ms")),
        _report.figure("Of which publishing", p["wall_ms_per_todo"], "ms"),
    ])


if __name__ == "__main__":
    main()
