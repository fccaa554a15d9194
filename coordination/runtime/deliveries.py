"""Forge webhook deliveries seen: a delivery id (``X-GitHub-Delivery``,
``X-Gitlab-Event-UUID``, ``X-Gitea-Delivery``) is recorded for :data:`SEEN_FOR`
seconds, so a delivery replayed within it (a captured request sent again, a forge's
redelivery of one handled) is answered as a duplicate and starts or changes nothing.

The record is one ``SET NX EX`` (:meth:`Deliveries.first`): of two receivers given the
same delivery at once exactly one sees it first, without a script. A delivery whose
handling failed is forgotten (:meth:`Deliveries.forget`) so its redelivery is taken.
"""

from __future__ import annotations

import redis

from coordination.keys import Keys

#: How long a delivery id is remembered: a day (GitHub keeps redeliveries for three
#: days, but a replay worth refusing is of a delivery captured recently).
SEEN_FOR = 24 * 3600


class Deliveries:
    def __init__(self, r: redis.Redis, keys: Keys, ttl: int = SEEN_FOR) -> None:
        self.r, self.keys, self.ttl = r, keys, ttl

    def first(self, kind: str, delivery: str) -> bool:
        """Record ``delivery`` of ``kind`` as seen: True when it was not seen within the
        TTL (handle it), False for a replay."""
        return bool(self.r.set(self.keys.webhook_delivery(kind, delivery), "1", nx=True,
                               ex=self.ttl))

    def forget(self, kind: str, delivery: str) -> None:
        """Its handling failed: a redelivery of it is taken again."""
        self.r.delete(self.keys.webhook_delivery(kind, delivery))
