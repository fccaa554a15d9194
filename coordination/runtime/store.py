"""What each of the runtime's stores holds: the Redis client it reads and writes
through, and the namespace's keys, every one of which it names through
:class:`~coordination.keys.Keys`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

    from coordination.keys import Keys


class Store:
    """The client (``r``) and the keys (``keys``) a store's methods use."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
