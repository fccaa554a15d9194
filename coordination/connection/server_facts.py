"""What `coord doctor` reads of the Redis server: its version and settings, its memory,
how long a round trip takes, and its clock (as :mod:`.sentinel` reads the sentinels).
None of it is coord's state: how far each worker's clock is from the server's is read
from the workers' records, by the runtime (:meth:`coordination.runtime.workers.WorkerRegistry.clocks`).

Everything is read, nothing judged (judging is :mod:`coordination.ops.doctor`). A
server that refuses a command (a managed Redis without ``CONFIG``, an ACL user
without ``INFO``) leaves that fact ``None`` and says why in :attr:`ServerFacts.refused`,
so a check says "not checked" rather than guessing.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import redis

#: Round trips timed for the latency figure.
PINGS = 10


@dataclass
class ServerFacts:
    version: str | None = None
    mode: str | None = None  # standalone | sentinel | cluster
    role: str | None = None  # master | slave
    maxmemory_policy: str | None = None
    maxmemory: int | None = None  # bytes; 0: no limit
    used_memory: int | None = None
    total_system_memory: int | None = None
    aof_enabled: bool | None = None
    #: CONFIG GET save: the RDB save points ("" none); None when CONFIG was refused
    rdb_save: str | None = None
    rdb_last_bgsave_ok: bool | None = None
    aof_last_write_ok: bool | None = None
    connected_slaves: int | None = None
    latency_ms: float | None = None  # median of PINGS round trips
    latency_max_ms: float | None = None
    #: the server's clock minus this machine's, seconds (half a round trip of error)
    clock_offset: float | None = None
    refused: dict[str, str] = field(default_factory=dict)  # command -> why not read


def _int(info: dict[str, object], name: str) -> int | None:
    value = info.get(name)
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def read_server(r: redis.Redis) -> ServerFacts:
    """The facts of the server ``r`` talks to (raises redis's errors when it cannot be
    reached at all)."""
    facts = ServerFacts()
    times = []
    for _ in range(PINGS):
        t0 = time.perf_counter()
        r.ping()
        times.append((time.perf_counter() - t0) * 1000)
    facts.latency_ms = round(statistics.median(times), 3)
    facts.latency_max_ms = round(max(times), 3)
    try:
        info: dict[str, object] = dict(r.info("all"))
    except redis.ResponseError as exc:
        facts.refused["info"] = str(exc)
        info = {}
    if info:
        facts.version = str(info.get("redis_version") or "") or None
        facts.mode = str(info.get("redis_mode") or "") or None
        facts.role = str(info.get("role") or "") or None
        facts.maxmemory_policy = str(info.get("maxmemory_policy") or "") or None
        facts.maxmemory = _int(info, "maxmemory")
        facts.used_memory = _int(info, "used_memory")
        facts.total_system_memory = _int(info, "total_system_memory")
        aof = _int(info, "aof_enabled")
        facts.aof_enabled = None if aof is None else bool(aof)
        if "rdb_last_bgsave_status" in info:
            facts.rdb_last_bgsave_ok = info["rdb_last_bgsave_status"] == "ok"
        if "aof_last_write_status" in info:
            facts.aof_last_write_ok = info["aof_last_write_status"] == "ok"
        facts.connected_slaves = _int(info, "connected_slaves")
    try:
        save = r.config_get("save")
        facts.rdb_save = str(save.get("save", "")) if isinstance(save, dict) else None
        if facts.maxmemory_policy is None:
            policy = r.config_get("maxmemory-policy")
            facts.maxmemory_policy = str(policy.get("maxmemory-policy") or "") or None
    except redis.ResponseError as exc:
        facts.refused["config get"] = str(exc)
    try:
        t0 = time.time()
        secs, micros = r.time()
        t1 = time.time()
        facts.clock_offset = round(float(secs) + float(micros) / 1e6 - (t0 + t1) / 2, 3)
    except redis.ResponseError as exc:
        facts.refused["time"] = str(exc)
    return facts
