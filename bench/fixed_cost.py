"""The fixed cost of a sweep's command (issue #51, goal 6), against raw Celery and a bare
interpreter measured in the same run.

Run by hand or by `make bench`; never part of the test suite.

wait     `coord plan sweep PLAN --wait --json` of N flat no-op todos (`run: "true"`, 4 repos,
         2 slots each) as a process, on 4 running `coord worker`s, timed from before its
         start to its exit; against raw Celery's client process (imports Celery, sends a
         group of N `/bin/sh -c true` tasks, waits for every result, exits) on 4 raw Celery
         workers (threads pool, -c 2, one per repo queue). Both on the same redis-server
         (coord in db 0, Celery in db 1), every worker running throughout; the rounds
         alternate the two. Figures: the wall ratio coord / raw (median of each), and the
         time coord spends outside the sweep: its wall minus the sweep's own span
         (created_at -> finished_at of its status), median; split into before the sweep
         was recorded and after it ended (the clocks of the bench and the sweep are the
         same machine's). Then one more coord run under bench/_phases.py prints where
         that time goes (start-up and imports, the command's catalog checks, planning,
         recording and sending, the wait, the sync into the catalog, the exit).
dry-run  `coord plan sweep PLAN --dry-run` of a 5-todo plan whose todos carry
         estimated_hours (so no history is read), against `python -c pass`, alternated;
         the ratio of the medians (the target) and of the minimums. Also, without a
         target, the same plan without estimates: the dry run then reads the todos'
         recorded runs from Redis (imports redis-py, connects).

Processes run as users run them, from compiled modules (PYTHONDONTWRITEBYTECODE is unset
for the bench and coord's packages compiled first), with a validated-catalog cache of the run's own
($XDG_CACHE_HOME in its temporary folder, filled by the warm-ups). Everything it starts is
stopped in `finally`, also on SIGTERM.

    python bench/fixed_cost.py [--todos 400] [--rounds 5] [--dry-runs 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _catalogs import (  # noqa: E402  (bench/_catalogs.py)
    REPOS, Coord, cli_sweep, flat_todos, restored, start_coord_workers, write_catalog)
from _celery_raw import (  # noqa: E402  (bench/_celery_raw.py)
    raw_app, raw_env, start_raw_workers, write_raw_module)
from _procs import (  # noqa: E402  (bench/_procs.py)
    Procs, Ran, child_env, coord_argv, coord_env, log_tails, run_process, start_redis,
    stop_on_signals, use_compiled_modules, wait_ready)

T_OUTSIDE_S = 0.3  # coord's wall minus the sweep's span, 400 flat todos, s, <=
T_WALL_VS_RAW = 1.0  # coord wall / raw Celery client wall, 400 flat todos, <=
T_DRY_RUN = 8.0  # a 5-todo plan's dry run / `python -c pass`, wall, <=
BARE = [sys.executable, "-c", "pass"]
QUIET = False
REPORT: list[_report.Figure] = []


def say(*args: Any) -> None:
    if not QUIET:
        print(*args, flush=True)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


# -- wait: coord's command against raw Celery's client ------------------------------------
class Sides:
    """The two contenders of `wait`, ready to run: coord's catalog and environment, raw
    Celery's client command and environment."""

    def __init__(self, procs: Procs, tmp: Path, url: str, n: int) -> None:
        self.procs, self.n = procs, n
        self.catalog = write_catalog(tmp / "wait" / "ecosystem.yaml", flat_todos(n))
        self.coord_url, self.raw_url = f"{url}/0", f"{url}/1"
        self.moddir = write_raw_module(tmp)
        self.cenv, self.renv = coord_env(self.coord_url), raw_env(self.moddir, self.raw_url)
        self.raw_cmd = [sys.executable, str(self.moddir / "raw_client.py"), str(self.moddir)]
        self.workers = (start_coord_workers(procs, self.catalog, self.coord_url, tmp)
                        + start_raw_workers(procs, self.moddir, self.raw_url, tmp))

    def ready(self) -> None:
        wait_ready(Coord(self.coord_url, self.catalog).app, len(REPOS),
                   self.workers[:len(REPOS)], "coord")
        wait_ready(raw_app(self.moddir, self.raw_url).app, len(REPOS),
                   self.workers[len(REPOS):], "raw celery")

    def coord(self) -> tuple[float, float, float]:
        """One `plan sweep --wait --json`: its wall, and the seconds before the sweep was
        recorded and after it ended (wall clock, process start and exit)."""
        t0 = time.time()
        ran, st = cli_sweep(self.procs, self.catalog, self.cenv)
        t1 = t0 + ran.wall
        return ran.wall, stamp(st["created_at"]) - t0, t1 - stamp(st["finished_at"])

    def raw(self, n: int | None = None) -> tuple[float, float]:
        """One raw client process: its wall and its own span (apply_async -> results)."""
        ran = run_process(self.procs, [*self.raw_cmd, str(n or self.n), ",".join(REPOS)],
                          self.renv, self.moddir)
        return ran.wall, json.loads(ran.out.strip().splitlines()[-1])["span"]

    def phases(self, out: Path) -> dict[str, float]:
        """One coord run under bench/_phases.py: the seconds of each phase."""
        t0 = time.time()
        env = {**self.cenv, "PHASES_OUT": str(out)}
        ran, st = probe_sweep(self.procs, self.catalog, env)
        end = t0 + ran.wall
        got = json.loads(out.read_text(encoding="utf-8"))
        c = got["calls"]
        created, finished = stamp(st["created_at"]), stamp(st["finished_at"])
        return {
            "interpreter start": got["probe"] - t0,
            "imports, click, until the command runs": c["sweep_cmd"][0] - got["probe"],
            "the command's catalog checks (load, plan, ordering)": c["prepare"][0] - c["sweep_cmd"][0],
            "prepare: the spec, the runtime, the dispatcher": c["prepare"][1] - c["prepare"][0],
            "workers check": c["Launch.start"][0] - c["prepare"][1],
            "start, until the sweep is recorded": created - c["Launch.start"][0],
            "start, after (first todos sent)": c["Launch.start"][1] - created,
            "the wait, after the sweep ended": c["follow_sweep"][1] - finished,
            "sync into the catalog": c["settle"][1] - c["settle"][0],
            "output and exit": end - c["settle"][1],
            "(the sweep: created -> finished)": finished - created,
            "(wall)": ran.wall,
        }


def probe_sweep(procs: Procs, catalog: Path, env: dict[str, str]) -> tuple[Ran, dict[str, Any]]:
    cmd = [sys.executable, str(BENCH / "_phases.py"), "--file", str(catalog), "plan", "sweep",
           "PLAN-1", "--wait", "--json"]
    with restored(catalog):
        ran = run_process(procs, cmd, env, ROOT)
    return ran, json.loads(ran.out)


def measure_wait(procs: Procs, tmp: Path, url: str, n: int, rounds: int) -> dict[str, Any]:
    sides = Sides(procs, tmp, url, n)
    coord: dict[str, list[float]] = {"wall": [], "before": [], "after": []}
    raw: dict[str, list[float]] = {"wall": [], "span": []}
    try:
        sides.ready()
        sides.coord()  # warm-up: connections, page cache, the catalog's validated cache
        sides.raw(8)
        for _ in range(rounds):
            wall, before, after = sides.coord()
            coord["wall"].append(wall)
            coord["before"].append(before)
            coord["after"].append(after)
            wall, span = sides.raw()
            raw["wall"].append(wall)
            raw["span"].append(span)
        phases = sides.phases(tmp / "phases.json")
    except Exception as exc:  # the temp dir with the worker logs is about to go
        raise RuntimeError(f"{exc}\n{log_tails(tmp, '*-worker-*.log')}") from exc
    finally:
        procs.stop(sides.workers)
    outside = [b + a for b, a in zip(coord["before"], coord["after"])]
    return {"todos": n, "rounds": rounds, "coord": coord, "raw": raw, "outside": outside,
            "phases": phases}


def report_wait(w: dict[str, Any]) -> None:
    n, c, r = w["todos"], w["coord"], w["raw"]
    cw, rw = med(c["wall"]), med(r["wall"])
    out, before, after = med(w["outside"]), med(c["before"]), med(c["after"])
    raw_out = med([a - b for a, b in zip(r["wall"], r["span"])])
    say(f"\n1. {n} flat no-op todos, 4 repos x 2 slots, same redis-server, median of "
        f"{w['rounds']} alternated rounds; whole processes, start to exit")
    say(f"   coord `plan sweep --wait --json`   {cw:6.2f} s wall; outside the sweep {out:.3f} s "
        f"(before it was recorded {before:.3f} s, after it ended {after:.3f} s)")
    say(f"   raw Celery client process        {rw:6.2f} s wall; outside its group {raw_out:.3f} s")
    fo = _report.figure(f"flat {n}: coord's time outside the sweep (wall - span)", out, "s",
                        target=("<=", T_OUTSIDE_S, "s"))
    fr = _report.figure(f"flat {n}: wall, coord / raw Celery client", cw, "s", baseline=rw,
                        baseline_name="raw Celery client process", target=("<=", T_WALL_VS_RAW, "x"),
                        on="ratio")
    fb = _report.figure(f"flat {n}: raw Celery client's time outside its group", raw_out, "s")
    REPORT.extend([fo, fr, fb])
    say(f"   outside the sweep {out:.3f} s ({verdict(fo)}); wall coord/raw {fr.ratio:.2f}x "
        f"({verdict(fr)})")
    say("\n   where coord's time goes (one more run, under bench/_phases.py):")
    for name, secs in w["phases"].items():
        say(f"     {name:<54} {secs:7.3f} s")


# -- dry-run: a small plan's preview against a bare interpreter --------------------------
def measure_dry_run(procs: Procs, tmp: Path, url: str, rounds: int, per_round: int
                    ) -> dict[str, Any]:
    todos = flat_todos(5)
    estimated = write_catalog(tmp / "dry" / "ecosystem.yaml",
                              [{**t, "estimated_hours": 0.01} for t in todos])
    unestimated = write_catalog(tmp / "dry-history" / "ecosystem.yaml", todos)
    env = coord_env(f"{url}/0")
    cmds = {
        "coord": ([*coord_argv(), "--file", str(estimated), "plan", "sweep", "PLAN-1",
                   "--dry-run"], env),
        "bare": (BARE, child_env()),
        "coord_history": ([*coord_argv(), "--file", str(unestimated), "plan", "sweep",
                           "PLAN-1", "--dry-run"], env),
    }
    samples: dict[str, list[Ran]] = {k: [] for k in cmds}
    for cmd, e in cmds.values():  # warm-up: the page cache, each catalog's validated cache
        run_process(procs, cmd, e, ROOT)
    for _ in range(rounds):
        for _ in range(per_round):
            for k, (cmd, e) in cmds.items():
                samples[k].append(run_process(procs, cmd, e, ROOT))
    return {k: {"wall": [r.wall for r in v], "cpu": [r.cpu for r in v]}
            for k, v in samples.items()}


def report_dry_run(d: dict[str, Any]) -> None:
    c, b, h = d["coord"], d["bare"], d["coord_history"]
    runs = len(c["wall"])
    say(f"\n2. `plan sweep --dry-run` of a 5-todo plan vs `python -c pass`, {runs} runs each, "
        "alternated")
    for name, s in (("coord dry run (estimates given)", c), ("python -c pass", b),
                    ("coord dry run (no estimates: history read)", h)):
        say(f"   {name:<44} wall median {med(s['wall']):.3f} s, min {min(s['wall']):.3f} s; "
            f"CPU median {med(s['cpu']):.3f} s")
    fm = _report.figure("5-todo dry run / python -c pass, wall, medians", med(c["wall"]), "s",
                        baseline=med(b["wall"]), baseline_name="python -c pass",
                        target=("<=", T_DRY_RUN, "x"), on="ratio")
    fmin = _report.figure("5-todo dry run / python -c pass, wall, minimums", min(c["wall"]), "s",
                          baseline=min(b["wall"]), baseline_name="python -c pass")
    fh = _report.figure("5-todo dry run reading history / python -c pass, wall, medians",
                        med(h["wall"]), "s", baseline=med(b["wall"]),
                        baseline_name="python -c pass")
    REPORT.extend([fm, fmin, fh])
    say(f"   ratio of the medians {fm.ratio:.1f}x ({verdict(fm)}); of the minimums "
        f"{fmin.ratio:.1f}x; reading history {fh.ratio:.1f}x (no target)")


def verdict(f: _report.Figure) -> str:
    return f"target {f.target}: " + {True: "met", False: "NOT met", None: "not measured"}[f.met]


# -- main ------------------------------------------------------------------------------
def main() -> int:
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--todos", type=int, default=400, help="wait: the flat plan's todos (400)")
    ap.add_argument("--rounds", type=int, default=5, help="alternated rounds (5)")
    ap.add_argument("--dry-runs", type=int, default=3, help="dry-run: runs of each per round (3)")
    ap.add_argument("--json", action="store_true", help="print only the final JSON line")
    args = ap.parse_args()
    if args.todos < 4 or args.rounds < 1 or args.dry_runs < 1:
        ap.error("need --todos >= 4, --rounds >= 1, --dry-runs >= 1")
    QUIET = args.json
    use_compiled_modules(say)
    stop_on_signals()
    procs = Procs()
    say(f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory(prefix="coord-bench-") as tmpname:
        tmp = Path(tmpname)
        # The run's own validated-catalog cache: another coord on the machine (its cache
        # is ~/.cache/coord) can neither evict the warm-up's entries nor share them.
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
        try:
            url, _server = start_redis(procs, tmp)
            w = measure_wait(procs, tmp, url, args.todos, args.rounds)
            report_wait(w)
            d = measure_dry_run(procs, tmp, url, args.rounds, args.dry_runs)
            report_dry_run(d)
        finally:
            procs.stop()
    say(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    _report.record("fixed_cost", REPORT, notes=f"{args.rounds} alternated rounds; ratios of "
                   "medians unless named otherwise; load average in `machine`")
    print(json.dumps({"bench": "fixed_cost", "wait": w, "dry_run": d,
                      "figures": [f.__dict__ for f in REPORT]}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
