"""Raw Celery, the baseline coord's sweeps are measured against: the app and its no-op
task (generated into the bench's temp dir; ``raw.timed`` also says when its command
started and ended), its client process (send a group of N, wait for every result), an
in-memory variant with in-process workers, its workers (threads pool, one per repo queue)
and a chain of chords for the 4-level shape (bench/peers.py adds a group of chains)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from _catalogs import CONCURRENCY, REPOS, levels_of
from _procs import SWEEP_TIMEOUT, Procs, child_env, start_workers

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


@app.task(name="raw.timed")
def timed(cmd):
    """raw.run, saying when its command started and ended (bench/peers.py's latency)."""
    import time
    began = time.time()
    rc = subprocess.run(["/bin/sh", "-c", cmd], cwd=os.environ.get("RAW_BENCH_CWD") or None).returncode
    return [began, time.time(), rc]
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


def start_raw_workers(procs: Procs, moddir: Path, url: str, logdir: Path,
                      env: dict[str, str] | None = None) -> list[Any]:
    return start_workers(
        procs, [[sys.executable, "-m", "celery", "-A", "rawbench_app", "worker", "-Q",
                 f"raw.{r},raw.control", "-P", "threads", "-c", str(CONCURRENCY),
                 "--without-gossip", "--without-mingle", "-l", "WARNING", "-n", f"raw{i}@%h"]
                for i, r in enumerate(REPOS)],
        [env or raw_env(moddir, url)] * len(REPOS),
        [logdir / f"raw-worker-{r}.log" for r in REPOS],
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
