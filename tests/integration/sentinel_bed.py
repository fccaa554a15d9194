"""One Redis master, two replicas and three sentinels on free local ports, for the
Sentinel tests (``tests/integration/test_sentinel.py`` and the chaos tier's soak).

Short timings on purpose: a master is down for the sentinels after 500 ms, and a
failover may follow the last one after ``2 * FAILOVER_TIMEOUT_MS``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.helpers import Cluster
from tests.servers import free_port, redis_binary
from tests.waiting import wait_for

MASTER = "coordmaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 1500
PASSWORD = "s3cret:pw@x"  # a password with characters a URL must encode
SENTINEL_PASSWORD = "sentinel-pw"


def make_pki(d: Path) -> Path:
    """A throwaway CA and a certificate for 127.0.0.1 / localhost in ``d``
    (``ca.pem``, ``server.pem``, ``server.key``)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not on PATH (needed to make test certificates)")
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=coord-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")
    return d


class SentinelBed:
    """``url`` is the ``sentinel://`` URL coord is given; ``kill_master()`` SIGKILLs
    the current master and ``wait_failover()`` waits for the sentinels to name another."""

    def __init__(self, root: Path, tls: Path | None = None, replicas: int = 2) -> None:
        """``tls``: a directory made by :func:`make_pki`: every server and sentinel then
        speaks TLS only (replication and the sentinels' own links included);
        ``replicas``: how many replicas the master starts with."""
        self.tls = tls
        binary = redis_binary()
        self.binary, self.root = binary, root
        self.ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.start_redis(self.ports[0])
        for port in self.ports[1:]:
            self.start_redis(port, replica_of=self.ports[0])
        for port in self.sentinel_ports:
            self._start_sentinel(port)
        wait_for(lambda: self.master_port() == self.ports[0], 20, "the sentinels to see the master")
        wait_for(lambda: len(self.healthy_replicas()) == replicas, 20,
                 f"{replicas} replica(s) in sync")

    @property
    def url(self) -> str:
        from urllib.parse import quote

        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        tls = f"&ssl=true&ssl_ca_certs={self.tls / 'ca.pem'}" if self.tls else ""
        return f"sentinel://:{quote(PASSWORD, safe='')}@{hosts}/0?master={MASTER}{tls}"

    def env(self) -> dict[str, str]:
        return {"COORD_REDIS_URL": self.url, "COORD_SENTINEL_PASSWORD": SENTINEL_PASSWORD}

    # -- processes ------------------------------------------------------------------------
    def start_redis(self, port: int, replica_of: int | None = None) -> None:
        d = self.root / f"redis-{port}"
        d.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, *self._listen(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(d), "--logfile", str(d / "redis.log"),
               "--requirepass", PASSWORD, "--masterauth", PASSWORD,
               "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
               "--maxmemory-policy", "noeviction"]
        if replica_of is not None:
            cmd += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.procs[port] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.STDOUT)
        wait_for(lambda: self._ping(port), 15, f"redis-server on {port}", interval=0.05)

    def _listen(self, port: int) -> list[str]:
        if self.tls is None:
            return ["--port", str(port)]
        return ["--port", "0", "--tls-port", str(port),
                "--tls-cert-file", str(self.tls / "server.pem"),
                "--tls-key-file", str(self.tls / "server.key"),
                "--tls-ca-cert-file", str(self.tls / "ca.pem"), "--tls-auth-clients", "no",
                "--tls-replication", "yes"]

    def _start_sentinel(self, port: int) -> None:
        d = self.root / f"sentinel-{port}"
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "sentinel.conf"
        listen = f"port {port}\n"
        if self.tls is not None:
            listen = (f"port 0\ntls-port {port}\ntls-cert-file {self.tls / 'server.pem'}\n"
                      f"tls-key-file {self.tls / 'server.key'}\n"
                      f"tls-ca-cert-file {self.tls / 'ca.pem'}\ntls-auth-clients no\n"
                      "tls-replication yes\n")
        conf.write_text(
            f"{listen}bind 127.0.0.1\ndir {d}\nlogfile {d / 'sentinel.log'}\n"
            f"requirepass {SENTINEL_PASSWORD}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.ports[0]} 2\n"
            f"sentinel auth-pass {MASTER} {PASSWORD}\n"
            f"sentinel sentinel-pass {SENTINEL_PASSWORD}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER} 2\n")
        self.procs[port] = subprocess.Popen([self.binary, str(conf), "--sentinel"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: self._ping(port, SENTINEL_PASSWORD), 15, f"sentinel on {port}",
                 interval=0.05)

    def _ping(self, port: int, password: str = PASSWORD) -> bool:
        try:
            return bool(self.client(port, password).ping())
        except redis.RedisError:
            return False

    def client(self, port: int, password: str = PASSWORD) -> redis.Redis:
        tls = {"ssl": True, "ssl_ca_certs": str(self.tls / "ca.pem")} if self.tls else {}
        return redis.Redis("127.0.0.1", port, password=password, decode_responses=True,
                           socket_timeout=2, socket_connect_timeout=2, **tls)

    # -- state ----------------------------------------------------------------------------
    def master_port(self) -> int | None:
        """The master's port as most sentinels name it (None: no majority)."""
        votes: dict[int, int] = {}
        for port in self.sentinel_ports:
            try:
                addr = self.client(port, SENTINEL_PASSWORD).sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            if addr:
                votes[int(addr[1])] = votes.get(int(addr[1]), 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= 2 else None

    def healthy_replicas(self) -> list[int]:
        """Ports of the replicas the current master has in sync (online)."""
        port = self.master_port()
        if port is None:
            return []
        try:
            info = self.client(port).info("replication")
        except redis.RedisError:
            return []
        if info.get("role") != "master":
            return []
        return [int(v["port"]) for k, v in info.items()
                if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]

    def kill_master(self) -> int:
        """SIGKILL the current master; its port."""
        port = self.master_port()
        assert port is not None, "no master to kill"
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return port

    def wait_failover(self, old: int, timeout: float = 30) -> int:
        """Wait until the sentinels name a master other than ``old`` that answers as one."""
        def promoted() -> int | None:
            port = self.master_port()
            if port is None or port == old:
                return None
            try:
                return port if self.client(port).info("replication")["role"] == "master" else None
            except redis.RedisError:
                return None

        return int(wait_for(promoted, timeout, "a failover", interval=0.05))

    def kill_replicas(self) -> list[int]:
        """SIGKILL every replica of the current master (its servers that are up, the
        master aside); their ports, for :meth:`revive`."""
        master = self.master_port()
        assert master is not None, "no master whose replicas to kill"
        ports = [p for p in self.ports if p != master and self.procs[p].poll() is None]
        for port in ports:
            self.procs[port].send_signal(signal.SIGKILL)
        for port in ports:
            self.procs[port].wait(timeout=10)
        return ports

    def revive(self, ports: list[int]) -> None:
        """Start killed servers again, each a replica of the current master."""
        for port in ports:
            self.rejoin(port)

    def kill_sentinels(self, n: int) -> list[int]:
        """SIGKILL the first ``n`` sentinels; their ports."""
        ports = self.sentinel_ports[:n]
        for port in ports:
            self.procs[port].send_signal(signal.SIGKILL)
            self.procs[port].wait(timeout=10)
        return ports

    def rejoin(self, port: int) -> None:
        """Start a killed server again, as a replica of the current master (what its
        sentinel-managed config would make it)."""
        master = self.master_port()
        assert master is not None and master != port
        self.start_redis(port, replica_of=master)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def failovers(self) -> int:
        """Failovers the sentinels made so far (``+switch-master`` in the first one's log;
        a sentinel that saw it logs it once)."""
        log = self.root / f"sentinel-{self.sentinel_ports[0]}" / "sentinel.log"
        return log.read_text(errors="replace").count("+switch-master") if log.exists() else 0

    def logs(self) -> str:
        out = []
        for log in sorted(self.root.glob("*/*.log")):
            out.append(f"--- {log}\n{log.read_text(errors='replace')[-2000:]}")
        return "\n".join(out)


def cluster_over(bed: SentinelBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest, *, lease_ttl: str,
                 logs_unless_passed: bool = False) -> Iterator[Cluster]:
    """A :class:`Cluster` on ``bed`` whose leases last ``lease_ttl`` s (longer than a
    failover), yielded once and closed after; the workers' and sentinels' logs are
    printed when the test failed (``logs_unless_passed``: also when it never ran)."""
    for k, v in bed.env().items():
        monkeypatch.setenv(k, v)
    from coordination.connection import client
    from coordination.settings import get_settings

    get_settings.cache_clear()
    c = Cluster(tmp_path / "cluster", bed.url)
    c.env.update(bed.env(), COORD_LEASE_TTL=lease_ttl, COORD_LOST_AFTER="3",
                 COORD_WORKER_HEARTBEAT="0.5")
    try:
        yield c
    finally:
        rep = getattr(request.node, "rep_call", None)
        if (rep is None and logs_unless_passed) or (rep is not None and rep.failed):
            print(c.log_tails())
            print(bed.logs())
        c.close()
        client._real_clients.pop(bed.url, None)
        get_settings.cache_clear()
