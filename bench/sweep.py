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
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import _report  # noqa: E402  (bench/_report.py: the results JSON)

REPOS = [f"repo{i}" for i in range(4)]
CONCURRENCY = 2
NAMESPACE = "bench"
SEND_DB = 2  # the send part's database on the coord server (flushed after each round)
READY_TIMEOUT = 60.0
SWEEP_TIMEOUT = 600.0
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


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# -- processes --------------------------------------------------------------------------
class Procs:
    """Every child we start, each in its own process group; stopped in `finally`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.embedded: list[Path] = []  # catalogs whose embedded server we may have started

    def start(self, cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        if procs is None and len(self.procs) > 1:  # workers first, redis-server last
            self.stop(self.procs[1:])
        targets = list(self.procs if procs is None else procs)
        for p in targets:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        end = time.monotonic() + 10
        for p in targets:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in targets:
            # the group too: a worker's todo may have left children behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            if p in self.procs:
                self.procs.remove(p)
        if procs is None:
            for catalog in self.embedded:
                stop_embedded(catalog)


def stop_embedded(catalog: Path) -> None:
    """Stop the embedded server of a catalog of ours, if one outlived its processes."""
    try:
        from coordination.connection import embedded_server as es

        pid = es.server_pid(catalog)
    except Exception:  # noqa: BLE001 - the module moved: nothing we can find to stop
        return
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Ran:
    """One whole process: wall from before its start to its exit, its own CPU (user +
    system of it and its waited-for descendants, from wait4), its output."""

    wall: float
    cpu: float
    out: str
    err: str
    rc: int


def run_process(procs: Procs, cmd: list[str], env: dict[str, str], cwd: Path,
                stdin: bytes | None = None, ok: tuple[int, ...] = (0,),
                timeout: float = SWEEP_TIMEOUT) -> Ran:
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = procs.start(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=errf,
                        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        timer = threading.Timer(timeout, lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.daemon = True
        timer.start()
        try:
            if stdin is not None:
                assert p.stdin is not None
                p.stdin.write(stdin)
                p.stdin.close()
            assert p.stdout is not None
            out = p.stdout.read()
            _pid, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
            procs.stop([p])
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    ran = Ran(wall, usage.ru_utime + usage.ru_stime, out.decode(errors="replace"), err,
              p.returncode)
    if ran.rc not in ok:
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {ran.rc}:\n{err[-2000:]}\n{ran.out[-500:]}")
    return ran


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(procs: Procs, tmp: Path, name: str = "redis") -> tuple[str, subprocess.Popen[bytes]]:
    import redis

    for _ in range(3):
        port = free_port()
        cmd = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--dir", str(tmp), "--logfile", str(tmp / f"{name}.log")]
        p = procs.start(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}"
        probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        end = time.monotonic() + 15
        while time.monotonic() < end and p.poll() is None:
            try:
                if probe.ping():
                    probe.close()
                    return url, p
            except redis.RedisError:
                time.sleep(0.05)
        probe.close()
        procs.stop([p])
    raise RuntimeError("redis-server did not start")


def child_env(**extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COORD_") and not k.startswith("RAW_BENCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for k, v in extra.items():
        if v is not None:
            env[k] = v
    return env


def coord_env(url: str) -> dict[str, str]:
    # One namespace for the run's catalogs (one per size, and the workers'): shared on
    # purpose, so the namespace claim (one catalog per namespace) is waived.
    return child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1")


def coord_argv() -> list[str]:
    """`coord` as a user runs it: the console script beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "coord"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coordination.cli.main"]


IMPORT_BASELINE = [sys.executable, "-c", "import coordination.cli.main"]
#: What the waiting CLI cannot do without whatever coord does: the interpreter and the
#: libraries it must import (click, Pydantic and pydantic-settings for the catalog and the
#: settings, redis-py, PyYAML and ruamel for the catalog sync), with the cyclic collector
#: paused and frozen out of the exit as coord's CLI does (cli/main.py). Its CPU is the
#: floor of the waiting CLI's, measured in the same rounds: what is over it is coord's own.
LIBS_BASELINE = [sys.executable, "-c", "import atexit, gc; gc.disable(); atexit.register("
                 "gc.freeze); import click, pydantic, pydantic_settings, redis, yaml, "
                 "ruamel.yaml; from pydantic import BaseModel"]


class CpuMeter:
    """User + system CPU seconds of long-lived processes and everything they spawned:
    each root and its live descendants, with the children each has reaped (cutime,
    cstime). Workers run under bench/_reaper.py, so orphans are reaped (and counted) too."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def total(self) -> float:
        import psutil

        s = 0.0
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in tree:
                try:
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                s += t.user + t.system + t.children_user + t.children_system
        return s


class CommandStats:
    """Redis commands the whole server ran during a block (commands run by Lua included)."""

    def __init__(self, url: str) -> None:
        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.calls: dict[str, int] = {}

    @contextlib.contextmanager
    def count(self) -> Iterator[None]:
        self.r.config_resetstat()
        yield
        info = self.r.info("commandstats")
        self.calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()
                      if not k.startswith("cmdstat_config") and not k.startswith("cmdstat_info")}


def per_todo(calls: dict[str, int], n: int, top: int = 12) -> dict[str, Any]:
    total = sum(calls.values())
    busiest = sorted(calls.items(), key=lambda kv: -kv[1])[:top]
    return {"total": total / n, "top": {k: round(v / n, 2) for k, v in busiest}}


def log_tails(tmp: Path, pattern: str, chars: int = 1500) -> str:
    return "\n".join(f"--- {f.name}:\n{f.read_text(errors='replace')[-chars:]}"
                     for f in sorted(tmp.glob(pattern)))


# -- catalogs ---------------------------------------------------------------------------
def flat_todos(n: int, plan: str = "PLAN-1", base: int = 100000) -> list[dict[str, Any]]:
    return [{"id": f"TODO-{base + i}", "task": f"flat {i}", "repo": REPOS[i % 4],
             "plan": plan, "run": "true"} for i in range(n)]


def level_todos(n: int, plan: str = "PLAN-2", base: int = 200000) -> list[dict[str, Any]]:
    """n todos in 4 levels: each todo of level k > 0 waits for the todo at the same
    position of level k - 1 (n/4 chains of 4)."""
    width = max(1, n // 4)
    todos = []
    for i in range(n):
        level = min(3, i // width)
        pos = (i - level * width) % width
        blocked = [f"TODO-{base + (level - 1) * width + pos}"] if level else []
        todos.append({"id": f"TODO-{base + i}", "task": f"level {i}", "repo": REPOS[i % 4],
                      "plan": plan, "run": "true", "blocked_by": blocked})
    return todos


def write_catalog(path: Path, todos: list[dict[str, Any]]) -> Path:
    """A catalog of the 4 repos (checkouts under `repos/` beside it) and these todos."""
    import yaml

    for r in REPOS:
        (path.parent / "repos" / r).mkdir(parents=True, exist_ok=True)
    plans = sorted({t["plan"] for t in todos})
    data = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "concurrency": CONCURRENCY} for r in REPOS],
        "coordination": {
            "plans": [{"id": p, "title": p, "status": "active"} for p in plans],
            "todos": todos,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def levels_of(n: int) -> list[int]:
    """Sizes of the 4-level plan's levels (the last one takes the remainder)."""
    width = max(1, n // 4)
    sizes = [0, 0, 0, 0]
    for i in range(n):
        sizes[min(3, i // width)] += 1
    return [s for s in sizes if s]


def span_of(st: dict[str, Any]) -> float | None:
    """A sweep's own created -> finished span, from its status document."""
    try:
        return (dt.datetime.fromisoformat(st["finished_at"]).timestamp()
                - dt.datetime.fromisoformat(st["created_at"]).timestamp())
    except (KeyError, TypeError, ValueError):
        return None


# -- coord distributed ------------------------------------------------------------------
def start_workers(procs: Procs, argvs: list[list[str]], envs: list[dict[str, str]],
                  logs: list[Path], cwd: Path) -> list[Any]:
    """Each under bench/_reaper.py (a subreaper), in its own process group."""
    out = []
    for argv, env, logpath in zip(argvs, envs, logs):
        log = open(logpath, "wb")  # noqa: SIM115 - the child keeps it
        out.append(procs.start([sys.executable, str(BENCH / "_reaper.py"), "--", *argv],
                               env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd))
        log.close()
    return out


def start_coord_workers(procs: Procs, catalog: Path, url: str, logdir: Path) -> list[Any]:
    return start_workers(
        procs, [[*coord_argv(), "--file", str(catalog), "worker", "--repo", r, "--loglevel",
                 "WARNING"] for r in REPOS],
        [coord_env(url)] * len(REPOS), [logdir / f"coord-worker-{r}.log" for r in REPOS], ROOT)


def wait_ready(app: Any, expect: int, workers: list[Any], what: str) -> None:
    end = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < end:
        dead = [p for p in workers if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{what} worker exited with {dead[0].returncode} before it was ready")
        replies = app.control.ping(timeout=0.5) or []
        if len(replies) >= expect:
            return
    raise RuntimeError(f"{what} workers did not answer ping within {READY_TIMEOUT:.0f} s")


class Coord:
    """coord's library, in this process, on a Redis URL (for the 4-level shapes)."""

    def __init__(self, url: str, catalog: Path) -> None:
        os.environ["COORD_REDIS_URL"] = url
        os.environ["COORD_NAMESPACE"] = NAMESPACE
        os.environ["COORD_SHARE_NAMESPACE"] = "1"
        from coordination.catalog.store import CatalogStore
        from coordination.dispatch import CeleryDispatcher
        from coordination.runtime.context import get_runtime
        from coordination.settings import get_settings
        from coordination.sweeps import SweepService
        from workers.app import create_app, limits_from_catalog

        get_settings.cache_clear()
        get_runtime.cache_clear()
        self.rt = get_runtime()
        longest_todo, longest_sweep = limits_from_catalog(CatalogStore(catalog).load())
        self.app = create_app(self.rt.settings, longest_todo=longest_todo, longest_sweep=longest_sweep)
        self.rt.dispatcher = CeleryDispatcher(self.app, self.rt.keys)
        self.svc = SweepService(self.rt, catalog)

    def sweep(self, plan: str, strategy: str = "levels") -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        sid = self.svc.start(plan, strategy=strategy)
        st = self.svc.wait(sid, timeout=SWEEP_TIMEOUT)
        secs = time.perf_counter() - t0
        if st["status"] != "succeeded":
            bad = {t: v for t, v in st["todos"].items() if v["status"] != "succeeded"}
            raise RuntimeError(f"coord sweep {sid} ended {st['status']} ({st.get('reason')}): "
                               f"{len(bad)} todos not succeeded, e.g. {next(iter(bad.items()), None)}")
        return secs, dict(st)


def cli_sweep(procs: Procs, catalog: Path, env: dict[str, str], plan: str = "PLAN-1",
              json_out: bool = True) -> tuple[Ran, dict[str, Any]]:
    """`coord plan sweep PLAN --wait [--json]` as a user runs it; the catalog put back after
    (--wait synced the completions into it)."""
    backup = catalog.read_bytes()
    cmd = [*coord_argv(), "--file", str(catalog), "plan", "sweep", plan, "--wait"]
    if json_out:
        cmd.append("--json")
    try:
        ran = run_process(procs, cmd, env, ROOT)
    finally:
        catalog.write_bytes(backup)
    st: dict[str, Any] = {}
    if json_out:
        st = json.loads(ran.out)
        if st.get("status") != "succeeded":
            raise RuntimeError(f"coord sweep ended {st.get('status')}: {st.get('reason')}\n{ran.err[-2000:]}")
    return ran, st


# -- raw Celery -------------------------------------------------------------------------
RAW_APP = '''
"""Raw Celery baseline for bench/sweep.py (generated)."""
import os
import subprocess
import threading

from celery import Celery

# In-memory mode: the cache+memory result backend is per thread (Celery keeps one
# backend instance per thread), so completions are counted here instead.
done = threading.Condition()
finished = [0]

URL = os.environ.get("RAW_BENCH_URL") or None
if URL:
    app = Celery("rawbench", broker=URL, backend=URL)
    transport = {}
else:  # in-memory transport (coord's embedded mode used it until 0.3)
    app = Celery("rawbench", broker="memory://localhost/", backend="cache+memory://localhost/")
    transport = {"polling_interval": 0.01}
app.conf.update(
    task_serializer="json", result_serializer="json",
    accept_content=["json"], result_accept_content=["json"],
    task_acks_late=True, task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options=transport,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="raw.run")
def run(cmd):
    rc = subprocess.run(["/bin/sh", "-c", cmd], cwd=os.environ.get("RAW_BENCH_CWD") or None).returncode
    if not URL:
        with done:
            finished[0] += 1
            done.notify_all()
    return rc


@app.task(name="raw.barrier")
def barrier():
    return 0
'''

# The raw client as a user would write it: import, send a group of N, wait for all, exit.
RAW_CLIENT = '''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import rawbench_app as m
from celery import group

n, repos = int(sys.argv[2]), sys.argv[3].split(",")
sigs = [m.run.si("true").set(queue=f"raw.{repos[i % len(repos)]}") for i in range(n)]
t0 = time.perf_counter()
res = group(sigs).apply_async()
# interval: GroupResult.get otherwise sleeps up to 0.5 s after the last result
out = res.get(timeout=600, interval=0.005)
span = time.perf_counter() - t0
assert len(out) == n and not any(out), out
print(json.dumps({"span": span}))
'''


def write_raw_module(tmp: Path) -> Path:
    moddir = tmp / "rawmod"
    moddir.mkdir(exist_ok=True)
    (moddir / "rawbench_app.py").write_text(RAW_APP)
    (moddir / "raw_client.py").write_text(RAW_CLIENT)
    return moddir


def raw_env(moddir: Path, url: str | None) -> dict[str, str]:
    env = child_env(RAW_BENCH_URL=url)
    env["PYTHONPATH"] = os.pathsep.join([str(moddir), env["PYTHONPATH"]])
    return env


def start_raw_workers(procs: Procs, moddir: Path, url: str, logdir: Path) -> list[Any]:
    return start_workers(
        procs, [[sys.executable, "-m", "celery", "-A", "rawbench_app", "worker", "-Q",
                 f"raw.{r},raw.control", "-P", "threads", "-c", str(CONCURRENCY),
                 "--without-gossip", "--without-mingle", "-l", "WARNING", "-n", f"raw{i}@%h"]
                for i, r in enumerate(REPOS)],
        [raw_env(moddir, url)] * len(REPOS), [logdir / f"raw-worker-{r}.log" for r in REPOS],
        moddir)


def raw_app(moddir: Path, url: str) -> Any:
    os.environ["RAW_BENCH_URL"] = url
    sys.path.insert(0, str(moddir))
    import rawbench_app  # type: ignore[import-not-found]

    return rawbench_app


def raw_sigs(mod: Any, count: int, offset: int = 0) -> list[Any]:
    return [mod.run.si("true").set(queue=f"raw.{REPOS[(offset + i) % 4]}") for i in range(count)]


def raw_levels(mod: Any, n: int) -> float:
    """A chain of 4 chords, each a level's group and a no-op barrier on the control queue.

    (A plain chain of groups is far slower in Celery 5: each group-then-group
    becomes a chord whose body is a group, several seconds for 200 tasks here.)
    """
    from celery import chain, chord

    parts, off = [], 0
    for size in levels_of(n):
        parts.append(chord(raw_sigs(mod, size, off), mod.barrier.si().set(queue="raw.control")))
        off += size
    t0 = time.perf_counter()
    res = chain(*parts).apply_async()
    out = res.get(timeout=SWEEP_TIMEOUT, interval=0.005)
    secs = time.perf_counter() - t0
    assert out == 0, out
    # Stop listening for results now, while their Redis is up: a subscription left to
    # AsyncResult.__del__ at interpreter exit reconnects to a server the bench has
    # stopped and prints a traceback after the report.
    consumer, prefix = res.backend.result_consumer, res.backend.task_keyprefix
    for key in list(consumer.subscribed_to):
        consumer.cancel_for(key.decode()[len(prefix):])
    return secs


# -- GNU parallel, xargs ----------------------------------------------------------------
def ensure_parallel() -> str | None:
    """GNU parallel's path; installed with apt-get when missing and we are root."""

    def gnu() -> str | None:
        path = shutil.which("parallel")
        if path is None:
            return None
        r = subprocess.run([path, "--version"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        return path if "GNU parallel" in r.stdout else None

    path = gnu()
    if path or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return path
    say("   GNU parallel is missing: installing it for the bench (apt-get install -y parallel)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "parallel"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return gnu()


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
    coord_stats, raw_stats = CommandStats(coord_url), CommandStats(raw_url)
    moddir = write_raw_module(tmp)
    par = ensure_parallel()
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
        cmeter = CpuMeter([redis_pid] + [p.pid for p in cworkers])
        rmeter = CpuMeter([raw_redis.pid] + [p.pid for p in rworkers])
        cenv, renv = coord_env(coord_url), raw_env(moddir, raw_url)
        raw_cmd = [sys.executable, str(moddir / "raw_client.py"), str(moddir)]
        # warm-up: connections, imports, page cache, each catalog's validated cache
        coord.sweep("PLAN-3")
        for n in sizes:
            run_process(procs, [*coord_argv(), "--file", str(flats[n]), "plan", "sweep",
                                "PLAN-1", "--dry-run"], cenv, ROOT)
        run_process(procs, [*raw_cmd, "8", ",".join(REPOS)], renv, moddir)

        for _ in range(repeat):
            libs.append(run_process(procs, LIBS_BASELINE, cenv, ROOT).cpu)
            for n in sizes:
                r = runs[n]
                c0 = cmeter.total()
                with coord_stats.count():
                    ran, st = cli_sweep(procs, flats[n], cenv)
                r["coord"].all_cpu.append(cmeter.total() - c0 + ran.cpu)
                r["coord"].add_calls(coord_stats.calls)
                r["coord"].wall.append(ran.wall)
                r["coord"].own_cpu.append(ran.cpu)
                if (s := span_of(st)) is not None:
                    r["coord"].span.append(s)
                shared.setdefault("ended", {})[n] = (flats[n], st.get("sweep_id") or st.get("id"))

                c0 = rmeter.total()
                with raw_stats.count():
                    ran = run_process(procs, [*raw_cmd, str(n), ",".join(REPOS)], renv, moddir)
                r["raw"].all_cpu.append(rmeter.total() - c0 + ran.cpu)
                r["raw"].add_calls(raw_stats.calls)
                r["raw"].wall.append(ran.wall)
                r["raw"].own_cpu.append(ran.cpu)
                r["raw"].span.append(json.loads(ran.out.strip().splitlines()[-1])["span"])

                seq = [str(i) for i in range(1, n + 1)]
                if par is not None:
                    ran = run_process(procs, [par, "--will-cite", "-j", str(PARALLEL_JOBS),
                                              "true", ":::", *seq], child_env(), tmp)
                    r["parallel"].wall.append(ran.wall)
                    r["parallel"].own_cpu.append(ran.cpu)
                    r["parallel"].all_cpu.append(ran.cpu)
                ran = run_process(procs, ["xargs", "-P", str(PARALLEL_JOBS), "-n", "1",
                                          "/bin/sh", "-c", "true"], child_env(), tmp,
                                  stdin="\n".join(seq).encode())
                r["xargs"].wall.append(ran.wall)
                r["xargs"].own_cpu.append(ran.cpu)
                r["xargs"].all_cpu.append(ran.cpu)

        if levels:
            samples: dict[str, list[float]] = {"coord_levels": [], "coord_eager": [],
                                               "raw_levels": []}
            raw_levels(mod, 8)  # warm-up
            for _ in range(repeat):
                samples["coord_levels"].append(coord.sweep("PLAN-2", "levels")[0])
                samples["coord_eager"].append(coord.sweep("PLAN-2", "eager")[0])
                samples["raw_levels"].append(raw_levels(mod, lv))
            out["levels_todos"] = lv
            for name, ck in (("4_levels", "coord_levels"), ("4_levels_eager", "coord_eager")):
                c, rw = med(samples[ck]), med(samples["raw_levels"])
                out[name] = {"coord_s": c, "raw_s": rw, "coord_todos_s": lv / c,
                             "raw_todos_s": lv / rw, "ratio": rw / c,
                             "overhead_ms_per_todo": (c - rw) / lv * 1000,
                             "coord_samples": samples[ck], "raw_samples": samples["raw_levels"]}
    finally:
        procs.stop(cworkers + rworkers)
        procs.stop([raw_redis])

    for n in sizes:
        r = runs[n]
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
        out["flat"][str(n)] = row
    out["parallel"] = par
    out["libs_import"] = {"cpu_s": med(libs), "samples": libs}
    for n in sizes:
        own = out["flat"][str(n)]["coord"]
        own["own_cpu_over_libs_ms_per_todo"] = (med(runs[n]["coord"].own_cpu) - med(libs)) / n * 1000
    return out


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
            f"pydantic-settings, redis-py, PyYAML, ruamel: {tp['libs_import']['cpu_s'] * 1000:.0f} ms "
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


# -- leases -----------------------------------------------------------------------------
def leases(url: str, m: int) -> dict[str, float]:
    """A lease as workers hold one: granted with the todo's start
    (``Transitions.start``: the slot with the next fence, the checkpoint claimed,
    ``todo.started``) and given back with its finish (``Transitions.finish``: the
    fenced outcome, the slot released, ``todo.succeeded``); and its heartbeat
    (``LeaseManager.extend``). Baselines: redis-py's Lock acquire + release, and
    Lock.extend."""
    import itertools

    from redis.lock import Lock

    from coordination.connection.client import get_redis
    from coordination.keys import Keys
    from coordination.runtime.checkpoints import CheckpointStore
    from coordination.runtime.leases import LeaseManager
    from coordination.runtime.transitions import Transitions
    from coordination.settings import Settings
    from coordination.status import TodoStatus

    r = get_redis(Settings(redis_url=f"{url}/0", namespace=NAMESPACE))
    keys = Keys(NAMESPACE)
    sweep_id, repo = "leasebench", "leasebench"
    CheckpointStore(r, keys).create_sweep(
        sweep_id, {"plan": "PLAN-BENCH", "strategy": "eager", "status": "running"})
    # TTLs far above a round's length: on a loaded machine 2 x M pairs can take longer
    # than a short TTL, and the held lease or lock would expire before it is renewed
    ttl = 600.0
    tr = Transitions(r, keys, lease_ttl=ttl)
    lm = LeaseManager(r, keys, ttl=ttl)
    todo_ids = (f"T{i}" for i in itertools.count())

    def coord_once() -> None:
        todo = next(todo_ids)
        st = tr.start(sweep_id, todo, repo=repo, concurrency=1, preds=[], worker="bench")
        assert st.verdict == "started" and st.lease is not None, st
        done = tr.finish(sweep_id, todo, lease=st.lease, status=TodoStatus.succeeded,
                         fields={"exit_code": 0}, event={"exit_code": 0})
        assert done.ok, done

    held: Any = None

    def coord_renew() -> None:
        assert lm.extend(held)

    lock = Lock(r, f"{NAMESPACE}:rawlock", timeout=ttl)

    def raw_once() -> None:
        assert lock.acquire(blocking=False)
        lock.release()

    renewed = Lock(r, f"{NAMESPACE}:rawlock-renew", timeout=ttl)

    def raw_renew() -> None:
        assert renewed.extend(ttl, replace_ttl=True)

    def rate(fn: Any) -> float:
        for _ in range(min(100, m)):  # warm-up (EVALSHA cache, connection)
            fn()
        t0 = time.perf_counter()
        for _ in range(m):
            fn()
        return m / (time.perf_counter() - t0)

    # interleave two rounds each so a noisy neighbour hits both alike
    c1, b1, c2, b2 = rate(coord_once), rate(raw_once), rate(coord_once), rate(raw_once)
    held = tr.start(sweep_id, "renewed", repo=f"{repo}-renew", concurrency=1, preds=[],
                    worker="bench").lease
    assert held is not None
    assert renewed.acquire(blocking=False)
    e1, f1, e2, f2 = rate(coord_renew), rate(raw_renew), rate(coord_renew), rate(raw_renew)
    assert lm.release(held)
    renewed.release()
    return {"coord_ops_s": max(c1, c2), "raw_ops_s": max(b1, b2),
            "coord_renew_s": max(e1, e2), "raw_renew_s": max(f1, f2)}


# -- events -----------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _collect(recv: Any, k: int, warm: int, send: Any, interval: float) -> list[float]:
    """Run `recv` (returns latencies) in a thread while `send(i)` sends k events."""
    got: list[float] = []
    ready = threading.Event()
    t = threading.Thread(target=lambda: got.extend(recv(ready)), daemon=True)
    t.start()
    ready.wait(10)
    time.sleep(0.2)  # let the reader block in its read
    for i in range(k):
        send(i)
        time.sleep(interval)
    t.join(timeout=60)
    return [x * 1000 for x in got[warm:]]


def events(url: str, k: int, interval: float = 0.002) -> dict[str, float]:
    import redis

    from coordination.keys import Keys
    from coordination.runtime.events import EventLog

    keys = Keys(NAMESPACE)
    sweep_id = f"EVBENCH-{os.getpid()}-{time.time_ns()}"
    warm = min(50, k // 10)
    # separate clients (own pools), like a worker and a CLI
    w = redis.Redis.from_url(f"{url}/0", decode_responses=True)
    c = redis.Redis.from_url(f"{url}/0", decode_responses=True)
    writer, reader = EventLog(w, keys), EventLog(c, keys)
    total = k + warm

    def coord_recv(ready: threading.Event) -> list[float]:
        lat: list[float] = []
        ready.set()
        deadline = time.time() + 60
        for ev in reader.follow(sweep_id=sweep_id, block_ms=100,
                                stop=lambda: len(lat) >= total or time.time() > deadline):
            lat.append(time.time() - ev.data["sent"])
            if len(lat) >= total:
                break
        return lat

    def coord_send(i: int) -> None:
        writer.emit("todo.started", sweep_id=sweep_id, todo_id=f"TODO-{i}", sent=time.time())

    coord_lat = _collect(coord_recv, total, warm, coord_send, interval)

    channel = f"{NAMESPACE}:evbench"

    def raw_recv(ready: threading.Event) -> list[float]:
        lat: list[float] = []
        ps = c.pubsub(ignore_subscribe_messages=True)
        ps.subscribe(channel)
        while ps.get_message(timeout=1.0) is None and not ps.subscribed:
            pass
        ready.set()
        deadline = time.time() + 60
        while len(lat) < total and time.time() < deadline:
            msg = ps.get_message(timeout=1.0)
            if msg and msg["type"] == "message":
                lat.append(time.time() - json.loads(msg["data"])["sent"])
        ps.close()
        return lat

    def raw_send(i: int) -> None:
        w.publish(channel, json.dumps({"kind": "todo.started", "todo_id": f"TODO-{i}", "sent": time.time()}))

    raw_lat = _collect(raw_recv, total, warm, raw_send, interval)
    w.close()
    c.close()
    if len(coord_lat) < k or len(raw_lat) < k:
        raise RuntimeError(f"events lost: coord got {len(coord_lat)}/{k}, pub/sub {len(raw_lat)}/{k}")
    return {"coord_p50_ms": statistics.median(coord_lat), "coord_p99_ms": pct(coord_lat, 0.99),
            "raw_p50_ms": statistics.median(raw_lat), "raw_p99_ms": pct(raw_lat, 0.99)}


# -- embedded ---------------------------------------------------------------------------
RAW_EMBEDDED = '''
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import rawbench_app as m
from celery import group
from celery.worker import WorkController

n, repos, conc = int(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4])

class Ready(WorkController):
    def __init__(self, *a, **kw):
        self.ready = threading.Event()
        super().__init__(*a, **kw)
    def on_consumer_ready(self, consumer):
        self.ready.set()

workers = []
for r in repos:
    w = Ready(app=m.app, hostname=f"{r}@raw", queues=[f"raw.{r}"], pool="threads",
              concurrency=conc, loglevel="WARNING", without_heartbeat=True,
              without_mingle=True, without_gossip=True)
    threading.Thread(target=w.start, daemon=True).start()
    assert w.ready.wait(30)
    workers.append(w)

sigs = [m.run.si("true").set(queue=f"raw.{repos[i % len(repos)]}") for i in range(n)]
t0 = time.perf_counter()
group(sigs).apply_async()
with m.done:
    assert m.done.wait_for(lambda: m.finished[0] >= n, timeout=600), "raw sweep timed out"
print(json.dumps({"secs": time.perf_counter() - t0}))
for w in workers:
    w.stop(in_sighandler=False, exitcode=0)
'''


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


def main() -> int:
    global QUIET
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
    QUIET = args.json
    try:
        sizes = [args.todos] if args.todos else sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        ap.error("--sizes: comma-separated integers")
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not sizes or min(sizes) < 4 or args.repeat < 1 or args.leases < 1 or args.events < 10:
        ap.error("need sizes >= 4, --repeat >= 1, --leases >= 1, --events >= 10")
    if unknown := set(parts) - set(PARTS):
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}")

    # Whole-process figures are of an install as users have it: Python keeps each
    # module's bytecode. With PYTHONDONTWRITEBYTECODE set every coord process compiled
    # coord's own modules from source at start-up (an editable install has no .pyc),
    # some 30 ms on `sweep status`; compile them once, and let the children keep theirs.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        say("PYTHONDONTWRITEBYTECODE unset for this bench: its processes use compiled modules")
    import compileall

    for pkg in ("coordination", "workers"):
        compileall.compile_dir(str(ROOT / pkg), quiet=1)

    def _exit(signum: int, _frame: Any) -> None:  # run the `finally` that stops our children
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)
    procs = Procs()
    shared: dict[str, Any] = {}
    failed: list[str] = []
    t_start = time.perf_counter()
    result: dict[str, Any] = {"bench": "sweep", "sizes": sizes, "repos": len(REPOS),
                              "concurrency": CONCURRENCY, "repeat": args.repeat,
                              "cpus": os.cpu_count(), "parts": parts}
    with tempfile.TemporaryDirectory(prefix="coord-bench-") as tmpname:
        tmp = Path(tmpname)
        try:
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
                if name not in parts:
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
                    say(f"\n   part `{name}` FAILED: {text[:1500]}\n"
                        f"{traceback.format_exc()[-3000:]}")
                    FIGURES.append({"figure": f"part `{name}`: failed, see its error", "value": None,
                                    "target": "-", "met": None})
                    REPORT.append(_report.figure(f"part `{name}`: failed", None))
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
