"""Fleet benchmark: the memory and Redis connections of multi-repo workers.

One `coord worker` serving 10 repos against one serving 1 repo, and against 10
one-repo workers (what 0.1 needed for 10 checkouts on one machine). Each
setup first runs a sweep of no-op todos over its repos (so every queue has
been consumed from and every code path loaded), then is measured idle:
resident memory of the worker process and its children (psutil; RSS counts the
pages a forked process shares with its parent once per process, PSS divides them),
and the clients it holds open on redis-server (CLIENT LIST, minus the bench's own).
The worker of 10 repos is measured as it starts by default (since #64 a worker
process per usable core, at most one per repo) and with `--processes 1`, and its
memory shown process by process (:func:`by_process`).
Ratios are against the one-repo worker measured in the same run.

    python bench/fleet.py [--repos 10] [--todos 40] [--json]
"""

from __future__ import annotations

import argparse
import json
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
from _procs import Procs, child_env, start_redis  # noqa: E402  (bench/_procs.py)

NAMESPACE = "fleetbench"


def write_catalog(tmp: Path, repos: list[str], todos: int) -> Path:
    lines = ["version: 1", "repos:"]
    for r in repos:
        (tmp / "repos" / r).mkdir(parents=True, exist_ok=True)
        lines += [f"  - name: {r}", f"    path: repos/{r}", "    concurrency: 2"]
    lines += ["coordination:", "  plans:",
              "    - id: PLAN-001", "      title: all", "      status: active", "  todos:"]
    n = 0
    for i in range(todos):
        r = repos[i % len(repos)]
        n += 1
        lines += [f"    - id: TODO-{n:04d}", f"      task: t{n}", f"      repo: {r}",
                  "      plan: PLAN-001", '      run: "true"']
    path = tmp / "ecosystem.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def rss(pid: int) -> int:
    import psutil

    p = psutil.Process(pid)
    return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))


def pss(pid: int) -> int:
    """Proportional set size of the process and its children: a shared page counts once."""
    import psutil

    p = psutil.Process(pid)
    return sum(q.memory_full_info().pss for q in [p, *p.children(recursive=True)])


def by_process(pid: int) -> dict[str, list[dict[str, float]]]:
    """The worker's memory process by process (psutil, /proc/PID/smaps_rollup): the one
    started (``started``), the worker processes it forked (``forked``: its command line)
    and the others under it (``other``: the todos' warden, one for the worker's processes).
    ``private_mb`` is what no other process maps: for a forked process, the pages it wrote
    since the fork (its parent's pages it copied by writing to them included) and those
    it made; for the parent, the pages all its forks copied away from it."""
    import psutil

    p = psutil.Process(pid)
    argv = p.cmdline()
    out: dict[str, list[dict[str, float]]] = {"started": [], "forked": [], "other": []}
    for q in [p, *p.children(recursive=True)]:
        m = q.memory_full_info()
        role = "started" if q.pid == pid else "forked" if q.cmdline() == argv else "other"
        out[role].append({"pid": q.pid, "pss_mb": m.pss / 2**20, "private_mb": m.uss / 2**20})
    return out


def clients(url: str) -> int:
    import redis

    r = redis.Redis.from_url(url)
    try:
        return len(r.client_list()) - 1  # minus this connection
    finally:
        r.close()


def wait_live(url: str, names: int, timeout: float = 60) -> None:
    from coordination.keys import Keys
    from coordination.runtime.workers import WorkerRegistry
    import redis

    r = redis.Redis.from_url(url, decode_responses=True)
    reg = WorkerRegistry(r, Keys(NAMESPACE))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len(reg.live()) >= names:
            r.close()
            return
        time.sleep(0.2)
    raise RuntimeError(f"{names} worker(s) did not come up within {timeout:.0f} s")


def sweep(catalog: Path, url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "plan", "sweep",
         "PLAN-001", "--wait", "--json"],
        env=child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1"), cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    doc = json.loads(out.stdout)
    if doc.get("status") != "succeeded":
        raise RuntimeError(f"sweep {doc.get('status')}: {out.stderr[-2000:]}")


def measure(tmp: Path, url: str, repos: list[str], groups: list[list[str]],
            todos: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Start one worker per group, sweep, settle, measure; stop them."""
    import redis

    redis.Redis.from_url(url).flushall()
    catalog = write_catalog(tmp, repos, todos)
    procs = Procs()
    base = clients(url)
    try:
        ws = []
        for i, g in enumerate(groups):
            log = open(tmp / f"worker-{len(repos)}-{i}.log", "wb")  # noqa: SIM115
            argv = [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                    "worker", "--loglevel", "WARNING", *extra]
            for r in g:
                argv += ["--repo", r]
            ws.append(procs.start(argv, env=child_env(COORD_REDIS_URL=url,
                                                      COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1"),
                                  stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
            log.close()
        try:
            wait_live(url, len(groups))
        except RuntimeError:
            for f in sorted(tmp.glob("worker-*.log")):
                print(f"--- {f.name}\n{f.read_text()[-1500:]}", file=sys.stderr)
            raise
        sweep(catalog, url)
        time.sleep(1.0)  # let the pools settle after the sweep (memory, not correctness)
        mem = [rss(p.pid) for p in ws]
        prop = [pss(p.pid) for p in ws]
        procs_mem = [by_process(p.pid) for p in ws]
        conns = clients(url) - base
        return {"workers": len(ws), "repos": len(repos), "rss_total_mb": sum(mem) / 2**20,
                "rss_per_worker_mb": [m / 2**20 for m in mem], "redis_clients": conns,
                "pss_total_mb": sum(prop) / 2**20, "by_process": procs_mem}
    finally:
        procs.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=10)
    ap.add_argument("--todos", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    redis_procs = Procs()
    with tempfile.TemporaryDirectory(prefix="coord-fleet-bench-") as d:
        tmp = Path(d)
        try:
            url, _server = start_redis(redis_procs, tmp)
            many = [f"r{i}" for i in range(args.repos)]
            one = measure(tmp / "one", url, ["r0"], [["r0"]], args.todos)
            multi = measure(tmp / "multi", url, many, [many], args.todos)
            single = measure(tmp / "single", url, many, [many], args.todos, ("--processes", "1"))
            split = measure(tmp / "split", url, many, [[r] for r in many], args.todos)
        finally:
            redis_procs.stop()
    res = {"one_repo_worker": one, "multi_repo_worker": multi, "one_process": single,
           "one_worker_per_repo": split,
           "rss_ratio_multi_vs_one": multi["rss_total_mb"] / one["rss_total_mb"],
           "rss_ratio_split_vs_one": split["rss_total_mb"] / one["rss_total_mb"]}
    parts = multi["by_process"][0]
    forked = parts["forked"] or parts["started"]  # (one process where none is forked)
    mean_private = sum(r["private_mb"] for r in forked) / len(forked)
    one_private = one["by_process"][0]["started"][0]["private_mb"]
    _report.record("fleet", [
        _report.figure(f"RSS of one worker serving {args.repos} repos, idle after a "
                       f"{args.todos}-todo sweep", multi["rss_total_mb"], "MB",
                       baseline=one["rss_total_mb"], baseline_name="a one-repo worker",
                       target=("<=", 1.5, "x"), on="ratio"),
        _report.figure("The same, PSS (its processes' shared pages counted once)",
                       multi["pss_total_mb"], "MB", baseline=one["pss_total_mb"],
                       baseline_name="a one-repo worker", target=("<=", 1.5, "x"),
                       on="ratio"),  # (issue #82 holds PSS, not RSS, to 1.5x)
        _report.figure("Of that PSS, the process started (it runs no todo; their parent)",
                       sum(r["pss_mb"] for r in parts["started"]), "MB"),
        _report.figure("Private memory of each worker process, mean (its pages written "
                       "since the fork, the image's it copied by writing to them included)",
                       mean_private, "MB", baseline=one_private,
                       baseline_name="a one-repo worker's process"),
        _report.figure("PSS of the todos' warden (one for the worker's processes)",
                       sum(r["pss_mb"] for r in parts["other"]), "MB",
                       baseline=sum(r["pss_mb"] for r in one["by_process"][0]["other"]),
                       baseline_name="a one-repo worker's"),
        _report.figure(f"RSS of one worker serving {args.repos} repos, --processes 1",
                       single["rss_total_mb"], "MB", baseline=one["rss_total_mb"],
                       baseline_name="a one-repo worker", target=("<=", 1.5, "x"), on="ratio"),
        _report.figure(f"RSS of {args.repos} one-repo workers", split["rss_total_mb"], "MB",
                       baseline=one["rss_total_mb"], baseline_name="a one-repo worker"),
        _report.figure(f"Redis clients of one worker serving {args.repos} repos",
                       float(multi["redis_clients"]), "",
                       baseline=float(split["redis_clients"]),
                       baseline_name=f"{args.repos} one-repo workers"),
    ])
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'setup':<34}{'workers':>8}{'RSS MB':>10}{'ratio':>8}{'Redis clients':>15}")
    for label, r in ((f"1 worker, 1 repo", one), (f"1 worker, {args.repos} repos", multi),
                     (f"1 worker, {args.repos} repos, 1 process", single),
                     (f"{args.repos} workers, 1 repo each", split)):
        print(f"{label:<34}{r['workers']:>8}{r['rss_total_mb']:>10.1f}"
              f"{r['rss_total_mb'] / one['rss_total_mb']:>8.2f}{r['redis_clients']:>15}")
    print(f"target: 1 worker of {args.repos} repos within 1.5x of a 1-repo worker's RSS")
    print(f"1 worker, {args.repos} repos, by process (PSS / private MB):")
    for role, rows in parts.items():
        for r in rows:
            print(f"  {role:<8} pid {int(r['pid']):>7}  {r['pss_mb']:6.1f} / {r['private_mb']:6.1f}")


if __name__ == "__main__":
    main()
