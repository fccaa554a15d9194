"""The peers benchmark (issue #64, DESIGN "E. Engine throughput"): coord's worker models
against raw Celery, on the same redis-server, rounds interleaved.

Run by hand or by `make bench`; never part of the test suite.

Contenders, each with its workers started once and running throughout (idle ones cost
the others little), every sweep of no-op todos (`run: "true"`) round-robin over 4 repos,
at most 2 running per repo:

multi     `coord worker --repo repo0 ... --repo repo3`: one worker for the 4 repos (as many
          processes as it forks by default: one per usable core, at most one per repo)
one       4 `coord worker --repo repoN`: one worker per repo
raw       raw Celery: 4 workers (`-P threads -c 2`, acks late, prefetch 1, one per repo
          queue), each task `subprocess.run(["/bin/sh", "-c", "true"])`
embedded  `coord plan sweep --wait` with COORD_REDIS_URL unset (the catalog's own server
          and workers, started by the command), a fresh catalog directory each run

Shapes: flat N for N in --sizes (400, 2000), and 400 in 4 levels (100 chains of 4, each
chain in one repo): coord's default `levels` strategy against raw Celery's group of 100
chains of 4. Wall is the client process from start to exit: coord's `coord plan sweep
PLAN --wait --json`, raw Celery's a script that sends the group and waits for every
result. Started -> ended per todo: coord's `todo.started` -> `todo.succeeded` events,
raw Celery's task saying when its command started and ended (`raw.timed`). CPU per todo:
every process of the contender (its workers and what they spawned, under
bench/_reaper.py; redis-server; the client), psutil before and after. coord's workers
use db 0 of the one redis-server (a namespace each), raw Celery db 1.

Each figure is the median over rounds of the ratio taken round by round (a noisy
neighbour slows a round's contenders alike); the round by round ratios are printed.
The machine's core count is in the results (`machine.cpus`): the targets are for 16
cores. `--vs REV` runs an earlier coord beside this one (exported from git, its own
workers and namespaces, every shape of the same rounds: `multi@REV`, `one@REV`,
`embedded@REV`) and prints this coord's figures against it: how a change moved them
on this machine. `--vs REV1,REV2` runs each of them so (0.6 and 0.5 in one run).

    python bench/peers.py [--sizes 400,2000] [--rounds 3] [--only multi,one,embedded]
                          [--vs REV[,REV...]] [--json]
"""

from __future__ import annotations

import json
import os
import re
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
from _catalogs import (  # noqa: E402  (bench/_catalogs.py)
    REPOS, cli_sweep, flat_todos, level_todos, span_of, write_catalog)
from _celery_raw import (  # noqa: E402  (bench/_celery_raw.py)
    raw_app, raw_env, start_raw_workers, write_raw_module)
from _procs import (  # noqa: E402  (bench/_procs.py)
    READY_TIMEOUT, CpuMeter, Procs, child_env, coord_argv, counting_rtt, log_tails,
    rtt_total, run_process, start_redis, start_workers, stop_embedded, stop_on_signals,
    use_compiled_modules, wait_ready)

T_MULTI = 1.0  # one worker for 4 repos, wall / raw Celery, flat 400 and 2,000, <=
T_ONE = 0.7  # 4 one-repo workers, wall / raw Celery, flat 400, <=
T_S2E_MS = 2.0  # started -> ended p50, ms, <=
T_LEVELS = 1.0  # 400 in 4 levels, wall / raw Celery's group of 100 chains of 4, <=
T_EMBEDDED = 1.0  # embedded flat 400, wall / raw Celery, <=
LEVELS_N = 400
CONTENDERS = ("multi", "one", "embedded")
QUIET = False

# raw Celery's client: send a group of N timed tasks (flat) or of N/4 chains of 4 (one
# repo each, as coord's 4-level plan), wait for every result, print the span and each
# flat task's started -> ended.
RAW_PEERS_CLIENT = '''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import rawbench_app as m
from celery import chain, group

n, repos, shape = int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
if shape == "flat":
    sigs = [m.timed.si("true").set(queue=f"raw.{repos[i % len(repos)]}") for i in range(n)]
else:
    width = n // 4
    sigs = [chain(*(m.run.si("true").set(queue=f"raw.{repos[p % len(repos)]}")
                    for _ in range(4))) for p in range(width)]
t0 = time.perf_counter()
res = group(sigs).apply_async()
out = res.get(timeout=600, interval=0.005)
span = time.perf_counter() - t0
s2e = [(e - b) * 1000 for b, e, _rc in out] if shape == "flat" else []
print(json.dumps({"span": span, "s2e_ms": s2e}))
'''


def say(*args: Any) -> None:
    if not QUIET:
        print(*args, flush=True)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def p50(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def export(rev: str, into: Path) -> Path:
    """``rev``'s tree of this repository under ``into``, its modules compiled (as this
    tree's are: use_compiled_modules)."""
    import compileall

    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for pkg in ("coordination", "workers"):
        compileall.compile_dir(str(into / pkg), quiet=1)
    return into


class Side:
    """One contender's workers, catalogs and environment (``tree``: an earlier coord's,
    run from its exported source)."""

    def __init__(self, name: str, procs: Procs, tmp: Path, url: str | None, sizes: list[int],
                 tree: Path | None = None) -> None:
        self.name, self.procs, self.url, self.tree = name, procs, url, tree
        self.kind = name.split("@")[0]
        # (a revision's name, "HEAD~2", as a directory's and a namespace's: [a-z0-9._-])
        slug = re.sub(r"[^a-z0-9._-]", "-", name.replace("@", "_").lower())
        self.dir = tmp / slug
        self.namespace = f"peers_{slug}"
        self.env = (child_env(COORD_REDIS_URL=url, COORD_NAMESPACE=self.namespace,
                              COORD_SHARE_NAMESPACE="1") if url else child_env())
        if tree is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(tree), self.env["PYTHONPATH"]])
            # `python -m` would put its working directory (this checkout) first on the
            # path, ahead of the earlier tree: every @vs process ran this coord.
            self.env["PYTHONSAFEPATH"] = "1"
        # A temporary directory of its own, each contender: what one leaves there (this
        # coord's coord-ctx-<uid> is group-traversable after a --todo-user worker, which
        # 0.6 refuses: every @vs todo failed) and how full the machine's is (a results
        # directory a worker process makes, the sockets its context service lists) are
        # then no contender's but its own.
        tmpdir = self.dir / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        self.env["TMPDIR"] = str(tmpdir)
        self.rtt = tmp / f"rtt-{slug}"
        self.client_rtt = tmp / f"rtt-{slug}-client"
        self.client_env = counting_rtt(self.env, self.client_rtt)
        self.env = counting_rtt(self.env, self.rtt)
        self.catalogs = {f"flat{n}": write_catalog(self.dir / f"flat{n}" / "ecosystem.yaml",
                                                   flat_todos(n)) for n in sizes}
        self.catalogs["levels"] = write_catalog(self.dir / "levels" / "ecosystem.yaml",
                                                level_todos(LEVELS_N, "PLAN-1"))
        self.workers: list[Any] = []
        self.runs = 0

    def argv(self) -> list[str]:
        """`coord`: this tree's console script, or the earlier tree's CLI module."""
        if self.tree is None:
            return coord_argv()
        return [sys.executable, "-m", "coordination.cli.main"]

    def start(self) -> None:
        catalog = str(next(iter(self.catalogs.values())))
        base = [*self.argv(), "--file", catalog, "worker", "--loglevel", "WARNING"]
        if self.kind == "multi":
            argvs = [[*base, *(a for r in REPOS for a in ("--repo", r))]]
        else:
            argvs = [[*base, "--repo", r] for r in REPOS]
        self.workers = start_workers(self.procs, argvs, [self.env] * len(argvs),
                                     [self.dir / f"worker-{i}.log" for i in range(len(argvs))],
                                     ROOT)

    def ready(self) -> None:
        """Every repo served by a live worker process (`coord workers`' records)."""
        import redis

        from coordination.keys import Keys
        from coordination.runtime.workers import WorkerRegistry

        assert self.url is not None
        reg = WorkerRegistry(redis.Redis.from_url(self.url, decode_responses=True),
                             Keys(self.namespace))
        end = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < end:
            if any(p.poll() is not None for p in self.workers):
                raise RuntimeError(f"{self.name}: a worker exited before it was ready:\n"
                                   f"{log_tails(self.dir, 'worker-*.log')}")
            served = {r for w in reg.live() for r in w.repos}
            if served >= set(REPOS):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: workers not ready in {READY_TIMEOUT:.0f} s")

    def sweep(self, shape: str) -> dict[str, Any]:
        """One `coord plan sweep PLAN --wait --json`: wall, CPU of everything, latency."""
        catalog = self.catalogs[shape]
        if self.kind == "embedded":  # a new user's first sweep: a fresh catalog directory
            self.runs += 1
            catalog = write_catalog(self.dir / f"run{self.runs}" / "ecosystem.yaml",
                                    flat_todos(int(shape.removeprefix("flat"))))
            self.procs.embedded.append(catalog)
        meter = CpuMeter([p.pid for p in self.workers] + list(self.server_pids))
        trips, client = rtt_total(self.rtt), rtt_total(self.client_rtt, 0)
        before = meter.total()
        # (embedded: the client is the workers' parent; its forks count as workers)
        ran, st = cli_sweep(self.procs, catalog,
                            self.env if self.kind == "embedded" else self.client_env,
                            argv=self.argv())
        cpu = meter.total() - before + ran.cpu
        trips, client = rtt_total(self.rtt) - trips, rtt_total(self.client_rtt, 0) - client
        s2e = self.latencies(st) if self.url else []
        if self.kind == "embedded":
            stop_embedded(catalog)
        return {"wall": ran.wall, "span": span_of(st), "cpu": cpu, "s2e_ms": s2e,
                "rtt": trips, "rtt_client": client}

    server_pids: tuple[int, ...] = ()

    def latencies(self, st: dict[str, Any]) -> list[float]:
        """Each todo's `todo.started` -> `todo.succeeded`, ms (its sweep's events)."""
        import redis

        from coordination.keys import Keys
        from coordination.runtime.events import EventLog

        assert self.url is not None
        log = EventLog(redis.Redis.from_url(self.url, decode_responses=True),
                       Keys(self.namespace))
        began: dict[str, float] = {}
        out: list[float] = []
        for ev in log.read(st["sweep_id"]):
            ts = ev.ts
            if ev.kind == "todo.started" and ev.todo_id:
                began[ev.todo_id] = ts
            elif ev.kind == "todo.succeeded" and ev.todo_id in began:
                out.append((ts - began[ev.todo_id]) * 1000)
        return out


class Raw:
    """raw Celery's workers and client."""

    def __init__(self, procs: Procs, tmp: Path, url: str) -> None:
        self.procs, self.url = procs, url
        self.moddir = write_raw_module(tmp)
        (self.moddir / "raw_peers_client.py").write_text(RAW_PEERS_CLIENT)
        self.rtt, self.client_rtt = tmp / "rtt-raw", tmp / "rtt-raw-client"
        self.env = counting_rtt(raw_env(self.moddir, url), self.client_rtt)
        self.workers = start_raw_workers(procs, self.moddir, url, tmp,
                                         counting_rtt(raw_env(self.moddir, url), self.rtt))
        self.server_pids: tuple[int, ...] = ()

    def ready(self) -> None:
        wait_ready(raw_app(self.moddir, self.url).app, len(REPOS), self.workers, "raw celery")

    def sweep(self, shape: str) -> dict[str, Any]:
        n = LEVELS_N if shape == "levels" else int(shape.removeprefix("flat"))
        meter = CpuMeter([p.pid for p in self.workers] + list(self.server_pids))
        trips, client = rtt_total(self.rtt), rtt_total(self.client_rtt, 0)
        before = meter.total()
        ran = run_process(self.procs, [sys.executable, str(self.moddir / "raw_peers_client.py"),
                                       str(self.moddir), str(n), ",".join(REPOS),
                                       "flat" if shape != "levels" else "chains"],
                          self.env, self.moddir)
        cpu = meter.total() - before + ran.cpu
        trips, client = rtt_total(self.rtt) - trips, rtt_total(self.client_rtt, 0) - client
        got = json.loads(ran.out.strip().splitlines()[-1])
        return {"wall": ran.wall, "span": got["span"], "cpu": cpu, "s2e_ms": got["s2e_ms"],
                "rtt": trips, "rtt_client": client}


def measure(procs: Procs, tmp: Path, sizes: list[int], rounds: int, only: set[str],
            vs: dict[str, Path]) -> dict[str, Any]:
    """Every contender's runs of every shape, rounds interleaved: samples[shape][who]."""
    url, server = start_redis(procs, tmp)
    sides: dict[str, Any] = {"raw": Raw(procs, tmp, f"{url}/1")}
    for tree, suffix in ((None, ""), *((t, f"@{rev}") for rev, t in vs.items())):
        for kind in ("multi", "one"):
            if kind in only:
                sides[kind + suffix] = Side(kind + suffix, procs, tmp, f"{url}/0", sizes, tree)
                sides[kind + suffix].start()
        if "embedded" in only and 400 in sizes:
            sides["embedded" + suffix] = Side("embedded" + suffix, procs, tmp, None, [400],
                                              tree)
    for who, side in sides.items():
        if not who.startswith("embedded"):  # (its server is its own, its CPU the CLI's)
            side.server_pids = (server.pid,)
            side.ready()
    shapes = [f"flat{n}" for n in sizes] + ["levels"]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in shapes}
    for who, side in sides.items():  # warm-up: connections, page cache, catalog caches
        if not who.startswith("embedded"):
            side.sweep(shapes[0])
    for r in range(rounds):
        for shape in shapes:
            for who, side in sides.items():
                if who.startswith("embedded") and shape != "flat400":
                    continue
                got = side.sweep(shape)
                samples[shape].setdefault(who, []).append(got)
                say(f"   round {r + 1}/{rounds} {shape:8s} {who:8s} wall {got['wall']:6.2f} s"
                    f"  span {got['span'] or float('nan'):6.2f} s")
    return {"samples": samples, "sizes": sizes, "rounds": rounds}


def ratios(samples: dict[str, list[dict[str, Any]]], who: str, key: str = "wall",
           base: str = "raw") -> list[float]:
    return [a[key] / b[key] for a, b in zip(samples[who], samples[base])]


NAMES = {"multi": "1 worker x 4 repos", "one": "4 one-repo workers", "embedded": "embedded"}


def report(m: dict[str, Any]) -> list[_report.Figure]:
    """Print every figure (ratios round by round) and return them for the results."""
    figs: list[_report.Figure] = []
    rounds = m["rounds"]

    def wall(shape: str, who: str, target: float | None, base: str = "raw Celery") -> None:
        s = m["samples"][shape]
        if who not in s:
            return
        rs = ratios(s, who)
        what = "flat " + shape[4:] if shape.startswith("flat") else "400 in 4 levels"
        f = _report.figure(f"{what}: wall, coord {NAMES[who]} / {base}",
                           med([x["wall"] for x in s[who]]), "s",
                           baseline=med([x["wall"] for x in s["raw"]]), baseline_name=base,
                           ratio=med(rs), target=None if target is None else ("<=", target, "x"),
                           on="ratio")
        figs.append(f)
        say(f"   {f.name}: {f.ratio:.2f}x (rounds {', '.join(f'{x:.2f}' for x in rs)})"
            + (f"; target {f.target}: {'met' if f.met else 'NOT met'}" if f.target else ""))

    say(f"\nwall, client process start to exit; median of {rounds} round-by-round ratios")
    for n in m["sizes"]:
        wall(f"flat{n}", "multi", T_MULTI)
        wall(f"flat{n}", "one", T_ONE if n == 400 else None)
    wall("levels", "multi", T_LEVELS, "raw Celery group of 100 chains of 4")
    wall("levels", "one", T_LEVELS, "raw Celery group of 100 chains of 4")
    if "flat400" in m["samples"]:
        wall("flat400", "embedded", T_EMBEDDED)
    for rev in m.get("vs") or ():
        say(f"\nagainst {rev} (the same rounds; wall, this coord / that one)")
        for shape, s in m["samples"].items():
            for who in ("multi", "one", "embedded"):
                if who in s and f"{who}@{rev}" in s:
                    rs = ratios(s, who, base=f"{who}@{rev}")
                    what = "flat " + shape[4:] if shape.startswith("flat") else "400 in 4 levels"
                    f = _report.figure(f"{what}: wall, coord {NAMES[who]} / {rev}'s",
                                       med([x["wall"] for x in s[who]]), "s",
                                       baseline=med([x["wall"] for x in s[f"{who}@{rev}"]]),
                                       baseline_name=rev, ratio=med(rs))
                    figs.append(f)
                    say(f"   {f.name}: {f.ratio:.2f}x (rounds {', '.join(f'{x:.2f}' for x in rs)})")
    say("\nstarted -> ended per todo (p50, ms; median over rounds), flat")
    for n in m["sizes"]:
        s = m["samples"][f"flat{n}"]
        raw = med([p50(x["s2e_ms"]) or 0.0 for x in s["raw"]])
        for who in ("multi", "one"):
            if who not in s:
                continue
            v = med([p50(x["s2e_ms"]) or 0.0 for x in s[who]])
            f = _report.figure(f"flat {n}: started -> ended p50, coord {NAMES[who]}", v, "ms",
                               baseline=raw, baseline_name="raw Celery's task",
                               target=("<=", T_S2E_MS, "ms"))
            figs.append(f)
            say(f"   {f.name}: {v:.2f} ms (raw Celery's task {raw:.2f} ms); target {f.target}: "
                f"{'met' if f.met else 'NOT met'}")
            for rev in [r for r in m.get("vs") or () if f"{who}@{r}" in s]:
                # the earlier coord's, the same rounds
                got = [p50(x["s2e_ms"]) for x in s[f"{who}@{rev}"]]
                old = [x for x in got if x is not None]
                if old and len(old) == len(got):
                    f = _report.figure(f"flat {n}: started -> ended p50, coord {NAMES[who]} "
                                       f"({rev})", med(old), "ms", baseline=raw,
                                       baseline_name="raw Celery's task")
                    figs.append(f)
                    say(f"   {f.name}: {f.value:.2f} ms (this coord's {v:.2f} ms)")
    say("\nRedis round trips per todo of the workers (redis-py's sends counted, bench/_rtt; "
        "median over rounds): a figure the machine's load does not move; the client's "
        "(coord's waiting CLI, raw Celery's result polling) beside it")
    for shape in m["samples"]:
        s = m["samples"][shape]
        n = LEVELS_N if shape == "levels" else int(shape.removeprefix("flat"))
        what = "flat " + shape[4:] if shape.startswith("flat") else "400 in 4 levels"
        raw = med([x["rtt"] for x in s["raw"]]) / n
        for who in [w for w in s if w != "raw"]:
            v = med([x["rtt"] for x in s[who]]) / n
            name, _, rev = who.partition("@")
            f = _report.figure(f"{what}: Redis round trips per todo, coord {NAMES[name]}"
                               + (f" ({rev})" if rev else ""), v, "",
                               baseline=raw, baseline_name="raw Celery's workers",
                               target=("<=", 1.0, "x"), on="ratio")
            figs.append(f)
            say(f"   {f.name}: {v:.2f} (raw Celery's workers {raw:.2f}); "
                f"{'no more than' if f.met else 'MORE than'} raw Celery's; the client "
                f"{med([x['rtt_client'] for x in s[who]]) / n:.2f} (raw Celery's "
                f"{med([x['rtt_client'] for x in s['raw']]) / n:.2f})")
    say("\nCPU per todo, every process of the contender (ms; median over rounds), flat")
    for n in m["sizes"]:
        s = m["samples"][f"flat{n}"]
        raw = med([x["cpu"] for x in s["raw"]]) / n * 1000
        for who in ("multi", "one", "embedded"):
            if who not in s:
                continue
            v = med([x["cpu"] for x in s[who]]) / n * 1000
            f = _report.figure(f"flat {n}: CPU per todo, coord {NAMES[who]}", v, "ms",
                               baseline=raw, baseline_name="raw Celery")
            figs.append(f)
            say(f"   {f.name}: {v:.2f} ms ({f.ratio:.2f}x raw Celery's {raw:.2f} ms)")
    return figs


def main() -> int:
    global QUIET
    ap = _report.arguments(__doc__, rounds=3)
    ap.add_argument("--sizes", default="400,2000", help="flat sizes (400,2000)")
    ap.add_argument("--only", default=",".join(CONTENDERS),
                    help="coord's contenders (multi,one,embedded); raw Celery always runs")
    ap.add_argument("--vs", default="", metavar="REV[,REV]",
                    help="also run earlier coords (git revisions) beside this one")
    args = ap.parse_args()
    QUIET = args.json
    sizes = sorted({int(x) for x in args.sizes.split(",") if x})
    only = {x for x in args.only.split(",") if x}
    if unknown := only - set(CONTENDERS):
        ap.error(f"--only: unknown {sorted(unknown)} (of {', '.join(CONTENDERS)})")
    stop_on_signals()
    use_compiled_modules(say)
    procs = Procs()
    say(f"peers: {os.cpu_count()} CPUs; flat {sizes} and {LEVELS_N} in 4 levels; coord "
        f"{', '.join(sorted(only))} against raw Celery; {args.rounds} rounds interleaved")
    with tempfile.TemporaryDirectory(prefix="coord-peers-") as d:
        try:
            revs = list(dict.fromkeys(x for x in args.vs.split(",") if x))
            vs = {rev: export(rev, Path(d) / f"vs-{i}") for i, rev in enumerate(revs)}
            m = measure(procs, Path(d), sizes, args.rounds, only, vs)
            m["vs"] = revs
        finally:
            procs.stop()
    figs = report(m)
    _report.record("peers", figs, notes=f"{args.rounds} rounds interleaved; ratios are the "
                   "median of round-by-round ratios; targets are for 16 cores")
    out = {"cpus": os.cpu_count(), "rounds": args.rounds,
           "figures": [{"name": f.name, "value": f.value, "ratio": f.ratio, "met": f.met}
                       for f in figs],
           "samples": {shape: {who: [{k: v for k, v in x.items() if k != "s2e_ms"}
                                     for x in xs] for who, xs in s.items()}
                       for shape, s in m["samples"].items()}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
