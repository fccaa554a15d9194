"""Result cache benchmark (issue #28): an unchanged re-sweep against the cold sweep, and
computing one key in a 10,000-file checkout, each against a baseline of the same run.

Run by hand or by `make bench`; never part of the test suite.

Parts (--only picks some; the default is both):

resweep  N todos (--todos, default 1,000) whose command takes S s (--seconds, default 1:
         `sleep S; echo i`, a different command each, so a different key each), round-robin
         over 4 repos with concurrency 2 (8 slots), every repo `cache: true` and a git
         checkout of 200 tracked files; one real `coord worker` per repo on a redis-server of
         its own. `coord plan sweep PLAN-1 --wait --json --no-sync` as a process, timed from
         its start to its exit: cold (an empty cache: every todo runs and is stored), then
         warm (nothing changed: every todo `cached`), --rounds times (median) in turn with
         a no-op sweep (the same N todos, `run: true`, no cache: what the engine costs per
         todo anyway). Ratios: warm / cold (issue's target <= 5%), warm / no-op.
key      a checkout of 10,000 tracked files (100 directories) in a temp dir: the time of
         workers.cache_key.compute (what a worker does before a cache: todo runs: HEAD's
         tree, the tracked files that differ, env, command) clean, and with 10 files
         changed, median of --repeat runs after one warm-up; baselines: `git status
         --porcelain` and `git rev-parse HEAD` as processes (what asking git costs at
         all). Target: <= 50 ms.

    python bench/cache.py [--todos 1000] [--seconds 1] [--repeat 20] [--rounds 3]
                          [--only resweep,key] [--json]
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
from _catalogs import REPOS, start_coord_workers  # noqa: E402  (bench/_catalogs.py)
from _procs import (  # noqa: E402  (bench/_procs.py)
    Procs,
    coord_argv,
    coord_env,
    run_process,
    start_redis,
)

CONCURRENCY = 2
T_WARM_VS_COLD = 0.05  # unchanged re-sweep / cold sweep, wall, <=
T_KEY_MS = 50.0  # one key of a 10,000-file checkout, ms, <=
FIGURES: list[dict[str, Any]] = []


def say(*args: Any) -> None:
    print(*args, flush=True)


def target(name: str, value: float, limit: float) -> str:
    met = value <= limit
    FIGURES.append({"figure": name, "value": value, "target": f"<= {limit:g}", "met": met})
    return f"target <= {limit:g}: {'met' if met else 'NOT met'}"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_checkout(d: Path, files: int, dirs: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        sub = d / f"d{i % dirs}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n")
    git(d, "init", "-q")
    git(d, "add", "-A")
    git(d, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "init")


def write_catalog(path: Path, n: int, seconds: float) -> Path:
    """PLAN-1: the cached todos (every repo ``cache: true``); PLAN-2: the no-op baseline
    (``run: true``, ``cache: false``)."""
    import yaml

    todos = [{"id": f"TODO-{100000 + i}", "task": f"todo {i}", "repo": REPOS[i % 4],
              "plan": "PLAN-1", "timeout": 600, "run": f"sleep {seconds:g}; echo {i}"}
             for i in range(n)]
    todos += [{"id": f"TODO-{200000 + i}", "task": f"no-op {i}", "repo": REPOS[i % 4],
               "plan": "PLAN-2", "run": "true", "cache": False} for i in range(n)]
    data = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "concurrency": CONCURRENCY, "cache": True}
                  for r in REPOS],
        "coordination": {"plans": [{"id": p, "title": "bench", "status": "active"}
                                   for p in ("PLAN-1", "PLAN-2")],
                         "todos": todos},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sweep_once(procs: Procs, catalog: Path, env: dict[str, str], plan: str = "PLAN-1"
               ) -> tuple[float, dict[str, int]]:
    ran = run_process(procs, [*coord_argv(), "--file", str(catalog), "plan", "sweep", plan,
                              "--wait", "--json", "--no-sync"], env, ROOT)
    st = json.loads(ran.out)
    if st["status"] != "succeeded":
        raise RuntimeError(f"sweep ended {st['status']}: {st.get('reason')}")
    counts: dict[str, int] = {}
    for v in st["todos"].values():
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    return ran.wall, counts


def resweep(tmp: Path, n: int, seconds: float, rounds: int) -> dict[str, Any]:
    procs = Procs()
    try:
        url, _ = start_redis(procs, tmp)
        env = coord_env(url)
        eco = tmp / "eco"
        eco.mkdir()
        for r in REPOS:
            make_checkout(eco / "repos" / r, 200, 10)
        cat = write_catalog(eco / "ecosystem.yaml", n, seconds)
        start_coord_workers(procs, cat, url, tmp)
        time.sleep(3)  # workers up (the first sweep would wait for them anyway)
        say(f"resweep: {n} todos of `sleep {seconds:g}` over 4 repos x {CONCURRENCY} slots")
        cold, cold_counts = sweep_once(procs, cat, env)
        say(f"  cold sweep (empty cache):                  {cold:.2f} s {cold_counts}")
        # the short ones several times, taken in turn (a shared machine's bursts)
        bases, warms = [], []
        for _ in range(rounds):
            b, base_counts = sweep_once(procs, cat, env, "PLAN-2")
            w, warm_counts = sweep_once(procs, cat, env)
            bases.append(b)
            warms.append(w)
            if warm_counts != {"cached": n}:
                raise RuntimeError(f"the re-sweep did not reuse every todo: {warm_counts}")
        base, warm = statistics.median(bases), statistics.median(warms)
        say(f"  baseline: no-op sweep (run: true, no cache): {base:.2f} s (median of "
            f"{rounds}: {', '.join(f'{x:.2f}' for x in bases)}) {base_counts}")
        say(f"  unchanged re-sweep:                        {warm:.2f} s (median of "
            f"{rounds}: {', '.join(f'{x:.2f}' for x in warms)}) {warm_counts}")
        ratio = warm / cold
        say(f"  re-sweep / cold: {ratio:.2%}  {target('warm/cold', ratio, T_WARM_VS_COLD)}")
        say(f"  re-sweep / no-op sweep: {warm / base:.2f}x "
            f"({(warm - base) / n * 1000:.1f} ms per todo over the engine's own cost)")
        return {"todos": n, "seconds": seconds, "noop_s": base, "cold_s": cold,
                "noop_runs": bases, "warm_runs": warms,
                "warm_s": warm, "warm_over_cold": ratio, "warm_over_noop": warm / base}
    finally:
        procs.stop()


def key(tmp: Path, repeat: int) -> dict[str, Any]:
    from workers.cache_key import compute

    d = tmp / "big"
    make_checkout(d, 10_000, 100)

    def one() -> float:
        t0 = time.perf_counter()
        compute(cwd=str(d), command="make test", env={"PYTHON": "3.13"}, env_names=["PYTHON"],
                inputs=[], probes=[], upstream={}, salt="s", run_probe=lambda p: "")
        return (time.perf_counter() - t0) * 1000

    def proc(*args: str) -> float:
        t0 = time.perf_counter()
        subprocess.run(["git", *args], cwd=d, check=True, capture_output=True)
        return (time.perf_counter() - t0) * 1000

    def median(f: Any) -> float:
        f()  # warm-up (the index's stat data, the page cache)
        return statistics.median(f() for _ in range(repeat))

    status = median(lambda: proc("status", "--porcelain", "--untracked-files=no"))
    rev = median(lambda: proc("rev-parse", "HEAD"))
    clean = median(one)
    for i in range(10):
        (d / f"d{i}" / f"f{i}.txt").write_text("changed\n")
    dirty = median(one)
    say(f"key: 10,000 tracked files, median of {repeat}")
    say(f"  baseline: git status --porcelain (a process): {status:.1f} ms; "
        f"git rev-parse HEAD: {rev:.1f} ms")
    say(f"  key, clean checkout:    {clean:.1f} ms ({clean / status:.2f}x git status)  "
        f"{target('key ms clean', clean, T_KEY_MS)}")
    say(f"  key, 10 files changed:  {dirty:.1f} ms ({dirty / status:.2f}x git status)  "
        f"{target('key ms dirty', dirty, T_KEY_MS)}")
    return {"git_status_ms": status, "git_rev_parse_ms": rev, "key_clean_ms": clean,
            "key_dirty_ms": dirty}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--todos", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="re-sweeps and no-op sweeps, in turn")
    ap.add_argument("--only", default="resweep,key")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    out: dict[str, Any] = {"load": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="coord-bench-cache-") as t:
        tmp = Path(t)
        if "key" in parts:
            out["key"] = key(tmp, args.repeat)
        if "resweep" in parts:
            out["resweep"] = resweep(tmp, args.todos, args.seconds, args.rounds)
    out["figures"] = FIGURES
    rows = []
    if "key" in out:
        k = out["key"]
        for state in ("clean", "dirty"):
            rows.append(_report.figure(
                f"One cache key, a 10,000-file checkout, "
                f"{'clean' if state == 'clean' else '10 files changed'} (median of {args.repeat})",
                k[f"key_{state}_ms"], "ms", baseline=k["git_status_ms"],
                baseline_name="`git status --porcelain`", target=("<=", T_KEY_MS, "ms")))
    if "resweep" in out:
        r = out["resweep"]
        rows.append(_report.figure(
            f"Unchanged re-sweep of {r['todos']:,} `cache:` todos of `sleep {r['seconds']:g}` "
            f"(median of {args.rounds})", r["warm_s"], "s", baseline=r["cold_s"],
            baseline_name="the cold sweep", target=("<=", T_WARM_VS_COLD, "x"), on="ratio"))
        rows.append(_report.figure("The same re-sweep", r["warm_s"], "s", baseline=r["noop_s"],
                                   baseline_name="a no-op sweep of as many todos"))
    _report.record("cache", rows)
    say("summary: " + "; ".join(f"{f['figure']} {f['value']:.3g} ({'met' if f['met'] else 'NOT met'})"
                                for f in FIGURES))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
