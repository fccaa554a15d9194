"""Helpers for integration tests that run real `coord worker` processes.

A :class:`Cluster` owns everything one test starts: a catalog in ``tmp_path``,
``coord worker`` subprocesses (each in its own process group, its output in a
log file), background CLI processes, and an in-process runtime on the same
Redis for reading checkpoints and events without paying a CLI start per poll.
``Cluster.close()`` kills all of it; the ``cluster`` fixture calls it.

Waits are polls with deadlines (:func:`wait_until`), never fixed sleeps,
except where a lease TTL has to pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from coordination.status import SWEEP_END_EVENTS, SWEEP_ENDED
from tests import clifork
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

# Short enough that lease expiry and supervisor passes cost little test time,
# long enough that a loaded 2-core machine does not miss heartbeats.
LEASE_TTL = 2.0
SUPERVISE_INTERVAL = 0.5
WORKER_READY_TIMEOUT = 30.0
PLAN = "PLAN-001"

# A todo that records when it ran: $COORD_TODO_ID.start / .end in its checkout.
TIMED = "date +%s.%N > $COORD_TODO_ID.start; sleep {s}; date +%s.%N > $COORD_TODO_ID.end"


# (cond, timeout, what): the suite's one polling helper
wait_until = wait_for


# -- catalogs -----------------------------------------------------------------------------
@dataclass
class T:
    """One todo of a test catalog."""

    id: str
    repo: str
    run: str
    blocked_by: list[str] = field(default_factory=list)
    retries: int = 0
    timeout: float = 60
    plan: str = PLAN
    undo: str | None = None
    priority: str | None = None
    estimated_hours: float | None = None
    resources: list[str] = field(default_factory=list)
    wait_timeout: str | None = None


def _q(s: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s)


def catalog_text(repos: dict[str, int], todos: Sequence[T], plans: Iterable[str] = (PLAN,),
                 breakers: dict[str, tuple[int, float]] | None = None,
                 resources: dict[str, int] | None = None) -> str:
    lines = ["version: 1", "repos:"]
    for name, conc in repos.items():
        lines += [f"  - name: {name}", f"    path: repos/{name}", f"    concurrency: {conc}"]
        if breakers and name in breakers:
            n, cooldown = breakers[name]
            lines.append(f"    breaker: {{failures: {n}, cooldown: {cooldown}}}")
    if resources:
        lines.append("resources:")
        lines += [f"  - {{name: {r}, capacity: {c}}}" for r, c in resources.items()]
    lines += ["coordination:", "  plans:"]
    for p in plans:
        lines += [f"    - id: {p}", f"      title: {_q('test plan ' + p)}", "      status: active"]
    lines += ["  todos:"]
    for t in todos:
        lines += [
            f"    - id: {t.id}",
            f"      task: {_q('todo ' + t.id)}",
            f"      repo: {t.repo}",
            f"      plan: {t.plan}",
            f"      run: {_q(t.run)}",
            f"      timeout: {t.timeout}",
            f"      retries: {t.retries}",
        ]
        if t.blocked_by:
            lines.append(f"      blocked_by: [{', '.join(t.blocked_by)}]")
        if t.undo is not None:
            lines.append(f"      undo: {_q(t.undo)}")
        if t.priority is not None:
            lines.append(f"      priority: {t.priority}")
        if t.estimated_hours is not None:
            lines.append(f"      estimated_hours: {t.estimated_hours}")
        if t.resources:
            lines.append(f"      resources: [{', '.join(t.resources)}]")
        if t.wait_timeout is not None:
            lines.append(f"      wait_timeout: {t.wait_timeout}")
    return "\n".join(lines) + "\n"


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def read_float(path: Path) -> float:
    return float(path.read_text().strip())


# -- processes ----------------------------------------------------------------------------
def todo_processes(sweep_id: str, todo_id: str | None = None) -> list[psutil.Process]:
    """Live processes whose environment says they belong to this sweep (and todo)."""
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            env = p.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("COORD_SWEEP_ID") != sweep_id:
            continue
        if todo_id is not None and env.get("COORD_TODO_ID") != todo_id:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        out.append(p)
    return out


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


#: Workers started afresh, not forked from a warm interpreter: set for the tests marked
#: ``chaos`` or ``fresh_workers`` (tests/integration/conftest.py).
FRESH_WORKERS = False


@dataclass
class Worker:
    repo: str
    proc: Any  # a Popen, or a tests.clifork.ForkedProcess (the same calls)
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def hostname_prefix(self) -> str:
        """Checkpoints name a worker ``<repo>-<pid>@<host>``."""
        return f"{self.repo}-{self.pid}@"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Signal the worker process itself (not its todos, which have their own groups)."""
        os.kill(self.pid, sig)

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def kill(self) -> None:
        """SIGKILL the worker's process group and anything it started, and reap it."""
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        _kill_group(self.pid, signal.SIGKILL)  # works on a SIGSTOPped worker too
        for k in kids:
            try:
                k.kill()
            except psutil.Error:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class Cluster:
    """Catalog, workers and CLI processes of one test against the session Redis."""

    def __init__(self, root: Path, redis_url: str) -> None:
        self.root = root
        self.redis_url = redis_url
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.eco = root / "ecosystem.yaml"
        self.workers: list[Worker] = []
        self.procs: list[subprocess.Popen[Any]] = []
        self.env = dict(os.environ)
        self.env.update(
            COORD_REDIS_URL=redis_url,
            COORD_LEASE_TTL=str(LEASE_TTL),
            COORD_SUPERVISE_INTERVAL=str(SUPERVISE_INTERVAL),
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("COORD_NAMESPACE", None)
        self._rt: Any = None

    # -- catalog --------------------------------------------------------------------------
    def write_catalog(
        self, repos: dict[str, int], todos: Sequence[T], plans: Iterable[str] = (PLAN,),
        **fleet: Any,
    ) -> Path:
        """``fleet``: ``breakers`` (repo -> (failures, cooldown)), ``resources`` (name -> capacity)."""
        for name in repos:
            self.repo_dir(name).mkdir(parents=True, exist_ok=True)
        self.eco.write_text(catalog_text(repos, todos, plans, **fleet))
        return self.eco

    def repo_dir(self, repo: str) -> Path:
        return self.root / "repos" / repo

    def catalog(self) -> Any:
        import yaml

        return yaml.safe_load(self.eco.read_text())

    # -- in-process view of the same Redis ------------------------------------------------
    @property
    def rt(self) -> Any:
        if self._rt is None:
            from coordination.runtime.context import Runtime
            from coordination.settings import Settings

            self._rt = Runtime.create(
                Settings(redis_url=self.redis_url, lease_ttl=LEASE_TTL,
                         supervise_interval=SUPERVISE_INTERVAL)
            )
        return self._rt

    def status(self, sweep_id: str) -> dict[str, Any]:
        from coordination.sweeps import SweepService

        return SweepService(self.rt).status(sweep_id)  # type: ignore[no-any-return]

    def checkpoint(self, sweep_id: str, todo_id: str) -> dict[str, Any]:
        return self.rt.checkpoints.get(sweep_id, todo_id) or {}  # type: ignore[no-any-return]

    def events(self, sweep_id: str) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.rt.events.read(sweep_id=sweep_id)]

    def wait_todo(self, sweep_id: str, todo_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            cp = self.checkpoint(sweep_id, todo_id)
            return cp if cp.get("status") in statuses else None

        return wait_until(check, timeout, f"{todo_id} of {sweep_id} to be {sorted(statuses)}"  # type: ignore[no-any-return]
                          f" (workers' logs: {self.logs})")

    def wait_sweep(self, sweep_id: str, timeout: float = 60) -> dict[str, Any]:
        """The sweep's status document once it is no longer queued or running (paused
        and rolling back count); an ended sweep once its ending is whole (:meth:`ended`)."""
        def check() -> dict[str, Any] | None:
            rec = self.rt.checkpoints.get_sweep(sweep_id) or {}
            if rec.get("status") in (None, "queued", "running"):
                return None
            return rec if rec.get("status") not in SWEEP_ENDED or self.ended(sweep_id, rec) else None

        wait_until(check, timeout, f"sweep {sweep_id} to end", interval=0.1)
        return self.status(sweep_id)

    def wait_ended(self, sweep_id: str, timeout: float = 60) -> dict[str, Any]:
        """The sweep's record once it has ended (not paused, not rolling back) and its
        ending is whole (:meth:`ended`)."""
        def check() -> dict[str, Any] | None:
            rec = self.rt.checkpoints.get_sweep(sweep_id) or {}
            return rec if rec.get("status") in SWEEP_ENDED and self.ended(sweep_id, rec) else None

        return wait_until(check, timeout, f"sweep {sweep_id} to end",  # type: ignore[no-any-return]
                          interval=0.1)

    def ended(self, sweep_id: str, rec: dict[str, Any]) -> bool:
        """Has the ending of the run ``rec`` is at been written whole? Its end event is
        its last write, after the state and what the end carries on: a test that reads
        the sweep once the status says ended may read it before those (it did, before
        the status and the cancel of what had not started became one step)."""
        run = int(rec.get("run") or 0)
        return any(e["kind"] in SWEEP_END_EVENTS and int(e.get("run") or 0) == run
                   for e in self.events(sweep_id))

    # -- CLI ------------------------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "coordination.cli.main", "--file", str(self.eco), *args]

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def cli_json(self, *args: str, expect: int = 0, timeout: float = 90) -> Any:
        res = self.cli(*args, "--json", timeout=timeout)
        assert res.returncode == expect, (
            f"coord {' '.join(args)} exited {res.returncode}, wanted {expect}\n"
            f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}"
        )
        return json.loads(res.stdout)

    def popen(self, *args: str, stdout: Any = subprocess.PIPE,
              env: dict[str, str] | None = None, log: str | None = None
              ) -> subprocess.Popen[str]:
        """``coord ARGS`` in the background; ``env``: variables added to the cluster's;
        ``log``: a file of the cluster's logs/ that takes its stdout and stderr (a
        server's, read when a test fails), instead of pipes."""
        # Forked from a warm interpreter as a worker is (tests/clifork.py), but afresh
        # where workers are (FRESH_WORKERS)
        start = subprocess.Popen if FRESH_WORKERS else clifork.popen
        with open(self.logs / log, "ab") if log else contextlib.nullcontext() as out:
            proc = start(self.argv(*args), cwd=ROOT,
                                    env={**self.env, **(env or {})},
                                    stdout=out or stdout, stderr=out or subprocess.PIPE,
                                    text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_sweep(self, plan: str = PLAN, strategy: str = "levels") -> str:
        """Enqueue a sweep (no --wait) and return its id."""
        out = self.cli_json("plan", "sweep", plan, "--strategy", strategy)
        return str(out["sweep_id"])

    # -- workers --------------------------------------------------------------------------
    def start_worker(self, repo: str, *, wait: bool = True, extra: Sequence[str] = (),
                     redis_url: str | None = None) -> Worker:
        """A `coord worker` for ``repo``; ``redis_url`` points it elsewhere (a proxy)."""
        n = len(self.workers)
        log = self.logs / f"worker-{n}-{repo}.log"
        # INFO: Celery's "<host> ready." line is how we know it consumes.
        argv = self.argv("worker", "--repo", repo, "--loglevel", "INFO", *extra)
        env = dict(self.env, COORD_REDIS_URL=redis_url) if redis_url else self.env
        # Forked from a warm interpreter (tests/clifork.py), but where the test is of
        # what a fork cannot be (FRESH_WORKERS: the chaos tier, a command line re-executed)
        start = subprocess.Popen if FRESH_WORKERS else clifork.popen
        with open(log, "wb") as fh:
            proc = start(argv, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
        w = Worker(repo, proc, log)
        self.workers.append(w)
        if wait:
            self.wait_ready(w)
        return w

    def start_workers(self, repos: Iterable[str],
                      timeout: float = WORKER_READY_TIMEOUT) -> list[Worker]:
        """Start several at once (their imports overlap), then wait for each."""
        ws = [self.start_worker(r, wait=False) for r in repos]
        for w in ws:
            self.wait_ready(w, timeout=timeout)
        return ws

    def wait_ready(self, w: Worker, timeout: float = WORKER_READY_TIMEOUT) -> None:
        def ready() -> bool:
            if not w.alive():
                raise AssertionError(f"worker for {w.repo} exited {w.proc.returncode}:\n{w.log_text()[-3000:]}")
            return " ready." in w.log_text()

        wait_until(ready, timeout, f"worker {w.pid} of {w.repo} to be ready", interval=0.1)

    # -- teardown -------------------------------------------------------------------------
    def close(self) -> None:
        for w in self.workers:
            w.kill()
        for p in self.procs:
            if p.poll() is None:
                _kill_group(p.pid, signal.SIGKILL)
            try:
                p.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError):
                pass

    def log_tails(self, n: int = 4000) -> str:
        """The end of each worker's log, then of every other log of the cluster's logs/
        (a `coord ui` or another server started with ``popen(..., log=)``)."""
        parts = []
        for w in self.workers:
            parts.append(f"===== worker {w.pid} ({w.repo}) {w.log} =====\n{w.log_text()[-n:]}")
        workers = {Path(w.log) for w in self.workers}
        for f in sorted(self.logs.glob("*.log")):
            if f not in workers:
                parts.append(f"===== {f.name} =====\n{f.read_text(errors='replace')[-n:]}")
        return "\n".join(parts)


def intervals(dirs: dict[str, Path]) -> dict[str, tuple[float, float]]:
    """todo id -> (start, end) from the files TIMED todos write into their checkout."""
    return {t: (read_float(d / f"{t}.start"), read_float(d / f"{t}.end")) for t, d in dirs.items()}


def max_overlap(spans: Iterable[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end at the same instant as a start does not overlap)."""
    points = []
    for s, e in spans:
        points += [(s, 1), (e, -1)]
    points.sort(key=lambda p: (p[0], p[1]))  # ends before starts at equal times
    cur = best = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


#: The saga tests' repos and their chain of todos, one a repo, each after the one before.
CHAIN_REPOS = ("a", "b", "c", "d")
CHAIN_IDS = [f"TODO-00{i}" for i in range(1, 5)]


def undoable_chain(c: Cluster, undo: Callable[[str], str]) -> list[str]:
    """The chain CHAIN_IDS over CHAIN_REPOS (each todo ``true``, undone by ``undo(id)``)
    in the catalog and a worker per repo started: the ids."""
    c.write_catalog(dict.fromkeys(CHAIN_REPOS, 1), [
        T(tid, repo, "true", blocked_by=[CHAIN_IDS[i - 1]] if i else [], undo=undo(tid))
        for i, (tid, repo) in enumerate(zip(CHAIN_IDS, CHAIN_REPOS))])
    c.start_workers(CHAIN_REPOS)
    return CHAIN_IDS


def write_api_catalog(root: Path, hooks: Sequence[dict[str, Any]], coordination: str) -> Path:
    """``root``/ecosystem.yaml with one repo, api (``root``/repos/api, made), the webhooks
    ``hooks`` (one flow mapping each; none: no notify section) and ``coordination`` (that
    section's body): its path."""
    (root / "repos" / "api").mkdir(parents=True, exist_ok=True)
    notify = "notify:\n" + "".join(f"  - {json.dumps(h)}\n" for h in hooks) if hooks else ""
    eco = root / "ecosystem.yaml"
    eco.write_text("version: 1\nrepos:\n  - name: api\n    path: repos/api\n"
                   f"{notify}coordination:\n{coordination}")
    return eco


def close_after_test(request: Any, clusters: Iterable[Cluster]) -> None:
    """Each of ``clusters`` closed after the test ``request`` ran; when it failed, their
    workers' log tails printed first (pytest shows them)."""
    rep = getattr(request.node, "rep_call", None)
    for c in clusters:
        if rep is not None and rep.failed:
            print(c.log_tails())
        c.close()


def wait_serving(proc: subprocess.Popen[Any], base: str,
                 headers: dict[str, str] | None = None) -> None:
    """Wait until the `coord ui` process ``proc`` answers ``base``/api/sweeps (30 s at
    most); it must not exit meanwhile."""
    import urllib.request

    def serving() -> bool:
        assert proc.poll() is None, (proc.communicate()[1]
                                     or f"exit {proc.returncode}: its log is in logs/")
        req = urllib.request.Request(base + "/api/sweeps", headers=headers or {})
        try:
            return bool(urllib.request.urlopen(req, timeout=2).status == 200)
        except OSError:
            return False

    wait_until(serving, 30, "coord ui to serve", interval=0.1)


def keygen(path: Path) -> str:
    """A fresh ed25519 key at ``path``; its public key as an allowed-signers entry."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f",
                    str(path)], check=True, timeout=30)
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])
