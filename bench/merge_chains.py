"""`plan sweep --merge-chains` against the same sweep without it: broker messages and Redis
commands per sweep, and wall time.

A plan of ``--chains`` chains (4) of ``--length`` todos (8) each, every chain in a repo
of its own (``true`` as command), one real ``coord worker`` per repo, a real
redis-server. Each round runs the plan once each way, ``plan sweep --again --wait``:
baseline ``--strategy eager`` (what ``--merge-chains`` runs, minus the merging), then
``--merge-chains``; rounds interleave them, the median round is kept. Counted on the
server (``INFO commandstats``), between the sweep's start and its end: the messages
pushed on the repos' queues (LPUSH: one per todo sent through the broker), and every
command the server processed (the workers' and the waiting CLI's included: the round
trips a chain saves are the message's publish, its delivery and its
acknowledgement). The figure is the ratio merged / not merged, in the same run.

    .venv/bin/python bench/merge_chains.py [--chains 4] [--length 8] [--rounds 3] [--json]

It starts its own redis-server (``/usr/bin/redis-server``) on a free port in a temp
directory, and its workers, and stops them at the end.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _servers import start_redis  # noqa: E402

PLAN = "PLAN-1"


def write_catalog(path: Path, chains: int, length: int) -> list[str]:
    import yaml

    repos = [f"repo{i}" for i in range(chains)]
    todos = []
    n = 0
    for r in repos:
        (path.parent / "repos" / r).mkdir(parents=True, exist_ok=True)
        prev = None
        for _ in range(length):
            n += 1
            tid = f"TODO-{n:03d}"
            todos.append({"id": tid, "task": f"step {n}", "repo": r, "plan": PLAN, "run": "true",
                          **({"blocked_by": [prev]} if prev else {})})
            prev = tid
    path.write_text(yaml.safe_dump({
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}"} for r in repos],
        "coordination": {"plans": [{"id": PLAN, "title": PLAN, "status": "active"}],
                         "todos": todos},
    }, sort_keys=False))
    return repos


def stats(r: Any) -> tuple[int, int]:
    """(LPUSH calls, every command) the server processed so far."""
    cmd = r.info("commandstats")
    lpush = int(cmd.get("cmdstat_lpush", {}).get("calls", 0))
    total = sum(int(v.get("calls", 0)) for v in cmd.values())
    return lpush, total


def sweep(catalog: Path, env: dict[str, str], r: Any, merged: bool) -> dict[str, float]:
    args = ["--merge-chains"] if merged else ["--strategy", "eager"]
    before, t0 = stats(r), time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                          "plan", "sweep", PLAN, "--again", "--wait", "--json", *args],
                         env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    after = stats(r)
    doc = json.loads(res.stdout or "{}")
    if res.returncode != 0 or doc.get("status") != "succeeded":
        raise RuntimeError(f"sweep failed ({res.returncode}): {res.stderr[-2000:]}")
    return {"messages": after[0] - before[0], "commands": after[1] - before[1], "wall": wall}


def main() -> int:
    ap = _report.arguments(__doc__, chains=4, length=8, rounds=3)
    args = ap.parse_args()
    import redis

    work = Path(tempfile.mkdtemp(prefix="coord-bench-chains-"))
    server, url = start_redis(work)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        catalog = work / "ecosystem.yaml"
        repos = write_catalog(catalog, args.chains, args.length)
        env = {**os.environ, "COORD_REDIS_URL": url, "COORD_NAMESPACE": "bench",
               "PYTHONUNBUFFERED": "1"}
        env.pop("COORD_SIGNING_KEY", None)
        logs = []
        for repo in repos:
            log = work / f"worker-{repo}.log"
            logs.append(log)
            with open(log, "wb") as fh:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                     "worker", "--repo", repo, "--loglevel", "INFO"], env=env, stdout=fh,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 120
        while not all(" ready." in p.read_text(errors="replace") for p in logs):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.2)
        r = redis.Redis.from_url(url)
        sweep(catalog, env, r, merged=False)  # warm-up (imports, scripts loaded)
        plain, merged = [], []
        for _ in range(args.rounds):
            plain.append(sweep(catalog, env, r, merged=False))
            merged.append(sweep(catalog, env, r, merged=True))
    finally:
        for p in workers:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        server.terminate()
        server.wait(timeout=10)

    def med(rows: list[dict[str, float]], k: str) -> float:
        return float(statistics.median(row[k] for row in rows))

    n = args.chains * args.length
    figures = [
        _report.figure(f"Broker messages, {args.chains} chains of {args.length} todos",
                       med(merged, "messages"), "", baseline=med(plain, "messages"),
                       baseline_name="eager, not merged"),
        _report.figure(f"Redis commands of the sweep ({n} todos)", med(merged, "commands"), "",
                       baseline=med(plain, "commands"), baseline_name="eager, not merged"),
        _report.figure("Sweep wall time", med(merged, "wall"), "s",
                       baseline=med(plain, "wall"), baseline_name="eager, not merged"),
    ]
    _report.record("merge_chains", figures)
    out = {"chains": args.chains, "length": args.length, "rounds": args.rounds,
           "plain": plain, "merged": merged,
           "ratios": {f.name: f.ratio for f in figures}}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for f in figures:
            print(f"{f.name}: {f.value:,.1f} vs {f.baseline:,.1f} ({f.ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
