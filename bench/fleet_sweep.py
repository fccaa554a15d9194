"""Fleet benchmark: one `for_each` template swept over 100, 1,000 and 10,000 repos.

Distributed, as a fleet runs it: a real redis-server and W `coord worker` processes,
each serving R of the generated repos (default 50 x 200 = 10,000; each repo a plain
directory, its checkout). The catalog holds one plan per size, each with one template
(`for_each: tag:sN`, `run: "true"`): the 100 first repos carry tag s100, the 1,000
first s1000, all of them s10000. Each sweep is `coord plan sweep PLAN --wait --json`
as a process (planning, sending, following, then the sync that writes the template's
`instances:` into the catalog), the 100-repo one run several times before and after
the big ones and taken as one (a hundred todos' CPU is a few clock ticks).

Figures, each against a baseline measured in the same run:

- per-instance cost: the sweep's own created -> finished span and the CPU seconds of
  the workers and redis-server (process trees, psutil) per instance; 10,000 against
  100 (target <= 1.2x);
- the CLI's peak RSS (sampled every 0.1 s, psutil) at 10,000 (target <= 500 MB);
- `coord sweep status ID` of the 10,000-instance sweep as a process, against
  `coord --version` as a process (target <= 3x), medians of 5 alternating runs;
  `sweep status --json` beside it (no target: it prints every instance);
- Redis commands per instance: every command the server ran during the CLI's run
  (INFO commandstats: those run by Lua scripts count one each, and so do the idle
  workers' polls), divided by the instances (target <= 20).

    python bench/fleet_sweep.py [--workers 50] [--repos-per-worker 200] [--json]

Everything it starts is stopped in `finally`, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
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
from fleet_run import tree_cpu  # noqa: E402  (bench/fleet_run.py)
from scale import RssSampler, start_workers, wait_workers  # noqa: E402  (bench/scale.py)
from scale import NAMESPACE  # noqa: E402
from _procs import CommandStats, Procs, child_env, start_redis  # noqa: E402

SIZES = (100, 1_000, 10_000)
TARGETS = {"cost_ratio": 1.2, "cli_rss_mb": 500.0, "status_ratio": 3.0, "commands": 20.0}


def repo_names(n: int) -> list[str]:
    return [f"svc-{i:05d}" for i in range(n)]


def write_catalog(tmp: Path, n: int, sizes: tuple[int, ...]) -> Path:
    """``n`` repos (plain directories), a plan per size with one template each."""
    lines = ["version: 1", "repos:"]
    for i, name in enumerate(repo_names(n)):
        (tmp / "repos" / name).mkdir(parents=True, exist_ok=True)
        tags = ", ".join(f"s{s}" for s in sizes if i < s)
        lines += [f"  - name: {name}", f"    path: repos/{name}", f"    tags: [{tags}]"]
    lines += ["coordination:", "  plans:"]
    for s in sizes:
        lines += [f"    - id: PLAN-{s}", f"      title: every repo of s{s}", "      status: active"]
    lines += ["  todos:"]
    for s in sizes:
        lines += [f"    - id: TODO-{s}", f"      task: no-op over s{s}", f"      plan: PLAN-{s}",
                  f"      for_each: 'tag:s{s}'", '      run: "true"']
    path = tmp / "ecosystem.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def env_for(url: str) -> dict[str, str]:
    return child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1",
                     COORD_USER="bench")


def coord(catalog: Path, url: str, *args: str, timeout: float = 3600
          ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                             *args], env=env_for(url), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def sweep(catalog: Path, url: str, size: int, pids: list[int], rss: RssSampler,
          stats: CommandStats) -> dict[str, Any]:
    """One `plan sweep PLAN-size --wait --json`, measured."""
    import redis

    from coordination.keys import Keys

    cpu0 = tree_cpu(pids)
    with stats.count():
        t0 = time.perf_counter()
        proc = coord(catalog, url, "plan", "sweep", f"PLAN-{size}", "--wait", "--json",
                     "--again")
        rss.reset()
        rss.watch(proc.pid)
        out, err = proc.communicate(timeout=3600)
        wall = time.perf_counter() - t0
    cpu = tree_cpu(pids) - cpu0
    peak = rss.peak.get(proc.pid, 0)
    if proc.returncode != 0:
        raise RuntimeError(f"plan sweep PLAN-{size} exited {proc.returncode}: {err[-3000:]}")
    doc = json.loads(out)
    if doc["status"] != "succeeded":
        raise RuntimeError(f"sweep of PLAN-{size} ended {doc['status']}: {doc.get('reason')}")
    rec = redis.Redis.from_url(url, decode_responses=True).hmget(
        Keys(NAMESPACE).sweep(doc["sweep_id"]), ["created_at", "finished_at"])
    sweep_s = float(rec[1]) - float(rec[0])
    calls = sum(stats.calls.values())
    return {"size": size, "sweep_id": doc["sweep_id"], "instances": len(doc["todos"]),
            "wall_s": wall, "sweep_s": sweep_s, "cpu_s": cpu, "cli_peak_rss_mb": peak / 2**20,
            "commands": calls,
            "top": dict(sorted(stats.calls.items(), key=lambda kv: -kv[1])[:12])}


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(r["instances"] for r in runs)
    out = {**runs[-1], "runs": len(runs), "instances": n}
    for k in ("wall_s", "sweep_s", "cpu_s", "commands"):
        out[k] = sum(r[k] for r in runs)
    return out


def per_instance(r: dict[str, Any]) -> dict[str, float]:
    n = r["instances"]
    return {"sweep_ms": 1000 * r["sweep_s"] / n, "cpu_ms": 1000 * r["cpu_s"] / n,
            "commands": r["commands"] / n}


def process_seconds(catalog: Path, url: str, *args: str) -> float:
    t0 = time.perf_counter()
    p = coord(catalog, url, *args)
    _out, err = p.communicate(timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"coord {' '.join(args)} exited {p.returncode}: {err[-2000:]}")
    return time.perf_counter() - t0


def status_timing(catalog: Path, url: str, sweep_id: str, rounds: int) -> dict[str, float]:
    """Medians of ``rounds`` alternating runs: `coord --version`, `sweep status ID`,
    `sweep status ID --json`, each a whole process."""
    runs: dict[str, list[float]] = {"version": [], "status": [], "status_json": []}
    for _ in range(rounds):
        runs["version"].append(process_seconds(catalog, url, "--version"))
        runs["status"].append(process_seconds(catalog, url, "sweep", "status", sweep_id))
        runs["status_json"].append(process_seconds(catalog, url, "sweep", "status", sweep_id,
                                                   "--json"))
    return {k: statistics.median(v) for k, v in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--repos-per-worker", type=int, default=200)
    ap.add_argument("--baseline-runs", type=int, default=5,
                    help="100-repo sweeps before and after the big ones, taken as one each")
    ap.add_argument("--status-rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print only the result as JSON")
    args = ap.parse_args()
    n = args.workers * args.repos_per_worker
    sizes = tuple(s for s in SIZES if s <= n)
    small, *big_sizes = sizes
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    procs = Procs()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="coord-fleet-sweep-") as d, RssSampler() as rss:
        tmp = Path(d)
        try:
            url, server = start_redis(procs, tmp)
            catalog = write_catalog(tmp, n, sizes)
            say(f"{n} repos, {args.workers} workers x {args.repos_per_worker} repos; "
                f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
            t0 = time.perf_counter()
            workers = start_workers(procs, catalog, url, repo_names(n), args.workers, tmp)
            wait_workers(url, n, workers)
            say(f"workers up in {time.perf_counter() - t0:.0f} s")
            pids = [p.pid for p in workers] + [server.pid]
            stats = CommandStats(url)
            sweep(catalog, url, small, pids, rss, stats)  # warm-up: every path loaded once
            base = merged([sweep(catalog, url, small, pids, rss, stats)
                           for _ in range(args.baseline_runs)])
            say(f"{small}: {per_instance(base)}")
            bigs = {}
            for s in big_sizes:
                bigs[s] = sweep(catalog, url, s, pids, rss, stats)
                say(f"{s}: {per_instance(bigs[s])}, CLI peak {bigs[s]['cli_peak_rss_mb']:.0f} MB")
            base2 = merged([sweep(catalog, url, small, pids, rss, stats)
                            for _ in range(args.baseline_runs)])
            say(f"{small} again: {per_instance(base2)}")
            largest = bigs[max(bigs)] if bigs else base
            timing = status_timing(catalog, url, largest["sweep_id"], args.status_rounds)
        finally:
            procs.stop()
    report(args, n, load, base, base2, bigs, timing, say)


def report(args: argparse.Namespace, n: int, load: tuple[float, float, float],
           base: dict[str, Any], base2: dict[str, Any], bigs: dict[int, dict[str, Any]],
           timing: dict[str, float], say: Any) -> None:
    b, b2 = per_instance(base), per_instance(base2)
    cost = {k: min(b[k], b2[k]) for k in ("sweep_ms", "cpu_ms")}
    largest = max(bigs) if bigs else base["size"]
    top = per_instance(bigs[largest]) if bigs else b
    res: dict[str, Any] = {
        "workers": args.workers, "repos_per_worker": args.repos_per_worker, "repos": n,
        "load_before": load, "load_after": os.getloadavg(),
        "baseline": base, "baseline_again": base2, "sweeps": bigs, "status": timing,
        "figures": {
            "sweep_time_ratio": top["sweep_ms"] / cost["sweep_ms"],
            "cpu_ratio": top["cpu_ms"] / cost["cpu_ms"],
            "cli_peak_rss_mb": bigs[largest]["cli_peak_rss_mb"] if bigs else None,
            "status_ratio": timing["status"] / timing["version"],
            "commands_per_instance": top["commands"],
        },
    }
    f = res["figures"]
    base_name = f"the same per instance over {base['size']} repos (best of before/after)"
    _report.record("fleet_sweep", [
        _report.figure(f"`for_each` sweep of `run: true` over {largest:,} repos on "
                       f"{args.workers} workers: sweep time per instance", top["sweep_ms"], "ms",
                       baseline=cost["sweep_ms"], baseline_name=base_name,
                       target=("<=", TARGETS["cost_ratio"], "x"), on="ratio"),
        _report.figure("CPU per instance (workers + redis-server)", top["cpu_ms"], "ms",
                       baseline=cost["cpu_ms"], baseline_name=base_name,
                       target=("<=", TARGETS["cost_ratio"], "x"), on="ratio"),
        _report.figure(f"The CLI's peak RSS at {largest:,}", f["cli_peak_rss_mb"], "MB",
                       target=("<=", TARGETS["cli_rss_mb"], "MB")),
        _report.figure(f"`coord sweep status ID` of the {largest:,}-instance sweep, a process",
                       timing["status"], "s", baseline=timing["version"],
                       baseline_name="`coord --version`, a process",
                       target=("<=", TARGETS["status_ratio"], "x"), on="ratio"),
        _report.figure(f"`coord sweep status ID --json` of the {largest:,}-instance sweep",
                       timing["status_json"], "s", baseline=timing["version"],
                       baseline_name="`coord --version`, a process"),
        _report.figure(f"Redis commands per instance at {largest:,}", f["commands_per_instance"],
                       "", target=("<=", TARGETS["commands"], "")),
    ])
    if args.json:
        print(json.dumps(res, indent=2))
        return

    def met(value: float | None, target: float) -> str:
        return "n/a" if value is None else ("met" if value <= target else "NOT met")

    say("")
    say(f"{'sweep':<18}{'instances':>10}{'sweep s':>9}{'ms/inst':>9}{'CPU ms/inst':>13}"
        f"{'cmds/inst':>11}{'CLI MB':>8}")
    rows = [(f"{base['size']} x{base['runs']}", base)] + [(str(s), r) for s, r in bigs.items()] + [
        (f"{base2['size']} x{base2['runs']} again", base2)]
    for label, r in rows:
        p = per_instance(r)
        say(f"{label:<18}{r['instances']:>10}{r['sweep_s']:>9.2f}{p['sweep_ms']:>9.2f}"
            f"{p['cpu_ms']:>13.2f}{p['commands']:>11.1f}{r['cli_peak_rss_mb']:>8.0f}")
    say(f"per-instance sweep time, {largest} vs {base['size']}: {f['sweep_time_ratio']:.2f}x "
        f"(target <= {TARGETS['cost_ratio']}x: {met(f['sweep_time_ratio'], TARGETS['cost_ratio'])})")
    say(f"per-instance CPU, {largest} vs {base['size']}: {f['cpu_ratio']:.2f}x "
        f"(target <= {TARGETS['cost_ratio']}x: {met(f['cpu_ratio'], TARGETS['cost_ratio'])})")
    say(f"CLI peak RSS at {largest}: {f['cli_peak_rss_mb']:.0f} MB "
        f"(target <= {TARGETS['cli_rss_mb']:.0f} MB: {met(f['cli_peak_rss_mb'], TARGETS['cli_rss_mb'])})")
    say(f"`sweep status` of the {largest}-instance sweep {timing['status']:.2f} s, "
        f"`coord --version` {timing['version']:.2f} s: {f['status_ratio']:.2f}x "
        f"(target <= {TARGETS['status_ratio']}x: {met(f['status_ratio'], TARGETS['status_ratio'])}); "
        f"--json {timing['status_json']:.2f} s")
    say(f"Redis commands per instance at {largest}: {f['commands_per_instance']:.1f} run by the "
        f"server (target <= {TARGETS['commands']:.0f}: "
        f"{met(f['commands_per_instance'], TARGETS['commands'])})")
    top_cmds = bigs[largest]["top"] if bigs else base["top"]
    inst = bigs[largest]["instances"] if bigs else base["instances"]
    say("busiest: " + ", ".join(f"{k.removeprefix('cmdstat_')} {v / inst:.2f}"
                                for k, v in top_cmds.items()))


if __name__ == "__main__":
    main()
