"""Runtime benchmark: coord's sweeps, leases and events against raw Redis/Celery.

Run by hand or by `make bench`; never part of the test suite. Every figure is
printed next to a baseline measured in the same run, on the same machine and
the same redis-server, and as a ratio coord / baseline. There are no pass/fail
thresholds: absolute numbers on a shared, noisy machine say little; ratios say
what coord's bookkeeping costs on top of what it is built on.

1. throughput   N no-op todos (`run: "true"`) round-robin over 4 repos, on real
                `coord worker` processes (one per repo, `concurrency: 2`), from
                SweepService.start to the sweep finished. Shapes: flat (no edges)
                and 4 levels (N/4 chains of 4), the latter with both strategies.
                Baseline: a plain Celery app on database 1 of the same Redis
                (JSON, acks_late, prefetch 1, threads pool, -c 2, one worker
                process per repo queue, all also on a control queue) whose task
                runs `/bin/sh -c true`: a group of N signatures (flat), or a chain
                of 4 chords, each a level and a no-op barrier (levels); timed from
                apply_async to all results. Also: Redis commands per todo of both
                (INFO commandstats), and `coord plan sweep --wait --json` as a process.
2. leases       a lease as workers hold one: taken with its todo's start and
                given back with its finish (Transitions.start + finish, each
                a fresh todo) vs redis-py's Lock acquire(blocking=False) +
                release; and its renewal (LeaseManager.extend) vs Lock.extend;
                M of each, same client.
3. events       latency from EventLog.emit in one thread to EventLog.follow in
                another (each with its own client), p50/p99; baseline: PUBLISH ->
                SUBSCRIBE measured the same way.
4. embedded     the flat sweep with COORD_REDIS_URL unset (`coord plan sweep
                --wait --json` in a subprocess; the sweep's created->finished span)
                vs raw Celery on the in-memory transport with in-process worker
                threads (a subprocess too; apply_async -> last task done).

Everything it starts (redis-server on a free port in a temp dir, worker
processes in their own process groups) is stopped in `finally`, also on SIGTERM.

    python bench/sweep.py [--todos 200] [--repeat 3] [--leases 2000] [--events 1000]
                          [--only throughput,leases,events,embedded] [--skip-levels] [--json]
"""

from __future__ import annotations

from coordination.dispatch import CeleryDispatcher
import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPOS = [f"repo{i}" for i in range(4)]
CONCURRENCY = 2
NAMESPACE = "bench"
RAW_DB = 1  # the raw Celery baseline uses another database of the same server
READY_TIMEOUT = 60.0
SWEEP_TIMEOUT = 600.0
QUIET = False


def say(*args: Any, **kw: Any) -> None:
    if not QUIET:
        print(*args, **kw, flush=True)


# -- processes --------------------------------------------------------------------------
class Procs:
    """Every child we start, each in its own process group; stopped in `finally`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(procs: Procs, tmp: Path) -> str:
    import redis

    for _ in range(3):
        port = free_port()
        cmd = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--dir", str(tmp), "--logfile", str(tmp / "redis.log")]
        p = procs.start(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}"
        probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        end = time.monotonic() + 15
        while time.monotonic() < end and p.poll() is None:
            try:
                if probe.ping():
                    probe.close()
                    return url
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


# -- the catalog ------------------------------------------------------------------------
def catalog_data(n: int) -> dict[str, Any]:
    """PLAN-1: n independent todos; PLAN-2: n todos in 4 levels; PLAN-3: 8 warm-up todos.

    Todos go round-robin over the 4 repos. In PLAN-2 each todo of level k > 0 waits
    for the todo at the same position of level k - 1 (n/4 chains of 4).
    """
    todos: list[dict[str, Any]] = []
    for i in range(n):
        todos.append({"id": f"TODO-{100000 + i}", "task": f"flat {i}", "repo": REPOS[i % 4],
                      "plan": "PLAN-1", "run": "true"})
    width = max(1, n // 4)
    for i in range(n):
        level = min(3, i // width)
        pos = (i - level * width) % width
        blocked = [f"TODO-{200000 + (level - 1) * width + pos}"] if level else []
        todos.append({"id": f"TODO-{200000 + i}", "task": f"level {i}", "repo": REPOS[i % 4],
                      "plan": "PLAN-2", "run": "true", "blocked_by": blocked})
    for i in range(8):
        todos.append({"id": f"TODO-{300000 + i}", "task": f"warm {i}", "repo": REPOS[i % 4],
                      "plan": "PLAN-3", "run": "true"})
    return {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "concurrency": CONCURRENCY} for r in REPOS],
        "coordination": {
            "plans": [{"id": p, "title": p, "status": "active"} for p in ("PLAN-1", "PLAN-2", "PLAN-3")],
            "todos": todos,
        },
    }


def write_catalog(tmp: Path, n: int) -> Path:
    import yaml

    for r in REPOS:
        (tmp / "repos" / r).mkdir(parents=True, exist_ok=True)
    path = tmp / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(catalog_data(n), sort_keys=False))
    return path


def levels_of(n: int) -> list[int]:
    """Sizes of PLAN-2's levels (the last one takes the remainder)."""
    width = max(1, n // 4)
    sizes = [0, 0, 0, 0]
    for i in range(n):
        sizes[min(3, i // width)] += 1
    return [s for s in sizes if s]


# -- coord distributed ------------------------------------------------------------------
def start_coord_workers(procs: Procs, catalog: Path, url: str, logdir: Path) -> list[Any]:
    out = []
    for r in REPOS:
        log = open(logdir / f"coord-worker-{r}.log", "wb")  # noqa: SIM115 - the child keeps it
        out.append(procs.start(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "worker",
             "--repo", r, "--loglevel", "WARNING"],
            env=child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE),
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        log.close()
    return out


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
    def __init__(self, url: str, catalog: Path) -> None:
        os.environ["COORD_REDIS_URL"] = url
        os.environ["COORD_NAMESPACE"] = NAMESPACE
        from coordination.catalog.store import CatalogStore
        from coordination.runtime.context import get_runtime
        from coordination.settings import get_settings
        from coordination.sweeps import SweepService
        from workers.app import create_app, limits_from_catalog

        get_settings.cache_clear()
        get_runtime.cache_clear()
        self.rt = get_runtime()
        longest_todo, longest_sweep = limits_from_catalog(CatalogStore(catalog).load())
        self.rt.dispatcher = CeleryDispatcher(create_app(self.rt.settings, longest_todo=longest_todo, longest_sweep=longest_sweep), self.rt.keys)
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
        return secs, st


def cli_sweep(procs: Procs, catalog: Path, url: str) -> float:
    """Wall time of `coord plan sweep PLAN-1 --wait --json` as a user runs it (start, sync included)."""
    backup = catalog.read_bytes()
    cmd = [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
           "plan", "sweep", "PLAN-1", "--wait", "--json"]
    t0 = time.perf_counter()
    p = procs.start(cmd, env=child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        out, err = p.communicate(timeout=SWEEP_TIMEOUT)
    finally:
        procs.stop([p])
    secs = time.perf_counter() - t0
    catalog.write_bytes(backup)  # --wait synced the completions into it
    if p.returncode != 0 or json.loads(out)["status"] != "succeeded":
        raise RuntimeError(f"coord plan sweep exited {p.returncode}: {err.decode()[-2000:]}")
    return secs


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


def write_raw_module(tmp: Path) -> Path:
    moddir = tmp / "rawmod"
    moddir.mkdir(exist_ok=True)
    (moddir / "rawbench_app.py").write_text(RAW_APP)
    return moddir


def start_raw_workers(procs: Procs, moddir: Path, url: str, logdir: Path) -> list[Any]:
    out = []
    for i, r in enumerate(REPOS):
        log = open(logdir / f"raw-worker-{r}.log", "wb")  # noqa: SIM115 - the child keeps it
        env = child_env(RAW_BENCH_URL=url)
        env["PYTHONPATH"] = os.pathsep.join([str(moddir), env["PYTHONPATH"]])
        out.append(procs.start(
            [sys.executable, "-m", "celery", "-A", "rawbench_app", "worker", "-Q", f"raw.{r},raw.control",
             "-P", "threads", "-c", str(CONCURRENCY), "--without-gossip", "--without-mingle",
             "-l", "WARNING", "-n", f"raw{i}@%h"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=moddir))
        log.close()
    return out


def raw_app(moddir: Path, url: str) -> Any:
    os.environ["RAW_BENCH_URL"] = url
    sys.path.insert(0, str(moddir))
    import rawbench_app  # type: ignore[import-not-found]

    return rawbench_app


def raw_sigs(mod: Any, count: int, offset: int = 0) -> list[Any]:
    return [mod.run.si("true").set(queue=f"raw.{REPOS[(offset + i) % 4]}") for i in range(count)]


def raw_flat(mod: Any, n: int) -> float:
    from celery import group

    t0 = time.perf_counter()
    res = group(raw_sigs(mod, n)).apply_async()
    # interval: GroupResult.get otherwise sleeps up to 0.5 s after the last result
    out = res.get(timeout=SWEEP_TIMEOUT, interval=0.005)
    secs = time.perf_counter() - t0
    assert len(out) == n and not any(out), out
    return secs


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
    return secs


# -- throughput -------------------------------------------------------------------------
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

    def per(self, n: int, top: int = 12) -> dict[str, Any]:
        total = sum(self.calls.values())
        busiest = sorted(self.calls.items(), key=lambda kv: -kv[1])[:top]
        return {"total": total / n, "top": {k: round(v / n, 2) for k, v in busiest}}


def log_tails(tmp: Path, pattern: str, chars: int = 1500) -> str:
    return "\n".join(f"--- {f.name}:\n{f.read_text(errors='replace')[-chars:]}"
                     for f in sorted(tmp.glob(pattern)))


def throughput(procs: Procs, tmp: Path, url: str, n: int, repeat: int, levels: bool) -> dict[str, Any]:
    try:
        return _throughput(procs, tmp, url, n, repeat, levels)
    except Exception as exc:  # the temp dir with the worker logs is about to go
        raise RuntimeError(f"{exc}\n{log_tails(tmp, '*-worker-*.log')}") from exc


def _throughput(procs: Procs, tmp: Path, url: str, n: int, repeat: int, levels: bool) -> dict[str, Any]:
    catalog = write_catalog(tmp, n)
    coord_url, raw_url = f"{url}/0", f"{url}/{RAW_DB}"
    out: dict[str, Any] = {}
    stats = CommandStats(url)

    coord = Coord(coord_url, catalog)
    workers = start_coord_workers(procs, catalog, coord_url, tmp)
    try:
        wait_ready(coord.rt.app, len(REPOS), workers, "coord")
        coord.sweep("PLAN-3")  # warm-up: imports, connections, script cache
        with stats.count():
            out["coord_flat"] = [coord.sweep("PLAN-1")[0] for _ in range(repeat)]
        out["coord_cmds"] = stats.per(n * repeat)
        if levels:
            out["coord_levels"] = [coord.sweep("PLAN-2", "levels")[0] for _ in range(repeat)]
            out["coord_eager"] = [coord.sweep("PLAN-2", "eager")[0] for _ in range(repeat)]
        out["coord_cli"] = cli_sweep(procs, catalog, coord_url)
    finally:
        procs.stop(workers)

    moddir = write_raw_module(tmp)
    mod = raw_app(moddir, raw_url)
    workers = start_raw_workers(procs, moddir, raw_url, tmp)
    try:
        wait_ready(mod.app, len(REPOS), workers, "raw celery")
        raw_flat(mod, 8)  # warm-up
        with stats.count():
            out["raw_flat"] = [raw_flat(mod, n) for _ in range(repeat)]
        out["raw_cmds"] = stats.per(n * repeat)
        if levels:
            out["raw_levels"] = [raw_levels(mod, n) for _ in range(repeat)]
    finally:
        procs.stop(workers)
    return out


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

    from coordination.keys import Keys
    from coordination.runtime.checkpoints import CheckpointStore
    from coordination.runtime.client import get_redis
    from coordination.runtime.leases import LeaseManager
    from coordination.runtime.transitions import Transitions
    from coordination.settings import Settings
    from coordination.status import TodoStatus

    r = get_redis(Settings(redis_url=f"{url}/0", namespace=NAMESPACE))
    keys = Keys(NAMESPACE)
    sweep_id, repo = "leasebench", "leasebench"
    CheckpointStore(r, keys).create_sweep(
        sweep_id, {"plan": "PLAN-BENCH", "strategy": "eager", "status": "running"})
    tr = Transitions(r, keys, lease_ttl=10.0)
    lm = LeaseManager(r, keys, ttl=10.0)
    todo_ids = (f"T{i}" for i in itertools.count())

    def coord_once() -> None:
        todo = next(todo_ids)
        st = tr.start(sweep_id, todo, repo=repo, concurrency=1, preds=[], worker="bench")
        assert st.verdict == "started" and st.lease is not None, st
        done = tr.finish(sweep_id, todo, lease=st.lease, status=TodoStatus.succeeded,
                         fields={"exit_code": 0}, event={"exit_code": 0})
        assert done.ok, done

    held = tr.start(sweep_id, "renewed", repo=f"{repo}-renew", concurrency=1, preds=[],
                    worker="bench").lease
    assert held is not None

    def coord_renew() -> None:
        assert lm.extend(held)

    lock = Lock(r, f"{NAMESPACE}:rawlock", timeout=10.0)

    def raw_once() -> None:
        assert lock.acquire(blocking=False)
        lock.release()

    renewed = Lock(r, f"{NAMESPACE}:rawlock-renew", timeout=10.0)
    assert renewed.acquire(blocking=False)

    def raw_renew() -> None:
        assert renewed.extend(10.0, replace_ttl=True)

    def rate(fn: Any) -> float:
        for _ in range(min(100, m)):  # warm-up (EVALSHA cache, connection)
            fn()
        t0 = time.perf_counter()
        for _ in range(m):
            fn()
        return m / (time.perf_counter() - t0)

    # interleave two rounds each so a noisy neighbour hits both alike
    c1, b1, c2, b2 = rate(coord_once), rate(raw_once), rate(coord_once), rate(raw_once)
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

def sweep(k):
    sigs = [m.run.si("true").set(queue=f"raw.{repos[i % len(repos)]}") for i in range(k)]
    with m.done:
        target = m.finished[0] + k
    t0 = time.perf_counter()
    group(sigs).apply_async()
    with m.done:
        assert m.done.wait_for(lambda: m.finished[0] >= target, timeout=600), "raw sweep timed out"
    return time.perf_counter() - t0

sweep(8)
print(json.dumps({"secs": sweep(n)}))
for w in workers:
    w.stop(in_sighandler=False, exitcode=0)
'''


def embedded(procs: Procs, tmp: Path, n: int) -> dict[str, float]:
    import shutil

    edir = tmp / "embedded"
    edir.mkdir(exist_ok=True)
    catalog = write_catalog(edir, n)
    backup = edir / "ecosystem.orig.yaml"
    shutil.copyfile(catalog, backup)

    def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
        t0 = time.perf_counter()
        p = procs.start(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=SWEEP_TIMEOUT)
        finally:
            procs.stop([p])
        secs = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[:4]}... exited {p.returncode}: {err.decode()[-2000:]}")
        return secs, out.decode()

    coord_cmd = [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                 "plan", "sweep", "PLAN-1", "--wait", "--json"]
    wall, out = run(coord_cmd, child_env(), ROOT)
    st = json.loads(out)
    if st["status"] != "succeeded":
        raise RuntimeError(f"embedded sweep ended {st['status']}: {st.get('reason')}")
    import datetime as dt

    def ts(s: str) -> float:
        return dt.datetime.fromisoformat(s).timestamp()

    # The sweep's own span: from its record's creation to its finish (ms resolution)
    coord_secs = ts(st["finished_at"]) - ts(st["created_at"])
    shutil.copyfile(backup, catalog)  # --wait synced completions into it

    moddir = write_raw_module(tmp)
    script = edir / "raw_embedded.py"
    script.write_text(RAW_EMBEDDED)
    raw_wall, out = run([sys.executable, str(script), str(moddir), str(n), ",".join(REPOS),
                         str(CONCURRENCY)], child_env(), edir)
    raw_secs = json.loads(out.strip().splitlines()[-1])["secs"]
    startup, _ = run([sys.executable, "-m", "coordination.cli.main", "--help"], child_env(), ROOT)
    return {"coord_s": coord_secs, "coord_wall_s": wall, "raw_s": raw_secs, "raw_wall_s": raw_wall,
            "cli_startup_s": startup}


# -- report -----------------------------------------------------------------------------
def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--todos", type=int, default=200, help="todos per sweep (default 200)")
    ap.add_argument("--leases", type=int, default=2000, help="lease take+give-back pairs and renewals (default 2000)")
    ap.add_argument("--events", type=int, default=1000, help="events for the latency figures (default 1000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed sweeps per shape; the median is kept (3)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated subset of {','.join(PARTS)} (default all)")
    ap.add_argument("--skip-levels", action="store_true", help="throughput: only the flat shape")
    ap.add_argument("--json", action="store_true", help="print only the final JSON line")
    args = ap.parse_args()
    QUIET = args.json
    n = args.todos
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if n < 4 or args.repeat < 1 or args.leases < 1 or args.events < 10:
        ap.error("need --todos >= 4, --repeat >= 1, --leases >= 1, --events >= 10")
    if unknown := set(parts) - set(PARTS):
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}")

    def _exit(signum: int, _frame: Any) -> None:  # run the `finally` that stops our children
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)
    procs = Procs()
    result: dict[str, Any] = {"bench": "sweep", "todos": n, "repos": len(REPOS),
                              "concurrency": CONCURRENCY, "repeat": args.repeat,
                              "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="coord-bench-") as tmpname:
        tmp = Path(tmpname)
        try:
            url = start_redis(procs, tmp)
            say(f"redis-server on {url}; {os.cpu_count()} cpus; every ratio is coord / raw baseline")
            if "throughput" in parts:
                result["throughput"] = report_throughput(procs, tmp, url, n, args.repeat,
                                                         not args.skip_levels)
            if "leases" in parts:
                result["leases"] = report_leases(url, args.leases)
            if "events" in parts:
                result["events"] = report_events(url, args.events)
            if "embedded" in parts:
                result["embedded"] = report_embedded(procs, tmp, n)
        finally:
            procs.stop()
    say("")
    print(json.dumps(result, separators=(",", ":")))
    return 0


PARTS = ("throughput", "leases", "events", "embedded")


def report_throughput(procs: Procs, tmp: Path, url: str, n: int, repeat: int, levels: bool) -> dict[str, Any]:
    say(f"\n1. sweep of {n} no-op todos over {len(REPOS)} repos: one worker process per repo, "
        f"{CONCURRENCY} todos at a time each (median of {repeat})")
    tp = throughput(procs, tmp, url, n, repeat, levels)
    shapes = [("flat", "coord_flat", "raw_flat", "group")]
    if levels:
        shapes += [("4_levels", "coord_levels", "raw_levels", "chain of 4 chords"),
                   ("4_levels_eager", "coord_eager", "raw_levels", "chain of 4 chords")]
    say(f"   {'shape':<16} {'coord':>8} {'raw celery':>11}   {'coord todo/s':>12} {'raw todo/s':>10}"
        f"   {'coord/raw todo/s':>16}   {'overhead ms/todo':>16}   raw canvas")
    out: dict[str, Any] = {}
    for name, ck, rk, canvas in shapes:
        c, r = med(tp[ck]), med(tp[rk])
        row = {"coord_s": c, "raw_s": r, "coord_todos_s": n / c, "raw_todos_s": n / r,
               "ratio": r / c, "overhead_ms_per_todo": (c - r) / n * 1000,
               "coord_samples": tp[ck], "raw_samples": tp[rk]}
        out[name] = row
        label = name.replace("_", " ")
        say(f"   {label:<16} {c:7.2f}s {r:10.2f}s   {row['coord_todos_s']:12.1f} {row['raw_todos_s']:10.1f}"
            f"   {row['ratio']:16.2f}   {row['overhead_ms_per_todo']:16.1f}   {canvas}")
    cc, rc = tp["coord_cmds"], tp["raw_cmds"]
    out["redis_cmds_per_todo"] = {"coord": cc, "raw": rc}
    top = ", ".join(f"{k} {v:g}" for k, v in list(cc["top"].items())[:6])
    out["flat"]["coord_cli_s"] = tp["coord_cli"]
    say(f"   `coord plan sweep --wait --json` of the flat plan, as a process (CLI start, planning, "
        f"catalog sync included): {tp['coord_cli']:.2f} s")
    say(f"   Redis commands per todo, flat shape (server-wide, Lua's inner commands and idle polling "
        f"included): coord {cc['total']:.1f} ({top}); raw {rc['total']:.1f}")
    return out


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


def report_embedded(procs: Procs, tmp: Path, n: int) -> dict[str, Any]:
    say(f"\n4. embedded mode: {n} no-op todos, one process on the catalog's own "
        f"redis-server (raw: in-memory transport), {len(REPOS)} repos x {CONCURRENCY}")
    em = embedded(procs, tmp, n)
    em["coord_todos_s"] = n / em["coord_s"]
    em["raw_todos_s"] = n / em["raw_s"]
    em["ratio"] = em["raw_s"] / em["coord_s"]
    em["overhead_ms_per_todo"] = (em["coord_s"] - em["raw_s"]) / n * 1000
    say(f"   coord {em['coord_s']:.2f} s ({em['coord_todos_s']:.1f} todo/s), raw celery "
        f"{em['raw_s']:.2f} s ({em['raw_todos_s']:.1f} todo/s): coord/raw todo/s {em['ratio']:.2f}, "
        f"overhead {em['overhead_ms_per_todo']:.1f} ms/todo")
    say(f"   whole processes: `coord plan sweep --wait --json` {em['coord_wall_s']:.2f} s "
        f"(bare `coord --help` {em['cli_startup_s']:.2f} s), raw script {em['raw_wall_s']:.2f} s")
    return em


if __name__ == "__main__":
    sys.exit(main())
