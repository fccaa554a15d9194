"""Runtime benchmark: coord's sweeps against raw Celery, GNU parallel and xargs, and the
figures of issue #22, each as a ratio to a baseline measured in the same run.

Run by hand or by `make bench`; never part of the test suite. Every figure is printed
next to a baseline measured in the same run, on the same machine, as a ratio, with the
issue's target where it set one (`met` / `NOT met`); a summary of those targets ends the
output and the final JSON line carries every figure and sample. Absolute numbers on a
shared, noisy machine say little; the ratios say what coord costs on top of what it is
built on.

Parts (--only picks some; the default is all):

throughput  flat N no-op todos (`run: "true"`, round-robin over 4 repos, 2 slots each), for
            every N of --sizes (400,2000): `coord plan sweep PLAN --wait --json` as a
            process against 4 running `coord worker` processes, timed from the CLI's start
            to its exit; against (a) raw Celery: a client *process* that imports Celery,
            sends a group of N tasks (`/bin/sh -c true` each) and waits for every result,
            start to exit, on 4 raw Celery workers (threads pool, -c 2, one per repo
            queue) with their own redis-server; (b) GNU parallel -j 8 true ::: 1..N
            (installed with apt-get when missing and root); (c) xargs -P 8 (the spawn
            limit). Rounds interleave the contenders. Also: CPU per todo over all
            processes (redis-server + workers + everything they spawned + the CLI or
            client; workers run under bench/_reaper.py, a subreaper, so the guard every
            coord todo double-forks is counted), the waiting CLI's (client's) own CPU
            and how much of it is over a process that only imports the libraries the
            CLI needs (LIBS_BASELINE, run once a round),
            and Redis commands per todo (server-wide INFO commandstats, Lua's inner
            commands and idle polling included). Then 4 levels (N/4 chains of 4, N the
            smallest size) through the library (SweepService.start -> finished, levels
            and eager) against raw Celery's chain of 4 chords.
leases      Transitions.start + finish of a fresh todo (a slot taken with its fence and
            given back) vs redis-py Lock acquire + release; LeaseManager.extend vs
            Lock.extend.
events      EventLog.emit -> EventLog.follow latency vs PUBLISH -> SUBSCRIBE, p50/p99.
embedded    the flat sweep of the smallest size with COORD_REDIS_URL unset (the catalog's
            own server), `coord plan sweep --wait --json` as a process, against raw
            Celery's distributed client wall (from `throughput`) and against raw Celery
            on the in-memory transport with 4 in-process worker threads (a process too).
small       an 8-todo embedded sweep of `true`, `coord plan sweep PLAN --wait` as a
            process: cold (the first in a fresh directory), warm (the next ones), and
            joined (another process holds the server); baseline `python -c "import
            coordination.cli.main"`.
reads       `coord sweep status ID` of an ended 400-todo sweep and `coord plan validate
            PLAN` of a 400-todo plan, as whole processes (wall and CPU), against the same
            interpreter start + import baseline.
send        bench/send.py as a process: a level of 1,000 todos sent by coord's send path
            (sweeps.sending.send_level: the queue script, then one message per todo) to
            the redis-server with no worker, against Celery's send_task of 1,000 messages
            in a loop on the same app; purged after each round.
spawn       bench/spawn.py as a process: the guarded spawn (workers.execute.run_command)
            vs subprocess.run(["/bin/sh", "-c", "true"]), CPU per spawn, guard included.

Everything it starts (redis-servers on free ports in a temp dir, workers in their own
process groups, embedded servers beside its temp catalogs) is stopped in `finally`, also
on SIGTERM.

    python bench/sweep.py [--sizes 400,2000] [--repeat 3] [--only throughput,small,...]
                          [--skip-levels] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _catalogs import (  # noqa: E402  (bench/_catalogs.py)
    CONCURRENCY, REPOS, Coord, cli_sweep, flat_todos, level_todos, span_of,
    start_coord_workers, write_catalog)
from _celery_raw import (  # noqa: E402  (bench/_celery_raw.py)
    RAW_EMBEDDED, raw_app, raw_env, raw_levels, start_raw_workers, write_raw_module)
from _leases_events import events, leases  # noqa: E402  (bench/_leases_events.py)
from _procs import (  # noqa: E402  (bench/_procs.py)
    CommandStats, CpuMeter, Procs, Ran, child_env, coord_argv, coord_env, ensure_parallel,
    log_tails, med, per_todo, run_process, start_redis, stop_embedded, stop_on_signals,
    use_compiled_modules, wait_ready)

SEND_DB = 2  # the send part's database on the coord server (flushed after each round)
PARALLEL_JOBS = 8  # GNU parallel / xargs: as many at once as coord's 4 repos x 2 slots
QUIET = False

# issue #22's targets
T_WALL_VS_RAW = 1.0  # coord wall / raw Celery wall (process start to exit), <=
T_WALL_VS_PARALLEL = 1.0  # coord wall / GNU parallel wall, <=
T_CPU_VS_RAW = 1.0  # CPU per todo over all processes, coord / raw, <=
T_CLI_CPU_MS = 1.0  # the waiting CLI's CPU per todo, ms, <=
T_CMDS = 20.0  # Redis commands per todo, <=
T_EMBEDDED_VS_RAW = 1.3  # embedded wall / raw Celery distributed wall, <=
T_EMBEDDED_MS = 1.0  # embedded wall over Celery's in-memory transport, ms per todo, <=
T_LEVELS = 1.5  # 4 levels, coord todo/s / raw chain of chords todo/s, >=
T_SMALL_S = 1.0  # 8-todo embedded sweep, CLI start to exit, s, <=
T_SEND_MS = 0.3  # sending a level, ms per todo, <=
T_READ_S = 0.3  # sweep status / plan validate as processes, s, <=
T_SPAWN = 1.3  # guarded spawn / plain subprocess.run, CPU, <=

FIGURES: list[dict[str, Any]] = []
REPORT: list[_report.Figure] = []  # the same figures, for bench/results/sweep.json


def say(*args: Any, **kw: Any) -> None:
    if not QUIET:
        print(*args, **kw, flush=True)


def target(name: str, value: float | None, op: str, limit: float, unit: str = "") -> str:
    """Record a figure of issue #22 against its target; returns ``target <= x: met``."""
    REPORT.append(_report.figure(name, value, unit.strip(), target=(op, limit, unit.strip())))
    if value is None:
        FIGURES.append({"figure": name, "value": None, "target": f"{op} {limit:g}{unit}",
                        "met": None})
        return f"target {op} {limit:g}{unit}: not measured"
    met = value <= limit if op == "<=" else value >= limit
    FIGURES.append({"figure": name, "value": value, "target": f"{op} {limit:g}{unit}", "met": met})
    return f"target {op} {limit:g}{unit}: {'met' if met else 'NOT met'}"


IMPORT_BASELINE = [sys.executable, "-c", "import coordination.cli.main"]
#: What the waiting CLI cannot do without whatever coord does: the interpreter and the
#: libraries it must import (click, Pydantic for the catalog and the settings, redis-py,
#: PyYAML and ruamel for the catalog sync), with the cyclic collector paused and frozen
#: out of the exit as coord's CLI does (cli/main.py). Its CPU is the
#: floor of the waiting CLI's, measured in the same rounds: what is over it is coord's own.
LIBS_BASELINE = [sys.executable, "-c", "import atexit, gc; gc.disable(); atexit.register("
                 "gc.freeze); import click, pydantic, redis, yaml, "
                 "ruamel.yaml; from pydantic import BaseModel"]


# -- throughput -------------------------------------------------------------------------
@dataclass
class Contender:
    """The runs of one contender at one size."""

    wall: list[float] = field(default_factory=list)
    span: list[float] = field(default_factory=list)  # the sweep alone (coord, raw)
    own_cpu: list[float] = field(default_factory=list)  # the CLI / client / parallel process
    all_cpu: list[float] = field(default_factory=list)  # + redis-server + workers
    calls: dict[str, int] = field(default_factory=dict)  # Redis commands, summed over runs

    def add_calls(self, calls: dict[str, int]) -> None:
        for k, v in calls.items():
            self.calls[k] = self.calls.get(k, 0) + v


def throughput(procs: Procs, tmp: Path, url: str, redis_pid: int, sizes: list[int],
               repeat: int, levels: bool, shared: dict[str, Any]) -> dict[str, Any]:
    try:
        return _throughput(procs, tmp, url, redis_pid, sizes, repeat, levels, shared)
    except Exception as exc:  # the temp dir with the worker logs is about to go
        raise RuntimeError(f"{exc}\n{log_tails(tmp, '*-worker-*.log')}") from exc


@dataclass
class Rig:
    """What the flat rounds run on: each contender's command and environment, the
    catalogs by size, and the meters of the coord and raw sides."""

    procs: Procs
    tmp: Path
    flats: dict[int, Path]
    cenv: dict[str, str]
    renv: dict[str, str]
    raw_cmd: list[str]
    moddir: Path  # the raw client's directory (its cwd)
    cmeter: CpuMeter
    rmeter: CpuMeter
    coord_stats: CommandStats
    raw_stats: CommandStats
    par: str | None


def _throughput(procs: Procs, tmp: Path, url: str, redis_pid: int, sizes: list[int],
                repeat: int, levels: bool, shared: dict[str, Any]) -> dict[str, Any]:
    cdir = tmp / "throughput"
    lv = min(sizes)
    main = write_catalog(cdir / "ecosystem.yaml",
                         level_todos(lv) + flat_todos(8, "PLAN-3", base=300000))
    # one catalog per size holding only its flat plan, as a user with N todos has
    flats = {n: write_catalog(cdir / f"flat-{n}.yaml", flat_todos(n)) for n in sizes}
    coord_url = f"{url}/0"
    raw_base, raw_redis = start_redis(procs, tmp, "redis-raw")
    raw_url = f"{raw_base}/0"
    moddir = write_raw_module(tmp)
    par = ensure_parallel(say)
    if par is None:
        say("   GNU parallel is missing (and cannot be installed here): its column is skipped")

    coord = Coord(coord_url, main)
    mod = raw_app(moddir, raw_url)
    cworkers = start_coord_workers(procs, main, coord_url, tmp)
    rworkers = start_raw_workers(procs, moddir, raw_url, tmp)
    runs: dict[int, dict[str, Contender]] = {
        n: {k: Contender() for k in ("coord", "raw", "parallel", "xargs")} for n in sizes}
    out: dict[str, Any] = {"flat": {}}
    libs: list[float] = []  # LIBS_BASELINE's CPU, once a round
    try:
        wait_ready(coord.app, len(REPOS), cworkers, "coord")
        wait_ready(mod.app, len(REPOS), rworkers, "raw celery")
        rig = Rig(procs, tmp, flats, coord_env(coord_url), raw_env(moddir, raw_url),
                  [sys.executable, str(moddir / "raw_client.py"), str(moddir)], moddir,
                  CpuMeter([redis_pid] + [p.pid for p in cworkers]),
                  CpuMeter([raw_redis.pid] + [p.pid for p in rworkers]),
                  CommandStats(coord_url), CommandStats(raw_url), par)
        _warm_up(rig, coord, sizes)
        for _ in range(repeat):
            libs.append(run_process(procs, LIBS_BASELINE, rig.cenv, ROOT).cpu)
            for n in sizes:
                _coord_flat(rig, n, runs[n]["coord"], shared)
                _raw_flat(rig, n, runs[n]["raw"])
                _spawners_flat(rig, n, runs[n])
        if levels:
            out.update(_levels(coord, mod, lv, repeat))
    finally:
        procs.stop(cworkers + rworkers)
        procs.stop([raw_redis])
    for n in sizes:
        out["flat"][str(n)] = _flat_row(runs[n], n)
    out["parallel"] = par
    out["libs_import"] = {"cpu_s": med(libs), "samples": libs}
    for n in sizes:
        own = out["flat"][str(n)]["coord"]
        own["own_cpu_over_libs_ms_per_todo"] = (med(runs[n]["coord"].own_cpu) - med(libs)) / n * 1000
    return out


def _warm_up(rig: Rig, coord: Coord, sizes: list[int]) -> None:
    """Connections, imports, page cache, each catalog's validated cache."""
    coord.sweep("PLAN-3")
    for n in sizes:
        run_process(rig.procs, [*coord_argv(), "--file", str(rig.flats[n]), "plan", "sweep",
                                "PLAN-1", "--dry-run"], rig.cenv, ROOT)
    run_process(rig.procs, [*rig.raw_cmd, "8", ",".join(REPOS)], rig.renv, rig.moddir)


def _coord_flat(rig: Rig, n: int, con: Contender, shared: dict[str, Any]) -> None:
    """One `coord plan sweep --wait --json` of the flat N: wall, CPU, commands, span."""
    c0 = rig.cmeter.total()
    with rig.coord_stats.count():
        ran, st = cli_sweep(rig.procs, rig.flats[n], rig.cenv)
    con.all_cpu.append(rig.cmeter.total() - c0 + ran.cpu)
    con.add_calls(rig.coord_stats.calls)
    con.wall.append(ran.wall)
    con.own_cpu.append(ran.cpu)
    if (s := span_of(st)) is not None:
        con.span.append(s)
    shared.setdefault("ended", {})[n] = (rig.flats[n], st.get("sweep_id") or st.get("id"))


def _raw_flat(rig: Rig, n: int, con: Contender) -> None:
    """One raw Celery client process sending the group of N and waiting for it."""
    c0 = rig.rmeter.total()
    with rig.raw_stats.count():
        ran = run_process(rig.procs, [*rig.raw_cmd, str(n), ",".join(REPOS)], rig.renv,
                          rig.moddir)
    con.all_cpu.append(rig.rmeter.total() - c0 + ran.cpu)
    con.add_calls(rig.raw_stats.calls)
    con.wall.append(ran.wall)
    con.own_cpu.append(ran.cpu)
    con.span.append(json.loads(ran.out.strip().splitlines()[-1])["span"])


def _spawners_flat(rig: Rig, n: int, r: dict[str, Contender]) -> None:
    """GNU parallel (when there is one) and xargs running N `true`s, 8 at once."""
    seq = [str(i) for i in range(1, n + 1)]
    ran: Ran | None = None
    if rig.par is not None:
        ran = run_process(rig.procs, [rig.par, "--will-cite", "-j", str(PARALLEL_JOBS),
                                      "true", ":::", *seq], child_env(), rig.tmp)
        r["parallel"].wall.append(ran.wall)
        r["parallel"].own_cpu.append(ran.cpu)
        r["parallel"].all_cpu.append(ran.cpu)
    ran = run_process(rig.procs, ["xargs", "-P", str(PARALLEL_JOBS), "-n", "1",
                                  "/bin/sh", "-c", "true"], child_env(), rig.tmp,
                      stdin="\n".join(seq).encode())
    r["xargs"].wall.append(ran.wall)
    r["xargs"].own_cpu.append(ran.cpu)
    r["xargs"].all_cpu.append(ran.cpu)


def _levels(coord: Coord, mod: Any, lv: int, repeat: int) -> dict[str, Any]:
    """The 4-level plan through the library, levels and eager, against raw Celery's
    chain of 4 chords."""
    samples: dict[str, list[float]] = {"coord_levels": [], "coord_eager": [], "raw_levels": []}
    raw_levels(mod, 8)  # warm-up
    for _ in range(repeat):
        samples["coord_levels"].append(coord.sweep("PLAN-2", "levels")[0])
        samples["coord_eager"].append(coord.sweep("PLAN-2", "eager")[0])
        samples["raw_levels"].append(raw_levels(mod, lv))
    out: dict[str, Any] = {"levels_todos": lv}
    for name, ck in (("4_levels", "coord_levels"), ("4_levels_eager", "coord_eager")):
        c, rw = med(samples[ck]), med(samples["raw_levels"])
        out[name] = {"coord_s": c, "raw_s": rw, "coord_todos_s": lv / c,
                     "raw_todos_s": lv / rw, "ratio": rw / c,
                     "overhead_ms_per_todo": (c - rw) / lv * 1000,
                     "coord_samples": samples[ck], "raw_samples": samples["raw_levels"]}
    return out


def _flat_row(r: dict[str, Contender], n: int) -> dict[str, Any]:
    """The medians of each contender at size N, and coord's ratios to the others."""
    row: dict[str, Any] = {}
    for k, con in r.items():
        if not con.wall:
            row[k] = None
            continue
        row[k] = {"wall_s": med(con.wall), "cpu_ms_per_todo": med(con.all_cpu) / n * 1000,
                  "own_cpu_ms_per_todo": med(con.own_cpu) / n * 1000,
                  "wall_samples": con.wall, "all_cpu_samples": con.all_cpu,
                  "own_cpu_samples": con.own_cpu}
        if con.span:
            row[k]["span_s"] = med(con.span)
        if con.calls:
            row[k]["redis_cmds_per_todo"] = per_todo(con.calls, n * len(con.wall))
    cw = row["coord"]["wall_s"]
    row["ratios"] = {
        "wall_coord_over_raw": cw / row["raw"]["wall_s"],
        "wall_coord_over_parallel": cw / row["parallel"]["wall_s"] if row["parallel"] else None,
        "wall_coord_over_xargs": cw / row["xargs"]["wall_s"],
        "cpu_coord_over_raw": row["coord"]["cpu_ms_per_todo"] / row["raw"]["cpu_ms_per_todo"],
        "cli_cpu_coord_over_raw_client": (row["coord"]["own_cpu_ms_per_todo"]
                                          / row["raw"]["own_cpu_ms_per_todo"]),
    }
    return row


def report_throughput(procs: Procs, tmp: Path, url: str, redis_pid: int, sizes: list[int],
                      repeat: int, levels: bool, shared: dict[str, Any]) -> dict[str, Any]:
    say(f"\n1. flat sweeps of {', '.join(map(str, sizes))} no-op todos over {len(REPOS)} repos, "
        f"{CONCURRENCY} at a time each (8 at once), median of {repeat} interleaved rounds; each "
        "contender a whole process, start to exit")
    say(f"   coord: `coord plan sweep PLAN --wait --json` on 4 `coord worker`s; raw: a Celery "
        f"client process (group of N, wait for all) on 4 Celery workers; GNU parallel -j "
        f"{PARALLEL_JOBS} true; xargs -P {PARALLEL_JOBS} sh -c true")
    tp = throughput(procs, tmp, url, redis_pid, sizes, repeat, levels, shared)
    for n in sizes:
        row = tp["flat"][str(n)]
        c, rw, pa, xa = row["coord"], row["raw"], row["parallel"], row["xargs"]

        def cell(d: dict[str, Any] | None, key: str, fmt: str) -> str:
            return format(d[key], fmt) if d and key in d else "-"

        say(f"\n   flat {n}{'':<27} {'coord':>9} {'raw celery':>11} {'GNU parallel':>13} "
            f"{'xargs -P 8':>11}")
        say(f"   {'wall, process start to exit (s)':<32} {cell(c, 'wall_s', '9.2f')} "
            f"{cell(rw, 'wall_s', '11.2f')} {cell(pa, 'wall_s', '13.2f')} {cell(xa, 'wall_s', '11.2f')}")
        say(f"   {'CPU per todo, all processes (ms)':<32} {cell(c, 'cpu_ms_per_todo', '9.2f')} "
            f"{cell(rw, 'cpu_ms_per_todo', '11.2f')} {cell(pa, 'cpu_ms_per_todo', '13.2f')} "
            f"{cell(xa, 'cpu_ms_per_todo', '11.2f')}")
        say(f"   {'of which the CLI / client (ms)':<32} {cell(c, 'own_cpu_ms_per_todo', '9.2f')} "
            f"{cell(rw, 'own_cpu_ms_per_todo', '11.2f')} {'-':>13} {'-':>11}")
        say(f"   {'Redis commands per todo':<32} {c['redis_cmds_per_todo']['total']:9.1f} "
            f"{rw['redis_cmds_per_todo']['total']:11.1f} {'-':>13} {'-':>11}")
        say(f"   {'the sweep alone (s)':<32} {cell(c, 'span_s', '9.2f')} {cell(rw, 'span_s', '11.2f')}"
            "   (coord: created -> finished; raw: apply_async -> all results)")
        ra = row["ratios"]
        say(f"   coord/raw wall {ra['wall_coord_over_raw']:.2f}x "
            f"({target(f'flat {n}: wall coord/raw Celery', ra['wall_coord_over_raw'], '<=', T_WALL_VS_RAW, 'x')})")
        pr = ra["wall_coord_over_parallel"]
        say(f"   coord/GNU parallel wall {pr:.2f}x " if pr is not None else "   coord/GNU parallel wall: - ",
            end="")
        say(f"({target(f'flat {n}: wall coord/GNU parallel', pr, '<=', T_WALL_VS_PARALLEL, 'x')})")
        say(f"   coord/xargs wall {ra['wall_coord_over_xargs']:.2f}x (the spawn limit; no target)")
        say(f"   CPU per todo, all processes, coord/raw {ra['cpu_coord_over_raw']:.2f}x "
            f"({target(f'flat {n}: CPU per todo coord/raw Celery', ra['cpu_coord_over_raw'], '<=', T_CPU_VS_RAW, 'x')})")
        say(f"   the waiting CLI's CPU {c['own_cpu_ms_per_todo']:.2f} ms per todo "
            f"({target(f'flat {n}: waiting CLI CPU per todo', c['own_cpu_ms_per_todo'], '<=', T_CLI_CPU_MS, ' ms')}); "
            f"raw client {rw['own_cpu_ms_per_todo']:.2f} ms, coord/raw {ra['cli_cpu_coord_over_raw_client']:.2f}x")
        say(f"   of which over the import of its libraries alone (interpreter, click, Pydantic, "
            f"redis-py, PyYAML, ruamel: {tp['libs_import']['cpu_s'] * 1000:.0f} ms "
            f"of CPU, {tp['libs_import']['cpu_s'] * 1000 / n:.2f} ms per todo at {n}, measured each "
            f"round): {c['own_cpu_over_libs_ms_per_todo']:.2f} ms per todo, coord's own modules "
            "and work")
        cc = c["redis_cmds_per_todo"]
        top = ", ".join(f"{k} {v:g}" for k, v in list(cc["top"].items())[:8])
        say(f"   Redis commands per todo (server-wide: Lua's inner commands, idle polling): coord "
            f"{cc['total']:.1f} ({target(f'flat {n}: Redis commands per todo', cc['total'], '<=', T_CMDS)}; "
            f"{top}); raw {rw['redis_cmds_per_todo']['total']:.1f}")
    if "4_levels" in tp:
        lv = tp["levels_todos"]
        say(f"\n   4 levels of {lv} todos (N/4 chains of 4) through the library, SweepService.start "
            f"-> finished, vs raw Celery's chain of 4 chords (apply_async -> result), median of {repeat}")
        say(f"   {'shape':<16} {'coord':>8} {'raw celery':>11}   {'coord todo/s':>12} {'raw todo/s':>10}"
            f"   {'coord/raw todo/s':>16}")
        for name in ("4_levels", "4_levels_eager"):
            row = tp[name]
            say(f"   {name.replace('_', ' '):<16} {row['coord_s']:7.2f}s {row['raw_s']:10.2f}s   "
                f"{row['coord_todos_s']:12.1f} {row['raw_todos_s']:10.1f}   {row['ratio']:16.2f}   "
                f"{target(name.replace('_', ' ') + ': coord/raw chain of chords todo/s', row['ratio'], '>=', T_LEVELS, 'x')}")
    return tp


# -- embedded ---------------------------------------------------------------------------


def embedded(procs: Procs, tmp: Path, n: int, repeat: int) -> dict[str, Any]:
    """Each coord run in a fresh catalog directory (a new user's first sweep): the same
    work every run, no append-only file from the runs before to load (the `small` part
    has the runs that find one)."""
    edir = tmp / "embedded"
    catalogs = [write_catalog(edir / f"run{i}" / "ecosystem.yaml", flat_todos(n))
                for i in range(repeat)]
    procs.embedded.extend(catalogs)
    moddir = write_raw_module(tmp)
    script = edir / "raw_embedded.py"
    script.write_text(RAW_EMBEDDED)
    raw_cmd = [sys.executable, str(script), str(moddir), str(n), ",".join(REPOS), str(CONCURRENCY)]
    coord: dict[str, list[float]] = {"wall": [], "cpu": [], "span": []}
    raw: dict[str, list[float]] = {"wall": [], "cpu": [], "span": []}
    try:
        for catalog in catalogs:
            ran, st = cli_sweep(procs, catalog, child_env())
            coord["wall"].append(ran.wall)
            coord["cpu"].append(ran.cpu)
            if (s := span_of(st)) is not None:
                coord["span"].append(s)
            ran = run_process(procs, raw_cmd, raw_env(moddir, None), edir)
            raw["wall"].append(ran.wall)
            raw["cpu"].append(ran.cpu)
            raw["span"].append(json.loads(ran.out.strip().splitlines()[-1])["secs"])
    finally:
        for catalog in catalogs:
            stop_embedded(catalog)
    out: dict[str, Any] = {"todos": n}
    for name, d in (("coord", coord), ("raw_inmemory", raw)):
        out[name] = {"wall_s": med(d["wall"]), "cpu_ms_per_todo": med(d["cpu"]) / n * 1000,
                     "span_s": med(d["span"]) if d["span"] else None,
                     "wall_samples": d["wall"], "cpu_samples": d["cpu"], "span_samples": d["span"]}
    return out


def report_embedded(procs: Procs, tmp: Path, n: int, repeat: int,
                    tp: dict[str, Any] | None) -> dict[str, Any]:
    say(f"\n4. embedded mode: {n} no-op todos, COORD_REDIS_URL unset (the catalog's own "
        f"redis-server, started by the CLI), {len(REPOS)} repos x {CONCURRENCY}, median of {repeat}")
    em = embedded(procs, tmp, n, repeat)
    c, r = em["coord"], em["raw_inmemory"]
    dist = None
    if tp and str(n) in tp.get("flat", {}):
        dist = tp["flat"][str(n)]["raw"]["wall_s"]
    em["raw_distributed_wall_s"] = dist
    em["wall_over_raw_distributed"] = c["wall_s"] / dist if dist else None
    em["ms_per_todo_over_inmemory"] = (c["wall_s"] - r["wall_s"]) / n * 1000
    em["span_ms_per_todo_over_inmemory"] = ((c["span_s"] - r["span_s"]) / n * 1000
                                            if c["span_s"] is not None else None)
    say(f"   `coord plan sweep --wait --json`, CLI start to exit: {c['wall_s']:.2f} s "
        f"(its CPU, with the server it reaps, not the detached watchdog: {c['cpu_ms_per_todo']:.2f} ms per todo; the sweep alone "
        f"{c['span_s'] or float('nan'):.2f} s)")
    say(f"   raw Celery, in-memory transport, 4 in-process workers, process start to exit: "
        f"{r['wall_s']:.2f} s (CPU {r['cpu_ms_per_todo']:.2f} ms per todo; apply_async -> last "
        f"task {r['span_s']:.2f} s)")
    if dist:
        say(f"   embedded / raw Celery distributed wall (client process, part 1, {dist:.2f} s): "
            f"{em['wall_over_raw_distributed']:.2f}x "
            f"({target(f'embedded flat {n}: wall / raw Celery distributed wall', em['wall_over_raw_distributed'], '<=', T_EMBEDDED_VS_RAW, 'x')})")
    else:
        say(f"   embedded / raw Celery distributed wall: not measured (run `throughput` with "
            f"{n} in --sizes) ({target(f'embedded flat {n}: wall / raw Celery distributed wall', None, '<=', T_EMBEDDED_VS_RAW, 'x')})")
    say(f"   over Celery's in-memory transport: {em['ms_per_todo_over_inmemory']:+.2f} ms per todo, "
        f"whole processes ({target(f'embedded flat {n}: ms per todo over in-memory Celery', em['ms_per_todo_over_inmemory'], '<=', T_EMBEDDED_MS, ' ms')}); "
        + (f"the sweeps alone {em['span_ms_per_todo_over_inmemory']:+.2f} ms per todo"
           if em["span_ms_per_todo_over_inmemory"] is not None else ""))
    return em


# -- small: an 8-todo embedded sweep ----------------------------------------------------
def report_small(procs: Procs, tmp: Path, n: int, repeat: int) -> dict[str, Any]:
    say(f"\n5. an {n}-todo embedded sweep of `true` (COORD_REDIS_URL unset, a fresh catalog), "
        "`coord plan sweep PLAN --wait` as a process, CLI start to exit")
    sdir = tmp / "small"
    catalog = write_catalog(sdir / "ecosystem.yaml", flat_todos(n))
    procs.embedded.append(catalog)
    env = child_env()
    runs = max(3, repeat)
    base: list[Ran] = []
    warm: list[Ran] = []
    joined: list[Ran] = []
    try:
        cold, _ = cli_sweep(procs, catalog, env, json_out=False)
        try:  # does the server outlive the CLI (then "warm" runs join it) or stop with it?
            from coordination.connection import embedded_server as es

            lingers: bool | None = es.server_pid(catalog) is not None
        except Exception:  # noqa: BLE001 - the module moved
            lingers = None
        for _ in range(runs):
            base.append(run_process(procs, IMPORT_BASELINE, env, ROOT))
            warm.append(cli_sweep(procs, catalog, env, json_out=False)[0])
        url = None
        try:
            from coordination.connection import embedded_server as es

            url = es.ensure_server(catalog)  # another terminal holding the server
            for _ in range(runs):
                joined.append(cli_sweep(procs, catalog, env, json_out=False)[0])
        except ImportError as exc:
            say(f"   (joined: not measured, {exc})")
        finally:
            if url is not None:
                es.release(url)
    finally:
        stop_embedded(catalog)

    def fig(rs: list[Ran]) -> dict[str, Any]:
        return {"wall_s": med([r.wall for r in rs]), "cpu_s": med([r.cpu for r in rs]),
                "wall_samples": [r.wall for r in rs], "cpu_samples": [r.cpu for r in rs]}

    out: dict[str, Any] = {"todos": n, "server_outlives_cli": lingers,
                           "cold": fig([cold]), "warm": fig(warm),
                           "joined": fig(joined) if joined else None, "baseline": fig(base)}
    b = out["baseline"]["wall_s"]
    say(f"   baseline `python -c \"import coordination.cli.main\"`: {b:.3f} s wall, "
        f"{out['baseline']['cpu_s']:.3f} s CPU (median of {runs})")
    for key, label in (("cold", "cold (first run: server dir, server start)"),
                       ("warm", f"warm (next runs{'' if lingers else '; the server starts again'}), "
                                f"median of {runs}"),
                       ("joined", f"joined (another process holds the server), median of {runs}")):
        f = out[key]
        if f is None:
            continue
        f["wall_over_baseline"] = f["wall_s"] / b
        say(f"   {label:<58} {f['wall_s']:6.2f} s wall, {f['cpu_s']:5.2f} s CPU, "
            f"{f['wall_over_baseline']:5.1f}x the baseline  "
            f"({target(f'{n}-todo embedded sweep, {key}: CLI start to exit', f['wall_s'], '<=', T_SMALL_S, ' s')})")
    return out


# -- reads: sweep status, plan validate -------------------------------------------------
def report_reads(procs: Procs, tmp: Path, url: str, n: int, repeat: int,
                 shared: dict[str, Any]) -> dict[str, Any]:
    say(f"\n6. reads as whole processes: `coord sweep status ID` of an ended {n}-todo sweep, "
        f"`coord plan validate PLAN` of a {n}-todo plan (distributed, stdout a pipe)")
    coord_url = f"{url}/0"
    env = coord_env(coord_url)
    ended = shared.get("ended", {}).get(n)
    if ended and ended[1]:
        catalog, sweep_id = ended
        say(f"   (the sweep: {sweep_id}, from part 1)")
    else:
        rdir = tmp / "reads"
        catalog = write_catalog(rdir / "ecosystem.yaml", flat_todos(n))
        coord = Coord(coord_url, catalog)
        workers = start_coord_workers(procs, catalog, coord_url, tmp)
        try:
            wait_ready(coord.app, len(REPOS), workers, "coord")
            _ran, st = cli_sweep(procs, catalog, env)
            sweep_id = st.get("sweep_id") or st.get("id")
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{log_tails(tmp, 'coord-worker-*.log')}") from exc
        finally:
            procs.stop(workers)
    status = [*coord_argv(), "--file", str(catalog), "sweep", "status", str(sweep_id)]
    validate = [*coord_argv(), "--file", str(catalog), "plan", "validate", "PLAN-1"]
    runs = max(5, repeat)
    cases: dict[str, list[Ran]] = {"baseline": [], "sweep_status": [], "plan_validate": []}
    run_process(procs, status, env, ROOT)  # warm-up: page cache, validated catalog cache
    run_process(procs, validate, env, ROOT)
    for _ in range(runs):
        cases["baseline"].append(run_process(procs, IMPORT_BASELINE, env, ROOT))
        cases["sweep_status"].append(run_process(procs, status, env, ROOT))
        cases["plan_validate"].append(run_process(procs, validate, env, ROOT))
    out: dict[str, Any] = {"todos": n, "sweep_id": sweep_id, "runs": runs}
    for k, rs in cases.items():
        out[k] = {"wall_s": med([r.wall for r in rs]), "cpu_s": med([r.cpu for r in rs]),
                  "wall_samples": [r.wall for r in rs], "cpu_samples": [r.cpu for r in rs]}
    b = out["baseline"]
    say(f"   baseline `python -c \"import coordination.cli.main\"`: {b['wall_s']:.3f} s wall, "
        f"{b['cpu_s']:.3f} s CPU (median of {runs}, interleaved)")
    for k, label in (("sweep_status", f"coord sweep status ID ({n} todos)"),
                     ("plan_validate", f"coord plan validate PLAN ({n} todos)")):
        f = out[k]
        what = k.replace("_", " ")
        f["wall_over_baseline"] = f["wall_s"] / b["wall_s"]
        f["cpu_over_baseline"] = f["cpu_s"] / b["cpu_s"]
        say(f"   {label:<40} {f['wall_s']:6.3f} s wall ({f['wall_over_baseline']:.1f}x), "
            f"{f['cpu_s']:6.3f} s CPU ({f['cpu_over_baseline']:.1f}x)  "
            f"({target(f'{what} of {n} todos: wall', f['wall_s'], '<=', T_READ_S, ' s')})")
    return out


# -- send: a level of 1,000 todos -------------------------------------------------------
def report_send(procs: Procs, url: str, n: int, repeat: int) -> dict[str, Any]:
    rounds = max(3, repeat)
    say(f"\n7. sending a level of {n} todos to a redis-server with no worker (purged after each "
        f"round): coord's send path vs Celery's send_task in a loop, same app; bench/send.py, "
        f"median of {rounds} interleaved rounds")
    ran = run_process(procs, [sys.executable, str(BENCH / "send.py"), "--json", "--url",
                              f"{url}/{SEND_DB}", "--todos", str(n), "--rounds", str(rounds)],
                      child_env(), ROOT)
    out: dict[str, Any] = json.loads(ran.out.strip().splitlines()[-1])
    c, p, b = out["coord_send_level"], out["coord_publish_only"], out["celery_send_task"]
    say(f"   coord send_level (queue script + one message per todo) {c['wall_ms_per_todo']:.3f} ms "
        f"per todo wall, {c['cpu_ms_per_todo']:.3f} ms CPU "
        f"({target(f'sending a level of {n}: ms per todo', c['wall_ms_per_todo'], '<=', T_SEND_MS, ' ms')})")
    say(f"     of which publishing (sweeps.sending.send alone) {p['wall_ms_per_todo']:.3f} ms wall, "
        f"{p['cpu_ms_per_todo']:.3f} ms CPU")
    say(f"   Celery send_task x {n}, same app: {b['wall_ms_per_todo']:.3f} ms per todo wall, "
        f"{b['cpu_ms_per_todo']:.3f} ms CPU; coord/send_task wall {out['ratio_wall']:.2f}x, "
        f"CPU {out['ratio_cpu']:.2f}x")
    return out


# -- spawn ------------------------------------------------------------------------------
def report_spawn(procs: Procs, calls: int, repeat: int) -> dict[str, Any]:
    say(f"\n8. the guarded spawn of a todo's command vs subprocess.run([\"/bin/sh\", \"-c\", "
        f"\"true\"]): bench/spawn.py, {calls} spawns x {max(3, repeat)} interleaved rounds")
    ran = run_process(procs, [sys.executable, str(BENCH / "spawn.py"), "--json", "--calls",
                              str(calls), "--rounds", str(max(3, repeat))], child_env(), ROOT)
    res: dict[str, Any] = json.loads(ran.out.strip().splitlines()[-1])
    per = res["per_spawn"]
    say(f"   CPU per spawn, parent + children (the guard reaped and counted): guarded "
        f"{per['guarded']['cpu_ms']:.3f} ms, plain {per['plain']['cpu_ms']:.3f} ms "
        f"(capture_output {per['plain_captured']['cpu_ms']:.3f} ms); wall "
        f"{per['guarded']['wall_ms']:.3f} vs {per['plain']['wall_ms']:.3f} ms")
    say(f"   guarded/plain CPU {res['cpu_ratio']:.2f}x "
        f"({target('guarded spawn: CPU / plain subprocess.run', res['cpu_ratio'], '<=', T_SPAWN, 'x')})"
        + ("" if res.get("subreaper") else "  [subreaper failed: the guard's CPU is missing]"))
    return res


# -- leases, events reports ------------------------------------------------------------
def report_leases(url: str, m: int) -> dict[str, Any]:
    lz = leases(url, m)
    lz["ratio"] = lz["coord_ops_s"] / lz["raw_ops_s"]
    lz["renew_ratio"] = lz["coord_renew_s"] / lz["raw_renew_s"]
    say(f"\n2. leases as workers hold them, {m} of each, one client")
    say(f"   take + give back: coord Transitions.start + finish {lz['coord_ops_s']:.0f}/s, "
        f"redis-py Lock acquire + release {lz['raw_ops_s']:.0f}/s, coord/raw ops/s {lz['ratio']:.2f}")
    say(f"   renew: coord LeaseManager.extend {lz['coord_renew_s']:.0f}/s, "
        f"redis-py Lock.extend {lz['raw_renew_s']:.0f}/s, coord/raw ops/s {lz['renew_ratio']:.2f}")
    return lz


def report_events(url: str, k: int) -> dict[str, Any]:
    ev = events(url, k)
    ev["ratio_p50"] = ev["coord_p50_ms"] / ev["raw_p50_ms"]
    ev["ratio_p99"] = ev["coord_p99_ms"] / ev["raw_p99_ms"]
    say(f"\n3. event latency, {k} events one every 2 ms, writer and reader threads with their own clients")
    say(f"   coord emit -> follow       p50 {ev['coord_p50_ms']:6.2f} ms   p99 {ev['coord_p99_ms']:6.2f} ms")
    say(f"   PUBLISH -> SUBSCRIBE       p50 {ev['raw_p50_ms']:6.2f} ms   p99 {ev['raw_p99_ms']:6.2f} ms")
    say(f"   coord/raw latency          p50 {ev['ratio_p50']:6.2f}      p99 {ev['ratio_p99']:6.2f}")
    return ev


def report_figures() -> None:
    say("\nIssue #22's figures, this run:")
    for f in FIGURES:
        v = "-" if f["value"] is None else f"{f['value']:.3g}"
        met = {True: "met", False: "NOT met", None: "not measured"}[f["met"]]
        say(f"   {f['figure']:<62} {v:>8}   target {f['target']:<9} {met}")


# -- main -------------------------------------------------------------------------------
PARTS = ("throughput", "leases", "events", "embedded", "small", "reads", "send", "spawn")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="400,2000",
                    help="throughput: the flat sweeps' sizes, comma-separated (400,2000); the "
                         "smallest also sizes the 4-level shapes and `embedded`")
    ap.add_argument("--todos", type=int, help="the same as --sizes N (one size)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per figure, interleaved; the median is kept (3)")
    ap.add_argument("--leases", type=int, default=2000, help="lease take+give-back pairs and renewals (2000)")
    ap.add_argument("--events", type=int, default=1000, help="events for the latency figures (1000)")
    ap.add_argument("--small-todos", type=int, default=8, help="small: the embedded sweep's todos (8)")
    ap.add_argument("--reads-todos", type=int, default=400, help="reads: todos of the sweep and plan (400)")
    ap.add_argument("--send-todos", type=int, default=1000, help="send: todos in the level (1000)")
    ap.add_argument("--spawn-calls", type=int, default=200, help="spawn: spawns per kind per round (200)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated subset of {','.join(PARTS)} (default all)")
    ap.add_argument("--skip-levels", action="store_true", help="throughput: only the flat shapes")
    ap.add_argument("--json", action="store_true", help="print only the final JSON line")
    args = ap.parse_args()
    try:
        args.sizes = ([args.todos] if args.todos else
                      sorted({int(s) for s in args.sizes.split(",") if s.strip()}))
    except ValueError:
        ap.error("--sizes: comma-separated integers")
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not args.sizes or min(args.sizes) < 4 or args.repeat < 1 or args.leases < 1 or args.events < 10:
        ap.error("need sizes >= 4, --repeat >= 1, --leases >= 1, --events >= 10")
    if unknown := set(args.parts) - set(PARTS):
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}")
    return args


def run_parts(args: argparse.Namespace, procs: Procs, tmp: Path, result: dict[str, Any]
              ) -> list[str]:
    """Each part of ``args.parts`` in order, its result into ``result``; the parts that
    failed (one part's failure must not lose the others)."""
    sizes, shared, failed = args.sizes, {}, []
    url, redis_proc = start_redis(procs, tmp)
    say(f"redis-server on {url}; {os.cpu_count()} cpus; every ratio is coord / baseline")
    runs: dict[str, Any] = {
        "throughput": lambda: report_throughput(procs, tmp, url, redis_proc.pid, sizes,
                                                args.repeat, not args.skip_levels, shared),
        "leases": lambda: report_leases(url, args.leases),
        "events": lambda: report_events(url, args.events),
        "embedded": lambda: report_embedded(procs, tmp, min(sizes), args.repeat,
                                            result.get("throughput")),
        "small": lambda: report_small(procs, tmp, args.small_todos, args.repeat),
        "reads": lambda: report_reads(procs, tmp, url, args.reads_todos, args.repeat, shared),
        "send": lambda: report_send(procs, url, args.send_todos, args.repeat),
        "spawn": lambda: report_spawn(procs, args.spawn_calls, args.repeat),
    }
    for name in PARTS:
        if name not in args.parts:
            continue
        try:
            result[name] = runs[name]()
        except Exception as exc:  # noqa: BLE001 - one part's failure must not lose the others
            # (each part stops what it started; SIGTERM and Ctrl-C still end the run)
            failed.append(name)
            text = f"{type(exc).__name__}: {exc}"
            # its head says what failed; the tail (workers' logs) may say why
            result[name] = {"error": text if len(text) <= 4000
                            else f"{text[:1500]}\n...\n{text[-2500:]}"}
            say(f"\n   part `{name}` FAILED: {text[:1500]}\n{traceback.format_exc()[-3000:]}")
            FIGURES.append({"figure": f"part `{name}`: failed, see its error", "value": None,
                            "target": "-", "met": None})
            REPORT.append(_report.figure(f"part `{name}`: failed", None))
    return failed


def main() -> int:
    global QUIET
    args = parse_args()
    QUIET = args.json
    use_compiled_modules(say)
    stop_on_signals()
    procs = Procs()
    t_start = time.perf_counter()
    result: dict[str, Any] = {"bench": "sweep", "sizes": args.sizes, "repos": len(REPOS),
                              "concurrency": CONCURRENCY, "repeat": args.repeat,
                              "cpus": os.cpu_count(), "parts": args.parts}
    with tempfile.TemporaryDirectory(prefix="coord-bench-") as tmpname:
        try:
            failed = run_parts(args, procs, Path(tmpname), result)
        finally:
            procs.stop()
    report_figures()
    _report.record("sweep", REPORT, notes=f"every ratio is coord / baseline; {len(REPOS)} repos "
                   f"x {CONCURRENCY} slots, median of {args.repeat}")
    result["figures"] = FIGURES
    result["seconds"] = time.perf_counter() - t_start
    result["failed"] = failed
    say(f"\n({result['seconds']:.0f} s)" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    print(json.dumps(result, separators=(",", ":")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
