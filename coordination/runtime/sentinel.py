"""Clients of a Redis managed by Sentinel (``COORD_REDIS_URL=sentinel://...``).

A client made here asks the sentinels where the master is at each new connection
(redis-py's ``SentinelConnectionPool``), so after a failover the next connection
reaches the new master. The broker gets the same sentinels, password and TLS through
:func:`sentinel_kwargs` (kombu's sentinel channel builds its own pool from them).
"""

from __future__ import annotations

from typing import Any

import redis
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
    (:func:`coordination.runtime.client.riding_out`) like any
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
