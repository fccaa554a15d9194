"""What waits in the broker's queues, read from Redis without Celery.

kombu's Redis transport keeps a queue as one list per priority step
(``Keys.broker_queue``), each item a JSON message whose ``headers.id`` is the
Celery task id. The supervisor reads them to tell a todo whose message is lost
from one whose message still waits (see :mod:`coordination.sweeps.lost`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from coordination.keys import Keys

#: kombu's Redis ``priority_steps`` (its default): one list per step.
BROKER_PRIORITIES = (0, 3, 6, 9)


def queued_task_ids(r: redis.Redis, keys: Keys, queues: Iterable[str]) -> set[str]:
    """Task ids of the messages waiting in these broker queues (every priority list),
    in one pipelined round trip. Reading a queue is O(its length): callers ration it."""
    pipe = r.pipeline(transaction=False)
    for q in sorted(set(queues)):
        for pri in BROKER_PRIORITIES:
            pipe.lrange(keys.broker_queue(q, pri), 0, -1)
    out: set[str] = set()
    for items in pipe.execute():
        for raw in items or ():
            try:
                tid = json.loads(raw)["headers"]["id"]
            except (ValueError, KeyError, TypeError):
                continue
            out.add(str(tid))
    return out


def queue_lengths(r: redis.Redis, keys: Keys, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each broker queue (every priority list), one round trip."""
    names = sorted(set(queues))
    pipe = r.pipeline(transaction=False)
    for q in names:
        for pri in BROKER_PRIORITIES:
            pipe.llen(keys.broker_queue(q, pri))
    replies = iter(pipe.execute())
    return {q: sum(int(next(replies) or 0) for _ in BROKER_PRIORITIES) for q in names}
