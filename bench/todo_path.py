"""Where a todo's time goes in a `coord worker` (issue #82, DESIGN "E. Engine
throughput"): the parts of one turn, from its message to its end, timed inside a real
worker, beside what the same steps cost alone in this process, in the same run.

Run by hand or by `make bench`; never part of the test suite.

A redis-server on loopback, one `coord worker --repo repo0` (concurrency 2) and N flat
`true` todos, swept R times with `coord plan sweep --wait`. The worker is started with
bench/_segments/ on its PYTHONPATH, which times each turn's parts (the start script's
call, the turn's preparation, the spawn of the todo's shell, its run until its exit is
seen, the finish script's call) and the medians are printed with the started -> ended
p50 of the sweep's events (what bench/peers.py compares with raw Celery's), and what a
slot does between two todos (its thread's turns in a row: from the finish script's call,
where ``todo.succeeded``'s time is read, to the next start script's call, where the next
``todo.started``'s is; the task's return to Celery until the next turn begins; the next
turn's own steps before its start script's call). Baselines,
measured in the same run: the shell's spawn (``subprocess.Popen`` of ``/bin/sh -c true``
returning) and its spawn and wait (raw Celery's task measures that), by a thread of this
process while the sweep runs (the machine as loaded as for the worker's turns, but no
other thread of the process busy); a Redis round trip (PING); and the start and finish
scripts' time inside redis-server (SLOWLOG). The overhead figure is started -> ended less the bare spawn and wait: DESIGN
asks for <= 2 ms.

``--workers N``: N one-repo workers (2 slots each, the todos round-robin over their repos);
4 is bench/peers.py's ``one``, the machine as loaded as there.

    python bench/todo_path.py [--todos 400] [--rounds 2] [--workers 1] [--json]
"""

from __future__ import annotations

import collections
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
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _catalogs import restored  # noqa: E402  (bench/_catalogs.py)
from _procs import (  # noqa: E402  (bench/_procs.py)
    Procs, child_env, coord_argv, start_redis, start_workers, stop_on_signals,
    use_compiled_modules)

SEGMENTS = BENCH / "_segments"
NAMESPACE = "todopath"
#: (name, from mark, to mark): the parts of a turn, in order
PARTS = (
    ("start script's call (its round trip)", "Transitions._start>", "Transitions._start<"),
    ("the turn prepared (environment, inputs, results file)", "Transitions._start<",
     "_spawn>"),
    ("the shell spawned (Popen returns)", "_spawn>", "_spawn<"),
    ("the command run, its exit seen and reaped", "_spawn<", "_Supervisor.run<"),
    ("its outputs read, its outcome made", "_Supervisor.run<", "Transitions._finish>"),
    ("finish script's call (its round trip)", "Transitions._finish>", "Transitions._finish<"),
    ("the sweep carried on, the turn let go", "Transitions._finish<", "_run_one<"),
)
QUIET = False


def say(*args: Any) -> None:
    if not QUIET:
        print(*args, flush=True)


def write_catalog(path: Path, n: int, repos: int = 1) -> Path:
    lines = ["version: 1", "repos:"]
    for k in range(repos):
        (path.parent / "repos" / f"repo{k}").mkdir(parents=True, exist_ok=True)
        lines += [f"  - name: repo{k}", f"    path: repos/repo{k}", "    concurrency: 2"]
    lines += ["coordination:", "  plans:", "    - id: PLAN-1", "      title: flat",
              "      status: active", "  todos:"]
    for i in range(n):
        lines += [f"    - id: TODO-{100000 + i}", f"      task: t{i}",
                  f"      repo: repo{i % repos}", "      plan: PLAN-1", '      run: "true"']
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_trace(trace: Path) -> tuple[list[dict[str, float]], dict[str, list[dict[str, float]]]]:
    """The worker's trace read once: each turn's marks (first time each was reached;
    ``cpu:`` + the mark: its thread's CPU time then) in the order the turns began, and
    the same turns by thread, each thread's in order."""
    order: list[dict[str, float]] = []
    per: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    for line in trace.read_text().splitlines():
        tid, what, ts, cpu = line.split()
        if what == "_run_one>":
            per[tid].append({})
            order.append(per[tid][-1])
        if per[tid]:
            per[tid][-1].setdefault(what, float(ts))
            per[tid][-1].setdefault("cpu:" + what, float(cpu))
    return order, per


#: (name, from mark of a turn, to mark of the same thread's next turn): between two turns
#: of one slot (a thread of the worker), when the next follows at once
BETWEEN = (
    ("a slot's ended -> its next started (todo.succeeded's time -> the next todo.started's)",
     "Transitions._finish>", "Transitions._start>"),
    ("the task's return -> the slot's next turn (Celery: the ack, the next message, the "
     "thread)", "_run_one<", "_run_one>"),
    ("the next turn begun -> its start script's call (its delivery read)", "_run_one>",
     "Transitions._start>"),
)
#: A slot's next turn later than this is not one that followed at once (the queue was
#: empty: the sweep's end, the next round's command starting), ms.
FOLLOWED = 100.0


def between(threads: list[dict[str, list[dict[str, float]]]]) -> dict[str, float]:
    """The medians of :data:`BETWEEN`, ms, over every pair of one thread's turns in a row
    (``threads``: :func:`parse_trace`'s second part of each trace) whose whole gap is
    under :data:`FOLLOWED` (each thread's first five turns left out, as lazy loads)."""
    got: dict[str, list[float]] = collections.defaultdict(list)
    whole_a, whole_b = BETWEEN[0][1], BETWEEN[0][2]
    for per in threads:
        for seq in per.values():
            for t, u in zip(seq[5:], seq[6:]):
                if whole_a not in t or whole_b not in u:
                    continue
                if (u[whole_b] - t[whole_a]) * 1000 >= FOLLOWED:
                    continue
                for name, a, b in BETWEEN:
                    # (a mark of the next turn's own, when both are: its own beginning)
                    first = u if a == "_run_one>" else t
                    if a in first and b in u:
                        got[name].append((u[b] - first[a]) * 1000)
    return {name: statistics.median(v) for name, v in got.items() if v}


def window_cpu(all_turns: list[dict[str, float]]) -> float:
    """The median CPU of a turn's thread from its start script's call entered (where
    ``todo.started``'s time is read) to its finish script's call entered (``todo.succeeded``'s
    is read in it, before the call is sent), ms: the window's own work, less what it waits
    for (Redis, the shell, the other threads and processes)."""
    a, b = "cpu:Transitions._start>", "cpu:Transitions._finish>"
    return statistics.median((t[b] - t[a]) * 1000 for t in all_turns if a in t and b in t)


def medians(all_turns: list[dict[str, float]]) -> dict[str, float]:
    got: dict[str, list[float]] = collections.defaultdict(list)
    for t in all_turns:
        for name, a, b in PARTS:
            if a in t and b in t:
                got[name].append((t[b] - t[a]) * 1000)
    return {name: statistics.median(v) for name, v in got.items() if v}


class Alone:
    """The bare costs, in a thread of this process (no other thread of it busy), taken
    while the sweep runs (the same machine's load as the worker's turns): a shell's
    spawn, its spawn and wait, ms; one every 20 ms."""

    def __init__(self) -> None:
        import threading

        self.spawn: list[float] = []
        self.run: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="alone", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(0.02):
            t0 = time.perf_counter()
            p = subprocess.Popen(["/bin/sh", "-c", "true", "coord-todo"],
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 close_fds=True)
            t1 = time.perf_counter()
            p.wait()
            self.spawn.append((t1 - t0) * 1000)
            self.run.append((time.perf_counter() - t0) * 1000)

    def done(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join(timeout=10)
        return {"spawn": statistics.median(self.spawn),
                "spawn_wait": statistics.median(self.run)}


def main() -> int:
    global QUIET
    ap = _report.arguments(__doc__, todos=400, rounds=2, workers=(
        1, "one-repo workers, 2 slots each, the todos round-robin over their repos (1); "
           "4 is bench/peers.py's `one`: the machine as loaded as there"))
    args = ap.parse_args()
    QUIET = args.json
    stop_on_signals()
    use_compiled_modules(say)
    import redis

    from coordination.keys import Keys
    from coordination.runtime.events import EventLog
    from coordination.runtime.scripts import lua

    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="coord-todopath-") as d:
        tmp = Path(d)
        try:
            url, _ = start_redis(procs, tmp)
            r = redis.Redis.from_url(url, decode_responses=True)
            catalog = write_catalog(tmp / "c" / "ecosystem.yaml", args.todos, args.workers)
            env = child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=NAMESPACE,
                            COORD_SHARE_NAMESPACE="1")
            names = [f"repo{k}" for k in range(args.workers)]
            traces = [tmp / f"segments-{name}.txt" for name in names]  # (thread ids: per process)
            w = start_workers(
                procs, [[*coord_argv(), "--file", str(catalog), "worker", "--repo", name,
                         "--loglevel", "WARNING"] for name in names],
                [dict(env, COORD_BENCH_SEGMENTS=str(trace),
                      PYTHONPATH=os.pathsep.join([str(SEGMENTS), env["PYTHONPATH"]]))
                 for trace in traces], [tmp / f"worker-{name}.log" for name in names], ROOT)
            from coordination.runtime.workers import WorkerRegistry

            reg = WorkerRegistry(r, Keys(NAMESPACE))
            end = time.monotonic() + 120
            while not all(any(name in x.repos for x in reg.live()) for name in names):
                if time.monotonic() > end or any(p.poll() is not None for p in w):
                    raise RuntimeError("a worker did not start:\n" + "\n".join(
                        (tmp / f"worker-{name}.log").read_text()[-3000:] for name in names))
                time.sleep(0.2)
            s2e: list[float] = []
            alone: dict[str, list[float]] = collections.defaultdict(list)
            slow: dict[str, list[int]] = collections.defaultdict(list)
            shas = {lua("todo_start").sha: "start", lua("todo_finish").sha: "finish"}
            r.config_set("slowlog-log-slower-than", 0)
            r.config_set("slowlog-max-len", 4 * args.todos + 1000)
            for rnd in range(args.rounds):
                r.slowlog_reset()
                bare = Alone()
                with restored(catalog):
                    out = subprocess.run([*coord_argv(), "--file", str(catalog), "plan",
                                          "sweep", "PLAN-1", "--wait", "--json"], env=env,
                                         cwd=ROOT, capture_output=True, text=True, timeout=600)
                for k, v in bare.done().items():
                    alone[k].append(v)
                st = json.loads(out.stdout)
                if st.get("status") != "succeeded":
                    raise RuntimeError(f"the sweep ended {st.get('status')}: {out.stderr[-2000:]}")
                began: dict[str, float] = {}
                for ev in EventLog(r, Keys(NAMESPACE)).read(st["sweep_id"]):
                    if ev.kind == "todo.started" and ev.todo_id:
                        began[ev.todo_id] = ev.ts
                    elif ev.kind == "todo.succeeded" and ev.todo_id in began:
                        s2e.append((ev.ts - began[ev.todo_id]) * 1000)
                for e in r.slowlog_get(4 * args.todos + 1000):
                    cmd = e["command"]
                    words = (cmd.decode(errors="replace") if isinstance(cmd, bytes)
                             else str(cmd)).split()
                    if words and words[0].upper() == "EVALSHA" and len(words) > 1:
                        which = shas.get(words[1])
                        if which:
                            slow[which].append(int(e["duration"]))
                say(f"round {rnd + 1}: {len(s2e)} todos so far, load "
                    f"{os.getloadavg()[0]:.1f}")
            r.config_set("slowlog-log-slower-than", 10000)
            # (each worker's first turns load what is lazy)
            parsed = [parse_trace(trace) for trace in traces]
            traced = [t for order, _per in parsed for t in order[5:]]
            parts = medians(traced)
            gaps = between([per for _order, per in parsed])
            cpu = window_cpu(traced)
            base = {k: statistics.median(v) for k, v in alone.items()}
            rtt = []
            for _ in range(200):
                t0 = time.perf_counter()
                r.ping()
                rtt.append((time.perf_counter() - t0) * 1000)
            ping = statistics.median(rtt)
        finally:
            procs.stop()
    p50 = statistics.median(s2e)
    figs = [
        _report.figure("started -> ended p50, a `true` todo, "
                       + ("one-repo worker (2 slots)" if args.workers == 1 else
                          f"{args.workers} one-repo workers (2 slots each)"),
                       p50, "ms", baseline=base["spawn_wait"],
                       baseline_name="/bin/sh's spawn and wait, alone, meanwhile"),
        _report.figure("the same, less /bin/sh's spawn and wait (coord's own)",
                       p50 - base["spawn_wait"], "ms", target=("<=", 2.0, "ms")),
        _report.figure("the turn's thread's CPU from the start script's call to the finish "
                       "script's (the window's own work, p50)", cpu, "ms"),
    ]
    for name, _a, _b in PARTS:
        if name not in parts:
            continue
        if name.startswith("the shell spawned"):
            figs.append(_report.figure(f"{name}, in the worker", parts[name], "ms",
                                       baseline=base["spawn"],
                                       baseline_name="the same Popen, alone in its process, meanwhile"))
        elif name.endswith("(its round trip)"):
            which = "start" if name.startswith("start") else "finish"
            inside = statistics.median(slow[which]) / 1000 if slow[which] else None
            figs.append(_report.figure(name, parts[name], "ms", baseline=inside,
                                       baseline_name="its time inside redis-server"))
        else:
            figs.append(_report.figure(name, parts[name], "ms"))
    for name, _a, _b in BETWEEN:
        if name in gaps:
            figs.append(_report.figure(name, gaps[name], "ms"))
    figs.append(_report.figure("a Redis round trip (PING), from the bench", ping, "ms"))
    _report.record("todo_path", figs, notes=f"{args.rounds} sweeps of {args.todos}; medians")
    for f in figs:
        say(f"  {f.name}: {_report.number(f.value, f.unit)}"
            + (f" (baseline {_report.number(f.baseline, f.unit)}, {f.baseline_name})"
               if f.baseline is not None else ""))
    print(json.dumps({"figures": [{"name": f.name, "value": f.value, "baseline": f.baseline,
                                   "met": f.met} for f in figs]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
