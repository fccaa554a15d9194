"""Fleet benchmark: `coord run true --repos 'tag:*'` over 1,000 repos.

Distributed, as a fleet runs it: a real redis-server and W `coord worker`
processes, each serving R repos (default 10 x 100). The same workers then run the
same command over 10 of those repos (`--repos 'svc-000*'`), the baseline of the same
run. Per-todo cost is the workers' and redis-server's CPU seconds (psutil, process
trees) over the run, divided by its todos, and the sweep's own time (its record's
created -> finished) per todo; the CLI's peak RSS is ``resource.getrusage`` of
the child (RUSAGE_CHILDREN's ru_maxrss, the CLI being the only child waited for
in between). Targets: per-todo cost of the 1,000-repo run within 1.2x of the
10-repo run's; the CLI's peak RSS <= 300 MB.

    python bench/fleet_run.py [--workers 10] [--repos-per-worker 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
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
from fleet import NAMESPACE, wait_live  # noqa: E402  (bench/fleet.py)
from _procs import Procs, child_env, start_redis  # noqa: E402  (bench/_procs.py)

SMALL = "svc-000*"  # the first 10 repos


def write_catalog(tmp: Path, n: int) -> Path:
    lines = ["version: 1", "repos:"]
    for i in range(n):
        name = f"svc-{i:04d}"
        (tmp / "repos" / name).mkdir(parents=True, exist_ok=True)
        lines += [f"  - name: {name}", f"    path: repos/{name}",
                  f"    tags: [{'python' if i % 2 else 'go'}]"]
    path = tmp / "ecosystem.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes and their live children."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for q in [p, *p.children(recursive=True)]:
                t = q.cpu_times()
                total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(
                    t, "children_system", 0.0)
        except psutil.Error:
            continue
    return total


def run(catalog: Path, url: str, selector: str, pids: list[int]) -> dict[str, Any]:
    """One `coord run true --repos SELECTOR --wait --json`, measured."""
    import redis

    env = child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1",
                    COORD_USER="bench")
    cpu0, t0 = tree_cpu(pids), time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                          "run", "true", "--repos", selector, "--wait", "--json"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    cpu = tree_cpu(pids) - cpu0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if out.returncode != 0:
        raise RuntimeError(f"coord run exited {out.returncode}: {out.stderr[-2000:]}")
    doc = json.loads(out.stdout)
    from coordination.keys import Keys

    rec = redis.Redis.from_url(url, decode_responses=True).hmget(
        Keys(NAMESPACE).sweep(doc["sweep_id"]), ["created_at", "finished_at"])
    todos = len(doc["summary"])
    sweep_s = (float(rec[1]) - float(rec[0])) if rec[0] and rec[1] else wall
    return {"selector": selector, "todos": todos, "status": doc["status"], "wall_s": wall,
            "sweep_s": sweep_s, "sweep_ms_per_todo": 1000 * sweep_s / todos,
            "cpu_s": cpu, "cpu_ms_per_todo": 1000 * cpu / todos,
            "cli_peak_rss_mb_so_far": peak_kb / 1024}


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs as one: their todos, times and CPU summed, per todo recomputed."""
    todos = sum(r["todos"] for r in runs)
    sweep_s, cpu = sum(r["sweep_s"] for r in runs), sum(r["cpu_s"] for r in runs)
    return {**runs[-1], "runs": len(runs), "todos": todos, "sweep_s": sweep_s, "cpu_s": cpu,
            "wall_s": sum(r["wall_s"] for r in runs),
            "sweep_ms_per_todo": 1000 * sweep_s / todos, "cpu_ms_per_todo": 1000 * cpu / todos}


def start_fleet_workers(procs: Procs, tmp: Path, catalog: Path, env: dict[str, str],
                        names: list[str], args: argparse.Namespace) -> list[Any]:
    """``args.workers`` `coord worker` processes of ``args.repos_per_worker`` repos each,
    once every one is live (their logs printed when one is not)."""
    workers = []
    for w in range(args.workers):
        argv = [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                "worker", "--loglevel", "WARNING"]
        for r in names[w * args.repos_per_worker:(w + 1) * args.repos_per_worker]:
            argv += ["--repo", r]
        log = open(tmp / f"worker-{w}.log", "wb")  # noqa: SIM115
        workers.append(procs.start(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=ROOT))
        log.close()
    try:
        wait_live(env["COORD_REDIS_URL"], args.workers, timeout=30 + 6 * args.workers)
    except RuntimeError:
        for f in sorted(tmp.glob("worker-*.log")):
            print(f"--- {f.name}\n{f.read_text()[-1500:]}", file=sys.stderr)
        raise
    return workers


def record(res: dict[str, Any], n: int, args: argparse.Namespace, base_cpu: float,
           base_sweep: float) -> None:
    """The figures the performance page's table is made of (bench/_report.py writes them
    to bench/results/fleet_run.json; `make bench-report` rewrites the table)."""
    small, big = res["small"], res["big"]
    base_name = (f"the same per todo over {small['todos'] // small['runs']} repos "
                 f"(best of {args.baseline_runs} runs before/after)")
    _report.record("fleet_run", [
        _report.figure(f"`coord run true --repos 'tag:*'` over {n:,} repos on {args.workers} "
                       "workers: CPU per todo (workers + redis-server)",
                       big["cpu_ms_per_todo"], "ms", baseline=base_cpu,
                       baseline_name=base_name, ratio=res["cpu_ratio"],
                       target=("<=", 1.2, "x"), on="ratio"),
        _report.figure("Sweep time per todo (the sweep's created -> finished)",
                       big["sweep_ms_per_todo"], "ms", baseline=base_sweep,
                       baseline_name=base_name, ratio=res["sweep_time_ratio"],
                       target=("<=", 1.2, "x"), on="ratio"),
        _report.figure("The CLI's peak RSS (`getrusage` of the child)", res["cli_peak_rss_mb"],
                       "MB", target=("<=", 300, "MB")),
    ], notes=f"{args.workers} `coord worker` processes of {args.repos_per_worker} repos, "
             "a real redis-server")


def print_table(res: dict[str, Any], n: int, args: argparse.Namespace) -> None:
    small, big, small2 = res["small"], res["big"], res["small_again"]
    print(f"coord run true over {n} repos on {args.workers} workers x "
          f"{args.repos_per_worker} repos (a thread per repo, plus one)")
    print(f"{'run':<24}{'todos':>7}{'sweep s':>9}{'ms/todo':>9}{'CPU s':>8}{'CPU ms/todo':>13}")
    for label, r in ((f"10 repos x{small['runs']}", small), (f"{n} repos (tag:*)", big),
                     (f"10 repos x{small2['runs']} again", small2)):
        print(f"{label:<24}{r['todos']:>7}{r['sweep_s']:>9.2f}{r['sweep_ms_per_todo']:>9.1f}"
              f"{r['cpu_s']:>8.2f}{r['cpu_ms_per_todo']:>13.1f}")
    print(f"per-todo CPU, {n} vs 10 repos: {res['cpu_ratio']:.2f}x (target <= 1.2x)")
    print(f"per-todo sweep time, {n} vs 10 repos: {res['sweep_time_ratio']:.2f}x")
    print(f"CLI peak RSS (getrusage of the child): {res['cli_peak_rss_mb']:.0f} MB "
          "(target <= 300 MB)")



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--repos-per-worker", type=int, default=100)
    ap.add_argument("--baseline-runs", type=int, default=5,
                    help="10-repo runs before and after the big one, each set taken as one")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = args.workers * args.repos_per_worker
    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="coord-fleet-run-") as d:
        tmp = Path(d)
        try:
            url, server = start_redis(procs, tmp)
            catalog = write_catalog(tmp, n)
            names = [f"svc-{i:04d}" for i in range(n)]
            env = child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE,
                            COORD_SHARE_NAMESPACE="1")
            workers = start_fleet_workers(procs, tmp, catalog, env, names, args)
            pids = [p.pid for p in workers] + [server.pid]
            run(catalog, url, SMALL, pids)  # warm-up: every code path loaded once
            # The baseline, before and after: several runs each, as one (10 todos' CPU
            # is a few clock ticks: one run alone is mostly rounding).
            small = merged([run(catalog, url, SMALL, pids) for _ in range(args.baseline_runs)])
            big = run(catalog, url, "tag:*", pids)
            small2 = merged([run(catalog, url, SMALL, pids) for _ in range(args.baseline_runs)])
        finally:
            procs.stop()
    base_cpu = min(small["cpu_ms_per_todo"], small2["cpu_ms_per_todo"])
    base_sweep = min(small["sweep_ms_per_todo"], small2["sweep_ms_per_todo"])
    res = {"workers": args.workers, "repos_per_worker": args.repos_per_worker,
           "small": small, "big": big, "small_again": small2,
           "cpu_ratio": big["cpu_ms_per_todo"] / base_cpu,
           "sweep_time_ratio": big["sweep_ms_per_todo"] / base_sweep,
           "cli_peak_rss_mb": big["cli_peak_rss_mb_so_far"]}
    record(res, n, args, base_cpu, base_sweep)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print_table(res, n, args)


if __name__ == "__main__":
    main()
