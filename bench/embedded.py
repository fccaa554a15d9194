"""Embedded mode's Redis: the bundled redis-server (coordination/connection/embedded_server.py)
against fakeredis, what embedded mode ran on until 0.3.

One Lua script of 20 Redis commands (hashes, strings with a TTL, a sorted set, a counter,
a stream entry, a publish: the mix of coord's transition scripts) is called by EVALSHA
``--calls`` times per round, on each backend in turn, ``--rounds`` rounds interleaved; per
backend the median round's wall time and the caller's CPU time per call (``time.process_time``:
for fakeredis that is all the work, for a server only the client's share; the server's own
CPU, from ``INFO cpu``, is printed beside it). Also the cost of the server's life cycle:
a cold ``ensure_server`` (start + watchdog), a join by a second process's first call, and
``release`` of the last member (SHUTDOWN, waiting for the process to end).

    .venv/bin/python bench/embedded.py [--calls 2000] [--rounds 5] [--json]
    .venv/bin/python bench/embedded.py --binary valkey=/path/to/valkey-server ...

``--binary NAME=PATH`` adds another redis-server build, started on the same configuration
(to compare the candidate wheels). Every server is started in a temp directory and stopped
at the end.
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
from collections.abc import Callable
from pathlib import Path

import fakeredis
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from coordination.connection import embedded_server as es  # noqa: E402
from coordination.connection.client import compile_scripts_once  # noqa: E402

#: 20 commands, the kinds coord's scripts use.
SCRIPT = """
local h, s, z, c, x = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local n = redis.call('INCR', c)                                    -- 1
redis.call('HSET', h, 'status', 'running', 'n', n)                 -- 2
redis.call('HSET', h, 't:' .. (n % 50), cjson.encode({a = n}))     -- 3
local st = redis.call('HGET', h, 'status')                         -- 4
local tn = redis.call('HGET', h, 't:' .. (n % 50))                 -- 5
redis.call('HMGET', h, 'status', 'n', 'missing')                   -- 6
redis.call('SET', s, ARGV[1], 'PX', 60000)                         -- 7
local owner = redis.call('GET', s)                                 -- 8
redis.call('PEXPIRE', s, 60000)                                    -- 9
redis.call('EXISTS', s)                                            -- 10
redis.call('ZADD', z, 0, 'r' .. (n % 20))                          -- 11
redis.call('ZADD', z .. ':seen', n, 'r' .. (n % 20))               -- 12
redis.call('ZLEXCOUNT', z, '-', '(r' .. (n % 20))                  -- 13
redis.call('ZRANGE', z, 0, 0)                                      -- 14
redis.call('ZREM', z, 'r' .. ((n + 10) % 20))                      -- 15
redis.call('HINCRBY', h, 'attempts', 1)                            -- 16
redis.call('HDEL', h, 'o:' .. (n % 50))                            -- 17
local id = redis.call('XADD', x, 'MAXLEN', '~', 1000, '*', 'e', st) -- 18
redis.call('PUBLISH', x .. ':live', id)                            -- 19
redis.call('GETDEL', s .. ':tmp')                                  -- 20
return {n, owner, tn}
"""
KEYS = ["b:{s}:sweep", "b:{s}:lease", "b:{s}:waiters", "b:{s}:fence", "b:{s}:events"]


def run_calls(r: redis.Redis, calls: int) -> tuple[float, float]:
    """(wall, caller CPU) seconds for ``calls`` EVALSHA calls of SCRIPT."""
    sha = r.script_load(SCRIPT)
    r.evalsha(sha, len(KEYS), *KEYS, "owner")  # warm: compiled, connected
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        r.evalsha(sha, len(KEYS), *KEYS, "owner")
    return time.perf_counter() - w0, time.process_time() - c0


def server_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class Raw:
    """Another redis-server build on the embedded server's configuration."""

    def __init__(self, binary: str, workdir: Path) -> None:
        workdir.mkdir()
        self.sock = workdir / "redis.sock"
        conf = es._write_conf(workdir, self.sock)
        self.proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.client = redis.Redis(unix_socket_path=str(self.sock), decode_responses=True)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{binary} did not start") from None
                time.sleep(0.01)
        self.version = str(self.client.info("server").get("redis_version"))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def lifecycle(catalog: Path, samples: int) -> dict[str, float]:
    """Median ms of a cold start, a second process's join, a last member's release."""
    start, release = [], []
    for _ in range(samples):
        t0 = time.perf_counter()
        url = es.ensure_server(catalog)
        redis.Redis.from_url(url).ping()
        start.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        es.release(url)
        release.append(time.perf_counter() - t0)
    url = es.ensure_server(catalog)
    join_code = ("import sys,time; from pathlib import Path; "
                 "from coordination.connection import embedded_server as es; import redis; "
                 "t=time.perf_counter(); u=es.ensure_server(Path(sys.argv[1])); "
                 "redis.Redis.from_url(u).ping(); print(time.perf_counter()-t)")
    join = [float(subprocess.run([sys.executable, "-c", join_code, str(catalog)], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout)
            for _ in range(samples)]
    es.release(url)
    return {"cold_start_ms": 1000 * statistics.median(start),
            "join_from_new_process_ms": 1000 * statistics.median(join),
            "release_last_ms": 1000 * statistics.median(release)}


def lua_rounds(backends: dict[str, redis.Redis], calls: int, rounds: int
               ) -> tuple[dict[str, dict[str, float]], dict[str, list[tuple[float, float, float]]]]:
    """Each backend's median round (by wall) of ``calls`` Lua calls, per call: wall, the
    caller's CPU and the server's (a real server's INFO; fakeredis runs in the caller);
    and every round's samples."""
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in backends}
    for _ in range(rounds):
        for name, r in backends.items():
            is_server = not name.startswith("fakeredis")
            before = server_cpu(r) if is_server else 0.0
            wall, cpu = run_calls(r, calls)
            srv = server_cpu(r) - before if is_server else 0.0
            samples[name].append((wall, cpu, srv))

    def per_call(name: str) -> dict[str, float]:
        rows = sorted(samples[name])  # by wall
        wall, cpu, srv = rows[len(rows) // 2]
        return {"wall_ms": 1000 * wall / calls, "caller_cpu_ms": 1000 * cpu / calls,
                "server_cpu_ms": 1000 * srv / calls}

    return {name: per_call(name) for name in backends}, samples


def report_lua(figures: dict[str, dict[str, float]], calls: int, rounds: int,
               say: Callable[..., None]) -> dict[str, dict[str, float]]:
    """The table of backends, and each one's ratio to the bundled server (the first)."""
    ref = next(iter(figures))
    say(f"One 20-command Lua call by EVALSHA, {calls} calls x {rounds} rounds, "
        "median round, per call:")
    say(f"{'backend':<62} {'wall ms':>8} {'caller CPU ms':>14} {'server CPU ms':>14}")
    for name, f in figures.items():
        say(f"{name:<62} {f['wall_ms']:8.3f} {f['caller_cpu_ms']:14.3f} "
            f"{f['server_cpu_ms']:14.3f}")
    ratios = {}
    for name, f in figures.items():
        if name == ref:
            continue
        ratios[name] = {"wall": f["wall_ms"] / figures[ref]["wall_ms"],
                        "caller_cpu": f["caller_cpu_ms"] / figures[ref]["caller_cpu_ms"]}
        say(f"{name} / bundled: wall {ratios[name]['wall']:.2f}x, "
            f"caller CPU {ratios[name]['caller_cpu']:.2f}x")
    return ratios


def record_embedded(figures: dict[str, dict[str, float]], life: dict[str, float]) -> None:
    ref = next(iter(figures))
    rows = [_report.figure(f"One 20-command Lua call by EVALSHA, {ref}: wall per call",
                           figures[ref]["wall_ms"], "ms")]
    rows += [_report.figure(f"{name}: wall per call", f["wall_ms"], "ms",
                            baseline=figures[ref]["wall_ms"], baseline_name="bundled")
             for name, f in figures.items() if name != ref]
    rows += [_report.figure("Bundled server: cold start + PING", life["cold_start_ms"], "ms"),
             _report.figure("A second process joining it + PING",
                            life["join_from_new_process_ms"], "ms"),
             _report.figure("Release of its last member", life["release_last_ms"], "ms")]
    _report.record("embedded", rows)


def stop_servers(catalog: Path, tmp: Path, url: str, raws: list[Raw]) -> None:
    """The raw servers, our membership, and any bundled server of ours left running."""
    for raw in raws:
        raw.stop()
    es.release(url)
    for directory in (es.server_dir(catalog), es.server_dir(tmp / "life.yaml")):
        pid = es._read_pid(directory / es.PIDFILE)
        if pid is not None and es._alive(pid) and es._is_ours(pid, directory):
            os.kill(pid, 9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lifecycle", type=int, default=5, help="samples of start/join/release")
    ap.add_argument("--binary", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--json", action="store_true", help="only the final JSON line")
    args = ap.parse_args()
    say: Callable[..., None] = (lambda *a: None) if args.json else print

    tmp = Path(tempfile.mkdtemp(prefix="coord-bench-embedded-"))
    catalog = tmp / "eco.yaml"
    url = es.ensure_server(catalog)
    bundled = redis.Redis.from_url(url, decode_responses=True)
    plain = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    compiled_server = fakeredis.FakeServer()
    compile_scripts_once(compiled_server)
    compiled = fakeredis.FakeRedis(server=compiled_server, decode_responses=True)
    backends: dict[str, redis.Redis] = {
        f"bundled redis-server {bundled.info('server')['redis_version']}": bundled,
        "fakeredis[lua]": plain,
        "fakeredis[lua], scripts compiled once (coord 0.2 embedded)": compiled,
    }
    raws: list[Raw] = []
    try:
        for i, spec in enumerate(args.binary):
            name, _, path = spec.partition("=")
            raw = Raw(path, tmp / f"raw{i}")
            raws.append(raw)
            backends[f"{name} {raw.version}"] = raw.client
        figures, samples = lua_rounds(backends, args.calls, args.rounds)
        ratios = report_lua(figures, args.calls, args.rounds, say)
        es.release(url)
        life = lifecycle(tmp / "life.yaml", args.lifecycle)
        say(f"bundled server life cycle (median of {args.lifecycle}): cold ensure_server + "
            f"PING {life['cold_start_ms']:.1f} ms, a second process's ensure_server (join) + PING "
            f"{life['join_from_new_process_ms']:.1f} ms, release of the last member "
            f"{life['release_last_ms']:.1f} ms")
        record_embedded(figures, life)
        print(json.dumps({"calls": args.calls, "rounds": args.rounds, "per_call": figures,
                          "ratios_to_bundled": ratios, "lifecycle": life,
                          "samples": samples}))
    finally:
        stop_servers(catalog, tmp, url, raws)


if __name__ == "__main__":
    main()
