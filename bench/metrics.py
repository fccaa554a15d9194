"""Time one Prometheus scrape of coord with 10,000 todos in flight (issue #27: <= 100 ms).

A redis-server this script starts on a free port in a temp dir holds the state: sweeps
started through the real engine (``SweepService.start``, eager strategy: every todo
queued at once; a dispatcher that sends nowhere, so they stay in flight), a tenth of the
todos then started as a worker starts them (``running``, leases held), 20 live worker
records, and counters moved by those sends. Two layouts of the 10,000 todos: one sweep
of 10,000, and 100 sweeps of 100. Each is scraped:

- ``cold``: the first scrape of a fresh collector (it parses each live sweep's spec once
  to learn its todos' repos);
- ``warm``: the median of ``--repeat`` scrapes after that (what Prometheus sees every
  interval), through the library (``generate_latest``; wall and this process's CPU
  time) and over HTTP (``coord metrics``' server, in this process, fetched with urllib).
  The machine's load average is printed with them: on a shared machine wall times
  swing with the neighbours' load.

Baselines from the same run: one bare Redis round trip (PING) and a scrape of an empty
registry over the same HTTP server; ratios are printed against both.

    .venv/bin/python bench/metrics.py [--todos 10000] [--repeat 20] [--json]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _servers import free_port, start_redis  # noqa: E402  (bench/, on sys.path as the script's directory)
from coordination.messages import TodoMessage  # noqa: E402
from coordination.runtime.context import Runtime  # noqa: E402
from coordination.runtime.workers import WorkerRecord  # noqa: E402
from coordination.settings import Settings  # noqa: E402

REPOS = [f"repo{i}" for i in range(10)]
TARGET_MS = 100.0


class Nowhere:
    """A dispatcher whose messages go nowhere: the todos stay queued."""

    def send(self, messages: Iterable[TodoMessage]) -> None:
        for _ in messages:
            pass

    def revoke(self, task_ids: list[str]) -> None:
        pass


def catalog(path: Path, sweeps: int, per_sweep: int) -> Path:
    todos, plans = [], []
    for s in range(sweeps):
        plan = f"PLAN-{s + 1:03d}"
        plans.append({"id": plan, "title": plan, "status": "active", "repos": list(REPOS)})
        for t in range(per_sweep):
            n = s * per_sweep + t
            todos.append({"id": f"TODO-{n + 1:05d}", "task": f"t{n}", "plan": plan,
                          "repo": REPOS[n % len(REPOS)], "run": "true"})
    doc = {"version": 1, "repos": [{"name": r, "path": f"repos/{r}"} for r in REPOS],
           "coordination": {"plans": plans, "todos": todos}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load(rt: Runtime, eco: Path, sweeps: int, per_sweep: int) -> list[str]:
    from coordination.sweeps import SweepService

    svc = SweepService(rt, eco)
    ids = []
    for s in range(sweeps):
        ids.append(svc.start(f"PLAN-{s + 1:03d}", strategy="eager", ignore_blockers=True))
    # A tenth of the todos running, as a worker starts them (lease, fence, checkpoint).
    for s, sid in enumerate(ids):
        for t in range(0, per_sweep, 10):
            n = s * per_sweep + t
            rt.transitions.start(sid, f"TODO-{n + 1:05d}", repo=REPOS[n % len(REPOS)],
                                 concurrency=per_sweep, preds=[], worker="bench")
    for i in range(20):
        rt.workers.beat(WorkerRecord(name=f"w{i}@bench", host="bench", pid=i,
                                     repos=[REPOS[i % len(REPOS)]], beat=60.0))
    return ids


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def scrape_layout(url: str, tmp: Path, sweeps: int, per_sweep: int, repeat: int
                  ) -> dict[str, Any]:
    import redis
    from prometheus_client import CollectorRegistry, start_http_server

    from coordination.ops.metrics import exposition, registry

    redis.Redis.from_url(url).flushall()
    eco = catalog(tmp / f"eco-{sweeps}x{per_sweep}.yaml", sweeps, per_sweep)
    rt = Runtime.create(Settings(redis_url=url))
    rt.dispatcher = Nowhere()
    t0 = time.perf_counter()
    load(rt, eco, sweeps, per_sweep)
    setup_s = time.perf_counter() - t0

    reg = registry(rt, eco)
    cold = timed(lambda: exposition(reg), 1)[0]
    body = exposition(reg)
    c0 = time.process_time()
    warm = timed(lambda: exposition(reg), repeat)
    warm_cpu = (time.process_time() - c0) * 1000 / repeat

    port, empty_port = free_port(), free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    empty, empty_thread = start_http_server(empty_port, addr="127.0.0.1",
                                            registry=CollectorRegistry())

    def get(p: int) -> Callable[[], bytes]:
        return lambda: urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=30).read()

    try:
        http = timed(get(port), repeat)
        http_empty = timed(get(empty_port), repeat)
    finally:
        server.shutdown()
        empty.shutdown()
    ping = timed(lambda: rt.redis.ping(), 200)
    med = statistics.median
    return {
        "layout": f"{sweeps} sweep{'s' if sweeps != 1 else ''} x {per_sweep} todos",
        "todos": sweeps * per_sweep, "setup_s": round(setup_s, 1),
        "exposition_bytes": len(body),
        "cold_ms": round(cold, 1), "warm_ms": round(med(warm), 2),
        "warm_max_ms": round(max(warm), 2), "warm_cpu_ms": round(warm_cpu, 2),
        "http_ms": round(med(http), 2), "load_avg_1m": os.getloadavg()[0],
        "baseline_ping_ms": round(med(ping), 3),
        "baseline_empty_http_ms": round(med(http_empty), 2),
        "warm_vs_ping": round(med(warm) / med(ping), 1),
        "http_vs_empty_http": round(med(http) / med(http_empty), 1),
        "target_ms": TARGET_MS, "met": med(http) <= TARGET_MS and med(warm) <= TARGET_MS,
    }


def main() -> None:
    ap = _report.arguments(__doc__, todos=10_000, repeat=20)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, url = start_redis(tmp)
        try:
            for sweeps in (1, 100):
                res = scrape_layout(url, tmp, sweeps, args.todos // sweeps, args.repeat)
                results.append(res)
                if not args.json:
                    print(f"{res['layout']}: scrape warm {res['warm_ms']} ms (max "
                          f"{res['warm_max_ms']}, exporter CPU {res['warm_cpu_ms']} ms), over HTTP {res['http_ms']} ms, first "
                          f"{res['cold_ms']} ms; PING {res['baseline_ping_ms']} ms "
                          f"(x{res['warm_vs_ping']}), empty HTTP scrape "
                          f"{res['baseline_empty_http_ms']} ms (x{res['http_vs_empty_http']}); "
                          f"target {TARGET_MS:g} ms: {'met' if res['met'] else 'NOT met'}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps({"metrics": results}))
    rows = []
    for res in results:
        rows.append(_report.figure(f"One scrape over HTTP, {res['layout']}, median of "
                                   f"{args.repeat}", res["http_ms"], "ms",
                                   baseline=res["baseline_empty_http_ms"],
                                   baseline_name="an empty registry's scrape",
                                   target=("<=", TARGET_MS, "ms")))
        rows.append(_report.figure("The collector alone, warm (wall)", res["warm_ms"], "ms",
                                   baseline=res["baseline_ping_ms"], baseline_name="a PING",
                                   target=("<=", TARGET_MS, "ms")))
        rows.append(_report.figure("The first scrape after the sweeps start", res["cold_ms"],
                                   "ms"))
    _report.record("metrics", rows)


if __name__ == "__main__":
    main()
