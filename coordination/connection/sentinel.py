"""Clients of a Redis managed by Sentinel (``COORD_REDIS_URL=sentinel://...``).

A client made here asks the sentinels where the master is at each new connection
(redis-py's ``SentinelConnectionPool``), so after a failover the next connection
reaches the new master. The broker gets the same sentinels, password and TLS through
:func:`sentinel_kwargs` (kombu's sentinel channel builds its own pool from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from coordination.redis_url import sentinel_target
from coordination.settings import get_settings


def sentinel_password() -> str | None:
    """``COORD_SENTINEL_PASSWORD`` (None when unset or empty)."""
    secret = get_settings().sentinel_password
    return secret.get_secret_value() or None if secret is not None else None


def sentinel_kwargs(url: str, **socket: Any) -> dict[str, Any]:
    """redis-py's keyword arguments for the sentinels of a ``sentinel://`` URL: their
    password (``COORD_SENTINEL_PASSWORD``), the URL's TLS and ``socket`` options (and
    ``retry``)."""
    target = sentinel_target(url)
    out: dict[str, Any] = {**socket, **target.tls}
    password = sentinel_password()
    if password:
        out["password"] = password
    return out


def sentinel_master(url: str, **kwargs: Any) -> redis.Redis:
    """A client of the master the sentinels of ``url`` name: each new connection asks
    them where the master is now (redis-py's ``SentinelConnectionPool``), so after a
    failover the next connection reaches the new master. A write refused by a demoted
    master (``READONLY``, celery#7946) drops that connection and surfaces as a
    ``ConnectionError``, which the caller rides out
    (:func:`coordination.connection.client.riding_out`) like any
    other reconnect, never as a crash."""
    target = sentinel_target(url)
    # The sentinels' connections time out, and retry, as the master's do.
    socket = {k: v for k, v in kwargs.items() if k.startswith("socket_") or k == "retry"}
    manager = Sentinel(  # type: ignore[no-untyped-call]
        target.sentinels, sentinel_kwargs=sentinel_kwargs(url, **socket))
    auth = {"username": target.username, "password": target.password}
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        target.master, redis_class=redis.Redis, db=target.db,
        **{k: v for k, v in auth.items() if v}, **target.tls, **kwargs)
    return client


@dataclass
class SentinelFacts:
    """What the sentinels of a ``sentinel://`` URL say about its master (``coord
    doctor``): which of them answered, the master, its replicas, the quorum."""

    master: str
    answered: list[str] = field(default_factory=list)  # host:port of sentinels that answered
    silent: list[str] = field(default_factory=list)  # ... and of those that did not
    address: str | None = None  # the master's host:port, as the first that answered says
    master_down: bool = False  # that sentinel sees it down (s_down/o_down)
    replicas: int = 0  # replicas that sentinel sees up, linked to the master
    replicas_down: int = 0
    sentinels: int = 0  # sentinels monitoring it (the one asked and the others it knows)
    quorum: int | None = None
    #: SENTINEL CKQUORUM's answer: can the sentinels agree a failover and authorize it?
    quorum_ok: bool | None = None
    quorum_says: str = ""


def sentinel_facts(url: str, timeout: float = 2.0) -> SentinelFacts:
    """Ask the sentinels of ``url`` (each once; the first that answers speaks for them)."""
    target = sentinel_target(url)
    facts = SentinelFacts(target.master)
    opts = sentinel_kwargs(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                           retry=Retry(NoBackoff(), 0))
    for host, port in target.sentinels:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        client = redis.Redis(host, port, decode_responses=True, **opts)
        try:
            if facts.answered:  # the others: only whether they answer
                client.ping()
                facts.answered.append(where)
                continue
            state: dict[str, Any] = dict(
                client.sentinel_master(target.master))  # type: ignore[arg-type]
            replicas: list[dict[str, Any]] = list(client.sentinel_slaves(target.master))
            facts.answered.append(where)
        except redis.ResponseError as exc:  # it answered: no such master
            facts.answered.append(where)
            facts.quorum_ok, facts.quorum_says = False, str(exc)
            break
        except redis.RedisError:
            facts.silent.append(where)
            continue
        finally:
            client.close()
        facts.address = f"{state.get('ip')}:{state.get('port')}"
        facts.master_down = bool(state.get("is_sdown") or state.get("is_odown"))
        facts.sentinels = int(state.get("num-other-sentinels", 0)) + 1
        facts.quorum = int(state["quorum"]) if "quorum" in state else None
        for rep in replicas:
            up = not (rep.get("is_sdown") or rep.get("is_odown") or rep.get("is_disconnected"))
            if up and rep.get("master-link-status") == "ok":
                facts.replicas += 1
            else:
                facts.replicas_down += 1
        try:
            with redis.Redis(host, port, decode_responses=True, **opts) as again:
                again.execute_command("SENTINEL", "CKQUORUM", target.master)
            facts.quorum_ok, facts.quorum_says = True, "OK"
        except redis.ResponseError as exc:
            facts.quorum_ok, facts.quorum_says = False, str(exc)
        except redis.RedisError as exc:
            facts.quorum_says = str(exc)
    return facts
