"""Scale benchmark: is a sweep's cost per todo flat from 1,000 to 10,000 todos?

Run by hand (`make bench` runs it too, with its defaults); never part of the test
suite. It starts its own redis-server on a free port in a temp dir and 20 real
`coord worker` processes, each serving 5 of 100 repos (`--repo r000 ... --repo
r004`, concurrency 1 per repo), and writes one catalog per size, each one plan of
N no-op todos (`run: "true"`) round-robin over the 100 repos, in 4 levels of N/4:
a todo of level k > 0 waits for the todos at its position and the next one
(wrapping) of level k - 1 (fan-in 2, ~1.5 N edges, no redundant edge).

For each size it runs `coord plan sweep PLAN --wait --json` as a process (the
CLI: planning, dispatch, following, catalog sync) and reports:

- per-todo cost: the sweep's own created -> finished span / N, the CLI process's
  wall time / N, and Redis commands / N (server-wide INFO commandstats over the
  CLI's whole run, so Lua's inner commands and the workers' idle polling count);
- peak RSS of the CLI and of each worker (psutil, sampled every 0.1 s), max and
  mean over the workers, and that peak above an idle baseline (the workers before any
  sweep; a CLI planning a 4-todo sweep) per todo of the sweep, at both sizes;

then times, at both sizes, each step that could grow faster than N (in-process
steps: median of 3, with what the bench process already holds frozen out of the
garbage collector): the catalog's cold load,
planning (`plan_spec`, the catalog from coord's warm cache), the spec (size, encode, decode, storing the record with
its N checkpoints), one full supervisor pass (`supervise_once`, unthrottled) over
a running sweep of that size with its commands counted, `coord sweep status
--json` (a process, and the library call), and `coord sweep sync` of the N
outcomes into a fresh copy of the catalog (a process, and the library call).
The ratio 10k / 1k of each per-todo figure is printed (flat = 1.0).

Everything it starts is stopped in `finally`, also on Ctrl-C or SIGTERM.

    python bench/scale.py [--sizes 1000,10000] [--repos 100] [--workers 20] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _procs import (  # noqa: E402
    CommandStats, Procs, child_env, start_redis, stop_on_signals)

NAMESPACE = "scale"
LEVELS = 4
READY_TIMEOUT = 180.0
SWEEP_TIMEOUT = 3600.0
QUIET = False


def say(*args: Any, **kw: Any) -> None:
    if not QUIET:
        print(*args, **kw, flush=True)


# -- catalogs ---------------------------------------------------------------------------
def repo_names(k: int) -> list[str]:
    return [f"r{i:03d}" for i in range(k)]


def catalog_data(n: int, repos: list[str], plan: str) -> dict[str, Any]:
    width = max(1, n // LEVELS)
    todos: list[dict[str, Any]] = []
    for i in range(n):
        level = min(LEVELS - 1, i // width)
        pos = i - level * width
        blocked: list[str] = []
        if level:
            prev = (level - 1) * width
            blocked = sorted({f"TODO-{prev + pos % width:06d}", f"TODO-{prev + (pos + 1) % width:06d}"})
        todos.append({"id": f"TODO-{i:06d}", "task": f"no-op {i}", "repo": repos[i % len(repos)],
                      "plan": plan, "run": "true", "blocked_by": blocked})
    return {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "concurrency": 1} for r in repos],
        "coordination": {"plans": [{"id": plan, "title": plan, "status": "active"}],
                         "todos": todos},
    }


def write_catalog(d: Path, n: int, repos: list[str], plan: str) -> Path:
    import yaml

    d.mkdir(parents=True, exist_ok=True)
    for r in repos:
        (d / "repos" / r).mkdir(parents=True, exist_ok=True)
    path = d / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(catalog_data(n, repos, plan), sort_keys=False))
    shutil.copyfile(path, d / "ecosystem.orig.yaml")
    return path


# -- RSS --------------------------------------------------------------------------------
class RssSampler:
    """Peak RSS per pid, sampled every ``every`` seconds in a thread."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.pids: set[int] = set()
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._t.join(timeout=5)

    def watch(self, pid: int) -> None:
        with self._lock:
            self.pids.add(pid)

    def reset(self) -> None:
        with self._lock:
            self.peak.clear()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.every):
            with self._lock:
                pids = list(self.pids)
            for pid in pids:
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                with self._lock:
                    self.peak[pid] = max(self.peak.get(pid, 0), rss)


# -- workers ----------------------------------------------------------------------------
def start_workers(procs: Procs, catalog: Path, url: str, repos: list[str], workers: int,
                  logdir: Path) -> list[Any]:
    per = max(1, len(repos) // workers)
    out = []
    for w in range(workers):
        mine = repos[w * per:(w + 1) * per] if w < workers - 1 else repos[w * per:]
        args = [a for r in mine for a in ("--repo", r)]
        log = open(logdir / f"worker-{w:02d}.log", "wb")  # noqa: SIM115 - the child keeps it
        out.append(procs.start(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "worker",
             *args, "--loglevel", "WARNING"],
            env=child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1",
                          XDG_CACHE_HOME=str(logdir / "cache")),
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        log.close()
    return out


def wait_workers(url: str, expect_repos: int, workers: list[Any]) -> None:
    """Every repo served by a live worker (their liveness beats), within a deadline."""
    os.environ["COORD_REDIS_URL"] = url
    os.environ["COORD_NAMESPACE"] = NAMESPACE
    os.environ["COORD_SHARE_NAMESPACE"] = "1"
    from coordination.runtime.context import get_runtime
    from coordination.settings import get_settings

    get_settings.cache_clear()
    get_runtime.cache_clear()
    rt = get_runtime()
    end = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < end:
        dead = [p for p in workers if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a worker exited with {dead[0].returncode} before it was ready")
        served = sum(1 for v in rt.workers.per_repo().values() if v)
        if served >= expect_repos:
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers did not serve all {expect_repos} repos within {READY_TIMEOUT:.0f} s")


# -- steps ------------------------------------------------------------------------------
def timed(fn: Any, *a: Any, repeat: int = 1, **kw: Any) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls, and the last result. Each call runs with
    what this process already holds frozen out of the garbage collector (it holds
    both sizes' catalogs, specs and documents: a collection inside the step would
    bill it for all of that, which a CLI or a worker does not hold)."""
    secs = []
    for _ in range(repeat):
        gc.collect()
        gc.freeze()
        try:
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            secs.append(time.perf_counter() - t0)
        finally:
            gc.unfreeze()
    return statistics.median(secs), out


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def run_cli(procs: Procs, args: list[str], url: str, cache: Path,
            sampler: RssSampler | None = None) -> tuple[float, str, int]:
    """A `coord` process: (wall seconds, stdout, peak RSS if sampled)."""
    t0 = time.perf_counter()
    p = procs.start([sys.executable, "-m", "coordination.cli.main", *args],
                    env=child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1",
                                  XDG_CACHE_HOME=str(cache)),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    if sampler is not None:
        sampler.watch(p.pid)
    try:
        out, err = p.communicate(timeout=SWEEP_TIMEOUT)
    finally:
        procs.stop([p])
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"coord {' '.join(args[:5])}... exited {p.returncode}: "
                           f"{err.decode(errors='replace')[-3000:]}")
    peak = sampler.peak.get(p.pid, 0) if sampler is not None else 0
    return secs, out.decode(), peak


class NullDispatcher:
    """Counts messages instead of sending them (the supervisor pass must not run todos)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, messages: Any) -> None:
        self.sent += len(list(messages))

    def revoke(self, task_ids: Any) -> None:
        pass


def step_timings(url: str, catalog: Path, plan: str, n: int, sweep_id: str,
                 procs: Procs, cache: Path, stats: CommandStats) -> dict[str, Any]:
    from coordination.runtime.context import get_runtime
    from coordination.sweeps import SweepService

    orig = catalog.parent / "ecosystem.orig.yaml"
    shutil.copyfile(orig, catalog)  # the sweep's --wait synced it: every todo completed
    rt = get_runtime()
    svc = SweepService(rt, catalog)
    out, spec = planning_timings(svc, catalog, plan)
    out.update(supervise_timing(rt, spec, plan, stats))
    out.update(status_and_sync_timings(svc, url, catalog, orig, n, sweep_id, procs, cache))
    return out


def planning_timings(svc: Any, catalog: Path, plan: str) -> tuple[dict[str, Any], Any]:
    """The catalog's load, the plan's spec, and the spec's JSON both ways; and the spec."""
    from coordination.catalog.file.store import CatalogStore
    from coordination.sweeps.spec import SweepSpec

    out: dict[str, Any] = {}
    # A new store each time: a store remembers the catalogs it validated.
    out["catalog_load_s"], _ = timed(lambda: CatalogStore(catalog, cache_dir=None).load(),
                                     repeat=3)
    out["catalog_bytes"] = catalog.stat().st_size
    svc.plan_spec(plan, strategy="levels", ignore_blockers=False)  # warms the catalog cache
    out["plan_s"], spec = timed(svc.plan_spec, plan, strategy="levels", ignore_blockers=False,
                                repeat=3)
    out["edges"] = sum(len(t.preds) for t in spec.todos.values())
    out["spec_encode_s"], text = timed(spec.to_json, repeat=3)
    out["spec_bytes"] = len(text.encode())
    out["spec_decode_s"], _ = timed(SweepSpec.from_json, text, repeat=3)
    return out, spec


def supervise_timing(rt: Any, spec: Any, plan: str, stats: CommandStats) -> dict[str, Any]:
    """A running sweep of this size in another namespace, with no dispatcher: the first
    two levels succeeded, the third is running under live leases, the last pending;
    its record stored, then three supervision passes over it."""
    from coordination.runtime.sweep_fields import todo_field
    from coordination.runtime.context import Runtime
    from coordination.status import SweepStatus, TodoStatus
    from coordination.sweeps.supervision import supervise_once

    out: dict[str, Any] = {}
    prt = Runtime.create(rt.settings.model_copy(update={"namespace": NAMESPACE + "-pass"}))
    prt.dispatcher = NullDispatcher()  # type: ignore[assignment]
    sid = f"{plan}-pass-{os.getpid()}"
    spec.sweep_id = sid
    now = time.time()
    record = {"plan": plan, "strategy": "levels", "kind": "plan", "status": SweepStatus.running,
              "created_at": now, "started_at": now, "deadline": now + 3600, "run": 0,
              "spec": spec.to_json(), "spec_sig": None, "spec_key_id": None, "catalog": None,
              "atomic": False}
    out["store_record_s"], _ = timed(prt.checkpoints.create_sweep, sid, record)
    prt.redis.hset(prt.keys.sweep(sid), mapping=dict(spec.counters()))
    pipe = prt.redis.pipeline(transaction=False)
    lease_val = "tok"
    cps: dict[Any, Any] = {}
    for i, lvl in enumerate(spec.levels):
        for t in lvl:
            if i < 2:
                cps[todo_field(t)] = json.dumps({"status": TodoStatus.succeeded, "finished_at": now})
            elif i == 2:
                lk = prt.keys.lease(f"{spec.todos[t].repo}-{t}", 0)
                pipe.set(lk, lease_val, ex=3600)
                cps[todo_field(t)] = json.dumps({"status": TodoStatus.running, "lease_key": lk,
                                                 "token": lease_val})
    pipe.hset(prt.keys.sweep(sid), mapping=cps)
    pipe.execute()
    prt.redis.sadd(prt.keys.active_sweeps, sid)
    prt.checkpoints.update_sweep(sid, terminal=len(spec.levels[0]) + len(spec.levels[1]))
    passes = []
    with stats.count():
        for _ in range(3):
            prt.redis.delete(prt.keys.supervisor_lock(sid))
            passes.append(timed(supervise_once, prt, sid)[0])  # median of 3
    out["supervise_s"] = statistics.median(passes)
    out["supervise_cmds"] = sum(stats.calls.values()) / 3
    out["supervise_sent"] = prt.dispatcher.sent  # type: ignore[attr-defined]
    prt.redis.srem(prt.keys.active_sweeps, sid)
    return out


def status_and_sync_timings(svc: Any, url: str, catalog: Path, orig: Path, n: int,
                            sweep_id: str, procs: Procs, cache: Path) -> dict[str, Any]:
    """The finished sweep's status and its sync into the catalog, by the library and by
    the CLI; and the CLI's start-up (`coord --help`)."""
    out: dict[str, Any] = {}
    out["status_lib_s"], st = timed(svc.status, sweep_id, repeat=3)
    assert len(st["todos"]) == n
    out["status_cli_s"], doc, _ = run_cli(procs, ["--file", str(catalog), "sweep", "status",
                                                  sweep_id, "--json"], url, cache)
    out["status_json_bytes"] = len(doc.encode())
    out["cli_startup_s"], _, _ = run_cli(procs, ["--help"], url, cache)
    shutil.copyfile(orig, catalog)
    out["sync_cli_s"], doc, _ = run_cli(procs, ["--file", str(catalog), "sweep", "sync",
                                                sweep_id, "--json"], url, cache)
    synced = json.loads(doc)
    assert len(synced["completed"]) == n, {k: len(v) for k, v in synced.items() if isinstance(v, list)}
    shutil.copyfile(orig, catalog)
    out["sync_lib_s"], _ = timed(svc.sync, sweep_id)
    return out


def sweep_size(procs: Procs, url: str, n: int, repos: list[str], tmp: Path,
               sampler: RssSampler, workers: list[Any], stats: CommandStats) -> dict[str, Any]:
    plan = f"PLAN-{n}"
    catalog = write_catalog(tmp / f"n{n}", n, repos, plan)
    cache = tmp / "cache"
    # warm the CLI's catalog cache, so the sweep's figure is not a cold YAML parse
    run_cli(procs, ["--file", str(catalog), "plan", "validate", plan, "--json"], url, cache)
    sampler.reset()
    with stats.count():
        wall, doc, cli_peak = run_cli(
            procs, ["--file", str(catalog), "plan", "sweep", plan, "--wait", "--json"],
            url, cache, sampler)
    st = json.loads(doc)
    if st["status"] != "succeeded":
        raise RuntimeError(f"sweep of {n} ended {st['status']}: {st.get('reason')}")
    span = ts(st["finished_at"]) - ts(st["created_at"])
    wpeaks = [sampler.peak.get(p.pid, 0) / 2**20 for p in workers]
    total_cmds = sum(stats.calls.values())
    busiest = sorted(stats.calls.items(), key=lambda kv: -kv[1])[:8]
    res: dict[str, Any] = {
        "todos": n, "sweep_id": st["sweep_id"], "span_s": span, "cli_wall_s": wall,
        "ms_per_todo": span / n * 1000, "cli_ms_per_todo": wall / n * 1000,
        "cmds_per_todo": total_cmds / n,
        "top_cmds": {k: round(v / n, 2) for k, v in busiest},
        "cli_peak_rss_mb": cli_peak / 2**20,
        "worker_peak_rss_mb_max": max(wpeaks), "worker_peak_rss_mb_mean": statistics.mean(wpeaks),
    }
    say(f"   {n:>6} todos: sweep {span:7.2f} s ({res['ms_per_todo']:.2f} ms/todo), CLI process "
        f"{wall:7.2f} s ({res['cli_ms_per_todo']:.2f} ms/todo), {res['cmds_per_todo']:.1f} Redis "
        f"commands/todo; peak RSS CLI {res['cli_peak_rss_mb']:.0f} MB, workers max "
        f"{res['worker_peak_rss_mb_max']:.0f} / mean {res['worker_peak_rss_mb_mean']:.0f} MB")
    res["steps"] = step_timings(url, catalog, plan, n, st["sweep_id"], procs, cache, stats)
    s = res["steps"]
    say(f"          steps: load {s['catalog_load_s']:.2f} s, plan {s['plan_s']:.2f} s "
        f"({s['edges']} edges), spec {s['spec_bytes'] / 1e6:.2f} MB enc {s['spec_encode_s']:.3f} / "
        f"dec {s['spec_decode_s']:.3f} s, store {s['store_record_s']:.2f} s, supervise "
        f"{s['supervise_s']:.2f} s ({s['supervise_cmds']:.0f} cmds), status {s['status_lib_s']:.2f} s "
        f"(CLI {s['status_cli_s']:.2f} s), sync {s['sync_lib_s']:.2f} s (CLI {s['sync_cli_s']:.2f} s)")
    return res


STEP_KEYS = ("catalog_load_s", "plan_s", "spec_encode_s", "spec_decode_s", "store_record_s",
             "supervise_s", "supervise_cmds", "status_lib_s", "status_cli_s", "sync_lib_s",
             "sync_cli_s")


def idle_rss(procs: Procs, url: str, wcat: Path, workers: list[Any], tmp: Path,
             sampler: RssSampler) -> dict[str, float]:
    """Idle baselines for RSS per todo: the workers now, and a CLI that plans a 4-todo
    sweep (same imports as the big ones, no sweep to hold)."""
    import psutil

    out = {"idle_worker_rss_mb": statistics.mean(
        psutil.Process(p.pid).memory_info().rss / 2**20 for p in workers)}
    _, _, idle_cli = run_cli(procs, ["--file", str(wcat), "plan", "sweep", "PLAN-999999",
                                     "--dry-run", "--json"], url, tmp / "cache", sampler)
    out["idle_cli_rss_mb"] = idle_cli / 2**20
    say(f"   idle RSS: workers {out['idle_worker_rss_mb']:.0f} MB (mean), CLI "
        f"{out['idle_cli_rss_mb']:.0f} MB (planning a 4-todo sweep)")
    return out


def size_ratios(result: dict[str, Any], sizes: list[int]) -> dict[str, float]:
    """The largest size against the smallest, per todo: the sweep, the CLI, Redis
    commands, each step, peak RSS (1.0 = flat)."""
    a, b = result["sizes"][str(sizes[0])], result["sizes"][str(sizes[-1])]
    k = sizes[-1] / sizes[0]
    ratios = {m: b[m] / a[m] for m in ("ms_per_todo", "cli_ms_per_todo", "cmds_per_todo")}
    ratios |= {f"{m}_per_todo": (b["steps"][m] / k) / a["steps"][m] for m in STEP_KEYS
               if a["steps"][m]}
    ratios |= {m: b[m] / a[m] for m in ("cli_peak_rss_mb", "worker_peak_rss_mb_max",
                                        "worker_peak_rss_mb_mean")}
    say(f"\n   ratio {sizes[-1]} / {sizes[0]} per todo (1.0 = flat; target <= 1.2): sweep "
        f"{ratios['ms_per_todo']:.2f}, CLI process {ratios['cli_ms_per_todo']:.2f}, Redis "
        f"commands {ratios['cmds_per_todo']:.2f}")
    say("   steps, per todo: " + ", ".join(
        f"{m.removesuffix('_s')} {ratios[m + '_per_todo']:.2f}" for m in STEP_KEYS
        if m + "_per_todo" in ratios))
    say(f"   peak RSS, {sizes[-1]} / {sizes[0]}: CLI {ratios['cli_peak_rss_mb']:.2f}, workers max "
        f"{ratios['worker_peak_rss_mb_max']:.2f}, mean {ratios['worker_peak_rss_mb_mean']:.2f}")
    return ratios


def rss_per_todo(result: dict[str, Any], sizes: list[int], ratios: dict[str, float]) -> None:
    """Memory per todo: peak above the idle process, divided by the sweep's todos."""
    a, b = result["sizes"][str(sizes[0])], result["sizes"][str(sizes[-1])]
    for n in (sizes[0], sizes[-1]):
        r = result["sizes"][str(n)]
        r["cli_kb_per_todo"] = (r["cli_peak_rss_mb"] - result["idle_cli_rss_mb"]) * 1024 / n
        r["worker_kb_per_todo"] = (r["worker_peak_rss_mb_mean"]
                                   - result["idle_worker_rss_mb"]) * 1024 / n
    ratios["cli_kb_per_todo"] = b["cli_kb_per_todo"] / a["cli_kb_per_todo"]
    ratios["worker_kb_per_todo"] = b["worker_kb_per_todo"] / a["worker_kb_per_todo"]
    say(f"   RSS above idle per todo, {sizes[0]} -> {sizes[-1]}: CLI "
        f"{a['cli_kb_per_todo']:.1f} -> {b['cli_kb_per_todo']:.1f} KB "
        f"({ratios['cli_kb_per_todo']:.2f}), workers (mean) {a['worker_kb_per_todo']:.1f} -> "
        f"{b['worker_kb_per_todo']:.1f} KB ({ratios['worker_kb_per_todo']:.2f})")


def record_scale(result: dict[str, Any], sizes: list[int], args: argparse.Namespace) -> None:
    a, b = result["sizes"][str(sizes[0])], result["sizes"][str(sizes[-1])]
    _report.record("scale", [
        _report.figure(f"Sweep, created -> finished, per todo at {sizes[-1]:,}", b["ms_per_todo"],
                       "ms", baseline=a["ms_per_todo"], baseline_name=f"at {sizes[0]:,}",
                       target=("<=", 1.2, "x"), on="ratio"),
        _report.figure("`coord plan sweep --wait --json` process, per todo",
                       b["cli_ms_per_todo"], "ms", baseline=a["cli_ms_per_todo"],
                       baseline_name=f"at {sizes[0]:,}", target=("<=", 1.2, "x"), on="ratio"),
        _report.figure("Redis commands per todo", b["cmds_per_todo"], "",
                       baseline=a["cmds_per_todo"], baseline_name=f"at {sizes[0]:,}",
                       target=("<=", 1.2, "x"), on="ratio"),
        _report.figure("The CLI's peak RSS above idle, per todo", b["cli_kb_per_todo"], "KB",
                       baseline=a["cli_kb_per_todo"], baseline_name=f"at {sizes[0]:,}"),
        _report.figure("A worker's peak RSS above idle (mean), per todo",
                       b["worker_kb_per_todo"], "KB", baseline=a["worker_kb_per_todo"],
                       baseline_name=f"at {sizes[0]:,}"),
    ], notes=f"{args.repos} repos on {args.workers} workers, {LEVELS} levels, fan-in 2")


def main() -> int:
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="todos per sweep, smallest first")
    ap.add_argument("--repos", type=int, default=100)
    ap.add_argument("--workers", type=int, default=20, help="worker processes (repos split evenly)")
    ap.add_argument("--json", action="store_true", help="print only the final JSON line")
    args = ap.parse_args()
    QUIET = args.json
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if len(sizes) < 1 or min(sizes) < LEVELS or args.workers < 1 or args.repos < args.workers:
        ap.error("need sizes >= 4 and --repos >= --workers >= 1")
    stop_on_signals()
    repos = repo_names(args.repos)
    procs = Procs()
    result: dict[str, Any] = {"bench": "scale", "repos": args.repos, "workers": args.workers,
                              "levels": LEVELS, "cpus": os.cpu_count(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="coord-scale-") as tmpname, RssSampler() as sampler:
        tmp = Path(tmpname)
        try:
            url = start_redis(procs, tmp)[0] + "/0"
            stats = CommandStats(url)
            # Workers read only the repos (and the longest timeout) from their catalog.
            wcat = write_catalog(tmp / "workers", LEVELS, repos, "PLAN-999999")
            say(f"redis-server on {url}; {os.cpu_count()} cpus; {args.workers} workers x "
                f"{args.repos // args.workers} repos; {LEVELS} levels, fan-in 2")
            workers = start_workers(procs, wcat, url, repos, args.workers, tmp)
            for p in workers:
                sampler.watch(p.pid)
            t0 = time.perf_counter()
            wait_workers(url, args.repos, workers)
            say(f"   workers ready in {time.perf_counter() - t0:.1f} s")
            result.update(idle_rss(procs, url, wcat, workers, tmp, sampler))
            for n in sizes:
                result["sizes"][str(n)] = sweep_size(procs, url, n, repos, tmp, sampler, workers, stats)
        except Exception as exc:
            logs = "\n".join(f"--- {f.name}:\n{f.read_text(errors='replace')[-800:]}"
                             for f in sorted(tmp.glob("worker-*.log"))[:3])
            raise RuntimeError(f"{exc}\n{logs}") from exc
        finally:
            procs.stop()
    if len(sizes) >= 2:
        result["ratios"] = ratios = size_ratios(result, sizes)
        rss_per_todo(result, sizes, ratios)
        record_scale(result, sizes, args)
    say("")
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
