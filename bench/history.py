"""Time `coord history search` and `trends` over 1,000 sweeps of 100 todos, in both modes.

The history (100,000 todo records, 1,000 sweep records; tails of ~150 bytes, every
tenth a full KiB) is written straight through ``RedisHistory.record`` (as a sweep's
end does), into the embedded server of a small catalog (its unix socket) and into a
redis-server this script starts on a free port in a temp dir (distributed, TCP). Then,
in each, the library call and the whole CLI process (`coord ... --json`):

- search for a word in 5 records (the whole history is read: the worst case),
- search for a word in every record, first 20 (the common case: stops early),
- search with --repo and --kind todo,
- trends over 30 days and over all 90.

Baselines from the same run: reading every record raw (HVALS of the run and tail
hashes, no decoding) and, for the CLI,
`python -c "import coordination.cli.main"`. Target (issue #12): < 1 s each.

    .venv/bin/python bench/history.py [--sweeps 1000] [--todos 100] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _servers import free_port, start_redis  # noqa: E402  (bench/, on sys.path as the script's directory)
from coordination.connection.client import real_client  # noqa: E402
from coordination.connection.embedded_server import ensure_server, release  # noqa: E402
from coordination.history.search import search  # noqa: E402
from coordination.history.trends import trends  # noqa: E402
from coordination.keys import Keys  # noqa: E402
from coordination.runtime.history import HistoryStore, RedisHistory  # noqa: E402

DAY = 86400.0
REPOS = [f"repo{i}" for i in range(10)]
WORDS = ("build", "test", "lint", "deploy", "cache", "fetch", "compile", "link", "ok", "done",
         "warning", "retry", "socket", "module", "index", "schema", "migrate", "bundle")
NEEDLE = "zebracorn"  # in 5 records
COMMON = "common-marker"  # in every record's title


def generate(sweeps: int, todos: int, seed: int = 7) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    rnd = random.Random(seed)
    now = time.time()
    needles = {rnd.randrange(sweeps * todos) for _ in range(5)}
    out = []
    for s in range(sweeps):
        end = now - (sweeps - s) / sweeps * 80 * DAY
        sid = f"PLAN-{s % 50:03d}-{s:06d}-bench"
        rows = []
        counts: dict[str, int] = {}
        for t in range(todos):
            n = s * todos + t
            flaky = t % 17 == 0
            status = ("failed" if (flaky and rnd.random() < 0.5) or rnd.random() < 0.03
                      else "succeeded")
            counts[status] = counts.get(status, 0) + 1
            size = 1024 if n % 10 == 0 else 150
            tail = " ".join(rnd.choice(WORDS) for _ in range(size // 6))[:size]
            if n in needles:
                tail = tail[:-20] + f" {NEEDLE} here"
            rows.append({
                "sweep_id": sid, "run": 0, "plan": f"PLAN-{s % 50:03d}", "todo_id": f"TODO-{t:04d}",
                "repo": REPOS[t % len(REPOS)], "title": f"Task {t} {COMMON}", "status": status,
                "attempts": 1, "exit_code": 0 if status == "succeeded" else 1,
                "duration": round(rnd.lognormvariate(1.0 + (t % 7) / 3, 0.5), 3),
                "worker": f"w{t % 4}@host", "reason": None if status == "succeeded" else "exit 1",
                "output_tail": tail, "finished_at": end - rnd.random() * 60,
            })
        sweep = {"sweep_id": sid, "run": 0, "plan": f"PLAN-{s % 50:03d}", "sweep_kind": "plan",
                 "status": "failed" if counts.get("failed") else "succeeded",
                 "reason": None, "started_at": end - 120, "finished_at": end,
                 "counts": counts, "todos": todos}
        out.append((sweep, rows))
    return out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), result


def cli(catalog: Path, env: dict[str, str], *args: str) -> Callable[[], Any]:
    def run() -> Any:
        r = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                            *args, "--json"], capture_output=True, text=True, env=env, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return json.loads(r.stdout)

    return run


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("search rare word (reads all)", {"text": NEEDLE, "limit": 20}, ["search", NEEDLE]),
    ("search common word, first 20", {"text": COMMON, "limit": 20}, ["search", COMMON]),
    ("search --repo --kind todo", {"text": "migrate", "repo": "repo3", "kind": "todo", "limit": 20},
     ["search", "migrate", "--repo", "repo3", "--kind", "todo"]),
    ("trends 30 days", {"days": 30}, ["trends", "--days", "30"]),
    ("trends 90 days (all)", {"days": 90}, ["trends", "--days", "90"]),
]


def bench_store(name: str, store: HistoryStore, data: list[Any], catalog: Path,
                env: dict[str, str], repeat: int, raw: Callable[[], Any]) -> dict[str, Any]:
    t = time.perf_counter()
    for sweep, rows in data:
        store.record(sweep, rows)
    write_s = time.perf_counter() - t
    say(f"\n{name}: wrote {len(data)} runs in {write_s:.1f} s")
    raw_s, _ = timed(raw, repeat)
    say(f"  baseline: read every record raw           {raw_s * 1000:8.0f} ms")
    out: dict[str, Any] = {"write_s": round(write_s, 2), "raw_read_s": round(raw_s, 3), "cases": {}}
    for label, kwargs, argv in CASES:
        if label.startswith("trends"):
            lib_s, doc = timed(lambda: trends(store, **kwargs), repeat)
            size = sum(f["runs"] for f in doc["repos"].values())
        else:
            lib_s, doc = timed(lambda: search(store, **kwargs), repeat)
            size = len(doc)
        cli_s, cli_doc = timed(cli(catalog, env, "history", *argv), repeat)
        same = cli_doc == json.loads(json.dumps(doc)) if not label.startswith("trends") else (
            cli_doc["repos"] == json.loads(json.dumps(doc["repos"])))
        say(f"  {label:<34} library {lib_s * 1000:6.0f} ms   CLI process {cli_s * 1000:6.0f} ms"
            f"   ({size} {'runs' if label.startswith('trends') else 'found'}"
            f"{'' if same else ', CLI DIFFERS'})")
        out["cases"][label] = {"library_s": round(lib_s, 3), "cli_s": round(cli_s, 3),
                               "result_size": size, "cli_matches_library": same}
    return out


QUIET = False


def say(text: str) -> None:
    if not QUIET:
        print(text, flush=True)


def main() -> None:
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sweeps", type=int, default=1000)
    ap.add_argument("--todos", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="Only the final JSON line.")
    args = ap.parse_args()
    QUIET = args.json
    tmp = Path(tempfile.mkdtemp(prefix="coord-bench-history-"))
    proc = None
    try:
        t = time.perf_counter()
        data = generate(args.sweeps, args.todos)
        say(f"generated {args.sweeps} sweeps x {args.todos} todos in {time.perf_counter() - t:.1f} s;"
            f" {os.cpu_count()} cpus")
        catalog = tmp / "ecosystem.yaml"
        catalog.write_text("version: 1\nrepos: []\ncoordination: {}\n")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
        startup_s, _ = timed(lambda: subprocess.run(
            [sys.executable, "-c", "import coordination.cli.main"], check=True, cwd=ROOT,
            env=base_env), args.repeat)
        say(f"baseline: python start + import coordination.cli.main  {startup_s * 1000:.0f} ms")
        result: dict[str, Any] = {"sweeps": args.sweeps, "todos": args.todos,
                                  "cli_startup_s": round(startup_s, 3)}

        import redis

        keys = Keys("coord")

        def raw(r: redis.Redis) -> Callable[[], int]:
            return lambda: len(r.hvals(keys.history_runs)) + len(r.hvals(keys.history_tails))

        embedded_url = ensure_server(catalog)  # this process a member while the CLI runs
        try:
            local = real_client(embedded_url)
            result["embedded"] = bench_store("embedded server (unix socket)",
                                             RedisHistory(local, keys, days=90), data, catalog,
                                             base_env, args.repeat, raw(local))
        finally:
            release(embedded_url)

        proc, url = start_redis(tmp)
        r = redis.Redis.from_url(url, decode_responses=True)
        result["redis"] = bench_store("Redis (distributed)", RedisHistory(r, keys, days=90), data,
                                      catalog, {**base_env, "COORD_REDIS_URL": url}, args.repeat,
                                      raw(r))
        print(json.dumps(result))
        rows = []
        for store, label in (("embedded", "embedded"), ("redis", "distributed")):
            for case, c in result[store]["cases"].items():
                rows.append(_report.figure(
                    f"`coord history {case}`, {label}, the whole process", c["cli_s"], "s",
                    baseline=startup_s, baseline_name="start-up + import",
                    target=("<", 1, "s")))
                rows.append(_report.figure(f"the same, the library call", c["library_s"], "s",
                                           baseline=result[store]["raw_read_s"],
                                           baseline_name="every record read raw"))
        _report.record("history", rows, notes=f"{args.sweeps:,} sweeps x {args.todos} todos, "
                       f"median of {args.repeat}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
