"""Cost per todo of waiting for the replicas (``WAIT``) on start, renewal and finish.

A real redis-server master with one replica on free local ports; each todo is what a
worker asks of Redis around one run: a start, one lease renewal, a finish. Measured
with coord's Transitions and LeaseManager as a ``sentinel://`` URL configures them
(``replicas=1``: the script, a WAIT for every replica online and an INFO replication
in one round trip) against the same without
the wait (what a plain ``redis://`` URL gets), in the same run, interleaved.

    .venv/bin/python bench/replica_wait.py [--todos N] [--rounds R]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordination.keys import Keys  # noqa: E402
from coordination.runtime.leases import LeaseManager  # noqa: E402
from coordination.runtime.transitions import StartVerdict, Transitions  # noqa: E402
from coordination.status import TodoStatus  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server(d: Path, port: int, replica_of: int | None = None) -> subprocess.Popen[bytes]:
    cmd = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(d)]
    if replica_of is not None:
        cmd += ["--replicaof", "127.0.0.1", str(replica_of)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def run(r: redis.Redis, replicas: int, todos: int, tag: str) -> float:
    """Seconds per todo (start, one renewal, finish) with ``replicas`` to wait for."""
    keys = Keys(f"bench-{tag}")
    tr = Transitions(r, keys, lease_ttl=10, replicas=replicas)
    leases = LeaseManager(r, keys, ttl=10, replicas=replicas)
    sweep = "S1"
    r.delete(keys.sweep(sweep))
    r.hset(keys.sweep(sweep), mapping={"status": '"running"', "run": "0",
                                       "size": str(todos)})
    t0 = time.perf_counter()
    for i in range(todos):
        tid = f"T{i}"
        st = tr.start(sweep, tid, repo="a", concurrency=1, preds=[], worker="w")
        assert st.verdict == StartVerdict.started and st.lease is not None, st
        assert leases.extend(st.lease)
        fin = tr.finish(sweep, tid, lease=st.lease, status=TodoStatus.succeeded,
                        fields={}, event={})
        assert fin.ok, fin
    return (time.perf_counter() - t0) / todos


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--todos", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mp, rp = free_port(), free_port()
        (Path(tmp) / "m").mkdir()
        (Path(tmp) / "r").mkdir()
        procs = [server(Path(tmp) / "m", mp), server(Path(tmp) / "r", rp, replica_of=mp)]
        try:
            r = redis.Redis(port=mp, decode_responses=True)
            deadline = time.monotonic() + 20
            while True:
                try:
                    slave = r.info("replication").get("slave0")
                    if isinstance(slave, dict) and slave.get("state") == "online":
                        break
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the replica did not connect")
                time.sleep(0.05)
            run(r, 1, 200, "warm")
            plain: list[float] = []
            waited: list[float] = []
            for k in range(args.rounds):
                plain.append(run(r, 0, args.todos, f"plain{k}"))
                waited.append(run(r, 1, args.todos, f"wait{k}"))
            p, w = statistics.median(plain), statistics.median(waited)
            print(f"{args.todos} todos x {args.rounds} rounds (start + renewal + finish), "
                  f"master + 1 replica on this machine")
            print(f"  without WAIT: {p * 1e6:8.0f} us/todo")
            print(f"  with WAIT:    {w * 1e6:8.0f} us/todo")
            print(f"  ratio: {w / p:.2f}x  (+{(w - p) * 1e6:.0f} us/todo)")
            import _report  # bench/_report.py (bench/ is this script's directory)

            _report.record("replica_wait", [
                _report.figure(f"A todo's start + renewal + finish against a master with one "
                               f"replica, with the replica wait (median of {args.rounds} x "
                               f"{args.todos:,})", w * 1000, "ms", baseline=p * 1000,
                               baseline_name="without"),
            ])
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
